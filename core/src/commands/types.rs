//! Item types, their workflows and their custom fields.

use serde::Deserialize;

use crate::access::{Action, Actor, Target, can};
use crate::change::{ChangeSet, Record, RecordKind};
use crate::desk::{Command, Decided, Env, load};
use crate::diff::diff;
use crate::error::{DeskError, Invalid};
use crate::event::{EventData, FieldChange};
use crate::fields::{FieldDef, validate_def};
use crate::hierarchy::validate_title;
use crate::ids::ItemTypeId;
use crate::item::{Item, ItemKind, ItemType};
use crate::store::{ItemFilter, ItemQuery, ItemScope, Store};
use crate::workflow::{StatusCategory, Transition, Workflow, WorkflowDefaults};

use super::structure::validate_description;

fn check(actor: &Actor) -> Result<(), DeskError> {
    can(actor, Action::ManageStructure, Target::Workspace).into_result()
}

fn validate_fields(fields: &[FieldDef]) -> Result<(), Invalid> {
    if fields.len() > 200 {
        return Err(Invalid::new("fields", "at most 200 fields per item type"));
    }
    for (i, f) in fields.iter().enumerate() {
        validate_def(f).map_err(|e| e.within(&format!("fields[{i}]")))?;
        if fields[..i].iter().any(|o| o.key == f.key) {
            return Err(Invalid::new(format!("fields[{i}].key"), format!("'{}' is used twice", f.key)));
        }
    }
    Ok(())
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateItemType {
    pub name: String,
    pub kind: ItemKind,
    #[serde(default)]
    pub description: String,
    /// The default triage → execution → delivery workflow when absent.
    #[serde(default)]
    pub workflow: Option<Workflow>,
    #[serde(default)]
    pub fields: Vec<FieldDef>,
}

impl Command for CreateItemType {
    type State = ();
    type Output = ItemType;

    async fn load(&self, _: &Actor, _: &dyn Store) -> Result<(), DeskError> {
        Ok(())
    }

    fn decide(&self, actor: &Actor, _: (), env: &Env<'_>) -> Result<Decided<ItemType>, DeskError> {
        check(actor)?;
        let workflow = self.workflow.clone().unwrap_or_else(Workflow::default_workflow);
        workflow.validate().map_err(|e| e.within("workflow"))?;
        validate_fields(&self.fields)?;
        let t = ItemType {
            id: env.new_id(),
            workspace_id: actor.workspace_id,
            name: validate_title("name", &self.name, 120)?,
            kind: self.kind,
            description: validate_description(&self.description)?,
            workflow,
            fields: self.fields.clone(),
            created_at: env.now,
            version: 1,
        };
        let mut changes = env.changes(actor);
        changes.event(
            None,
            EventData::RecordCreated { record: RecordKind::ItemType, id: t.id.0, name: t.name.clone() },
        );
        changes.insert(Record::ItemType(t.clone()));
        Ok(Decided { changes, output: t })
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemTypePatch {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Clone)]
pub struct UpdateItemType {
    pub id: ItemTypeId,
    pub patch: ItemTypePatch,
}

impl Command for UpdateItemType {
    type State = ItemType;
    type Output = ItemType;

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<ItemType, DeskError> {
        load::<ItemType>(store, actor.workspace_id, self.id).await
    }

    fn decide(&self, actor: &Actor, old: ItemType, env: &Env<'_>) -> Result<Decided<ItemType>, DeskError> {
        check(actor)?;
        let mut next = old.clone();
        if let Some(name) = &self.patch.name {
            next.name = validate_title("name", name, 120)?;
        }
        if let Some(d) = &self.patch.description {
            next.description = validate_description(d)?;
        }
        Ok(save_type(actor, env, old, next))
    }
}

fn save_type(actor: &Actor, env: &Env<'_>, old: ItemType, mut next: ItemType) -> Decided<ItemType> {
    next.version = old.version + 1;
    let mut changes = env.changes(actor);
    changes.event(
        None,
        EventData::RecordUpdated { record: RecordKind::ItemType, id: old.id.0, changes: diff(&old, &next) },
    );
    changes.update(Record::ItemType(next.clone()), old.version);
    Decided { changes, output: next }
}

/// One edit of an item type's workflow.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum WorkflowEdit {
    AddStatus {
        name: String,
        category: StatusCategory,
        #[serde(default)]
        position: Option<usize>,
    },
    UpdateStatus {
        key: String,
        #[serde(default)]
        name: Option<String>,
        #[serde(default)]
        category: Option<StatusCategory>,
        #[serde(default, deserialize_with = "crate::patch::nullable")]
        public_label: Option<Option<String>>,
    },
    MoveStatus {
        key: String,
        position: usize,
    },
    /// Items in the removed status move to `replace_with`.
    RemoveStatus {
        key: String,
        replace_with: String,
    },
    SetTransitions {
        transitions: Option<Vec<Transition>>,
    },
    SetDefaults {
        defaults: WorkflowDefaults,
    },
}

#[derive(Debug, Clone)]
pub struct EditWorkflow {
    pub item_type: ItemTypeId,
    pub edit: WorkflowEdit,
}

/// Every item of a type in one status (all pages).
pub(crate) async fn items_in_status(
    store: &dyn Store,
    t: &ItemType,
    status: &str,
) -> Result<Vec<Item>, DeskError> {
    let mut query = ItemQuery::new(ItemScope::All);
    query.filter =
        ItemFilter { item_types: vec![t.id], statuses: vec![status.to_string()], ..Default::default() };
    query.limit = 500;
    let mut all = Vec::new();
    loop {
        let page = store.items(t.workspace_id, &query).await?;
        all.extend(page.items);
        match page.next {
            Some(next) => query.after = Some(next),
            None => return Ok(all),
        }
    }
}

impl Command for EditWorkflow {
    /// The type, and the items an edit moves (those in a removed or recategorised status).
    type State = (ItemType, Vec<Item>);
    type Output = ItemType;

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<Self::State, DeskError> {
        let t = load::<ItemType>(store, actor.workspace_id, self.item_type).await?;
        let affected = match &self.edit {
            WorkflowEdit::RemoveStatus { key, .. }
            | WorkflowEdit::UpdateStatus { key, category: Some(_), .. } => {
                items_in_status(store, &t, key).await?
            }
            _ => Vec::new(),
        };
        Ok((t, affected))
    }

    fn decide(
        &self,
        actor: &Actor,
        (old, affected): Self::State,
        env: &Env<'_>,
    ) -> Result<Decided<ItemType>, DeskError> {
        check(actor)?;
        let w = &old.workflow;
        let workflow = match &self.edit {
            WorkflowEdit::AddStatus { name, category, position } => {
                w.add_status(name, *category, *position)?.0
            }
            WorkflowEdit::UpdateStatus { key, name, category, public_label } => {
                w.update_status(key, name.as_deref(), *category, public_label.as_ref().map(|l| l.as_deref()))?
            }
            WorkflowEdit::MoveStatus { key, position } => w.move_status(key, *position)?,
            WorkflowEdit::RemoveStatus { key, replace_with } => w.remove_status(key, replace_with)?,
            WorkflowEdit::SetTransitions { transitions } => w.set_transitions(transitions.clone())?,
            WorkflowEdit::SetDefaults { defaults } => w.set_defaults(defaults.clone())?,
        };
        let next = ItemType { workflow, ..old.clone() };
        let mut decided = save_type(actor, env, old, next);
        move_items(&mut decided.changes, &decided.output.workflow, affected, &self.edit, env);
        Ok(decided)
    }
}

/// Re-files items whose status was removed or recategorised.
fn move_items(
    changes: &mut ChangeSet,
    workflow: &Workflow,
    affected: Vec<Item>,
    edit: &WorkflowEdit,
    env: &Env<'_>,
) {
    for item in affected {
        let mut next = item.clone();
        if let WorkflowEdit::RemoveStatus { replace_with, .. } = edit {
            next.status = replace_with.clone();
        }
        let Some(status) = workflow.status(&next.status) else { continue };
        next.category = status.category;
        next.done_at = match (item.category.is_done(), next.category.is_done()) {
            (false, true) => Some(env.now),
            (_, false) => None,
            (true, true) => item.done_at,
        };
        if next.status == item.status && next.category == item.category {
            // A recategorisation to the category the status already had moves nothing.
            continue;
        }
        next.updated_at = env.now;
        next.version = item.version + 1;
        if next.status != item.status {
            changes.event(
                Some(item.id),
                EventData::StatusChanged {
                    from: item.status.clone(),
                    to: next.status.clone(),
                    from_category: item.category,
                    to_category: next.category,
                },
            );
        } else if next.category != item.category {
            changes.event(
                Some(item.id),
                EventData::ItemUpdated {
                    changes: vec![FieldChange {
                        field: "category".into(),
                        from: serde_json::json!(item.category),
                        to: serde_json::json!(next.category),
                    }],
                },
            );
        }
        changes.update(Record::Item(next), item.version);
    }
}

/// One edit of an item type's custom fields.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum FieldEdit {
    Add {
        field: FieldDef,
        #[serde(default)]
        position: Option<usize>,
    },
    /// Changes a field's label, help, requiredness, visibility or rules. Its key and kind stay:
    /// stored values were validated for that kind.
    Update {
        key: String,
        field: FieldDef,
    },
    /// Removes the field from the type. Values already stored on items are kept (and come back
    /// if a field with the same key is added again).
    Remove {
        key: String,
    },
    Move {
        key: String,
        position: usize,
    },
}

#[derive(Debug, Clone)]
pub struct EditFields {
    pub item_type: ItemTypeId,
    pub edit: FieldEdit,
}

impl Command for EditFields {
    type State = ItemType;
    type Output = ItemType;

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<ItemType, DeskError> {
        load::<ItemType>(store, actor.workspace_id, self.item_type).await
    }

    fn decide(&self, actor: &Actor, old: ItemType, env: &Env<'_>) -> Result<Decided<ItemType>, DeskError> {
        check(actor)?;
        let mut fields = old.fields.clone();
        let find = |key: &str| {
            fields
                .iter()
                .position(|f| f.key == key)
                .ok_or_else(|| Invalid::new("key", format!("no field with key '{key}'")))
        };
        match &self.edit {
            FieldEdit::Add { field, position } => {
                let at = position.unwrap_or(fields.len());
                if at > fields.len() {
                    return Err(Invalid::new("position", format!("must be at most {}", fields.len())).into());
                }
                validate_def(field).map_err(|e| e.within("field"))?;
                if fields.iter().any(|f| f.key == field.key) {
                    return Err(Invalid::new(
                        "field.key",
                        format!("'{}' is already a field of this type", field.key),
                    )
                    .into());
                }
                fields.insert(at, field.clone());
            }
            FieldEdit::Update { key, field } => {
                let i = find(key)?;
                if field.key != *key {
                    return Err(Invalid::new("field.key", "a field's key cannot change").into());
                }
                if field.kind != fields[i].kind {
                    return Err(Invalid::new(
                        "field.kind",
                        "a field's kind cannot change; add a new field instead",
                    )
                    .into());
                }
                validate_def(field).map_err(|e| e.within("field"))?;
                fields[i] = field.clone();
            }
            FieldEdit::Remove { key } => {
                let i = find(key)?;
                fields.remove(i);
            }
            FieldEdit::Move { key, position } => {
                let i = find(key)?;
                if *position >= fields.len() {
                    return Err(Invalid::new("position", format!("must be below {}", fields.len())).into());
                }
                let f = fields.remove(i);
                fields.insert(*position, f);
            }
        }
        validate_fields(&fields)?;
        let next = ItemType { fields, ..old.clone() };
        Ok(save_type(actor, env, old, next))
    }
}

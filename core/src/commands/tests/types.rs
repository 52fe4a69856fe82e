//! Item types, their workflows and their custom fields.

use super::fixture::{Who::*, *};
use crate::commands::*;
use crate::fields::{FieldDef, FieldKind, FieldRules};
use crate::item::{Item, ItemKind, ItemType};
use crate::workflow::{Status, StatusCategory, Transition, Workflow, WorkflowDefaults};

fn new_type(name: &str, workflow: Option<Workflow>, fields: Vec<FieldDef>) -> CreateItemType {
    CreateItemType { name: name.into(), kind: ItemKind::Task, description: String::new(), workflow, fields }
}

#[test]
fn create_item_type() {
    let w = World::new();
    let mut duplicate_name = Workflow::default_workflow();
    duplicate_name.statuses[2].name = " triage ".into();
    let mut open_close = Workflow::default_workflow();
    open_close.defaults.close = "execution".into();
    let choice = field("size", "Size", FieldKind::Choice);
    table(
        &w,
        |_, _| (),
        vec![
            (
                Manager,
                new_type(" Bug ", None, vec![field("steps", "Steps", FieldKind::LongText)]),
                ok(&["+item_type:new1"], &["record.created"]).then(|_, t: &ItemType| {
                    assert_eq!((t.name.as_str(), t.kind, t.version), ("Bug", ItemKind::Task, 1));
                    assert_eq!(t.workflow, Workflow::default_workflow());
                    assert_eq!(t.fields.len(), 1);
                }),
            ),
            (
                Manager,
                new_type("Bug", Some(duplicate_name), vec![]),
                invalid("workflow.statuses[2].name", "used twice"),
            ),
            (
                Manager,
                new_type("Bug", Some(open_close), vec![]),
                invalid("workflow.defaults.close", "resolved or closed"),
            ),
            (
                Manager,
                new_type("Bug", None, vec![field("size_note", "Note", FieldKind::Text), choice]),
                invalid("fields[1].rules.options", "at least one option"),
            ),
            (
                Manager,
                new_type(
                    "Bug",
                    None,
                    vec![field("a", "A", FieldKind::Text), field("a", "Again", FieldKind::Number)],
                ),
                invalid("fields[1].key", "used twice"),
            ),
            (
                Manager,
                new_type("Bug", None, vec![field("Bad Key", "A", FieldKind::Text)]),
                invalid("fields[0].key", ""),
            ),
            (Manager, new_type("  ", None, vec![]), invalid("name", "empty")),
            (Agent, new_type("Bug", None, vec![]), forbidden("agents")),
            (CustomerA, new_type("Bug", None, vec![]), forbidden("customers")),
        ],
    );
}

#[test]
fn update_item_type() {
    let w = World::new();
    let cmd = |name: Option<&str>, description: Option<&str>| UpdateItemType {
        id: w.ticket.id,
        patch: ItemTypePatch { name: name.map(Into::into), description: description.map(Into::into) },
    };
    table(
        &w,
        |w, c: &UpdateItemType| w.get::<ItemType>(c.id).unwrap(),
        vec![
            (
                Manager,
                cmd(Some("IT support"), Some(" Anything with a plug ")),
                ok(&["item_type:ticket@1"], &["record.updated"]).then(|_, t: &ItemType| {
                    assert_eq!(
                        (t.name.as_str(), t.description.as_str(), t.version),
                        ("IT support", "Anything with a plug", 2)
                    );
                }),
            ),
            (Manager, cmd(Some(""), None), invalid("name", "empty")),
            (Agent, cmd(Some("Mine"), None), forbidden("agents")),
        ],
    );
}

/// What `EditWorkflow::load` reads: the type and the items a removal or recategorisation moves.
fn workflow_state(w: &World, c: &EditWorkflow) -> (ItemType, Vec<Item>) {
    let t: ItemType = w.get(c.item_type).unwrap();
    let affected = match &c.edit {
        WorkflowEdit::RemoveStatus { key, .. }
        | WorkflowEdit::UpdateStatus { key, category: Some(_), .. } => {
            w.items().into_iter().filter(|i| i.item_type == t.id && i.status == *key).collect()
        }
        _ => Vec::new(),
    };
    (t, affected)
}

fn keys(t: &ItemType) -> Vec<&str> {
    t.workflow.statuses.iter().map(|s| s.key.as_str()).collect()
}

#[test]
fn edit_workflow() {
    let w = World::new();
    let edit = |edit| EditWorkflow { item_type: w.ticket.id, edit };
    let add = |name: &str, position| WorkflowEdit::AddStatus {
        name: name.into(),
        category: StatusCategory::Open,
        position,
    };
    let rename = |key: &str, name: &str| WorkflowEdit::UpdateStatus {
        key: key.into(),
        name: Some(name.into()),
        category: None,
        public_label: None,
    };
    let recategorise = |key: &str, category| WorkflowEdit::UpdateStatus {
        key: key.into(),
        name: None,
        category: Some(category),
        public_label: None,
    };
    let remove = |key: &str, replace_with: &str| WorkflowEdit::RemoveStatus {
        key: key.into(),
        replace_with: replace_with.into(),
    };
    let transitions = |pairs: &[(&str, &str)]| WorkflowEdit::SetTransitions {
        transitions: Some(
            pairs.iter().map(|(f, t)| Transition { from: f.to_string(), to: t.to_string() }).collect(),
        ),
    };
    let defaults = |create: &str| WorkflowEdit::SetDefaults {
        defaults: WorkflowDefaults {
            create: create.into(),
            customer_reply: "execution".into(),
            close: "closed".into(),
        },
    };
    let type_only = || ok::<ItemType>(&["item_type:ticket@1"], &["record.updated"]);
    table(
        &w,
        workflow_state,
        vec![
            (
                Manager,
                edit(add(" In review ", Some(2))),
                type_only().then(|_, t| {
                    assert_eq!(
                        keys(t),
                        ["triage", "execution", "in_review", "waiting", "delivery", "closed"]
                    );
                    assert_eq!(t.workflow.statuses[2].name, "In review");
                    assert_eq!(t.version, 2);
                }),
            ),
            (Manager, edit(add("Triage", None)), invalid("statuses[5].name", "used twice")),
            (Manager, edit(add("", None)), invalid("name", "empty")),
            (Manager, edit(add("Later", Some(6))), invalid("position", "at most 5")),
            (
                Manager,
                edit(rename("triage", "Inbox")),
                type_only().then(|_, t| assert_eq!(t.workflow.status("triage").unwrap().name, "Inbox")),
            ),
            (Manager, edit(rename("execution", "waiting")), invalid("statuses[2].name", "used twice")),
            (Manager, edit(rename("nope", "Nope")), invalid("status", "no status with key 'nope'")),
            (
                Manager,
                edit(WorkflowEdit::UpdateStatus {
                    key: "waiting".into(),
                    name: None,
                    category: None,
                    public_label: Some(Some(" On hold ".into())),
                }),
                type_only().then(|_, t| {
                    assert_eq!(
                        t.workflow.status("waiting").unwrap().public_label.as_deref(),
                        Some("On hold")
                    );
                }),
            ),
            // Recategorising moves the items in that status to the new category.
            (
                Manager,
                edit(recategorise("triage", StatusCategory::Open)),
                ok(
                    &["item_type:ticket@1", "item:ticket_a@3", "item:ticket_b@1"],
                    &["record.updated", "item.updated@ticket_a", "item.updated@ticket_b"],
                ),
            ),
            (Manager, edit(recategorise("triage", StatusCategory::New)), type_only()),
            (
                Manager,
                edit(recategorise("closed", StatusCategory::Open)),
                invalid("defaults.close", "resolved or closed"),
            ),
            (
                Manager,
                edit(WorkflowEdit::MoveStatus { key: "closed".into(), position: 0 }),
                type_only().then(|_, t| assert_eq!(keys(t)[0], "closed")),
            ),
            (
                Manager,
                edit(WorkflowEdit::MoveStatus { key: "closed".into(), position: 5 }),
                invalid("position", "below 5"),
            ),
            // Removing moves the items in that status and the defaults pointing at it.
            (
                Manager,
                edit(remove("triage", "execution")),
                ok(
                    &["item_type:ticket@1", "item:ticket_a@3", "item:ticket_b@1"],
                    &["record.updated", "item.status_changed@ticket_a", "item.status_changed@ticket_b"],
                )
                .then(|_, t| {
                    assert_eq!(keys(t), ["execution", "waiting", "delivery", "closed"]);
                    assert_eq!(t.workflow.defaults.create, "execution");
                }),
            ),
            (Manager, edit(remove("waiting", "execution")), type_only()),
            (Manager, edit(remove("triage", "triage")), invalid("replace_with", "another status")),
            (Manager, edit(remove("triage", "ghost")), invalid("replace_with", "no status with key 'ghost'")),
            (Manager, edit(remove("closed", "execution")), invalid("replace_with", "close default")),
            (Manager, edit(remove("ghost", "triage")), invalid("status", "no status")),
            (
                Manager,
                edit(transitions(&[("triage", "execution")])),
                type_only().then(|_, t| assert_eq!(t.workflow.transitions.as_ref().map(Vec::len), Some(1))),
            ),
            (Manager, edit(transitions(&[("triage", "ghost")])), invalid("transitions[0].to", "no status")),
            (Manager, edit(transitions(&[("triage", "triage")])), invalid("transitions[0]", "itself")),
            (Manager, edit(defaults("execution")), type_only()),
            (Manager, edit(defaults("ghost")), invalid("defaults.create", "no status")),
            (Admin, edit(add("Review", None)), type_only()),
            (Agent, edit(add("Review", None)), forbidden("agents")),
            (Collaborator, edit(add("Review", None)), forbidden("collaborators")),
            (AdminRead, edit(add("Review", None)), forbidden("scope")),
        ],
    );
}

/// Items re-filed by a workflow edit get the right status, category and `done_at`, and their
/// events say what moved.
#[test]
fn workflow_edits_refile_items() {
    let mut w = World::new();
    let ticket = w.ticket.clone();
    set_status(&mut w.ticket_b, &ticket, "delivery");
    set_status(&mut w.ticket_a, &ticket, "waiting");

    // Removing a done status sends its items back to work: done_at is cleared.
    let cmd = EditWorkflow {
        item_type: ticket.id,
        edit: WorkflowEdit::RemoveStatus { key: "delivery".into(), replace_with: "execution".into() },
    };
    let decided = run(&cmd, &w.actor(Manager), workflow_state(&w, &cmd)).unwrap();
    let moved = written_items(&decided.changes);
    assert_eq!(moved.len(), 1);
    assert_eq!((moved[0].id, moved[0].status.as_str()), (w.ticket_b.id, "execution"));
    assert_eq!((moved[0].category, moved[0].done_at), (StatusCategory::InProgress, None));
    assert!(matches!(
        &decided.changes.events[1].data,
        crate::EventData::StatusChanged { from, to, from_category: StatusCategory::Resolved, to_category: StatusCategory::InProgress }
            if from == "delivery" && to == "execution"
    ));

    // Recategorising "waiting" as closed closes its items now and records the category change.
    let cmd = EditWorkflow {
        item_type: ticket.id,
        edit: WorkflowEdit::UpdateStatus {
            key: "waiting".into(),
            name: None,
            category: Some(StatusCategory::Closed),
            public_label: None,
        },
    };
    let decided = run(&cmd, &w.actor(Manager), workflow_state(&w, &cmd)).unwrap();
    let moved = written_items(&decided.changes);
    assert_eq!(moved.len(), 1);
    assert_eq!((moved[0].id, moved[0].status.as_str()), (w.ticket_a.id, "waiting"));
    assert_eq!((moved[0].category, moved[0].done_at), (StatusCategory::Closed, Some(now())));
    let crate::EventData::ItemUpdated { changes } = &decided.changes.events[1].data else { panic!() };
    assert_eq!(changes[0].field, "category");
    assert_eq!(
        (&changes[0].from, &changes[0].to),
        (&serde_json::json!("waiting"), &serde_json::json!("closed"))
    );

    // Other types' items in a status with the same key are not touched (the loader only hands
    // over the edited type's items).
    let cmd = EditWorkflow {
        item_type: w.task.id,
        edit: WorkflowEdit::RemoveStatus { key: "blocked".into(), replace_with: "doing".into() },
    };
    let decided = run(&cmd, &w.actor(Manager), workflow_state(&w, &cmd)).unwrap();
    assert!(written_items(&decided.changes).is_empty());
    let t = &decided.output;
    assert!(
        t.workflow.transitions.as_ref().unwrap().iter().all(|t| t.from != "blocked" && t.to != "blocked")
    );
    assert!(t.workflow.statuses.iter().all(|s: &Status| s.key != "blocked"));
}

fn written_items(changes: &crate::ChangeSet) -> Vec<Item> {
    changes
        .writes
        .iter()
        .filter_map(|w| match w {
            crate::Write::Put { record: crate::Record::Item(i), .. } => Some(i.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn edit_fields() {
    let w = World::new();
    let edit = |edit| EditFields { item_type: w.purchase.id, edit };
    let add = |field: FieldDef, position| FieldEdit::Add { field, position };
    let vendor = w.purchase.field("vendor").unwrap().clone();
    let update = |key: &str, field: FieldDef| FieldEdit::Update { key: key.into(), field };
    let type_only = || ok::<ItemType>(&["item_type:purchase@1"], &["record.updated"]);
    table(
        &w,
        |w, c: &EditFields| w.get::<ItemType>(c.item_type).unwrap(),
        vec![
            (
                Manager,
                edit(add(field("ticket_ref", "Ticket reference", FieldKind::Text), Some(0))),
                type_only().then(|_, t| {
                    assert_eq!(t.fields[0].key, "ticket_ref");
                    assert_eq!(t.fields.len(), 7);
                }),
            ),
            (
                Manager,
                edit(add(field("urgent", "Urgent", FieldKind::Checkbox), None)),
                type_only().then(|_, t| assert_eq!(t.fields[6].key, "urgent")),
            ),
            (
                Manager,
                edit(add(field("vendor", "Vendor again", FieldKind::Text), None)),
                invalid("field.key", "already"),
            ),
            (
                Manager,
                edit(add(field("size", "Size", FieldKind::MultiChoice), None)),
                invalid("field.rules.options", ""),
            ),
            (Manager, edit(add(field("Bad key", "Bad", FieldKind::Text), None)), invalid("field.key", "")),
            (
                Manager,
                edit(add(field("late", "Late", FieldKind::Date), Some(7))),
                invalid("position", "at most 6"),
            ),
            (
                Manager,
                edit(update(
                    "vendor",
                    FieldDef { label: "Supplier".into(), required: true, ..vendor.clone() },
                )),
                type_only().then(|_, t| {
                    let f = t.field("vendor").unwrap();
                    assert_eq!((f.label.as_str(), f.required), ("Supplier", true));
                }),
            ),
            (
                Manager,
                edit(update("vendor", FieldDef { kind: FieldKind::LongText, ..vendor.clone() })),
                invalid("field.kind", "cannot change"),
            ),
            (
                Manager,
                edit(update("vendor", FieldDef { key: "supplier".into(), ..vendor.clone() })),
                invalid("field.key", "cannot change"),
            ),
            (
                Manager,
                edit(update(
                    "vendor",
                    FieldDef {
                        rules: FieldRules { min: Some(5.0), max: Some(1.0), ..FieldRules::default() },
                        ..vendor.clone()
                    },
                )),
                invalid("field.rules.min", "greater than max"),
            ),
            (Manager, edit(update("ghost", vendor.clone())), invalid("key", "no field with key 'ghost'")),
            (
                Manager,
                edit(FieldEdit::Remove { key: "cost_centre".into() }),
                type_only().then(|_, t| assert!(t.field("cost_centre").is_none() && t.fields.len() == 5)),
            ),
            (Manager, edit(FieldEdit::Remove { key: "ghost".into() }), invalid("key", "no field")),
            (
                Manager,
                edit(FieldEdit::Move { key: "budget".into(), position: 5 }),
                type_only().then(|_, t| assert_eq!(t.fields[5].key, "budget")),
            ),
            (
                Manager,
                edit(FieldEdit::Move { key: "budget".into(), position: 6 }),
                invalid("position", "below 6"),
            ),
            (Agent, edit(FieldEdit::Remove { key: "vendor".into() }), forbidden("agents")),
            (CustomerA, edit(FieldEdit::Remove { key: "vendor".into() }), forbidden("customers")),
        ],
    );
}

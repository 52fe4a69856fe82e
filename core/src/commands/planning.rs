//! Planning commands: working calendars of the workspace and of people. (Planning fields of a
//! task change through `UpdateItem`'s `plan`; dependencies through `LinkItems` with timing.)

use serde::Deserialize;

use crate::access::{Action, Actor, Target, can};
use crate::change::{Record, RecordKind};
use crate::desk::{Command, Decided, Env, load};
use crate::diff::diff;
use crate::error::{DeskError, Invalid};
use crate::event::EventData;
use crate::people::User;
use crate::planning::{CalendarOwner, WorkCalendar, calendars_from};
use crate::schedule::{Exception, WeekPattern};
use crate::store::{self, Store};

/// The body of a calendar write: the whole calendar (it replaces the stored one).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarBody {
    /// Required for the workspace calendar; a person without one works the workspace's week.
    #[serde(default)]
    pub week: Option<WeekPattern>,
    #[serde(default)]
    pub exceptions: Vec<Exception>,
    /// The version the client last read; a stale one is refused with 409.
    #[serde(default)]
    pub version: Option<i64>,
}

/// Creates or replaces the workspace's calendar (managers and administrators) or a person's
/// (that person, or whoever manages people).
#[derive(Debug, Clone)]
pub struct SetCalendar {
    pub owner: CalendarOwner,
    pub body: CalendarBody,
}

impl Command for SetCalendar {
    type State = (Option<WorkCalendar>, Option<User>);
    type Output = WorkCalendar;

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<Self::State, DeskError> {
        let ws = actor.workspace_id;
        let id = WorkCalendar::id_for(ws, self.owner);
        let existing = store::get::<WorkCalendar>(store, ws, id.0).await?;
        let user = match self.owner {
            CalendarOwner::Workspace => None,
            CalendarOwner::User(u) => Some(load::<User>(store, ws, u).await?),
        };
        Ok((existing, user))
    }

    fn decide(
        &self,
        actor: &Actor,
        (existing, user): Self::State,
        env: &Env<'_>,
    ) -> Result<Decided<WorkCalendar>, DeskError> {
        match &user {
            None => can(actor, Action::ManageStructure, Target::Workspace).into_result()?,
            // People keep their own calendar with any token that may write.
            Some(u) if actor.user_id() == Some(u.id) && actor.is_staff() => {
                can(actor, Action::EditItem, Target::Workspace).into_result()?
            }
            Some(u) => can(actor, Action::ManageUsers, Target::Person { current: Some(u), new_role: u.role })
                .into_result()?,
        }
        let b = &self.body;
        match (b.version, &existing) {
            (Some(expected), Some(e)) if expected != e.version => {
                return Err(DeskError::Conflict(format!(
                    "the calendar is at version {}, not {expected}; reload it and try again",
                    e.version
                )));
            }
            (Some(_), None) => {
                return Err(DeskError::Conflict(
                    "no calendar is stored yet; send no version to create it".into(),
                ));
            }
            _ => {}
        }
        if self.owner == CalendarOwner::Workspace && b.week.is_none() {
            return Err(Invalid::new("week", "the workspace calendar needs a week pattern").into());
        }
        let next = WorkCalendar {
            id: WorkCalendar::id_for(actor.workspace_id, self.owner),
            workspace_id: actor.workspace_id,
            owner: self.owner,
            week: b.week.clone(),
            exceptions: b.exceptions.clone(),
            updated_at: env.now,
            version: existing.as_ref().map_or(1, |e| e.version + 1),
        };
        // Checked exactly as scheduling will read it: field names without the `calendars.*` prefix.
        calendars_from(std::slice::from_ref(&next)).map_err(|e| strip_prefix(e, &next))?;
        let mut changes = env.changes(actor);
        match &existing {
            None => {
                let name = match (self.owner, &user) {
                    (CalendarOwner::User(_), Some(u)) => format!("calendar of {}", u.name),
                    _ => "workspace calendar".to_string(),
                };
                changes.event(
                    None,
                    EventData::RecordCreated { record: RecordKind::Calendar, id: next.id.0, name },
                );
                changes.insert(Record::Calendar(next.clone()));
            }
            Some(old) => {
                let mut field_changes = diff(old, &next);
                field_changes.retain(|c| c.field != "updated_at");
                if field_changes.is_empty() {
                    return Ok(Decided { changes, output: old.clone() });
                }
                changes.event(
                    None,
                    EventData::RecordUpdated {
                        record: RecordKind::Calendar,
                        id: next.id.0,
                        changes: field_changes,
                    },
                );
                changes.update(Record::Calendar(next.clone()), old.version);
            }
        }
        Ok(Decided { changes, output: next })
    }
}

/// `calendars.workspace.exceptions[1]` → `exceptions[1]`: the client wrote one calendar.
fn strip_prefix(mut e: Invalid, calendar: &WorkCalendar) -> Invalid {
    let prefix = match calendar.owner {
        CalendarOwner::Workspace => "calendars.workspace".to_string(),
        CalendarOwner::User(u) => format!("calendars.users[{u}]"),
    };
    if let Some(rest) = e.field.strip_prefix(&prefix) {
        e.field = rest.trim_start_matches('.').to_string();
        if e.field.is_empty() {
            e.field = "calendar".into();
        }
    }
    e
}

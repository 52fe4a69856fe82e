//! `tandem-core` — the pure domain of Tandem, a helpdesk and project-management engine.
//!
//! Sans-IO: nothing here reads a clock, a socket, a file or the environment. Time and new ids are
//! parameters ([`Clock`], [`IdSource`]); storage is the [`Store`] port; every change goes through
//! [`Desk::execute`] as a [`Command`] whose `decide` step is a pure function.

pub mod access;
pub mod automation;
pub mod change;
pub mod chat;
pub mod commands;
pub mod conversation;
pub mod credentials;
pub mod desk;
pub mod diff;
pub mod error;
pub mod event;
pub mod export;
pub mod fields;
pub mod flows;
pub mod hierarchy;
pub mod ids;
pub mod import;
pub mod item;
pub mod job;
pub mod kb;
pub mod mail;
pub mod membership;
pub mod patch;
pub mod people;
pub mod planning;
pub mod plugins;
mod queries;
pub mod reports;
pub mod schedule;
pub mod store;
pub mod timesheet;
pub mod views;
pub mod webhook;
pub mod workflow;

pub use access::{Action, Actor, ActorKind, Decision, Target, can};
pub use change::{ChangeSet, CommitReceipt, NewJob, Record, RecordKind, Write};
pub use conversation::{Attachment, Body, EmailMeta, Message, Visibility};
pub use credentials::{
    Credential, Session, SignInLink, SignInMethod, SignInPolicy, Throttle, ThrottlePolicy,
};
pub use desk::{Command, Decided, Desk, Env, ItemRef, Limits, ThenError};
pub use error::{DeskError, Invalid, StoreError};
pub use event::{Event, EventData, FieldChange, NewEvent};
pub use fields::{FieldDef, FieldKind, FieldRules};
pub use hierarchy::{Folder, Portfolio, Project, Workspace};
pub use ids::*;
pub use item::{ActorRef, Assignee, Channel, Item, ItemKind, ItemLink, ItemType, LinkKind, Priority};
pub use job::{JobFailure, JobHandler};
pub use mail::{InboundMail, MailSettings};
pub use membership::{
    JoinRequest, JoinState, PortalBranding, PortalSettings, PortalVisibility, ProjectMember, ProjectRole,
    WebForm,
};
pub use people::{ApiToken, Notification, NotificationKind, Organization, Role, Team, TokenScope, User};
pub use planning::{CalendarOwner, DependencyTiming, TaskPlan, WorkCalendar};
pub use plugins::{PluginInstallation, PluginState};
pub use store::{ItemFilter, ItemQuery, ItemScope, Page, PortalScope, SortKey, Store, UserFilter};
pub use timesheet::{EntryStatus, TimeEntry};
pub use webhook::{EventCursor, Webhook};
pub use workflow::{Status, StatusCategory, Transition, Workflow, WorkflowDefaults};

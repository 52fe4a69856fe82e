//! Every command `Desk::execute` runs. Each has a `load` (reads) and a pure `decide`.

mod access;
mod automation;
mod chat;
mod conversation;
mod flows;
mod import;
mod items;
mod kb;
mod mail;
mod notify;
mod people;
mod planning;
mod reports;
mod sign_in;
mod structure;
mod timesheet;
mod types;
mod views;
mod web;
mod webhooks;

pub use access::{
    ConfigurePortal, CreateOrganization, DecideJoinRequest, DeleteOrganization, DomainState,
    MAX_CONTACTS_JOINED, OrganizationPatch, RemoveProjectMember, RequestToJoin, SetProjectMember,
    UpdateOrganization,
};
pub use automation::{
    CreateRule, DeleteRule, DeliverAutomation, DryRun, FireTimedRule, ReorderRules, RulePatch, RunFilter,
    TimedState, UpdateRule,
};
pub use chat::{ChatParty, ChatState, EndChat, EndChatState, PostChatMessage, StartChat, TakeChat};
pub use conversation::{AddAttachment, MarkNotificationRead, NewFile, PostMessage, Posted};
pub use flows::{
    CreateFlow, CreateHookEndpoint, DeleteFlow, DeleteHookEndpoint, FlowsRelayed, Polled, RecordFlowStep,
    RecordPoll, RelayFlowEvents, ReplayFlowRun, ScheduleFlowPolls, SeenItem, SetFlowEnabled, StepState,
    TriggerFlow, Triggered, UpdateFlow, event_payload, run_job, starts_flows,
    token_matches as hook_token_matches,
};
pub use import::ImportItems;
pub(crate) use items::move_to_status;
pub use items::{
    ChangeFollowers, ConvertItem, CreateItem, ItemPatch, LinkItems, SetAssignees, TransitionItem,
    TransitionTo, UnlinkItems, UpdateItem,
};
pub use kb::{
    ArticlePatch, ArticleRefs, CreateArticle, CreateKbCategory, DeleteArticle, DeleteKbCategory,
    KbCategoryPatch, UpdateArticle, UpdateKbCategory,
};
pub use mail::{ConfigureMail, MailState, ReceiveEmail, Received};
pub use notify::{
    FIRST_RUN_HORIZON_MINUTES, MAIL_NOTIFICATIONS, Notice, Notified, NotifyFollowers, NotifyState,
    RecordOutboundMail, RecordedMail, notice, notification_key, recipients,
};
pub use people::{
    CreateTeam, CreateUser, IssueToken, RevokeToken, TeamPatch, UpdateTeam, UpdateUser, UserPatch,
};
pub use planning::{CalendarBody, SetCalendar};
pub use reports::{
    CreateReport, DeleteReport, DeliverReport, QueueReport, REPORT_TEMPLATE, ReportFile, ReportPatch,
    UpdateReport,
};
pub use sign_in::{EndSession, RequestSignInLink, SetPassword, StartSession, UseSignInLink};
pub use structure::{
    CreateFolder, CreatePortfolio, CreateProject, CreateWorkspace, DeleteFolder, DeletePortfolio,
    FolderPatch, PortfolioPatch, ProjectPatch, RenameWorkspace, UpdateFolder, UpdatePortfolio, UpdateProject,
};
pub use timesheet::{
    ControlTimer, DeleteTimeEntry, EditTimeEntry, LogTime, Review, ReviewTime, StartTimer, SubmitTime,
    TimeEntryPatch, TimerAction,
};
pub use types::{
    CreateItemType, EditFields, EditWorkflow, FieldEdit, ItemTypePatch, UpdateItemType, WorkflowEdit,
};
pub(crate) use views::views_admin;
pub use views::{CreateView, DeleteView, UpdateView, ViewPatch};
pub use web::{Guest, PortalFace, SubmitForm};
pub use webhooks::{
    CreateWebhook, DeleteWebhook, RelayEvents, RelayState, Relayed, UpdateWebhook, WebhookPatch, delivery_key,
};

#[cfg(test)]
mod tests;

//! `tandem user|token|org|team|member|join-request|plugin|flow …`: administering people, API
//! tokens, organizations, teams, project memberships, join requests, plugins and flows from the
//! command line, on the `--db` store, through the same `Desk` commands as the API (acting as the server
//! administrator). The binary prints [`Done::output`] on stdout, or the error on stderr and exits
//! with [`Failed::code`].

use std::sync::Arc;

use tandem_core::commands::{
    CreateFlow, CreateOrganization, CreateTeam, CreateUser, DecideJoinRequest, DeleteFlow, IssueToken,
    OrganizationPatch, RemoveProjectMember, ReplayFlowRun, RevokeToken, SetFlowEnabled, SetPassword,
    SetProjectMember, UpdateFlow, UpdateOrganization, UpdateUser, UserPatch,
};
use tandem_core::conversation::sha256_hex;
use tandem_core::credentials::check_password;
use tandem_core::flows::{Flow, FlowRun, FlowTrigger};
use tandem_core::people::normalise_email;
use tandem_core::plugins::{
    ApprovePlugin, InstallPlugin, PluginView, RemovePlugin, SetPluginEnabled, UpgradePlugin,
};
use tandem_core::store::{self, RecordQuery};
use tandem_core::{
    Actor, Desk, DeskError, FlowId, FlowRunId, JoinRequest, JoinRequestId, Limits, Organization, ProjectId,
    ProjectRole, Role, Team, TokenId, TokenScope, User, UserId, Workspace, WorkspaceId,
};

use crate::backend::{Backend, BackendOptions, DbLocation};
use crate::runtime::{SystemClock, UuidV7Ids};

/// Exit codes: 0 done; 1 the database failed; 2 the command line is wrong (clap's own);
/// 3 a value is invalid; 4 something named does not exist; 5 refused (a conflict, such as an
/// address already in use).
pub const EXIT_STORAGE: u8 = 1;
pub const EXIT_INVALID: u8 = 3;
pub const EXIT_NOT_FOUND: u8 = 4;
pub const EXIT_REFUSED: u8 = 5;

#[derive(Debug, Clone)]
pub enum AdminCommand {
    UserAdd {
        name: String,
        email: Option<String>,
        handle: Option<String>,
        role: Role,
        password: Option<String>,
    },
    UserList,
    UserDisable {
        who: String,
    },
    TokenCreate {
        user: String,
        name: String,
        scope: TokenScope,
    },
    TokenRevoke {
        id: String,
    },
    OrgAdd {
        name: String,
        domains: Vec<String>,
    },
    OrgList,
    /// Replaces the domains of an organization named by id or name.
    OrgDomains {
        organization: String,
        domains: Vec<String>,
    },
    TeamAdd {
        name: String,
        members: Vec<String>,
    },
    TeamList,
    MemberSet {
        project: ProjectId,
        user: String,
        role: ProjectRole,
    },
    MemberRemove {
        project: ProjectId,
        user: String,
    },
    MemberList {
        project: ProjectId,
    },
    JoinList {
        project: ProjectId,
    },
    JoinDecide {
        id: JoinRequestId,
        approve: bool,
        role: Option<ProjectRole>,
    },
    /// Installs (or, with `upgrade`, upgrades) a plugin from its files.
    PluginInstall {
        file: std::path::PathBuf,
        manifest: std::path::PathBuf,
        approve: bool,
        upgrade: bool,
    },
    PluginList,
    PluginApprove {
        plugin: String,
    },
    PluginEnable {
        plugin: String,
        enabled: bool,
    },
    PluginRemove {
        plugin: String,
    },
    FlowList,
    FlowShow {
        flow: FlowId,
    },
    /// Creates (`flow: None`) or replaces a flow from a JSON file: the API's create body.
    FlowSave {
        flow: Option<FlowId>,
        file: std::path::PathBuf,
    },
    FlowEnable {
        flow: FlowId,
        enabled: bool,
    },
    FlowDelete {
        flow: FlowId,
    },
    FlowRuns {
        flow: FlowId,
        limit: usize,
    },
    FlowReplay {
        run: FlowRunId,
    },
}

#[derive(Debug)]
pub struct Failed {
    pub code: u8,
    pub message: String,
}

impl Failed {
    pub fn new(code: u8, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }
}

impl From<DeskError> for Failed {
    fn from(e: DeskError) -> Self {
        match e {
            DeskError::Invalid(i) => Failed::new(EXIT_INVALID, format!("{}: {}", i.field, i.reason)),
            DeskError::NotFound(what) => Failed::new(EXIT_NOT_FOUND, format!("{what} not found")),
            DeskError::Forbidden(why) | DeskError::Conflict(why) | DeskError::RateLimited(why) => {
                Failed::new(EXIT_REFUSED, why)
            }
            DeskError::TooLarge { what, .. } => Failed::new(EXIT_INVALID, format!("{what} is too large")),
            DeskError::Store(e) => Failed::new(EXIT_STORAGE, format!("the database failed: {e}")),
        }
    }
}

impl From<tandem_core::StoreError> for Failed {
    fn from(e: tandem_core::StoreError) -> Self {
        DeskError::from(e).into()
    }
}

/// What a successful command prints.
#[derive(Debug)]
pub struct Done {
    pub output: String,
}

/// Opens the database, runs one command and closes it again.
pub async fn run(
    db: &DbLocation,
    options: &BackendOptions,
    workspace: Option<WorkspaceId>,
    command: AdminCommand,
) -> Result<Done, Failed> {
    let backend =
        Backend::open(db, options).await.map_err(|e| Failed::new(EXIT_STORAGE, format!("{e:#}")))?;
    let desk = Desk::new(backend.store(), Arc::new(SystemClock), Arc::new(UuidV7Ids), Limits::default());
    let result = match resolve_workspace(&desk, workspace).await {
        Ok(ws) => execute(&desk, &Actor::server_admin(ws), command).await,
        Err(e) => Err(e),
    };
    backend.close().await;
    result
}

pub(crate) async fn resolve_workspace(
    desk: &Desk,
    wanted: Option<WorkspaceId>,
) -> Result<WorkspaceId, Failed> {
    let store = desk.store().as_ref();
    match wanted {
        Some(ws) => store::get::<Workspace>(store, ws, ws.0)
            .await?
            .map(|w| w.id)
            .ok_or_else(|| Failed::new(EXIT_NOT_FOUND, format!("workspace {ws} not found"))),
        None => store.workspaces().await?.first().map(|w| w.id).ok_or_else(|| {
            Failed::new(EXIT_NOT_FOUND, "the database has no workspace yet; create one first")
        }),
    }
}

/// A user by id or email address.
async fn find_user(desk: &Desk, actor: &Actor, who: &str) -> Result<User, Failed> {
    let store = desk.store().as_ref();
    let ws = actor.workspace_id;
    let found = match who.trim().parse::<UserId>() {
        Ok(id) => store::get::<User>(store, ws, id.0).await?,
        Err(_) => {
            let email = normalise_email("user", who).map_err(|e| Failed::new(EXIT_INVALID, e.reason))?;
            store.user_by_email(ws, &email).await?
        }
    };
    found.ok_or_else(|| Failed::new(EXIT_NOT_FOUND, format!("no user '{}' in workspace {ws}", who.trim())))
}

fn describe(u: &User) -> String {
    let state = if u.active { "active" } else { "disabled" };
    let role = format!("{:?}", u.role).to_lowercase();
    format!("{}\t{role}\t{state}\t{}\t{}", u.id, u.email.as_deref().unwrap_or("-"), u.name)
}

fn lowercase<T: std::fmt::Debug>(value: T) -> String {
    format!("{value:?}").to_lowercase()
}

fn describe_org(o: &Organization) -> String {
    format!("{}\t{}\t{}", o.id, o.name, if o.domains.is_empty() { "-".into() } else { o.domains.join(",") })
}

fn describe_team(t: &Team) -> String {
    let members: Vec<String> = t.members.iter().map(ToString::to_string).collect();
    format!("{}\t{}\t{}", t.id, t.name, if members.is_empty() { "-".into() } else { members.join(",") })
}

fn describe_request(r: &JoinRequest) -> String {
    format!("{}\t{}\t{}\t{}", r.id, lowercase(r.state), r.user, lowercase(r.role))
}

fn lines<T>(items: &[T], describe: impl Fn(&T) -> String) -> Done {
    Done { output: items.iter().map(describe).collect::<Vec<_>>().join("\n") }
}

/// An organization by id or (case-insensitive) name.
async fn find_org(desk: &Desk, actor: &Actor, which: &str) -> Result<Organization, Failed> {
    let all: Vec<Organization> = desk.directory(actor, &RecordQuery::all()).await?;
    let which = which.trim();
    let by_id = which.parse::<tandem_core::OrganizationId>().ok();
    all.into_iter()
        .find(|o| Some(o.id) == by_id || o.name.eq_ignore_ascii_case(which))
        .ok_or_else(|| Failed::new(EXIT_NOT_FOUND, format!("no organization '{which}'")))
}

fn describe_plugin(p: &PluginView) -> String {
    let state = match (p.enabled, p.approved) {
        (false, _) => "disabled",
        (true, false) => "awaiting-approval",
        (true, true) => "enabled",
    };
    let hosts = if p.requested_hosts.is_empty() { "-".to_string() } else { p.requested_hosts.join(",") };
    format!("{}\t{}\t{state}\t{hosts}", p.plugin, p.plugin_version)
}

async fn plugin_files(
    file: &std::path::Path,
    manifest: &std::path::Path,
) -> Result<(Vec<u8>, String), Failed> {
    let wasm = tokio::fs::read(file)
        .await
        .map_err(|e| Failed::new(EXIT_INVALID, format!("cannot read {}: {e}", file.display())))?;
    let text = tokio::fs::read_to_string(manifest)
        .await
        .map_err(|e| Failed::new(EXIT_INVALID, format!("cannot read {}: {e}", manifest.display())))?;
    Ok((wasm, text))
}

fn flow_state(f: &Flow) -> &'static str {
    match (f.enabled, &f.paused_reason) {
        (true, _) => "enabled",
        (false, Some(_)) => "paused",
        (false, None) => "disabled",
    }
}

fn trigger_name(t: &FlowTrigger) -> &'static str {
    match t {
        FlowTrigger::Event { .. } => "event",
        FlowTrigger::PluginPoll { .. } => "plugin_poll",
        FlowTrigger::PluginWebhook { .. } => "plugin_webhook",
        FlowTrigger::IncomingWebhook => "incoming_webhook",
    }
}

/// `id state trigger steps name`.
fn describe_flow(f: &Flow) -> String {
    format!("{}\t{}\t{}\t{}\t{}", f.id, flow_state(f), trigger_name(&f.trigger), f.steps.len(), f.name)
}

/// `id status attempt started steps-done error`.
fn describe_run(r: &FlowRun) -> String {
    let done = r.next_step();
    let error = r.error.as_deref().unwrap_or("-").replace(['\n', '\t'], " ");
    format!(
        "{}\t{}\t{}\t{}\t{done}\t{error}",
        r.id,
        serde_json::to_value(r.status).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default(),
        r.attempt,
        r.started_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    )
}

/// Reads a flow definition file: the JSON the API takes to create one (`enabled` and `version`
/// optional). Nothing is written when it is unreadable or invalid.
async fn flow_file(
    file: &std::path::Path,
) -> Result<(tandem_core::flows::FlowSpec, Option<bool>, Option<i64>), Failed> {
    let text = tokio::fs::read_to_string(file)
        .await
        .map_err(|e| Failed::new(EXIT_INVALID, format!("cannot read {}: {e}", file.display())))?;
    let body: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Failed::new(EXIT_INVALID, format!("{} is not JSON: {e}", file.display())))?;
    crate::api::flows::spec_of(&body)
        .map_err(|i| Failed::new(EXIT_INVALID, format!("{}: {}", i.field, i.reason)))
}

/// The plugins a flow names must be installed, as the API checks.
async fn flow_plugins_known(
    desk: &Desk,
    actor: &Actor,
    spec: &tandem_core::flows::FlowSpec,
) -> Result<(), Failed> {
    if tandem_core::flows::plugin_uses(&spec.trigger, &spec.steps).is_empty() {
        return Ok(());
    }
    let plugins = crate::plugins::Plugins::new(desk.clone(), crate::plugins::Plugins::host_config(false))
        .map_err(|e| Failed::new(EXIT_STORAGE, format!("cannot start the plugin host: {e}")))?;
    let runtime: Arc<dyn tandem_integrations::PluginRuntime> = Arc::new(plugins);
    tandem_integrations::flows::check_plugins(Some(&runtime), actor.workspace_id, &spec.trigger, &spec.steps)
        .await
        .map_err(|i| Failed::new(EXIT_INVALID, format!("{}: {}", i.field, i.reason)))
}

async fn execute(desk: &Desk, actor: &Actor, command: AdminCommand) -> Result<Done, Failed> {
    match command {
        AdminCommand::FlowList => Ok(lines(&desk.flows(actor).await?, describe_flow)),
        AdminCommand::FlowShow { flow } => {
            let f = desk.flow(actor, flow).await?;
            let poll = desk.flow_poll_state(actor, flow).await?;
            let mut shown = serde_json::to_value(&f).map_err(|e| Failed::new(EXIT_STORAGE, e.to_string()))?;
            shown["state"] = serde_json::Value::from(flow_state(&f));
            if let Some(p) = poll {
                shown["poll"] =
                    serde_json::to_value(&p).map_err(|e| Failed::new(EXIT_STORAGE, e.to_string()))?;
            }
            let output =
                serde_json::to_string_pretty(&shown).map_err(|e| Failed::new(EXIT_STORAGE, e.to_string()))?;
            Ok(Done { output })
        }
        AdminCommand::FlowSave { flow, file } => {
            // Who may is checked before the file is read, as the API does.
            desk.flows(actor).await?;
            let (spec, enabled, version) = flow_file(&file).await?;
            if let Some(id) = flow {
                desk.flow(actor, id).await?;
            }
            flow_plugins_known(desk, actor, &spec).await?;
            let saved = match flow {
                None => desk.execute(actor, &CreateFlow { spec, enabled: enabled.unwrap_or(true) }).await?,
                Some(id) => desk.execute(actor, &UpdateFlow { id, spec, version }).await?,
            };
            Ok(Done { output: describe_flow(&saved) })
        }
        AdminCommand::FlowEnable { flow, enabled } => {
            let f = desk.execute(actor, &SetFlowEnabled { id: flow, enabled }).await?;
            Ok(Done { output: describe_flow(&f) })
        }
        AdminCommand::FlowDelete { flow } => {
            desk.execute(actor, &DeleteFlow { id: flow }).await?;
            Ok(Done { output: format!("{flow}\tdeleted") })
        }
        AdminCommand::FlowRuns { flow, limit } => {
            Ok(lines(&desk.flow_runs(actor, flow, limit.clamp(1, 500)).await?, describe_run))
        }
        AdminCommand::FlowReplay { run } => {
            let r = desk.execute(actor, &ReplayFlowRun { run }).await?;
            Ok(Done { output: describe_run(&r) })
        }
        AdminCommand::PluginInstall { file, manifest, approve, upgrade } => {
            desk.may_manage_plugins(actor)?;
            let (wasm, text) = plugin_files(&file, &manifest).await?;
            let plugins =
                crate::plugins::Plugins::new(desk.clone(), crate::plugins::Plugins::host_config(false))
                    .map_err(|e| Failed::new(EXIT_STORAGE, format!("cannot start the plugin host: {e}")))?;
            let package = plugins.package(&text, wasm).await?;
            let view = if upgrade {
                desk.execute(actor, &UpgradePlugin { package }).await?
            } else {
                desk.execute(actor, &InstallPlugin { package, approve, config: serde_json::Value::Null })
                    .await?
            };
            Ok(Done { output: describe_plugin(&view) })
        }
        AdminCommand::PluginList => Ok(lines(&desk.plugins(actor).await?, describe_plugin)),
        AdminCommand::PluginApprove { plugin } => {
            let view = desk.execute(actor, &ApprovePlugin { plugin, hosts: None, secrets: None }).await?;
            Ok(Done { output: describe_plugin(&view) })
        }
        AdminCommand::PluginEnable { plugin, enabled } => {
            let view = desk.execute(actor, &SetPluginEnabled { plugin, enabled }).await?;
            Ok(Done { output: describe_plugin(&view) })
        }
        AdminCommand::PluginRemove { plugin } => {
            desk.execute(actor, &RemovePlugin { plugin: plugin.clone() }).await?;
            Ok(Done { output: format!("{plugin}\tremoved") })
        }
        AdminCommand::UserAdd { name, email, handle, role, password } => {
            if let Some(password) = &password {
                check_password("password", password, email.as_deref(), &name)
                    .map_err(|e| Failed::new(EXIT_INVALID, format!("{}: {}", e.field, e.reason)))?;
            }
            let user = desk.execute(actor, &CreateUser { name, email, handle, role }).await?;
            if let Some(password) = password {
                let password_phc = crate::sign_in::hash_password(password)
                    .await
                    .map_err(|e| Failed::new(EXIT_STORAGE, e.message))?;
                desk.execute(actor, &SetPassword { user: user.id, password_phc, keep_session: None }).await?;
            }
            Ok(Done { output: describe(&user) })
        }
        AdminCommand::UserList => {
            let users: Vec<User> = desk.directory(actor, &RecordQuery::all()).await?;
            let lines: Vec<String> = users.iter().map(describe).collect();
            Ok(Done { output: lines.join("\n") })
        }
        AdminCommand::UserDisable { who } => {
            let user = find_user(desk, actor, &who).await?;
            let patch = UserPatch { active: Some(false), ..UserPatch::default() };
            let user = desk.execute(actor, &UpdateUser { id: user.id, patch }).await?;
            Ok(Done { output: describe(&user) })
        }
        AdminCommand::TokenCreate { user, name, scope } => {
            let user = find_user(desk, actor, &user).await?;
            let secret = crate::api::new_secret().map_err(|e| Failed::new(EXIT_STORAGE, e.message))?;
            let cmd = IssueToken { user: user.id, name, scope, secret_sha256: sha256_hex(secret.as_bytes()) };
            let token = desk.execute(actor, &cmd).await?;
            Ok(Done { output: format!("{}\t{secret}", token.id) })
        }
        AdminCommand::TokenRevoke { id } => {
            let id = id
                .trim()
                .parse::<TokenId>()
                .map_err(|_| Failed::new(EXIT_INVALID, format!("'{}' is not a token id", id.trim())))?;
            let token = desk.execute(actor, &RevokeToken { id }).await?;
            Ok(Done { output: format!("{}\trevoked", token.id) })
        }
        AdminCommand::OrgAdd { name, domains } => {
            let org = desk.execute(actor, &CreateOrganization { name, domains }).await?;
            Ok(Done { output: describe_org(&org) })
        }
        AdminCommand::OrgList => {
            let all: Vec<Organization> = desk.directory(actor, &RecordQuery::all()).await?;
            Ok(lines(&all, describe_org))
        }
        AdminCommand::OrgDomains { organization, domains } => {
            let org = find_org(desk, actor, &organization).await?;
            let patch = OrganizationPatch { name: None, domains: Some(domains) };
            let org = desk.execute(actor, &UpdateOrganization { id: org.id, patch }).await?;
            Ok(Done { output: describe_org(&org) })
        }
        AdminCommand::TeamAdd { name, members } => {
            let mut ids = Vec::with_capacity(members.len());
            for m in &members {
                ids.push(find_user(desk, actor, m).await?.id);
            }
            let team = desk.execute(actor, &CreateTeam { name, members: ids }).await?;
            Ok(Done { output: describe_team(&team) })
        }
        AdminCommand::TeamList => {
            let all: Vec<Team> = desk.directory(actor, &RecordQuery::all()).await?;
            Ok(lines(&all, describe_team))
        }
        AdminCommand::MemberSet { project, user, role } => {
            let user = find_user(desk, actor, &user).await?;
            let m = desk.execute(actor, &SetProjectMember { project, user: user.id, role }).await?;
            Ok(Done { output: format!("{}\t{}\t{}", m.project, m.user, lowercase(m.role)) })
        }
        AdminCommand::MemberRemove { project, user } => {
            let user = find_user(desk, actor, &user).await?;
            desk.execute(actor, &RemoveProjectMember { project, user: user.id }).await?;
            Ok(Done { output: format!("{project}\t{}\tremoved", user.id) })
        }
        AdminCommand::MemberList { project } => {
            let members = desk.project_members(actor, project).await?;
            Ok(lines(&members, |m| format!("{}\t{}", m.user, lowercase(m.role))))
        }
        AdminCommand::JoinList { project } => {
            let requests: Vec<JoinRequest> = desk.join_requests(actor, project).await?;
            Ok(lines(&requests, describe_request))
        }
        AdminCommand::JoinDecide { id, approve, role } => {
            let r = desk.execute(actor, &DecideJoinRequest { id, approve, role }).await?;
            Ok(Done { output: describe_request(&r) })
        }
    }
}

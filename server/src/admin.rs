//! `tandem user|token|org|team|member|join-request …`: administering people, API tokens,
//! organizations, teams, project memberships and join requests from the command line, on the `--db` store, through the same `Desk` commands as the API (acting as the server
//! administrator). The binary prints [`Done::output`] on stdout, or the error on stderr and exits
//! with [`Failed::code`].

use std::sync::Arc;

use tandem_core::commands::{
    CreateOrganization, CreateTeam, CreateUser, DecideJoinRequest, IssueToken, OrganizationPatch,
    RemoveProjectMember, RevokeToken, SetPassword, SetProjectMember, UpdateOrganization, UpdateUser,
    UserPatch,
};
use tandem_core::conversation::sha256_hex;
use tandem_core::credentials::check_password;
use tandem_core::people::normalise_email;
use tandem_core::store::{self, RecordQuery};
use tandem_core::{
    Actor, Desk, DeskError, JoinRequest, JoinRequestId, Limits, Organization, ProjectId, ProjectRole, Role,
    Team, TokenId, TokenScope, User, UserId, Workspace, WorkspaceId,
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
            DeskError::Forbidden(why) | DeskError::Conflict(why) => Failed::new(EXIT_REFUSED, why),
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

async fn execute(desk: &Desk, actor: &Actor, command: AdminCommand) -> Result<Done, Failed> {
    match command {
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

//! `tandem` — the command line. Everything it runs lives in the library.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use tandem_core::Limits;
use tandem_core::membership::ProjectRole;
use tandem_core::{FlowId, FlowRunId, JoinRequestId, ProjectId, Role, TokenScope, WorkspaceId};
use tandem_intake_email::imap::{ImapConfig, Processed};
use tandem_intake_email::send::Relay;
use tandem_intake_email::smtp::Protocol;
use tandem_intake_email::{DeliveryConfig, IntakeLimits};
use tandem_server::admin::{self, AdminCommand};
use tandem_server::mail::OutboundConfig;
use tandem_server::serve::{
    JobsConfig, LogFormat, MailListen, ServeConfig, init_logging, mail_ingest, migrate, serve,
};
use tandem_server::transfer::{self, TransferCommand};
use tandem_server::{BackendOptions, DbLocation, SignInConfig};

#[derive(Debug, Parser)]
#[command(name = "tandem", version, about = "Tandem: helpdesk and project management in one engine")]
struct Cli {
    /// How logs (on stderr) are written; filter them with RUST_LOG.
    #[arg(long, value_enum, env = "TANDEM_LOG_FORMAT", default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Args)]
struct Database {
    /// The database: a file path, sqlite://<path>, or postgres://user[:password]@host[:port]/database.
    // Parsed after clap, whose errors repeat the value — and with it a URL's password.
    #[arg(long, env = "TANDEM_DB", default_value = "./tandem.db", hide_env_values = true)]
    db: String,
    /// Most PostgreSQL connections this process opens.
    #[arg(long, env = "TANDEM_DB_POOL_SIZE", default_value_t = BackendOptions::default().pool_size)]
    pool_size: u32,
}

// Parsed once at start-up; boxing the large variant would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the REST API and run background jobs.
    Serve {
        #[command(flatten)]
        database: Database,
        /// The address to listen on.
        #[arg(long, env = "TANDEM_LISTEN", default_value = "127.0.0.1:8080")]
        listen: String,
        /// Seed a demo workspace (once; later starts leave it alone).
        #[arg(long)]
        demo: bool,
        /// The largest attachment accepted, in bytes.
        #[arg(long, env = "TANDEM_MAX_ATTACHMENT_BYTES", default_value_t = Limits::default().max_attachment_bytes)]
        max_attachment_bytes: u64,
        /// Jobs (webhook deliveries…) run at once by this process; 0 runs none and relays no
        /// events, for servers that only answer the API.
        #[arg(long, env = "TANDEM_WORKERS", default_value_t = JobsConfig::default().workers)]
        workers: usize,
        /// Seconds a claimed job stays this process's; a crashed server's jobs are reclaimed after it.
        #[arg(long, env = "TANDEM_JOB_LEASE_SECS", default_value_t = JobsConfig::default().lease.as_secs())]
        job_lease_secs: u64,
        /// Seconds a job may run; must be shorter than the lease.
        #[arg(long, env = "TANDEM_JOB_TIMEOUT_SECS", default_value_t = JobsConfig::default().timeout.as_secs())]
        job_timeout_secs: u64,
        /// Milliseconds between looks for new jobs and events when idle.
        #[arg(long, env = "TANDEM_JOB_POLL_MS", default_value_t = JobsConfig::default().poll.as_millis() as u64)]
        job_poll_ms: u64,
        /// Attempts each webhook delivery gets before it becomes a dead letter.
        #[arg(long, env = "TANDEM_WEBHOOK_ATTEMPTS", default_value_t = JobsConfig::default().webhook_attempts)]
        webhook_attempts: u32,
        /// Let webhooks reach loopback, private and link-local addresses (off: public only).
        #[arg(long, env = "TANDEM_ALLOW_PRIVATE_WEBHOOKS")]
        allow_private_webhooks: bool,
        /// Also listen for inbound mail from an MTA on this address (SMTP, or LMTP with --lmtp).
        #[arg(long, env = "TANDEM_SMTP_LISTEN")]
        smtp_listen: Option<String>,
        /// Speak LMTP instead of SMTP on --smtp-listen.
        #[arg(long, env = "TANDEM_LMTP")]
        lmtp: bool,
        /// The host name the mail listener greets with.
        #[arg(long, env = "TANDEM_MAIL_HOSTNAME", default_value = "localhost")]
        mail_hostname: String,
        /// The largest inbound message accepted, in bytes.
        #[arg(long, env = "TANDEM_MAX_MESSAGE_BYTES", default_value_t = IntakeLimits::default().max_message_bytes)]
        max_message_bytes: u64,
        #[command(flatten)]
        imap: ImapArgs,
        #[command(flatten)]
        outbound: OutboundArgs,
        /// Where people reach this server (https://desk.example): sign-in links point here, and
        /// an https URL makes session cookies Secure. Without it no sign-in links are mailed.
        #[arg(long, env = "TANDEM_PUBLIC_URL")]
        public_url: Option<url::Url>,
    },
    /// Receive one email message on stdin (for an MTA's pipe transport). Exits 0 when stored,
    /// 75 to make the MTA retry, 65/67/69 to refuse it (reason on stderr).
    MailIngest {
        #[command(flatten)]
        database: Database,
        /// The envelope recipient(s); when absent, the first of Delivered-To, X-Original-To, To
        /// and Cc that a workspace receives mail at.
        #[arg(long)]
        recipient: Vec<String>,
        /// The envelope sender.
        #[arg(long)]
        sender: Option<String>,
        /// The largest message accepted, in bytes.
        #[arg(long, env = "TANDEM_MAX_MESSAGE_BYTES", default_value_t = IntakeLimits::default().max_message_bytes)]
        max_message_bytes: u64,
    },
    /// Create or upgrade the database schema, print its version and exit.
    Migrate {
        #[command(flatten)]
        database: Database,
    },
    /// Add, list and disable people. Exit codes: 0 done, 1 database failure, 2 bad arguments,
    /// 3 invalid value, 4 not found, 5 refused (such as an address already in use).
    User {
        #[command(subcommand)]
        action: UserAction,
    },
    /// Create and revoke API tokens (exit codes as for `user`).
    Token {
        #[command(subcommand)]
        action: TokenAction,
    },
    /// Organizations and the email domains their customers join by (exit codes as for `user`).
    Org {
        #[command(subcommand)]
        action: OrgAction,
    },
    /// Teams of staff (exit codes as for `user`).
    Team {
        #[command(subcommand)]
        action: TeamAction,
    },
    /// Project memberships and grants (exit codes as for `user`).
    Member {
        #[command(subcommand)]
        action: MemberAction,
    },
    /// Requests to join a project: list, approve, deny (exit codes as for `user`).
    JoinRequest {
        #[command(subcommand)]
        action: JoinAction,
    },
    /// Import items into a project from CSV or MS Project XML. Prints the per-row report; exits
    /// 3 when a row has problems (the valid rows are still written unless --all-or-nothing or
    /// --dry-run).
    Import {
        #[command(subcommand)]
        action: ImportAction,
    },
    /// Export a saved view or timesheets (CSV, XLSX) or a project's plan (MS Project XML).
    Export {
        #[command(subcommand)]
        action: ExportAction,
    },
    /// WebAssembly plugins: install, upgrade, list, enable, disable, remove (exit codes as for
    /// `user`).
    Plugin {
        #[command(subcommand)]
        action: PluginAction,
    },
    /// Flows: list, show, create, update, enable, disable, delete, their runs and replaying a
    /// failed run (exit codes as for `user`).
    Flow {
        #[command(subcommand)]
        action: FlowAction,
    },
}

#[derive(Debug, Subcommand)]
enum FlowAction {
    /// Every flow: `id state trigger steps name` (state: enabled, disabled or paused).
    List {
        #[command(flatten)]
        target: Target,
    },
    /// A flow's definition and state (and a poll's or webhook's seen ids) as JSON.
    Show {
        #[command(flatten)]
        target: Target,
        flow: FlowId,
    },
    /// Create a flow from a JSON file: the body `POST /api/v1/flows` takes (name, trigger,
    /// filters, steps, pause_after, enabled). Prints `id state trigger steps name`.
    Create {
        #[command(flatten)]
        target: Target,
        #[arg(long)]
        file: std::path::PathBuf,
    },
    /// Replace a flow's definition from a JSON file (`version`, when given, must match).
    Update {
        #[command(flatten)]
        target: Target,
        flow: FlowId,
        #[arg(long)]
        file: std::path::PathBuf,
    },
    /// Enable a flow (clearing a pause and its failure count).
    Enable {
        #[command(flatten)]
        target: Target,
        flow: FlowId,
    },
    Disable {
        #[command(flatten)]
        target: Target,
        flow: FlowId,
    },
    /// Delete a flow; its runs stay readable.
    Delete {
        #[command(flatten)]
        target: Target,
        flow: FlowId,
    },
    /// A flow's recent runs, newest first: `id status attempt started steps-done error`.
    Runs {
        #[command(flatten)]
        target: Target,
        flow: FlowId,
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Run a failed run again from its failed step.
    Replay {
        #[command(flatten)]
        target: Target,
        run: FlowRunId,
    },
}

#[derive(Debug, Subcommand)]
enum ImportAction {
    /// Rows of a CSV file (a header row first) as items.
    Csv {
        #[command(flatten)]
        target: Target,
        #[arg(long)]
        project: ProjectId,
        file: std::path::PathBuf,
        /// `Header=field` (repeatable): title, description, type, status, priority, assignees,
        /// requester, followers, parent, folder, key, start, finish, duration, work,
        /// percent_complete, points, mode, predecessors, custom.<key> or ignore. Headers not
        /// named are mapped by their name.
        #[arg(long = "mapping")]
        mapping: Vec<String>,
        /// The type of rows without a type column (name or id).
        #[arg(long = "type")]
        item_type: Option<String>,
        /// Check every row and write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Write nothing when any row has a problem.
        #[arg(long)]
        all_or_nothing: bool,
    },
    /// The tasks of an MS Project XML (MSPDI) file as tasks.
    Mspdi {
        #[command(flatten)]
        target: Target,
        #[arg(long)]
        project: ProjectId,
        file: std::path::PathBuf,
        /// The task type to create (name or id).
        #[arg(long = "type")]
        item_type: String,
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        all_or_nothing: bool,
        /// Also make the file's base calendar the workspace calendar.
        #[arg(long)]
        calendar: bool,
    },
}

#[derive(Debug, Subcommand)]
enum ExportAction {
    /// A saved view's rows with its columns.
    View {
        #[command(flatten)]
        target: Target,
        view: tandem_core::ViewId,
        /// csv or xlsx.
        #[arg(long, value_parser = parse_format, default_value = "csv")]
        format: tandem_server::export::FileFormat,
        #[arg(short = 'o', long = "output")]
        output: std::path::PathBuf,
    },
    /// Timesheet entries: person, item, start, minutes, status.
    Timesheet {
        #[command(flatten)]
        target: Target,
        #[arg(long, value_parser = parse_format, default_value = "csv")]
        format: tandem_server::export::FileFormat,
        /// Only this person's entries (id).
        #[arg(long)]
        user: Option<tandem_core::UserId>,
        /// Only entries in this state (repeatable): draft, submitted, approved, rejected.
        #[arg(long = "status", value_parser = parse_status)]
        statuses: Vec<tandem_core::EntryStatus>,
        #[arg(short = 'o', long = "output")]
        output: std::path::PathBuf,
    },
    /// A project's tasks, dependencies and calendar as MS Project XML.
    Mspdi {
        #[command(flatten)]
        target: Target,
        #[arg(long)]
        project: ProjectId,
        /// Only xml.
        #[arg(long, default_value = "xml", value_parser = ["xml"])]
        format: String,
        #[arg(short = 'o', long = "output")]
        output: std::path::PathBuf,
    },
}

fn parse_format(s: &str) -> Result<tandem_server::export::FileFormat, String> {
    tandem_server::export::FileFormat::parse(s)
        .ok_or_else(|| format!("'{s}' is not a format; expected csv or xlsx"))
}

fn parse_status(s: &str) -> Result<tandem_core::EntryStatus, String> {
    tandem_core::EntryStatus::parse(s.trim())
        .ok_or_else(|| format!("'{s}' is not a state; expected draft, submitted, approved or rejected"))
}

#[derive(Debug, Subcommand)]
enum PluginAction {
    /// Install a plugin (a `.wasm` component built for wasm32-wasip2 and its `plugin.toml`).
    /// Prints `plugin version state hosts`.
    Install {
        #[command(flatten)]
        target: Target,
        /// The component.
        file: std::path::PathBuf,
        /// The plugin's manifest.
        #[arg(long)]
        manifest: std::path::PathBuf,
        /// Approve the hosts the manifest asks to call (otherwise the plugin waits for approval).
        #[arg(long)]
        approve: bool,
    },
    /// Upgrade an installed plugin to a newer version (settings, secrets and state stay).
    Upgrade {
        #[command(flatten)]
        target: Target,
        file: std::path::PathBuf,
        #[arg(long)]
        manifest: std::path::PathBuf,
    },
    /// List installed plugins: `plugin version state hosts`.
    List {
        #[command(flatten)]
        target: Target,
    },
    /// Approve the hosts a plugin asks to call.
    Approve {
        #[command(flatten)]
        target: Target,
        plugin: String,
    },
    Enable {
        #[command(flatten)]
        target: Target,
        plugin: String,
    },
    Disable {
        #[command(flatten)]
        target: Target,
        plugin: String,
    },
    /// Remove a plugin and its state.
    Remove {
        #[command(flatten)]
        target: Target,
        plugin: String,
    },
}

#[derive(Debug, Subcommand)]
enum OrgAction {
    /// Add an organization; customers at its domains join it. Prints `id name domains`.
    Add {
        #[command(flatten)]
        target: Target,
        #[arg(long)]
        name: String,
        /// An email domain it owns (repeatable).
        #[arg(long = "domain")]
        domains: Vec<String>,
    },
    /// List organizations: one `id name domains` line each.
    List {
        #[command(flatten)]
        target: Target,
    },
    /// Replace an organization's domains (by id or name); contacts at added domains join. At
    /// least one `--domain`: a forgotten flag must not silently clear them all.
    Domains {
        #[command(flatten)]
        target: Target,
        organization: String,
        #[arg(long = "domain", required = true)]
        domains: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
enum TeamAction {
    /// Add a team; prints `id name members`.
    Add {
        #[command(flatten)]
        target: Target,
        #[arg(long)]
        name: String,
        /// A member by id or email address (repeatable).
        #[arg(long = "member")]
        members: Vec<String>,
    },
    /// List teams: one `id name members` line each.
    List {
        #[command(flatten)]
        target: Target,
    },
}

#[derive(Debug, Subcommand)]
enum MemberAction {
    /// Give a person a role on a project (a membership, or a grant for a customer).
    Set {
        #[command(flatten)]
        target: Target,
        #[arg(long)]
        project: ProjectId,
        /// By id or email address.
        #[arg(long)]
        user: String,
        /// manager, member, commenter or viewer.
        #[arg(long, value_parser = parse_project_role)]
        role: ProjectRole,
    },
    /// Take a person's role on a project away.
    Remove {
        #[command(flatten)]
        target: Target,
        #[arg(long)]
        project: ProjectId,
        #[arg(long)]
        user: String,
    },
    /// List a project's members: one `user role` line each.
    List {
        #[command(flatten)]
        target: Target,
        #[arg(long)]
        project: ProjectId,
    },
}

#[derive(Debug, Subcommand)]
enum JoinAction {
    /// List a project's join requests: one `id state user role` line each.
    List {
        #[command(flatten)]
        target: Target,
        #[arg(long)]
        project: ProjectId,
    },
    /// Approve a request; `--role` overrides the role asked for.
    Approve {
        #[command(flatten)]
        target: Target,
        id: JoinRequestId,
        #[arg(long, value_parser = parse_project_role)]
        role: Option<ProjectRole>,
    },
    /// Deny a request.
    Deny {
        #[command(flatten)]
        target: Target,
        id: JoinRequestId,
    },
}

fn parse_project_role(s: &str) -> Result<ProjectRole, String> {
    serde_json::from_value(serde_json::Value::String(s.trim().to_lowercase()))
        .map_err(|_| format!("'{s}' is not a project role; expected manager, member, commenter or viewer"))
}

/// Which database and workspace an administrative command works on.
#[derive(Debug, Args)]
struct Target {
    #[command(flatten)]
    database: Database,
    /// The workspace's id; the oldest workspace when absent.
    #[arg(long, env = "TANDEM_WORKSPACE")]
    workspace: Option<WorkspaceId>,
}

fn parse_role(s: &str) -> Result<Role, String> {
    serde_json::from_value(serde_json::Value::String(s.trim().to_lowercase()))
        .map_err(|_| format!("'{s}' is not a role; expected admin, manager, agent, collaborator or customer"))
}

fn parse_scope(s: &str) -> Result<TokenScope, String> {
    serde_json::from_value(serde_json::Value::String(s.trim().to_lowercase()))
        .map_err(|_| format!("'{s}' is not a scope; expected read, write or admin"))
}

#[derive(Debug, Subcommand)]
enum UserAction {
    /// Add a person; prints `id role state email name`.
    Add {
        #[command(flatten)]
        target: Target,
        #[arg(long)]
        name: String,
        /// Required for staff.
        #[arg(long)]
        email: Option<String>,
        #[arg(long)]
        handle: Option<String>,
        /// admin, manager, agent, collaborator or customer.
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// Read a password from the first line of standard input (never from the command line,
        /// where other users of the machine could see it).
        #[arg(long)]
        password_stdin: bool,
    },
    /// List people: one `id role state email name` line each.
    List {
        #[command(flatten)]
        target: Target,
    },
    /// Disable a person (by id or email address): their tokens and sessions stop working.
    Disable {
        #[command(flatten)]
        target: Target,
        user: String,
    },
}

#[derive(Debug, Subcommand)]
enum TokenAction {
    /// Create a token for a person (by id or email address); prints `id secret` — the secret
    /// only this once.
    Create {
        #[command(flatten)]
        target: Target,
        #[arg(long)]
        user: String,
        #[arg(long)]
        name: String,
        /// read, write or admin.
        #[arg(long, value_parser = parse_scope)]
        scope: TokenScope,
    },
    /// Revoke a token by id.
    Revoke {
        #[command(flatten)]
        target: Target,
        id: String,
    },
}

fn read_password() -> Result<String, String> {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).map_err(|e| format!("cannot read the password from stdin: {e}"))?;
    let password = line.trim_end_matches(['\r', '\n']).to_string();
    if password.is_empty() {
        return Err("--password-stdin: standard input held no password".into());
    }
    Ok(password)
}

/// `tandem user …` / `tandem token …`: the result on stdout, or the error on stderr and its code.
async fn administer(target: Target, command: Job) -> ExitCode {
    let (db, options) = match target.database.location() {
        Ok(location) => location,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    let result = match command {
        Job::Admin(command) => admin::run(&db, &options, target.workspace, command).await,
        Job::Transfer(command) => transfer::run(&db, &options, target.workspace, command).await,
    };
    match result {
        Ok(done) => {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            if !done.output.is_empty() && writeln!(out, "{}", done.output).is_err() {
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(failed) => {
            eprintln!("error: {}", failed.message);
            ExitCode::from(failed.code)
        }
    }
}

fn admin_command(command: Command) -> Result<(Target, Job), Box<Command>> {
    Ok::<_, Box<Command>>(match command {
        Command::User { action: UserAction::Add { target, name, email, handle, role, password_stdin } } => {
            let password = if password_stdin {
                match read_password() {
                    Ok(p) => Some(p),
                    Err(e) => {
                        eprintln!("error: {e}");
                        std::process::exit(i32::from(admin::EXIT_INVALID));
                    }
                }
            } else {
                None
            };
            (target, AdminCommand::UserAdd { name, email, handle, role, password })
        }
        Command::User { action: UserAction::List { target } } => (target, AdminCommand::UserList),
        Command::User { action: UserAction::Disable { target, user } } => {
            (target, AdminCommand::UserDisable { who: user })
        }
        Command::Token { action: TokenAction::Create { target, user, name, scope } } => {
            (target, AdminCommand::TokenCreate { user, name, scope })
        }
        Command::Token { action: TokenAction::Revoke { target, id } } => {
            (target, AdminCommand::TokenRevoke { id })
        }
        Command::Org { action: OrgAction::Add { target, name, domains } } => {
            (target, AdminCommand::OrgAdd { name, domains })
        }
        Command::Org { action: OrgAction::List { target } } => (target, AdminCommand::OrgList),
        Command::Org { action: OrgAction::Domains { target, organization, domains } } => {
            (target, AdminCommand::OrgDomains { organization, domains })
        }
        Command::Team { action: TeamAction::Add { target, name, members } } => {
            (target, AdminCommand::TeamAdd { name, members })
        }
        Command::Team { action: TeamAction::List { target } } => (target, AdminCommand::TeamList),
        Command::Member { action: MemberAction::Set { target, project, user, role } } => {
            (target, AdminCommand::MemberSet { project, user, role })
        }
        Command::Member { action: MemberAction::Remove { target, project, user } } => {
            (target, AdminCommand::MemberRemove { project, user })
        }
        Command::Member { action: MemberAction::List { target, project } } => {
            (target, AdminCommand::MemberList { project })
        }
        Command::JoinRequest { action: JoinAction::List { target, project } } => {
            (target, AdminCommand::JoinList { project })
        }
        Command::JoinRequest { action: JoinAction::Approve { target, id, role } } => {
            (target, AdminCommand::JoinDecide { id, approve: true, role })
        }
        Command::JoinRequest { action: JoinAction::Deny { target, id } } => {
            (target, AdminCommand::JoinDecide { id, approve: false, role: None })
        }
        Command::Import {
            action: ImportAction::Csv { target, project, file, mapping, item_type, dry_run, all_or_nothing },
        } => {
            return Ok((
                target,
                Job::Transfer(TransferCommand::ImportCsv {
                    project,
                    file,
                    mapping,
                    item_type,
                    dry_run,
                    all_or_nothing,
                }),
            ));
        }
        Command::Import {
            action:
                ImportAction::Mspdi { target, project, file, item_type, dry_run, all_or_nothing, calendar },
        } => {
            return Ok((
                target,
                Job::Transfer(TransferCommand::ImportMspdi {
                    project,
                    file,
                    item_type,
                    dry_run,
                    all_or_nothing,
                    calendar,
                }),
            ));
        }
        Command::Export { action: ExportAction::View { target, view, format, output } } => {
            return Ok((target, Job::Transfer(TransferCommand::ExportView { view, format, out: output })));
        }
        Command::Export { action: ExportAction::Timesheet { target, format, user, statuses, output } } => {
            return Ok((
                target,
                Job::Transfer(TransferCommand::ExportTimesheet { format, user, statuses, out: output }),
            ));
        }
        Command::Export { action: ExportAction::Mspdi { target, project, format: _, output } } => {
            return Ok((target, Job::Transfer(TransferCommand::ExportMspdi { project, out: output })));
        }
        Command::Plugin { action } => match action {
            PluginAction::Install { target, file, manifest, approve } => {
                (target, AdminCommand::PluginInstall { file, manifest, approve, upgrade: false })
            }
            PluginAction::Upgrade { target, file, manifest } => {
                (target, AdminCommand::PluginInstall { file, manifest, approve: false, upgrade: true })
            }
            PluginAction::List { target } => (target, AdminCommand::PluginList),
            PluginAction::Approve { target, plugin } => (target, AdminCommand::PluginApprove { plugin }),
            PluginAction::Enable { target, plugin } => {
                (target, AdminCommand::PluginEnable { plugin, enabled: true })
            }
            PluginAction::Disable { target, plugin } => {
                (target, AdminCommand::PluginEnable { plugin, enabled: false })
            }
            PluginAction::Remove { target, plugin } => (target, AdminCommand::PluginRemove { plugin }),
        },
        Command::Flow { action } => match action {
            FlowAction::List { target } => (target, AdminCommand::FlowList),
            FlowAction::Show { target, flow } => (target, AdminCommand::FlowShow { flow }),
            FlowAction::Create { target, file } => (target, AdminCommand::FlowSave { flow: None, file }),
            FlowAction::Update { target, flow, file } => {
                (target, AdminCommand::FlowSave { flow: Some(flow), file })
            }
            FlowAction::Enable { target, flow } => (target, AdminCommand::FlowEnable { flow, enabled: true }),
            FlowAction::Disable { target, flow } => {
                (target, AdminCommand::FlowEnable { flow, enabled: false })
            }
            FlowAction::Delete { target, flow } => (target, AdminCommand::FlowDelete { flow }),
            FlowAction::Runs { target, flow, limit } => (target, AdminCommand::FlowRuns { flow, limit }),
            FlowAction::Replay { target, run } => (target, AdminCommand::FlowReplay { run }),
        },
        other => return Err(Box::new(other)),
    })
    .map(|(target, command)| (target, Job::Admin(command)))
}

/// What an administrative command line runs.
#[derive(Debug)]
enum Job {
    Admin(AdminCommand),
    Transfer(TransferCommand),
}

impl Database {
    fn location(&self) -> anyhow::Result<(DbLocation, BackendOptions)> {
        Ok((self.db.parse()?, BackendOptions { pool_size: self.pool_size }))
    }
}

/// Polling one mailbox over IMAP with TLS (`--imap-host` turns it on).
#[derive(Debug, clap::Args)]
struct ImapArgs {
    /// The IMAP server to poll (implicit TLS).
    #[arg(long, env = "TANDEM_IMAP_HOST", requires_all = ["imap_user", "imap_recipient"])]
    imap_host: Option<String>,
    #[arg(long, env = "TANDEM_IMAP_PORT", default_value_t = 993)]
    imap_port: u16,
    #[arg(long, env = "TANDEM_IMAP_USER")]
    imap_user: Option<String>,
    /// Read from the environment only, so it never shows in a process list.
    #[arg(skip = std::env::var("TANDEM_IMAP_PASSWORD").unwrap_or_default())]
    imap_password: String,
    #[arg(long, env = "TANDEM_IMAP_MAILBOX", default_value = "INBOX")]
    imap_mailbox: String,
    /// The workspace address the mailbox receives for.
    #[arg(long, env = "TANDEM_IMAP_RECIPIENT")]
    imap_recipient: Option<String>,
    /// Move processed mail to this folder; without it, processed mail is flagged.
    #[arg(long, env = "TANDEM_IMAP_MOVE_TO")]
    imap_move_to: Option<String>,
    /// The longest wait between polls, in seconds (IDLE is used when the server offers it).
    #[arg(long, env = "TANDEM_IMAP_INTERVAL", default_value_t = 60)]
    imap_interval: u64,
    /// A PEM file with an extra root certificate to trust.
    #[arg(long, env = "TANDEM_IMAP_CA")]
    imap_ca: Option<std::path::PathBuf>,
}

/// Sending mail through an SMTP relay (`--smtp-relay` turns it on): notifications to followers
/// and every other `mail.send` job.
#[derive(Debug, clap::Args)]
struct OutboundArgs {
    /// smtp://host[:port] (STARTTLS, required), smtps://host[:port] (TLS) or smtp+plain://host[:port].
    #[arg(long, env = "TANDEM_SMTP_RELAY", requires = "mail_domain")]
    smtp_relay: Option<String>,
    /// The relay login; the password is read from TANDEM_SMTP_PASSWORD only.
    #[arg(long, env = "TANDEM_SMTP_USER")]
    smtp_user: Option<String>,
    #[arg(skip = std::env::var("TANDEM_SMTP_PASSWORD").ok())]
    smtp_password: Option<String>,
    /// A PEM file with an extra root certificate to trust for the relay.
    #[arg(long, env = "TANDEM_SMTP_CA")]
    smtp_ca: Option<std::path::PathBuf>,
    /// The domain of our Message-IDs (and of the sender of a workspace without an inbound address).
    #[arg(long, env = "TANDEM_MAIL_DOMAIN")]
    mail_domain: Option<String>,
    /// Attempts each mail gets before it becomes a dead letter.
    #[arg(long, env = "TANDEM_MAIL_ATTEMPTS", default_value_t = 8)]
    mail_attempts: u32,
}

impl OutboundArgs {
    /// `public_url` is `serve --public-url`: mail links to items under it.
    fn config(
        self,
        job_timeout: Duration,
        public_url: Option<&url::Url>,
    ) -> anyhow::Result<Option<OutboundConfig>> {
        let Some(relay) = self.smtp_relay else { return Ok(None) };
        let (host, port, security) = tandem_server::mail::parse_relay(&relay)?;
        let domain = self.mail_domain.unwrap_or_default().trim().trim_start_matches('@').to_lowercase();
        if domain.is_empty() || domain.contains(['@', ' ', '<', '>']) {
            anyhow::bail!("--mail-domain must be a domain name (desk.example)");
        }
        if self.mail_attempts == 0 {
            anyhow::bail!("--mail-attempts must be at least 1");
        }
        let credentials = match (self.smtp_user, self.smtp_password) {
            (Some(user), Some(password)) => Some((user, password)),
            (Some(_), None) => anyhow::bail!("--smtp-user is set but TANDEM_SMTP_PASSWORD is not"),
            (None, _) => None,
        };
        let root_certificate_pem = match &self.smtp_ca {
            Some(path) => Some(
                std::fs::read(path)
                    .map_err(|e| anyhow::anyhow!("cannot read --smtp-ca {}: {e}", path.display()))?,
            ),
            None => None,
        };
        Ok(Some(OutboundConfig {
            relay: Relay {
                host,
                port,
                security,
                credentials,
                root_certificate_pem,
                // The SMTP conversation ends before the job's timeout does.
                timeout: job_timeout.mul_f64(0.75).min(Duration::from_secs(60)),
            },
            delivery: DeliveryConfig {
                domain,
                public_url: public_url.map(|u| u.as_str().trim_end_matches('/').to_string()),
                limits: tandem_intake_email::outbound::RateLimits::default(),
            },
            attempts: self.mail_attempts,
        }))
    }
}

impl ImapArgs {
    fn config(self) -> anyhow::Result<Option<ImapConfig>> {
        let (Some(host), Some(user), Some(recipient)) = (self.imap_host, self.imap_user, self.imap_recipient)
        else {
            return Ok(None);
        };
        let root_certificate_pem = match &self.imap_ca {
            Some(path) => Some(
                std::fs::read(path)
                    .map_err(|e| anyhow::anyhow!("cannot read --imap-ca {}: {e}", path.display()))?,
            ),
            None => None,
        };
        Ok(Some(ImapConfig {
            host,
            port: self.imap_port,
            root_certificate_pem,
            user,
            password: self.imap_password,
            mailbox: self.imap_mailbox,
            processed: match self.imap_move_to {
                Some(folder) => Processed::MoveTo(folder),
                None => Processed::Flag,
            },
            recipient,
            interval: std::time::Duration::from_secs(self.imap_interval.max(1)),
            use_idle: true,
        }))
    }
}

async fn run(log_format: LogFormat, command: Command) -> anyhow::Result<()> {
    init_logging(log_format)?;
    match command {
        Command::Serve {
            database,
            listen,
            demo,
            max_attachment_bytes,
            workers,
            job_lease_secs,
            job_timeout_secs,
            job_poll_ms,
            webhook_attempts,
            allow_private_webhooks,
            smtp_listen,
            lmtp,
            mail_hostname,
            max_message_bytes,
            imap,
            outbound,
            public_url,
        } => {
            if job_poll_ms == 0 {
                anyhow::bail!("--job-poll-ms must be at least 1");
            }
            if webhook_attempts == 0 {
                anyhow::bail!("--webhook-attempts must be at least 1");
            }
            let admin_token = std::env::var("TANDEM_ADMIN_TOKEN").ok();
            let limits = Limits { max_attachment_bytes, allow_private_webhooks, ..Limits::default() };
            let jobs = JobsConfig {
                workers,
                lease: Duration::from_secs(job_lease_secs),
                timeout: Duration::from_secs(job_timeout_secs),
                poll: Duration::from_millis(job_poll_ms),
                webhook_attempts,
                ..JobsConfig::default()
            };
            let mail = smtp_listen.map(|listen| MailListen {
                listen,
                protocol: if lmtp { Protocol::Lmtp } else { Protocol::Smtp },
                hostname: mail_hostname,
                max_message_bytes,
            });
            let imap = imap.config()?;
            if let Some(url) = &public_url
                && !matches!(url.scheme(), "http" | "https")
            {
                anyhow::bail!("--public-url must be an http:// or https:// URL, not {}://", url.scheme());
            }
            let outbound = outbound.config(jobs.timeout, public_url.as_ref())?;
            let (db, backend) = database.location()?;
            let sign_in = SignInConfig { public_url, ..SignInConfig::default() };
            serve(ServeConfig {
                db,
                listen,
                demo,
                admin_token,
                limits,
                backend,
                jobs,
                mail,
                imap,
                outbound,
                sign_in,
            })
            .await
        }
        Command::MailIngest { .. }
        | Command::User { .. }
        | Command::Token { .. }
        | Command::Org { .. }
        | Command::Team { .. }
        | Command::Member { .. }
        | Command::JoinRequest { .. }
        | Command::Import { .. }
        | Command::Export { .. }
        | Command::Plugin { .. }
        | Command::Flow { .. } => {
            anyhow::bail!("this command runs before logging starts")
        }
        Command::Migrate { database } => {
            let (db, options) = database.location()?;
            let version = migrate(&db, &options).await?;
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            writeln!(out, "{db}: schema version {version}")?;
            Ok(())
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // The MTA reads only the exit code and stderr: no log setup, one line on stderr.
    if let Command::MailIngest { database, recipient, sender, max_message_bytes } = cli.command {
        let (db, options) = match database.location() {
            Ok(location) => location,
            Err(e) => {
                eprintln!("tandem mail-ingest: {e:#}");
                // A configuration mistake: make the MTA keep the mail queued, not bounce it.
                return ExitCode::from(tandem_intake_email::pipe::EX_TEMPFAIL);
            }
        };
        return ExitCode::from(
            mail_ingest(&db, &options, recipient, sender, Limits::default(), max_message_bytes).await,
        );
    }
    let command = match admin_command(cli.command) {
        // Administrative commands print their result and nothing else: no log set-up.
        Ok((target, command)) => return administer(target, command).await,
        Err(other) => *other,
    };
    match run(cli.log_format, command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

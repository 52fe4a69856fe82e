//! Running the server: logging, bootstrap, the listener, graceful shutdown.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tandem_core::{Desk, Limits};
use tandem_integrations::{DeliveryOptions, Egress, FlowEngine, WebhookDelivery};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing_subscriber::EnvFilter;

use crate::backend::{Backend, BackendOptions, DbLocation};
use crate::bootstrap;
use crate::demo::{self, Seeded};
use crate::jobs::automations::{self, AutomationDelivery};
use crate::jobs::relay::{self, RelayConfig};
use crate::jobs::{Backoff, KindPolicy, Registry, Runner, RunnerConfig};
use crate::runtime::{SystemClock, UuidV7Ids};
use crate::sign_in::SignInConfig;
use crate::state::AppState;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Logs go to stderr, filtered by `RUST_LOG` (default `info`); stdout is kept for what the
/// operator must read (a generated admin token, demo logins).
pub fn init_logging(format: LogFormat) -> anyhow::Result<()> {
    let filter = match std::env::var(EnvFilter::DEFAULT_ENV) {
        Ok(spec) => {
            EnvFilter::try_new(&spec).with_context(|| format!("RUST_LOG='{spec}' is not a valid filter"))?
        }
        Err(_) => EnvFilter::new("info"),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let installed = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    installed.map_err(|e| anyhow::anyhow!("cannot install the logger: {e}"))
}

#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub db: DbLocation,
    pub listen: String,
    pub demo: bool,
    /// `TANDEM_ADMIN_TOKEN`, when set.
    pub admin_token: Option<String>,
    /// Includes whether webhooks may reach private addresses.
    pub limits: Limits,
    pub backend: BackendOptions,
    pub jobs: JobsConfig,
    /// Where the SMTP/LMTP listener for inbound mail listens, if anywhere.
    pub mail: Option<MailListen>,
    /// A mailbox to poll over IMAP, if any.
    pub imap: Option<tandem_intake_email::imap::ImapConfig>,
    /// The SMTP relay outbound mail (notifications, sign-in links) goes through; without one no
    /// mail is sent and followers are not notified.
    pub outbound: Option<crate::mail::OutboundConfig>,
    /// Sessions, sign-in links and failed sign-in limits; the public URL.
    pub sign_in: SignInConfig,
}

/// Background work: the job runner and the event relay.
#[derive(Debug, Clone)]
pub struct JobsConfig {
    /// Most jobs running at once in this process; 0 runs no jobs and no relay here (API-only).
    pub workers: usize,
    /// How long a claimed job is this process's before another may reclaim it.
    pub lease: Duration,
    /// How long a job's handler may run; shorter than `lease`.
    pub timeout: Duration,
    /// How often idle workers and the relay look for new work.
    pub poll: Duration,
    /// Attempts each webhook delivery gets before it is a dead letter.
    pub webhook_attempts: u32,
    /// How often the scheduler looks for due time-based automations.
    pub automation_interval: Duration,
}

impl Default for JobsConfig {
    fn default() -> Self {
        let runner = RunnerConfig::default();
        Self {
            workers: runner.workers,
            lease: runner.policy.lease,
            timeout: runner.policy.timeout,
            poll: runner.poll,
            webhook_attempts: RelayConfig::default().max_attempts,
            automation_interval: Duration::from_secs(60),
        }
    }
}

/// `--smtp-listen` and its companions.
#[derive(Debug, Clone)]
pub struct MailListen {
    pub listen: String,
    pub protocol: tandem_intake_email::smtp::Protocol,
    pub hostname: String,
    pub max_message_bytes: u64,
}

/// Writes straight to stdout: this must reach the operator whatever the log settings.
fn announce(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}

fn announce_admin_token(secret: &str) {
    announce(&format!(
        "Tandem generated the server administrator's token. It is shown only this once; keep it safe:\n\n    \
         {secret}\n\nSend it as 'Authorization: Bearer <token>'. To choose your own, set TANDEM_ADMIN_TOKEN.\n"
    ));
}

fn announce_demo(seeded: &Seeded) {
    let mut text = format!(
        "Seeded the demo workspace \"{}\" ({}) with {} items.\n\
         Log in with the server administrator's token (shown when the database was first started, or the \
         value of TANDEM_ADMIN_TOKEN) as 'Authorization: Bearer <token>', adding 'Tandem-Workspace: {}' if \
         the server has other workspaces.\nTokens of demo users, shown only this once:\n",
        seeded.workspace.name, seeded.workspace.id, seeded.items, seeded.workspace.id
    );
    for login in &seeded.logins {
        let role = format!("{:?}", login.role).to_lowercase();
        text.push_str(&format!("    {} ({role}): {}\n", login.name, login.secret));
    }
    announce(&text);
}

/// Resolves when the process is asked to stop (SIGTERM or Ctrl-C/SIGINT).
pub async fn shutdown_signal() {
    let interrupt = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => tracing::info!("interrupted; finishing in-flight requests"),
        () = terminate => tracing::info!("terminated; finishing in-flight requests"),
    }
}

/// `tandem serve`: runs until a shutdown signal, then lets in-flight requests finish and
/// closes the database after its queued writes.
pub async fn serve(config: ServeConfig) -> anyhow::Result<()> {
    let backend = Backend::open(&config.db, &config.backend).await?;
    let result = run(&backend, config).await;
    backend.close().await;
    tracing::info!("database closed");
    result
}

async fn run(backend: &Backend, config: ServeConfig) -> anyhow::Result<()> {
    let store = backend.store();
    let boot = bootstrap::admin_token(store.as_ref(), config.admin_token.as_deref()).await?;
    if let Some(secret) = &boot.generated {
        announce_admin_token(secret);
    }
    let desk = Desk::new(store, Arc::new(SystemClock), Arc::new(UuidV7Ids), config.limits.clone());
    if config.demo {
        match demo::seed(&desk).await.context("seeding the demo workspace failed")? {
            Some(seeded) => announce_demo(&seeded),
            None => tracing::info!(
                workspace = demo::DEMO_WORKSPACE,
                "the demo workspace exists; not seeding it again"
            ),
        }
    }
    let listener = TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr().context("the listener has no local address")?;
    // One stop signal for everything: the HTTP server drains in-flight requests, job workers stop
    // claiming and finish what they hold, the mail listener and poller stop taking mail.
    let (stop, stopping) = watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop.send(true);
    });
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let plugins = Arc::new(
        crate::plugins::Plugins::new(
            desk.clone(),
            crate::plugins::Plugins::host_config(config.limits.allow_private_webhooks),
        )
        .map_err(anyhow::Error::msg)
        .context("cannot start the plugin host")?,
    );
    let background = start_background(&desk, &config, plugins.clone(), stopping.clone()).await?;
    let mail = match &config.mail {
        Some(m) => {
            let limits = tandem_intake_email::IntakeLimits {
                max_message_bytes: m.max_message_bytes,
                ..Default::default()
            };
            let intake = crate::mail::intake(desk.clone(), limits).await?;
            let mail_listener = TcpListener::bind(&m.listen)
                .await
                .with_context(|| format!("cannot listen for mail on {}", m.listen))?;
            let mail_addr = mail_listener.local_addr().context("the mail listener has no local address")?;
            tracing::info!(addr = %mail_addr, protocol = ?m.protocol, "Tandem is listening for mail");
            let listener_config = tandem_intake_email::smtp::ListenerConfig {
                protocol: m.protocol,
                hostname: m.hostname.clone(),
                ..Default::default()
            };
            Some(tokio::spawn(tandem_intake_email::smtp::serve(
                mail_listener,
                intake,
                listener_config,
                stopped(stopping.clone()),
            )))
        }
        None => None,
    };
    let imap = match config.imap.clone() {
        Some(imap) => {
            let intake =
                crate::mail::intake(desk.clone(), tandem_intake_email::IntakeLimits::default()).await?;
            tracing::info!(host = %imap.host, mailbox = %imap.mailbox, "Tandem is polling a mailbox");
            let poller = tandem_intake_email::imap::Poller::new(intake, imap)
                .context("the IMAP settings are unusable")?;
            Some(tokio::spawn(poller.run(stopped(stopping.clone()))))
        }
        None => None,
    };
    tracing::info!(%addr, db = %config.db, workers = config.jobs.workers, "Tandem is listening");
    let app =
        crate::app(AppState::with_sign_in(desk, boot.token, config.sign_in.clone()).with_plugins(plugins))
            .await?;
    // The peer's address limits failed sign-ins per network address.
    let served = axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>())
        .with_graceful_shutdown(stopped(stopping))
        .await;
    if let Some((runner, relay)) = background {
        if let Err(e) = relay.await {
            tracing::error!(error = %e, "the event relay failed");
        }
        runner.finished().await;
        tracing::info!("job workers stopped");
    }
    if let Some(mail) = mail {
        match mail.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "the mail listener failed"),
            Err(e) => tracing::error!(error = %e, "the mail listener panicked"),
        }
    }
    if let Some(imap) = imap
        && let Err(e) = imap.await
    {
        tracing::error!(error = %e, "the IMAP poller panicked");
    }
    served.context("the HTTP server failed")
}

/// Starts the job runner (with the webhook and automation delivery handlers, and the mail sender
/// when an SMTP relay is configured), the event relay and the automation scheduler, unless
/// `--workers 0` keeps this process to serving the API.
async fn start_background(
    desk: &Desk,
    config: &ServeConfig,
    plugins: Arc<crate::plugins::Plugins>,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<Option<(Runner, tokio::task::JoinHandle<()>)>> {
    let jobs = &config.jobs;
    if jobs.workers == 0 {
        tracing::info!("--workers 0: this server runs no jobs and relays no events");
        return Ok(None);
    }
    let policy = KindPolicy { lease: jobs.lease, timeout: jobs.timeout };
    // The HTTP request must end before the handler's timeout does, so its failure is its own.
    let request = (jobs.timeout.mul_f64(0.75)).min(Duration::from_secs(15));
    let delivery = WebhookDelivery::new(
        desk.store().clone(),
        DeliveryOptions {
            timeout: request,
            connect_timeout: request.min(Duration::from_secs(5)),
            egress: Egress { allow_private: config.limits.allow_private_webhooks },
        },
    )
    .context("cannot set up webhook delivery")?;
    let delivery = delivery.unsubscribing_gone(desk.clone());
    let egress = Egress { allow_private: config.limits.allow_private_webhooks };
    // Flows run plugin steps and triggers through the same runtime as "run plugin action".
    let runtime: Arc<dyn tandem_integrations::PluginRuntime> = plugins.clone();
    let engine = Arc::new(
        FlowEngine::new(desk.clone(), Some(runtime), egress, request).context("cannot set up flows")?,
    );
    let mut registry = Registry::new();
    registry.register(Arc::new(delivery));
    for handler in engine.handlers() {
        registry.register(handler);
    }
    registry.register(Arc::new(AutomationDelivery::new(desk.clone())));
    registry.register(Arc::new(crate::jobs::reports::ReportDelivery::new(desk.clone())));
    // "Run plugin action": through the same runtime as flows.
    registry.register(Arc::new(crate::plugins::PluginActionJob::new(plugins)));
    if let Some(outbound) = &config.outbound {
        let mail = crate::mail::delivery(desk.clone(), outbound).await?;
        registry.register(Arc::new(mail));
        tracing::info!(relay = %outbound.relay.host, port = outbound.relay.port, "outbound mail goes through an SMTP relay");
    }
    let runner = Runner::start(
        desk.store().clone(),
        Arc::new(SystemClock),
        registry,
        RunnerConfig { workers: jobs.workers, policy, poll: jobs.poll, backoff: Backoff::default() },
        stop.clone(),
    )
    .context("the job runner's configuration is unusable")?;
    let relay_config = RelayConfig {
        interval: jobs.poll,
        max_attempts: jobs.webhook_attempts,
        mail_attempts: config.outbound.as_ref().map(|o| o.attempts),
        ..RelayConfig::default()
    };
    let relay = relay::spawn(desk.clone(), relay_config, runner.waker(), stop.clone());
    let flows = crate::jobs::flows::spawn(desk.clone(), jobs.poll, runner.waker(), stop.clone());
    let timed = automations::spawn(desk.clone(), jobs.automation_interval, stop.clone());
    // Reports are due to the minute; the automation interval (a minute by default) suits them.
    let reports = crate::jobs::reports::spawn(desk.clone(), jobs.automation_interval, stop);
    // One handle for the loops: the caller waits for them together on shutdown.
    let background = tokio::spawn(async move {
        if let Err(e) = flows.await {
            tracing::error!(error = %e, "the flow scheduler failed");
        }
        if let Err(e) = timed.await {
            tracing::error!(error = %e, "the automation scheduler failed");
        }
        if let Err(e) = reports.await {
            tracing::error!(error = %e, "the report scheduler failed");
        }
        if let Err(e) = relay.await {
            tracing::error!(error = %e, "the event relay failed");
        }
    });
    Ok(Some((runner, background)))
}

/// `tandem mail-ingest`: one message from stdin; returns the exit code for the MTA (and says why
/// on stderr).
pub async fn mail_ingest(
    db: &DbLocation,
    options: &BackendOptions,
    recipients: Vec<String>,
    sender: Option<String>,
    limits: Limits,
    max_message_bytes: u64,
) -> u8 {
    let backend = match Backend::open(db, options).await {
        Ok(b) => b,
        Err(e) => {
            eprintln!("tandem mail-ingest: {e:#}");
            return tandem_intake_email::pipe::EX_TEMPFAIL;
        }
    };
    let desk = Desk::new(backend.store(), Arc::new(SystemClock), Arc::new(UuidV7Ids), limits);
    let intake_limits = tandem_intake_email::IntakeLimits { max_message_bytes, ..Default::default() };
    let code = match crate::mail::intake(desk, intake_limits).await {
        Ok(intake) => {
            // Read at most one byte past the limit, so a larger message is recognised, not loaded.
            let limit = intake.limits().max_message_bytes;
            let read = tokio::task::spawn_blocking(move || {
                use std::io::Read;
                let mut raw = Vec::new();
                std::io::stdin().lock().take(limit + 1).read_to_end(&mut raw).map(|_| raw)
            })
            .await;
            let raw = match read {
                Ok(Ok(raw)) => raw,
                Ok(Err(e)) => {
                    eprintln!("tandem mail-ingest: reading standard input failed: {e}");
                    backend.close().await;
                    return tandem_intake_email::pipe::EX_TEMPFAIL;
                }
                Err(e) => {
                    eprintln!("tandem mail-ingest: {e}");
                    backend.close().await;
                    return tandem_intake_email::pipe::EX_TEMPFAIL;
                }
            };
            let outcome = tandem_intake_email::pipe::ingest(&intake, &raw[..], sender, recipients).await;
            eprintln!("tandem mail-ingest: {}", outcome.message);
            outcome.code
        }
        Err(e) => {
            eprintln!("tandem mail-ingest: {e:#}");
            tandem_intake_email::pipe::EX_TEMPFAIL
        }
    };
    backend.close().await;
    code
}

/// `tandem migrate`: opening the database applies the embedded migrations.
pub async fn migrate(db: &DbLocation, options: &BackendOptions) -> anyhow::Result<i64> {
    let backend = Backend::open(db, options).await?;
    let version = backend.schema_version();
    backend.close().await;
    Ok(version)
}

//! `tandem` — the command line. Everything it runs lives in the library.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use tandem_core::Limits;
use tandem_server::serve::{JobsConfig, LogFormat, ServeConfig, init_logging, migrate, serve};
use tandem_server::{BackendOptions, DbLocation};

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
    },
    /// Create or upgrade the database schema, print its version and exit.
    Migrate {
        #[command(flatten)]
        database: Database,
    },
}

impl Database {
    fn location(&self) -> anyhow::Result<(DbLocation, BackendOptions)> {
        Ok((self.db.parse()?, BackendOptions { pool_size: self.pool_size }))
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    init_logging(cli.log_format)?;
    match cli.command {
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
            };
            let (db, backend) = database.location()?;
            serve(ServeConfig { db, listen, demo, admin_token, limits, backend, jobs }).await
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
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

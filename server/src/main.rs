//! `tandem` — the command line. Everything it runs lives in the library.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tandem_core::Limits;
use tandem_server::DbLocation;
use tandem_server::serve::{LogFormat, ServeConfig, init_logging, migrate, serve};

#[derive(Debug, Parser)]
#[command(name = "tandem", version, about = "Tandem: helpdesk and project management in one engine")]
struct Cli {
    /// How logs (on stderr) are written; filter them with RUST_LOG.
    #[arg(long, value_enum, env = "TANDEM_LOG_FORMAT", default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the REST API.
    Serve {
        /// The database: a file path or sqlite://<path>.
        #[arg(long, env = "TANDEM_DB", default_value = "./tandem.db", value_parser = parse_db)]
        db: DbLocation,
        /// The address to listen on.
        #[arg(long, env = "TANDEM_LISTEN", default_value = "127.0.0.1:8080")]
        listen: String,
        /// Seed a demo workspace (once; later starts leave it alone).
        #[arg(long)]
        demo: bool,
        /// The largest attachment accepted, in bytes.
        #[arg(long, env = "TANDEM_MAX_ATTACHMENT_BYTES", default_value_t = Limits::default().max_attachment_bytes)]
        max_attachment_bytes: u64,
    },
    /// Create or upgrade the database schema, print its version and exit.
    Migrate {
        /// The database: a file path or sqlite://<path>.
        #[arg(long, env = "TANDEM_DB", default_value = "./tandem.db", value_parser = parse_db)]
        db: DbLocation,
    },
}

fn parse_db(s: &str) -> Result<DbLocation, String> {
    s.parse().map_err(|e: anyhow::Error| e.to_string())
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    init_logging(cli.log_format)?;
    match cli.command {
        Command::Serve { db, listen, demo, max_attachment_bytes } => {
            let admin_token = std::env::var("TANDEM_ADMIN_TOKEN").ok();
            let limits = Limits { max_attachment_bytes, ..Limits::default() };
            serve(ServeConfig { db, listen, demo, admin_token, limits }).await
        }
        Command::Migrate { db } => {
            let version = migrate(&db).await?;
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

//! The schema's migrations, embedded in the binary and applied on connect.
//!
//! What `sqlx::migrate!("./migrations")` would generate, written out (see the crate docs for why
//! the macro is not available): each file `NNNN_description.sql` becomes version `NNNN` with that
//! description and the SHA-384 checksum of its text, and sqlx's migrator applies the missing ones
//! in order, each in its own transaction, holding PostgreSQL's advisory lock for the database so
//! concurrent starters wait for one another instead of racing.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;

use sqlx_core::error::BoxDynError;
use sqlx_core::migrate::{MigrateError, Migration, MigrationSource, MigrationType, Migrator};
use sqlx_postgres::PgPool;
use tandem_core::StoreError;

/// `(version, description, sql)`, oldest first; a test checks this against `migrations/`.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "init", include_str!("../migrations/0001_init.sql")),
    (2, "webhooks", include_str!("../migrations/0002_webhooks.sql")),
    (4, "mail", include_str!("../migrations/0004_mail.sql")),
    (5, "access", include_str!("../migrations/0005_access.sql")),
    (6, "automations", include_str!("../migrations/0006_automations.sql")),
    (7, "outbound_mail", include_str!("../migrations/0007_outbound_mail.sql")),
    (9, "sign_in", include_str!("../migrations/0009_sign_in.sql")),
    (10, "planning", include_str!("../migrations/0010_planning.sql")),
    (11, "plugins", include_str!("../migrations/0011_plugins.sql")),
    (12, "flows", include_str!("../migrations/0012_flows.sql")),
    (13, "reports", include_str!("../migrations/0013_reports.sql")),
    (15, "kb_chat", include_str!("../migrations/0015_kb_chat.sql")),
];

/// The latest schema version this build knows.
pub const SCHEMA_VERSION: i64 = 15;

#[derive(Debug)]
struct Embedded;

impl MigrationSource<'static> for Embedded {
    fn resolve(self) -> Pin<Box<dyn Future<Output = Result<Vec<Migration>, BoxDynError>> + Send + 'static>> {
        Box::pin(async {
            Ok(MIGRATIONS
                .iter()
                .map(|&(version, description, sql)| {
                    Migration::new(
                        version,
                        Cow::Borrowed(description),
                        MigrationType::Simple,
                        Cow::Borrowed(sql),
                        false,
                    )
                })
                .collect())
        })
    }
}

/// The versions of the embedded migrations, oldest first.
pub fn versions() -> Vec<i64> {
    MIGRATIONS.iter().map(|m| m.0).collect()
}

pub async fn run(pool: &PgPool) -> Result<(), StoreError> {
    let migrator = Migrator::new(Embedded).await.map_err(migrate_error)?;
    migrator.run(pool).await.map_err(migrate_error)
}

fn migrate_error(e: MigrateError) -> StoreError {
    match e {
        MigrateError::VersionMissing(version) if version > SCHEMA_VERSION => {
            StoreError::Unavailable(format!(
                "the database has schema version {version}, newer than this build's {SCHEMA_VERSION}; upgrade Tandem"
            ))
        }
        other => StoreError::Unavailable(format!("migrating the PostgreSQL schema failed: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_migration_file_is_embedded_in_order() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|name| name.ends_with(".sql"))
            .collect();
        files.sort();
        let embedded: Vec<String> = MIGRATIONS
            .iter()
            .map(|(version, description, _)| format!("{version:04}_{description}.sql"))
            .collect();
        assert_eq!(files, embedded);
        for ((_, _, sql), file) in MIGRATIONS.iter().zip(&files) {
            assert_eq!(*sql, std::fs::read_to_string(format!("{dir}/{file}")).unwrap());
        }
        assert_eq!(MIGRATIONS.last().map(|m| m.0), Some(SCHEMA_VERSION));
    }
}

#![allow(clippy::unwrap_used)] // A test fails loudly; that is what an unwrap is for here.

//! A database made by an older build is upgraded on open: it ends in exactly the schema a fresh
//! database gets, and keeps its data.

use std::path::Path;

use rusqlite::Connection;
use tandem_core::store::RecordQuery;
use tandem_core::{RecordKind, Store, WorkspaceId};
use tandem_storage_sqlite::{SCHEMA_VERSION, SqliteOptions, SqliteStore};

/// Every schema object's definition, by name.
fn schema(path: &std::path::Path) -> Vec<(String, Option<String>)> {
    let conn = Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare("SELECT name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().collect::<Result<_, _>>().unwrap()
}

#[tokio::test]
async fn a_version_1_database_upgrades_to_the_fresh_schema() {
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("old.db");
    let ws = WorkspaceId(uuid::Uuid::from_u128(7));
    {
        // What the first release left behind: schema version 1 and a workspace in it.
        let conn = Connection::open(&old).unwrap();
        conn.execute_batch(include_str!("../migrations/0001_init.sql")).unwrap();
        conn.execute_batch(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL);
             INSERT INTO schema_migrations VALUES (1, '2026-01-01T00:00:00Z');",
        )
        .unwrap();
        let doc = format!(
            r#"{{"id":"{}","name":"Federation","created_at":"2026-01-01T00:00:00Z","version":1}}"#,
            ws.0
        );
        conn.execute(
            "INSERT INTO workspaces (id, workspace_id, parent_id, version, doc) VALUES (?1, ?1, NULL, 1, ?2)",
            rusqlite::params![ws.0.as_bytes().to_vec(), doc],
        )
        .unwrap();
    }
    let upgraded = SqliteStore::open(&old, SqliteOptions::default()).unwrap();
    assert_eq!(upgraded.workspaces().await.unwrap()[0].name, "Federation");
    assert!(upgraded.records(ws, RecordKind::Webhook, &RecordQuery::all()).await.unwrap().is_empty());
    upgraded.close();

    let fresh = dir.path().join("fresh.db");
    SqliteStore::open(&fresh, SqliteOptions::default()).unwrap().close();
    let without_history = |s: Vec<(String, Option<String>)>| {
        s.into_iter().filter(|(name, _)| name != "schema_migrations").collect::<Vec<_>>()
    };
    assert_eq!(without_history(schema(&old)), without_history(schema(&fresh)));
    let versions = |path: &Path| -> Vec<i64> {
        Connection::open(path)
            .unwrap()
            .prepare("SELECT version FROM schema_migrations ORDER BY version")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    // Migration numbers may have gaps; the upgraded database records exactly what a fresh one does.
    assert_eq!(versions(&old), versions(&fresh));
    assert_eq!(versions(&old).last(), Some(&SCHEMA_VERSION));
}

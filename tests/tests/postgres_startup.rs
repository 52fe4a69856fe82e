//! What the PostgreSQL store promises when servers start: several instances starting at once on
//! one database migrate it once, and a database migrated by a newer build is refused.

use sqlx_core::query::query;
use sqlx_core::query_scalar::query_scalar;
use tandem_storage_postgres::{PostgresOptions, PostgresStore, SCHEMA_VERSION, migration_versions};

fn options() -> PostgresOptions {
    PostgresOptions { max_connections: 2, ..Default::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn servers_starting_together_migrate_once() {
    let Some(database) = tandem_tests::backends::postgres_database().await else { return };
    let starts: Vec<_> = (0..6)
        .map(|_| tokio::spawn(PostgresStore::connect_with(database.connect_options(), options())))
        .collect();
    let mut stores = Vec::new();
    for start in starts {
        stores.push(start.await.unwrap().expect("every server starts"));
    }
    let applied: Vec<i64> =
        query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
            .fetch_all(stores[0].pool())
            .await
            .unwrap();
    assert_eq!(applied, migration_versions());
    assert_eq!(applied.last(), Some(&SCHEMA_VERSION));
    // Starting again on an up-to-date schema changes nothing.
    PostgresStore::connect_with(database.connect_options(), options()).await.unwrap();
    for store in stores {
        store.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_schema_from_a_newer_build_is_refused() {
    let Some(database) = tandem_tests::backends::postgres_database().await else { return };
    let store = PostgresStore::connect_with(database.connect_options(), options()).await.unwrap();
    query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES ($1, 'from the future', TRUE, '\\x00', 0)",
    )
    .bind(SCHEMA_VERSION + 1)
    .execute(store.pool())
    .await
    .unwrap();
    store.close().await;
    let err = PostgresStore::connect_with(database.connect_options(), options()).await.unwrap_err();
    assert!(err.to_string().contains("newer than this build"), "{err}");
}

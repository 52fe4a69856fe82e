//! How each backend's test store is made.

use std::any::Any;
use std::sync::Arc;

use crate::TestStore;

/// Largest blob the test stores accept, so limit cases stay fast.
pub const TEST_MAX_BLOB: u64 = 1024 * 1024;

/// A store for one test, plus whatever must live as long as it (a temp dir, a database).
pub struct Harness {
    pub store: TestStore,
    _keep: Box<dyn Any + Send + Sync>,
}

impl std::fmt::Debug for Harness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Harness")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl Harness {
    pub fn new(store: TestStore, keep: impl Any + Send + Sync) -> Self {
        Self {
            store,
            _keep: Box::new(keep),
        }
    }
}

/// A fresh SQLite store in a temporary directory, with durable commits as in production.
pub async fn sqlite() -> Option<Harness> {
    let dir = tempfile::tempdir().expect("a temp dir");
    let options = tandem_storage_sqlite::SqliteOptions {
        max_blob_bytes: TEST_MAX_BLOB,
        ..Default::default()
    };
    let store = tandem_storage_sqlite::SqliteStore::open(dir.path().join("tandem.db"), options)
        .expect("sqlite opens");
    Some(Harness::new(Arc::new(store), dir))
}

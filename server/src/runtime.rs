//! The two things the sans-IO core asks its host for: the time and fresh ids.

use chrono::{DateTime, Utc};
use tandem_core::{Clock, IdSource};
use uuid::Uuid;

/// The operating system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// Time-ordered UUIDv7 ids: records listed "in id order" come out in creation order, and new
/// rows land at the end of the primary-key index instead of at random pages.
#[derive(Debug, Clone, Copy, Default)]
pub struct UuidV7Ids;

impl IdSource for UuidV7Ids {
    fn new_id(&self) -> Uuid {
        // `now_v7` draws on the uuid crate's process-wide counter, so ids stay strictly
        // increasing even when many are made within one millisecond.
        Uuid::now_v7()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v7_ids_increase_within_a_millisecond() {
        let ids = UuidV7Ids;
        let made: Vec<Uuid> = (0..1000).map(|_| ids.new_id()).collect();
        assert!(made.windows(2).all(|w| w[0] < w[1]));
        assert!(made.iter().all(|id| id.get_version_num() == 7));
    }

    #[test]
    fn system_clock_moves_forward() {
        let a = SystemClock.now();
        let b = SystemClock.now();
        assert!(b >= a);
    }
}

//! When a failed job runs again: exponential backoff with full jitter, or when the other side
//! said. Pure arithmetic; the runner supplies the random number.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tandem_core::JobFailure;

/// Exponential backoff: the wait after attempt `n` is drawn uniformly from
/// `[0, min(cap, base × factor^(n−1))]` ("full jitter"), so workers that failed together do not
/// retry together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub factor: u32,
    pub cap: Duration,
    /// The longest `RetryAfter` honoured; a longer one waits this long.
    pub max_retry_after: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(2),
            factor: 2,
            cap: Duration::from_secs(3600),
            max_retry_after: Duration::from_secs(24 * 3600),
        }
    }
}

impl Backoff {
    /// The longest wait after attempt `attempt` (1 for the first): `min(cap, base × factor^(attempt−1))`.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1);
        let growth = self.factor.max(1).checked_pow(exponent).unwrap_or(u32::MAX);
        self.base.checked_mul(growth).unwrap_or(Duration::MAX).min(self.cap)
    }

    /// The wait after attempt `attempt`, for `unit` drawn uniformly from `[0, 1)`.
    pub fn delay(&self, attempt: u32, unit: f64) -> Duration {
        let ceiling = self.ceiling(attempt);
        Duration::try_from_secs_f64(ceiling.as_secs_f64() * unit.clamp(0.0, 1.0))
            .map_or(ceiling, |d| d.min(ceiling))
    }
}

/// When attempt `attempt` of a job allowed `max_attempts` runs again after `failure`, or `None`
/// when it is a dead letter now (fatal, or out of attempts).
pub fn retry_at(
    failure: &JobFailure,
    attempt: u32,
    max_attempts: u32,
    now: DateTime<Utc>,
    backoff: &Backoff,
    unit: f64,
) -> Option<DateTime<Utc>> {
    let wait = match failure {
        JobFailure::Fatal(_) => return None,
        _ if attempt >= max_attempts => return None,
        JobFailure::Retry(_) => backoff.delay(attempt, unit),
        JobFailure::RetryAfter(_, wait) => (*wait).min(backoff.max_retry_after),
    };
    let wait = chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX);
    Some(now.checked_add_signed(wait).unwrap_or(DateTime::<Utc>::MAX_UTC))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn ceilings_double_up_to_the_cap() {
        let b = Backoff::default();
        let table =
            [(0, 2), (1, 2), (2, 4), (3, 8), (4, 16), (11, 2048), (12, 3600), (40, 3600), (u32::MAX, 3600)];
        for (attempt, expected) in table {
            assert_eq!(b.ceiling(attempt), secs(expected), "attempt {attempt}");
        }
        let tripling = Backoff { base: Duration::from_millis(100), factor: 3, cap: secs(60), ..b };
        assert_eq!(tripling.ceiling(3), Duration::from_millis(900));
    }

    #[test]
    fn jitter_spans_zero_to_the_ceiling() {
        let b = Backoff::default();
        assert_eq!(b.delay(3, 0.0), Duration::ZERO);
        assert_eq!(b.delay(3, 0.5), secs(4));
        assert_eq!(b.delay(3, 1.0), secs(8));
        assert_eq!(b.delay(3, 7.0), secs(8), "out-of-range draws are clamped");
    }

    fn check(failure: JobFailure, attempt: u32, max: u32, expected: Option<i64>) {
        let now = Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap();
        let got = retry_at(&failure, attempt, max, now, &Backoff::default(), 0.5);
        assert_eq!(
            got.map(|t| (t - now).num_milliseconds()),
            expected,
            "{failure:?} attempt {attempt}/{max}"
        );
    }

    #[test]
    fn retries_and_dead_letters() {
        let retry = || JobFailure::Retry("503".into());
        check(retry(), 1, 5, Some(1_000));
        check(retry(), 4, 5, Some(8_000));
        check(retry(), 5, 5, None);
        check(retry(), 9, 5, None);
        check(JobFailure::RetryAfter("429".into(), secs(90)), 1, 5, Some(90_000));
        check(JobFailure::RetryAfter("429".into(), Duration::from_millis(1500)), 2, 5, Some(1_500));
        check(JobFailure::RetryAfter("429".into(), secs(10 * 24 * 3600)), 1, 5, Some(24 * 3600 * 1000));
        check(JobFailure::RetryAfter("429".into(), secs(90)), 5, 5, None);
        check(JobFailure::Fatal("410".into()), 1, 5, None);
    }

    proptest! {
        #[test]
        fn delays_stay_within_bounds(
            base_ms in 1u64..10_000,
            factor in 1u32..5,
            cap_s in 1u64..100_000,
            attempt in 0u32..200,
            unit in 0.0f64..1.0,
        ) {
            let b = Backoff { base: Duration::from_millis(base_ms), factor, cap: secs(cap_s), ..Backoff::default() };
            let ceiling = b.ceiling(attempt);
            prop_assert!(ceiling <= b.cap);
            prop_assert!(b.ceiling(attempt + 1) >= ceiling, "ceilings never shrink");
            prop_assert!(b.delay(attempt, unit) <= ceiling);
        }

        #[test]
        fn a_job_is_retried_exactly_while_attempts_remain(attempt in 1u32..50, max in 1u32..50, unit in 0.0f64..1.0) {
            let now = Utc::now();
            let next = retry_at(&JobFailure::Retry("x".into()), attempt, max, now, &Backoff::default(), unit);
            prop_assert_eq!(next.is_some(), attempt < max);
            if let Some(at) = next {
                prop_assert!(at >= now);
            }
            prop_assert!(retry_at(&JobFailure::Fatal("x".into()), attempt, max, now, &Backoff::default(), unit).is_none());
        }
    }
}

//! One timezone-free timeline counted in whole minutes.
//!
//! Scheduling happens in the wall-clock time of the workspace (`NaiveDateTime`): a working day is
//! "08:00–17:00" wherever the workspace is, and daylight-saving shifts do not stretch or shrink it.
//! The edge that stores or shows dates converts with the workspace's offset. Seconds are dropped:
//! the scheduler works to the minute.

use chrono::{NaiveDate, NaiveDateTime, TimeDelta};
use std::hash::{BuildHasherDefault, Hasher};

/// Minutes since 1970-01-01 00:00 on the naive timeline.
pub(crate) type Minute = i64;

pub(crate) const MINUTES_PER_DAY: i64 = 1440;

/// The supported span of dates: 1900-01-01 up to (not including) 2200-01-01. Keeps every sum of
/// durations and lags far from overflow and bounds how far a calendar is ever unrolled.
pub(crate) const FIRST_DAY: i64 = -25_567;
pub(crate) const END_DAY: i64 = 84_006;

/// The longest duration or lag accepted: ten years of round-the-clock minutes.
pub(crate) const MAX_SPAN: i64 = 10 * 366 * MINUTES_PER_DAY;

fn epoch() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default().and_hms_opt(0, 0, 0).unwrap_or_default()
}

/// Days from 0001-01-01 (day 1 of the common era) to 1970-01-01.
const CE_TO_EPOCH: i64 = 719_163;

pub(crate) fn to_minute(t: NaiveDateTime) -> Minute {
    t.and_utc().timestamp().div_euclid(60)
}

pub(crate) fn from_minute(m: Minute) -> NaiveDateTime {
    let m = m.clamp(FIRST_DAY * MINUTES_PER_DAY, END_DAY * MINUTES_PER_DAY);
    let (day, minute) = (m.div_euclid(MINUTES_PER_DAY), m.rem_euclid(MINUTES_PER_DAY) as u32);
    // Straight from the day number: much cheaper than adding a duration to the epoch.
    NaiveDate::from_num_days_from_ce_opt((day + CE_TO_EPOCH) as i32)
        .and_then(|d| d.and_hms_opt(minute / 60, minute % 60, 0))
        .unwrap_or_else(epoch)
}

pub(crate) fn day_of(m: Minute) -> i64 {
    m.div_euclid(MINUTES_PER_DAY)
}

pub(crate) fn date_to_day(d: NaiveDate) -> i64 {
    (d - epoch().date()).num_days()
}

pub(crate) fn day_to_date(day: i64) -> NaiveDate {
    epoch().date().checked_add_signed(TimeDelta::days(day.clamp(FIRST_DAY, END_DAY))).unwrap_or_default()
}

pub(crate) fn in_range(t: NaiveDateTime) -> bool {
    (FIRST_DAY..END_DAY).contains(&day_of(to_minute(t)))
}

/// Hashes ids for the scheduler's maps: the bytes folded into one word, then SplitMix64's
/// finaliser so every bit of the id reaches the low bits hash tables index by (item ids are random
/// UUIDs, time-ordered ones, or small counters in tests). Several times faster than SipHash; not
/// for keys an attacker picks in a long-lived map.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = self.0.rotate_left(29) ^ u64::from_le_bytes(word);
        }
    }

    fn write_usize(&mut self, n: usize) {
        self.write(&n.to_le_bytes());
    }

    fn finish(&self) -> u64 {
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

pub(crate) type IdBuild = BuildHasherDefault<IdHasher>;

/// `Mon 2024-03-04 09:00`: how explanations and errors print an instant.
pub(crate) fn show(t: NaiveDateTime) -> String {
    t.format("%a %Y-%m-%d %H:%M").to_string()
}

/// `2d 4h`, `-30min`: a span of working minutes for people, counting 8-hour days.
pub(crate) fn show_span(minutes: i64) -> String {
    let sign = if minutes < 0 { "-" } else { "+" };
    let m = minutes.unsigned_abs();
    let (d, h, min) = (m / 480, (m % 480) / 60, m % 60);
    let mut parts = Vec::new();
    if d > 0 {
        parts.push(format!("{d}d"));
    }
    if h > 0 {
        parts.push(format!("{h}h"));
    }
    if min > 0 || parts.is_empty() {
        parts.push(format!("{min}min"));
    }
    format!("{sign}{}", parts.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap()
    }

    #[test]
    fn minutes_round_trip_and_drop_seconds() {
        for (input, minute) in [
            ("1970-01-01 00:00:00", 0),
            ("1970-01-01 00:01:59", 1),
            ("1969-12-31 23:59:30", -1),
            ("2024-03-04 09:00:00", 28_492_380),
        ] {
            assert_eq!(to_minute(at(input)), minute, "{input}");
            assert_eq!(to_minute(from_minute(minute)), minute);
        }
        assert_eq!(day_to_date(FIRST_DAY), NaiveDate::from_ymd_opt(1900, 1, 1).unwrap());
        assert_eq!(day_to_date(END_DAY), NaiveDate::from_ymd_opt(2200, 1, 1).unwrap());
        assert!(in_range(at("1900-01-01 00:00:00")) && !in_range(at("1899-12-31 23:59:00")));
        assert!(in_range(at("2199-12-31 23:59:00")) && !in_range(at("2200-01-01 00:00:00")));
    }

    #[test]
    fn spans_read_like_people_write_them() {
        for (m, s) in [(0, "+0min"), (480, "+1d"), (-90, "-1h 30min"), (1000, "+2d 40min")] {
            assert_eq!(show_span(m), s);
        }
    }
}

//! Scheduled reports: a saved view mailed on a schedule — daily, weekly on chosen days, or a
//! cron-like expression — as CSV or XLSX (attached) or HTML (in the body), to users or addresses.
//!
//! - Times are UTC: workspaces have no time zone yet.
//! - A report runs with its owner's permissions: the view is run as the owner (their scope and
//!   redaction), so it never shows what the owner cannot see; a disabled owner sends nothing.
//! - The server's scheduler finds due reports and runs `QueueReport` for each: one versioned
//!   commit moves `next_run` on and enqueues a `report.send` job, so racing servers queue each
//!   occurrence once. The job runs the view and `DeliverReport` stores the file and enqueues one
//!   `mail.send` per recipient, with the file attached.

use chrono::{DateTime, Datelike, Duration, NaiveTime, Timelike, Utc, Weekday};
use serde::{Deserialize, Serialize};

use crate::error::Invalid;
use crate::ids::{ReportId, UserId, ViewId, WorkspaceId};

/// The job that runs one occurrence of a report.
pub const REPORT_SEND_JOB: &str = "report.send";

/// At most this many recipients per report.
pub const MAX_RECIPIENTS: usize = 50;

/// The payload of a `report.send` job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportJob {
    pub report: ReportId,
    /// The occurrence this job sends (the `next_run` it was queued for).
    pub occurrence: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportFormat {
    #[default]
    Csv,
    Xlsx,
    /// A table in the mail's body.
    Html,
}

/// Who gets a report: a user of the workspace (at their current address) or an address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Recipient {
    User(UserId),
    Address(String),
}

/// When a report is sent (UTC).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "every", rename_all = "snake_case")]
pub enum ReportSchedule {
    /// Every day at `at` (`08:00`).
    Day { at: String },
    /// On the given days at `at`.
    Week { days: Vec<Weekday>, at: String },
    /// `minute hour day-of-month month day-of-week`, each `*`, a number, a list (`1,15`), a range
    /// (`1-5`) or a step (`*/15`, `8-18/2`); day of week 0–7 with 0 and 7 Sunday. When both day
    /// fields are restricted, either may match (as cron does).
    Cron { expression: String },
}

fn time_of_day(at: &str) -> Result<NaiveTime, Invalid> {
    NaiveTime::parse_from_str(at.trim(), "%H:%M")
        .map_err(|_| Invalid::new("schedule.at", format!("'{at}' is not a time like 08:00")))
}

impl ReportSchedule {
    pub fn validate(&self) -> Result<(), Invalid> {
        match self {
            ReportSchedule::Day { at } => time_of_day(at).map(|_| ()),
            ReportSchedule::Week { days, at } => {
                if days.is_empty() {
                    return Err(Invalid::new("schedule.days", "name at least one day"));
                }
                time_of_day(at).map(|_| ())
            }
            ReportSchedule::Cron { expression } => Cron::parse(expression).map(|_| ()),
        }
    }

    /// The first time after `after` (strictly) this schedule fires, to the minute.
    pub fn next_after(&self, after: DateTime<Utc>) -> Result<DateTime<Utc>, Invalid> {
        let cron = match self {
            ReportSchedule::Day { at } => {
                let t = time_of_day(at)?;
                Cron::parse(&format!("{} {} * * *", t.minute(), t.hour()))?
            }
            ReportSchedule::Week { days, at } => {
                let t = time_of_day(at)?;
                let days: Vec<String> = days.iter().map(|d| d.num_days_from_sunday().to_string()).collect();
                Cron::parse(&format!("{} {} * * {}", t.minute(), t.hour(), days.join(",")))?
            }
            ReportSchedule::Cron { expression } => Cron::parse(expression)?,
        };
        cron.next_after(after).ok_or_else(|| Invalid::new("schedule", "never fires in the next five years"))
    }
}

/// A parsed cron expression: the allowed values of each field as bit sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cron {
    minutes: u64,
    hours: u32,
    days: u32,
    months: u16,
    weekdays: u8,
    days_restricted: bool,
    weekdays_restricted: bool,
}

fn field(text: &str, name: &str, min: u32, max: u32) -> Result<(u64, bool), Invalid> {
    let bad = |why: String| Invalid::new("schedule.expression", format!("{name} '{text}': {why}"));
    let mut bits = 0u64;
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => {
                let step: u32 = s.parse().map_err(|_| bad(format!("'{s}' is not a step")))?;
                if step == 0 {
                    return Err(bad("a step of 0".into()));
                }
                (r, step)
            }
            None => (part, 1),
        };
        let (from, to) = if range == "*" {
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            let a: u32 = a.parse().map_err(|_| bad(format!("'{a}' is not a number")))?;
            let b: u32 = b.parse().map_err(|_| bad(format!("'{b}' is not a number")))?;
            (a, b)
        } else {
            let n: u32 = range.parse().map_err(|_| bad(format!("'{range}' is not a number")))?;
            (n, if step > 1 { max } else { n })
        };
        if from < min || to > max || from > to {
            return Err(bad(format!("must be within {min}–{max}")));
        }
        let mut v = from;
        while v <= to {
            bits |= 1 << v;
            v += step;
        }
    }
    Ok((bits, text != "*"))
}

impl Cron {
    pub fn parse(expression: &str) -> Result<Cron, Invalid> {
        let parts: Vec<&str> = expression.split_whitespace().collect();
        let [m, h, dom, mon, dow] = parts[..] else {
            return Err(Invalid::new(
                "schedule.expression",
                format!("'{expression}' needs five fields: minute hour day-of-month month day-of-week"),
            ));
        };
        let (minutes, _) = field(m, "minute", 0, 59)?;
        let (hours, _) = field(h, "hour", 0, 23)?;
        let (days, days_restricted) = field(dom, "day of month", 1, 31)?;
        let (months, _) = field(mon, "month", 1, 12)?;
        let (mut weekdays, weekdays_restricted) = field(dow, "day of week", 0, 7)?;
        if weekdays & (1 << 7) != 0 {
            weekdays |= 1;
        }
        Ok(Cron {
            minutes,
            hours: hours as u32,
            days: days as u32,
            months: months as u16,
            weekdays: (weekdays & 0x7f) as u8,
            days_restricted,
            weekdays_restricted,
        })
    }

    fn day_matches(&self, t: DateTime<Utc>) -> bool {
        let dom = self.days & (1 << t.day()) != 0;
        let dow = self.weekdays & (1 << t.weekday().num_days_from_sunday()) != 0;
        let day = match (self.days_restricted, self.weekdays_restricted) {
            (true, true) => dom || dow,
            _ => dom && dow,
        };
        day && self.months & (1 << t.month()) != 0
    }

    /// The first matching minute after `after`, within five years.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let start = after.with_second(0)?.with_nanosecond(0)? + Duration::minutes(1);
        let mut day = start.date_naive();
        for _ in 0..(5 * 366) {
            let midnight = day.and_hms_opt(0, 0, 0)?.and_utc();
            if self.day_matches(midnight) {
                for h in (0..24).filter(|h| self.hours & (1 << h) != 0) {
                    for m in (0..60).filter(|m| self.minutes & (1 << m) != 0) {
                        let t = midnight + Duration::minutes(i64::from(h) * 60 + i64::from(m));
                        if t >= start {
                            return Some(t);
                        }
                    }
                }
            }
            day = day.succ_opt()?;
        }
        None
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduledReport {
    pub id: ReportId,
    pub workspace_id: WorkspaceId,
    pub name: String,
    /// Whose permissions it runs with: the person who made it.
    pub owner: UserId,
    pub view: ViewId,
    pub schedule: ReportSchedule,
    #[serde(default)]
    pub format: ReportFormat,
    pub recipients: Vec<Recipient>,
    pub enabled: bool,
    /// When it is next due (UTC).
    pub next_run: DateTime<Utc>,
    #[serde(default)]
    pub last_run: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

/// Checks recipients: at least one, at most [`MAX_RECIPIENTS`], addresses that look like ones.
pub fn validate_recipients(recipients: &[Recipient]) -> Result<Vec<Recipient>, Invalid> {
    if recipients.is_empty() {
        return Err(Invalid::new("recipients", "name at least one user or address"));
    }
    if recipients.len() > MAX_RECIPIENTS {
        return Err(Invalid::new("recipients", format!("at most {MAX_RECIPIENTS}")));
    }
    let mut out: Vec<Recipient> = Vec::new();
    for (i, r) in recipients.iter().enumerate() {
        let r = match r {
            Recipient::Address(a) => {
                let a = crate::people::normalise_email(&format!("recipients[{i}]"), a)?;
                Recipient::Address(a)
            }
            user => user.clone(),
        };
        if !out.contains(&r) {
            out.push(r);
        }
    }
    Ok(out)
}

impl crate::desk::Desk {
    /// The reports the reader may see: their own; administrators see every one.
    pub async fn reports(
        &self,
        actor: &crate::access::Actor,
    ) -> Result<Vec<ScheduledReport>, crate::error::DeskError> {
        if !actor.is_staff() {
            return Err(crate::error::DeskError::Forbidden("customers do not read reports".into()));
        }
        let all: Vec<ScheduledReport> =
            crate::store::list(self.store().as_ref(), actor.workspace_id, &crate::store::RecordQuery::all())
                .await?;
        Ok(all.into_iter().filter(|r| sees(actor, r)).collect())
    }

    pub async fn report(
        &self,
        actor: &crate::access::Actor,
        id: ReportId,
    ) -> Result<ScheduledReport, crate::error::DeskError> {
        let r = crate::desk::load::<ScheduledReport>(self.store().as_ref(), actor.workspace_id, id).await?;
        if !sees(actor, &r) {
            return Err(crate::error::DeskError::not_found(format!("report {id}")));
        }
        Ok(r)
    }

    /// Enabled reports of the workspace due at `now` (the scheduler's question).
    pub async fn due_reports(
        &self,
        actor: &crate::access::Actor,
        now: DateTime<Utc>,
    ) -> Result<Vec<ReportId>, crate::error::DeskError> {
        let all: Vec<ScheduledReport> =
            crate::store::list(self.store().as_ref(), actor.workspace_id, &crate::store::RecordQuery::all())
                .await?;
        Ok(all.into_iter().filter(|r| r.enabled && r.next_run <= now).map(|r| r.id).collect())
    }
}

fn sees(actor: &crate::access::Actor, r: &ScheduledReport) -> bool {
    use crate::access::ActorKind;
    match &actor.kind {
        ActorKind::ServerAdmin | ActorKind::System => true,
        ActorKind::User(u) => u.role.is_staff() && (u.id == r.owner || u.role == crate::people::Role::Admin),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn schedules_fire_at_the_next_matching_minute() {
        let monday_noon = at("2026-03-02T12:00:00Z");
        let cases: Vec<(ReportSchedule, &str)> = vec![
            (ReportSchedule::Day { at: "08:00".into() }, "2026-03-03T08:00:00Z"),
            (ReportSchedule::Day { at: "12:30".into() }, "2026-03-02T12:30:00Z"),
            (ReportSchedule::Day { at: "12:00".into() }, "2026-03-03T12:00:00Z"),
            (
                ReportSchedule::Week { days: vec![Weekday::Fri, Weekday::Mon], at: "07:15".into() },
                "2026-03-06T07:15:00Z",
            ),
            (ReportSchedule::Cron { expression: "*/20 9-17 * * 1-5".into() }, "2026-03-02T12:20:00Z"),
            (ReportSchedule::Cron { expression: "0 6 1 * *".into() }, "2026-04-01T06:00:00Z"),
            (ReportSchedule::Cron { expression: "0 6 13 * 5".into() }, "2026-03-06T06:00:00Z"),
            (ReportSchedule::Cron { expression: "0 0 * * 7".into() }, "2026-03-08T00:00:00Z"),
            (ReportSchedule::Cron { expression: "0 0 29 2 *".into() }, "2028-02-29T00:00:00Z"),
        ];
        for (schedule, next) in cases {
            assert_eq!(schedule.next_after(monday_noon).unwrap(), at(next), "{schedule:?}");
        }
    }

    #[test]
    fn bad_schedules_name_what_is_wrong() {
        let cases = [
            (ReportSchedule::Day { at: "25:00".into() }, "schedule.at"),
            (ReportSchedule::Week { days: vec![], at: "08:00".into() }, "schedule.days"),
            (ReportSchedule::Cron { expression: "* * *".into() }, "schedule.expression"),
            (ReportSchedule::Cron { expression: "61 * * * *".into() }, "schedule.expression"),
            (ReportSchedule::Cron { expression: "*/0 * * * *".into() }, "schedule.expression"),
            (ReportSchedule::Cron { expression: "0 0 31 2 *".into() }, "schedule"),
        ];
        for (schedule, field) in cases {
            let e = schedule
                .validate()
                .and_then(|()| schedule.next_after(at("2026-03-02T12:00:00Z")).map(|_| ()));
            assert_eq!(e.unwrap_err().field, field, "{schedule:?}");
        }
        assert_eq!(validate_recipients(&[]).unwrap_err().field, "recipients");
        let e = validate_recipients(&[Recipient::Address("not an address".into())]).unwrap_err();
        assert_eq!(e.field, "recipients[0]");
    }
}

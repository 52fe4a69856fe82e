//! Working calendars: a week pattern of working hours, exceptions (holidays, short days, a
//! working Saturday), one workspace calendar and per-user calendars layered on top of it.
//!
//! Scheduling counts *working minutes*. A [`WorkTable`] unrolls a calendar into a per-day table of
//! cumulative working minutes, so that "how much work lies before this instant" and "when does the
//! n-th working minute start" are a lookup and a binary search. Tables grow on demand, a year or
//! more at a time, within the supported date span.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{Datelike, NaiveDate, NaiveDateTime, Weekday};
use serde::{Deserialize, Serialize};

use super::error::ScheduleError;
use super::time::{self, END_DAY, FIRST_DAY, MINUTES_PER_DAY, Minute};
use crate::error::Invalid;
use crate::ids::UserId;

/// Working time on one day: sorted, non-overlapping spans in minutes after midnight, written
/// `"08:00-12:00 13:00-17:00"` (an empty string is a day off). Touching spans are merged.
#[derive(Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct WorkingHours {
    spans: Vec<(u16, u16)>,
}

impl WorkingHours {
    /// A day off.
    pub fn none() -> Self {
        Self::default()
    }

    /// Parses `"08:00-12:00 13:00-17:00"` (spans separated by spaces or commas; `24:00` ends a
    /// day).
    pub fn parse(text: &str) -> Result<Self, Invalid> {
        let mut spans: Vec<(u16, u16)> = Vec::new();
        for part in text.split([' ', ',']).filter(|p| !p.is_empty()) {
            let (from, to) = part
                .split_once('-')
                .ok_or_else(|| Invalid::new("", format!("\"{part}\" is not a span like 09:00-17:00")))?;
            let (from, to) = (clock_minute(from)?, clock_minute(to)?);
            if from >= to {
                return Err(Invalid::new("", format!("\"{part}\" ends before it starts")));
            }
            match spans.last_mut() {
                Some(last) if from < last.1 => {
                    return Err(Invalid::new(
                        "",
                        format!("\"{part}\" overlaps or precedes an earlier span; list spans in order"),
                    ));
                }
                Some(last) if from == last.1 => last.1 = to,
                _ => spans.push((from, to)),
            }
        }
        Ok(Self { spans })
    }

    /// Working minutes in the day.
    pub fn minutes(&self) -> i64 {
        self.spans.iter().map(|&(a, b)| i64::from(b - a)).sum()
    }

    pub fn is_working(&self) -> bool {
        !self.spans.is_empty()
    }

    /// The spans as minutes after midnight, in order.
    pub fn spans(&self) -> &[(u16, u16)] {
        &self.spans
    }

    /// Working minutes before `minute` (0..=1440) of the day.
    fn before(&self, minute: u16) -> i64 {
        let mut n = 0;
        for &(a, b) in &self.spans {
            if minute <= a {
                break;
            }
            n += i64::from(minute.min(b) - a);
        }
        n
    }

    /// Whether the minute starting at `minute` (0..1440) is working time.
    fn works_at(&self, minute: u16) -> bool {
        self.spans.iter().any(|&(a, b)| a <= minute && minute < b)
    }

    /// The minute of the day at which the `n`-th working minute (0-based) starts.
    fn nth(&self, mut n: i64) -> u16 {
        for &(a, b) in &self.spans {
            let len = i64::from(b - a);
            if n < len {
                return a + n as u16;
            }
            n -= len;
        }
        self.spans.last().map_or(0, |s| s.1)
    }
}

fn clock_minute(s: &str) -> Result<u16, Invalid> {
    let bad = || Invalid::new("", format!("\"{s}\" is not a time like 08:30"));
    let (h, m) = s.split_once(':').ok_or_else(bad)?;
    let (h, m): (u16, u16) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if m >= 60 || h > 24 || (h == 24 && m > 0) {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

impl fmt::Display for WorkingHours {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, &(a, b)) in self.spans.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{:02}:{:02}-{:02}:{:02}", a / 60, a % 60, b / 60, b % 60)?;
        }
        Ok(())
    }
}

impl fmt::Debug for WorkingHours {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WorkingHours(\"{self}\")")
    }
}

impl TryFrom<String> for WorkingHours {
    type Error = Invalid;
    fn try_from(s: String) -> Result<Self, Invalid> {
        Self::parse(&s)
    }
}

impl From<WorkingHours> for String {
    fn from(h: WorkingHours) -> String {
        h.to_string()
    }
}

/// Working hours for each day of the week, Monday first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeekPattern {
    pub days: [WorkingHours; 7],
}

impl WeekPattern {
    /// Monday to Friday, 08:00–12:00 and 13:00–17:00: eight working hours a day.
    pub fn standard() -> Self {
        let day = WorkingHours { spans: vec![(480, 720), (780, 1020)] };
        Self::on(&[Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu, Weekday::Fri], &day)
    }

    /// The same hours on the given weekdays, none on the others.
    pub fn on(days: &[Weekday], hours: &WorkingHours) -> Self {
        let mut week: [WorkingHours; 7] = Default::default();
        for d in days {
            week[d.num_days_from_monday() as usize] = hours.clone();
        }
        Self { days: week }
    }

    pub fn day(&self, day: Weekday) -> &WorkingHours {
        &self.days[day.num_days_from_monday() as usize]
    }

    fn validate(&self) -> Result<(), Invalid> {
        if self.days.iter().all(|d| !d.is_working()) {
            return Err(Invalid::new("week", "has no working hours on any day"));
        }
        Ok(())
    }
}

/// Dates that differ from the week pattern: a holiday (no hours), a short day, a working weekend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exception {
    pub name: String,
    pub from: NaiveDate,
    /// Inclusive.
    pub to: NaiveDate,
    #[serde(default)]
    pub hours: WorkingHours,
}

impl Exception {
    /// A day off.
    pub fn holiday(name: impl Into<String>, date: NaiveDate) -> Self {
        Self { name: name.into(), from: date, to: date, hours: WorkingHours::none() }
    }

    /// Days off from `from` to `to`, inclusive (a vacation).
    pub fn days_off(name: impl Into<String>, from: NaiveDate, to: NaiveDate) -> Self {
        Self { name: name.into(), from, to, hours: WorkingHours::none() }
    }
}

fn validate_exceptions(exceptions: &[Exception]) -> Result<(), Invalid> {
    let mut sorted: Vec<(usize, &Exception)> = exceptions.iter().enumerate().collect();
    sorted.sort_by_key(|(_, e)| e.from);
    for (i, e) in exceptions.iter().enumerate() {
        let field = format!("exceptions[{i}]");
        if e.to < e.from {
            return Err(Invalid::new(
                field,
                format!("\"{}\" ends ({}) before it starts ({})", e.name, e.to, e.from),
            ));
        }
        let (a, b) = (time::date_to_day(e.from), time::date_to_day(e.to));
        if a < FIRST_DAY || b >= END_DAY {
            return Err(Invalid::new(field, format!("\"{}\" lies outside 1900–2199", e.name)));
        }
    }
    for w in sorted.windows(2) {
        if w[1].1.from <= w[0].1.to {
            return Err(Invalid::new(
                format!("exceptions[{}]", w[1].0),
                format!("\"{}\" overlaps \"{}\"", w[1].1.name, w[0].1.name),
            ));
        }
    }
    Ok(())
}

/// The workspace calendar: the default for every task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Calendar {
    pub week: WeekPattern,
    #[serde(default)]
    pub exceptions: Vec<Exception>,
}

impl Default for Calendar {
    fn default() -> Self {
        Self { week: WeekPattern::standard(), exceptions: Vec::new() }
    }
}

/// A person's calendar. It overrides the workspace calendar: its own week pattern if it has one,
/// its own exceptions first, then the workspace's exceptions (public holidays apply to everybody
/// unless the person's calendar says otherwise for that date).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct UserCalendar {
    #[serde(default)]
    pub week: Option<WeekPattern>,
    #[serde(default)]
    pub exceptions: Vec<Exception>,
}

/// Which calendar a task follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", content = "id", rename_all = "snake_case")]
pub enum CalendarRef {
    Workspace,
    User(UserId),
}

impl fmt::Display for CalendarRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CalendarRef::Workspace => f.write_str("the workspace calendar"),
            CalendarRef::User(u) => write!(f, "the calendar of user {u}"),
        }
    }
}

/// Every calendar a plan is scheduled with.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Calendars {
    pub workspace: Calendar,
    #[serde(default)]
    pub users: BTreeMap<UserId, UserCalendar>,
}

impl Calendars {
    pub fn new(workspace: Calendar) -> Self {
        Self { workspace, users: BTreeMap::new() }
    }

    pub fn with_user(mut self, user: UserId, calendar: UserCalendar) -> Self {
        self.users.insert(user, calendar);
        self
    }

    /// The calendar a task assigned to `resource` follows.
    pub fn calendar_of(&self, resource: Option<UserId>) -> CalendarRef {
        match resource {
            Some(u) if self.users.contains_key(&u) => CalendarRef::User(u),
            _ => CalendarRef::Workspace,
        }
    }

    pub fn validate(&self) -> Result<(), Invalid> {
        let ws = |e: Invalid| e.within("calendars.workspace");
        self.workspace.week.validate().map_err(ws)?;
        validate_exceptions(&self.workspace.exceptions).map_err(ws)?;
        for (user, cal) in &self.users {
            let within = |e: Invalid| e.within(&format!("calendars.users[{user}]"));
            if let Some(week) = &cal.week {
                week.validate().map_err(within)?;
            }
            validate_exceptions(&cal.exceptions).map_err(within)?;
        }
        Ok(())
    }

    /// The working hours of `calendar` on `date`, exceptions applied.
    pub fn hours_on(&self, calendar: CalendarRef, date: NaiveDate) -> &WorkingHours {
        let user = match calendar {
            CalendarRef::User(u) => self.users.get(&u),
            CalendarRef::Workspace => None,
        };
        let layers = [user.map_or(&[][..], |u| &u.exceptions[..]), &self.workspace.exceptions[..]];
        for layer in layers {
            if let Some(e) = layer.iter().find(|e| e.from <= date && date <= e.to) {
                return &e.hours;
            }
        }
        user.and_then(|u| u.week.as_ref()).unwrap_or(&self.workspace.week).day(date.weekday())
    }

    /// The instant `minutes` working minutes after `from` in `calendar` (the end of the last of
    /// them), or before it when negative (the start of the first of them); with 0, the next working
    /// start. For one-off questions; the scheduler keeps its tables between calls.
    pub fn add_working_minutes(
        &self,
        calendar: CalendarRef,
        from: NaiveDateTime,
        minutes: i64,
    ) -> Result<NaiveDateTime, ScheduleError> {
        self.validate()?;
        let mut table = WorkTable::new(self, calendar);
        let from = time::to_minute(from);
        let o = table.ord(from)? + minutes.clamp(-time::MAX_SPAN, time::MAX_SPAN);
        let at = if minutes > 0 { table.end_of(o)? } else { table.start_of(o)? };
        Ok(time::from_minute(at))
    }

    /// Working minutes from `from` to `to` in `calendar` (negative when `to` is earlier).
    pub fn working_minutes_between(
        &self,
        calendar: CalendarRef,
        from: NaiveDateTime,
        to: NaiveDateTime,
    ) -> Result<i64, ScheduleError> {
        self.validate()?;
        let mut table = WorkTable::new(self, calendar);
        Ok(table.ord(time::to_minute(to))? - table.ord(time::to_minute(from))?)
    }
}

/// A calendar unrolled into days: `cum[i]` working minutes lie before day `first_day + i`,
/// counted from wherever the table was first built (so values may be negative).
#[derive(Debug, Clone)]
pub(crate) struct WorkTable {
    calendar: CalendarRef,
    /// Distinct day templates: the seven weekdays, then each exception's hours.
    templates: Vec<WorkingHours>,
    week: [u16; 7],
    /// `(first day, last day, template)` sorted by first day; user exceptions, then workspace ones.
    layers: [Vec<(i64, i64, u16)>; 2],
    first_day: i64,
    cum: Vec<i64>,
    day_template: Vec<u16>,
    /// The day the last `start_of` landed on: the next one is usually on it or a few days on.
    hint: usize,
}

/// How many days a table grows by at least.
const CHUNK_DAYS: i64 = 512;

impl WorkTable {
    pub(crate) fn new(calendars: &Calendars, calendar: CalendarRef) -> Self {
        let user = match calendar {
            CalendarRef::User(u) => calendars.users.get(&u),
            CalendarRef::Workspace => None,
        };
        let week = user.and_then(|u| u.week.as_ref()).unwrap_or(&calendars.workspace.week);
        let mut templates: Vec<WorkingHours> = week.days.to_vec();
        let week_ix = [0, 1, 2, 3, 4, 5, 6];
        let mut layer = |exceptions: &[Exception]| {
            let mut rows: Vec<(i64, i64, u16)> = exceptions
                .iter()
                .map(|e| {
                    let ix = templates.iter().position(|t| *t == e.hours).unwrap_or_else(|| {
                        templates.push(e.hours.clone());
                        templates.len() - 1
                    });
                    (time::date_to_day(e.from), time::date_to_day(e.to), ix as u16)
                })
                .collect();
            rows.sort_unstable();
            rows
        };
        let layers =
            [layer(user.map_or(&[][..], |u| &u.exceptions[..])), layer(&calendars.workspace.exceptions)];
        Self {
            calendar,
            templates,
            week: week_ix,
            layers,
            first_day: 0,
            cum: Vec::new(),
            day_template: Vec::new(),
            hint: 0,
        }
    }

    pub(crate) fn calendar(&self) -> CalendarRef {
        self.calendar
    }

    fn template_of(&self, day: i64) -> u16 {
        for layer in &self.layers {
            let i = layer.partition_point(|&(from, _, _)| from <= day);
            if i > 0 && layer[i - 1].1 >= day {
                return layer[i - 1].2;
            }
        }
        // 1970-01-01 was a Thursday.
        self.week[(day + 3).rem_euclid(7) as usize]
    }

    fn out_of_range(&self, what: &str) -> ScheduleError {
        ScheduleError::OutOfRange(format!(
            "{} has no working time {what} within the supported dates (1900–2199)",
            self.calendar
        ))
    }

    /// Makes the table cover `[from, to)` in days.
    fn cover(&mut self, from: i64, to: i64) -> Result<(), ScheduleError> {
        if self.cum.is_empty() {
            let start = from.clamp(FIRST_DAY, END_DAY - 1);
            self.first_day = start;
            self.cum.push(0);
            self.extend_forward(start + 1)?;
        }
        if to > self.end_day() {
            let want = to.max(self.end_day() + CHUNK_DAYS.max(self.day_template.len() as i64));
            self.extend_forward(want.min(END_DAY))?;
            if to > self.end_day() {
                return Err(self.out_of_range("after that"));
            }
        }
        if from < self.first_day {
            let want = from.min(self.first_day - CHUNK_DAYS.max(self.day_template.len() as i64));
            self.extend_backward(want.max(FIRST_DAY));
            if from < self.first_day {
                return Err(self.out_of_range("before that"));
            }
        }
        Ok(())
    }

    fn end_day(&self) -> i64 {
        self.first_day + self.day_template.len() as i64
    }

    fn extend_forward(&mut self, to: i64) -> Result<(), ScheduleError> {
        let mut total = self.cum.last().copied().unwrap_or(0);
        for day in self.end_day()..to {
            let t = self.template_of(day);
            total += self.templates[t as usize].minutes();
            self.day_template.push(t);
            self.cum.push(total);
        }
        Ok(())
    }

    fn extend_backward(&mut self, from: i64) {
        if from >= self.first_day {
            return;
        }
        let days: Vec<u16> = (from..self.first_day).map(|d| self.template_of(d)).collect();
        let mut cum = Vec::with_capacity(days.len() + self.cum.len());
        let added: i64 = days.iter().map(|&t| self.templates[t as usize].minutes()).sum();
        let mut total = self.cum[0] - added;
        for &t in &days {
            cum.push(total);
            total += self.templates[t as usize].minutes();
        }
        cum.extend_from_slice(&self.cum);
        let mut templates = days;
        templates.extend_from_slice(&self.day_template);
        self.hint += templates.len() - self.day_template.len();
        self.cum = cum;
        self.day_template = templates;
        self.first_day = from;
    }

    fn hours(&self, day: i64) -> &WorkingHours {
        &self.templates[self.day_template[(day - self.first_day) as usize] as usize]
    }

    /// Working minutes before instant `t` (relative to the table's origin).
    pub(crate) fn ord(&mut self, t: Minute) -> Result<i64, ScheduleError> {
        let day = time::day_of(t);
        if day < self.first_day || day >= self.end_day() {
            self.cover(day, day + 1)?;
        }
        let i = (day - self.first_day) as usize;
        Ok(self.cum[i] + self.hours(day).before((t - day * MINUTES_PER_DAY) as u16))
    }

    /// Whether the minute starting at `t` is working time.
    pub(crate) fn works_at(&mut self, t: Minute) -> Result<bool, ScheduleError> {
        let day = time::day_of(t);
        if day < self.first_day || day >= self.end_day() {
            self.cover(day, day + 1)?;
        }
        Ok(self.hours(day).works_at((t - day * MINUTES_PER_DAY) as u16))
    }

    /// Working minutes whose start is at or before `t`.
    pub(crate) fn ord_after(&mut self, t: Minute) -> Result<i64, ScheduleError> {
        Ok(self.ord(t)? + i64::from(self.works_at(t)?))
    }

    /// The instant the working minute with ordinal `o` starts: the latest instant with `o`
    /// working minutes before it.
    pub(crate) fn start_of(&mut self, o: i64) -> Result<Minute, ScheduleError> {
        if self.cum.is_empty() {
            self.cover(0, 1)?;
        }
        while self.cum[self.cum.len() - 1] <= o {
            let before = self.end_day();
            self.cover(before, before + 1)?;
        }
        while self.cum[0] > o {
            let before = self.first_day;
            self.cover(before - 1, before)?;
        }
        // Day i holds ordinals cum[i]..cum[i + 1]; days without work hold none and are skipped.
        let mut i = self.hint.min(self.cum.len() - 2);
        if self.cum[i] <= o {
            let mut steps = 0;
            while self.cum[i + 1] <= o && steps < 8 {
                i += 1;
                steps += 1;
            }
        }
        if !(self.cum[i] <= o && o < self.cum[i + 1]) {
            i = self.cum.partition_point(|&c| c <= o) - 1;
        }
        self.hint = i;
        let day = self.first_day + i as i64;
        Ok(day * MINUTES_PER_DAY + i64::from(self.hours(day).nth(o - self.cum[i])))
    }

    /// The instant the working minute with ordinal `o - 1` ends: the earliest instant with `o`
    /// working minutes before it.
    pub(crate) fn end_of(&mut self, o: i64) -> Result<Minute, ScheduleError> {
        Ok(self.start_of(o - 1)? + 1)
    }

    /// The earliest instant at or after `t` where a milestone may sit: `t` itself when it is in
    /// working time or ends a working period, else the next working start.
    pub(crate) fn milestone_at_or_after(&mut self, t: Minute) -> Result<Minute, ScheduleError> {
        if self.works_at(t)? || self.works_at(t - 1)? {
            return Ok(t);
        }
        let o = self.ord(t)?;
        self.start_of(o)
    }

    /// The latest instant at or before `t` where a milestone may sit.
    pub(crate) fn milestone_at_or_before(&mut self, t: Minute) -> Result<Minute, ScheduleError> {
        if self.works_at(t)? || self.works_at(t - 1)? {
            return Ok(t);
        }
        let o = self.ord(t)?;
        self.end_of(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Minute {
        time::to_minute(NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap())
    }

    fn show(m: Minute) -> String {
        time::from_minute(m).format("%Y-%m-%d %H:%M").to_string()
    }

    fn date(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn working_hours_parse_or_say_why() {
        let check = |input: &str, expected: Result<&str, &str>| match (WorkingHours::parse(input), expected) {
            (Ok(h), Ok(want)) => assert_eq!(h.to_string(), want, "{input}"),
            (Err(e), Err(fragment)) => assert!(e.reason.contains(fragment), "{input}: {}", e.reason),
            (got, want) => panic!("{input}: got {got:?}, wanted {want:?}"),
        };
        check("08:00-12:00 13:00-17:00", Ok("08:00-12:00 13:00-17:00"));
        check("08:00-12:00,12:00-16:30", Ok("08:00-16:30"));
        check("", Ok(""));
        check("22:00-24:00", Ok("22:00-24:00"));
        check("17:00-09:00", Err("ends before it starts"));
        check("09:00-12:00 11:00-13:00", Err("overlaps"));
        check("13:00-14:00 09:00-10:00", Err("in order"));
        check("9-17", Err("not a time"));
        check("09:00", Err("not a span"));
        check("24:30-25:00", Err("not a time"));
        check("09:61-10:00", Err("not a time"));
    }

    #[test]
    fn calendars_are_validated_with_the_place_named() {
        let check = |cals: Calendars, field: &str, fragment: &str| {
            let e = cals.validate().unwrap_err();
            assert_eq!(e.field, field);
            assert!(e.reason.contains(fragment), "{}", e.reason);
        };
        let idle = Calendar { week: WeekPattern::on(&[], &WorkingHours::none()), ..Default::default() };
        check(Calendars::new(idle), "calendars.workspace.week", "no working hours");
        let mut cal = Calendar::default();
        cal.exceptions.push(Exception::days_off("Trip", date("2024-05-10"), date("2024-05-01")));
        check(Calendars::new(cal), "calendars.workspace.exceptions[0]", "ends");
        let mut cal = Calendar::default();
        cal.exceptions.push(Exception::days_off("Summer", date("2024-07-01"), date("2024-07-31")));
        cal.exceptions.push(Exception::holiday("Bastille day", date("2024-07-14")));
        check(Calendars::new(cal), "calendars.workspace.exceptions[1]", "overlaps \"Summer\"");
        let user = UserId(uuid::Uuid::from_u128(7));
        let cals = Calendars::default().with_user(
            user,
            UserCalendar { exceptions: vec![Exception::holiday("Old", date("1850-01-01"))], week: None },
        );
        check(cals, &format!("calendars.users[{user}].exceptions[0]"), "outside");
    }

    fn table(cals: &Calendars, cal: CalendarRef) -> WorkTable {
        WorkTable::new(cals, cal)
    }

    #[test]
    fn ordinals_count_working_minutes() {
        let mut cal = Calendar::default();
        cal.exceptions.push(Exception::holiday("Spring holiday", date("2024-03-06")));
        let cals = Calendars::new(cal);
        let mut t = table(&cals, CalendarRef::Workspace);
        let base = t.ord(at("2024-03-04 08:00")).unwrap(); // a Monday
        // (instant, working minutes after Monday 08:00, working at that minute)
        for (instant, after, working) in [
            ("2024-03-04 07:00", 0, false),
            ("2024-03-04 08:00", 0, true),
            ("2024-03-04 12:30", 240, false),
            ("2024-03-04 13:00", 240, true),
            ("2024-03-04 17:00", 480, false),
            ("2024-03-06 10:00", 960, false), // holiday
            ("2024-03-07 08:00", 960, true),
            ("2024-03-09 12:00", 1920, false), // Saturday
            ("2024-03-11 08:00", 1920, true),
            ("2024-03-01 17:00", 0, false),
            ("2024-03-01 16:00", -60, true),
        ] {
            assert_eq!(t.ord(at(instant)).unwrap() - base, after, "{instant}");
            assert_eq!(t.works_at(at(instant)).unwrap(), working, "{instant}");
        }
        // (working minutes after Monday 08:00, start of that minute, end of the minute before)
        for (after, start, end) in [
            (0, "2024-03-04 08:00", "2024-03-01 17:00"),
            (240, "2024-03-04 13:00", "2024-03-04 12:00"),
            (480, "2024-03-05 08:00", "2024-03-04 17:00"),
            (960, "2024-03-07 08:00", "2024-03-05 17:00"),
            (1920, "2024-03-11 08:00", "2024-03-08 17:00"),
            (-60, "2024-03-01 16:00", "2024-03-01 16:00"),
        ] {
            assert_eq!(show(t.start_of(base + after).unwrap()), start, "start of {after}");
            assert_eq!(show(t.end_of(base + after).unwrap()), end, "end of {after}");
        }
        assert_eq!(show(t.milestone_at_or_after(at("2024-03-04 17:00")).unwrap()), "2024-03-04 17:00");
        assert_eq!(show(t.milestone_at_or_after(at("2024-03-09 10:00")).unwrap()), "2024-03-11 08:00");
        assert_eq!(show(t.milestone_at_or_before(at("2024-03-09 10:00")).unwrap()), "2024-03-08 17:00");
    }

    #[test]
    fn tables_grow_both_ways_and_agree_with_a_fresh_table() {
        let cals = Calendars::new(Calendar {
            week: WeekPattern::standard(),
            exceptions: vec![Exception::days_off("Closure", date("2019-12-23"), date("2020-01-03"))],
        });
        let mut grown = table(&cals, CalendarRef::Workspace);
        let mid = at("2024-03-04 08:00");
        let o = grown.ord(mid).unwrap();
        let far_back = grown.start_of(o - 480 * 2000).unwrap();
        let far_ahead = grown.start_of(o + 480 * 3000).unwrap();
        let mut fresh = table(&cals, CalendarRef::Workspace);
        let o2 = fresh.ord(far_back).unwrap();
        assert_eq!(fresh.ord(mid).unwrap() - o2, 480 * 2000);
        assert_eq!(fresh.ord(far_ahead).unwrap() - o2, 480 * 5000);
        assert!(time::from_minute(far_back).date() < date("2017-01-01"));
    }

    #[test]
    fn user_calendars_override_the_workspace() {
        let user = UserId(uuid::Uuid::from_u128(1));
        let part_time =
            WeekPattern::on(&[Weekday::Mon, Weekday::Tue], &WorkingHours::parse("09:00-13:00").unwrap());
        let mut ws = Calendar::default();
        ws.exceptions.push(Exception::holiday("Public holiday", date("2024-03-05")));
        let mut vacation = UserCalendar { week: Some(part_time), exceptions: vec![] };
        vacation.exceptions.push(Exception {
            name: "Covers the holiday".into(),
            from: date("2024-03-05"),
            to: date("2024-03-05"),
            hours: WorkingHours::parse("10:00-11:00").unwrap(),
        });
        let cals = Calendars::new(ws).with_user(user, vacation);
        assert_eq!(cals.calendar_of(Some(user)), CalendarRef::User(user));
        assert_eq!(cals.calendar_of(Some(UserId(uuid::Uuid::from_u128(2)))), CalendarRef::Workspace);
        let cal = CalendarRef::User(user);
        assert_eq!(cals.hours_on(cal, date("2024-03-04")).to_string(), "09:00-13:00");
        assert_eq!(cals.hours_on(cal, date("2024-03-05")).to_string(), "10:00-11:00");
        assert_eq!(cals.hours_on(CalendarRef::Workspace, date("2024-03-05")).to_string(), "");
        let mon = NaiveDateTime::parse_from_str("2024-03-04 09:00", "%Y-%m-%d %H:%M").unwrap();
        let week = cals.working_minutes_between(cal, mon, mon + chrono::TimeDelta::days(7)).unwrap();
        assert_eq!(week, 240 + 60);
        let done = cals.add_working_minutes(cal, mon, 300).unwrap();
        assert_eq!(done.format("%Y-%m-%d %H:%M").to_string(), "2024-03-05 11:00");
    }

    #[test]
    fn a_calendar_without_work_in_range_is_an_error_not_a_hang() {
        let cals = Calendars::new(Calendar {
            week: WeekPattern::standard(),
            exceptions: vec![Exception::days_off("Forever", date("2024-01-01"), date("2199-12-31"))],
        });
        let mon = NaiveDateTime::parse_from_str("2023-12-29 09:00", "%Y-%m-%d %H:%M").unwrap();
        let err = cals.add_working_minutes(CalendarRef::Workspace, mon, 60 * 24).unwrap_err();
        assert!(err.to_string().contains("no working time"), "{err}");
    }
}

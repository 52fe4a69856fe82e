//! The filter expression of a saved view:
//!
//! ```text
//! status in (triage, execution) and (priority >= high or custom.due = this_week)
//! assignee = me and not category = closed and title ~ "printer"
//! created > -7d and plan.points is not empty
//! ```
//!
//! - Fields: see [`Field`]; custom fields as `custom.<key>`.
//! - Operators: `=`, `!=`, `<`, `<=`, `>`, `>=`, `~` (text contains, any case), `in (…)`,
//!   `is empty`, `is not empty`; `and`, `or`, `not`, parentheses. Keywords in any case.
//! - Values: numbers, `"quoted text"`, bare words (`high`, `in_progress`), ids, `me` (the reader),
//!   dates (`2026-03-02`, `2026-03-02T08:00`), and relative dates evaluated against the reader's
//!   clock: `today`, `yesterday`, `tomorrow`, `this_week` (Monday to Sunday), `last_week`,
//!   `next_week`, `this_month`, `last_month`, `next_month`, `-7d`, `+2w`. A date is a span (a day,
//!   a week): `=` means within it, `<` before it starts, `>` after it ends.
//! - Priorities compare by rank (`low < normal < high < urgent`).
//!
//! Parse errors name the position (1-based, in characters). [`Filter::pushdown`] extracts the
//! part of the expression that [`ItemFilter`] can express; the whole expression is still checked
//! on every item read, so pushing down only ever narrows what storage returns.

use std::fmt;

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, TimeZone, Utc};
use serde_json::Value;

use crate::error::Invalid;
use crate::ids::{FolderId, ItemId, ItemTypeId, ProjectId, UserId};
use crate::item::{Assignee, Item, ItemKind, Priority};
use crate::store::ItemFilter;
use crate::workflow::StatusCategory;

/// A field a filter, sort, group or column can name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Field {
    Number,
    Title,
    Description,
    Status,
    Category,
    Priority,
    Kind,
    Type,
    Project,
    Folder,
    Parent,
    Assignee,
    Requester,
    Follower,
    Created,
    Updated,
    Done,
    /// `plan.start`, `plan.finish`, `plan.actual_start`, `plan.actual_finish`, `plan.duration`,
    /// `plan.work`, `plan.points`, `plan.percent_complete`.
    Plan(&'static str),
    Custom(String),
}

const PLAN_FIELDS: [&str; 8] =
    ["start", "finish", "actual_start", "actual_finish", "duration", "work", "points", "percent_complete"];

const NAMES: [(&str, Field); 18] = [
    ("number", Field::Number),
    ("title", Field::Title),
    ("description", Field::Description),
    ("status", Field::Status),
    ("category", Field::Category),
    ("priority", Field::Priority),
    ("kind", Field::Kind),
    ("type", Field::Type),
    ("project", Field::Project),
    ("folder", Field::Folder),
    ("parent", Field::Parent),
    ("assignee", Field::Assignee),
    ("requester", Field::Requester),
    ("follower", Field::Follower),
    ("created", Field::Created),
    ("updated", Field::Updated),
    ("done", Field::Done),
    ("points", Field::Plan("points")),
];

impl Field {
    pub fn parse(name: &str) -> Option<Field> {
        let lower = name.to_ascii_lowercase();
        if let Some(key) = name.strip_prefix("custom.") {
            return (!key.is_empty()).then(|| Field::Custom(key.to_string()));
        }
        if let Some(p) = lower.strip_prefix("plan.") {
            return PLAN_FIELDS.iter().find(|f| **f == p).map(|f| Field::Plan(f));
        }
        NAMES.iter().find(|(n, _)| *n == lower).map(|(_, f)| f.clone())
    }

    /// Every name a field can be written as (custom fields aside).
    pub fn known() -> String {
        let mut names: Vec<String> = NAMES.iter().map(|(n, _)| n.to_string()).collect();
        names.extend(PLAN_FIELDS.iter().map(|p| format!("plan.{p}")));
        names.push("custom.<key>".into());
        names.join(", ")
    }

    /// The value of this field on `item`.
    pub fn value(&self, item: &Item) -> Val {
        let id = |u: uuid::Uuid| Val::Text(u.to_string());
        let opt_id = |u: Option<uuid::Uuid>| u.map_or(Val::Null, id);
        let time = |t: Option<NaiveDateTime>| t.map_or(Val::Null, |t| Val::Time(Utc.from_utc_datetime(&t)));
        match self {
            Field::Number => Val::Num(item.number as f64),
            Field::Title => Val::Text(item.title.clone()),
            Field::Description => Val::Text(item.description.clone()),
            Field::Status => Val::Text(item.status.clone()),
            Field::Category => Val::Text(item.category.as_str().into()),
            Field::Priority => Val::Priority(item.priority),
            Field::Kind => Val::Text(item.kind.as_str().into()),
            Field::Type => id(item.item_type.0),
            Field::Project => opt_id(item.project.map(|p| p.0)),
            Field::Folder => opt_id(item.folder.map(|f| f.0)),
            Field::Parent => opt_id(item.parent.map(|p| p.0)),
            Field::Assignee => Val::List(
                item.assignees
                    .iter()
                    .map(|a| match a {
                        Assignee::User(u) => id(u.0),
                        Assignee::Team(t) => id(t.0),
                    })
                    .collect(),
            ),
            Field::Requester => opt_id(item.requester.map(|u| u.0)),
            Field::Follower => Val::List(item.followers.iter().map(|u| id(u.0)).collect()),
            Field::Created => Val::Time(item.created_at),
            Field::Updated => Val::Time(item.updated_at),
            Field::Done => item.done_at.map_or(Val::Null, Val::Time),
            Field::Plan(p) => {
                let plan = &item.plan;
                match *p {
                    "start" => time(plan.start),
                    "finish" => time(plan.finish),
                    "actual_start" => time(plan.actual_start),
                    "actual_finish" => time(plan.actual_finish),
                    "duration" => plan.duration.map_or(Val::Null, |d| Val::Num(d as f64)),
                    "work" => plan.work.map_or(Val::Null, |d| Val::Num(d as f64)),
                    "points" => plan.points.map_or(Val::Null, Val::Num),
                    _ => Val::Num(f64::from(plan.percent_complete)),
                }
            }
            Field::Custom(key) => item.custom.get(key).map_or(Val::Null, Val::from_json),
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Field::Plan(p) => write!(f, "plan.{p}"),
            Field::Custom(k) => write!(f, "custom.{k}"),
            other => {
                let name = NAMES.iter().find(|(_, x)| x == other).map_or("?", |(n, _)| n);
                f.write_str(name)
            }
        }
    }
}

/// A field's value on an item, for comparing, sorting and grouping.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Null,
    Bool(bool),
    Num(f64),
    Text(String),
    Time(DateTime<Utc>),
    Priority(Priority),
    List(Vec<Val>),
}

impl Val {
    fn from_json(v: &Value) -> Val {
        match v {
            Value::Null => Val::Null,
            Value::Bool(b) => Val::Bool(*b),
            Value::Number(n) => n.as_f64().map_or(Val::Null, Val::Num),
            Value::String(s) => {
                if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
                    return Val::Time(Utc.from_utc_datetime(&d.and_time(chrono::NaiveTime::MIN)));
                }
                if let Ok(t) = DateTime::parse_from_rfc3339(s) {
                    return Val::Time(t.with_timezone(&Utc));
                }
                Val::Text(s.clone())
            }
            Value::Array(a) => Val::List(a.iter().map(Val::from_json).collect()),
            Value::Object(_) => Val::Text(v.to_string()),
        }
    }

    /// As text for CSV cells, group keys and display.
    pub fn display(&self) -> String {
        match self {
            Val::Null => String::new(),
            Val::Bool(b) => b.to_string(),
            Val::Num(n) if n.fract() == 0.0 && n.abs() < 1e15 => format!("{}", *n as i64),
            Val::Num(n) => n.to_string(),
            Val::Text(s) => s.clone(),
            Val::Time(t) => t.format("%Y-%m-%d %H:%M").to_string(),
            Val::Priority(p) => p.as_str().into(),
            Val::List(l) => l.iter().map(Val::display).collect::<Vec<_>>().join(", "),
        }
    }

    /// A total order for sorting: empty values last.
    pub fn sort_cmp(&self, other: &Val) -> std::cmp::Ordering {
        use std::cmp::Ordering::*;
        match (self, other) {
            (Val::Null, Val::Null) => Equal,
            (Val::Null, _) => Greater,
            (_, Val::Null) => Less,
            (Val::Num(a), Val::Num(b)) => a.total_cmp(b),
            (Val::Time(a), Val::Time(b)) => a.cmp(b),
            (Val::Priority(a), Val::Priority(b)) => a.cmp(b),
            (Val::Bool(a), Val::Bool(b)) => a.cmp(b),
            (a, b) => a.display().to_lowercase().cmp(&b.display().to_lowercase()),
        }
    }
}

/// Where evaluation happens: the reader and their clock.
#[derive(Debug, Clone, Copy)]
pub struct Context {
    pub now: DateTime<Utc>,
    pub me: Option<UserId>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Contains,
}

/// A value written in a filter.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Num(f64),
    Text(String),
    /// A span of time, `[from, to)`; an instant has `from == to`.
    Span(DateTime<Utc>, DateTime<Utc>),
    /// A relative date, resolved against the reader's clock.
    Relative(Relative),
    Me,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relative {
    Today,
    Yesterday,
    Tomorrow,
    ThisWeek,
    LastWeek,
    NextWeek,
    ThisMonth,
    LastMonth,
    NextMonth,
    /// A day this many days from today.
    Days(i64),
}

impl Relative {
    fn parse(word: &str) -> Option<Relative> {
        Some(match word.to_ascii_lowercase().as_str() {
            "today" => Relative::Today,
            "yesterday" => Relative::Yesterday,
            "tomorrow" => Relative::Tomorrow,
            "this_week" => Relative::ThisWeek,
            "last_week" => Relative::LastWeek,
            "next_week" => Relative::NextWeek,
            "this_month" => Relative::ThisMonth,
            "last_month" => Relative::LastMonth,
            "next_month" => Relative::NextMonth,
            w => {
                let (sign, rest) = match w.as_bytes().first()? {
                    b'-' => (-1, &w[1..]),
                    b'+' => (1, &w[1..]),
                    _ => return None,
                };
                let (n, unit) = rest.split_at(rest.len().checked_sub(1)?);
                let n: i64 = n.parse().ok().filter(|n| (0..=36_500).contains(n))?;
                match unit {
                    "d" => Relative::Days(sign * n),
                    "w" => Relative::Days(sign * n * 7),
                    _ => return None,
                }
            }
        })
    }

    /// The span as of `now` (days start at midnight UTC, the workspace's wall clock; weeks on
    /// Monday).
    pub fn span(self, now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
        let today = now.date_naive();
        let day = |d: NaiveDate| Utc.from_utc_datetime(&d.and_time(chrono::NaiveTime::MIN));
        let days = |from: NaiveDate, n: i64| (day(from), day(from + Duration::days(n)));
        let monday = today - Duration::days(i64::from(today.weekday().num_days_from_monday()));
        let month = |offset: i32| {
            let m0 = today.year() * 12 + today.month0() as i32 + offset;
            let first = NaiveDate::from_ymd_opt(m0.div_euclid(12), m0.rem_euclid(12) as u32 + 1, 1);
            let m1 = m0 + 1;
            let next = NaiveDate::from_ymd_opt(m1.div_euclid(12), m1.rem_euclid(12) as u32 + 1, 1);
            match (first, next) {
                (Some(a), Some(b)) => (day(a), day(b)),
                _ => days(today, 1),
            }
        };
        match self {
            Relative::Today => days(today, 1),
            Relative::Yesterday => days(today - Duration::days(1), 1),
            Relative::Tomorrow => days(today + Duration::days(1), 1),
            Relative::ThisWeek => days(monday, 7),
            Relative::LastWeek => days(monday - Duration::days(7), 7),
            Relative::NextWeek => days(monday + Duration::days(7), 7),
            Relative::ThisMonth => month(0),
            Relative::LastMonth => month(-1),
            Relative::NextMonth => month(1),
            Relative::Days(n) => days(today + Duration::days(n), 1),
        }
    }
}

/// A parsed filter expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    All,
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    Compare { field: Field, op: Op, value: Literal },
    In { field: Field, values: Vec<Literal> },
    Empty { field: Field, empty: bool },
}

/// A filter, ready to evaluate.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    pub expr: Expr,
}

impl Filter {
    /// Parses `text`; an empty text matches everything. Errors name the position.
    pub fn parse(text: &str) -> Result<Filter, Invalid> {
        if text.chars().count() > 4000 {
            return Err(Invalid::new("filter", "must be at most 4000 characters"));
        }
        let tokens = lex(text)?;
        if tokens.is_empty() {
            return Ok(Filter { expr: Expr::All });
        }
        let mut p = Parser { tokens, pos: 0, depth: 0, end: text.chars().count() + 1 };
        let expr = p.or()?;
        if let Some(t) = p.peek() {
            return Err(p.error_at(t.at, format!("unexpected {}; expected and, or, or the end", t.kind)));
        }
        Ok(Filter { expr })
    }

    pub fn matches(&self, item: &Item, cx: &Context) -> bool {
        eval(&self.expr, item, cx)
    }

    /// What storage can apply: the conditions on the top level of an `and` that [`ItemFilter`]
    /// expresses exactly. Every item the full filter accepts passes it.
    pub fn pushdown(&self, cx: &Context) -> ItemFilter {
        let mut f = ItemFilter::default();
        let conjuncts: Vec<&Expr> = match &self.expr {
            Expr::And(all) => all.iter().collect(),
            e => vec![e],
        };
        for c in conjuncts {
            push(c, cx, &mut f);
        }
        f
    }
}

fn text_of(l: &Literal, cx: &Context) -> Option<String> {
    match l {
        Literal::Text(s) => Some(s.clone()),
        Literal::Num(n) => Some(Val::Num(*n).display()),
        Literal::Me => cx.me.map(|u| u.to_string()),
        _ => None,
    }
}

fn user_of(l: &Literal, cx: &Context) -> Option<UserId> {
    match l {
        Literal::Me => cx.me,
        Literal::Text(s) => s.parse().ok(),
        _ => None,
    }
}

fn push(e: &Expr, cx: &Context, f: &mut ItemFilter) {
    let texts = |values: &[&Literal]| values.iter().map(|v| text_of(v, cx)).collect::<Option<Vec<String>>>();
    let (field, values): (&Field, Vec<&Literal>) = match e {
        Expr::Compare { field, op: Op::Eq, value } => (field, vec![value]),
        Expr::In { field, values } => (field, values.iter().collect()),
        Expr::Compare { field: Field::Created, op, value } => {
            if let Some((a, b)) = span_of(value, cx) {
                match op {
                    Op::Ge => f.created_after = Some(a),
                    Op::Gt => f.created_after = Some(b),
                    Op::Lt => f.created_before = Some(a),
                    Op::Le => f.created_before = Some(b.max(a + Duration::milliseconds(1))),
                    _ => {}
                }
            }
            return;
        }
        Expr::Compare { field: Field::Updated, op: op @ (Op::Ge | Op::Gt), value } => {
            if let Some((a, b)) = span_of(value, cx) {
                f.updated_after = Some(if *op == Op::Ge { a } else { b });
            }
            return;
        }
        _ => return,
    };
    let Some(texts) = texts(&values) else { return };
    match field {
        Field::Status if f.statuses.is_empty() => f.statuses = texts,
        Field::Category if f.categories.is_empty() => {
            if let Some(c) = texts.iter().map(|t| StatusCategory::parse(t)).collect::<Option<Vec<_>>>() {
                f.categories = c;
            }
        }
        Field::Priority if f.priorities.is_empty() => {
            if let Some(p) = texts.iter().map(|t| Priority::parse(t)).collect::<Option<Vec<_>>>() {
                f.priorities = p;
            }
        }
        Field::Type if f.item_types.is_empty() => {
            if let Some(t) = texts.iter().map(|t| t.parse::<ItemTypeId>().ok()).collect::<Option<Vec<_>>>() {
                f.item_types = t;
            }
        }
        Field::Kind if values.len() == 1 => {
            f.kind = match texts[0].as_str() {
                "ticket" => Some(ItemKind::Ticket),
                "task" => Some(ItemKind::Task),
                _ => f.kind,
            }
        }
        Field::Project if values.len() == 1 => f.project = texts[0].parse::<ProjectId>().ok().or(f.project),
        Field::Folder if values.len() == 1 => f.folder = texts[0].parse::<FolderId>().ok().or(f.folder),
        Field::Parent if values.len() == 1 => f.parent = texts[0].parse::<ItemId>().ok().or(f.parent),
        Field::Assignee if values.len() == 1 => {
            f.assignee = user_of(values[0], cx).map(Assignee::User).or(f.assignee);
        }
        Field::Requester if values.len() == 1 => f.requester = user_of(values[0], cx).or(f.requester),
        Field::Follower if values.len() == 1 => f.follower = user_of(values[0], cx).or(f.follower),
        _ => {}
    }
}

fn span_of(l: &Literal, cx: &Context) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    match l {
        Literal::Span(a, b) => Some((*a, *b)),
        Literal::Relative(r) => Some(r.span(cx.now)),
        _ => None,
    }
}

fn eval(e: &Expr, item: &Item, cx: &Context) -> bool {
    match e {
        Expr::All => true,
        Expr::And(all) => all.iter().all(|e| eval(e, item, cx)),
        Expr::Or(any) => any.iter().any(|e| eval(e, item, cx)),
        Expr::Not(e) => !eval(e, item, cx),
        Expr::Empty { field, empty } => {
            let v = field.value(item);
            let is_empty = match &v {
                Val::Null => true,
                Val::Text(s) => s.is_empty(),
                Val::List(l) => l.is_empty(),
                _ => false,
            };
            is_empty == *empty
        }
        Expr::In { field, values } => {
            let v = field.value(item);
            values.iter().any(|l| compare(&v, Op::Eq, l, cx))
        }
        Expr::Compare { field, op, value } => compare(&field.value(item), *op, value, cx),
    }
}

fn compare(v: &Val, op: Op, l: &Literal, cx: &Context) -> bool {
    use std::cmp::Ordering;
    if let Val::List(items) = v {
        // A list field (assignees, followers, multi-choice) matches when one of its values does;
        // `!=` when none equals.
        return match op {
            Op::Ne => !items.iter().any(|x| compare(x, Op::Eq, l, cx)),
            _ => items.iter().any(|x| compare(x, op, l, cx)),
        };
    }
    if let Some((a, b)) = span_of(l, cx) {
        let Val::Time(t) = v else { return op == Op::Ne };
        let within = if a == b { *t == a } else { a <= *t && *t < b };
        return match op {
            Op::Eq => within,
            Op::Ne => !within,
            Op::Lt => *t < a,
            Op::Le => *t < b || *t == a,
            Op::Gt => *t >= b && !(a == b && *t == a),
            Op::Ge => *t >= a,
            Op::Contains => false,
        };
    }
    let ordering: Option<Ordering> = match (v, l) {
        (Val::Null, _) => return op == Op::Ne,
        (Val::Num(n), Literal::Num(m)) => n.partial_cmp(m),
        (Val::Priority(p), lit) => match text_of(lit, cx).as_deref().and_then(Priority::parse) {
            Some(q) => Some(p.cmp(&q)),
            None => return op == Op::Ne,
        },
        (Val::Bool(b), lit) => match text_of(lit, cx).as_deref() {
            Some("true") | Some("yes") => Some(b.cmp(&true)),
            Some("false") | Some("no") => Some(b.cmp(&false)),
            _ => return op == Op::Ne,
        },
        (Val::Text(s), lit) => {
            let Some(t) = text_of(lit, cx) else { return op == Op::Ne };
            if op == Op::Contains {
                return s.to_lowercase().contains(&t.to_lowercase());
            }
            Some(s.to_lowercase().cmp(&t.to_lowercase()))
        }
        (Val::Num(n), Literal::Text(t)) => t.parse::<f64>().ok().and_then(|m| n.partial_cmp(&m)),
        _ => None,
    };
    let Some(o) = ordering else { return op == Op::Ne };
    match op {
        Op::Eq => o == Ordering::Equal,
        Op::Ne => o != Ordering::Equal,
        Op::Lt => o == Ordering::Less,
        Op::Le => o != Ordering::Greater,
        Op::Gt => o == Ordering::Greater,
        Op::Ge => o != Ordering::Less,
        Op::Contains => false,
    }
}

// ---------------------------------------------------------------------------------------------
// Lexing and parsing

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Word(String),
    Quoted(String),
    Op(Op),
    Open,
    Close,
    Comma,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Kind::Word(w) => write!(f, "'{w}'"),
            Kind::Quoted(q) => write!(f, "\"{q}\""),
            Kind::Op(op) => {
                let s = match op {
                    Op::Eq => "=",
                    Op::Ne => "!=",
                    Op::Lt => "<",
                    Op::Le => "<=",
                    Op::Gt => ">",
                    Op::Ge => ">=",
                    Op::Contains => "~",
                };
                write!(f, "'{s}'")
            }
            Kind::Open => f.write_str("'('"),
            Kind::Close => f.write_str("')'"),
            Kind::Comma => f.write_str("','"),
        }
    }
}

#[derive(Debug, Clone)]
struct Token {
    kind: Kind,
    /// 1-based character position.
    at: usize,
}

fn error(at: usize, reason: impl Into<String>) -> Invalid {
    Invalid::new("filter", format!("at position {at}: {}", reason.into()))
}

fn lex(text: &str) -> Result<Vec<Token>, Invalid> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let at = i + 1;
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                out.push(Token { kind: Kind::Open, at });
                i += 1;
            }
            ')' => {
                out.push(Token { kind: Kind::Close, at });
                i += 1;
            }
            ',' => {
                out.push(Token { kind: Kind::Comma, at });
                i += 1;
            }
            '=' | '~' => {
                out.push(Token { kind: Kind::Op(if c == '=' { Op::Eq } else { Op::Contains }), at });
                i += 1;
            }
            '!' | '<' | '>' => {
                let eq = chars.get(i + 1) == Some(&'=');
                let op = match (c, eq) {
                    ('!', true) => Op::Ne,
                    ('!', false) => {
                        return Err(error(at, "'!' must be followed by '=' (use not for negation)"));
                    }
                    ('<', true) => Op::Le,
                    ('<', false) => Op::Lt,
                    ('>', true) => Op::Ge,
                    _ => Op::Gt,
                };
                out.push(Token { kind: Kind::Op(op), at });
                i += if eq { 2 } else { 1 };
            }
            '"' | '\'' => {
                let mut s = String::new();
                let mut j = i + 1;
                loop {
                    match chars.get(j) {
                        None => return Err(error(at, "this quoted text is never closed")),
                        Some('\\') if j + 1 < chars.len() => {
                            s.push(chars[j + 1]);
                            j += 2;
                        }
                        Some(q) if *q == c => break,
                        Some(x) => {
                            s.push(*x);
                            j += 1;
                        }
                    }
                }
                out.push(Token { kind: Kind::Quoted(s), at });
                i = j + 1;
            }
            c if c.is_alphanumeric() || matches!(c, '_' | '.' | '-' | '+' | ':' | '#') => {
                let mut j = i;
                while j < chars.len()
                    && (chars[j].is_alphanumeric() || matches!(chars[j], '_' | '.' | '-' | '+' | ':' | '#'))
                {
                    j += 1;
                }
                out.push(Token { kind: Kind::Word(chars[i..j].iter().collect()), at });
                i = j;
            }
            other => return Err(error(at, format!("unexpected character '{other}'"))),
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
    /// The position just past the text, for "expected … at the end" errors.
    end: usize,
}

fn is_keyword(t: &Token, word: &str) -> bool {
    matches!(&t.kind, Kind::Word(w) if w.eq_ignore_ascii_case(word))
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn here(&self) -> usize {
        self.peek().map_or(self.end, |t| t.at)
    }

    fn error_at(&self, at: usize, reason: impl Into<String>) -> Invalid {
        error(at, reason)
    }

    fn eat_keyword(&mut self, word: &str) -> bool {
        if self.peek().is_some_and(|t| is_keyword(t, word)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn or(&mut self) -> Result<Expr, Invalid> {
        let mut parts = vec![self.and()?];
        while self.eat_keyword("or") {
            parts.push(self.and()?);
        }
        Ok(if parts.len() == 1 { parts.remove(0) } else { Expr::Or(parts) })
    }

    fn and(&mut self) -> Result<Expr, Invalid> {
        let mut parts = vec![self.not()?];
        while self.eat_keyword("and") {
            parts.push(self.not()?);
        }
        Ok(if parts.len() == 1 { parts.remove(0) } else { Expr::And(parts) })
    }

    fn not(&mut self) -> Result<Expr, Invalid> {
        if self.eat_keyword("not") {
            return Ok(Expr::Not(Box::new(self.not()?)));
        }
        self.atom()
    }

    fn atom(&mut self) -> Result<Expr, Invalid> {
        let at = self.here();
        let Some(t) = self.next() else {
            return Err(self.error_at(at, "expected a condition like status = open"));
        };
        match t.kind {
            Kind::Open => {
                self.depth += 1;
                if self.depth > 32 {
                    return Err(self.error_at(t.at, "parentheses nest too deeply"));
                }
                let e = self.or()?;
                let close = self.here();
                match self.next() {
                    Some(Token { kind: Kind::Close, .. }) => {}
                    _ => {
                        return Err(self
                            .error_at(close, format!("expected ')' to close the '(' at position {}", t.at)));
                    }
                }
                self.depth -= 1;
                Ok(e)
            }
            Kind::Word(name) => {
                let field = Field::parse(&name).ok_or_else(|| {
                    self.error_at(t.at, format!("unknown field '{name}'; known: {}", Field::known()))
                })?;
                self.condition(field)
            }
            other => Err(self.error_at(t.at, format!("expected a field name, found {other}"))),
        }
    }

    fn condition(&mut self, field: Field) -> Result<Expr, Invalid> {
        let at = self.here();
        match self.next() {
            Some(Token { kind: Kind::Op(op), .. }) => {
                let value = self.value()?;
                if op == Op::Contains && !matches!(value, Literal::Text(_)) {
                    return Err(self.error_at(at, "'~' compares with text"));
                }
                Ok(Expr::Compare { field, op, value })
            }
            Some(t) if is_keyword(&t, "in") => {
                let open = self.here();
                if !matches!(self.next(), Some(Token { kind: Kind::Open, .. })) {
                    return Err(self.error_at(open, "expected '(' after in"));
                }
                let mut values = vec![self.value()?];
                loop {
                    let at = self.here();
                    match self.next() {
                        Some(Token { kind: Kind::Comma, .. }) => values.push(self.value()?),
                        Some(Token { kind: Kind::Close, .. }) => break,
                        _ => return Err(self.error_at(at, "expected ',' or ')' in the list")),
                    }
                }
                Ok(Expr::In { field, values })
            }
            Some(t) if is_keyword(&t, "is") => {
                let negated = self.eat_keyword("not");
                let at = self.here();
                if !self.eat_keyword("empty") {
                    return Err(self.error_at(at, "expected empty after is (or is not)"));
                }
                Ok(Expr::Empty { field, empty: !negated })
            }
            Some(t) => Err(self.error_at(
                t.at,
                format!(
                    "expected an operator (=, !=, <, <=, >, >=, ~, in, is) after {field}, found {}",
                    t.kind
                ),
            )),
            None => Err(self.error_at(at, format!("expected an operator after {field}"))),
        }
    }

    fn value(&mut self) -> Result<Literal, Invalid> {
        let at = self.here();
        match self.next() {
            Some(Token { kind: Kind::Quoted(s), .. }) => Ok(Literal::Text(s)),
            Some(Token { kind: Kind::Word(w), at }) => {
                word_value(&w).ok_or_else(|| self.error_at(at, format!("'{w}' is not a value")))
            }
            Some(t) => Err(self.error_at(t.at, format!("expected a value, found {}", t.kind))),
            None => Err(self.error_at(at, "expected a value at the end")),
        }
    }
}

fn word_value(w: &str) -> Option<Literal> {
    if w.eq_ignore_ascii_case("me") {
        return Some(Literal::Me);
    }
    if let Some(r) = Relative::parse(w) {
        return Some(Literal::Relative(r));
    }
    if let Ok(d) = NaiveDate::parse_from_str(w, "%Y-%m-%d") {
        let a = Utc.from_utc_datetime(&d.and_time(chrono::NaiveTime::MIN));
        return Some(Literal::Span(a, a + Duration::days(1)));
    }
    for f in ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(w, f) {
            let t = Utc.from_utc_datetime(&t);
            return Some(Literal::Span(t, t));
        }
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(w) {
        let t = t.with_timezone(&Utc);
        return Some(Literal::Span(t, t));
    }
    if let Ok(n) = w.parse::<f64>()
        && n.is_finite()
    {
        return Some(Literal::Num(n));
    }
    let first = w.chars().next()?;
    (first.is_alphanumeric() || first == '_').then(|| Literal::Text(w.trim_start_matches('#').to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::planning::TaskPlan;
    use std::collections::BTreeMap;

    fn t(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, 0, 0).unwrap()
    }

    fn item(n: i64) -> Item {
        let u = |n: u128| uuid::Uuid::from_u128(n);
        Item {
            id: ItemId(u(100 + n as u128)),
            workspace_id: crate::ids::WorkspaceId(u(1)),
            number: n,
            item_type: ItemTypeId(u(2)),
            kind: ItemKind::Task,
            title: format!("Item {n}"),
            description: String::new(),
            project: None,
            folder: None,
            parent: None,
            requester: None,
            assignees: vec![],
            followers: vec![],
            priority: Priority::Normal,
            status: "triage".into(),
            category: StatusCategory::New,
            custom: BTreeMap::new(),
            channel: crate::item::Channel::Api,
            created_by: crate::item::ActorRef::System,
            created_at: t(2026, 3, 1, 9),
            updated_at: t(2026, 3, 1, 9),
            done_at: None,
            plan: TaskPlan::default(),
            version: 1,
        }
    }

    /// Wednesday 4 March 2026, 10:00.
    fn cx() -> Context {
        Context { now: t(2026, 3, 4, 10), me: Some(UserId(uuid::Uuid::from_u128(7))) }
    }

    #[test]
    fn expressions_select_items() {
        let me = UserId(uuid::Uuid::from_u128(7));
        let mut a = item(1);
        a.priority = Priority::High;
        a.assignees = vec![Assignee::User(me)];
        a.custom.insert("due".into(), json_str("2026-03-06"));
        a.title = "Printer on floor 2".into();
        let mut b = item(2);
        b.status = "execution".into();
        b.category = StatusCategory::InProgress;
        b.custom.insert("due".into(), json_str("2026-03-10"));
        b.plan.points = Some(5.0);
        b.created_at = t(2026, 2, 20, 9);
        let items = [a, b];
        let check = |text: &str, expected: &[i64]| {
            let f = Filter::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            let got: Vec<i64> = items.iter().filter(|i| f.matches(i, &cx())).map(|i| i.number).collect();
            assert_eq!(got, expected, "{text}");
        };
        check("", &[1, 2]);
        check("status = triage", &[1]);
        check("STATUS in (triage, execution) AND priority >= high", &[1]);
        check("priority < high", &[2]);
        check("custom.due = this_week", &[1]);
        check("custom.due = next_week", &[2]);
        check("custom.due > this_week", &[2]);
        check("custom.due <= this_week", &[1]);
        check("custom.due < 2026-03-10", &[1]);
        check("assignee = me", &[1]);
        check("not assignee = me", &[2]);
        check("assignee is empty", &[2]);
        check("title ~ 'PRINTER'", &[1]);
        check("created > -7d", &[1]);
        check("created >= last_month and created < this_month", &[2]);
        check("points is not empty or (category = new and custom.due != 2026-03-06)", &[2]);
        check("plan.points >= 3", &[2]);
        check("custom.missing is empty", &[1, 2]);
        check("custom.missing = x", &[]);
        check("custom.missing != x", &[1, 2]);
    }

    fn json_str(s: &str) -> Value {
        Value::String(s.into())
    }

    #[test]
    fn parse_errors_name_the_position() {
        for (text, at, says) in [
            ("status =", 9, "expected a value"),
            ("status = open and", 18, "expected a condition"),
            ("colour = red", 1, "unknown field 'colour'"),
            ("status open", 8, "expected an operator"),
            ("(status = open", 15, "expected ')'"),
            ("status in open", 11, "expected '('"),
            ("status in (a b)", 14, "expected ',' or ')'"),
            ("title ~ \"unclosed", 9, "never closed"),
            ("status = open )", 15, "unexpected ')'"),
            ("status ! open", 8, "'!' must be followed by '='"),
            ("title is full", 10, "expected empty"),
            ("priority = @", 12, "unexpected character"),
            ("title ~ 5", 7, "compares with text"),
        ] {
            let e = Filter::parse(text).expect_err(text);
            assert_eq!(e.field, "filter");
            assert!(e.reason.starts_with(&format!("at position {at}:")), "{text}: {}", e.reason);
            assert!(e.reason.contains(says), "{text}: {}", e.reason);
        }
    }

    #[test]
    fn relative_dates_follow_the_readers_clock() {
        let now = t(2026, 3, 4, 10);
        let day = |d: u32, m: u32| t(2026, m, d, 0);
        assert_eq!(Relative::Today.span(now), (day(4, 3), day(5, 3)));
        assert_eq!(Relative::ThisWeek.span(now), (day(2, 3), day(9, 3)));
        assert_eq!(Relative::LastWeek.span(now), (day(23, 2), day(2, 3)));
        assert_eq!(Relative::ThisMonth.span(now), (day(1, 3), day(1, 4)));
        assert_eq!(Relative::LastMonth.span(t(2026, 1, 15, 0)), (t(2025, 12, 1, 0), t(2026, 1, 1, 0)));
        assert_eq!(Relative::parse("-7d"), Some(Relative::Days(-7)));
        assert_eq!(Relative::parse("+2w"), Some(Relative::Days(14)));
        assert_eq!(Relative::parse("-7x"), None);
        // The same filter selects differently a week later.
        let f = Filter::parse("created = this_week").unwrap();
        let i = item(1);
        assert!(!f.matches(&i, &cx()));
        assert!(f.matches(&i, &Context { now: t(2026, 3, 1, 12), me: None }));
    }

    #[test]
    fn pushdown_narrows_storage_reads_only_where_exact() {
        let me = UserId(uuid::Uuid::from_u128(7));
        let project = uuid::Uuid::from_u128(42);
        let f = Filter::parse(&format!(
            "status in (triage, execution) and kind = task and priority = high and assignee = me \
             and project = {project} and created >= this_week and title ~ printer"
        ))
        .unwrap();
        let p = f.pushdown(&cx());
        assert_eq!(p.statuses, ["triage", "execution"]);
        assert_eq!(p.kind, Some(ItemKind::Task));
        assert_eq!(p.priorities, [Priority::High]);
        assert_eq!(p.assignee, Some(Assignee::User(me)));
        assert_eq!(p.project, Some(ProjectId(project)));
        assert_eq!(p.created_after, Some(t(2026, 3, 2, 0)));
        // An `or` cannot be pushed as a whole; nothing of it is.
        let p = Filter::parse("status = triage or priority = high").unwrap().pushdown(&cx());
        assert_eq!(p, ItemFilter::default());
        let p = Filter::parse("not status = triage").unwrap().pushdown(&cx());
        assert_eq!(p, ItemFilter::default());
    }
}

//! Custom fields per item type and their validation. These functions are the only place a custom
//! value is judged: the API, web forms, email intake and imports all call [`validate_value`] /
//! [`validate_values`], so the same input gets the same answer everywhere.
//!
//! Values are stored normalised as JSON: dates as `YYYY-MM-DD`, datetimes as RFC 3339 in UTC,
//! numbers as JSON numbers, multi-choice as an array in option order, users as UUID strings.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::Invalid;
use crate::workflow::{validate_key, validate_name};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldKind {
    Text,
    LongText,
    Number,
    Date,
    Datetime,
    Choice,
    MultiChoice,
    Checkbox,
    User,
    Url,
    Email,
}

impl FieldKind {
    fn has_options(self) -> bool {
        matches!(self, FieldKind::Choice | FieldKind::MultiChoice)
    }

    fn is_textual(self) -> bool {
        matches!(self, FieldKind::Text | FieldKind::LongText | FieldKind::Url | FieldKind::Email)
    }

    /// Whether `min`/`max` mean something for this kind (value, length or count).
    fn has_bounds(self) -> bool {
        matches!(self, FieldKind::Number | FieldKind::Text | FieldKind::LongText | FieldKind::MultiChoice)
    }
}

/// Validation rules. `min`/`max` bound a number's value, a text's length in characters, or the
/// number of choices picked in a multi-choice field.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FieldRules {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// A regular expression the whole text must match (text, long text, url, email).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// The allowed answers of a choice or multi-choice field, in display order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldDef {
    pub key: String,
    pub label: String,
    pub kind: FieldKind,
    #[serde(default)]
    pub required: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
    /// Internal-only fields are never shown to customers nor accepted from them.
    #[serde(default)]
    pub internal: bool,
    #[serde(default)]
    pub rules: FieldRules,
}

const MAX_TEXT: usize = 1_000;
const MAX_LONG_TEXT: usize = 100_000;
const MAX_OPTIONS: usize = 500;

/// Checks that a field definition is coherent (key format, options for choice kinds, a pattern
/// that compiles, `min <= max`...).
pub fn validate_def(def: &FieldDef) -> Result<(), Invalid> {
    validate_key(&def.key).map_err(|r| Invalid::new("key", r))?;
    validate_name(&def.label).map_err(|r| Invalid::new("label", r))?;
    if let Some(help) = &def.help
        && help.chars().count() > 2_000
    {
        return Err(Invalid::new("help", "must be at most 2000 characters"));
    }
    let rules = &def.rules;
    if def.kind.has_options() {
        if rules.options.is_empty() {
            return Err(Invalid::new("rules.options", "a choice field needs at least one option"));
        }
        if rules.options.len() > MAX_OPTIONS {
            return Err(Invalid::new("rules.options", format!("at most {MAX_OPTIONS} options")));
        }
        for (i, option) in rules.options.iter().enumerate() {
            validate_name(option).map_err(|r| Invalid::new(format!("rules.options[{i}]"), r))?;
            if rules.options[..i].iter().any(|o| o == option) {
                return Err(Invalid::new(
                    format!("rules.options[{i}]"),
                    format!("'{option}' is listed twice"),
                ));
            }
        }
    } else if !rules.options.is_empty() {
        return Err(Invalid::new("rules.options", "only choice and multi-choice fields have options"));
    }
    if let Some(pattern) = &rules.pattern {
        if !def.kind.is_textual() {
            return Err(Invalid::new("rules.pattern", "only text, url and email fields have a pattern"));
        }
        regex::Regex::new(pattern)
            .map_err(|e| Invalid::new("rules.pattern", format!("not a valid regular expression: {e}")))?;
    }
    if (rules.min.is_some() || rules.max.is_some()) && !def.kind.has_bounds() {
        return Err(Invalid::new("rules", "min and max apply to number, text and multi-choice fields"));
    }
    for (name, bound) in [("rules.min", rules.min), ("rules.max", rules.max)] {
        if bound.is_some_and(|b| !b.is_finite()) {
            return Err(Invalid::new(name, "must be a finite number"));
        }
        if def.kind != FieldKind::Number && bound.is_some_and(|b| b < 0.0 || b.fract() != 0.0) {
            return Err(Invalid::new(name, "a length or count bound must be a whole number ≥ 0"));
        }
    }
    if let (Some(min), Some(max)) = (rules.min, rules.max)
        && min > max
    {
        return Err(Invalid::new("rules.min", "must not be greater than max"));
    }
    Ok(())
}

fn text_value(def: &FieldDef, value: &Value, max_len: usize) -> Result<String, Invalid> {
    let s = value.as_str().ok_or_else(|| Invalid::new("", "must be a string"))?;
    let s = if def.kind == FieldKind::LongText { s.trim_end().to_string() } else { s.trim().to_string() };
    let len = s.chars().count();
    if len > max_len {
        return Err(Invalid::new("", format!("must be at most {max_len} characters")));
    }
    if def.kind == FieldKind::LongText {
        crate::hierarchy::validate_multiline("", &s, max_len)?;
    } else if s.chars().any(char::is_control) {
        return Err(Invalid::new("", "must not contain control characters"));
    }
    Ok(s)
}

fn check_length(rules: &FieldRules, count: usize, unit: &str) -> Result<(), Invalid> {
    if let Some(min) = rules.min
        && (count as f64) < min
    {
        return Err(Invalid::new("", format!("needs at least {min} {unit}")));
    }
    if let Some(max) = rules.max
        && (count as f64) > max
    {
        return Err(Invalid::new("", format!("allows at most {max} {unit}")));
    }
    Ok(())
}

fn check_pattern(rules: &FieldRules, s: &str) -> Result<(), Invalid> {
    if let Some(pattern) = &rules.pattern {
        // Anchored so the pattern describes the whole value, as form users expect.
        let re = regex::Regex::new(&format!("^(?:{pattern})$"))
            .map_err(|e| Invalid::new("", format!("the field's pattern is broken: {e}")))?;
        if !re.is_match(s) {
            return Err(Invalid::new("", format!("does not match the required format {pattern}")));
        }
    }
    Ok(())
}

/// A pragmatic address check: one `@`, a non-empty local part, a dotted domain, no spaces.
pub fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.rsplit_once('@') else { return false };
    !local.is_empty()
        && local.len() <= 64
        && domain.len() <= 253
        && !local.contains('@')
        && domain.contains('.')
        && !domain.starts_with(['.', '-'])
        && !domain.ends_with(['.', '-'])
        && !domain.contains("..")
        && domain.chars().all(|c| c.is_alphanumeric() || c == '.' || c == '-')
        && !local.chars().any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';'))
}

fn is_url(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once("://") else { return false };
    matches!(scheme.to_ascii_lowercase().as_str(), "http" | "https")
        && !rest.is_empty()
        && !rest.starts_with('/')
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// Validates one raw value against its definition and returns its normalised form. `Value::Null`
/// means "no value" and is accepted here; requiredness is checked by [`validate_values`].
/// Errors name no field: callers wrap them with [`Invalid::within`].
pub fn validate_value(def: &FieldDef, value: &Value) -> Result<Value, Invalid> {
    let rules = &def.rules;
    Ok(match def.kind {
        FieldKind::Text | FieldKind::LongText => {
            let max = if def.kind == FieldKind::Text { MAX_TEXT } else { MAX_LONG_TEXT };
            let s = text_value(def, value, max)?;
            check_length(rules, s.chars().count(), "characters")?;
            check_pattern(rules, &s)?;
            Value::String(s)
        }
        FieldKind::Url => {
            let s = text_value(def, value, 2_048)?;
            if !is_url(&s) {
                return Err(Invalid::new("", "must be an http:// or https:// address"));
            }
            check_pattern(rules, &s)?;
            Value::String(s)
        }
        FieldKind::Email => {
            let s = text_value(def, value, 320)?.to_lowercase();
            if !is_email(&s) {
                return Err(Invalid::new("", "must be an email address like name@example.org"));
            }
            check_pattern(rules, &s)?;
            Value::String(s)
        }
        FieldKind::Number => {
            let n = match value {
                Value::Number(n) => n.as_f64(),
                // Web forms and CSV imports send numbers as text.
                Value::String(s) => s.trim().replace(',', ".").parse::<f64>().ok(),
                _ => None,
            }
            .filter(|n| n.is_finite())
            .ok_or_else(|| Invalid::new("", "must be a number"))?;
            if let Some(min) = rules.min
                && n < min
            {
                return Err(Invalid::new("", format!("must be at least {min}")));
            }
            if let Some(max) = rules.max
                && n > max
            {
                return Err(Invalid::new("", format!("must be at most {max}")));
            }
            serde_json::Number::from_f64(n)
                .map(Value::Number)
                .ok_or_else(|| Invalid::new("", "must be a number"))?
        }
        FieldKind::Date => {
            let s = value.as_str().ok_or_else(|| Invalid::new("", "must be a date like 2026-03-31"))?;
            let d = NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
                .map_err(|_| Invalid::new("", "must be a date like 2026-03-31"))?;
            Value::String(d.format("%Y-%m-%d").to_string())
        }
        FieldKind::Datetime => {
            let s = value
                .as_str()
                .ok_or_else(|| Invalid::new("", "must be a date and time like 2026-03-31T14:00:00Z"))?;
            let t = DateTime::parse_from_rfc3339(s.trim())
                .map_err(|_| Invalid::new("", "must be a date and time like 2026-03-31T14:00:00Z"))?;
            Value::String(t.with_timezone(&Utc).to_rfc3339_opts(SecondsFormat::Secs, true))
        }
        FieldKind::Choice => {
            let s = value.as_str().ok_or_else(|| Invalid::new("", "must be one of the options"))?;
            let option = rules.options.iter().find(|o| o.as_str() == s.trim()).ok_or_else(|| {
                Invalid::new("", format!("'{s}' is not one of: {}", rules.options.join(", ")))
            })?;
            Value::String(option.clone())
        }
        FieldKind::MultiChoice => {
            let picked: Vec<&str> = match value {
                Value::Array(items) => items
                    .iter()
                    .map(|v| v.as_str().ok_or_else(|| Invalid::new("", "must be a list of options")))
                    .collect::<Result<_, _>>()?,
                _ => return Err(Invalid::new("", "must be a list of options")),
            };
            for p in &picked {
                if !rules.options.iter().any(|o| o == p.trim()) {
                    return Err(Invalid::new(
                        "",
                        format!("'{p}' is not one of: {}", rules.options.join(", ")),
                    ));
                }
            }
            let normalised: Vec<Value> = rules
                .options
                .iter()
                .filter(|o| picked.iter().any(|p| p.trim() == o.as_str()))
                .map(|o| Value::String(o.clone()))
                .collect();
            check_length(rules, normalised.len(), "choices")?;
            Value::Array(normalised)
        }
        FieldKind::Checkbox => match value {
            Value::Bool(b) => Value::Bool(*b),
            Value::String(s) if matches!(s.as_str(), "true" | "on" | "yes" | "1") => Value::Bool(true),
            Value::String(s) if matches!(s.as_str(), "false" | "off" | "no" | "0" | "") => Value::Bool(false),
            _ => return Err(Invalid::new("", "must be true or false")),
        },
        FieldKind::User => {
            let s = value.as_str().ok_or_else(|| Invalid::new("", "must be a user id"))?;
            let id = uuid::Uuid::parse_str(s.trim()).map_err(|_| Invalid::new("", "must be a user id"))?;
            Value::String(id.to_string())
        }
    })
}

/// Whether a normalised value counts as "filled in" for a required field.
fn is_blank(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Bool(b) => !b, // a required checkbox must be ticked ("I accept...")
        _ => false,
    }
}

/// Validates a set of submitted values against a type's fields.
///
/// - `existing`: the item's current values (empty on create); the result is `existing` with the
///   submitted values applied (a `null` clears a field).
/// - every submitted key must be a field of the type;
/// - every required field must be filled in afterwards.
///
/// Errors name the field as `custom.<key>`.
pub fn validate_values(
    defs: &[FieldDef],
    existing: &BTreeMap<String, Value>,
    submitted: &BTreeMap<String, Value>,
) -> Result<BTreeMap<String, Value>, Invalid> {
    let mut values = existing.clone();
    for (key, raw) in submitted {
        let def = defs
            .iter()
            .find(|d| &d.key == key)
            .ok_or_else(|| Invalid::new(format!("custom.{key}"), "no such field on this item type"))?;
        let normalised = if raw.is_null() {
            Value::Null
        } else {
            validate_value(def, raw).map_err(|e| e.within(&format!("custom.{key}")))?
        };
        if is_blank(&normalised) && def.kind != FieldKind::Checkbox {
            values.remove(key);
        } else {
            values.insert(key.clone(), normalised);
        }
    }
    check_required(defs, &values)?;
    Ok(values)
}

/// Every required field of `defs` is filled in in `values`.
pub fn check_required(defs: &[FieldDef], values: &BTreeMap<String, Value>) -> Result<(), Invalid> {
    for def in defs.iter().filter(|d| d.required) {
        if values.get(&def.key).is_none_or(is_blank) {
            return Err(Invalid::new(format!("custom.{}", def.key), format!("'{}' is required", def.label)));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn def(kind: FieldKind, rules: FieldRules) -> FieldDef {
        FieldDef {
            key: "f".into(),
            label: "F".into(),
            kind,
            required: false,
            help: None,
            internal: false,
            rules,
        }
    }

    fn options(opts: &[&str]) -> FieldRules {
        FieldRules { options: opts.iter().map(|s| s.to_string()).collect(), ..Default::default() }
    }

    /// `check(kind, rules, input, expected)`: expected is `Ok(normalised)` or `Err(fragment of reason)`.
    fn check(kind: FieldKind, rules: FieldRules, input: Value, expected: Result<Value, &str>) {
        let d = def(kind, rules);
        validate_def(&d).unwrap();
        match (validate_value(&d, &input), expected) {
            (Ok(got), Ok(want)) => assert_eq!(got, want, "{kind:?} {input}"),
            (Err(e), Err(fragment)) => assert!(e.reason.contains(fragment), "{kind:?} {input}: {}", e.reason),
            (got, want) => panic!("{kind:?} {input}: got {got:?}, wanted {want:?}"),
        }
    }

    #[test]
    fn values_are_validated_and_normalised() {
        use FieldKind::*;
        let none = FieldRules::default;
        check(Text, none(), json!("  hello "), Ok(json!("hello")));
        check(Text, none(), json!(5), Err("must be a string"));
        check(Text, FieldRules { max: Some(3.0), ..none() }, json!("abcd"), Err("at most 3"));
        check(Text, FieldRules { min: Some(2.0), ..none() }, json!("a"), Err("at least 2"));
        check(
            Text,
            FieldRules { pattern: Some("[A-Z]{3}-\\d+".into()), ..none() },
            json!("ABC-12"),
            Ok(json!("ABC-12")),
        );
        check(
            Text,
            FieldRules { pattern: Some("[A-Z]{3}-\\d+".into()), ..none() },
            json!("xABC-12"),
            Err("format"),
        );
        check(Text, none(), json!("line\nbreak"), Err("control"));
        check(LongText, none(), json!("line\nbreak\n"), Ok(json!("line\nbreak")));
        check(LongText, none(), json!("nul\u{0}"), Err("control"));
        check(Number, FieldRules { min: Some(0.0), max: Some(10.0), ..none() }, json!(7.5), Ok(json!(7.5)));
        check(Number, FieldRules { min: Some(0.0), ..none() }, json!(-1), Err("at least 0"));
        check(Number, none(), json!("3,5"), Ok(json!(3.5)));
        check(Number, none(), json!("three"), Err("must be a number"));
        check(Date, none(), json!("2026-02-28"), Ok(json!("2026-02-28")));
        check(Date, none(), json!("2026-02-30"), Err("date"));
        check(Datetime, none(), json!("2026-02-28T10:00:00+02:00"), Ok(json!("2026-02-28T08:00:00Z")));
        check(Datetime, none(), json!("yesterday"), Err("date and time"));
        check(Choice, options(&["Low", "High"]), json!("High"), Ok(json!("High")));
        check(Choice, options(&["Low", "High"]), json!("Medium"), Err("not one of"));
        check(MultiChoice, options(&["A", "B", "C"]), json!(["C", "A", "C"]), Ok(json!(["A", "C"])));
        check(MultiChoice, options(&["A", "B"]), json!("A"), Err("list"));
        check(
            MultiChoice,
            FieldRules { max: Some(1.0), ..options(&["A", "B"]) },
            json!(["A", "B"]),
            Err("at most 1"),
        );
        check(Checkbox, none(), json!("on"), Ok(json!(true)));
        check(Checkbox, none(), json!(3), Err("true or false"));
        check(
            User,
            none(),
            json!("00000000-0000-0000-0000-000000000007"),
            Ok(json!("00000000-0000-0000-0000-000000000007")),
        );
        check(User, none(), json!("alice"), Err("user id"));
        check(Url, none(), json!("https://example.org/a?b=c"), Ok(json!("https://example.org/a?b=c")));
        check(Url, none(), json!("javascript:alert(1)"), Err("http"));
        check(Email, none(), json!("Ana@Clinic.example"), Ok(json!("ana@clinic.example")));
        check(Email, none(), json!("ana@localhost"), Err("email"));
        check(Email, none(), json!("a b@example.org"), Err("email"));
    }

    #[test]
    fn definitions_are_checked() {
        use FieldKind::*;
        let cases: Vec<(FieldDef, &str)> = vec![
            (FieldDef { key: "Bad Key".into(), ..def(Text, FieldRules::default()) }, "key"),
            (def(Choice, FieldRules::default()), "rules.options"),
            (def(Choice, options(&["A", "A"])), "rules.options[1]"),
            (def(Number, options(&["A"])), "rules.options"),
            (def(Number, FieldRules { pattern: Some("x".into()), ..Default::default() }), "rules.pattern"),
            (def(Text, FieldRules { pattern: Some("(".into()), ..Default::default() }), "rules.pattern"),
            (def(Date, FieldRules { min: Some(1.0), ..Default::default() }), "rules"),
            (def(Number, FieldRules { min: Some(5.0), max: Some(1.0), ..Default::default() }), "rules.min"),
            (def(Text, FieldRules { max: Some(1.5), ..Default::default() }), "rules.max"),
        ];
        for (d, field) in cases {
            assert_eq!(validate_def(&d).unwrap_err().field, field, "{d:?}");
        }
    }

    #[test]
    fn required_unknown_and_clearing() {
        let defs = vec![
            FieldDef {
                key: "location".into(),
                required: true,
                ..def(FieldKind::Text, FieldRules::default())
            },
            FieldDef { key: "count".into(), ..def(FieldKind::Number, FieldRules::default()) },
        ];
        let submit =
            |pairs: &[(&str, Value)]| pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        let empty = BTreeMap::new();
        assert_eq!(validate_values(&defs, &empty, &submit(&[])).unwrap_err().field, "custom.location");
        assert_eq!(
            validate_values(&defs, &empty, &submit(&[("location", json!("Leeds")), ("nope", json!(1))]))
                .unwrap_err()
                .field,
            "custom.nope"
        );
        let ok =
            validate_values(&defs, &empty, &submit(&[("location", json!("Leeds")), ("count", json!(2))]))
                .unwrap();
        assert_eq!(ok.len(), 2);
        let cleared = validate_values(&defs, &ok, &submit(&[("count", Value::Null)])).unwrap();
        assert!(!cleared.contains_key("count"));
        assert_eq!(
            validate_values(&defs, &ok, &submit(&[("location", json!("  "))])).unwrap_err().field,
            "custom.location"
        );
        assert_eq!(
            validate_values(&defs, &ok, &submit(&[("count", json!("x"))])).unwrap_err().field,
            "custom.count"
        );
    }

    fn kind() -> impl Strategy<Value = FieldKind> {
        use FieldKind::*;
        proptest::sample::select(vec![
            Text,
            LongText,
            Number,
            Date,
            Datetime,
            Choice,
            MultiChoice,
            Checkbox,
            User,
            Url,
            Email,
        ])
    }

    fn any_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<f64>()
                .prop_map(|f| serde_json::Number::from_f64(f).map(Value::Number).unwrap_or(Value::Null)),
            any::<i64>().prop_map(|i| json!(i)),
            ".{0,40}".prop_map(Value::String),
            proptest::sample::select(vec![
                "A",
                "B",
                "2026-01-31",
                "https://x.example/a",
                "a@b.example",
                "true"
            ])
            .prop_map(|s| json!(s)),
        ];
        leaf.prop_recursive(2, 8, 4, |inner| proptest::collection::vec(inner, 0..4).prop_map(Value::Array))
    }

    proptest! {
        /// Validation never panics, and anything it accepts is a fixed point: validating the
        /// normalised value again gives the same value (so stored values always re-validate).
        #[test]
        fn accepted_values_are_fixed_points(kind in kind(), raw in any_json(), min in proptest::option::of(0u8..5), max in proptest::option::of(5u8..50)) {
            let mut rules = if matches!(kind, FieldKind::Choice | FieldKind::MultiChoice) { options(&["A", "B", "C"]) } else { FieldRules::default() };
            if matches!(kind, FieldKind::Number | FieldKind::Text | FieldKind::LongText | FieldKind::MultiChoice) {
                rules.min = min.map(f64::from);
                rules.max = max.map(f64::from);
            }
            let d = def(kind, rules);
            prop_assert!(validate_def(&d).is_ok());
            if let Ok(normalised) = validate_value(&d, &raw) {
                let again = validate_value(&d, &normalised);
                prop_assert_eq!(again.as_ref().ok(), Some(&normalised));
            }
        }

        /// A required field is never left blank by any sequence of submissions that succeeds.
        #[test]
        fn required_fields_stay_filled(submissions in proptest::collection::vec(proptest::option::of(".{0,6}"), 1..8)) {
            let defs = vec![FieldDef { key: "f".into(), required: true, ..def(FieldKind::Text, FieldRules::default()) }];
            let mut values = BTreeMap::new();
            for s in submissions {
                let submitted: BTreeMap<String, Value> = [("f".to_string(), s.map(Value::String).unwrap_or(Value::Null))].into();
                if let Ok(next) = validate_values(&defs, &values, &submitted) {
                    prop_assert!(next.get("f").and_then(Value::as_str).is_some_and(|s| !s.is_empty()));
                    values = next;
                }
            }
        }
    }
}

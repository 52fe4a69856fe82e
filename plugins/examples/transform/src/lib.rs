//! A transform step: builds a JSON document from `source` following `mapping`. Pure: no I/O.
//!
//! Action `map`, input `{"source": {...}, "mapping": {...}}`. In the mapping:
//!
//! - a string that is a JSON Pointer (`"/issue/title"`) copies that value, whatever its type
//!   (`null` when it is absent);
//! - a string with `{/pointer}` placeholders is a template: each placeholder is replaced by the
//!   value as text (strings unquoted, absent values empty); `{{` is a literal `{`;
//! - `{"$literal": x}` is `x` as is;
//! - objects and arrays are mapped member by member; numbers, booleans and null are themselves.
//!
//! ```json
//! {"source": {"issue": {"number": 42, "title": "VPN down", "labels": ["it"]}},
//!  "mapping": {"title": "/issue/title", "labels": "/issue/labels",
//!              "summary": "#{/issue/number}: {/issue/title}"}}
//! ```
//!
//! gives `{"title": "VPN down", "labels": ["it"], "summary": "#42: VPN down"}`.

use tandem_plugin_sdk::{Error, Invocation, Plugin, Value};

pub struct Transform;

impl Plugin for Transform {
    fn run(_ctx: &Invocation, action: &str, _config: &Value, input: Value) -> Result<Value, Error> {
        if action != "map" {
            return Err(Error::invalid_input(format!("no action {action:?}; this plugin has \"map\"")));
        }
        let source = input.get("source").cloned().unwrap_or(Value::Null);
        let mapping = input
            .get("mapping")
            .ok_or_else(|| Error::invalid_input("input.mapping: a mapping is required"))?;
        map(&source, mapping, "mapping")
    }
}

/// Maps one node of the mapping; `path` names it in errors.
pub fn map(source: &Value, node: &Value, path: &str) -> Result<Value, Error> {
    Ok(match node {
        Value::String(s) if s.starts_with('/') || s.is_empty() => {
            source.pointer(s).cloned().unwrap_or(Value::Null)
        }
        Value::String(s) => Value::String(template(source, s, path)?),
        Value::Object(fields) => {
            if let (1, Some(literal)) = (fields.len(), fields.get("$literal")) {
                return Ok(literal.clone());
            }
            let mut out = tandem_plugin_sdk::serde_json::Map::new();
            for (name, child) in fields {
                out.insert(name.clone(), map(source, child, &format!("{path}.{name}"))?);
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, child)| map(source, child, &format!("{path}[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        other => other.clone(),
    })
}

fn template(source: &Value, text: &str, path: &str) -> Result<String, Error> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        if let Some(tail) = after.strip_prefix('{') {
            out.push('{');
            rest = tail;
            continue;
        }
        let close = after.find('}').ok_or_else(|| {
            Error::invalid_input(format!("input.{path}: a placeholder opened at {open} is not closed"))
        })?;
        let pointer = &after[..close];
        if !pointer.starts_with('/') {
            return Err(Error::invalid_input(format!(
                "input.{path}: placeholder {{{pointer}}} is not a JSON Pointer (it starts with '/')"
            )));
        }
        match source.pointer(pointer) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) => out.push_str(s),
            Some(other) => out.push_str(&other.to_string()),
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

tandem_plugin_sdk::export_plugin!(Transform);

//! `plugin.toml`: what a plugin is and what it asks for.
//!
//! ```toml
//! id = "http-json"                 # lowercase letters, digits and '-'
//! name = "HTTP/JSON request"
//! version = "0.1.0"                # semver
//! api = "tandem:plugin@0.1.0"      # the contract it was built against
//! sha256 = "…"                     # of the .wasm file (optional; checked when present)
//!
//! [capabilities]
//! http = ["api.example.com", "*.hooks.example.org"]   # hosts it may call; the operator approves
//! state = true                                        # per-installation key-value state
//!
//! [actions.request]
//! title = "Send an HTTP request"
//! input = { type = "object", … }   # JSON Schema
//! output = { … }
//!
//! [triggers.new-issue]
//! title = "New issue"
//! kind = "poll"                    # poll | webhook | subscribe
//! output = { … }
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The contract version this host serves.
pub const API: &str = "tandem:plugin@0.1.0";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub id: String,
    pub name: String,
    pub version: String,
    pub api: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub sha256: Option<String>,
    #[serde(default)]
    pub capabilities: Capabilities,
    #[serde(default)]
    pub actions: BTreeMap<String, Action>,
    #[serde(default)]
    pub triggers: BTreeMap<String, Trigger>,
}

/// What a plugin asks for; installing it means the operator approves exactly this.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Capabilities {
    /// Hosts `http.fetch` may call.
    #[serde(default)]
    pub http: Vec<String>,
    #[serde(default)]
    pub state: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Action {
    pub title: String,
    #[serde(default)]
    pub input: Option<Value>,
    #[serde(default)]
    pub output: Option<Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TriggerKind {
    Poll,
    Webhook,
    Subscribe,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trigger {
    pub title: String,
    pub kind: TriggerKind,
    #[serde(default)]
    pub output: Option<Value>,
}

/// A manifest that cannot be used, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("plugin.toml: {field}: {message}")]
pub struct ManifestError {
    pub field: String,
    pub message: String,
}

fn bad(field: impl Into<String>, message: impl Into<String>) -> ManifestError {
    ManifestError { field: field.into(), message: message.into() }
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn is_semver(s: &str) -> bool {
    let core = s.split(['-', '+']).next().unwrap_or_default();
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3 && parts.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

fn is_host_pattern(s: &str) -> bool {
    let name = s.strip_prefix("*.").unwrap_or(s);
    !name.is_empty()
        && name.len() <= 253
        && !name.contains('*')
        && name
            .split('.')
            .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b':'))
}

fn check_schema(field: String, schema: &Option<Value>) -> Result<(), ManifestError> {
    match schema {
        None => Ok(()),
        Some(schema) => json_schema(&field, schema),
    }
}

const TYPES: &[&str] = &["null", "boolean", "object", "array", "number", "string", "integer"];

/// Checks that `schema` is a JSON Schema (draft 7 to 2020-12): a table or a boolean whose
/// keywords Tandem knows have values of the right shape. Unknown keywords are allowed, as the
/// specification says. The error names the keyword's path.
pub fn json_schema(path: &str, schema: &Value) -> Result<(), ManifestError> {
    let fields = match schema {
        Value::Bool(_) => return Ok(()),
        Value::Object(fields) => fields,
        _ => return Err(bad(path, "a JSON Schema (a table, or true/false) is expected")),
    };
    for (key, value) in fields {
        let at = format!("{path}.{key}");
        let is_count = |v: &Value| v.as_u64().is_some();
        match key.as_str() {
            "type" => {
                let ok = |v: &Value| v.as_str().is_some_and(|t| TYPES.contains(&t));
                let good = match value {
                    Value::Array(types) => !types.is_empty() && types.iter().all(ok),
                    other => ok(other),
                };
                if !good {
                    return Err(bad(at, format!("{value} is not a JSON type (one of {})", TYPES.join(", "))));
                }
            }
            "properties" | "patternProperties" | "$defs" | "definitions" | "dependentSchemas" => {
                let members = value.as_object().ok_or_else(|| bad(&at, "a table of schemas is expected"))?;
                for (name, member) in members {
                    json_schema(&format!("{at}.{name}"), member)?;
                }
            }
            "items" if value.is_array() => {
                for (i, member) in value.as_array().into_iter().flatten().enumerate() {
                    json_schema(&format!("{at}[{i}]"), member)?;
                }
            }
            "items"
            | "additionalProperties"
            | "additionalItems"
            | "not"
            | "if"
            | "then"
            | "else"
            | "contains"
            | "propertyNames"
            | "unevaluatedProperties"
            | "unevaluatedItems" => json_schema(&at, value)?,
            "allOf" | "anyOf" | "oneOf" | "prefixItems" => {
                let members = value.as_array().filter(|m| !m.is_empty());
                let members = members.ok_or_else(|| bad(&at, "a non-empty list of schemas is expected"))?;
                for (i, member) in members.iter().enumerate() {
                    json_schema(&format!("{at}[{i}]"), member)?;
                }
            }
            "required" => {
                let names = value.as_array().filter(|names| names.iter().all(Value::is_string));
                if names.is_none() {
                    return Err(bad(at, "a list of property names is expected"));
                }
            }
            "enum" if value.as_array().is_none_or(|v| v.is_empty()) => {
                return Err(bad(at, "a non-empty list of values is expected"));
            }
            "minimum" | "maximum" | "exclusiveMinimum" | "exclusiveMaximum" if !value.is_number() => {
                return Err(bad(at, "a number is expected"));
            }
            "multipleOf" if !value.as_f64().is_some_and(|n| n > 0.0) => {
                return Err(bad(at, "a number greater than 0 is expected"));
            }
            "minLength" | "maxLength" | "minItems" | "maxItems" | "minProperties" | "maxProperties"
            | "minContains" | "maxContains"
                if !is_count(value) =>
            {
                return Err(bad(at, "a whole number of at least 0 is expected"));
            }
            "title" | "description" | "format" | "pattern" | "$ref" | "$id" | "$schema" | "$comment"
            | "$anchor"
                if !value.is_string() =>
            {
                return Err(bad(at, "a string is expected"));
            }
            "uniqueItems" | "readOnly" | "writeOnly" | "deprecated" if !value.is_boolean() => {
                return Err(bad(at, "true or false is expected"));
            }
            _ => {}
        }
    }
    Ok(())
}

impl Manifest {
    /// Parses and checks a manifest.
    pub fn parse(text: &str) -> Result<Manifest, ManifestError> {
        let manifest: Manifest = toml::from_str(text).map_err(|e| {
            let message = e.message().to_string();
            let field = match e.span() {
                Some(span) => {
                    let line = text[..span.start.min(text.len())].lines().count().max(1);
                    format!("line {line}")
                }
                None => "(file)".to_string(),
            };
            bad(field, message)
        })?;
        manifest.check()?;
        Ok(manifest)
    }

    fn check(&self) -> Result<(), ManifestError> {
        if !is_name(&self.id) {
            return Err(bad("id", format!("{:?}: use 1–64 lowercase letters, digits and '-'", self.id)));
        }
        if self.name.trim().is_empty() {
            return Err(bad("name", "must not be empty"));
        }
        if !is_semver(&self.version) {
            return Err(bad("version", format!("{:?} is not a version like 1.2.3", self.version)));
        }
        if self.api != API {
            return Err(bad("api", format!("{:?} is not served here; this Tandem serves {API}", self.api)));
        }
        if let Some(sha) = &self.sha256
            && !(sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return Err(bad("sha256", "64 hexadecimal digits are expected"));
        }
        for (i, host) in self.capabilities.http.iter().enumerate() {
            if !is_host_pattern(host) {
                return Err(bad(
                    format!("capabilities.http[{i}]"),
                    format!("{host:?} is not a host name (or *.domain)"),
                ));
            }
        }
        if self.actions.is_empty() && self.triggers.is_empty() {
            return Err(bad("actions", "a plugin offers at least one action or trigger"));
        }
        for (name, action) in &self.actions {
            if !is_name(name) {
                return Err(bad(
                    format!("actions.{name}"),
                    "action names use lowercase letters, digits and '-'",
                ));
            }
            check_schema(format!("actions.{name}.input"), &action.input)?;
            check_schema(format!("actions.{name}.output"), &action.output)?;
        }
        for (name, trigger) in &self.triggers {
            if !is_name(name) {
                return Err(bad(
                    format!("triggers.{name}"),
                    "trigger names use lowercase letters, digits and '-'",
                ));
            }
            check_schema(format!("triggers.{name}.output"), &trigger.output)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
id = "http-json"
name = "HTTP/JSON request"
version = "0.1.0"
api = "tandem:plugin@0.1.0"

[capabilities]
http = ["api.example.com", "*.hooks.example.org"]

[actions.request]
title = "Send"
input = { type = "object", required = ["url"] }

[triggers.new-issue]
title = "New issue"
kind = "poll"
"#;

    #[test]
    fn a_good_manifest_parses() {
        let m = Manifest::parse(GOOD).unwrap();
        assert_eq!(m.id, "http-json");
        assert_eq!(m.capabilities.http.len(), 2);
        assert_eq!(m.actions["request"].input.as_ref().unwrap()["required"][0], "url");
        assert_eq!(m.triggers["new-issue"].kind, TriggerKind::Poll);
    }

    #[test]
    fn the_example_manifest_parses() {
        let text = include_str!("../../examples/http-json/plugin.toml");
        Manifest::parse(text).unwrap();
    }

    #[test]
    fn bad_manifests_name_the_field() {
        let table = [
            (GOOD.replace("id = \"http-json\"", "id = \"HTTP json\""), "id"),
            (GOOD.replace("0.1.0\"\napi", "one\"\napi"), "version"),
            (GOOD.replace("api = \"tandem:plugin@0.1.0\"", "api = \"tandem:plugin@9.0.0\""), "api"),
            (GOOD.replace("\"api.example.com\"", "\"http://api.example.com/x\""), "capabilities.http[0]"),
            (GOOD.replace("kind = \"poll\"", "kind = \"sometimes\""), "line"),
            (GOOD.replace("input = { type", "input = 3\nx = { type"), "line"),
            (GOOD.replace("[actions.request]", "[actions.Request]"), "actions.Request"),
            (format!("{GOOD}\nsha256 = \"abc\""), "line"),
            (GOOD.replace("version = \"0.1.0\"", "version = \"0.1.0\"\nsha256 = \"xyz\""), "sha256"),
            (
                GOOD.replace(
                    "title = \"Send\"\ninput = { type = \"object\", required = [\"url\"] }",
                    "title = \"Send\"\ninput = \"object\"",
                ),
                "actions.request.input",
            ),
        ];
        for (text, field) in table {
            let err = Manifest::parse(&text).unwrap_err();
            assert!(err.field.starts_with(field), "{field}: got {err}");
        }
        for (schema, field) in [
            ("{ type = \"objet\" }", "actions.request.input.type"),
            (
                "{ type = \"object\", properties = { url = { type = 3 } } }",
                "actions.request.input.properties.url.type",
            ),
            ("{ required = \"url\" }", "actions.request.input.required"),
            ("{ anyOf = [] }", "actions.request.input.anyOf"),
            ("{ items = { minLength = -1 } }", "actions.request.input.items.minLength"),
            ("{ properties = [1] }", "actions.request.input.properties"),
        ] {
            let text = GOOD.replace("{ type = \"object\", required = [\"url\"] }", schema);
            let err = Manifest::parse(&text).unwrap_err();
            assert_eq!(err.field, field, "{schema}: {err}");
        }
        let nothing = "id = \"x\"\nname = \"X\"\nversion = \"1.0.0\"\napi = \"tandem:plugin@0.1.0\"\n";
        assert_eq!(Manifest::parse(nothing).unwrap_err().field, "actions");
    }
}

/// Refuses every `$ref` outside the schema itself: a manifest's schema may not make Tandem read
/// files or the network.
struct NoLoader;

impl boon::UrlLoader for NoLoader {
    fn load(&self, url: &str) -> Result<Value, Box<dyn std::error::Error>> {
        Err(format!("schemas may not refer to {url}").into())
    }
}

/// Checks `input` against an action's input schema from its manifest. The error names where
/// in the input it is wrong (`/body/title: want string, but got number`).
pub fn validate_input(schema: &Value, input: &Value) -> Result<(), String> {
    const AT: &str = "urn:tandem:action-input";
    let mut schemas = boon::Schemas::new();
    let mut compiler = boon::Compiler::new();
    compiler.use_loader(Box::new(NoLoader));
    compiler.add_resource(AT, schema.clone()).map_err(|e| format!("the action's input schema: {e}"))?;
    let index = compiler.compile(AT, &mut schemas).map_err(|e| format!("the action's input schema: {e}"))?;
    schemas.validate(input, index).map_err(|e| {
        // The innermost causes say what is wrong and where; the top says only "validation failed".
        let mut leaves = Vec::new();
        let mut stack = vec![&e];
        while let Some(err) = stack.pop() {
            if err.causes.is_empty() {
                leaves.push(format!("{}: {}", location(&err.instance_location.to_string()), err.kind));
            } else {
                stack.extend(err.causes.iter());
            }
        }
        leaves.sort();
        format!("the input does not fit the action's schema: {}", leaves.join("; "))
    })
}

fn location(pointer: &str) -> String {
    if pointer.is_empty() { "input".to_string() } else { format!("input{pointer}") }
}

#[cfg(test)]
mod input_tests {
    use serde_json::json;

    use super::validate_input;

    #[test]
    fn inputs_are_checked_against_the_action_schema() {
        let schema = json!({"type": "object", "required": ["url"],
            "properties": {"url": {"type": "string"}, "method": {"enum": ["GET", "POST"]}}});
        assert_eq!(validate_input(&schema, &json!({"url": "https://x.example"})), Ok(()));
        let missing = validate_input(&schema, &json!({"method": "GET"})).unwrap_err();
        assert!(missing.contains("input") && missing.contains("url"), "{missing}");
        let wrong = validate_input(&schema, &json!({"url": 3, "method": "PUT"})).unwrap_err();
        assert!(wrong.contains("input/url") && wrong.contains("input/method"), "{wrong}");
        let remote = json!({"$ref": "file:///etc/passwd"});
        let refused = validate_input(&remote, &json!({})).unwrap_err();
        assert!(refused.contains("schema"), "{refused}");
    }
}

//! Field-level differences between two versions of a record, for `*Updated` events.

use serde::Serialize;
use serde_json::Value;

use crate::event::FieldChange;

/// Fields that change on every write and say nothing about what the user changed.
const BOOKKEEPING: &[&str] = &["version", "updated_at"];

/// The top-level fields (and `custom.*` entries) that differ between `old` and `new`.
pub fn diff<T: Serialize>(old: &T, new: &T) -> Vec<FieldChange> {
    let (Ok(Value::Object(old)), Ok(Value::Object(new))) =
        (serde_json::to_value(old), serde_json::to_value(new))
    else {
        return Vec::new();
    };
    let mut changes = Vec::new();
    let keys: std::collections::BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    for key in keys {
        if BOOKKEEPING.contains(&key.as_str()) {
            continue;
        }
        let (a, b) = (old.get(key).unwrap_or(&Value::Null), new.get(key).unwrap_or(&Value::Null));
        if a == b {
            continue;
        }
        match (key.as_str(), a, b) {
            ("custom", Value::Object(a), Value::Object(b)) => {
                let sub: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
                for k in sub {
                    let (x, y) = (a.get(k).unwrap_or(&Value::Null), b.get(k).unwrap_or(&Value::Null));
                    if x != y {
                        changes.push(FieldChange {
                            field: format!("custom.{k}"),
                            from: x.clone(),
                            to: y.clone(),
                        });
                    }
                }
            }
            _ => changes.push(FieldChange { field: key.clone(), from: a.clone(), to: b.clone() }),
        }
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn diffs_top_level_and_custom() {
        let a = json!({"title": "a", "version": 1, "custom": {"x": 1, "y": 2}});
        let b = json!({"title": "b", "version": 2, "custom": {"x": 1, "z": 3}});
        let fields: Vec<_> = diff(&a, &b).into_iter().map(|c| c.field).collect();
        assert_eq!(fields, ["custom.y", "custom.z", "title"]);
    }
}

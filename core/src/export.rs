//! Tables to export: a saved view's rows (whatever its layout, the list of its items with its
//! columns, grouped when it groups) and timesheet entries. Pure: the server writes a [`Table`] as
//! CSV ([`Table::to_csv`]) or as an XLSX workbook.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::ids::{ItemId, UserId};
use crate::item::Item;
use crate::people::User;
use crate::timesheet::TimeEntry;
use crate::views::{SavedView, ViewData, list};

/// A sheet: named columns and rows of cells. Cells are JSON values: numbers stay numbers (so a
/// spreadsheet can sum them), text is text, lists are joined with `, `, null is an empty cell.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Table {
    pub name: String,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
}

/// A cell as text (CSV, HTML).
pub fn cell_text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(cell_text).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

impl Table {
    /// RFC 4180 CSV with a header row, UTF-8.
    pub fn to_csv(&self) -> Vec<u8> {
        let mut w = ::csv::WriterBuilder::new().from_writer(Vec::new());
        // Writing into memory cannot fail.
        let _ = w.write_record(&self.columns);
        for row in &self.rows {
            let _ = w.write_record(row.iter().map(cell_text));
        }
        w.into_inner().unwrap_or_default()
    }
}

/// A view's items as a table: its columns (the group-by field first when it groups).
pub fn view_table(view: &SavedView, items: &[Item]) -> Table {
    let ViewData::List { columns, groups } = list(view, items) else {
        return Table { name: view.name.clone(), columns: Vec::new(), rows: Vec::new() };
    };
    let grouped = view.group_by.is_some();
    let mut header = Vec::new();
    if let Some(g) = &view.group_by {
        header.push(g.clone());
    }
    header.extend(columns);
    let mut rows = Vec::new();
    for group in groups {
        for row in group.rows {
            let mut cells = Vec::new();
            if grouped {
                cells.push(Value::String(group.key.clone()));
            }
            cells.extend(row.cells);
            rows.push(cells);
        }
    }
    Table { name: view.name.clone(), columns: header, rows }
}

/// The columns of a timesheet export.
pub const TIME_COLUMNS: [&str; 11] = [
    "started_at",
    "person",
    "email",
    "item",
    "title",
    "minutes",
    "hours",
    "status",
    "note",
    "reviewed_by",
    "rejection_reason",
];

/// Timesheet entries as a table: who, on what, when, how long (minutes as of `now` for a running
/// timer), and where they stand. `items` and `users` name what the entries refer to; an item the
/// reader may not see is shown by number only when known, else left blank.
pub fn time_table(
    entries: &[TimeEntry],
    items: &HashMap<ItemId, Item>,
    users: &HashMap<UserId, User>,
    now: DateTime<Utc>,
) -> Table {
    let name = |u: Option<UserId>| u.and_then(|u| users.get(&u)).map(|u| u.name.clone());
    let rows = entries
        .iter()
        .map(|e| {
            let item = items.get(&e.item);
            let minutes = e.minutes_at(now);
            vec![
                Value::String(e.started_at.format("%Y-%m-%d %H:%M").to_string()),
                name(Some(e.user)).map_or(Value::Null, Value::String),
                users.get(&e.user).and_then(|u| u.email.clone()).map_or(Value::Null, Value::String),
                item.map_or(Value::Null, |i| Value::String(format!("#{}", i.number))),
                item.map_or(Value::Null, |i| Value::String(i.title.clone())),
                Value::from(minutes),
                serde_json::Number::from_f64((minutes as f64 / 60.0 * 100.0).round() / 100.0)
                    .map_or(Value::Null, Value::Number),
                Value::String(e.status.as_str().to_string()),
                Value::String(e.note.clone()),
                name(e.reviewed_by).map_or(Value::Null, Value::String),
                e.rejection_reason.clone().map_or(Value::Null, Value::String),
            ]
        })
        .collect();
    Table { name: "Timesheet".into(), columns: TIME_COLUMNS.iter().map(|c| c.to_string()).collect(), rows }
}

impl crate::desk::Desk {
    /// A saved view's items as a table, run as the reader (their scope and redaction).
    pub async fn view_table(
        &self,
        actor: &crate::access::Actor,
        view: crate::ids::ViewId,
        now: DateTime<Utc>,
    ) -> Result<Table, crate::error::DeskError> {
        let view = self.view(actor, view).await?;
        let items = self.view_items(actor, &view, now).await?;
        Ok(view_table(&view, &items))
    }

    /// Timesheet entries matching `query` as a table (staff). Items the reader cannot see are
    /// left blank.
    pub async fn time_table(
        &self,
        actor: &crate::access::Actor,
        query: crate::store::TimeEntryQuery,
        now: DateTime<Utc>,
    ) -> Result<Table, crate::error::DeskError> {
        let entries = self.time_entries(actor, query).await?;
        let mut items = HashMap::new();
        for e in &entries {
            if !items.contains_key(&e.item)
                && let Ok(item) = self.item(actor, crate::desk::ItemRef::Id(e.item)).await
            {
                items.insert(e.item, item);
            }
        }
        let users: Vec<User> = self.directory(actor, &crate::store::RecordQuery::all()).await?;
        let users = users.into_iter().map(|u| (u.id, u)).collect();
        Ok(time_table(&entries, &items, &users, now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn csv_quotes_what_needs_quoting_and_joins_lists() {
        let t = Table {
            name: "t".into(),
            columns: vec!["number".into(), "title".into(), "assignee".into(), "points".into()],
            rows: vec![
                vec![json!(1), json!("Printer, \"fast\""), json!(["Ana", "Bo"]), json!(2.5)],
                vec![json!(2), json!("Line\nbreak"), Value::Null, Value::Null],
            ],
        };
        let text = String::from_utf8(t.to_csv()).unwrap();
        assert_eq!(
            text,
            "number,title,assignee,points\n1,\"Printer, \"\"fast\"\"\",\"Ana, Bo\",2.5\n2,\"Line\nbreak\",,\n"
        );
        let mut back = ::csv::Reader::from_reader(text.as_bytes());
        let rows: Vec<Vec<String>> =
            back.records().map(|r| r.unwrap().iter().map(str::to_string).collect()).collect();
        assert_eq!(rows[0][1], "Printer, \"fast\"");
        assert_eq!(rows[1][1], "Line\nbreak");
    }
}

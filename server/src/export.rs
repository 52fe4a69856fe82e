//! Writing exported tables as files: CSV (the core's `Table::to_csv`), XLSX (`rust_xlsxwriter`)
//! and HTML (an escaped table, for mail bodies), with their content types and file names.

use rust_xlsxwriter::{Format, Workbook, XlsxError};
use serde_json::Value;
use tandem_core::export::{Table, cell_text};

/// The file formats a table is exported in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    Csv,
    Xlsx,
}

impl FileFormat {
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "csv" => Some(Self::Csv),
            "xlsx" => Some(Self::Xlsx),
            _ => None,
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Xlsx => "xlsx",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Csv => "text/csv; charset=utf-8",
            Self::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        }
    }

    /// The table in this format.
    pub fn write(self, table: &Table) -> Result<Vec<u8>, XlsxError> {
        match self {
            Self::Csv => Ok(table.to_csv()),
            Self::Xlsx => xlsx(table),
        }
    }
}

/// The longest text an XLSX cell holds.
const MAX_CELL_CHARS: usize = 32_767;

/// A sheet name Excel accepts: at most 31 characters, none of `[]:*?/\`.
fn sheet_name(name: &str) -> String {
    let clean: String =
        name.chars().filter(|c| !matches!(c, '[' | ']' | ':' | '*' | '?' | '/' | '\\')).take(31).collect();
    let clean = clean.trim_matches('\'').trim().to_string();
    if clean.is_empty() { "Sheet1".into() } else { clean }
}

/// One worksheet: a bold header row, then the rows; numbers and booleans stay typed.
pub fn xlsx(table: &Table) -> Result<Vec<u8>, XlsxError> {
    let mut workbook = Workbook::new();
    let sheet = workbook.add_worksheet();
    sheet.set_name(sheet_name(&table.name))?;
    let bold = Format::new().set_bold();
    for (c, name) in table.columns.iter().enumerate() {
        sheet.write_string_with_format(0, c as u16, name, &bold)?;
    }
    for (r, row) in table.rows.iter().enumerate() {
        let r = r as u32 + 1;
        for (c, v) in row.iter().enumerate() {
            let c = c as u16;
            match v {
                Value::Null => {}
                Value::Bool(b) => {
                    sheet.write_boolean(r, c, *b)?;
                }
                Value::Number(n) => {
                    sheet.write_number(r, c, n.as_f64().unwrap_or_default())?;
                }
                other => {
                    let text: String = cell_text(other).chars().take(MAX_CELL_CHARS).collect();
                    sheet.write_string(r, c, text)?;
                }
            }
        }
    }
    workbook.save_to_buffer()
}

/// The table as an HTML fragment, every cell escaped.
pub fn html(table: &Table) -> String {
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
            .replace('\'', "&#39;")
    };
    let mut out = String::from("<table border=\"1\" cellpadding=\"4\" cellspacing=\"0\">\n<thead><tr>");
    for c in &table.columns {
        out.push_str(&format!("<th>{}</th>", esc(c)));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for row in &table.rows {
        out.push_str("<tr>");
        for v in row {
            out.push_str(&format!("<td>{}</td>", esc(&cell_text(v))));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
    out
}

/// A file name from a title: letters, digits, `-` and `_` (others become `-`), never empty.
pub fn file_name(title: &str, extension: &str) -> String {
    let mut stem: String = title
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '-' })
        .collect();
    while stem.contains("--") {
        stem = stem.replace("--", "-");
    }
    let stem = stem.trim_matches('-');
    let stem = if stem.is_empty() { "export" } else { stem };
    format!("{}.{extension}", &stem[..stem.len().min(80)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_and_html_are_safe() {
        assert_eq!(file_name("Hospital IT: open / urgent", "csv"), "Hospital-IT-open-urgent.csv");
        assert_eq!(file_name("", "xlsx"), "export.xlsx");
        assert_eq!(
            sheet_name("A [b]: c*?/\\ d that is a very long name indeed"),
            "A b c d that is a very long nam"
        );
        let t = Table {
            name: "t".into(),
            columns: vec!["<b>".into()],
            rows: vec![vec![json!("<script>x</script>")]],
        };
        let h = html(&t);
        assert!(h.contains("&lt;script&gt;x&lt;/script&gt;") && !h.contains("<script>"), "{h}");
    }
}

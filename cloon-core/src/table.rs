//! Tables for people: what `list`, `state` and `show` print when stdout is a terminal (or with
//! `--table`), instead of the JSON a pipe gets (or `--json` asks for).

use crate::cli;
use crate::error::Result;
use serde_json::Value;
use std::process::ExitCode;

/// `--json` and `--table`: JSON in a pipe, a table on a terminal, unless one of them says.
#[derive(Debug, Clone, Copy, Default, clap::Args)]
pub struct Output {
    /// Print JSON even on a terminal
    #[arg(long)]
    pub json: bool,
    /// Print the table even when stdout is not a terminal
    #[arg(long, conflicts_with = "json")]
    pub table: bool,
}

impl Output {
    /// Whether to print the table: `--table`, or stdout is a terminal and `--json` is not given.
    pub fn is_table(&self) -> bool {
        use std::io::IsTerminal;
        self.table || (!self.json && std::io::stdout().is_terminal())
    }
}

/// Runs `query` and prints its value: as [`cli::run_query`] does (pretty JSON) unless `output`
/// asks for the table, which `table` makes of the value.
pub fn run<T: serde::Serialize>(
    stage: &str,
    output: Output,
    query: impl FnOnce() -> Result<T>,
    table: impl FnOnce(&Value) -> String,
) -> ExitCode {
    if !output.is_table() {
        return cli::run_query(stage, query);
    }
    match query() {
        Ok(value) => {
            cli::print(&table(&serde_json::to_value(value).unwrap_or_default()));
            ExitCode::SUCCESS
        }
        Err(e) => cli::fail(stage, &e),
    }
}

/// Rows as aligned columns: each column as wide as its widest cell, two spaces between columns,
/// no trailing blanks; the first row is the header.
pub fn columns<R: AsRef<[String]>>(rows: &[R]) -> String {
    let mut widths: Vec<usize> = Vec::new();
    for row in rows {
        for (i, cell) in row.as_ref().iter().enumerate() {
            let n = cell.chars().count();
            match widths.get_mut(i) {
                Some(w) => *w = (*w).max(n),
                None => widths.push(n),
            }
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.as_ref().iter().enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            let pad = widths[i].saturating_sub(cell.chars().count());
            line.extend(std::iter::repeat_n(' ', pad));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// A JSON value as a table cell: a string as itself, null as nothing, anything else (numbers,
/// booleans, arrays, objects) as compact JSON.
pub fn cell(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A record (a JSON object) as KEY VALUE lines under a `KEY  VALUE` header, its fields in their
/// order, nested values as compact JSON; a value that is not an object is one VALUE line.
pub fn record(value: &Value) -> String {
    let mut rows = vec![vec!["KEY".to_string(), "VALUE".to_string()]];
    match value {
        Value::Object(fields) => {
            for (k, v) in fields {
                rows.push(vec![k.clone(), cell(v)]);
            }
        }
        other => rows.push(vec![String::new(), cell(other)]),
    }
    columns(&rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn columns_are_as_wide_as_their_widest_cell() {
        let rows = [
            ["NAME", "STATUS", "PID"].map(String::from),
            ["Cloon1", "running", "4242"].map(String::from),
            ["C2", "", "0"].map(String::from),
        ];
        assert_eq!(
            columns(&rows),
            "NAME    STATUS   PID\nCloon1  running  4242\nC2               0\n"
        );
        assert_eq!(columns(&[["A", "B"].map(String::from)]), "A  B\n");
        assert_eq!(columns::<Vec<String>>(&[]), "");
        // Wide characters count once.
        let rows = [["é", "x"].map(String::from), ["ab", "y"].map(String::from)];
        assert_eq!(columns(&rows), "é   x\nab  y\n");
    }

    #[test]
    fn cells_are_strings_or_compact_json() {
        assert_eq!(cell(&json!("a b")), "a b");
        assert_eq!(cell(&json!(null)), "");
        assert_eq!(cell(&json!(7)), "7");
        assert_eq!(cell(&json!(true)), "true");
        assert_eq!(cell(&json!(["a", 1])), r#"["a",1]"#);
        assert_eq!(cell(&json!({"k": {"n": 1}})), r#"{"k":{"n":1}}"#);
    }

    #[test]
    fn a_record_is_key_value_lines() {
        let rec = json!({"id": "Cloon1", "pid": 4242, "cgroup": {"mode": "none"}, "x": null});
        assert_eq!(
            record(&rec),
            "KEY     VALUE\n\
             id      Cloon1\n\
             pid     4242\n\
             cgroup  {\"mode\":\"none\"}\n\
             x\n"
        );
        assert_eq!(record(&json!({})), "KEY  VALUE\n");
        assert_eq!(record(&json!(3)), "KEY  VALUE\n     3\n");
    }
}

//! What the commands print on stdout: records of named fields, as `name<TAB>value` lines or one
//! JSON object; lists, as a `name<TAB>item` line per item or one JSON object holding the array;
//! and tables, as a header line and a line per row or one JSON array of objects.

use std::io::{self, Write as _};

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};

use crate::failure::{Code, Failure};

/// Prints in the format the command line asked for.
#[derive(Debug)]
pub(crate) struct Printer {
    json: bool,
}

impl Printer {
    pub(crate) fn new(json: bool) -> Self {
        Self { json }
    }

    /// One record: `name<TAB>value` per field, or one JSON object.
    pub(crate) fn record(&self, fields: Vec<(&str, Value)>) -> Result<(), Failure> {
        if self.json {
            return write([object(fields).to_string()]);
        }
        write(
            fields
                .iter()
                .map(|(name, value)| format!("{name}\t{}", text(value))),
        )
    }

    /// Items of one kind: `name<TAB>item` per item (no line for none), or one JSON object
    /// `{"name": [items]}`.
    pub(crate) fn list(&self, name: &str, items: Vec<String>) -> Result<(), Failure> {
        if self.json {
            return write([object(vec![(name, items.into())]).to_string()]);
        }
        write(items.iter().map(|item| format!("{name}\t{item}")))
    }

    /// A table: the column names, then one tab-separated line per row; or one JSON array of
    /// objects. Each row holds a value per column, in order.
    pub(crate) fn table(&self, columns: &[&str], rows: Vec<Vec<Value>>) -> Result<(), Failure> {
        if self.json {
            let objects = rows
                .into_iter()
                .map(|row| object(columns.iter().copied().zip(row).collect()))
                .collect();
            return write([Value::Array(objects).to_string()]);
        }
        let lines = rows
            .iter()
            .map(|row| row.iter().map(text).collect::<Vec<_>>().join("\t"));
        write(std::iter::once(columns.join("\t")).chain(lines))
    }
}

/// A time as RFC 3339 in UTC to the second; `null` for none.
pub(crate) fn time(at: Option<DateTime<Utc>>) -> Value {
    at.map_or(Value::Null, |at| {
        Value::String(at.to_rfc3339_opts(SecondsFormat::Secs, true))
    })
}

fn object(fields: Vec<(&str, Value)>) -> Value {
    Value::Object(
        fields
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value))
            .collect::<Map<_, _>>(),
    )
}

/// A value as a line shows it: text as it is, `-` for none.
fn text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => "-".to_owned(),
        other => other.to_string(),
    }
}

fn write(lines: impl IntoIterator<Item = String>) -> Result<(), Failure> {
    let mut stdout = io::stdout().lock();
    lines
        .into_iter()
        .try_for_each(|line| writeln!(stdout, "{line}"))
        .and_then(|()| stdout.flush())
        .map_err(|err| Failure::new(Code::Failed, format!("cannot write the output: {err}")))
}

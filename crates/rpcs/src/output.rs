//! Rendering values: readable for people, JSON for machines.

use rpcs_core::{json, Value};
use std::io::{self, Write};

/// Writes a value for people: a top-level string as its bare text, anything else
/// as indented JSON (bytes as base64, date-times as ISO 8601).
pub fn print_human(value: &Value) -> io::Result<()> {
    let mut out = io::stdout().lock();
    match value {
        Value::String(s) => writeln!(out, "{s}"),
        other => {
            let text =
                serde_json::to_string_pretty(&json::to_json(other)).map_err(io::Error::other)?;
            writeln!(out, "{text}")
        }
    }
}

/// Writes a value as one line of JSON.
pub fn print_json(value: &Value) -> io::Result<()> {
    let text = serde_json::to_string(&json::to_json(value)).map_err(io::Error::other)?;
    writeln!(io::stdout().lock(), "{text}")
}

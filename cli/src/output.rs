//! Output: aligned tables for people, the API's JSON for scripts.

use std::io::Write as _;

use serde_json::Value;

/// Writes to standard output. When the reader has gone (`brokerctl tail | head -5`), the
/// process ends quietly with exit 0 like other Unix tools, instead of Rust's panic on a
/// closed pipe; any other write error ends it with exit 1.
pub fn write_out(args: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("brokerctl: cannot write the output: {e}");
        std::process::exit(1);
    }
}

/// `print!` through [`write_out`].
macro_rules! out {
    ($($arg:tt)*) => { $crate::output::write_out(format_args!($($arg)*)) };
}

/// `println!` through [`write_out`].
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::output::write_out(format_args!("{}\n", format_args!($($arg)*)))
    };
}

pub(crate) use outln;

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns with a header line.
    Table,
    /// JSON as the API returns it (RabbitMQ's field names).
    Json,
}

/// A field by dotted path (`queue.name`) as table text.
fn cell(item: &Value, path: &str) -> String {
    let mut v = item;
    for part in path.split('.') {
        v = &v[part];
    }
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Object(o) if o.is_empty() => String::new(),
        // Tags and similar lists of names: "administrator,monitoring".
        Value::Array(items) if items.iter().all(Value::is_string) => items
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(","),
        other => other.to_string(),
    }
}

/// A JSON value as plain text (strings without quotes).
pub fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Renders rows under a header, each column as wide as its widest cell.
pub fn table(columns: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = columns.iter().map(|c| c.chars().count()).collect();
    for row in rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let text: Vec<String> = cells
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(text.join("  ").trim_end());
        out.push('\n');
    };
    line(&mut columns.iter().copied());
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}

/// Prints a JSON array as a table of `columns` (dotted paths), or as JSON.
pub fn print_list(format: Format, list: &Value, columns: &[&str]) {
    match format {
        Format::Json => print_object(format, list),
        Format::Table => {
            let rows: Vec<Vec<String>> = list
                .as_array()
                .map(|items| {
                    items
                        .iter()
                        .map(|item| columns.iter().map(|c| cell(item, c)).collect())
                        .collect()
                })
                .unwrap_or_default();
            out!("{}", table(columns, &rows));
        }
    }
}

/// Replaces each MQTT session's `subscriptions` list by one cell: "filter:qos filter:qos".
pub fn summarise_subscriptions(sessions: &mut Value) {
    for session in sessions.as_array_mut().into_iter().flatten() {
        let text = session["subscriptions"]
            .as_array()
            .map(|subs| {
                subs.iter()
                    .map(|s| format!("{}:{}", cell(s, "filter"), cell(s, "qos")))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        if let Some(o) = session.as_object_mut() {
            o.insert("subscriptions".into(), Value::String(text));
        }
    }
}

/// Prints a JSON value (pretty).
pub fn print_object(_format: Format, value: &Value) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => outln!("{text}"),
        Err(_) => outln!("{value}"),
    }
}

/// `status` as text.
pub fn print_status(o: &Value) {
    outln!(
        "{} {} (up {} s)",
        cell(o, "product_name"),
        cell(o, "product_version"),
        o["uptime"].as_u64().unwrap_or(0) / 1000
    );
    let listeners: Vec<Vec<String>> = o["listeners"]
        .as_array()
        .map(|ls| {
            ls.iter()
                .map(|l| {
                    vec![
                        cell(l, "protocol"),
                        format!("{}:{}", cell(l, "ip_address"), cell(l, "port")),
                    ]
                })
                .collect()
        })
        .unwrap_or_default();
    out!("{}", table(&["listener", "address"], &listeners));
    let totals = [
        ("connections", "object_totals.connections"),
        ("channels", "object_totals.channels"),
        ("exchanges", "object_totals.exchanges"),
        ("queues", "object_totals.queues"),
        ("consumers", "object_totals.consumers"),
        ("messages", "queue_totals.messages"),
        ("messages_ready", "queue_totals.messages_ready"),
        (
            "messages_unacknowledged",
            "queue_totals.messages_unacknowledged",
        ),
        ("published", "message_stats.publish"),
        ("delivered", "message_stats.deliver_get"),
        ("acknowledged", "message_stats.ack"),
    ];
    let rows: Vec<Vec<String>> = totals
        .iter()
        .map(|(name, path)| vec![(*name).to_string(), cell(o, path)])
        .collect();
    out!("{}", table(&["total", "value"], &rows));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns_and_read_dotted_paths() {
        let list = serde_json::json!([
            {"name": "a", "queue": {"name": "q1"}, "n": ["x", "y"]},
            {"name": "long-name", "queue": {"name": "q"}, "n": null},
        ]);
        let rows: Vec<Vec<String>> = list
            .as_array()
            .into_iter()
            .flatten()
            .map(|i| vec![cell(i, "name"), cell(i, "queue.name"), cell(i, "n")])
            .collect();
        assert_eq!(
            table(&["name", "queue.name", "n"], &rows),
            "name       queue.name  n\na          q1          x,y\nlong-name  q\n"
        );
    }
}

//! The server's log: JSON lines in production, text in a terminal. Values that come
//! from agents or clients (an artifact's name, a header, an error's text) are written
//! with every control character escaped, so no value can end a line early and forge
//! the next one. JSON escapes them by construction; the text format does it here.

use std::fmt;

use tracing::field::Field;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::field::MakeExt;
use tracing_subscriber::fmt::format::Writer;

use crate::settings::LogFormat;

/// Installs the process's subscriber (`AGENTD_LOG` filters it, e.g. `info,sqlx=warn`).
pub fn init(format: LogFormat) {
    let json = format == LogFormat::Json;
    let filter = EnvFilter::try_from_env("AGENTD_LOG").unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    // Tracing may already be set (tests); keeping the first subscriber is fine.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.fmt_fields(escaped_fields()).with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).try_init()
    };
}

/// Field formatting of the text log: `name=value` separated by spaces, the message
/// bare, every value with its control characters escaped.
fn escaped_fields() -> impl for<'w> tracing_subscriber::fmt::FormatFields<'w> + 'static {
    tracing_subscriber::fmt::format::debug_fn(|writer: &mut Writer<'_>, field: &Field, value: &dyn fmt::Debug| {
        let text = escape_controls(&format!("{value:?}"));
        match field.name() {
            "message" => writer.write_str(&text),
            name => write!(writer, "{name}={text}"),
        }
    })
    .delimited(" ")
}

/// `text` with every control character written as an escape (`\n`, `\u{1b}`).
fn escape_controls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().map_err(|_| std::io::Error::other("poisoned"))?.extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_value_with_a_newline_cannot_forge_a_log_line() {
        let buffer = Buffer::default();
        let sink = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .fmt_fields(escaped_fields())
            .with_ansi(false)
            .with_writer(move || sink.clone())
            .finish();
        let name = "report.txt\n2026-12-01T00:00:00Z ERROR forged: the operator's password is hunter2";
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(artifact = %name, detail = ?name, "storing an artifact failed: {name}");
        });
        let written = String::from_utf8(buffer.0.lock().map(|b| b.clone()).unwrap_or_default()).unwrap_or_default();
        assert_eq!(written.lines().count(), 1, "{written}");
        assert!(written.contains("report.txt\\n2026"), "{written}");
    }

    #[test]
    fn terminal_escapes_are_escaped_too() {
        assert_eq!(escape_controls("a\u{1b}[2Jb\r\t"), "a\\u{1b}[2Jb\\r\\t");
    }
}

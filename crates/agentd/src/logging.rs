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

/// Installs the process's subscriber (`AGENTD_LOG` filters it, e.g. `info,sqlx=warn`)
/// and, in a build with the `otlp` feature and `OTEL_EXPORTER_OTLP_ENDPOINT` set, the
/// OpenTelemetry trace export. Keep the guard until the process ends: dropping it sends
/// the spans still buffered.
#[must_use = "dropping the guard ends the trace export"]
pub fn init(format: LogFormat) -> LogGuard {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;

    let json = format == LogFormat::Json;
    let filter = EnvFilter::try_from_env("AGENTD_LOG").unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let json_lines = json.then(|| tracing_subscriber::fmt::layer().with_writer(std::io::stderr).json());
    let text = (!json).then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .fmt_fields(escaped_fields())
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
    });
    let (export, guard) = trace_export();
    // Tracing may already be set (tests); keeping the first subscriber is fine.
    let _ = tracing_subscriber::registry().with(filter).with(json_lines).with(text).with(export).try_init();
    if guard.export_failed.is_some() || (!cfg!(feature = "otlp") && otlp_configured()) {
        let reason = guard.export_failed.as_deref().unwrap_or("this build has no `otlp` feature");
        tracing::warn!(reason, "OTEL_EXPORTER_OTLP_ENDPOINT is set but traces are not exported");
    }
    guard
}

/// Whether the standard variables ask for trace export.
fn otlp_configured() -> bool {
    ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]
        .iter()
        .any(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()))
}

/// Ends the trace export when dropped, sending what is still buffered.
pub struct LogGuard {
    #[cfg(feature = "otlp")]
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
    /// Why export was asked for and could not start.
    export_failed: Option<String>,
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        #[cfg(feature = "otlp")]
        if let Some(provider) = self.provider.take() {
            let _ = provider.shutdown();
        }
    }
}

#[cfg(not(feature = "otlp"))]
fn trace_export() -> (Option<tracing_subscriber::layer::Identity>, LogGuard) {
    (None, LogGuard { export_failed: None })
}

/// Spans go to the OTLP/HTTP endpoint the standard variables name (`OTEL_EXPORTER_OTLP_ENDPOINT`,
/// `…_TRACES_ENDPOINT`, `…_HEADERS`, `…_TIMEOUT`), batched off the request path, with the
/// service name `agentd` unless `OTEL_SERVICE_NAME` says otherwise.
#[cfg(feature = "otlp")]
fn trace_export<S>() -> (Option<impl tracing_subscriber::Layer<S>>, LogGuard)
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    use opentelemetry::trace::TracerProvider as _;

    if !otlp_configured() {
        return (None, LogGuard { provider: None, export_failed: None });
    }
    // The exporter's HTTP client is reqwest, which brings no TLS provider of its own.
    agentd_client::install_crypto_provider();
    let exporter = match opentelemetry_otlp::SpanExporter::builder().with_http().build() {
        Ok(exporter) => exporter,
        Err(err) => return (None, LogGuard { provider: None, export_failed: Some(err.to_string()) }),
    };
    let mut resource = opentelemetry_sdk::Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name("agentd");
    }
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build();
    let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("agentd"));
    (Some(layer), LogGuard { provider: Some(provider), export_failed: None })
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

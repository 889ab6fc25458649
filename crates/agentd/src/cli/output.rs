//! How results and failures reach the user: JSON or aligned tables on stdout, one
//! `error: …` line on stderr (with `--json`, a problem document), and the exit code that
//! goes with each failure (docs/CLI.md lists them):
//!
//! | code | meaning |
//! |---|---|
//! | 0 | done |
//! | 1 | the run (or the dependency build) did not succeed, or waits for an answer |
//! | 2 | usage: the command line or a local input, or the server found the request invalid (`400`, `415`, `422`) |
//! | 3 | authentication or permission: no credentials stored, `401`, `403` |
//! | 4 | not found (`404`) |
//! | 5 | a conflict or a limit (`409`, `413`, `429`) |
//! | 6 | the server failed or could not be reached (`5xx`, a connection error, an unreadable answer) |

use std::process::ExitCode;
use std::time::Duration;

use agentd_api_types::{InvocationError, InvocationStatus};
use agentd_client::ClientError;
use indicatif::ProgressBar;
use serde::Serialize;

/// Why a command did not succeed. Each variant decides its exit code.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The command line or a local input does not make sense (exit 2).
    #[error("{0}")]
    Usage(String),
    /// No credentials for the server (exit 3).
    #[error("{0}")]
    SignedOut(String),
    /// The server refused, answered oddly, or could not be reached (by its status).
    #[error(transparent)]
    Client(#[from] ClientError),
    /// Something on this machine failed: a file, the bundle packer (exit 2).
    #[error("{0}")]
    Local(String),
    /// The version's dependencies could not be installed (exit 1).
    #[error("the dependency build of version {version} failed: {error}")]
    BuildFailed { version: u32, error: String },
    /// The invocation ran and did not succeed (exit 1).
    #[error("invocation {id} ended {status}")]
    RunEnded { id: String, status: InvocationStatus, error: Option<InvocationError> },
    /// `--wait` ended on a question: the run is paused, not done (exit 1).
    #[error("invocation {id} is waiting for input; answer it with `agentd respond {id} --answer JSON`")]
    Waiting { id: String },
}

impl Failure {
    pub fn local(message: impl Into<String>) -> Failure {
        Failure::Local(message.into())
    }

    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(match self {
            Failure::RunEnded { .. } | Failure::BuildFailed { .. } | Failure::Waiting { .. } => 1,
            Failure::Usage(_) | Failure::Local(_) => 2,
            Failure::SignedOut(_) => 3,
            Failure::Client(err) => match err {
                ClientError::InvalidUrl { .. } | ClientError::UnsendableSegment { .. } => 2,
                ClientError::Api { status, .. } => match status {
                    400 | 415 | 422 => 2,
                    401 | 403 => 3,
                    404 => 4,
                    409 | 413 | 429 => 5,
                    _ => 6,
                },
                ClientError::Transport(_)
                | ClientError::Decode { .. }
                | ClientError::StreamClosed
                | ClientError::StreamFailed { .. } => 6,
            },
        })
    }

    /// Prints the failure on stderr: one `error: …` line, or with `json` a problem
    /// document (the server's own when it answered with one).
    pub fn report(&self, json: bool) {
        if !json {
            let prefix = if colour_stderr() {
                console::style("error:").red().bold().force_styling(true).to_string()
            } else {
                "error:".to_owned()
            };
            eprintln!("{prefix} {}", self.message());
            return;
        }
        let document = match self {
            Failure::Client(ClientError::Api { problem, .. }) => serde_json::to_value(problem.as_ref()),
            other => serde_json::to_value(CliProblem {
                kind: format!("urn:agentd:cli:{}", other.code()),
                title: "agentd command failed",
                detail: other.message(),
                code: other.code(),
                invocation_id: match other {
                    Failure::RunEnded { id, .. } | Failure::Waiting { id } => Some(id),
                    _ => None,
                },
                error: match other {
                    Failure::RunEnded { error, .. } => error.as_ref(),
                    _ => None,
                },
            }),
        };
        match document.and_then(|d| serde_json::to_string(&d)) {
            Ok(line) => eprintln!("{line}"),
            Err(_) => eprintln!("error: {}", self.message()),
        }
    }

    /// The machine word of a failure the server did not describe itself.
    fn code(&self) -> &'static str {
        match self {
            Failure::Usage(_) => "usage",
            Failure::SignedOut(_) => "signed_out",
            Failure::Local(_) => "local",
            Failure::BuildFailed { .. } => "build_failed",
            Failure::RunEnded { .. } => "run_failed",
            Failure::Waiting { .. } => "waiting_for_input",
            Failure::Client(ClientError::Api { .. }) => "server_refused",
            Failure::Client(ClientError::Transport(_)) => "unreachable",
            Failure::Client(ClientError::InvalidUrl { .. } | ClientError::UnsendableSegment { .. }) => "usage",
            Failure::Client(_) => "bad_response",
        }
    }

    fn message(&self) -> String {
        match self {
            Failure::Client(ClientError::Api { problem, .. }) => {
                let mut context = Vec::new();
                if let Some(code) = &problem.code {
                    context.push(format!("code {code}"));
                }
                if let Some(request_id) = &problem.request_id {
                    context.push(format!("request {request_id}"));
                }
                if context.is_empty() {
                    format!("{} (HTTP {})", problem.message(), problem.status)
                } else {
                    format!("{} ({})", problem.message(), context.join(", "))
                }
            }
            Failure::Client(ClientError::Transport(e)) => {
                format!("cannot reach the server: {}", with_sources(e))
            }
            Failure::Client(e) => with_sources(e),
            Failure::RunEnded { id, status, error: Some(error) } => {
                format!("invocation {id} {status}: {} (code {})", error.message, error.code)
            }
            other => other.to_string(),
        }
    }
}

/// A failure the server did not answer with a problem document of its own, written as
/// one (RFC 9457's members, plus what a script needs to act on).
#[derive(Serialize)]
struct CliProblem<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'static str,
    detail: String,
    code: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    invocation_id: Option<&'a String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a InvocationError>,
}

/// `outer: inner: innermost`: an error's `Display` does not repeat its sources.
fn with_sources(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

/// Prints a value as pretty JSON on stdout.
pub fn print_json<T: Serialize>(value: &T) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(value).map_err(|e| Failure::local(format!("cannot encode JSON: {e}")))?;
    println!("{text}");
    Ok(())
}

/// Prints rows under a header, in aligned columns; on a terminal the table fits its
/// width (long cells wrap), elsewhere lines are never wrapped.
pub fn print_table(header: &[&str], rows: &[Vec<String>]) {
    use comfy_table::{CellAlignment, ContentArrangement, Table, presets};
    let mut table = Table::new();
    table.load_style(presets::NOTHING).set_header(header.iter().copied()).add_rows(rows.iter().cloned());
    if let Some((_, width)) = console::Term::stdout().size_checked() {
        table.set_content_arrangement(ContentArrangement::Dynamic).set_width(width);
    }
    for column in table.column_iter_mut() {
        column.set_padding((0, 2)).set_cell_alignment(CellAlignment::Left);
    }
    for line in table.lines() {
        println!("{}", line.trim_end());
    }
}

/// Whether to colour what goes to stderr: a terminal, and `NO_COLOR` unset
/// (<https://no-color.org>).
pub fn colour_stderr() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && console::Term::stderr().features().is_attended()
}

/// Whether to colour what goes to stdout (see [`colour_stderr`]).
pub fn colour_stdout() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && console::Term::stdout().features().is_attended()
}

/// An invocation's status, coloured by how it ended when `colour` is on.
pub fn status_word(status: InvocationStatus, colour: bool) -> String {
    let word = status.to_string();
    if !colour {
        return word;
    }
    let styled = console::style(word).force_styling(true);
    match status {
        InvocationStatus::Succeeded => styled.green(),
        InvocationStatus::Failed | InvocationStatus::TimedOut => styled.red(),
        InvocationStatus::Cancelled => styled.dim(),
        InvocationStatus::WaitingForInput => styled.cyan(),
        _ => styled.yellow(),
    }
    .to_string()
}

/// A progress bar on stderr for `total` bytes being sent; like [`spinner`], drawn only on
/// a terminal.
pub fn byte_progress(total: u64, message: String) -> ProgressBar {
    let bar = ProgressBar::new(total).with_message(message);
    let style = indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}")
        .map(|s| s.progress_chars("=> "));
    if let Ok(style) = style {
        bar.set_style(style);
    }
    bar
}

/// Tells the user on stderr how to fetch the next page, if there is one.
pub fn next_page_hint(next_cursor: Option<&str>) {
    if let Some(cursor) = next_cursor {
        eprintln!("(more results: pass --cursor {cursor})");
    }
}

/// A cell for an optional value.
pub fn or_dash<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

/// The JSON word of a serde enum (`active`, `private`), for table cells.
pub fn word<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(word)) => word,
        Ok(other) => other.to_string(),
        Err(_) => "?".to_owned(),
    }
}

/// A spinner on stderr for a wait the user should see; indicatif draws nothing when
/// stderr is not a terminal, so scripts and tests get clean output.
pub fn spinner(message: String) -> ProgressBar {
    let spinner = ProgressBar::new_spinner().with_message(message);
    spinner.enable_steady_tick(Duration::from_millis(100));
    spinner
}

/// `text` on one line, at most `max` characters, for a progress message.
pub fn one_line(text: &str, max: usize) -> String {
    let line: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    match line.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line,
    }
}

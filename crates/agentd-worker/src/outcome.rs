//! How a run's end becomes the completion the queue records: the sandbox's termination
//! and what the agent reported, or the platform's own failure (which the server runs
//! again as a new attempt, see `agentd_core::Fault`).

use agentd_core::queue::Completion;
use agentd_core::{Fault, InvocationError, InvocationStatus, Usage};
use agentd_sandbox::{RunOutcome, Termination};
use serde_json::Value;

/// What the agent reported while it ran.
#[derive(Default)]
pub(crate) struct Reported {
    pub(crate) output: Option<Value>,
    /// The value of the last `interrupt` the agent sent: its question.
    pub(crate) interrupt: Option<serde_json::Value>,
    /// For a run on a thread: the thread's state as the run leaves it (the state it
    /// started on, replaced by each `state` the agent sent); `None` without a thread.
    pub(crate) state: Option<Value>,
    pub(crate) last_stderr: Option<String>,
}

/// The run's own failure: it counts against `max_attempts`.
pub(crate) fn agent_failure(status: InvocationStatus, code: &str, message: impl Into<String>) -> Completion {
    let error = Some(InvocationError { code: code.into(), message: message.into() });
    Completion {
        status,
        output: None,
        error,
        usage: Usage::default(),
        fault: Fault::Agent,
        interrupt: None,
        state: None,
    }
}

/// The platform could not run the agent or record what it did; the agent did nothing
/// wrong.
pub(crate) fn platform_failure(code: &str, message: impl Into<String>) -> Completion {
    let error = Some(InvocationError { code: code.into(), message: message.into() });
    Completion {
        status: InvocationStatus::Failed,
        output: None,
        error,
        usage: Usage::default(),
        fault: Fault::Platform,
        interrupt: None,
        state: None,
    }
}

pub(crate) fn completion(outcome: RunOutcome, reported: Reported) -> Completion {
    let usage = Usage {
        wall_ms: outcome.wall.as_millis() as u64,
        cpu_ms: outcome.cpu.as_millis() as u64,
        peak_memory_bytes: outcome.peak_memory_bytes,
        log_bytes: outcome.output_bytes,
    };
    let ended = |status, output| Completion {
        status,
        output,
        error: None,
        usage: Usage::default(),
        fault: Fault::Agent,
        interrupt: None,
        state: None,
    };
    let mut done = match outcome.termination {
        Termination::Exited(0) if reported.interrupt.is_some() => {
            Completion { interrupt: reported.interrupt, ..ended(InvocationStatus::WaitingForInput, None) }
        }
        Termination::Exited(0) => ended(InvocationStatus::Succeeded, reported.output),
        Termination::Exited(code) => {
            let detail = reported.last_stderr.map(|l| format!(": {}", truncate(&l, 300))).unwrap_or_default();
            agent_failure(
                InvocationStatus::Failed,
                "agent_failed",
                format!("the agent exited with code {code}{detail}"),
            )
        }
        Termination::Signaled(sig) => {
            agent_failure(InvocationStatus::Failed, "agent_killed", format!("the agent was killed by signal {sig}"))
        }
        Termination::TimedOut => agent_failure(
            InvocationStatus::TimedOut,
            "timeout",
            format!("the agent ran longer than its timeout ({} ms)", usage.wall_ms),
        ),
        Termination::Cancelled => agent_failure(
            InvocationStatus::Cancelled,
            "cancelled",
            "cancelled while running; the process tree was killed",
        ),
        Termination::MemoryLimit => agent_failure(
            InvocationStatus::Failed,
            "memory_limit",
            format!("the agent used more than its memory limit (peak {} bytes)", usage.peak_memory_bytes),
        ),
        Termination::OutputLimit => agent_failure(
            InvocationStatus::Failed,
            "output_limit",
            format!("the agent printed more than its output limit ({} bytes)", usage.log_bytes),
        ),
    };
    done.usage = usage;
    done.state = reported.state;
    done
}

pub(crate) fn truncate(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((i, _)) => &text[..i],
        None => text,
    }
}

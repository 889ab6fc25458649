//! Supervising one started program, sandboxed or not: feed stdin then close it, pump
//! stdout/stderr/events concurrently, and stop at the first of: the program ended and every
//! pipe reached EOF, the wall timeout, cancellation, or the output cap. Stopping only
//! decides *how* the run ended; killing and reaping belong to the caller, which owns the
//! process (`Sandbox::run`, `run_unsandboxed`).

use std::future::Future;

use tokio::io::AsyncWriteExt;
use tokio::net::unix::pipe;
use tokio_util::sync::CancellationToken;

use crate::error::SandboxError;
use crate::init_control::AgentStatus;
use crate::line_capture::{LineCapture, OutputLimitExceeded};
use crate::run_pipes::Pipes;
use crate::spec::{RunLimits, Stream, Termination};

/// How the supervised part of a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    /// The program ended on its own and all its output was read.
    Finished(AgentStatus),
    TimedOut,
    Cancelled,
    OutputLimit,
}

impl Ending {
    pub(crate) fn termination(self) -> Termination {
        match self {
            Ending::Finished(AgentStatus::Code(code)) => Termination::Exited(code),
            Ending::Finished(AgentStatus::Signal(signal)) => Termination::Signaled(signal),
            Ending::TimedOut => Termination::TimedOut,
            Ending::Cancelled => Termination::Cancelled,
            Ending::OutputLimit => Termination::OutputLimit,
        }
    }
}

enum Halt {
    OutputLimit,
    Failed(SandboxError),
}

/// Runs until the program is done (`exit` resolves and all pipes are drained) or a limit
/// stops it. `exit` resolves to the program's status once it has ended.
pub(crate) async fn supervise(
    pipes: Pipes,
    stdin: Vec<u8>,
    limits: &RunLimits,
    output: &LineCapture,
    cancel: &CancellationToken,
    exit: impl Future<Output = Result<AgentStatus, SandboxError>>,
) -> Result<Ending, SandboxError> {
    let Pipes { stdin: stdin_pipe, stdout, stderr, events } = pipes;
    let exited = async { exit.await.map_err(Halt::Failed) };
    // try_join: the first pump over the cap stops all of them.
    let drained = async {
        tokio::try_join!(
            async {
                feed(stdin_pipe, stdin).await;
                Ok(())
            },
            output.pump(Stream::Stdout, stdout),
            output.pump(Stream::Stderr, stderr),
            output.pump(Stream::Events, events),
        )
        .map_err(|OutputLimitExceeded| Halt::OutputLimit)
    };
    let done = async { tokio::try_join!(exited, drained).map(|(status, _)| status) };
    tokio::select! {
        biased;
        _ = cancel.cancelled() => Ok(Ending::Cancelled),
        _ = tokio::time::sleep(limits.wall_timeout) => Ok(Ending::TimedOut),
        result = done => match result {
            Ok(status) => Ok(Ending::Finished(status)),
            Err(Halt::OutputLimit) => Ok(Ending::OutputLimit),
            Err(Halt::Failed(e)) => Err(e),
        },
    }
}

/// Writes the whole input, then closes stdin. A program that exits or closes stdin
/// without reading it is not an error.
async fn feed(mut pipe: pipe::Sender, input: Vec<u8>) {
    if !input.is_empty()
        && let Err(e) = pipe.write_all(&input).await
    {
        tracing::debug!(error = %e, "program did not read all of its stdin");
    }
    drop(pipe);
}

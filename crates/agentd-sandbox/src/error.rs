//! The one error enum of the sandbox layer. A run that starts and ends (even by timeout,
//! cancellation or output limit) is an `Ok(RunOutcome)`; these errors mean the run could
//! not be set up or supervised at all.

use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The host lacks something the sandbox cannot run without.
    #[error("the host cannot run sandboxes: {reason}")]
    Unsupported { reason: String },

    /// The `RunSpec` is not runnable as given.
    #[error("invalid run spec: {reason}")]
    InvalidSpec { reason: String },

    /// A host-side I/O step failed (scratch dir, pipes, id maps).
    #[error("{action}")]
    Io {
        action: String,
        #[source]
        source: io::Error,
    },

    /// The init program could not be started.
    #[error("could not start the sandbox init program {}", program.display())]
    Spawn {
        program: PathBuf,
        #[source]
        source: io::Error,
    },

    /// A step inside the sandbox failed before the program ran (mounts, ids, exec).
    #[error("sandbox setup failed while {stage}: {message}")]
    Setup { stage: String, message: String },

    /// The init process broke the control protocol or died without reporting.
    #[error("sandbox init failed: {reason}")]
    Protocol { reason: String },
}

impl SandboxError {
    /// What failed, in words that name no host path, so it can be shown to whoever's run
    /// it was (the full error, with paths, goes to the operator's log).
    pub fn summary(&self) -> &'static str {
        match self {
            SandboxError::Unsupported { .. } => "this host cannot run sandboxes",
            SandboxError::InvalidSpec { .. } => "the worker built an invalid sandbox specification",
            SandboxError::Io { .. } => "a host-side step of setting up the sandbox failed",
            SandboxError::Spawn { .. } => "the sandbox init program could not be started",
            SandboxError::Setup { .. } => "setting up the sandbox failed before the agent started",
            SandboxError::Protocol { .. } => "the sandbox init stopped responding",
        }
    }

    pub(crate) fn io(action: impl Into<String>, source: io::Error) -> Self {
        SandboxError::Io { action: action.into(), source }
    }

    pub(crate) fn protocol(reason: impl Into<String>) -> Self {
        SandboxError::Protocol { reason: reason.into() }
    }
}

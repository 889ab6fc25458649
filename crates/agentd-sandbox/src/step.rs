//! Failures of the steps that run inside the sandbox (init, PID 1, the agent before exec).
//! Each carries the stage it happened in; the init reports it to the supervisor as
//! `FromInit::Failed`, which surfaces as `SandboxError::Setup`.

use std::fmt::Display;

#[derive(Debug)]
pub(crate) struct StepError {
    pub stage: String,
    pub message: String,
}

/// Attaches the stage ("mounting /usr", "execve /agent/run.sh") to a low-level error.
pub(crate) trait Stage<T> {
    fn stage(self, stage: impl FnOnce() -> String) -> Result<T, StepError>;
}

impl<T, E: Display> Stage<T> for Result<T, E> {
    fn stage(self, stage: impl FnOnce() -> String) -> Result<T, StepError> {
        self.map_err(|e| StepError { stage: stage(), message: e.to_string() })
    }
}

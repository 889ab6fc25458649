//! Errors of the store layer. They say what happened to the data, never how an API
//! shows it: the domain layer turns them into its own errors, and each front end
//! chooses status codes and machine codes from those.

use agentd_core::{InvocationStatus, ResourceKind};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The resource does not exist for this tenant (or at all).
    #[error("{0} not found")]
    NotFound(ResourceKind),
    /// The change clashes with what is stored.
    #[error(transparent)]
    Conflict(#[from] Conflict),
    /// Creating one more would pass the quota the caller gave; `count` are in use.
    #[error("{count} are in use, the most allowed")]
    QuotaReached { count: u64 },
    /// The write would take what the caller's items hold past the byte quota it gave:
    /// `used` are held, and the write would add `adding`.
    #[error("{used} bytes are in use; the write would add {adding}")]
    BytesQuotaReached { used: u64, adding: u64 },
    #[error("database error")]
    Database(#[from] sqlx::Error),
    /// A stored value that our own code wrote no longer parses.
    #[error("corrupt stored value in {column}: {detail}")]
    Corrupt { column: &'static str, detail: String },
    #[error("{0}")]
    Config(String),
    /// A file of the store (the database file, a blob) could not be written or read.
    #[error("file error at {path}")]
    File { path: String, source: std::io::Error },
    #[error("object store error at {key}: {detail}")]
    ObjectStore { key: String, detail: String },
}

/// A unique value taken, or a state that no longer allows the change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Conflict {
    #[error("an agent with slug `{slug}` already exists")]
    AgentSlugTaken { slug: String },
    #[error("the workspace slug `{slug}` is taken")]
    WorkspaceSlugTaken { slug: String },
    #[error("an account with this email exists")]
    EmailTaken,
    #[error("the invocation already finished with status {status}")]
    InvocationFinished { status: InvocationStatus },
    #[error("the invocation is {status}, not waiting for input")]
    NotWaiting { status: InvocationStatus },
    #[error("the thread is {status}: a run of it is going or waiting for an answer")]
    ThreadBusy { status: agentd_core::ThreadStatus },
    #[error("the thread belongs to agent `{agent}`")]
    ThreadOfAnotherAgent { agent: String },
    #[error("version {version} cannot be activated: its dependency build is {status}")]
    VersionNotReady { version: u32, status: agentd_core::BuildStatus },
    #[error("the workspace would have no owner left")]
    LastOwner,
    #[error("the user is a member of the workspace already")]
    AlreadyMember,
    #[error("the invite is no longer pending")]
    InviteUsed,
    /// The schedule's occurrence has its invocation already.
    #[error("the occurrence has its invocation already")]
    OccurrenceTaken,
}

impl StoreError {
    pub(crate) fn corrupt(column: &'static str, detail: impl std::fmt::Display) -> StoreError {
        StoreError::Corrupt { column, detail: detail.to_string() }
    }
}

/// True when `err` is a violation of a UNIQUE constraint.
pub(crate) fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}

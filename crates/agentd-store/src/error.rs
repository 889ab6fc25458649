//! Errors of the store layer. The API maps each variant to an HTTP problem document.

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The resource does not exist for this tenant (or at all).
    #[error("{what} not found")]
    NotFound { what: &'static str },
    /// The request clashes with the current state (a taken slug, a finished invocation).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// A tenant limit would be exceeded.
    #[error("{message}")]
    LimitExceeded { code: &'static str, message: String },
    #[error("database error")]
    Database(#[from] sqlx::Error),
    /// A stored value that our own code wrote no longer parses.
    #[error("corrupt stored value in {column}: {detail}")]
    Corrupt { column: &'static str, detail: String },
    #[error("{0}")]
    Config(String),
    #[error("blob storage error at {path}")]
    Blob { path: String, source: std::io::Error },
    #[error("object store error at {key}: {detail}")]
    ObjectStore { key: String, detail: String },
}

impl StoreError {
    pub(crate) fn corrupt(column: &'static str, detail: impl std::fmt::Display) -> StoreError {
        StoreError::Corrupt { column, detail: detail.to_string() }
    }

    pub(crate) fn conflict(code: &'static str, message: impl Into<String>) -> StoreError {
        StoreError::Conflict { code, message: message.into() }
    }
}

/// True when `err` is a violation of a UNIQUE constraint.
pub(crate) fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}

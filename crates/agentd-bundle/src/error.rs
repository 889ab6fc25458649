//! The one error type of this crate.
//!
//! Every variant maps to a stable machine `code` (see [`BundleError::code`]) that the API
//! turns into a problem document: the `bundle_too_large` family becomes `413`, the other
//! bundle problems `422`. Messages are written for the person who built the bundle: they
//! say what was wrong and what to do about it.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Which limit of [`crate::BundleLimits`] a bundle went over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizeLimit {
    /// The archive itself, as uploaded (`max_bundle_bytes`).
    CompressedBytes,
    /// The sum of the file sizes once unpacked (`max_unpacked_bytes`).
    UnpackedBytes,
    /// The number of entries: files, directories and links (`max_entries`).
    Entries,
}

impl fmt::Display for SizeLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SizeLimit::CompressedBytes => "max_bundle_bytes",
            SizeLimit::UnpackedBytes => "max_unpacked_bytes",
            SizeLimit::Entries => "max_entries",
        })
    }
}

/// Why a bundle was refused, or why unpacking or packing one failed.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// The archive, its unpacked content or its entry count is over a limit. `seen` is how
    /// far reading got before stopping: for streamed checks it is a lower bound, because
    /// reading stops as soon as the limit is crossed.
    #[error("{}", too_large_message(*limit, *seen, *max))]
    TooLarge { limit: SizeLimit, seen: u64, max: u64 },

    #[error(
        "bundle is not a readable .tar.gz or .zip archive ({reason}); \
         build it with `agentd agents deploy DIR`, `tar -czf` or `zip -r`"
    )]
    Unreadable { reason: String },

    #[error("bundle has no agent.toml at its root{}", nested_hint(nested.as_deref()))]
    ManifestMissing {
        /// An `agent.toml` found one folder down, if any: the usual mistake is zipping the
        /// folder instead of its contents.
        nested: Option<String>,
    },

    #[error("agent.toml is invalid: {reason}")]
    ManifestInvalid { reason: String },

    #[error(
        "agent.toml: runtime `{runtime}` is not supported; use one of {}",
        crate::Runtime::ALL.map(|r| r.to_string()).join(", ")
    )]
    RuntimeUnknown { runtime: String },

    #[error(
        "entrypoint `{entrypoint}` named in agent.toml is not a regular file in the bundle \
         ({found}); add the file or fix `entrypoint`"
    )]
    EntrypointMissing {
        entrypoint: String,
        /// What the bundle holds at that path: "not found", "a directory", "a symlink".
        found: &'static str,
    },

    #[error(
        "bundle entry `{path}` {reason}; bundles may only hold relative paths that stay \
         inside the bundle"
    )]
    PathUnsafe { path: String, reason: &'static str },

    #[error("link `{path}` -> `{target}` {reason}; links must be relative and stay inside the bundle")]
    SymlinkUnsafe { path: String, target: String, reason: &'static str },

    #[error(
        "bundle entry `{path}` is a {kind}; bundles may only hold regular files, directories \
         and links"
    )]
    EntryUnsupported { path: String, kind: &'static str },

    #[error("the bundle's dependencies cannot be installed: {reason}")]
    DependenciesInvalid { reason: String },

    /// `unpack` was given a destination that already exists (or appeared while unpacking,
    /// when another process unpacked the same bundle first).
    #[error("cannot unpack into `{}`: it already exists", path.display())]
    DestinationExists { path: PathBuf },

    /// A filesystem operation failed while unpacking or packing; never returned by
    /// [`crate::inspect`], which does no I/O.
    #[error("could not {action} `{}`", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl BundleError {
    /// The stable machine code of this error, as documented in the crate README.
    pub fn code(&self) -> &'static str {
        match self {
            BundleError::TooLarge { .. } => "bundle_too_large",
            BundleError::Unreadable { .. } => "bundle_unreadable",
            BundleError::ManifestMissing { .. } => "manifest_missing",
            BundleError::ManifestInvalid { .. } => "manifest_invalid",
            BundleError::RuntimeUnknown { .. } => "runtime_unknown",
            BundleError::EntrypointMissing { .. } => "entrypoint_missing",
            BundleError::PathUnsafe { .. } => "path_unsafe",
            BundleError::SymlinkUnsafe { .. } => "symlink_unsafe",
            BundleError::EntryUnsupported { .. } => "entry_unsupported",
            BundleError::DependenciesInvalid { .. } => "dependencies_invalid",
            BundleError::DestinationExists { .. } => "destination_exists",
            BundleError::Io { .. } => "io_error",
        }
    }

    /// True for the errors the API reports as `413 Content Too Large`.
    pub fn is_too_large(&self) -> bool {
        matches!(self, BundleError::TooLarge { .. })
    }

    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        BundleError::Io { action, path: path.into(), source }
    }

    pub(crate) fn unreadable(reason: impl fmt::Display) -> Self {
        BundleError::Unreadable { reason: reason.to_string() }
    }

    pub(crate) fn manifest(reason: impl Into<String>) -> Self {
        BundleError::ManifestInvalid { reason: reason.into() }
    }
}

fn too_large_message(limit: SizeLimit, seen: u64, max: u64) -> String {
    let what = match limit {
        SizeLimit::CompressedBytes => format!("bundle is {seen} bytes, over the limit of {max}"),
        SizeLimit::UnpackedBytes => {
            format!("bundle unpacks to more than {max} bytes (the limit)")
        }
        SizeLimit::Entries => format!("bundle has more than {max} entries (the limit)"),
    };
    format!(
        "{what}; leave out build outputs, virtualenvs and data files, or ask the operator to \
         raise {limit}"
    )
}

fn nested_hint(nested: Option<&str>) -> String {
    match nested {
        Some(path) => {
            format!(" (found `{path}`: pack the folder's contents, not the folder itself)")
        }
        None => "; add one next to your entrypoint".to_owned(),
    }
}

/// Shortens an untrusted name for an error message, so a 4 KiB path does not flood a log.
pub(crate) fn shown(raw: &[u8]) -> String {
    const MAX: usize = 200;
    let text = String::from_utf8_lossy(raw);
    if text.chars().count() <= MAX {
        return text.into_owned();
    }
    let mut short: String = text.chars().take(MAX).collect();
    short.push('…');
    short
}

//! The agent bundle format: reading, checking, unpacking and packing bundles.
//!
//! Used by three callers, each with one function: the API server runs [`inspect`] on every
//! upload before storing it, the worker runs [`unpack`] into its cache folder for a digest,
//! and the CLI runs [`pack_dir`] to deploy a folder. Bundles are untrusted input from
//! strangers; every check lives in the single pass of the `walk` module, which both
//! `inspect` and `unpack` go through.
//!
#![doc = include_str!("../README.md")]

mod archive;
mod entry_path;
mod environment;
mod error;
mod links;
mod manifest;
mod pack;
mod schema;
mod unpack;
mod walk;

use std::path::Path;

use sha2::{Digest, Sha256};

pub use archive::ArchiveFormat;
pub use environment::{EnvRefusal, MAX_ENV_NAME_CHARS, MAX_ENV_VALUE_BYTES, MAX_ENV_VARS, check_env, check_env_name};
pub use error::{BundleError, SizeLimit};
pub use manifest::{Manifest, ManifestLimits, NetworkPolicy, Runtime};
pub use schema::{MAX_SCHEMA_BYTES, MAX_VIOLATIONS, Schema, SchemaRefusal, SchemaViolation};

/// Size limits applied while reading a bundle. The platform sets them per tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BundleLimits {
    /// Largest accepted archive, as uploaded.
    pub max_bundle_bytes: u64,
    /// Largest accepted sum of file sizes once unpacked.
    pub max_unpacked_bytes: u64,
    /// Most entries (files, folders and links) an archive may hold.
    pub max_entries: u32,
}

impl Default for BundleLimits {
    /// 50 MiB compressed, 200 MiB unpacked, 10 000 entries.
    fn default() -> Self {
        BundleLimits { max_bundle_bytes: 50 * 1024 * 1024, max_unpacked_bytes: 200 * 1024 * 1024, max_entries: 10_000 }
    }
}

/// What [`inspect`] learned about an accepted bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InspectedBundle {
    pub manifest: Manifest,
    pub format: ArchiveFormat,
    /// `sha256:<hex>` of the archive bytes exactly as given: the bundle's storage key.
    pub digest: String,
    /// Sum of the sizes of the regular files.
    pub unpacked_bytes: u64,
    /// Number of regular files (hard links included).
    pub files: u32,
}

/// Checks a bundle completely without writing anything: limits, archive integrity, every
/// path and link, the manifest and the entrypoint.
pub fn inspect(bytes: &[u8], limits: &BundleLimits) -> Result<InspectedBundle, BundleError> {
    let walked = walk::walk(bytes, limits, &mut walk::Discard)?;
    Ok(InspectedBundle {
        manifest: walked.manifest,
        format: walked.format,
        digest: digest(bytes),
        unpacked_bytes: walked.unpacked_bytes,
        files: walked.files,
    })
}

/// Unpacks a bundle into `dest`, which must not exist, applying every check of
/// [`inspect`] again while writing. `dest` appears complete or not at all: the bundle is
/// written into a hidden sibling folder that is renamed into place at the end, and removed
/// on failure. If another process created `dest` meanwhile, the result is
/// [`BundleError::DestinationExists`] and its `dest` is left as it is.
pub fn unpack(bytes: &[u8], dest: &Path, limits: &BundleLimits) -> Result<(), BundleError> {
    unpack::unpack(bytes, dest, limits)
}

/// Packs a folder into a reproducible `.tar.gz` bundle; see the README for what is left out.
pub fn pack_dir(dir: &Path) -> Result<Vec<u8>, BundleError> {
    pack::pack_dir(dir)
}

/// The content address of a bundle: `sha256:` and the lowercase hex digest of its bytes.
pub fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

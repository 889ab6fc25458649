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
mod dependencies;
mod entry_path;
mod environment;
mod error;
mod links;
mod manifest;
mod pack;
mod runtime_version;
mod schema;
mod unpack;
mod walk;

use std::path::Path;

use sha2::{Digest, Sha256};

pub use archive::ArchiveFormat;
pub use dependencies::{DependencyPlan, PipSource};
pub use environment::{EnvRefusal, MAX_ENV_NAME_CHARS, MAX_ENV_VALUE_BYTES, MAX_ENV_VARS, check_env, check_env_name};
pub use error::{BundleError, SizeLimit};
pub use manifest::{DependencySettings, Manifest, ManifestLimits, NetworkPolicy, Runtime, VersionRequirement};
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
    /// The dependency files at the root (`requirements.txt`, `package.json`, …) by name.
    pub dependency_files: std::collections::BTreeMap<String, Vec<u8>>,
    /// Whether a `wheels/` folder is at the root.
    pub has_wheels: bool,
    /// `sha256:` over the paths and contents of the files under `wheels/`.
    pub wheels_digest: String,
}

impl InspectedBundle {
    /// How this bundle's dependencies are installed, or `None` when it has none.
    pub fn dependency_plan(&self) -> Result<Option<DependencyPlan>, BundleError> {
        DependencyPlan::for_bundle(&self.manifest, &self.dependency_files, self.has_wheels)
    }

    /// The cache key of `plan`'s installed tree for this bundle, with `context` (the
    /// interpreter's version, the index settings): see [`DependencyPlan::digest`]. What
    /// the install reads from the bundle beyond its dependency files counts too: the
    /// vendored `wheels/` of an offline pip install, and the whole bundle when the
    /// dependency files point into it (`./lib`, `-e .`, `file:` …).
    pub fn dependency_digest(&self, plan: &DependencyPlan, context: &str) -> String {
        let reads_bundle = plan.refers_to_bundle(&self.dependency_files);
        let vendored = match plan {
            _ if reads_bundle => format!("bundle {}", self.digest),
            DependencyPlan::Pip { .. } if self.has_wheels => format!("wheels {}", self.wheels_digest),
            _ => String::new(),
        };
        plan.digest(&self.dependency_files, &format!("{context}; {vendored}"))
    }
}

/// Checks a bundle completely without writing anything: limits, archive integrity, every
/// path and link, the manifest and the entrypoint.
pub fn inspect(bytes: &[u8], limits: &BundleLimits) -> Result<InspectedBundle, BundleError> {
    let walked = walk::walk(bytes, limits, &mut walk::Discard, walk::Expect::Bundle)?;
    let manifest = walked.manifest.ok_or(BundleError::ManifestMissing { nested: None })?;
    Ok(InspectedBundle {
        manifest,
        dependency_files: walked.dependency_files,
        has_wheels: walked.has_wheels,
        wheels_digest: walked.wheels_digest,
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
    unpack::unpack(bytes, dest, limits, walk::Expect::Bundle).map(drop)
}

/// Checks a `.tar.gz` of any tree (installed dependencies) like [`unpack_tree`] does,
/// writing nothing; returns the sum of its file sizes.
pub fn inspect_tree(bytes: &[u8], limits: &BundleLimits) -> Result<u64, BundleError> {
    Ok(walk::walk(bytes, limits, &mut walk::Discard, walk::Expect::Tree)?.unpacked_bytes)
}

/// [`unpack`] for a `.tar.gz` of any tree (installed dependencies): every path, link and
/// limit check applies, but no manifest is expected. Returns the sum of the file sizes.
pub fn unpack_tree(bytes: &[u8], dest: &Path, limits: &BundleLimits) -> Result<u64, BundleError> {
    unpack::unpack(bytes, dest, limits, walk::Expect::Tree)
}

/// Packs a folder into a reproducible `.tar.gz` bundle; see the README for what is left out.
pub fn pack_dir(dir: &Path) -> Result<Vec<u8>, BundleError> {
    pack::pack_dir(dir)
}

/// The content address of a bundle: `sha256:` and the lowercase hex digest of its bytes.
pub fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

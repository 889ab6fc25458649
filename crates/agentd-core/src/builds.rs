//! Dependency builds: the packages a version names, installed once per dependency digest
//! and tenant, in a sandbox, before the version can run.

use serde::{Deserialize, Serialize};

use crate::ids::BuildId;
use crate::timestamp::Timestamp;

/// Where a version's dependency install stands.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BuildStatus {
    /// Waiting for a worker.
    Pending,
    /// A worker is installing.
    Building,
    /// Installed (or nothing to install): the version can run.
    Ready,
    /// The install failed; `error` says why.
    Failed,
}

impl BuildStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            BuildStatus::Pending => "pending",
            BuildStatus::Building => "building",
            BuildStatus::Ready => "ready",
            BuildStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<BuildStatus> {
        [BuildStatus::Pending, BuildStatus::Building, BuildStatus::Ready, BuildStatus::Failed]
            .into_iter()
            .find(|status| status.as_str() == s)
    }

    /// Ready or failed: nothing more will happen to it.
    pub fn is_settled(self) -> bool {
        matches!(self, BuildStatus::Ready | BuildStatus::Failed)
    }
}

impl std::fmt::Display for BuildStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A version's build, as shown on the version.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionBuild {
    pub status: BuildStatus,
    /// `None` for a version with nothing to install.
    pub id: Option<BuildId>,
    /// The cache key of the installed tree (runtime, dependency files, index settings).
    pub dependencies_digest: Option<String>,
    /// What is installed, e.g. `pip install -r requirements.txt`.
    pub installer: Option<String>,
    pub error: Option<String>,
    pub warnings: Vec<String>,
}

impl VersionBuild {
    /// A version without dependencies.
    pub fn nothing_to_install() -> VersionBuild {
        VersionBuild {
            status: BuildStatus::Ready,
            id: None,
            dependencies_digest: None,
            installer: None,
            error: None,
            warnings: Vec::new(),
        }
    }
}

/// One dependency install, shared by every version of a tenant with the same digest.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DependencyBuild {
    pub id: BuildId,
    pub status: BuildStatus,
    pub runtime: String,
    pub installer: String,
    pub dependencies_digest: String,
    pub error: Option<String>,
    pub warnings: Vec<String>,
    /// Starts this build has had (a lost worker's build starts again).
    pub attempt: u32,
    /// Size of the installed tree once ready.
    pub installed_bytes: Option<u64>,
    pub created_at: Timestamp,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
}

/// One line of a build's log.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildLogLine {
    pub seq: u64,
    pub ts: Timestamp,
    /// `stdout`, `stderr` or `system` (the platform's own lines).
    pub stream: String,
    pub message: String,
}

/// Where builds get packages from: the operator's settings, the same for every tenant.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackageIndexes {
    /// pip's `--index-url`.
    pub python_index_url: String,
    /// npm's `--registry`.
    pub npm_registry: String,
    /// The host names a build may reach through the egress proxy: the indexes' own and
    /// the hosts they serve files from.
    pub hosts: Vec<String>,
    /// No network for any build: only what bundles vendor is installed.
    pub offline: bool,
}

impl Default for PackageIndexes {
    /// The public PyPI and npm registries.
    fn default() -> Self {
        PackageIndexes {
            python_index_url: "https://pypi.org/simple".to_owned(),
            npm_registry: "https://registry.npmjs.org/".to_owned(),
            hosts: vec!["pypi.org".to_owned(), "files.pythonhosted.org".to_owned(), "registry.npmjs.org".to_owned()],
            offline: false,
        }
    }
}

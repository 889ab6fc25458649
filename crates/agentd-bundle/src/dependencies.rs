//! Which installer a bundle's dependencies need, decided at deploy from the files at its
//! root. The worker runs the plan in a sandbox; this module only reads and decides.
//!
//! Python: `requirements.lock` (pip's format, pinned) wins over `requirements.txt`, which
//! wins over the `[project] dependencies` of `pyproject.toml` (the project itself is never
//! installed). `uv.lock` cannot be installed with pip; a bundle that has one without a
//! `requirements.lock` is refused with the command that exports it. Node: `package.json`,
//! with `package-lock.json` for `npm ci`, else `npm install` and a warning.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{BundleError, Manifest, Runtime};

/// Root-level files the walk keeps for planning and for the dependency digest.
pub(crate) const DEPENDENCY_FILES: &[&str] =
    &["requirements.lock", "requirements.txt", "pyproject.toml", "uv.lock", "package.json", "package-lock.json"];

/// How a version's dependencies are installed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "installer", rename_all = "snake_case", deny_unknown_fields)]
pub enum DependencyPlan {
    Pip {
        source: PipSource,
        /// No network: packages come from the bundle's `wheels/` folder.
        offline: bool,
    },
    Npm {
        /// `npm ci` from `package-lock.json`; otherwise `npm install`.
        locked: bool,
        /// No network: `file:` tarballs in the bundle only.
        offline: bool,
    },
}

/// What pip installs from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "file", rename_all = "snake_case", deny_unknown_fields)]
pub enum PipSource {
    /// `pip install -r requirements.lock`
    RequirementsLock,
    /// `pip install -r requirements.txt`
    RequirementsTxt,
    /// `pip install <each of pyproject.toml's [project] dependencies>`
    Pyproject { requirements: Vec<String> },
}

impl DependencyPlan {
    /// The plan for a bundle, or `None` when it has nothing to install.
    pub fn for_bundle(
        manifest: &Manifest,
        files: &BTreeMap<String, Vec<u8>>,
        has_wheels: bool,
    ) -> Result<Option<DependencyPlan>, BundleError> {
        let offline = manifest.dependencies.offline;
        let plan = match manifest.runtime {
            Runtime::Python => python_source(files)?.map(|source| DependencyPlan::Pip { source, offline }),
            Runtime::Node => files
                .contains_key("package.json")
                .then(|| DependencyPlan::Npm { locked: files.contains_key("package-lock.json"), offline }),
            Runtime::Shell | Runtime::Binary => None,
        };
        match &plan {
            Some(DependencyPlan::Pip { offline: true, .. }) if !has_wheels => Err(invalid(
                "`[dependencies] offline = true` installs from the bundle's wheels/ folder, and the bundle has none; \
                 add it with `pip download -d wheels -r requirements.txt`",
            )),
            Some(DependencyPlan::Npm { locked: false, offline: true }) => Err(invalid(
                "`[dependencies] offline = true` needs a package-lock.json (npm ci --offline installs from it)",
            )),
            _ => Ok(plan),
        }
    }

    /// The files the plan reads, which with the plan make up its digest.
    pub fn files(&self) -> &'static [&'static str] {
        match self {
            DependencyPlan::Pip { source: PipSource::RequirementsLock, .. } => &["requirements.lock"],
            DependencyPlan::Pip { source: PipSource::RequirementsTxt, .. } => &["requirements.txt"],
            DependencyPlan::Pip { source: PipSource::Pyproject { .. }, .. } => &["pyproject.toml"],
            DependencyPlan::Npm { locked: true, .. } => &["package.json", "package-lock.json"],
            DependencyPlan::Npm { locked: false, .. } => &["package.json"],
        }
    }

    /// What a person should know about the plan before it runs.
    pub fn warnings(&self) -> Vec<String> {
        match self {
            DependencyPlan::Npm { locked: false, .. } => {
                vec![
                    "no package-lock.json: npm install resolves versions anew on every build; commit a lock file \
                      (npm install --package-lock-only) to pin them"
                        .to_owned(),
                ]
            }
            _ => Vec::new(),
        }
    }

    /// The command the plan amounts to, for people reading a build.
    pub fn describe(&self) -> String {
        let offline = |on: bool| if on { " (offline)" } else { "" };
        match self {
            DependencyPlan::Pip { source: PipSource::RequirementsLock, offline: o } => {
                format!("pip install -r requirements.lock{}", offline(*o))
            }
            DependencyPlan::Pip { source: PipSource::RequirementsTxt, offline: o } => {
                format!("pip install -r requirements.txt{}", offline(*o))
            }
            DependencyPlan::Pip { source: PipSource::Pyproject { requirements }, offline: o } => {
                format!("pip install {} (from pyproject.toml){}", requirements.join(" "), offline(*o))
            }
            DependencyPlan::Npm { locked: true, offline: o } => format!("npm ci --omit=dev{}", offline(*o)),
            DependencyPlan::Npm { locked: false, offline: o } => format!("npm install --omit=dev{}", offline(*o)),
        }
    }

    /// Whether the files the plan reads point at other files of the bundle (a local path
    /// or an included file in a requirements file, a `file:` dependency of npm), so that
    /// the bundle's own content decides what is installed.
    pub fn refers_to_bundle(&self, files: &BTreeMap<String, Vec<u8>>) -> bool {
        let text = |name: &str| files.get(name).map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default();
        match self {
            DependencyPlan::Pip { source: PipSource::Pyproject { requirements }, .. } => {
                requirements.iter().any(|r| r.contains("file:") || r.contains(" @ ."))
            }
            DependencyPlan::Pip { .. } => self.files().iter().any(|name| {
                text(name).lines().map(str::trim).any(|line| {
                    line.starts_with('-') || line.starts_with('.') || line.starts_with('/') || line.contains("file:")
                })
            }),
            DependencyPlan::Npm { .. } => self.files().iter().any(|name| text(name).contains("\"file:")),
        }
    }

    /// The cache key of the installed tree: `sha256:` over the plan, the files it reads
    /// and `context` (the runtime's version and the package index settings), so equal
    /// inputs share one build and any change builds anew.
    pub fn digest(&self, files: &BTreeMap<String, Vec<u8>>, context: &str) -> String {
        let mut hasher = Sha256::new();
        let mut field = |bytes: &[u8]| {
            hasher.update((bytes.len() as u64).to_be_bytes());
            hasher.update(bytes);
        };
        field(serde_json::to_string(self).unwrap_or_default().as_bytes());
        field(context.as_bytes());
        for name in self.files() {
            field(name.as_bytes());
            field(files.get(*name).map_or(&[][..], Vec::as_slice));
        }
        format!("sha256:{}", hex::encode(hasher.finalize()))
    }
}

fn python_source(files: &BTreeMap<String, Vec<u8>>) -> Result<Option<PipSource>, BundleError> {
    if files.contains_key("requirements.lock") {
        return Ok(Some(PipSource::RequirementsLock));
    }
    if files.contains_key("uv.lock") {
        return Err(invalid(
            "uv.lock is installed with pip here, which cannot read it; export it next to it with \
             `uv export --format requirements-txt > requirements.lock`",
        ));
    }
    if let Some(text) = files.get("requirements.txt") {
        let text = String::from_utf8_lossy(text);
        let has_requirement = text.lines().map(str::trim).any(|line| !line.is_empty() && !line.starts_with('#'));
        return Ok(has_requirement.then_some(PipSource::RequirementsTxt));
    }
    let Some(pyproject) = files.get("pyproject.toml") else {
        return Ok(None);
    };
    let text = std::str::from_utf8(pyproject).map_err(|_| invalid("pyproject.toml is not valid UTF-8"))?;
    let value: toml::Table = toml::from_str(text).map_err(|e| invalid(format!("pyproject.toml: {}", e.message())))?;
    let Some(listed) = value.get("project").and_then(|p| p.get("dependencies")) else {
        return Ok(None);
    };
    let requirements = listed
        .as_array()
        .and_then(|items| items.iter().map(|item| item.as_str().map(str::to_owned)).collect::<Option<Vec<_>>>())
        .ok_or_else(|| invalid("pyproject.toml: `project.dependencies` must be a list of strings"))?;
    if let Some(bad) =
        requirements.iter().find(|r| r.trim().is_empty() || r.starts_with('-') || r.contains(['\n', '\0']))
    {
        return Err(invalid(format!("pyproject.toml: `{bad}` is not a requirement")));
    }
    Ok((!requirements.is_empty()).then_some(PipSource::Pyproject { requirements }))
}

fn invalid(reason: impl Into<String>) -> BundleError {
    BundleError::DependenciesInvalid { reason: reason.into() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(runtime: &str, extra: &str) -> Manifest {
        let text = format!("name = \"a\"\nruntime = \"{runtime}\"\nentrypoint = \"main\"\n{extra}");
        Manifest::from_toml(&text).unwrap_or_else(|e| panic!("{e}"))
    }

    fn files(entries: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
        entries.iter().map(|(name, text)| ((*name).to_owned(), text.as_bytes().to_vec())).collect()
    }

    fn plan(runtime: &str, entries: &[(&str, &str)]) -> Result<Option<DependencyPlan>, BundleError> {
        DependencyPlan::for_bundle(&manifest(runtime, ""), &files(entries), false)
    }

    #[test]
    fn a_python_lock_wins_over_requirements_which_win_over_pyproject() {
        let pyproject = "[project]\nname = \"x\"\ndependencies = [\"six==1.16.0\"]\n";
        let all = [("requirements.lock", "a==1"), ("requirements.txt", "a"), ("pyproject.toml", pyproject)];
        let lock = DependencyPlan::Pip { source: PipSource::RequirementsLock, offline: false };
        assert_eq!(plan("python", &all).ok().flatten(), Some(lock));
        let txt = DependencyPlan::Pip { source: PipSource::RequirementsTxt, offline: false };
        assert_eq!(plan("python", &all[1..]).ok().flatten(), Some(txt));
        let from_pyproject = DependencyPlan::Pip {
            source: PipSource::Pyproject { requirements: vec!["six==1.16.0".into()] },
            offline: false,
        };
        assert_eq!(plan("python", &all[2..]).ok().flatten(), Some(from_pyproject));
    }

    #[test]
    fn nothing_to_install_is_no_plan() {
        assert_eq!(plan("python", &[]).ok().flatten(), None);
        assert_eq!(plan("python", &[("requirements.txt", "# none yet\n\n")]).ok().flatten(), None);
        assert_eq!(plan("python", &[("pyproject.toml", "[project]\nname = \"x\"\n")]).ok().flatten(), None);
        assert_eq!(plan("shell", &[("requirements.txt", "six")]).ok().flatten(), None);
        assert_eq!(plan("node", &[("requirements.txt", "six")]).ok().flatten(), None);
    }

    #[test]
    fn a_uv_lock_without_an_export_is_refused_with_the_command_that_exports_it() {
        let err = plan("python", &[("uv.lock", "version = 1"), ("requirements.txt", "six")]).err();
        assert!(matches!(&err, Some(BundleError::DependenciesInvalid { reason }) if reason.contains("uv export")));
        let exported = plan("python", &[("uv.lock", "version = 1"), ("requirements.lock", "six==1")]);
        assert!(matches!(exported, Ok(Some(DependencyPlan::Pip { source: PipSource::RequirementsLock, .. }))));
    }

    #[test]
    fn npm_without_a_lock_installs_with_a_warning() {
        let locked = plan("node", &[("package.json", "{}"), ("package-lock.json", "{}")]).ok().flatten();
        assert_eq!(locked, Some(DependencyPlan::Npm { locked: true, offline: false }));
        let unlocked = plan("node", &[("package.json", "{}")]).ok().flatten();
        assert_eq!(unlocked.as_ref().map(|p| p.warnings().len()), Some(1));
    }

    #[test]
    fn offline_needs_what_it_installs_from() {
        let offline = manifest("python", "[dependencies]\noffline = true\n");
        let reqs = files(&[("requirements.txt", "six")]);
        assert!(DependencyPlan::for_bundle(&offline, &reqs, false).is_err());
        assert!(matches!(
            DependencyPlan::for_bundle(&offline, &reqs, true),
            Ok(Some(DependencyPlan::Pip { offline: true, .. }))
        ));
    }

    #[test]
    fn local_references_make_the_bundle_part_of_what_is_installed() {
        let pip = DependencyPlan::Pip { source: PipSource::RequirementsTxt, offline: false };
        assert!(!pip.refers_to_bundle(&files(&[("requirements.txt", "six==1.16.0\n# ./not-this\n")])));
        for local in ["./libs/mine", "-e .", "-r more.txt", "mine @ file:///agent/mine"] {
            assert!(pip.refers_to_bundle(&files(&[("requirements.txt", local)])), "{local}");
        }
        let npm = DependencyPlan::Npm { locked: false, offline: false };
        assert!(npm.refers_to_bundle(&files(&[("package.json", r#"{"dependencies": {"a": "file:vendor/a.tgz"}}"#)])));
        assert!(!npm.refers_to_bundle(&files(&[("package.json", r#"{"dependencies": {"a": "^1.0.0"}}"#)])));
    }

    #[test]
    fn the_digest_follows_the_files_read_and_the_context_only() {
        let plan = DependencyPlan::Pip { source: PipSource::RequirementsTxt, offline: false };
        let one = files(&[("requirements.txt", "six==1.16.0"), ("main.py", "a")]);
        let same = files(&[("requirements.txt", "six==1.16.0"), ("package.json", "{}")]);
        let other = files(&[("requirements.txt", "six==1.15.0")]);
        assert_eq!(plan.digest(&one, "py3.11"), plan.digest(&same, "py3.11"));
        assert_ne!(plan.digest(&one, "py3.11"), plan.digest(&other, "py3.11"));
        assert_ne!(plan.digest(&one, "py3.11"), plan.digest(&one, "py3.12"));
    }
}

//! Getting a run ready: the bundle unpacked once per digest, the SDK in place, the
//! runtime's interpreter found, and the sandbox spec with an allow-listed environment.

use std::path::{Path, PathBuf};
use std::time::Duration;

use agentd_bundle::{BundleLimits, Manifest, NetworkPolicy, Runtime};
use agentd_core::queue::ClaimedRun;
use agentd_sandbox::{Egress, RunLimits, RunSpec};

use crate::Shared;

const SDK_PYTHON: &str = include_str!("../../../sdk/python/agentd.py");
const SDK_NODE_INDEX: &str = include_str!("../../../sdk/node/agentd/index.mjs");
const SDK_NODE_PACKAGE: &str = include_str!("../../../sdk/node/agentd/package.json");

/// Where the SDK appears inside the sandbox.
const SANDBOX_SDK_PYTHON: &str = "/opt/agentd/python";
const SANDBOX_SDK_NODE: &str = "/node_modules/agentd";
const SANDBOX_NODE_MODULES: &str = "/node_modules";

/// Writes the in-sandbox SDK files under `<data>/sdk`, replacing older copies.
pub(crate) fn install_sdk(data_dir: &Path) -> std::io::Result<()> {
    let python = data_dir.join("sdk/python");
    let node = data_dir.join("sdk/node/agentd");
    std::fs::create_dir_all(&python)?;
    std::fs::create_dir_all(&node)?;
    std::fs::write(python.join("agentd.py"), SDK_PYTHON)?;
    std::fs::write(node.join("index.mjs"), SDK_NODE_INDEX)?;
    std::fs::write(node.join("package.json"), SDK_NODE_PACKAGE)
}

/// Interpreters found on this host, at paths the sandbox mounts read-only.
#[derive(Debug, Clone)]
pub struct Runtimes {
    pub python: Option<String>,
    pub node: Option<String>,
    pub shell: Option<String>,
}

impl Runtimes {
    pub fn detect() -> Runtimes {
        // Only system paths: an interpreter under $HOME (pyenv, nvm) is not in the sandbox.
        let first = |candidates: &[&str]| candidates.iter().find(|p| Path::new(p).exists()).map(|p| (*p).to_owned());
        let runtimes = Runtimes {
            python: first(&["/usr/bin/python3", "/usr/local/bin/python3"]),
            node: first(&["/usr/bin/node", "/usr/local/bin/node", "/usr/bin/nodejs"]),
            shell: first(&["/bin/sh", "/usr/bin/sh"]),
        };
        for (name, found) in [("python", &runtimes.python), ("node", &runtimes.node), ("shell", &runtimes.shell)] {
            if found.is_none() {
                tracing::warn!(runtime = name, "no interpreter found; agents of this runtime will fail");
            }
        }
        runtimes
    }

    /// Each found interpreter's version (`python` → `3.11.2`, `node` → `20.20.2`).
    pub fn versions(&self) -> std::collections::BTreeMap<String, String> {
        let version_of = |program: &Option<String>| {
            let output = std::process::Command::new(program.as_ref()?).arg("--version").output().ok()?;
            let text = String::from_utf8_lossy(if output.stdout.is_empty() { &output.stderr } else { &output.stdout })
                .into_owned();
            let word = text.split_whitespace().last()?.trim_start_matches('v').to_owned();
            Some(word)
        };
        [("python", &self.python), ("node", &self.node)]
            .into_iter()
            .filter_map(|(name, program)| Some((name.to_owned(), version_of(program)?)))
            .collect()
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum PrepareError {
    #[error("the stored manifest does not parse: {0}")]
    Manifest(serde_json::Error),
    #[error("the bundle could not be fetched: {0}")]
    Fetch(#[from] crate::SourceError),
    #[error("the bundle does not match its digest {0}")]
    Digest(String),
    #[error("the bundle could not be unpacked: {0}")]
    Unpack(#[from] agentd_bundle::BundleError),
    #[error("no {0} interpreter is installed on this worker")]
    NoInterpreter(&'static str),
    #[error("unpacking was interrupted")]
    Join,
}

pub(crate) fn manifest(run: &ClaimedRun) -> Result<Manifest, PrepareError> {
    serde_json::from_value(run.manifest.clone()).map_err(PrepareError::Manifest)
}

/// The unpacked bundle for `digest`, fetched and unpacked on first use.
pub(crate) async fn bundle_dir(shared: &Shared, digest: &str) -> Result<PathBuf, PrepareError> {
    let dest = shared.settings.data_dir.join("bundles").join(digest_hex(digest)?);
    if dest.is_dir() {
        return Ok(dest);
    }
    let bytes = shared.source.bundle(digest).await?;
    // A remote worker trusts no byte it was sent: the content must match its address.
    if agentd_bundle::digest(&bytes) != digest {
        return Err(PrepareError::Digest(digest.to_owned()));
    }
    let target = dest.clone();
    tokio::task::spawn_blocking(move || -> Result<(), PrepareError> {
        match agentd_bundle::unpack(&bytes, &target, &BundleLimits::default()) {
            Ok(()) => Ok(()),
            // Another run unpacked the same digest first; its copy is complete.
            Err(_) if target.is_dir() => Ok(()),
            Err(err) => Err(err.into()),
        }
    })
    .await
    .map_err(|_| PrepareError::Join)??;
    Ok(dest)
}

/// Where installed dependencies appear inside the sandbox: Python's packages under
/// `/deps/python` (on `PYTHONPATH`), Node's as `/node_modules`, where bare imports from
/// `/agent` resolve (the SDK's `agentd` package is placed among them).
const SANDBOX_DEPS: &str = "/deps";
const SANDBOX_DEPS_PYTHON: &str = "/deps/python";

fn digest_hex(digest: &str) -> Result<&str, PrepareError> {
    digest
        .strip_prefix("sha256:")
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| PrepareError::Digest(digest.to_owned()))
}

/// Unpacks an installed tree into this worker's cache (`<data>/deps/<hex>`), once per
/// digest; the tree was checked when it was built, and is checked again here.
pub(crate) async fn unpack_dependencies(
    shared: &Shared,
    digest: &str,
    bytes: Vec<u8>,
) -> Result<PathBuf, PrepareError> {
    let dest = shared.settings.data_dir.join("deps").join(digest_hex(digest)?);
    if dest.is_dir() {
        return Ok(dest);
    }
    if agentd_bundle::digest(&bytes) != digest {
        return Err(PrepareError::Digest(digest.to_owned()));
    }
    let limits = BundleLimits { max_bundle_bytes: u64::MAX, max_unpacked_bytes: u64::MAX, max_entries: 200_000 };
    let target = dest.clone();
    tokio::task::spawn_blocking(move || -> Result<(), PrepareError> {
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| {
                PrepareError::Unpack(agentd_bundle::BundleError::Io {
                    action: "create",
                    path: parent.to_owned(),
                    source: e,
                })
            })?;
        }
        match agentd_bundle::unpack_tree(&bytes, &target, &limits) {
            Ok(_) => Ok(()),
            Err(_) if target.is_dir() => Ok(()),
            Err(err) => Err(err.into()),
        }
    })
    .await
    .map_err(|_| PrepareError::Join)??;
    Ok(dest)
}

/// The installed dependencies for `digest`, fetched and unpacked on first use.
async fn dependencies_dir(shared: &Shared, digest: &str) -> Result<PathBuf, PrepareError> {
    let dest = shared.settings.data_dir.join("deps").join(digest_hex(digest)?);
    if dest.is_dir() {
        return Ok(dest);
    }
    let bytes = shared.source.bundle(digest).await?;
    unpack_dependencies(shared, digest, bytes).await
}

/// The read-only mounts and environment a run's installed dependencies need.
pub(crate) async fn dependency_mounts(
    shared: &Shared,
    run: &ClaimedRun,
    manifest: &Manifest,
) -> Result<Vec<(PathBuf, String)>, PrepareError> {
    let Some(digest) = &run.dependencies else { return Ok(Vec::new()) };
    let dir = dependencies_dir(shared, digest).await?;
    Ok(match manifest.runtime {
        Runtime::Node => {
            let modules = dir.join("node_modules");
            place_node_sdk(&modules).map_err(|e| {
                PrepareError::Unpack(agentd_bundle::BundleError::Io {
                    action: "place the SDK in",
                    path: modules.clone(),
                    source: e,
                })
            })?;
            vec![(modules, SANDBOX_NODE_MODULES.to_owned())]
        }
        _ => vec![(dir, SANDBOX_DEPS.to_owned())],
    })
}

/// Puts the SDK's `agentd` package among installed Node modules, where `import "agentd"`
/// finds it once they are mounted at `/node_modules`; rewritten when the SDK changed.
fn place_node_sdk(modules: &Path) -> std::io::Result<()> {
    let sdk = modules.join("agentd");
    std::fs::create_dir_all(&sdk)?;
    for (name, content) in [("index.mjs", SDK_NODE_INDEX), ("package.json", SDK_NODE_PACKAGE)] {
        let path = sdk.join(name);
        if std::fs::read(&path).ok().as_deref() != Some(content.as_bytes()) {
            // Written aside and renamed: a run starting meanwhile sees the old or the new file.
            let staging = sdk.join(format!(".{name}.{}", std::process::id()));
            std::fs::write(&staging, content)?;
            std::fs::rename(&staging, &path)?;
        }
    }
    Ok(())
}

/// The manifest's memory request, capped by the tenant's limit.
fn memory_mb(manifest: &Manifest, run: &ClaimedRun) -> u64 {
    let cap = u64::from(run.limits.memory_mb.max(4));
    manifest.limits.memory_mb.map_or(cap, |m| u64::from(m).clamp(4, cap))
}

/// The sandbox spec for `run`: program, allow-listed environment, mounts and limits.
pub(crate) fn run_spec(
    shared: &Shared,
    run: &ClaimedRun,
    manifest: &Manifest,
    bundle: PathBuf,
    dependencies: Vec<(PathBuf, String)>,
    outputs: PathBuf,
) -> Result<RunSpec, PrepareError> {
    let entry = format!("/agent/{}", manifest.entrypoint.trim_start_matches("./"));
    let interpreter = |found: &Option<String>, name| found.clone().ok_or(PrepareError::NoInterpreter(name));
    let (program, args) = match manifest.runtime {
        Runtime::Python => (interpreter(&shared.runtimes.python, "python")?, vec!["-u".to_owned(), entry]),
        Runtime::Node => (interpreter(&shared.runtimes.node, "node")?, vec![entry]),
        Runtime::Shell => (interpreter(&shared.runtimes.shell, "shell")?, vec![entry]),
        Runtime::Binary => (entry, vec![]),
    };
    let platform_env = vec![
        ("PATH".to_owned(), "/usr/local/bin:/usr/bin:/bin".to_owned()),
        ("HOME".to_owned(), "/work".to_owned()),
        ("LANG".to_owned(), "C.UTF-8".to_owned()),
        ("TMPDIR".to_owned(), "/tmp".to_owned()),
        ("PYTHONPATH".to_owned(), python_path(&dependencies)),
        ("PYTHONDONTWRITEBYTECODE".to_owned(), "1".to_owned()),
        ("AGENTD_EVENTS_FD".to_owned(), "3".to_owned()),
        ("AGENTD_INVOCATION_ID".to_owned(), run.invocation_id.to_string()),
        ("AGENTD_API_URL".to_owned(), shared.settings.api.url_in_run()),
        ("AGENTD_TOKEN".to_owned(), run.run_token.expose().to_owned()),
    ];
    // The agent's configuration first, then its secrets (which win over a configured
    // value of the same name), without any name the platform sets: the domain refuses
    // those already, and a duplicate would leave the winner to each program.
    let platform = |name: &str| platform_env.iter().any(|(platform, _)| platform == name);
    let mut env: Vec<(String, String)> = run
        .env
        .iter()
        .filter(|(name, _)| !platform(name) && run.secrets.get(name).is_none())
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    env.extend(
        run.secrets
            .iter()
            .filter(|(name, _)| !platform(name))
            .map(|(name, value)| (name.to_owned(), value.expose().to_owned())),
    );
    env.extend(platform_env);
    let sdk = shared.settings.data_dir.join("sdk");
    let stdin = serde_json::json!({
        "invocation_id": run.invocation_id,
        "agent": run.agent_slug,
        "input": run.input,
        "thread": run.thread_id.as_ref().map(|id| serde_json::json!({"id": id, "state": run.thread_state})),
        "resume": run.resume,
        "attempt": run.attempt,
    });
    Ok(RunSpec {
        program,
        args,
        env,
        bundle_dir: bundle,
        extra_ro_mounts: sdk_mounts(&sdk, &dependencies).into_iter().chain(dependencies).collect(),
        stdin: stdin.to_string().into_bytes(),
        limits: RunLimits {
            wall_timeout: Duration::from_secs(u64::from(run.timeout_s.max(1))),
            max_output_bytes: run.limits.log_bytes_per_invocation,
            max_line_bytes: 64 * 1024,
            tmp_bytes: 64 * 1024 * 1024,
            work_bytes: 256 * 1024 * 1024,
            memory_bytes: memory_mb(manifest, run) * 1024 * 1024,
            ..RunLimits::default()
        },
        egress: egress(&manifest.network),
        // Whatever the manifest says of egress: the API is the platform's, not the internet.
        host_forward: Some(shared.api_forward.clone()),
        collect_outputs: Some(outputs),
    })
}

/// The SDK's packages first, then installed ones (which never shadow the SDK).
fn python_path(dependencies: &[(PathBuf, String)]) -> String {
    match dependencies.iter().any(|(_, inside)| inside == SANDBOX_DEPS) {
        true => format!("{SANDBOX_SDK_PYTHON}:{SANDBOX_DEPS_PYTHON}"),
        false => SANDBOX_SDK_PYTHON.to_owned(),
    }
}

/// The SDKs' own mounts; Node's comes with the installed modules when there are some.
fn sdk_mounts(sdk: &Path, dependencies: &[(PathBuf, String)]) -> Vec<(PathBuf, String)> {
    let node_modules_installed = dependencies.iter().any(|(_, inside)| inside == SANDBOX_NODE_MODULES);
    let mut mounts = vec![(sdk.join("python"), SANDBOX_SDK_PYTHON.to_owned())];
    if !node_modules_installed {
        mounts.push((sdk.join("node/agentd"), SANDBOX_SDK_NODE.to_owned()));
    }
    mounts
}

/// The manifest's `[network]` as the sandbox's run config: the host list goes to the run's
/// proxy as it is (the bundle crate checked and lowercased it at deploy time).
fn egress(network: &NetworkPolicy) -> Egress {
    match network {
        NetworkPolicy::Denied => Egress::Denied,
        NetworkPolicy::AllowHosts(hosts) => Egress::AllowHosts(hosts.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifests_network_policy_becomes_the_runs_egress() {
        assert_eq!(egress(&NetworkPolicy::Denied), Egress::Denied);
        let hosts = vec!["api.example.com".to_owned(), "*.files.example.com".to_owned()];
        assert_eq!(egress(&NetworkPolicy::AllowHosts(hosts.clone())), Egress::AllowHosts(hosts));
    }
}

//! `agent.toml`: the manifest at the root of every bundle.
//!
//! [`Manifest::from_toml`] is the only way a manifest is built from untrusted text: it
//! refuses unknown keys (a typo such as `entrypiont` must not pass silently), checks every
//! field and normalizes the entrypoint. The resulting [`Manifest`] serializes to JSON for
//! storage; reading that JSON back trusts it, because only this crate wrote it.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::BundleError;
use crate::entry_path::EntryPath;
use crate::environment::{self, MAX_ENV_VARS};
pub use crate::runtime_version::VersionRequirement;
use crate::schema::Schema;

const MAX_NAME_CHARS: usize = 100;
const MAX_DESCRIPTION_CHARS: usize = 1000;
const MAX_TAGS: usize = 20;
const MAX_TAG_CHARS: usize = 50;
const MAX_HOST_BYTES: usize = 253;

/// A validated `agent.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    pub runtime: Runtime,
    /// Normalized relative path of a regular file in the bundle (`./main.py` → `main.py`).
    pub entrypoint: String,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub limits: ManifestLimits,
    #[serde(default)]
    pub network: NetworkPolicy,
    #[serde(default)]
    pub dependencies: DependencySettings,
    /// The interpreter version the agent needs, for `runtime = "python"` (`python = ">=3.11"`)
    /// or `"node"` (`node = ">=20"`); checked against the platform's at deploy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_version: Option<VersionRequirement>,
    /// Default values of environment variables for every run (`[env]`); the agent's
    /// `config.env` and an invoke's `env` come on top.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The variables an invoke may set (sorted, once each); they need no default.
    #[serde(default)]
    pub overridable_env: Vec<String>,
    /// JSON Schema of the input (`[input_schema]`), checked at invoke.
    #[serde(default)]
    pub input_schema: Option<Value>,
    /// JSON Schema of the output (`[output_schema]`), checked when a run succeeds.
    #[serde(default)]
    pub output_schema: Option<Value>,
}

/// `[dependencies]`: how the packages the bundle names are installed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DependencySettings {
    /// Install without any network, from what the bundle vendors (`wheels/`, `file:`
    /// tarballs).
    #[serde(default)]
    pub offline: bool,
}

/// How the worker starts the entrypoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Runtime {
    Python,
    Node,
    Shell,
    Binary,
}

impl Runtime {
    /// Every runtime, in the order error messages list them.
    pub const ALL: [Runtime; 4] = [Runtime::Python, Runtime::Node, Runtime::Shell, Runtime::Binary];

    pub fn as_str(self) -> &'static str {
        match self {
            Runtime::Python => "python",
            Runtime::Node => "node",
            Runtime::Shell => "shell",
            Runtime::Binary => "binary",
        }
    }
}

impl fmt::Display for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Runtime {
    type Err = BundleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Runtime::ALL
            .into_iter()
            .find(|runtime| runtime.as_str() == s)
            .ok_or_else(|| BundleError::RuntimeUnknown { runtime: s.to_owned() })
    }
}

/// Limits the agent asks for; the platform caps them with the tenant's limits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestLimits {
    #[serde(default)]
    pub timeout_s: Option<u32>,
    #[serde(default)]
    pub memory_mb: Option<u32>,
}

/// Outbound network access. Written `[network] egress = false` or `egress = ["host", …]`
/// in TOML, and with the same shape in JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "NetworkSection", try_from = "NetworkSection")]
pub enum NetworkPolicy {
    #[default]
    Denied,
    /// Host names the proxy lets through (lowercase; `*.example.com` for subdomains).
    AllowHosts(Vec<String>),
}

/// The `[network]` table as written, shared by the TOML and JSON forms.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct NetworkSection {
    #[serde(default)]
    egress: Egress,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
enum Egress {
    Flag(bool),
    Hosts(Vec<String>),
}

impl Default for Egress {
    fn default() -> Self {
        Egress::Flag(false)
    }
}

impl From<NetworkPolicy> for NetworkSection {
    fn from(policy: NetworkPolicy) -> Self {
        let egress = match policy {
            NetworkPolicy::Denied => Egress::Flag(false),
            NetworkPolicy::AllowHosts(hosts) => Egress::Hosts(hosts),
        };
        NetworkSection { egress }
    }
}

impl TryFrom<NetworkSection> for NetworkPolicy {
    type Error = String;

    fn try_from(section: NetworkSection) -> Result<Self, Self::Error> {
        match section.egress {
            Egress::Flag(false) => Ok(NetworkPolicy::Denied),
            Egress::Flag(true) => Err("`network.egress = true` is not allowed: list the host \
                 names the agent may reach, e.g. egress = [\"api.example.com\"]"
                .to_owned()),
            Egress::Hosts(hosts) if hosts.is_empty() => Ok(NetworkPolicy::Denied),
            Egress::Hosts(hosts) => {
                hosts.iter().map(|host| check_host(host)).collect::<Result<_, _>>().map(NetworkPolicy::AllowHosts)
            }
        }
    }
}

/// `agent.toml` exactly as written, before the checks.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    name: String,
    description: Option<String>,
    runtime: String,
    entrypoint: String,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    limits: ManifestLimits,
    #[serde(default)]
    network: NetworkPolicy,
    #[serde(default)]
    dependencies: DependencySettings,
    python: Option<String>,
    node: Option<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    overridable_env: Vec<String>,
    input_schema: Option<toml::Table>,
    output_schema: Option<toml::Table>,
}

impl Manifest {
    /// Parses and checks the text of an `agent.toml`.
    pub fn from_toml(text: &str) -> Result<Manifest, BundleError> {
        let raw: RawManifest = toml::from_str(text).map_err(|err| BundleError::manifest(describe(&err, text)))?;
        let runtime = raw.runtime.parse::<Runtime>()?;
        Ok(Manifest {
            name: check_name(raw.name)?,
            description: check_description(raw.description)?,
            runtime,
            entrypoint: check_entrypoint(&raw.entrypoint)?,
            tags: check_tags(raw.tags)?,
            limits: check_limits(raw.limits)?,
            network: raw.network,
            dependencies: raw.dependencies,
            runtime_version: check_runtime_version(runtime, raw.python, raw.node)?,
            env: check_env(raw.env)?,
            overridable_env: check_overridable_env(raw.overridable_env)?,
            input_schema: check_schema("input_schema", raw.input_schema)?,
            output_schema: check_schema("output_schema", raw.output_schema)?,
        })
    }
}

/// Turns a TOML error into one line that names the offending line, and so the field.
fn describe(err: &toml::de::Error, text: &str) -> String {
    let message = err.message().trim_end();
    let Some(span) = err.span() else {
        return message.to_owned();
    };
    let start = span.start.min(text.len());
    let line_number = text[..start].matches('\n').count() + 1;
    let line = text.lines().nth(line_number - 1).unwrap_or("").trim();
    if line.is_empty() || line.chars().count() > 120 {
        format!("line {line_number}: {message}")
    } else {
        format!("line {line_number} (`{line}`): {message}")
    }
}

fn check_name(name: String) -> Result<String, BundleError> {
    if name.trim().is_empty() {
        return Err(BundleError::manifest("`name` must not be empty"));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(BundleError::manifest(format!("`name` is longer than {MAX_NAME_CHARS} characters")));
    }
    if name.chars().any(char::is_control) {
        return Err(BundleError::manifest("`name` must not contain control characters"));
    }
    Ok(name)
}

fn check_description(description: Option<String>) -> Result<Option<String>, BundleError> {
    match description {
        Some(text) if text.chars().count() > MAX_DESCRIPTION_CHARS => {
            Err(BundleError::manifest(format!("`description` is longer than {MAX_DESCRIPTION_CHARS} characters")))
        }
        other => Ok(other),
    }
}

fn check_entrypoint(entrypoint: &str) -> Result<String, BundleError> {
    let path = EntryPath::parse(entrypoint.as_bytes()).map_err(|reason| {
        BundleError::manifest(format!(
            "`entrypoint` {reason}; give a path relative to the bundle root, like \"main.py\""
        ))
    })?;
    if path.is_root() {
        return Err(BundleError::manifest("`entrypoint` must name a file, like \"main.py\""));
    }
    Ok(path.as_str().to_owned())
}

fn check_tags(tags: Vec<String>) -> Result<Vec<String>, BundleError> {
    if tags.len() > MAX_TAGS {
        return Err(BundleError::manifest(format!(
            "`tags` has {} entries; at most {MAX_TAGS} are allowed",
            tags.len()
        )));
    }
    for tag in &tags {
        if tag.trim().is_empty() || tag.chars().count() > MAX_TAG_CHARS {
            return Err(BundleError::manifest(format!("`tags`: each tag must be 1 to {MAX_TAG_CHARS} characters")));
        }
    }
    Ok(tags)
}

fn check_runtime_version(
    runtime: Runtime,
    python: Option<String>,
    node: Option<String>,
) -> Result<Option<VersionRequirement>, BundleError> {
    let (key, asked) = match (python, node) {
        (Some(_), Some(_)) => return Err(BundleError::manifest("give `python` or `node`, the one of the runtime")),
        (Some(text), None) => ("python", text),
        (None, Some(text)) => ("node", text),
        (None, None) => return Ok(None),
    };
    if key != runtime.as_str() {
        return Err(BundleError::manifest(format!("`{key}` asks for a {key} version, but the runtime is `{runtime}`")));
    }
    VersionRequirement::parse(&asked).map(Some).map_err(|e| BundleError::manifest(format!("`{key}`: {e}")))
}

fn check_limits(limits: ManifestLimits) -> Result<ManifestLimits, BundleError> {
    if limits.timeout_s == Some(0) {
        return Err(BundleError::manifest("`limits.timeout_s` must be at least 1"));
    }
    if limits.memory_mb == Some(0) {
        return Err(BundleError::manifest("`limits.memory_mb` must be at least 1"));
    }
    Ok(limits)
}

fn check_env(env: BTreeMap<String, String>) -> Result<BTreeMap<String, String>, BundleError> {
    environment::check_env(&env).map_err(|refusal| BundleError::manifest(format!("`[env]`: {refusal}")))?;
    Ok(env)
}

fn check_overridable_env(mut names: Vec<String>) -> Result<Vec<String>, BundleError> {
    names.sort();
    names.dedup();
    if names.len() > MAX_ENV_VARS {
        return Err(BundleError::manifest(format!(
            "`overridable_env` lists {} names; at most {MAX_ENV_VARS} are allowed",
            names.len()
        )));
    }
    for name in &names {
        environment::check_env_name(name)
            .map_err(|refusal| BundleError::manifest(format!("`overridable_env`: {refusal}")))?;
    }
    Ok(names)
}

/// A `[input_schema]` or `[output_schema]` table, as the JSON Schema it stands for, which
/// must compile.
fn check_schema(field: &str, table: Option<toml::Table>) -> Result<Option<Value>, BundleError> {
    let Some(table) = table else { return Ok(None) };
    let schema = toml_to_json(toml::Value::Table(table))
        .map_err(|reason| BundleError::manifest(format!("`{field}`: {reason}")))?;
    Schema::compile(&schema).map_err(|refusal| BundleError::manifest(format!("`{field}` {refusal}")))?;
    Ok(Some(schema))
}

/// TOML as JSON: dates become their RFC 3339 text, and floats JSON cannot hold are refused.
fn toml_to_json(value: toml::Value) -> Result<Value, String> {
    Ok(match value {
        toml::Value::String(text) => Value::String(text),
        toml::Value::Integer(n) => Value::from(n),
        toml::Value::Float(x) => {
            serde_json::Number::from_f64(x).map(Value::Number).ok_or_else(|| format!("{x} is not a JSON number"))?
        }
        toml::Value::Boolean(b) => Value::Bool(b),
        toml::Value::Datetime(at) => Value::String(at.to_string()),
        toml::Value::Array(items) => Value::Array(items.into_iter().map(toml_to_json).collect::<Result<_, _>>()?),
        toml::Value::Table(table) => Value::Object(
            table.into_iter().map(|(key, value)| Ok((key, toml_to_json(value)?))).collect::<Result<_, String>>()?,
        ),
    })
}

/// Accepts a DNS host name, optionally with a leading `*.` wildcard; returns it lowercased.
fn check_host(host: &str) -> Result<String, String> {
    let name = host.strip_prefix("*.").unwrap_or(host);
    let labels_ok = name.split('.').all(|label| {
        !label.is_empty() && label.len() <= 63 && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    });
    if host.len() > MAX_HOST_BYTES || !labels_ok {
        return Err(format!(
            "`network.egress`: `{host}` is not a host name; list bare names such as \
             \"api.example.com\" or \"*.example.com\" (no scheme, port or path)"
        ));
    }
    Ok(host.to_ascii_lowercase())
}

#[cfg(test)]
#[path = "manifest_tests.rs"]
mod tests;

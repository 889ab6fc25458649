//! Settings for `agentd serve`: read once from flags and `AGENTD_*` variables, checked
//! at start, passed down explicitly. Nothing else reads the environment.

use std::net::SocketAddr;
use std::path::PathBuf;

use agentd_core::TenantLimits;
use agentd_worker::{EgressSettings, IpNetwork};
use clap::{Args, ValueEnum};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Environment {
    Development,
    Production,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SignupMode {
    Open,
    Closed,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address the API listens on.
    #[arg(long, env = "AGENTD_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Where the embedded database, bundles and run scratch space live.
    #[arg(long, env = "AGENTD_DATA_DIR", default_value = "./agentd-data")]
    pub data_dir: PathBuf,
    /// Database: `sqlite://PATH` or `postgres://USER@HOST/DB`; default SQLite at
    /// <data-dir>/agentd.db.
    #[arg(long, env = "AGENTD_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Where bundles and artifacts go: a directory (`file:///PATH` or a path; default
    /// <data-dir>/blobs) or an S3-compatible bucket `s3://BUCKET[/PREFIX]`, configured by
    /// the standard `AWS_*` variables (`AWS_ENDPOINT_URL`, `AWS_REGION`, keys, `AWS_ALLOW_HTTP`).
    #[arg(long, env = "AGENTD_BLOB_URL")]
    pub blob_url: Option<String>,
    /// Runs the in-process worker executes at once (0 = no in-process worker).
    #[arg(long, env = "AGENTD_WORKER_SLOTS", default_value_t = 4)]
    pub worker_slots: usize,
    /// Whether anyone may sign up.
    #[arg(long, env = "AGENTD_SIGNUP", value_enum, default_value = "open")]
    pub signup: SignupMode,
    /// `production` refuses to start with an insecure setup.
    #[arg(long, env = "AGENTD_ENV", value_enum, default_value = "development")]
    pub env: Environment,
    /// The URL agents use to reach the API (`AGENTD_API_URL` inside the sandbox).
    #[arg(long, env = "AGENTD_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Seconds a claimed run stays leased without renewal; after a crash, runs come back
    /// this long after their last renewal.
    #[arg(long, env = "AGENTD_LEASE_S", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub lease_s: u64,
    /// On SIGTERM, seconds runs in flight may go on before they are stopped and handed
    /// back to the queue.
    #[arg(long, env = "AGENTD_SHUTDOWN_GRACE_S", default_value_t = 30)]
    pub shutdown_grace_s: u64,
    #[command(flatten)]
    pub egress: EgressArgs,
    /// Once listening, write the bound address (`127.0.0.1:PORT`) to this file: for
    /// supervisors and tests that start the server on port 0.
    #[arg(long, env = "AGENTD_ADDRESS_FILE")]
    pub address_file: Option<PathBuf>,
    /// Log as JSON lines (default in production).
    #[arg(long, env = "AGENTD_LOG_JSON")]
    pub log_json: bool,
}

/// Egress settings of a worker, shared by `serve` (its in-process worker) and `worker`.
#[derive(Debug, Clone, Args)]
pub struct EgressArgs {
    /// Networks the egress proxy may reach although they are private, loopback or
    /// link-local (comma-separated, e.g. `10.20.0.0/16,fd00:1::/64`): for agents whose
    /// manifest lists an internal host. Empty by default: only public addresses.
    #[arg(long, env = "AGENTD_EGRESS_ALLOWED_NETWORKS", value_delimiter = ',')]
    pub egress_allowed_networks: Vec<IpNetwork>,
}

impl EgressArgs {
    pub fn settings(&self) -> EgressSettings {
        EgressSettings { allowed_networks: self.egress_allowed_networks.clone(), ..EgressSettings::default() }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("{name}: {detail}")]
    Limit { name: String, detail: String },
    #[error("refusing to start in production: {0}")]
    Insecure(String),
}

/// Default tenant limits: the built-in ones, overridden field by field by
/// `AGENTD_LIMITS_<FIELD>` (e.g. `AGENTD_LIMITS_MAX_AGENTS=20`).
pub fn default_limits(vars: impl Iterator<Item = (String, String)>) -> Result<TenantLimits, SettingsError> {
    let mut limits = serde_json::to_value(TenantLimits::default())
        .map_err(|e| SettingsError::Limit { name: "limits".into(), detail: e.to_string() })?;
    for (name, value) in vars {
        let Some(field) = name.strip_prefix("AGENTD_LIMITS_") else { continue };
        let field = field.to_lowercase();
        let Some(slot) = limits.get_mut(&field) else {
            return Err(SettingsError::Limit { name, detail: "no such limit (see DESIGN §8 for the names)".into() });
        };
        let number: u64 = value.trim().parse().map_err(|_| SettingsError::Limit {
            name: name.clone(),
            detail: format!("`{value}` is not a whole number"),
        })?;
        *slot = number.into();
    }
    serde_json::from_value(limits)
        .map_err(|e| SettingsError::Limit { name: "AGENTD_LIMITS_*".into(), detail: e.to_string() })
}

impl ServeArgs {
    /// The database to open.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.data_dir.join("agentd.db").display()),
        }
    }

    /// In production, the reasons this setup is not safe to expose.
    pub fn production_problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.signup == SignupMode::Open {
            problems.push("signup is open and there is no signup rate limit yet; set AGENTD_SIGNUP=closed".to_owned());
        }
        if !self.listen.ip().is_loopback() && self.public_url.as_deref().is_none_or(|u| !u.starts_with("https://")) {
            problems.push("listening beyond loopback over plain HTTP; put a TLS proxy in front and set AGENTD_PUBLIC_URL=https://…".to_owned());
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_come_from_env_field_by_field() {
        let vars = vec![("AGENTD_LIMITS_MAX_AGENTS".to_owned(), "7".to_owned()), ("HOME".to_owned(), "/".to_owned())];
        let limits = default_limits(vars.into_iter()).unwrap_or_default();
        assert_eq!(limits.max_agents, 7);
        assert_eq!(limits.max_api_keys, TenantLimits::default().max_api_keys);
    }

    #[test]
    fn an_unknown_or_non_numeric_limit_is_an_error() {
        let unknown = vec![("AGENTD_LIMITS_MAX_AGNTS".to_owned(), "7".to_owned())];
        assert!(default_limits(unknown.into_iter()).is_err());
        let bad = vec![("AGENTD_LIMITS_MAX_AGENTS".to_owned(), "lots".to_owned())];
        assert!(default_limits(bad.into_iter()).is_err());
    }
}

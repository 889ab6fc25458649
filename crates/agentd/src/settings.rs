//! The one `Settings` type that `agentd serve`, `agentd worker` and `agentd admin`
//! parse into: read once from flags and `AGENTD_*` variables (plus the standard
//! `AWS_*` ones for S3), checked at start, passed down explicitly. Nothing deeper in the
//! code reads the environment. Tests build a `Settings` in code.
//!
//! Every configured path is made absolute here: the sandbox mounts paths under the data
//! dir, and a relative one would resolve differently once the process changes directory.
//! Secrets (a database password, tokens, S3 keys, the master key) are redacted in `Debug`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use agentd_control::{MasterKey, WebhookSettings};
use agentd_core::builds::PackageIndexes;
use agentd_core::{Secret, TenantLimits};
use agentd_store::{BlobLocation, S3Connection};
use agentd_worker::{EgressSettings, IpNetwork};
use clap::{Args, ValueEnum};

use crate::{master_key, preflight};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Environment {
    Development,
    Production,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SignupMode {
    /// Anyone may sign up.
    Open,
    /// No signup; invited people may make an account.
    Invite,
    /// No signup; invites are for existing accounts, and an operator's owner invites.
    Closed,
}

/// How the process logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line, for log shippers.
    Json,
    /// Text for people, coloured on a terminal.
    Pretty,
}

/// The log flags `serve` and `worker` share.
#[derive(Debug, Clone, Args)]
pub struct LogArgs {
    /// `json` or `pretty`; by default JSON when stderr is not a terminal or in
    /// production, pretty otherwise.
    #[arg(long, env = "AGENTD_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// Same as `--log-format json` (kept for existing setups).
    #[arg(long, env = "AGENTD_LOG_JSON")]
    pub log_json: bool,
}

impl LogArgs {
    /// The format asked for, else JSON in production or when stderr is no terminal.
    pub fn format(&self, env: Environment) -> LogFormat {
        match (self.log_format, self.log_json) {
            (Some(format), _) => format,
            (None, true) => LogFormat::Json,
            (None, false) if env == Environment::Production => LogFormat::Json,
            (None, false) if !std::io::IsTerminal::is_terminal(&std::io::stderr()) => LogFormat::Json,
            (None, false) => LogFormat::Pretty,
        }
    }
}

/// Who may scrape `/metrics`, and where a worker serves it.
#[derive(Debug, Clone, Default)]
pub struct MetricsSettings {
    /// A scrape must send it as a bearer token; `None`: `/metrics` is open.
    pub token: Option<Secret>,
    /// Where `agentd worker` serves its own `/metrics` (the server's are on its API).
    pub listen: Option<SocketAddr>,
}

/// What one command runs with. A section is `None` when the command has no such part.
#[derive(Debug, Clone)]
pub struct Settings {
    pub env: Environment,
    /// Absolute.
    pub data_dir: PathBuf,
    pub log_format: LogFormat,
    pub metrics: MetricsSettings,
    /// The database and blob store (`serve`, `admin`).
    pub store: Option<StoreSettings>,
    /// The control plane: HTTP API and domain (`serve`).
    pub server: Option<ServerSettings>,
    /// A worker (`serve` with worker slots, `worker`).
    pub worker: Option<WorkerSettings>,
}

#[derive(Debug, Clone)]
pub struct StoreSettings {
    pub database: DatabaseUrl,
    pub blobs: BlobLocation,
    pub s3: S3Connection,
}

#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub listen: SocketAddr,
    /// The URL agents and clients reach the API at, when it is not `http://<listen>`.
    pub public_url: Option<String>,
    pub signup: SignupMode,
    pub address_file: Option<PathBuf>,
    /// Limits every new tenant starts with.
    pub default_limits: TenantLimits,
    /// The lease of runs claimed by this server's worker; the lease reaper looks for
    /// expired ones twice per lease.
    pub lease: Duration,
    /// How often one invocation may run again because the platform failed it.
    pub max_recoveries: u32,
    /// How often expired memory store items are deleted and their bytes given back.
    pub memory_sweep: Duration,
    /// How often blobs no row refers to are deleted, and how long a fresh one is kept.
    pub blob_sweep: Duration,
    /// How often the schedules reconciler looks for due occurrences.
    pub schedule_tick: Duration,
    pub blob_grace: Duration,
    /// Where dependency builds get packages from.
    pub package_indexes: PackageIndexes,
    /// Seals agents' secrets (`AGENTD_MASTER_KEY`); `None` in development means the key
    /// file in the data dir (see `master_key.rs`), and production refuses to start.
    pub master_key: Option<MasterKey>,
    /// Still opens what it sealed, during a rotation (`AGENTD_PREVIOUS_MASTER_KEY`).
    pub previous_master_key: Option<MasterKey>,
    /// Proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<IpNetwork>,
    /// On SIGTERM, how long `/readyz` answers 503 while the API still serves, before
    /// the server stops taking connections.
    pub drain: Duration,
    /// Whether `serve` applies migrations itself (`--no-migrate` leaves them to
    /// `agentd migrate` and refuses to start while any is pending).
    pub migrations: agentd_store::Migrations,
    /// Signups per client address per hour (0: no limit).
    pub signups_per_hour_per_ip: u32,
    /// Login attempts per client address per minute (0: no limit).
    pub logins_per_minute_per_ip: u32,
    /// TLS ends at a proxy in front (`--behind-proxy`): plain HTTP on a non-local
    /// address is then fine, and `public_url` must be `https://`.
    pub behind_proxy: bool,
    /// Where outbound webhooks may go and how they are retried.
    pub webhooks: WebhookSettings,
}

#[derive(Debug, Clone)]
pub struct WorkerSettings {
    pub source: WorkerSource,
    pub slots: usize,
    pub lease: Duration,
    pub shutdown_grace: Duration,
    pub egress: EgressSettings,
}

/// Where a worker gets its runs.
#[derive(Debug, Clone)]
pub enum WorkerSource {
    /// The server's own store, in process.
    Embedded,
    /// A server's `/v1/worker` API.
    Remote { server: String, token: Secret },
}

/// A database URL whose password never reaches a log.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    pub fn new(url: impl Into<String>) -> DatabaseUrl {
        DatabaseUrl(url.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The SQLite database under `data_dir`, the default.
    pub fn sqlite_under(data_dir: &Path) -> DatabaseUrl {
        DatabaseUrl(format!("sqlite://{}", data_dir.join("agentd.db").display()))
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `scheme://user:password@host/db`: keep all but the password.
        let shown = match self.0.split_once("://") {
            Some((scheme, rest)) => match rest.split_once('@') {
                Some((credentials, host)) => {
                    let user = credentials.split(':').next().unwrap_or("");
                    let password = if credentials.contains(':') { ":<redacted>" } else { "" };
                    format!("{scheme}://{user}{password}@{host}")
                }
                None => self.0.clone(),
            },
            None => self.0.clone(),
        };
        write!(f, "{shown:?}")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("{name}: {detail}")]
    Limit { name: String, detail: String },
    #[error("refusing to start in production: {0}")]
    Insecure(String),
    #[error("cannot resolve {what} {path} to an absolute path: {source}")]
    Path { what: &'static str, path: String, source: std::io::Error },
    #[error("{0}")]
    Packages(String),
    #[error(transparent)]
    Blob(#[from] agentd_store::StoreError),
    /// A master key that does not parse; `origin` is where it came from (a variable's
    /// name or a file's path), never its text.
    #[error("{origin} {problem}")]
    MasterKey { origin: String, problem: agentd_control::MasterKeyError },
    #[error("the master key file {path}: {detail}")]
    KeyFile { path: String, detail: String },
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
    #[arg(long, env = "AGENTD_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Where bundles and artifacts go: a directory (`file:///PATH` or a path; default
    /// <data-dir>/blobs) or an S3-compatible bucket `s3://BUCKET[/PREFIX]`, configured by
    /// the standard `AWS_*` variables (`AWS_ENDPOINT_URL`, `AWS_REGION`, keys, `AWS_ALLOW_HTTP`).
    #[arg(long, env = "AGENTD_BLOB_URL")]
    pub blob_url: Option<String>,
    /// Runs the in-process worker executes at once (0 = no in-process worker).
    #[arg(long, env = "AGENTD_WORKER_SLOTS", default_value_t = 4)]
    pub worker_slots: usize,
    /// Who may make an account: `open` (anyone signs up), `invite` (invited people only),
    /// `closed` (invites for existing accounts, and an operator's owner invites).
    #[arg(long, env = "AGENTD_SIGNUP", value_enum, default_value = "open")]
    pub signup: SignupMode,
    /// Signups accepted from one client address per hour (0 = no limit). Open signup in
    /// production needs this limit on.
    #[arg(long, env = "AGENTD_SIGNUPS_PER_HOUR_PER_IP", default_value_t = 20)]
    pub signups_per_hour_per_ip: u32,
    /// Login attempts accepted from one client address per minute (0 = no limit); each
    /// account is throttled after wrong passwords in a row besides.
    #[arg(long, env = "AGENTD_LOGINS_PER_MINUTE_PER_IP", default_value_t = 30)]
    pub logins_per_minute_per_ip: u32,
    /// `production` refuses to start with an insecure setup.
    #[arg(long, env = "AGENTD_ENV", value_enum, default_value = "development")]
    pub env: Environment,
    /// The URL clients reach the API at, when it is not `http://<listen>` (a TLS proxy in
    /// front): invite links and trigger URLs are built on it. Runs do not use it: they
    /// reach the API through their host forward.
    #[arg(long, env = "AGENTD_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Proxies in front of the API whose `X-Forwarded-For` is believed, e.g.
    /// `127.0.0.1,10.0.0.0/8` (comma-separated networks). None by default: the client is
    /// the peer, whatever it sends.
    #[arg(long, env = "AGENTD_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<IpNetwork>,
    /// TLS is terminated by a proxy in front of this server: production then accepts plain
    /// HTTP on a non-local address, and wants AGENTD_PUBLIC_URL to be the proxy's https:// URL.
    #[arg(long, env = "AGENTD_BEHIND_PROXY")]
    pub behind_proxy: bool,
    /// Seconds a claimed run stays leased without renewal; after a crash, runs come back
    /// this long after their last renewal.
    #[arg(long, env = "AGENTD_LEASE_S", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub lease_s: u64,
    /// On SIGTERM, seconds runs in flight may go on before they are stopped and handed
    /// back to the queue.
    #[arg(long, env = "AGENTD_SHUTDOWN_GRACE_S", default_value_t = 30)]
    pub shutdown_grace_s: u64,
    /// How often one invocation may run again, as a new attempt that does not count
    /// against its `max_attempts`, because the platform failed it (its worker died, the
    /// sandbox would not start).
    #[arg(long, env = "AGENTD_MAX_RECOVERIES", default_value_t = 3, value_parser = clap::value_parser!(u32).range(0..=100))]
    pub max_recoveries: u32,
    /// Seconds between sweeps that delete expired memory store items and give their bytes
    /// back to the workspace (expired items are unreadable at once either way).
    #[arg(long, env = "AGENTD_STORE_SWEEP_S", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub store_sweep_s: u64,
    /// Seconds between sweeps that delete blobs (bundles, artifacts, dependency trees) no
    /// row refers to any more.
    #[arg(long, env = "AGENTD_BLOB_SWEEP_S", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub blob_sweep_s: u64,
    /// Milliseconds between passes of the schedules reconciler, which claims and runs due
    /// occurrences (every replica looks; one alone runs each occurrence). A schedule every
    /// second needs at most 1000.
    #[arg(long, env = "AGENTD_SCHEDULE_TICK_MS", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(50..=60_000))]
    pub schedule_tick_ms: u64,
    /// Seconds a blob just written, and the versions of an agent just deleted, are kept
    /// by the blob sweep whatever refers to them: the time a write has to commit its row.
    #[arg(long, env = "AGENTD_BLOB_GRACE_S", default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..=604_800))]
    pub blob_grace_s: u64,
    #[command(flatten)]
    pub egress: EgressArgs,
    #[command(flatten)]
    pub webhooks: WebhookArgs,
    #[command(flatten)]
    pub packages: PackageArgs,
    /// Once ready to serve, write the bound address (`127.0.0.1:PORT`) to this file: for
    /// supervisors and tests that start the server on port 0.
    #[arg(long, env = "AGENTD_ADDRESS_FILE")]
    pub address_file: Option<PathBuf>,
    /// On SIGTERM, seconds `/readyz` answers 503 while the API still serves, so a load
    /// balancer stops sending work before the server stops taking connections.
    #[arg(long, env = "AGENTD_DRAIN_S", default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=600))]
    pub drain_s: u64,
    /// Do not apply migrations; refuse to start while any is pending (for deployments
    /// that run `agentd migrate` as a step of their own).
    #[arg(long, env = "AGENTD_NO_MIGRATE")]
    pub no_migrate: bool,
    #[command(flatten)]
    pub log: LogArgs,
    /// A bearer token `GET /metrics` requires; without one it is open (it shows volumes,
    /// never a tenant's data).
    #[arg(long, env = "AGENTD_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
}

/// Where dependency builds get packages from; builds reach only these hosts.
#[derive(Debug, Clone, Args)]
pub struct PackageArgs {
    /// The Python package index builds install from (pip's `--index-url`), e.g. a
    /// private mirror. The default, the public PyPI, serves files from files.pythonhosted.org.
    #[arg(long, env = "AGENTD_PYTHON_INDEX_URL", default_value = DEFAULT_PYTHON_INDEX)]
    pub python_index_url: String,
    /// The npm registry builds install from.
    #[arg(long, env = "AGENTD_NPM_REGISTRY", default_value = DEFAULT_NPM_REGISTRY)]
    pub npm_registry: String,
    /// More hosts builds may reach, for a mirror that serves its files from another host
    /// (comma-separated host names).
    #[arg(long, env = "AGENTD_PACKAGE_HOSTS", value_delimiter = ',')]
    pub package_hosts: Vec<String>,
    /// No network for any build: only packages vendored in bundles (`wheels/`, `file:`
    /// tarballs) are installed.
    #[arg(long, env = "AGENTD_OFFLINE_BUILDS")]
    pub offline_builds: bool,
}

const DEFAULT_PYTHON_INDEX: &str = "https://pypi.org/simple";
const DEFAULT_NPM_REGISTRY: &str = "https://registry.npmjs.org/";

impl PackageArgs {
    pub fn settings(&self) -> Result<PackageIndexes, SettingsError> {
        let mut hosts = vec![index_host("--python-index-url", &self.python_index_url)?];
        if self.python_index_url.trim_end_matches('/') == DEFAULT_PYTHON_INDEX {
            hosts.push("files.pythonhosted.org".to_owned());
        }
        hosts.push(index_host("--npm-registry", &self.npm_registry)?);
        for host in &self.package_hosts {
            let host = host.trim().to_ascii_lowercase();
            let valid = !host.is_empty()
                && host.split('.').all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
            if !valid {
                return Err(SettingsError::Packages(format!("--package-hosts: `{host}` is not a host name")));
            }
            hosts.push(host);
        }
        hosts.dedup();
        Ok(PackageIndexes {
            python_index_url: self.python_index_url.clone(),
            npm_registry: self.npm_registry.clone(),
            hosts,
            offline: self.offline_builds,
        })
    }
}

/// The host of an index URL, which must be `http(s)://HOST[/…]`.
fn index_host(flag: &str, url: &str) -> Result<String, SettingsError> {
    let parsed = reqwest::Url::parse(url).map_err(|e| SettingsError::Packages(format!("{flag}: `{url}`: {e}")))?;
    match (parsed.scheme(), parsed.host_str()) {
        ("http" | "https", Some(host)) => Ok(host.to_ascii_lowercase()),
        _ => Err(SettingsError::Packages(format!("{flag}: `{url}` must be an http(s) URL with a host"))),
    }
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

/// Where outbound webhooks may go and how they are retried (docs/OPERATIONS.md).
#[derive(Debug, Clone, Args)]
pub struct WebhookArgs {
    /// Networks webhook deliveries may reach although they are private, loopback or
    /// link-local (comma-separated CIDRs, as `--egress-allowed-networks`). Empty by
    /// default: only public addresses.
    #[arg(long, env = "AGENTD_WEBHOOK_ALLOWED_NETWORKS", value_delimiter = ',')]
    pub webhook_allowed_networks: Vec<IpNetwork>,
    /// Accept `http://` webhook URLs in production (development always does).
    #[arg(long, env = "AGENTD_WEBHOOK_ALLOW_HTTP")]
    pub webhook_allow_http: bool,
    /// Seconds one delivery attempt may take.
    #[arg(long, env = "AGENTD_WEBHOOK_TIMEOUT_S", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub webhook_timeout_s: u64,
    /// Seconds after its first attempt a delivery is still retried; then it fails.
    #[arg(long, env = "AGENTD_WEBHOOK_RETRY_WINDOW_S", default_value_t = 86_400, value_parser = clap::value_parser!(u64).range(0..=604_800))]
    pub webhook_retry_window_s: u64,
    /// Milliseconds before the first retry; each later wait doubles.
    #[arg(long, env = "AGENTD_WEBHOOK_BACKOFF_MS", default_value_t = 5_000, value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub webhook_backoff_ms: u64,
    /// Longest wait between two attempts, in seconds.
    #[arg(long, env = "AGENTD_WEBHOOK_BACKOFF_MAX_S", default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub webhook_backoff_max_s: u64,
    /// Failed deliveries in a row after which an endpoint is disabled.
    #[arg(long, env = "AGENTD_WEBHOOK_DISABLE_AFTER", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub webhook_disable_after: u32,
    /// Milliseconds between two looks for due deliveries.
    #[arg(long, env = "AGENTD_WEBHOOK_DELIVER_EVERY_MS", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(10..=60_000))]
    pub webhook_deliver_every_ms: u64,
}

impl WebhookArgs {
    pub fn settings(&self, env: Environment) -> WebhookSettings {
        WebhookSettings {
            allowed_networks: self.webhook_allowed_networks.clone(),
            allow_http: self.webhook_allow_http || env != Environment::Production,
            timeout: Duration::from_secs(self.webhook_timeout_s),
            retry_window: Duration::from_secs(self.webhook_retry_window_s),
            backoff_base: Duration::from_millis(self.webhook_backoff_ms),
            backoff_max: Duration::from_secs(self.webhook_backoff_max_s),
            disable_after: self.webhook_disable_after,
            deliver_every: Duration::from_millis(self.webhook_deliver_every_ms),
        }
    }
}

/// `path` made absolute against the working directory.
pub fn absolute(what: &'static str, path: &Path) -> Result<PathBuf, SettingsError> {
    std::path::absolute(path).map_err(|source| SettingsError::Path { what, path: path.display().to_string(), source })
}

impl ServeArgs {
    /// The settings of `agentd serve`; `vars` are the process's environment variables
    /// (for `AGENTD_LIMITS_*`, `AWS_*` and the master keys, which have no flags: a
    /// command line is visible to every user of the machine).
    pub fn settings(self, vars: &[(String, String)]) -> Result<Settings, SettingsError> {
        let data_dir = absolute("the data dir", &self.data_dir)?;
        let database = self.database_url.clone().map_or_else(|| DatabaseUrl::sqlite_under(&data_dir), DatabaseUrl::new);
        let blobs = match BlobLocation::parse(self.blob_url.as_deref(), &data_dir)? {
            BlobLocation::Local(path) => BlobLocation::Local(absolute("the blob directory", &path)?),
            s3 => s3,
        };
        let server = ServerSettings {
            listen: self.listen,
            public_url: self.public_url.clone(),
            signup: self.signup,
            address_file: self.address_file.as_deref().map(|p| absolute("the address file", p)).transpose()?,
            default_limits: default_limits(vars)?,
            lease: Duration::from_secs(self.lease_s),
            max_recoveries: self.max_recoveries,
            memory_sweep: Duration::from_secs(self.store_sweep_s),
            blob_sweep: Duration::from_secs(self.blob_sweep_s),
            schedule_tick: Duration::from_millis(self.schedule_tick_ms),
            blob_grace: Duration::from_secs(self.blob_grace_s),
            package_indexes: self.packages.settings()?,
            master_key: master_key::from_vars(vars, master_key::MASTER_KEY_VAR)?,
            previous_master_key: master_key::from_vars(vars, master_key::PREVIOUS_MASTER_KEY_VAR)?,
            trusted_proxies: self.trusted_proxies.clone(),
            drain: Duration::from_secs(self.drain_s),
            migrations: match self.no_migrate {
                true => agentd_store::Migrations::Leave,
                false => agentd_store::Migrations::Apply,
            },
            signups_per_hour_per_ip: self.signups_per_hour_per_ip,
            logins_per_minute_per_ip: self.logins_per_minute_per_ip,
            behind_proxy: self.behind_proxy,
            webhooks: self.webhooks.settings(self.env),
        };
        let worker = (self.worker_slots > 0).then(|| WorkerSettings {
            source: WorkerSource::Embedded,
            slots: self.worker_slots,
            lease: Duration::from_secs(self.lease_s),
            shutdown_grace: Duration::from_secs(self.shutdown_grace_s),
            egress: self.egress.settings(),
        });
        let settings = Settings {
            env: self.env,
            data_dir,
            log_format: self.log.format(self.env),
            metrics: MetricsSettings {
                token: self.metrics_token.clone().filter(|t| !t.is_empty()).map(Secret::new),
                listen: None,
            },
            store: Some(StoreSettings { database, blobs, s3: s3_connection(vars) }),
            server: Some(server),
            worker,
        };
        settings.check()?;
        Ok(settings)
    }
}

impl Settings {
    /// In production, refuses a setup that is not safe to expose and says why.
    fn check(&self) -> Result<(), SettingsError> {
        if self.env != Environment::Production {
            return Ok(());
        }
        let problems = self.production_problems();
        if problems.is_empty() { Ok(()) } else { Err(SettingsError::Insecure(problems.join("; "))) }
    }

    /// The reasons this setup is not safe to expose.
    pub fn production_problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if let Some(api) = &self.server {
            if api.signup == SignupMode::Open && api.signups_per_hour_per_ip == 0 {
                problems.push(
                    "signup is open with no signup rate limit; set AGENTD_SIGNUPS_PER_HOUR_PER_IP above 0 \
                     (default 20), or AGENTD_SIGNUP=invite or closed"
                        .to_owned(),
                );
            }
            problems.extend(preflight::transport_problem(api));
            if api.master_key.is_none() {
                problems.push(
                    "no master key for agents' secrets; set AGENTD_MASTER_KEY to 32 random bytes in base64 \
                     (`openssl rand -base64 32`), the same on every replica"
                        .to_owned(),
                );
            }
            problems.extend(preflight::secret_problems(api, self.store.as_ref()));
        }
        problems
    }
}

/// How to reach S3, from the standard `AWS_*` variables.
pub fn s3_connection(vars: &[(String, String)]) -> S3Connection {
    let get = |name: &str| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).filter(|v| !v.is_empty());
    S3Connection {
        region: get("AWS_REGION").or_else(|| get("AWS_DEFAULT_REGION")),
        endpoint: get("AWS_ENDPOINT_URL").or_else(|| get("AWS_ENDPOINT")),
        access_key_id: get("AWS_ACCESS_KEY_ID"),
        secret_access_key: get("AWS_SECRET_ACCESS_KEY"),
        session_token: get("AWS_SESSION_TOKEN"),
        allow_http: get("AWS_ALLOW_HTTP").is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1"),
    }
}

/// Default tenant limits: the built-in ones, overridden field by field by
/// `AGENTD_LIMITS_<FIELD>` (e.g. `AGENTD_LIMITS_MAX_AGENTS=20`).
pub fn default_limits(vars: &[(String, String)]) -> Result<TenantLimits, SettingsError> {
    let mut limits = serde_json::to_value(TenantLimits::default())
        .map_err(|e| SettingsError::Limit { name: "limits".into(), detail: e.to_string() })?;
    for (name, value) in vars {
        let Some(field) = name.strip_prefix("AGENTD_LIMITS_") else { continue };
        let field = field.to_lowercase();
        let Some(slot) = limits.get_mut(&field) else {
            return Err(SettingsError::Limit {
                name: name.clone(),
                detail: "no such limit (see DESIGN §8 for the names)".into(),
            });
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Serve {
        #[command(flatten)]
        args: ServeArgs,
    }

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn limits_come_from_env_field_by_field() {
        let limits = default_limits(&vars(&[("AGENTD_LIMITS_MAX_AGENTS", "7"), ("HOME", "/")])).unwrap_or_default();
        assert_eq!(limits.max_agents, 7);
        assert_eq!(limits.max_api_keys, TenantLimits::default().max_api_keys);
    }

    #[test]
    fn an_unknown_or_non_numeric_limit_is_an_error() {
        assert!(default_limits(&vars(&[("AGENTD_LIMITS_MAX_AGNTS", "7")])).is_err());
        assert!(default_limits(&vars(&[("AGENTD_LIMITS_MAX_AGENTS", "lots")])).is_err());
    }

    #[test]
    fn the_default_data_dir_and_database_are_absolute() {
        let Ok(cli) = Serve::try_parse_from(["serve"]) else { panic!("the defaults parse") };
        let settings = cli.args.settings(&[]).unwrap_or_else(|e| panic!("{e}"));
        assert!(settings.data_dir.is_absolute() && settings.data_dir.ends_with("agentd-data"));
        let store = settings.store.unwrap_or_else(|| panic!("serve has a store"));
        assert_eq!(store.database.expose(), format!("sqlite://{}/agentd.db", settings.data_dir.display()));
        assert!(matches!(store.blobs, BlobLocation::Local(p) if p.is_absolute()));
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let url = DatabaseUrl::new("postgres://agentd:hunter2@db.internal/agentd");
        assert_eq!(format!("{url:?}"), "\"postgres://agentd:<redacted>@db.internal/agentd\"");
        let s3 = s3_connection(&vars(&[("AWS_SECRET_ACCESS_KEY", "hunter2"), ("AWS_ACCESS_KEY_ID", "AKIA")]));
        assert!(!format!("{s3:?}").contains("hunter2"));
        let source = WorkerSource::Remote { server: "https://x".into(), token: Secret::new("agw_hunter2") };
        assert!(!format!("{source:?}").contains("hunter2"));
        let key = MasterKey::generate();
        let Ok(cli) = Serve::try_parse_from(["serve"]) else { panic!("the defaults parse") };
        let settings = cli.args.settings(&vars(&[("AGENTD_MASTER_KEY", key.to_base64().expose())])).unwrap();
        let shown = format!("{settings:?}");
        assert!(shown.contains(key.id()) && !shown.contains(key.to_base64().expose()), "{shown}");
    }

    #[test]
    fn production_refuses_to_start_without_a_master_key() {
        let args = ["serve", "--env", "production", "--signup", "closed"];
        let Ok(cli) = Serve::try_parse_from(args) else { panic!("parses") };
        let refused = cli.args.settings(&[]).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(refused.contains("AGENTD_MASTER_KEY"), "{refused}");
        let Ok(cli) = Serve::try_parse_from(args) else { panic!("parses") };
        let key = MasterKey::generate();
        assert!(cli.args.settings(&vars(&[("AGENTD_MASTER_KEY", key.to_base64().expose())])).is_ok());
    }

    #[test]
    fn production_refuses_open_signup_only_without_a_signup_rate_limit() {
        let key = MasterKey::generate();
        let key = key.to_base64();
        let with_key = vars(&[("AGENTD_MASTER_KEY", key.expose())]);
        let args = ["serve", "--env", "production", "--signups-per-hour-per-ip", "0"];
        let Ok(cli) = Serve::try_parse_from(args) else { panic!("parses") };
        let refused = cli.args.settings(&with_key).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(refused.contains("no signup rate limit"), "{refused}");
        assert!(refused.contains("AGENTD_SIGNUPS_PER_HOUR_PER_IP"), "{refused}");
        // Open signup with the default limit (20 per address per hour) is accepted.
        let Ok(cli) = Serve::try_parse_from(["serve", "--env", "production"]) else { panic!("parses") };
        assert!(cli.args.settings(&with_key).is_ok());
        for signup in ["invite", "closed"] {
            let args = ["serve", "--env", "production", "--signup", signup, "--signups-per-hour-per-ip", "0"];
            let Ok(cli) = Serve::try_parse_from(args) else { panic!("parses") };
            assert!(cli.args.settings(&with_key).is_ok(), "{signup}");
        }
    }
}

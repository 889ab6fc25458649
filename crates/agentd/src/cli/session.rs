//! Which server to talk to and with which credentials: the global options every client
//! command takes, resolved against the environment and the stored credentials.

use agentd_client::Client;
use clap::Args;

use super::credentials::{self, Credentials};
use super::output::Failure;

/// Where a server is expected when nothing else says.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";

/// Options shared by every client command; `global` lets them follow a subcommand too
/// (`agentd agents list --json`).
#[derive(Debug, Clone, Args)]
pub struct Connection {
    /// Server base URL [default: the stored server, else http://127.0.0.1:8080]
    #[arg(long, env = "AGENTD_SERVER", global = true, value_name = "URL")]
    pub server: Option<String>,
    /// API key or session token [default: the one stored for this server]
    #[arg(long, env = "AGENTD_TOKEN", global = true, hide_env_values = true)]
    pub token: Option<String>,
    /// Print the server's JSON instead of a table
    #[arg(long, global = true)]
    pub json: bool,
}

/// A resolved connection: the client plus what commands need to report.
pub struct Session {
    pub client: Client,
    pub server: String,
    pub json: bool,
}

impl Connection {
    /// A session that may be anonymous (signup, login).
    pub fn anonymous(&self) -> Result<Session, Failure> {
        let stored = credentials::load()?;
        let server = self.resolve_server(stored.as_ref());
        Ok(Session { client: Client::new(&server)?, server, json: self.json })
    }

    /// A session with a token: `--token`/`AGENTD_TOKEN`, else the stored one if it was
    /// stored for this same server (a token is never sent to a server it was not made by).
    pub fn authenticated(&self) -> Result<Session, Failure> {
        let stored = credentials::load()?;
        let server = self.resolve_server(stored.as_ref());
        let token = self
            .token
            .clone()
            .or_else(|| stored.filter(|c| normalize(&c.server) == normalize(&server)).map(|c| c.token));
        let Some(token) = token else {
            return Err(Failure::SignedOut(format!(
                "no credentials for {server}: run `agentd signup` or `agentd login`, \
                 or pass --token (or set AGENTD_TOKEN)"
            )));
        };
        let client = Client::new(&server)?.with_token(token);
        Ok(Session { client, server, json: self.json })
    }

    fn resolve_server(&self, stored: Option<&Credentials>) -> String {
        let chosen = self
            .server
            .clone()
            .or_else(|| stored.map(|c| c.server.clone()))
            .unwrap_or_else(|| DEFAULT_SERVER.to_owned());
        normalize(&chosen).to_owned()
    }
}

fn normalize(server: &str) -> &str {
    server.trim().trim_end_matches('/')
}

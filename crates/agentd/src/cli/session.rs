//! Which server to talk to and with which credentials: the global options every client
//! command takes, resolved against the environment and the stored credentials.

use agentd_client::Client;
use clap::Args;

use super::credentials::{self, Credentials, Profiles};
use super::output::Failure;

/// Where a server is expected when nothing else says.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";

/// Options shared by every client command; `global` lets them follow a subcommand too
/// (`agentd agents list --json`).
#[derive(Debug, Clone, Args)]
pub struct Connection {
    /// Server base URL [default: the profile's server, else http://127.0.0.1:8080]
    #[arg(long, env = "AGENTD_SERVER", global = true, value_name = "URL")]
    pub server: Option<String>,
    /// API key or session token [default: the one stored for this server]
    #[arg(long, env = "AGENTD_TOKEN", global = true, hide_env_values = true)]
    pub token: Option<String>,
    /// Stored credentials to use [default: the profile signed in to last]
    #[arg(long, env = "AGENTD_PROFILE", global = true, value_name = "NAME")]
    pub profile: Option<String>,
    /// Print the server's JSON instead of a table
    #[arg(long, global = true)]
    pub json: bool,
}

/// A resolved connection: the client plus what commands need to report.
pub struct Session {
    pub client: Client,
    pub server: String,
    pub json: bool,
    /// The profile whose credentials are used, if stored ones are.
    pub profile: Option<String>,
}

impl Connection {
    /// A session that may be anonymous (signup, login): `--server`, else the profile's
    /// server, else the default.
    pub fn anonymous(&self) -> Result<Session, Failure> {
        let profiles = credentials::load()?;
        let name = self.profile.as_deref().unwrap_or(profiles.default_name());
        let server = match (&self.server, profiles.profiles.get(name)) {
            (Some(server), _) => server.clone(),
            (None, Some(stored)) => stored.server.clone(),
            (None, None) => DEFAULT_SERVER.to_owned(),
        };
        let server = normalize(&server).to_owned();
        Ok(Session { client: Client::new(&server)?, server, json: self.json, profile: None })
    }

    /// A session with a token: `--token`/`AGENTD_TOKEN`, else a stored one made by this
    /// same server (a token is never sent to a server it was not made by): the named
    /// profile's, else the one stored for `--server`, else the default profile's.
    pub fn authenticated(&self) -> Result<Session, Failure> {
        let profiles = credentials::load()?;
        let (name, stored) = self.stored(&profiles)?;
        let server = normalize(self.server.as_deref().or(stored.map(|c| c.server.as_str())).unwrap_or(DEFAULT_SERVER))
            .to_owned();
        let token = match (&self.token, stored) {
            (Some(token), _) => token.clone(),
            (None, Some(stored)) if same_server(&stored.server, &server) => stored.token.clone(),
            (None, _) => {
                return Err(Failure::SignedOut(format!(
                    "no credentials for {server}: run `agentd signup` or `agentd login`, \
                     or pass --token (or set AGENTD_TOKEN)"
                )));
            }
        };
        let client = Client::new(&server)?.with_token(token);
        let profile = self.token.is_none().then_some(name).flatten();
        Ok(Session { client, server, json: self.json, profile })
    }

    /// The stored credentials this command should use, and their profile's name.
    fn stored<'a>(&self, profiles: &'a Profiles) -> Result<(Option<String>, Option<&'a Credentials>), Failure> {
        if let Some(name) = &self.profile {
            let stored = profiles.profiles.get(name).ok_or_else(|| {
                Failure::SignedOut(format!("no profile `{name}`: sign in with `agentd login --profile {name}`"))
            })?;
            return Ok((Some(name.clone()), Some(stored)));
        }
        let default = profiles.default_name();
        let found = match &self.server {
            None => profiles.profiles.get_key_value(default),
            Some(server) => profiles
                .profiles
                .get_key_value(default)
                .filter(|(_, c)| same_server(&c.server, server))
                .or_else(|| profiles.profiles.iter().find(|(_, c)| same_server(&c.server, server))),
        };
        Ok(found.map_or((None, None), |(name, stored)| (Some(name.clone()), Some(stored))))
    }

    /// Stores the token a signup or login got from `server` and returns the file and the
    /// profile it went to: the named one; else the default one if it is for this server
    /// or empty, else the one for this server, else a new one named after the server, so
    /// signing in to a second server keeps the first one's credentials. The profile
    /// signed in to becomes the default.
    pub fn save(&self, server: &str, token: String) -> Result<(std::path::PathBuf, String), Failure> {
        let mut profiles = credentials::load()?;
        let default = profiles.default_name().to_owned();
        let name = match &self.profile {
            Some(name) => name.clone(),
            None => match profiles.profiles.get(&default) {
                None => default,
                Some(stored) if same_server(&stored.server, server) => default,
                Some(_) => match profiles.profiles.iter().find(|(_, c)| same_server(&c.server, server)) {
                    Some((name, _)) => name.clone(),
                    None => profile_name_for(server),
                },
            },
        };
        profiles.profiles.insert(name.clone(), Credentials { server: server.to_owned(), token });
        profiles.default_profile = Some(name.clone());
        Ok((credentials::store(&profiles)?, name))
    }
}

fn normalize(server: &str) -> &str {
    server.trim().trim_end_matches('/')
}

/// Whether two server URLs name the same server: `localhost` and `127.0.0.1` alike, a
/// default port written or not, a trailing slash or not.
pub fn same_server(a: &str, b: &str) -> bool {
    fn key(server: &str) -> Option<(String, String, Option<u16>, String)> {
        let url = reqwest::Url::parse(normalize(server)).ok()?;
        let host = match url.host_str()? {
            "localhost" | "[::1]" => "127.0.0.1".to_owned(),
            host => host.to_ascii_lowercase(),
        };
        Some((url.scheme().to_owned(), host, url.port_or_known_default(), url.path().trim_end_matches('/').to_owned()))
    }
    match (key(a), key(b)) {
        (Some(a), Some(b)) => a == b,
        _ => normalize(a) == normalize(b),
    }
}

/// A profile name for a server: its host and port (`127.0.0.1-9090`).
fn profile_name_for(server: &str) -> String {
    let url = reqwest::Url::parse(normalize(server)).ok();
    let host = url.as_ref().and_then(|u| u.host_str().map(str::to_owned)).unwrap_or_else(|| server.to_owned());
    let port = url.and_then(|u| u.port()).map(|p| format!("-{p}")).unwrap_or_default();
    format!("{host}{port}").chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' { c } else { '-' }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_compare_by_meaning() {
        assert!(same_server("http://localhost:8080/", "http://127.0.0.1:8080"));
        assert!(same_server("https://agents.example.com", "https://agents.example.com:443/"));
        assert!(!same_server("http://127.0.0.1:8080", "http://127.0.0.1:9090"));
        assert!(!same_server("http://example.com", "https://example.com"));
        assert_eq!(profile_name_for("http://127.0.0.1:9090"), "127.0.0.1-9090");
        assert_eq!(profile_name_for("https://agents.example.com"), "agents.example.com");
    }
}

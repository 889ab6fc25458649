//! Where this process's PostgreSQL test databases live, decided once, at the first test
//! that asks:
//!
//! 1. `AGENTD_TEST_POSTGRES_URL`, if set: a server URL (`postgres://USER[:PASSWORD]@HOST:PORT`,
//!    optionally with an admin database and `?options`) whose user may create databases
//!    and roles;
//! 2. else a local server, if one answers on 127.0.0.1:5432 as user `postgres` without a
//!    password (what `.ci/run` sets up);
//! 3. else a private, throwaway cluster started from the installed binaries
//!    (`private_cluster`);
//! 4. else none: the PostgreSQL variant of each test passes without running, after one
//!    line on stderr that says how to enable them; when `CI` is set, it fails instead.
//!
//! `AGENTD_TEST_POSTGRES` forces one path (`url`, `local`, `private` or `none`): a forced
//! path that cannot be set up fails every PostgreSQL test with the reason, and `none`
//! skips them even under CI. This is how each path is tried on a machine that has them
//! all.
//!
//! Databases and roles are made with plain SQL over a fresh connection as the server's
//! user, so no PostgreSQL client program is needed.

use std::sync::{Once, OnceLock};
use std::time::Duration;

use sqlx::{Connection, Executor, PgConnection};

use crate::{in_ci, note_once, private_cluster};

const KNOB: &str = "AGENTD_TEST_POSTGRES";
const URL_VAR: &str = "AGENTD_TEST_POSTGRES_URL";
const LOCAL_URL: &str = "postgres://postgres@127.0.0.1:5432";
const HOW_TO_ENABLE: &str = "install PostgreSQL (its initdb and postgres programs are enough) or set \
     AGENTD_TEST_POSTGRES_URL=postgres://USER@HOST:PORT to run them";

/// The outcome of the once-per-process decision.
enum Provision {
    Ready(Server),
    /// Auto-detection found nothing: skip, or fail under CI.
    NotFound,
    /// `AGENTD_TEST_POSTGRES=none`.
    TurnedOff,
    /// The path chosen could not be set up; every PostgreSQL test fails with this.
    Broken(String),
}

static PROVISION: OnceLock<Provision> = OnceLock::new();
static SKIP_NOTE: Once = Once::new();

fn provision() -> &'static Provision {
    PROVISION.get_or_init(decide)
}

/// Whether this process runs PostgreSQL tests: `false` (after one line on stderr per
/// process) when it has no PostgreSQL, so the caller skips its test. Panics, failing the
/// test, when a chosen or forced PostgreSQL could not be set up, and when none was found
/// and `CI` is set.
pub fn postgres_available() -> bool {
    match provision() {
        Provision::Ready(_) => true,
        Provision::Broken(why) => panic!("PostgreSQL for the tests: {why}"),
        Provision::NotFound if in_ci() => {
            panic!(
                "no PostgreSQL for the tests ({}), and CI is set, where that is a failure: {HOW_TO_ENABLE}",
                nothing()
            )
        }
        Provision::NotFound => {
            let line = format!("skipping the PostgreSQL variant of each test: {}; {HOW_TO_ENABLE}", nothing());
            note_once(&SKIP_NOTE, &line);
            false
        }
        Provision::TurnedOff => {
            note_once(
                &SKIP_NOTE,
                &format!("skipping the PostgreSQL variant of each test: {KNOB}=none (unset it to run them)"),
            );
            false
        }
    }
}

/// What auto-detection looked for.
fn nothing() -> String {
    format!("none answers on 127.0.0.1:5432 as user postgres, and {}", private_cluster::NOT_FOUND)
}

/// This process's server; panics for a test that uses PostgreSQL unguarded when there is
/// none.
pub(crate) fn server() -> &'static Server {
    if let Provision::Ready(server) = provision() {
        return server;
    }
    // Fails with the reason where the guard of a PostgreSQL test would (a broken path, CI).
    let _ = postgres_available();
    panic!(
        "this test needs PostgreSQL, which this process does not have: guard it with on_postgres! or on_both_stores!"
    )
}

fn decide() -> Provision {
    let url = std::env::var(URL_VAR).ok().filter(|url| !url.is_empty());
    let knob = std::env::var(KNOB).unwrap_or_default();
    let chosen = match knob.as_str() {
        "" | "auto" => return auto(url),
        "url" => url.ok_or_else(|| format!("{KNOB}=url needs {URL_VAR}")).and_then(|url| Server::parse(&url)),
        "local" => local(),
        "private" => private_cluster::find_binaries()
            .ok_or_else(|| format!("{KNOB}=private, but {}", private_cluster::NOT_FOUND))
            .and_then(|bin| private_cluster::start(&bin)),
        "none" => return Provision::TurnedOff,
        other => {
            Err(format!("{KNOB}={other}: expected url, local, private or none (or unset, for the first that works)"))
        }
    };
    chosen.map_or_else(Provision::Broken, Provision::Ready)
}

fn auto(url: Option<String>) -> Provision {
    let chosen = if let Some(url) = url {
        Server::parse(&url)
    } else if let Ok(server) = local() {
        Ok(server)
    } else if let Some(bin) = private_cluster::find_binaries() {
        private_cluster::start(&bin)
    } else {
        return Provision::NotFound;
    };
    chosen.map_or_else(Provision::Broken, Provision::Ready)
}

fn local() -> Result<Server, String> {
    let server = Server::parse(LOCAL_URL)?;
    server
        .admin("SELECT 1")
        .map_err(|e| format!("no PostgreSQL answers on 127.0.0.1:5432 as user postgres without a password: {e}"))?;
    Ok(server)
}

/// A PostgreSQL server, as the pieces of its URL.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Server {
    scheme: String,
    /// `USER[:PASSWORD]`, still percent-encoded.
    user: Option<String>,
    host: String,
    /// The database admin statements connect to.
    admin_database: String,
    /// `?options` or nothing, kept on every URL.
    query: String,
}

impl Server {
    pub(crate) fn parse(url: &str) -> Result<Server, String> {
        let bad = |why: &str| format!("{url:?} is not a PostgreSQL server URL ({why})");
        let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("no scheme"))?;
        if scheme != "postgres" && scheme != "postgresql" {
            return Err(bad("the scheme is not postgres://"));
        }
        let (rest, query) = rest.split_once('?').map_or((rest, String::new()), |(rest, q)| (rest, format!("?{q}")));
        let (authority, database) = rest.split_once('/').unwrap_or((rest, ""));
        let (user, host) = authority.rsplit_once('@').map_or((None, authority), |(u, h)| (Some(u.to_owned()), h));
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let admin_database = if database.is_empty() { "postgres" } else { database }.to_owned();
        Ok(Server { scheme: scheme.to_owned(), user, host: host.to_owned(), admin_database, query })
    }

    fn url(&self, user: Option<&str>, database: &str) -> String {
        let user = user.map(|u| format!("{u}@")).unwrap_or_default();
        format!("{}://{user}{}/{database}{}", self.scheme, self.host, self.query)
    }

    /// The URL of `database` on this server, as the server's user.
    pub(crate) fn database_url(&self, database: &str) -> String {
        self.url(self.user.as_deref(), database)
    }

    /// The URL of `database` on this server, as `user` with `password`.
    pub(crate) fn database_url_as(&self, user: &str, password: &str, database: &str) -> String {
        self.url(Some(&format!("{user}:{password}")), database)
    }

    /// Runs `sql` (of our own making, never input) on the admin database.
    pub(crate) fn admin(&self, sql: &str) -> Result<(), String> {
        execute(&self.database_url(&self.admin_database), sql)
    }
}

/// Runs `sql` over a new connection to `url`, blocking. On a thread of its own with a
/// runtime of its own: callers are inside a test's runtime (which cannot be blocked on
/// from within) or in a `Drop`.
fn execute(url: &str, sql: &str) -> Result<(), String> {
    const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
    let run = async {
        let connect = tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect(url));
        let mut conn =
            connect.await.map_err(|_| format!("connecting to {url} timed out"))?.map_err(|e| e.to_string())?;
        conn.execute(sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))).await.map_err(|e| format!("{sql}: {e}"))?;
        conn.close().await.map_err(|e| e.to_string())
    };
    std::thread::scope(|scope| {
        let thread = scope.spawn(|| {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
            runtime.map_err(|e| format!("a runtime for {sql}: {e}"))?.block_on(run)
        });
        thread.join().unwrap_or_else(|_| Err(format!("{sql}: the thread running it panicked")))
    })
}

#[cfg(test)]
mod tests {
    use super::Server;

    #[test]
    fn a_server_url_gives_database_urls_on_the_same_server_and_options() {
        let server = Server::parse("postgres://admin:pw@db.example:6543/maintenance?sslmode=require").unwrap();
        assert_eq!(server.database_url("t1"), "postgres://admin:pw@db.example:6543/t1?sslmode=require");
        assert_eq!(server.database_url_as("o", "s", "t1"), "postgres://o:s@db.example:6543/t1?sslmode=require");
        assert_eq!(server.admin_database, "maintenance");
    }

    #[test]
    fn a_server_url_without_a_database_administers_through_postgres() {
        let server = Server::parse("postgres://postgres@127.0.0.1:5432").unwrap();
        assert_eq!(server.database_url(&server.admin_database), "postgres://postgres@127.0.0.1:5432/postgres");
        assert_eq!(Server::parse("postgresql://h").unwrap().database_url("d"), "postgresql://h/d");
    }

    #[test]
    fn urls_of_other_databases_or_without_a_host_are_refused() {
        assert!(Server::parse("sqlite:///tmp/x.db").unwrap_err().contains("scheme"));
        assert!(Server::parse("postgres://user@/db").unwrap_err().contains("no host"));
        assert!(Server::parse("127.0.0.1:5432").unwrap_err().contains("no scheme"));
    }
}

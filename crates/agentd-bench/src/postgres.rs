//! A fresh PostgreSQL database per benchmark: created on the server the user names (or the
//! local default), handed to the queue and end-to-end benchmarks by URL, dropped at the end.
//!
//! `CREATE DATABASE` and `DROP DATABASE` take no bound parameters, so these are the only
//! statements here with a name spliced in; the name is always a [`DatabaseName`] this crate
//! generated, checked against `[a-z0-9_]+` and quoted as an identifier.

use std::fmt;
use std::time::Duration;

use sqlx::any::install_default_drivers;
use sqlx::{AssertSqlSafe, Connection, Executor};

use super::BenchError;

/// The PostgreSQL server tried when no `--database-url` is given.
pub const DEFAULT_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Where PostgreSQL is, and whether the user asked for it explicitly.
pub enum PostgresTarget {
    /// `--database-url none`.
    Off,
    /// The default server: skipped, with a note, when it does not answer.
    Default,
    /// `--database-url URL`: not answering is an error.
    Given(String),
}

/// The name of a database this crate creates: `agentd_bench_` and a uuid's hex digits,
/// never anything from input. Only `[a-z0-9_]` gets through [`DatabaseName::parse`], so the
/// quoted form needs no escaping and cannot end the identifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseName(String);

impl DatabaseName {
    fn generate() -> Result<DatabaseName, BenchError> {
        DatabaseName::parse(format!("agentd_bench_{}", uuid::Uuid::now_v7().simple()))
    }

    fn parse(name: String) -> Result<DatabaseName, BenchError> {
        let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_';
        // PostgreSQL truncates identifiers past 63 bytes: a longer name would not be the
        // database that gets dropped.
        if name.is_empty() || name.len() > 63 || !name.chars().all(allowed) {
            return Err(BenchError::Config(format!("`{name}` is not a database name of the form [a-z0-9_]{{1,63}}")));
        }
        Ok(DatabaseName(name))
    }

    /// As a quoted SQL identifier, for the statements that cannot bind it.
    fn quoted(&self) -> String {
        format!("\"{}\"", self.0)
    }
}

impl fmt::Display for DatabaseName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A database `agentd_bench_<uuid>` created on a PostgreSQL server for one benchmark, and
/// dropped (`WITH (FORCE)`) by [`FreshPostgres::drop_database`].
pub struct FreshPostgres {
    pub name: DatabaseName,
    pub url: String,
    admin_url: String,
}

impl FreshPostgres {
    /// `Ok(Err(reason))` when PostgreSQL is off or the default server does not answer.
    pub async fn for_target(target: &PostgresTarget) -> Result<Result<FreshPostgres, String>, BenchError> {
        let server = match target {
            PostgresTarget::Off => return Ok(Err("--database-url none".into())),
            PostgresTarget::Default => DEFAULT_POSTGRES,
            PostgresTarget::Given(url) => url.as_str(),
        };
        match (FreshPostgres::create(server).await, target) {
            (Ok(db), _) => Ok(Ok(db)),
            (Err(err), PostgresTarget::Default) => Ok(Err(format!("{} did not answer ({err})", redact(server)))),
            (Err(err), _) => Err(err),
        }
    }

    /// Creates the database on the server of `server_url`; the URL's own database
    /// (`postgres` when it names none) is used only to create and drop it.
    pub async fn create(server_url: &str) -> Result<FreshPostgres, BenchError> {
        install_default_drivers();
        let (admin_url, fresh) = split_server_url(server_url)
            .ok_or_else(|| BenchError::Config(format!("`{}` is not a postgres:// URL", redact(server_url))))?;
        let name = DatabaseName::generate()?;
        let mut conn =
            tokio::time::timeout(Duration::from_secs(5), sqlx::AnyConnection::connect(&admin_url))
                .await
                .map_err(|_| BenchError::Config(format!("{} did not answer within 5 s", redact(server_url))))??;
        // Spliced, not bound (PostgreSQL binds no identifiers): `name` is a generated,
        // validated `DatabaseName`, quoted.
        let sql = format!("CREATE DATABASE {}", name.quoted());
        conn.execute(sqlx::raw_sql(AssertSqlSafe(sql))).await?;
        conn.close().await?;
        Ok(FreshPostgres { url: fresh(&name.0), name, admin_url })
    }

    /// Another fresh database on the same server as `other`.
    pub async fn create_beside(other: &FreshPostgres) -> Result<FreshPostgres, BenchError> {
        FreshPostgres::create(&other.admin_url).await
    }

    pub async fn drop_database(self) -> Result<(), BenchError> {
        let mut conn = sqlx::AnyConnection::connect(&self.admin_url).await?;
        // As in `create`: only the generated, validated name, quoted.
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name.quoted());
        conn.execute(sqlx::raw_sql(AssertSqlSafe(sql))).await?;
        conn.close().await?;
        Ok(())
    }
}

/// `postgres://u@h:5432/db?opts` → (`postgres://u@h:5432/db?opts`, name ↦
/// `postgres://u@h:5432/name?opts`); a URL without a database gets `postgres` for admin.
fn split_server_url(url: &str) -> Option<(String, impl Fn(&str) -> String + use<>)> {
    let rest = url.strip_prefix("postgres://").or_else(|| url.strip_prefix("postgresql://"))?;
    let scheme = &url[..url.len() - rest.len()];
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (database, query) = match path.split_once('?') {
        Some((db, query)) => (db, format!("?{query}")),
        None => (path, String::new()),
    };
    let database = if database.is_empty() { "postgres" } else { database };
    let base = format!("{scheme}{authority}");
    let admin = format!("{base}/{database}{query}");
    Some((admin, move |name: &str| format!("{base}/{name}{query}")))
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_url_gives_an_admin_url_and_fresh_database_urls() {
        let (admin, fresh) = split_server_url("postgres://postgres@127.0.0.1:5432").unwrap();
        assert_eq!(admin, "postgres://postgres@127.0.0.1:5432/postgres");
        assert_eq!(fresh("x"), "postgres://postgres@127.0.0.1:5432/x");
        let (admin, fresh) = split_server_url("postgresql://u:p@h/main?sslmode=disable").unwrap();
        assert_eq!(admin, "postgresql://u:p@h/main?sslmode=disable");
        assert_eq!(fresh("x"), "postgresql://u:p@h/x?sslmode=disable");
        assert!(split_server_url("sqlite://x.db").is_none());
    }

    #[test]
    fn generated_database_names_pass_their_own_check_and_are_quoted() {
        let name = DatabaseName::generate().unwrap();
        assert!(name.0.starts_with("agentd_bench_"));
        assert_eq!(name.quoted(), format!("\"{name}\""));
    }

    #[test]
    fn database_names_outside_lowercase_digits_and_underscores_are_refused() {
        for bad in ["", "Bench", "a-b", "a\"b", "x; DROP DATABASE postgres", "a b", &"a".repeat(64)] {
            assert!(DatabaseName::parse(bad.to_owned()).is_err(), "{bad:?} was accepted");
        }
        assert!(DatabaseName::parse("agentd_bench_0".to_owned()).is_ok());
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
    }
}

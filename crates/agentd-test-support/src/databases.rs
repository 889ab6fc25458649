//! A fresh, empty database per test: a SQLite file in a temp dir, or a new PostgreSQL
//! database on this process's server (see the `postgres` module), dropped when the test
//! ends.

use crate::postgres;

/// The database engine a test body runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database of one test's own; dropping it drops the PostgreSQL database (and role).
pub struct TestDb {
    /// What `Store::open` and `agentd serve --database-url` take.
    pub url: String,
    postgres_name: Option<String>,
    /// A login role made for this database alone, dropped with it.
    postgres_owner: Option<String>,
    _dir: tempfile::TempDir,
}

impl TestDb {
    /// A new, empty database on `backend`. PostgreSQL needs a test that checked
    /// [`postgres_available`](crate::postgres_available) (the macros do).
    pub fn create(backend: Backend) -> TestDb {
        let dir = tempfile::tempdir().expect("a temp dir for the test database");
        match backend {
            Backend::Sqlite => TestDb {
                url: format!("sqlite://{}", dir.path().join("agentd.db").display()),
                postgres_name: None,
                postgres_owner: None,
                _dir: dir,
            },
            Backend::Postgres => {
                let server = postgres::server();
                let name = format!("agentd_test_{}", uuid::Uuid::now_v7().simple());
                admin(server, &format!("CREATE DATABASE {name}"));
                TestDb { url: server.database_url(&name), postgres_name: Some(name), postgres_owner: None, _dir: dir }
            }
        }
    }

    /// A new PostgreSQL database owned by, and reached as, a new login role that is not a
    /// superuser (it has CREATEROLE, as a deployment's database user might).
    pub fn create_postgres_with_own_user() -> TestDb {
        let dir = tempfile::tempdir().expect("a temp dir for the test database");
        let server = postgres::server();
        let suffix = uuid::Uuid::now_v7().simple();
        let (owner, name) = (format!("agentd_owner_{suffix}"), format!("agentd_test_{suffix}"));
        // A password as well, so that a server that does not trust local connections
        // (one named by AGENTD_TEST_POSTGRES_URL) lets the role in too.
        let password = uuid::Uuid::now_v7().simple().to_string();
        admin(server, &format!("CREATE ROLE {owner} LOGIN CREATEROLE PASSWORD '{password}'"));
        admin(server, &format!("CREATE DATABASE {name} OWNER {owner}"));
        TestDb {
            url: server.database_url_as(&owner, &password, &name),
            postgres_name: Some(name),
            postgres_owner: Some(owner),
            _dir: dir,
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let mut statements = Vec::new();
        if let Some(name) = &self.postgres_name {
            statements.push(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        }
        if let Some(owner) = &self.postgres_owner {
            statements.push(format!("DROP ROLE IF EXISTS {owner}"));
        }
        for sql in statements {
            match postgres::server().admin(&sql) {
                Ok(()) => {}
                // A second panic while unwinding would abort the whole test process.
                Err(e) if std::thread::panicking() => eprintln!("cleaning up the test database: {e}"),
                Err(e) => panic!("cleaning up the test database: {e}"),
            }
        }
    }
}

fn admin(server: &postgres::Server, sql: &str) {
    if let Err(e) = server.admin(sql) {
        panic!("setting up the test database: {e}");
    }
}

/// Runs `sql` (one or more statements) on the database at `url`: for a test that
/// changes the database under a running server, as an operator or a failing disk would.
pub async fn execute_sql(url: &str, sql: &str) {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url).await.expect("connect to the test database");
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned())).execute(&mut conn).await.expect("run the test's SQL");
    conn.close().await.expect("close the test database connection");
}

/// The first column of every row `sql` returns, as bytes (a BLOB or BYTEA): for a test
/// that reads what the server stored, behind its back.
pub async fn query_bytes(url: &str, sql: &str) -> Vec<Vec<u8>> {
    use sqlx::{Connection, Row};
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url).await.expect("connect to the test database");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned())).fetch_all(&mut conn).await.expect("run the test's SQL");
    conn.close().await.expect("close the test database connection");
    rows.iter().map(|row| row.try_get::<Vec<u8>, _>(0).expect("a bytes column")).collect()
}

/// The first column of the first row `sql` returns, as text (`None` without a row or for a
/// NULL): for a test that looks behind the server's back, where the API cannot.
pub async fn query_text(url: &str, sql: &str) -> Option<String> {
    use sqlx::{Connection, Row};
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url).await.expect("connect to the test database");
    let row =
        sqlx::query(sqlx::AssertSqlSafe(sql.to_owned())).fetch_optional(&mut conn).await.expect("run the test's SQL");
    let value = row.and_then(|row| row.try_get::<Option<String>, _>(0).expect("a text column"));
    conn.close().await.expect("close the test database connection");
    value
}

//! A fresh, empty database per test: a SQLite file in a temp dir, or a new PostgreSQL
//! database (dropped when the test ends) on the server at `AGENTD_TEST_POSTGRES_URL`
//! (default `postgres://postgres@127.0.0.1:5432`).

use std::process::Command;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestDb {
    pub url: String,
    postgres_name: Option<String>,
    /// A login role made for this database alone, dropped with it.
    postgres_owner: Option<String>,
    _dir: tempfile::TempDir,
}

fn server_url() -> String {
    std::env::var("AGENTD_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned())
}

impl TestDb {
    pub fn create(backend: Backend) -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        match backend {
            Backend::Sqlite => TestDb {
                url: format!("sqlite://{}", dir.path().join("agentd.db").display()),
                postgres_name: None,
                postgres_owner: None,
                _dir: dir,
            },
            Backend::Postgres => {
                let name = format!("agentd_test_{}", uuid::Uuid::now_v7().simple());
                psql(&format!("CREATE DATABASE {name}"));
                TestDb {
                    url: format!("{}/{name}", server_url()),
                    postgres_name: Some(name),
                    postgres_owner: None,
                    _dir: dir,
                }
            }
        }
    }

    /// A new PostgreSQL database owned by, and reached as, a new login role that is not a
    /// superuser (it has CREATEROLE, as a deployment's database user might).
    #[allow(dead_code, reason = "this file is shared with the app suite, which does not need it")]
    pub fn create_postgres_with_own_user() -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        let suffix = uuid::Uuid::now_v7().simple();
        let (owner, name) = (format!("agentd_owner_{suffix}"), format!("agentd_test_{suffix}"));
        psql(&format!("CREATE ROLE {owner} LOGIN CREATEROLE"));
        psql(&format!("CREATE DATABASE {name} OWNER {owner}"));
        let server = server_url();
        let (scheme, rest) = server.split_once("://").unwrap();
        let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
        TestDb {
            url: format!("{scheme}://{owner}@{host}/{name}"),
            postgres_name: Some(name),
            postgres_owner: Some(owner),
            _dir: dir,
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(name) = &self.postgres_name {
            psql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        }
        if let Some(owner) = &self.postgres_owner {
            psql(&format!("DROP ROLE IF EXISTS {owner}"));
        }
    }
}

fn psql(sql: &str) {
    let out = Command::new("psql").arg(format!("{}/postgres", server_url())).args(["-qtAc", sql]).output().unwrap();
    assert!(out.status.success(), "psql {sql}: {}", String::from_utf8_lossy(&out.stderr));
}

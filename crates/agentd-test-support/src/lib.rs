//! What agentd's test suites need from outside the code under test: a fresh, empty
//! database per test on SQLite or PostgreSQL ([`TestDb`]), the macros that run one test
//! body on both ([`on_both_stores!`], [`on_postgres!`]), and an S3-compatible server
//! ([`S3Server`]).
//!
//! Where the PostgreSQL databases come from is decided once per test process (the
//! `postgres` module says how): a server named by `AGENTD_TEST_POSTGRES_URL`, else a local
//! one on 127.0.0.1:5432, else a throwaway cluster started from the installed binaries,
//! else none, and then the PostgreSQL variant of each test is skipped with one line on
//! stderr (a failure when `CI` is set). `AGENTD_TEST_POSTGRES=url|local|private|none`
//! forces one of these paths.
//!
//! The macros expand to `#[tokio::test]`, so a crate using them has `tokio` (with the
//! `macros` and `rt` features) among its dependencies.
#![expect(clippy::expect_used, reason = "it fails the test using it, loudly, on the first surprise")]

mod databases;
mod package_index;
mod postgres;
mod private_cluster;
mod s3;

pub use databases::{Backend, TestDb, execute_sql, query_bytes, query_text};
pub use package_index::package_index_networks;
pub use postgres::postgres_available;
pub use s3::{S3Server, aws_env};

/// Runs one test body, an `async fn(Backend)`, against SQLite and against PostgreSQL: it
/// becomes the tests `<body>::sqlite` and `<body>::postgres`. The PostgreSQL one passes
/// without running the body when this process has no PostgreSQL (see
/// [`postgres_available`]).
#[macro_export]
macro_rules! on_both_stores {
    ($body:ident) => {
        mod $body {
            #[tokio::test]
            async fn sqlite() {
                super::$body($crate::Backend::Sqlite).await
            }
            #[tokio::test]
            async fn postgres() {
                if $crate::postgres_available() {
                    super::$body($crate::Backend::Postgres).await
                }
            }
        }
    };
}

/// Runs a test body that needs PostgreSQL, an `async fn()`, as the test `<body>::postgres`,
/// skipped like the PostgreSQL half of [`on_both_stores!`].
#[macro_export]
macro_rules! on_postgres {
    ($body:ident) => {
        mod $body {
            #[tokio::test]
            async fn postgres() {
                if $crate::postgres_available() {
                    super::$body().await
                }
            }
        }
    };
}

/// Whether this is a CI run, where an outside service that is missing is a failure rather
/// than a skip. The convention of the whole workspace: `CI` set at all.
fn in_ci() -> bool {
    std::env::var_os("CI").is_some()
}

/// Writes `line` to the process's stderr, bypassing the test harness's capture (which
/// would show it only for a failing test).
fn note(line: &str) {
    use std::io::Write;
    // A note that cannot be written changes no test's outcome.
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// [`note`], at most once per `once`.
fn note_once(once: &std::sync::Once, line: &str) {
    once.call_once(|| note(line));
}

//! Integration tests: the real `agentd serve` binary, real SQLite files, real sandboxes,
//! driven over HTTP. One test binary for the whole crate keeps link time down.
#![allow(clippy::expect_used, clippy::unwrap_used, reason = "a test fails loudly on the first surprise")]

/// Runs one test body against a server on SQLite and against one on PostgreSQL.
macro_rules! on_both_stores {
    ($body:ident) => {
        mod $body {
            #[tokio::test]
            async fn sqlite() {
                super::$body(crate::databases::Backend::Sqlite).await
            }
            #[tokio::test]
            async fn postgres() {
                super::$body(crate::databases::Backend::Postgres).await
            }
        }
    };
}

#[path = "../../../agentd-store/tests/it/databases.rs"]
mod databases;
#[path = "../../../agentd-store/tests/it/s3_server.rs"]
mod s3_server;

mod accounts;
mod agents;
mod artifacts;
mod bundles;
mod cli;
mod egress;
mod events;
mod harness;
mod invocations;
mod remote;
mod runs;
mod scale;
mod sdk;
mod tenancy;

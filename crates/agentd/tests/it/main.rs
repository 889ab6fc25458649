//! Integration tests: the real `agentd serve` binary, real SQLite files and PostgreSQL
//! databases (from `agentd-test-support`), real sandboxes, driven over HTTP. One test binary for the whole crate keeps link time down.
#![allow(clippy::expect_used, clippy::unwrap_used, reason = "a test fails loudly on the first surprise")]

mod accounts;
mod agents;
mod artifacts;
mod audit;
mod backup;
mod browser;
mod bundles;
mod cli;
mod client_sdks;
mod config;
mod conversations;
mod dashboard;
mod dependencies;
mod docs_page;
mod egress;
mod events;
mod harness;
mod health;
mod init;
mod invocations;
mod limits;
mod logs;
mod members;
mod memory;
mod metrics;
mod openapi;
mod operators;
#[cfg(feature = "otlp")]
mod otlp;
mod preflight;
mod rate_limits;
mod recovery;
mod remote;
mod run_token;
mod runs;
mod scale;
mod schedules;
mod scopes;
mod sdk;
mod secrets;
mod storage;
mod tenancy;
mod threads;
mod triggers;
mod usage;
mod validation;
mod webhooks;

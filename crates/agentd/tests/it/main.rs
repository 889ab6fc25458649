//! Integration tests: the real `agentd serve` binary, real SQLite files, real sandboxes,
//! driven over HTTP. One test binary for the whole crate keeps link time down.
#![allow(clippy::expect_used, clippy::unwrap_used, reason = "a test fails loudly on the first surprise")]

mod accounts;
mod agents;
mod bundles;
mod cli;
mod harness;
mod invocations;
mod runs;
mod sdk;
mod tenancy;

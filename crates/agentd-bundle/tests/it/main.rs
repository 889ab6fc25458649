//! Integration tests of agentd-bundle's public API, one binary for the crate.
//!
//! Archives are built in the tests (see `build`), including hostile ones, and go through
//! `inspect`, `unpack` and `pack_dir` exactly as the API server, worker and CLI call them.

#![expect(clippy::unwrap_used, reason = "a failing test should panic")]

mod build;
mod examples;
mod inspect;
mod inspect_unsafe;
mod pack;
mod unpack;

use agentd_bundle::{BundleError, BundleLimits, InspectedBundle, inspect};

pub fn inspected(bytes: &[u8]) -> InspectedBundle {
    inspect(bytes, &BundleLimits::default()).unwrap_or_else(|err| panic!("{}: {err}", err.code()))
}

pub fn refused(bytes: &[u8]) -> BundleError {
    refused_with(bytes, &BundleLimits::default())
}

pub fn refused_with(bytes: &[u8], limits: &BundleLimits) -> BundleError {
    match inspect(bytes, limits) {
        Ok(bundle) => panic!("expected an error, got {bundle:?}"),
        Err(err) => err,
    }
}

//! The in-sandbox SDKs' own tests, run with the same system interpreters the sandbox
//! uses, so `cargo test` covers them too.

use std::path::Path;
use std::process::Command;

fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

#[test]
fn the_python_sdk_tests_pass() {
    let out = Command::new("/usr/bin/python3")
        .args(["-m", "unittest", "discover", "-s", "sdk/python"])
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

#[test]
fn the_node_sdk_tests_pass() {
    let out = Command::new("/usr/bin/node").args(["--test", "sdk/node/"]).current_dir(repo()).output().unwrap();
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

//! `pack_dir`: a folder becomes a bundle that `inspect` and `unpack` accept.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;

use agentd_bundle::{ArchiveFormat, BundleLimits, pack_dir, unpack};

use crate::build::MANIFEST;
use crate::inspected;

fn agent_folder(root: &Path) {
    fs::write(root.join("agent.toml"), MANIFEST).unwrap();
    fs::write(root.join("main.py"), "print()\n").unwrap();
    fs::write(root.join("run.sh"), "#!/bin/sh\n").unwrap();
    fs::set_permissions(root.join("run.sh"), fs::Permissions::from_mode(0o700)).unwrap();
    for folder in [".git", "__pycache__", "node_modules/left-pad", "lib/__pycache__"] {
        fs::create_dir_all(root.join(folder)).unwrap();
    }
    fs::write(root.join(".git/HEAD"), "ref: refs/heads/main\n").unwrap();
    fs::write(root.join("__pycache__/main.cpython-311.pyc"), "x").unwrap();
    fs::write(root.join("lib/__pycache__/util.pyc"), "x").unwrap();
    fs::write(root.join("lib/util.py"), "x = 1\n").unwrap();
    fs::write(root.join("node_modules/left-pad/index.js"), "module.exports = 1;\n").unwrap();
    symlink("lib/util.py", root.join("util.py")).unwrap();
}

#[test]
fn a_packed_folder_inspects_and_unpacks_back() {
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("agent");
    fs::create_dir(&source).unwrap();
    agent_folder(&source);

    let bytes = pack_dir(&source).unwrap();
    let bundle = inspected(&bytes);
    assert_eq!(bundle.format, ArchiveFormat::TarGz);
    assert_eq!(bundle.manifest.name, "echo");
    assert_eq!(bundle.files, 5, "agent.toml, main.py, run.sh, lib/util.py, left-pad");

    let dest = tmp.path().join("unpacked");
    unpack(&bytes, &dest, &BundleLimits::default()).unwrap();
    assert!(!dest.join(".git").exists());
    assert!(!dest.join("__pycache__").exists());
    assert!(!dest.join("lib/__pycache__").exists());
    assert!(dest.join("node_modules/left-pad/index.js").is_file());
    assert_eq!(fs::read_link(dest.join("util.py")).unwrap(), Path::new("lib/util.py"));
    let run_mode = fs::metadata(dest.join("run.sh")).unwrap().permissions().mode();
    assert_eq!(run_mode & 0o777, 0o755);
}

#[test]
fn packing_is_reproducible() {
    let tmp = tempfile::tempdir().unwrap();
    agent_folder(tmp.path());
    let first = inspected(&pack_dir(tmp.path()).unwrap()).digest;
    fs::write(tmp.path().join("__pycache__/new.pyc"), "changed").unwrap();
    assert_eq!(inspected(&pack_dir(tmp.path()).unwrap()).digest, first);
}

#[test]
fn a_symlink_pointing_outside_is_refused() {
    for target in ["/etc/passwd", "../outside", "lib/../../x"] {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join("agent.toml"), MANIFEST).unwrap();
        symlink(target, tmp.path().join("link")).unwrap();
        let err = pack_dir(tmp.path()).unwrap_err();
        assert_eq!(err.code(), "symlink_unsafe", "{target}: {err}");
    }
}

#[test]
fn packing_a_missing_folder_is_an_io_error() {
    let err = pack_dir(Path::new("/nonexistent/agent")).unwrap_err();
    assert_eq!(err.code(), "io_error");
}

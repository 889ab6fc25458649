//! `unpack`: what lands on disk, and that nothing lands when a bundle is refused.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use agentd_bundle::{BundleLimits, unpack};

use crate::build::{self, MANIFEST, Spec, file, minimal, tar_gz, with, zip};

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
}

fn leftovers(parent: &Path) -> Vec<String> {
    fs::read_dir(parent).unwrap().map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned()).collect()
}

#[test]
fn files_folders_and_links_land_with_normalized_modes() {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("sha256-abc");
    let bytes = tar_gz(&[
        Spec::Dir("./"),
        file("./agent.toml", MANIFEST),
        Spec::File("./main.py", b"print()\n".to_vec(), 0o4775),
        Spec::File("lib/deep/data.txt", b"data".to_vec(), 0o600),
        Spec::Symlink("lib/entry", "../main.py"),
        Spec::HardLink("copy.py", "main.py"),
    ]);
    unpack(&bytes, &dest, &BundleLimits::default()).unwrap();

    assert_eq!(fs::read_to_string(dest.join("agent.toml")).unwrap(), MANIFEST);
    assert_eq!(mode(&dest), 0o755);
    assert_eq!(mode(&dest.join("main.py")), 0o755, "exec kept, setuid dropped");
    assert_eq!(mode(&dest.join("agent.toml")), 0o644);
    assert_eq!(mode(&dest.join("lib/deep/data.txt")), 0o644, "readable by the sandbox user");
    assert_eq!(mode(&dest.join("lib")), 0o755);
    assert_eq!(mode(&dest.join("lib/deep")), 0o755);
    assert_eq!(fs::read_link(dest.join("lib/entry")).unwrap(), Path::new("../main.py"));
    assert_eq!(fs::read_to_string(dest.join("lib/entry")).unwrap(), "print()\n");
    assert_eq!(fs::read_to_string(dest.join("copy.py")).unwrap(), "print()\n");
    let uid = fs::metadata(tmp.path()).unwrap().uid();
    assert_eq!(fs::metadata(dest.join("main.py")).unwrap().uid(), uid);
    assert_eq!(leftovers(tmp.path()), vec!["sha256-abc"], "no staging folder left");
}

#[test]
fn a_zip_bundle_unpacks_too() {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("bundle");
    let bytes = zip(&with(minimal(), vec![Spec::File("run.sh", b"#!/bin/sh\n".to_vec(), 0o755)]));
    unpack(&bytes, &dest, &BundleLimits::default()).unwrap();
    assert_eq!(fs::read_to_string(dest.join("main.py")).unwrap(), "print('hi')\n");
    assert_eq!(mode(&dest.join("run.sh")), 0o755);
    assert_eq!(mode(&dest.join("main.py")), 0o644);
}

#[test]
fn an_existing_destination_is_refused_and_left_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("bundle");
    fs::create_dir(&dest).unwrap();
    fs::write(dest.join("keep"), "mine").unwrap();
    let err = unpack(&tar_gz(&minimal()), &dest, &BundleLimits::default()).unwrap_err();
    assert_eq!(err.code(), "destination_exists");
    assert_eq!(fs::read_to_string(dest.join("keep")).unwrap(), "mine");
}

#[test]
fn a_refused_bundle_leaves_nothing_behind() {
    let limits = BundleLimits { max_unpacked_bytes: 1 << 20, ..BundleLimits::default() };
    let bomb = build::zeros_tar_gz(64 << 20);
    // Each of these fails after some files were already written.
    let cases = [
        (tar_gz(&with(minimal(), vec![file("../escape", "x")])), "path_unsafe"),
        (tar_gz(&with(minimal(), vec![Spec::Symlink("a", "."), Spec::Symlink("b", "a/..")])), "symlink_unsafe"),
        (
            tar_gz(&[file("agent.toml", "name = \"x\"\nruntime = \"python\"\nentrypoint = \"gone.py\"\n")]),
            "entrypoint_missing",
        ),
        (bomb, "bundle_too_large"),
    ];
    for (bytes, code) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("bundle");
        let err = unpack(&bytes, &dest, &limits).unwrap_err();
        assert_eq!(err.code(), code, "{err}");
        assert!(leftovers(tmp.path()).is_empty(), "{code}: {:?}", leftovers(tmp.path()));
    }
}

#[test]
fn nothing_is_written_outside_the_destination() {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("inner").join("bundle");
    fs::create_dir(tmp.path().join("inner")).unwrap();
    let bytes = tar_gz(&with(minimal(), vec![Spec::Symlink("out", ".."), file("out/pwned", "x")]));
    assert!(unpack(&bytes, &dest, &BundleLimits::default()).is_err());
    assert!(!tmp.path().join("pwned").exists());
    assert!(!tmp.path().join("inner/pwned").exists());
}

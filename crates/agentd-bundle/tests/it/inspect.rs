//! `inspect` on well-formed bundles and on the size, format and manifest errors.

use std::time::{Duration, Instant};

use agentd_bundle::{ArchiveFormat, BundleLimits, Runtime, SizeLimit, digest};
use tar::EntryType;

use crate::build::{self, MANIFEST, Spec, file, minimal, tar_gz, with, zip};
use crate::{inspected, refused, refused_with};

#[test]
fn a_tar_gz_bundle_is_inspected() {
    let bytes = tar_gz(&with(minimal(), vec![Spec::Dir("lib/"), file("lib/util.py", "x = 1\n")]));
    let bundle = inspected(&bytes);
    assert_eq!(bundle.format, ArchiveFormat::TarGz);
    assert_eq!(bundle.manifest.name, "echo");
    assert_eq!(bundle.manifest.runtime, Runtime::Python);
    assert_eq!(bundle.files, 3);
    assert_eq!(bundle.unpacked_bytes, (MANIFEST.len() + 12 + 6) as u64);
    assert_eq!(bundle.digest, digest(&bytes));
    assert!(bundle.digest.starts_with("sha256:") && bundle.digest.len() == 7 + 64);
}

#[test]
fn a_zip_bundle_is_inspected() {
    let bytes = zip(&with(minimal(), vec![Spec::Dir("lib/"), Spec::Symlink("lib/main.py", "../main.py")]));
    let bundle = inspected(&bytes);
    assert_eq!(bundle.format, ArchiveFormat::Zip);
    assert_eq!(bundle.manifest.entrypoint, "main.py");
    assert_eq!(bundle.files, 2);
}

#[test]
fn dot_slash_prefixes_from_tar_c_dir_are_accepted() {
    let bytes = tar_gz(&[Spec::Dir("./"), file("./agent.toml", MANIFEST), file("./main.py", "print()\n")]);
    assert_eq!(inspected(&bytes).files, 2);
}

#[test]
fn links_that_stay_inside_are_accepted() {
    let bytes = tar_gz(&with(
        minimal(),
        vec![
            Spec::Dir("bin/"),
            Spec::Symlink("bin/run", "../main.py"),
            Spec::Symlink("dangling", "not/there"),
            Spec::HardLink("copy.py", "main.py"),
        ],
    ));
    assert_eq!(inspected(&bytes).files, 3);
}

#[test]
fn an_archive_over_the_compressed_limit_is_refused_before_reading() {
    let limits = BundleLimits { max_bundle_bytes: 10, ..BundleLimits::default() };
    // Not even an archive: the size check must come first.
    let err = refused_with(&[0u8; 11], &limits);
    assert_eq!(err.code(), "bundle_too_large");
    assert!(err.is_too_large());
    assert!(matches!(err, agentd_bundle::BundleError::TooLarge { limit: SizeLimit::CompressedBytes, .. }));
}

#[test]
fn too_many_entries_are_refused_in_both_formats() {
    let limits = BundleLimits { max_entries: 3, ..BundleLimits::default() };
    let specs = with(minimal(), vec![file("a", ""), file("b", "")]);
    for bytes in [tar_gz(&specs), zip(&specs)] {
        let err = refused_with(&bytes, &limits);
        assert_eq!(err.code(), "bundle_too_large", "{err}");
        assert!(err.to_string().contains("more than 3 entries"), "{err}");
    }
}

#[test]
fn content_over_the_unpacked_limit_is_refused_as_it_streams() {
    let limits = BundleLimits { max_unpacked_bytes: 10 * 1024, ..BundleLimits::default() };
    let chunk = vec![b'x'; 1024];
    let mut specs = minimal();
    for name in ["f0", "f1", "f2", "f3", "f4", "f5", "f6", "f7", "f8", "f9", "fa"] {
        specs.push(Spec::File(name, chunk.clone(), 0o644));
    }
    for bytes in [tar_gz(&specs), zip(&specs)] {
        let err = refused_with(&bytes, &limits);
        assert_eq!(err.code(), "bundle_too_large", "{err}");
        assert!(err.is_too_large());
    }
}

#[test]
fn a_gzip_bomb_is_stopped_quickly() {
    let bomb = build::zeros_tar_gz(1 << 30);
    assert!(bomb.len() < 5 << 20, "the bomb is small: {} bytes", bomb.len());
    let started = Instant::now();
    let err = refused(&bomb);
    assert_eq!(err.code(), "bundle_too_large", "{err}");
    assert!(started.elapsed() < Duration::from_secs(1), "took {:?}", started.elapsed());
}

#[test]
fn a_bomb_hidden_in_a_long_name_record_is_stopped() {
    // The tar reader buffers GNU long names itself, before `inspect` sees an entry: the
    // cap on the decompressed stream is what stops this one.
    let limits = BundleLimits { max_unpacked_bytes: 1 << 20, max_entries: 10, ..BundleLimits::default() };
    let bomb = build::zeros_entry_tar_gz(EntryType::GNULongName, 256 << 20);
    let started = Instant::now();
    let err = refused_with(&bomb, &limits);
    assert_eq!(err.code(), "bundle_too_large", "{err}");
    assert!(started.elapsed() < Duration::from_secs(1), "took {:?}", started.elapsed());
}

#[test]
fn bytes_that_are_no_archive_are_unreadable() {
    for bytes in [&b"hello world"[..], &[], &[0x1f, 0x8b, 0, 0], b"PK\x03\x04garbage"] {
        assert_eq!(refused(bytes).code(), "bundle_unreadable");
    }
    let mut truncated = tar_gz(&minimal());
    truncated.truncate(truncated.len() / 2);
    assert_eq!(refused(&truncated).code(), "bundle_unreadable");
}

#[test]
fn a_bundle_without_agent_toml_at_the_root_is_refused() {
    let err = refused(&tar_gz(&[file("main.py", "")]));
    assert_eq!(err.code(), "manifest_missing");
    assert!(err.to_string().contains("bundle has no agent.toml at its root"), "{err}");
}

#[test]
fn a_folder_wrapping_the_bundle_is_not_unwrapped_but_pointed_at() {
    let err = refused(&zip(&[Spec::Dir("echo/"), file("echo/agent.toml", MANIFEST), file("echo/main.py", "")]));
    assert_eq!(err.code(), "manifest_missing");
    assert!(err.to_string().contains("echo/agent.toml"), "{err}");
}

#[test]
fn manifest_problems_have_their_own_codes() {
    let cases = [
        ("name = \"x\"\nruntime = \"python\"\nentrypoint = \"main.py\"\nversion = 2\n", "manifest_invalid"),
        ("name = [", "manifest_invalid"),
        ("name = \"x\"\nruntime = \"cobol\"\nentrypoint = \"main.py\"\n", "runtime_unknown"),
        ("name = \"x\"\nruntime = \"python\"\nentrypoint = \"app.py\"\n", "entrypoint_missing"),
        ("name = \"x\"\nruntime = \"python\"\nentrypoint = \"lib\"\n", "entrypoint_missing"),
        ("name = \"x\"\nruntime = \"python\"\nentrypoint = \"link.py\"\n", "entrypoint_missing"),
    ];
    for (manifest, code) in cases {
        let bytes = tar_gz(&[
            Spec::File("agent.toml", manifest.as_bytes().to_vec(), 0o644),
            file("main.py", ""),
            Spec::Dir("lib/"),
            Spec::Symlink("link.py", "main.py"),
        ]);
        let err = refused(&bytes);
        assert_eq!(err.code(), code, "{manifest}: {err}");
        assert!(!err.is_too_large());
    }
}

#[test]
fn agent_toml_must_be_a_regular_file() {
    let bytes = tar_gz(&[file("main.py", ""), Spec::Symlink("agent.toml", "main.py")]);
    assert_eq!(refused(&bytes).code(), "manifest_invalid");
    let bytes = tar_gz(&[file("main.py", ""), Spec::Dir("agent.toml/")]);
    assert_eq!(refused(&bytes).code(), "manifest_invalid");
}

#[test]
fn special_files_are_unsupported() {
    for kind in [EntryType::Fifo, EntryType::Char, EntryType::Block] {
        let err = refused(&tar_gz(&with(minimal(), vec![Spec::Other("dev", kind)])));
        assert_eq!(err.code(), "entry_unsupported", "{err}");
    }
    let err = refused(&zip(&with(minimal(), vec![Spec::Other("pipe", EntryType::Fifo)])));
    assert_eq!(err.code(), "entry_unsupported", "{err}");
}

#[test]
fn a_bundle_corrupted_in_transit_is_unreadable() {
    // Flip a bit in the gzip trailer's CRC: every tar header still parses.
    let mut bytes = tar_gz(&minimal());
    let crc_at = bytes.len() - 8;
    bytes[crc_at] ^= 0x01;
    assert_eq!(refused(&bytes).code(), "bundle_unreadable");
}

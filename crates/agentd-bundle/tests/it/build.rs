//! Builders for test archives, including hostile ones.
//!
//! The tar builder writes names and link targets straight into the header bytes, because
//! the `tar` crate's safe setters refuse the `..` and absolute names the tests need.

use std::io::{Cursor, Write};

use flate2::Compression;
use flate2::write::GzEncoder;
use tar::{EntryType, Header};
use zip::write::SimpleFileOptions;

pub const MANIFEST: &str = "name = \"echo\"\nruntime = \"python\"\nentrypoint = \"main.py\"\n";

/// One archive entry, by kind.
pub enum Spec {
    File(&'static str, Vec<u8>, u32),
    Dir(&'static str),
    Symlink(&'static str, &'static str),
    HardLink(&'static str, &'static str),
    Other(&'static str, EntryType),
}

pub fn file(name: &'static str, content: &str) -> Spec {
    Spec::File(name, content.as_bytes().to_vec(), 0o644)
}

/// The smallest valid bundle's entries: a manifest and its entrypoint.
pub fn minimal() -> Vec<Spec> {
    vec![file("agent.toml", MANIFEST), file("main.py", "print('hi')\n")]
}

pub fn with(mut specs: Vec<Spec>, more: Vec<Spec>) -> Vec<Spec> {
    specs.extend(more);
    specs
}

pub fn tar_gz(specs: &[Spec]) -> Vec<u8> {
    let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
    for spec in specs {
        let (name, kind, mode, data, link): (&str, EntryType, u32, &[u8], &str) = match spec {
            Spec::File(name, data, mode) => (name, EntryType::Regular, *mode, data, ""),
            Spec::Dir(name) => (name, EntryType::Directory, 0o755, &[], ""),
            Spec::Symlink(name, target) => (name, EntryType::Symlink, 0o777, &[], target),
            Spec::HardLink(name, target) => (name, EntryType::Link, 0o644, &[], target),
            Spec::Other(name, kind) => (name, *kind, 0o644, &[], ""),
        };
        let header = raw_header(name, kind, mode, data.len() as u64, link);
        builder.append(&header, data).unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap()
}

pub fn raw_header(name: &str, kind: EntryType, mode: u32, size: u64, link: &str) -> Header {
    let mut header = Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_size(size);
    let old = header.as_old_mut();
    old.name[..name.len()].copy_from_slice(name.as_bytes());
    old.linkname[..link.len()].copy_from_slice(link.as_bytes());
    header.set_cksum();
    header
}

pub fn zip(specs: &[Spec]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default();
    for spec in specs {
        match spec {
            Spec::File(name, data, mode) => {
                writer.start_file(*name, options.unix_permissions(*mode)).unwrap();
                writer.write_all(data).unwrap();
            }
            Spec::Dir(name) => writer.add_directory(*name, options).unwrap(),
            Spec::Symlink(name, target) => writer.add_symlink(*name, *target, options).unwrap(),
            Spec::HardLink(..) => panic!("zip has no hard links"),
            Spec::Other(name, _) => {
                // A fifo: file type bits 0o010000 in the upper half of the attributes.
                let fifo = options.external_attributes((0o010644) << 16);
                writer.start_file(*name, fifo).unwrap();
            }
        }
    }
    writer.finish().unwrap().into_inner()
}

/// A `.tar.gz` holding one file of `size` zeros, compressed as it is generated.
pub fn zeros_tar_gz(size: u64) -> Vec<u8> {
    zeros_entry_tar_gz(EntryType::Regular, size)
}

/// A `.tar.gz` holding a valid bundle, then one entry of type `kind` with `size` zeros.
pub fn zeros_entry_tar_gz(kind: EntryType, size: u64) -> Vec<u8> {
    let mut out = GzEncoder::new(Vec::new(), Compression::fast());
    let mut tar_bytes = Vec::new();
    for spec in minimal() {
        if let Spec::File(name, data, mode) = spec {
            tar_bytes.extend_from_slice(raw_header(name, EntryType::Regular, mode, data.len() as u64, "").as_bytes());
            tar_bytes.extend_from_slice(&data);
            tar_bytes.resize(tar_bytes.len().div_ceil(512) * 512, 0);
        }
    }
    tar_bytes.extend_from_slice(raw_header("zeros", kind, 0o644, size, "").as_bytes());
    out.write_all(&tar_bytes).unwrap();
    let chunk = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        let n = left.min(chunk.len() as u64);
        out.write_all(&chunk[..n as usize]).unwrap();
        left -= n;
    }
    // Padding and the end-of-archive marker.
    out.write_all(&[0u8; 1024]).unwrap();
    out.finish().unwrap()
}

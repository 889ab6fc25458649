//! The credentials file, `<config dir>/agentd/credentials.json` (`$XDG_CONFIG_HOME` on
//! Linux): the server last signed in to and its token. Readable by its owner only.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::output::Failure;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Credentials {
    pub server: String,
    pub token: String,
}

/// Where the file lives, if the platform has a config directory.
pub fn path() -> Option<PathBuf> {
    dirs::config_dir().map(|dir| dir.join("agentd").join("credentials.json"))
}

/// The stored credentials; `None` when nothing was stored yet.
pub fn load() -> Result<Option<Credentials>, Failure> {
    let Some(path) = path() else { return Ok(None) };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Failure::local(format!("cannot read {}: {e}", path.display())));
        }
    };
    serde_json::from_str(&text).map(Some).map_err(|e| {
        Failure::local(format!("{} is not a valid credentials file ({e}); delete it and sign in again", path.display()))
    })
}

/// Replaces the stored credentials and returns the file's path. The file is written
/// beside the old one with mode 0600 and renamed over it, so a crash never leaves half
/// a file and the token is never readable by others, not even briefly.
pub fn store(credentials: &Credentials) -> Result<PathBuf, Failure> {
    let path =
        path().ok_or_else(|| Failure::local("cannot find a config directory to store credentials in (set HOME)"))?;
    write_private(&path, credentials)
        .map_err(|e| Failure::local(format!("cannot store credentials in {}: {e}", path.display())))?;
    Ok(path)
}

fn write_private(path: &Path, credentials: &Credentials) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    create_private_dir(dir)?;
    let json = serde_json::to_vec_pretty(credentials).map_err(std::io::Error::other)?;
    let temp = dir.join(format!(".credentials.json.{}", std::process::id()));
    // A leftover of a crashed run could have any mode: start from a fresh file.
    match std::fs::remove_file(&temp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let written = open_private(&temp).and_then(|mut file| {
        file.write_all(&json)?;
        file.write_all(b"\n")?;
        file.sync_all()
    });
    let result = written.and_then(|()| std::fs::rename(&temp, path));
    if result.is_err() {
        // Best effort: the temp file may not even exist; the write error is what matters.
        let _ = std::fs::remove_file(&temp);
    }
    result
}

#[cfg(unix)]
fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)
}

#[cfg(not(unix))]
fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new().write(true).create_new(true).open(path)
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

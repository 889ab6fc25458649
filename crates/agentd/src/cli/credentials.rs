//! The credentials file, `<config dir>/agentd/credentials.json` (`$XDG_CONFIG_HOME` on
//! Linux), readable by its owner only: named profiles, each a server and a token, and
//! which profile commands use when none is named.
//!
//! ```json
//! {"default_profile": "default",
//!  "profiles": {"default": {"server": "http://127.0.0.1:8080", "token": "agd_…"}}}
//! ```
//!
//! A file of the first format (one `{server, token}`) reads as the profile `default`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::output::Failure;

/// The profile used when none is named and the file names none.
pub const DEFAULT_PROFILE: &str = "default";

/// One server and the token for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    pub server: String,
    pub token: String,
}

/// Everything the file holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profiles {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_profile: Option<String>,
    #[serde(default)]
    pub profiles: BTreeMap<String, Credentials>,
}

impl Profiles {
    /// The profile commands use when none is named.
    pub fn default_name(&self) -> &str {
        self.default_profile.as_deref().unwrap_or(DEFAULT_PROFILE)
    }
}

/// The file's two shapes. The first one first: every field of `Profiles` has a default,
/// so it would read anything.
#[derive(Deserialize)]
#[serde(untagged)]
enum OnDisk {
    Single(Credentials),
    Profiles(Profiles),
}

/// Where the file lives, if the platform has a config directory.
pub fn path() -> Option<PathBuf> {
    dirs::config_dir().map(|dir| dir.join("agentd").join("credentials.json"))
}

/// The stored profiles; none when nothing was stored yet.
pub fn load() -> Result<Profiles, Failure> {
    let Some(path) = path() else { return Ok(Profiles::default()) };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Profiles::default()),
        Err(e) => {
            return Err(Failure::local(format!("cannot read {}: {e}", path.display())));
        }
    };
    let invalid = |e: serde_json::Error| {
        Failure::local(format!("{} is not a valid credentials file ({e}); delete it and sign in again", path.display()))
    };
    Ok(match serde_json::from_str::<OnDisk>(&text).map_err(invalid)? {
        OnDisk::Profiles(profiles) => profiles,
        OnDisk::Single(credentials) => {
            Profiles { default_profile: None, profiles: BTreeMap::from([(DEFAULT_PROFILE.to_owned(), credentials)]) }
        }
    })
}

/// Replaces the stored profiles and returns the file's path. The file is written beside
/// the old one with mode 0600 and renamed over it, so a crash never leaves half a file
/// and the token is never readable by others, not even briefly.
pub fn store(profiles: &Profiles) -> Result<PathBuf, Failure> {
    let path =
        path().ok_or_else(|| Failure::local("cannot find a config directory to store credentials in (set HOME)"))?;
    write_private(&path, profiles)
        .map_err(|e| Failure::local(format!("cannot store credentials in {}: {e}", path.display())))?;
    Ok(path)
}

fn write_private(path: &Path, profiles: &Profiles) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    create_private_dir(dir)?;
    let json = serde_json::to_vec_pretty(profiles).map_err(std::io::Error::other)?;
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

//! Where the master key that seals agents' secrets comes from: `AGENTD_MASTER_KEY` (and,
//! during a rotation, `AGENTD_PREVIOUS_MASTER_KEY`), or, in development only, the file
//! `<data-dir>/master.key`, created once (mode 0600) when neither is set. Production
//! refuses to start without `AGENTD_MASTER_KEY` (`Settings::production_problems`): a
//! key file on one machine cannot serve a fleet of replicas.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use agentd_control::{MasterKey, MasterKeys};

use crate::settings::SettingsError;

pub const MASTER_KEY_VAR: &str = "AGENTD_MASTER_KEY";
pub const PREVIOUS_MASTER_KEY_VAR: &str = "AGENTD_PREVIOUS_MASTER_KEY";
const KEY_FILE: &str = "master.key";

/// The key in variable `name` of `vars`, if it is set and not empty.
pub fn from_vars(vars: &[(String, String)], name: &'static str) -> Result<Option<MasterKey>, SettingsError> {
    let Some((_, text)) = vars.iter().find(|(k, v)| k == name && !v.trim().is_empty()) else { return Ok(None) };
    MasterKey::parse(text).map(Some).map_err(|problem| SettingsError::MasterKey { origin: name.to_owned(), problem })
}

/// The development key file of `data_dir`.
pub fn key_file(data_dir: &Path) -> PathBuf {
    data_dir.join(KEY_FILE)
}

/// The key in `path` (as written by [`dev_key`] or by hand: hex or base64).
pub fn read_key_file(path: &Path) -> Result<MasterKey, SettingsError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| SettingsError::KeyFile { path: path.display().to_string(), detail: e.to_string() })?;
    MasterKey::parse(&text).map_err(|problem| SettingsError::MasterKey { origin: path.display().to_string(), problem })
}

/// The keys `serve` seals and opens with: the configured ones, or else the development
/// key file of `data_dir` (made now if it does not exist), with a warning.
pub fn serve_keys(
    data_dir: &Path,
    current: Option<&MasterKey>,
    previous: Option<&MasterKey>,
) -> Result<MasterKeys, SettingsError> {
    let current = match current {
        Some(key) => key.clone(),
        None => {
            let (key, path, created) = dev_key(data_dir)?;
            let made = if created { "created" } else { "using" };
            tracing::warn!(
                key_file = %path.display(),
                key_id = key.id(),
                "no {MASTER_KEY_VAR}: {made} a development master key for secrets; replicas and a \
                 production setup need the same key in {MASTER_KEY_VAR} on every server"
            );
            key
        }
    };
    tracing::info!(key_id = current.id(), previous_key_id = previous.map(MasterKey::id), "master key for secrets");
    Ok(MasterKeys::new(current, previous.cloned()))
}

/// The development key of `data_dir`: read, or created once. Created whole or not at
/// all (written aside, then linked into place, which fails if another process won), so
/// two servers starting on one data dir agree on one key.
fn dev_key(data_dir: &Path) -> Result<(MasterKey, PathBuf, bool), SettingsError> {
    let path = key_file(data_dir);
    if path.exists() {
        return Ok((read_key_file(&path)?, path, false));
    }
    let key = MasterKey::generate();
    let partial = data_dir.join(format!("{KEY_FILE}.{}.partial", std::process::id()));
    let io = |e: std::io::Error| SettingsError::KeyFile { path: path.display().to_string(), detail: e.to_string() };
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&partial).map_err(io)?;
    file.write_all(format!("{}\n", key.to_base64().expose()).as_bytes()).and_then(|()| file.sync_all()).map_err(io)?;
    let linked = std::fs::hard_link(&partial, &path);
    // The partial file is ours alone; a leftover would only be a stray copy of the key.
    let removed = std::fs::remove_file(&partial);
    match linked {
        Ok(()) => {
            removed.map_err(io)?;
            Ok((key, path, true))
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok((read_key_file(&path)?, path, false)),
        Err(e) => Err(io(e)),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn the_development_key_is_made_once_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let first = serve_keys(dir.path(), None, None).unwrap();
        let mode = std::fs::metadata(key_file(dir.path())).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let again = serve_keys(dir.path(), None, None).unwrap();
        assert_eq!(first.current().id(), again.current().id());
        let entries = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(entries, 1, "no partial file is left");
    }

    #[test]
    fn a_configured_key_wins_and_a_bad_one_is_refused_without_being_repeated() {
        let dir = tempfile::tempdir().unwrap();
        let key = MasterKey::generate();
        let keys = serve_keys(dir.path(), Some(&key), None).unwrap();
        assert_eq!(keys.current().id(), key.id());
        assert!(!key_file(dir.path()).exists(), "no key file when the key is configured");
        let vars = vec![(MASTER_KEY_VAR.to_owned(), "c2hvcnQ=".to_owned())];
        let refused = from_vars(&vars, MASTER_KEY_VAR).unwrap_err().to_string();
        assert!(refused.starts_with("AGENTD_MASTER_KEY must be 32 bytes"), "{refused}");
        assert!(!refused.contains("c2hvcnQ"), "{refused}");
        let unset = vec![(MASTER_KEY_VAR.to_owned(), String::new())];
        assert!(from_vars(&unset, MASTER_KEY_VAR).unwrap().is_none());
    }
}

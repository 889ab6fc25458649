//! One `agentd serve` per SQLite database: SQLite has one writer, and the queue, rate
//! limits and leases of two processes on one file would interfere (two replicas need
//! PostgreSQL). `serve` takes an exclusive lock on `<database>.lock` beside the database
//! at start, in every environment, and holds it until it exits; a second `serve` on the
//! same file finds it held and refuses to start, saying so. The lock is `flock(2)`, which
//! the kernel drops when the process ends however it ends, so a crash leaves nothing to
//! clean up. `agentd admin` commands do not take it: they are meant to run beside the
//! server. (A database on a network file system without working `flock` is not
//! protected; SQLite advises against such file systems anyway.)

use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};

/// The lock held while this process serves; dropping it releases the database.
#[derive(Debug)]
pub struct ReplicaLock {
    _file: File,
}

#[derive(Debug, thiserror::Error)]
pub enum ReplicaLockError {
    #[error(
        "another `agentd serve` is running on the SQLite database {database} (it holds {lock}); SQLite serves one \
         replica: stop the other one, or use PostgreSQL (AGENTD_DATABASE_URL=postgres://…) for several replicas"
    )]
    Held { database: String, lock: String },
    #[error("cannot lock {lock}: {source}")]
    Io { lock: String, source: std::io::Error },
}

/// The SQLite file of a database URL (`sqlite://PATH`, `sqlite:PATH`, options after `?`);
/// `None` for PostgreSQL and for an in-memory database.
pub fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
}

/// Takes the lock of the SQLite database `url` names; nothing to take for another engine.
pub fn take(url: &str) -> Result<Option<ReplicaLock>, ReplicaLockError> {
    let Some(database) = sqlite_file(url) else { return Ok(None) };
    take_for(&database).map(Some)
}

fn take_for(database: &Path) -> Result<ReplicaLock, ReplicaLockError> {
    let mut lock = database.as_os_str().to_owned();
    lock.push(".lock");
    let lock = PathBuf::from(lock);
    let shown = lock.display().to_string();
    let io = |source| ReplicaLockError::Io { lock: shown.clone(), source };
    let file = File::options().create(true).truncate(false).write(true).open(&lock).map_err(io)?;
    match file.try_lock() {
        Ok(()) => Ok(ReplicaLock { _file: file }),
        Err(TryLockError::WouldBlock) => {
            Err(ReplicaLockError::Held { database: database.display().to_string(), lock: shown })
        }
        Err(TryLockError::Error(source)) => Err(io(source)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_name_their_file() {
        assert_eq!(sqlite_file("sqlite:///srv/a.db"), Some(PathBuf::from("/srv/a.db")));
        assert_eq!(sqlite_file("sqlite://data/a.db?mode=rwc"), Some(PathBuf::from("data/a.db")));
        assert_eq!(sqlite_file("sqlite::memory:"), None);
        assert_eq!(sqlite_file("postgres://db/agentd"), None);
    }

    #[test]
    fn a_second_holder_of_one_database_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let url = format!("sqlite://{}", dir.path().join("agentd.db").display());
        let first = take(&url).unwrap_or_else(|e| panic!("{e}"));
        assert!(first.is_some());
        let refused = take(&url).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(refused.contains("another `agentd serve`") && refused.contains("PostgreSQL"), "{refused}");
        drop(first);
        assert!(take(&url).is_ok_and(|l| l.is_some()));
        assert!(take("postgres://db/agentd").is_ok_and(|l| l.is_none()));
    }
}

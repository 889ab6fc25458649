//! `agentd migrate`, `agentd backup FILE` and `agentd restore FILE`: the store's life
//! outside `serve`.
//!
//! A backup is one `.tar.gz` holding `agentd-backup.json` (what it is), `agentd.db` (a
//! consistent snapshot of the SQLite database taken with `VACUUM INTO` while the server
//! runs), `blobs/sha256/…` (the blob directory, copied after the snapshot: blobs are
//! immutable and written before the rows naming them, so every blob the snapshot names
//! is there; a few newer ones may come along, harmlessly) and `master.key` when the data
//! dir holds the development key (secrets would not open without it). PostgreSQL is
//! backed up with `pg_dump`, and S3 blobs by the bucket's own means: `backup` says so and
//! stops (docs/OPERATIONS.md).

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use agentd_store::{BlobLocation, Migrations, Store};
use clap::Args;

use crate::serve::create_private_dir;
use crate::settings::{DatabaseUrl, absolute};

/// What a backup's manifest says; `format` changes when the layout does.
const MANIFEST: &str = "agentd-backup.json";
const FORMAT: u64 = 1;
const DATABASE: &str = "agentd.db";
const KEY_FILE: &str = "master.key";

/// Where the store is: the flags `migrate` and `backup` share with `serve`.
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    #[arg(long, env = "AGENTD_DATA_DIR", default_value = "./agentd-data")]
    pub data_dir: PathBuf,
    /// Database: `sqlite://PATH` or `postgres://…`; default SQLite at <data-dir>/agentd.db.
    #[arg(long, env = "AGENTD_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// The blob store, as `serve` takes it; default <data-dir>/blobs.
    #[arg(long, env = "AGENTD_BLOB_URL")]
    pub blob_url: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct BackupArgs {
    /// The archive to write (`.tar.gz`); it must not exist yet.
    pub file: PathBuf,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Clone, Args)]
pub struct RestoreArgs {
    /// An archive written by `agentd backup`.
    pub file: PathBuf,
    /// The data dir to restore into: absent or empty.
    #[arg(long, env = "AGENTD_DATA_DIR", default_value = "./agentd-data")]
    pub data_dir: PathBuf,
}

type Failure = Box<dyn std::error::Error + Send + Sync>;

impl StoreArgs {
    fn resolve(&self) -> Result<(PathBuf, DatabaseUrl, BlobLocation), Failure> {
        let data_dir = absolute("the data dir", &self.data_dir)?;
        let database = self.database_url.clone().map_or_else(|| DatabaseUrl::sqlite_under(&data_dir), DatabaseUrl::new);
        let blobs = BlobLocation::parse(self.blob_url.as_deref(), &data_dir)?;
        Ok((data_dir, database, blobs))
    }
}

fn finish(what: &str, result: Result<String, Failure>) -> ExitCode {
    match result {
        Ok(said) => {
            println!("{said}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {what}: {err}");
            ExitCode::FAILURE
        }
    }
}

/// `agentd migrate`: applies pending migrations and stops.
pub async fn migrate(args: StoreArgs) -> ExitCode {
    finish(
        "migrate",
        async {
            let (data_dir, database, _) = args.resolve()?;
            if database.expose().starts_with("sqlite:") {
                create_private_dir(&data_dir)?;
            }
            let store = Store::open_with(database.expose(), Migrations::Leave).await?;
            let pending = store.migrations_pending().await?;
            store.close().await;
            if pending.is_empty() {
                return Ok("the database is current; nothing to apply".to_owned());
            }
            let store = Store::open_with(database.expose(), Migrations::Apply).await?;
            store.close().await;
            Ok(format!("applied migrations {pending:?}"))
        }
        .await,
    )
}

/// `agentd backup FILE`.
pub async fn backup(args: BackupArgs) -> ExitCode {
    finish("backup", write_backup(&args).await)
}

async fn write_backup(args: &BackupArgs) -> Result<String, Failure> {
    let (data_dir, database, blobs) = args.store.resolve()?;
    if !database.expose().starts_with("sqlite:") {
        return Err("the database is PostgreSQL: back it up with pg_dump (docs/OPERATIONS.md, \"PostgreSQL\")".into());
    }
    let BlobLocation::Local(blob_dir) = blobs else {
        return Err("the blobs are in S3: back the bucket up by its own means (versioning, replication), \
                    and the database with `agentd backup` on a local blob dir or the SQLite file (docs/OPERATIONS.md)"
            .into());
    };
    let url = database.expose();
    let path = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).unwrap_or(url);
    // Opening a missing database would create an empty one; there is nothing to back up.
    if !Path::new(path).is_file() {
        return Err(format!("there is no database at {path}; pass the server's --data-dir or --database-url").into());
    }
    let file = absolute("the backup file", &args.file)?;
    if file.exists() {
        return Err(format!("{} exists; choose a new file", file.display()).into());
    }
    let parent = file.parent().ok_or("the backup file has no directory")?;
    // The snapshot and the partial archive sit beside the target: one file system, so
    // the final rename is atomic, and no other user can read them meanwhile.
    let scratch = tempfile::Builder::new().prefix(".agentd-backup-").tempdir_in(parent)?;
    let snapshot = scratch.path().join(DATABASE);
    // Leave: a backup never changes the database it copies.
    let store = Store::open_with(database.expose(), Migrations::Leave).await?;
    let snapshotted = store.backup_sqlite_into(&snapshot).await;
    store.close().await;
    snapshotted?;
    std::fs::set_permissions(&snapshot, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    let partial = scratch.path().join("backup.tar.gz");
    let key = data_dir.join(KEY_FILE);
    let blob_count = tokio::task::spawn_blocking({
        let partial = partial.clone();
        move || pack(&partial, &snapshot, &blob_dir, key.is_file().then_some(key.as_path()))
    })
    .await??;
    std::fs::rename(&partial, &file)?;
    Ok(format!("backed up the database and {blob_count} blobs to {}", file.display()))
}

/// Writes the archive: manifest, database snapshot, blobs, and the key file if any.
fn pack(archive: &Path, snapshot: &Path, blob_dir: &Path, key: Option<&Path>) -> std::io::Result<u64> {
    use std::os::unix::fs::OpenOptionsExt;
    let out = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(archive)?;
    let gz = flate2::write::GzEncoder::new(out, flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    let blobs = blob_files(blob_dir)?;
    let manifest = serde_json::json!({
        "format": FORMAT,
        "created_at": agentd_core::Timestamp::now().to_string(),
        "database": DATABASE,
        "blobs": blobs.len(),
        "master_key": key.is_some(),
    });
    let manifest = serde_json::to_vec_pretty(&manifest).map_err(std::io::Error::other)?;
    let mut header = tar::Header::new_gnu();
    header.set_size(manifest.len() as u64);
    header.set_mode(0o600);
    header.set_mtime(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()));
    header.set_cksum();
    tar.append_data(&mut header, MANIFEST, manifest.as_slice())?;
    tar.append_path_with_name(snapshot, DATABASE)?;
    for (path, name) in &blobs {
        tar.append_path_with_name(path, format!("blobs/sha256/{name}"))?;
    }
    if let Some(key) = key {
        tar.append_path_with_name(key, KEY_FILE)?;
    }
    tar.into_inner()?.finish()?.flush()?;
    Ok(blobs.len() as u64)
}

/// The stored blobs: `sha256/<hex>`, without the hidden files of writes in progress.
fn blob_files(blob_dir: &Path) -> std::io::Result<Vec<(PathBuf, String)>> {
    let dir = blob_dir.join("sha256");
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') && entry.file_type()?.is_file() {
            files.push((entry.path(), name));
        }
    }
    files.sort();
    Ok(files)
}

/// `agentd restore FILE`.
pub async fn restore(args: RestoreArgs) -> ExitCode {
    finish(
        "restore",
        async {
            let data_dir = absolute("the data dir", &args.data_dir)?;
            let file = absolute("the backup file", &args.file)?;
            tokio::task::spawn_blocking(move || unpack(&file, &data_dir)).await?
        }
        .await,
    )
}

fn unpack(file: &Path, data_dir: &Path) -> Result<String, Failure> {
    let occupied = match std::fs::read_dir(data_dir) {
        Ok(mut entries) => entries.next().is_some(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(format!("{}: {e}", data_dir.display()).into()),
    };
    if occupied {
        return Err(format!("{} is not empty; restore into a new or empty data dir", data_dir.display()).into());
    }
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(File::open(file)?));
    create_private_dir(data_dir)?;
    let mut manifest = None;
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.into_owned();
        let allowed = path == Path::new(MANIFEST)
            || path == Path::new(DATABASE)
            || path == Path::new(KEY_FILE)
            || (path.starts_with("blobs/sha256") && path.components().count() == 3);
        if !allowed {
            return Err(format!("{} holds {}, which no agentd backup does", file.display(), path.display()).into());
        }
        if path == Path::new(MANIFEST) {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut entry, &mut text)?;
            manifest = Some(serde_json::from_str::<serde_json::Value>(&text)?);
            continue;
        }
        if path.starts_with("blobs") {
            create_private_dir(&data_dir.join("blobs/sha256"))?;
        }
        // `unpack_in` refuses paths that would leave the data dir.
        entry.unpack_in(data_dir)?;
    }
    let format = manifest.as_ref().and_then(|m| m["format"].as_u64());
    if format != Some(FORMAT) {
        return Err(format!("{} is not an agentd backup of format {FORMAT}", file.display()).into());
    }
    if !data_dir.join(DATABASE).is_file() {
        return Err(format!("{} has no database", file.display()).into());
    }
    // They hold every tenant's data, whatever modes the archive carried.
    for private in [DATABASE, KEY_FILE] {
        let path = data_dir.join(private);
        if path.is_file() {
            std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
        }
    }
    let blobs = manifest.as_ref().and_then(|m| m["blobs"].as_u64()).unwrap_or(0);
    Ok(format!(
        "restored the database and {blobs} blobs into {}; start `agentd serve --data-dir {}`",
        data_dir.display(),
        data_dir.display()
    ))
}

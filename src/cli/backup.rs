//! `leadgate backup` and `leadgate restore`: a SQLite installation (database and website leads'
//! files) in one tar file, taken while the gateway runs, and put back in place.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::str::FromStr;

use anyhow::Context;
use sqlx::sqlite::SqliteConnectOptions;

use crate::config::Config;
use crate::store::{Store, lock_unused};

/// The database's name inside a backup.
const DATABASE_ENTRY: &str = "leadgate.db";
/// The folder of website leads' files inside a backup.
const FILES_ENTRY: &str = "files";

/// Writes the backup: first a snapshot of the database, then the files. A file is stored before
/// the lead linking it is committed, so every lead in the snapshot finds its files in the copy.
pub async fn backup(config: &Config, to: &Path) -> anyhow::Result<ExitCode> {
    if config.store.is_postgres() {
        eprintln!(
            "leadgate: the store is PostgreSQL: back it up with pg_dump (e.g. `pg_dump -Fc -f leadgate.dump <url>`) \
             and copy the files folder ({}) beside it; docs/operations.md shows both",
            config.files_dir.display()
        );
        return Ok(ExitCode::from(2));
    }
    if to.exists() {
        eprintln!("leadgate: {} exists already; choose another name", to.display());
        return Ok(ExitCode::from(2));
    }
    let Store::Sqlite(store) = Store::open_existing(&config.store).await? else {
        unreachable!("a store that is not PostgreSQL is SQLite")
    };
    let snapshot = sibling(to, "db-snapshot");
    let _ = fs::remove_file(&snapshot);
    store.snapshot_into(&snapshot).await.context("taking a snapshot of the database")?;
    drop(store);
    let (files_dir, target) = (config.files_dir.clone(), to.to_owned());
    let written = tokio::task::spawn_blocking(move || write_archive(&snapshot, &files_dir, &target)).await?;
    let files = written.context("writing the backup")?;
    println!("backed up the database and {files} file(s) to {}", to.display());
    Ok(ExitCode::SUCCESS)
}

/// `name.suffix` beside `path`, for work in progress on the same file system.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(format!(".{suffix}"));
    path.with_file_name(name)
}

/// The archive goes under a temporary name and is renamed once complete, so a backup cut short
/// never looks like a finished one. Returns how many files it holds.
fn write_archive(snapshot: &Path, files_dir: &Path, to: &Path) -> io::Result<usize> {
    let partial = sibling(to, "partial");
    let written = (|| {
        let mut archive = tar::Builder::new(fs::File::create(&partial)?);
        archive.append_path_with_name(snapshot, DATABASE_ENTRY)?;
        let mut count = 0;
        if files_dir.is_dir() {
            count = append_files(&mut archive, files_dir, Path::new(FILES_ENTRY))?;
        }
        archive.into_inner()?.sync_all()?;
        Ok(count)
    })();
    let _ = fs::remove_file(snapshot);
    match written {
        Ok(count) => fs::rename(&partial, to).map(|()| count),
        Err(error) => {
            let _ = fs::remove_file(&partial);
            Err(error)
        }
    }
}

/// Stored files only: not uploads still arriving (`incoming`), nor files retention is removing.
fn append_files(archive: &mut tar::Builder<fs::File>, dir: &Path, name: &Path) -> io::Result<usize> {
    let mut count = 0;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let file_name = entry.file_name();
        let path = entry.path();
        if file_name == "incoming" || path.extension().is_some_and(|extension| extension == "removing") {
            continue;
        }
        if entry.file_type()?.is_dir() {
            count += append_files(archive, &path, &name.join(&file_name))?;
        } else {
            match archive.append_path_with_name(&path, name.join(&file_name)) {
                Ok(()) => count += 1,
                // Removed by retention after we listed it: its lead is gone from the snapshot or soon will be.
                Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                Err(error) => return Err(error),
            }
        }
    }
    Ok(count)
}

/// Puts a backup in place: the database at `[store] url`, the files into `[files] dir`.
pub async fn restore(config: &Config, from: &Path, force: bool) -> anyhow::Result<ExitCode> {
    if config.store.is_postgres() {
        eprintln!(
            "leadgate: the store is PostgreSQL: restore it with pg_restore, and copy the files folder back \
             into {}; docs/operations.md shows how",
            config.files_dir.display()
        );
        return Ok(ExitCode::from(2));
    }
    let database = SqliteConnectOptions::from_str(&config.store.url)?.get_filename().to_owned();
    // Held until the new database is in place: nothing can open the old one meanwhile.
    let _unused = if database.exists() {
        if !force {
            eprintln!(
                "leadgate: a database exists at {}; restoring would replace it. Add --force to replace it",
                database.display()
            );
            return Ok(ExitCode::from(2));
        }
        let Some(lock) = lock_unused(&database)? else {
            eprintln!(
                "leadgate: the database at {} is in use by a running gateway or command; stop it, then restore",
                database.display()
            );
            return Ok(ExitCode::from(1));
        };
        Some(lock)
    } else {
        None
    };
    let (from, files_dir) = (from.to_owned(), config.files_dir.clone());
    let restored = tokio::task::spawn_blocking(move || unpack(&from, &database, &files_dir)).await?;
    let files = restored.context("restoring the backup")?;
    println!("restored the database and {files} file(s); start the gateway with `leadgate serve`");
    Ok(ExitCode::SUCCESS)
}

/// Unpacks into a folder beside the database, then moves each part into place. Returns how many
/// files were restored.
fn unpack(from: &Path, database: &Path, files_dir: &Path) -> io::Result<usize> {
    let work = sibling(database, "restoring");
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work)?;
    let result = (|| {
        // `unpack` keeps every entry inside `work`, whatever names the archive holds.
        tar::Archive::new(fs::File::open(from)?).unpack(&work)?;
        let snapshot = work.join(DATABASE_ENTRY);
        if !snapshot.is_file() {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "the file is not a leadgate backup (no database)"));
        }
        let files = move_files(&work.join(FILES_ENTRY), files_dir)?;
        fs::File::open(&snapshot)?.sync_all()?;
        // A WAL left by the replaced database would be replayed into the restored one.
        for suffix in ["-wal", "-shm"] {
            let mut name = database.as_os_str().to_owned();
            name.push(suffix);
            match fs::remove_file(PathBuf::from(name)) {
                Err(error) if error.kind() != io::ErrorKind::NotFound => return Err(error),
                _ => {}
            }
        }
        fs::rename(&snapshot, database)?;
        Ok(files)
    })();
    let _ = fs::remove_dir_all(&work);
    result
}

/// Moves the backup's files into the files folder; files are named by their content, so one
/// already there is the same file and stays.
fn move_files(from: &Path, to: &Path) -> io::Result<usize> {
    if !from.is_dir() {
        return Ok(0);
    }
    fs::create_dir_all(to)?;
    let mut count = 0;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            count += move_files(&entry.path(), &target)?;
        } else {
            // The files folder may be on another file system than the database's.
            if !target.exists() && fs::rename(entry.path(), &target).is_err() {
                fs::copy(entry.path(), &target)?;
            }
            count += 1;
        }
    }
    Ok(count)
}

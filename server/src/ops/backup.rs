//! `toron-server backup` and `restore`: a backup file taken from a running server (through
//! the control socket) or from a stopped one, and a fresh data directory made from it. The
//! file's format is [`crate::ops::backup_file`].

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::ops::backup_file::{check, write, Reader, Summary};
use crate::store::Store;

fn partial_path(out: &Path) -> PathBuf {
    let mut p = out.as_os_str().to_owned();
    p.push(".partial");
    PathBuf::from(p)
}

/// Makes the rename of a finished file durable.
fn sync_parent(path: &Path) -> std::io::Result<()> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(parent)?.sync_all()
}

/// `toron-server backup --data DIR OUT`: asks the server running on `dir` for a backup
/// through its control socket, or, when none runs, reads the directory itself. The file is
/// written beside `out` as `OUT.partial`, checked whole, synced, and only then renamed to
/// `out`, so `out` is always a complete backup.
pub fn run_backup(dir: &Path, out: &Path) -> anyhow::Result<Summary> {
    if out.exists() {
        anyhow::bail!(
            "{} already exists; choose a new name (nothing was written)",
            out.display()
        );
    }
    let partial = partial_path(out);
    let result = write_partial(dir, &partial).and_then(|online| {
        let summary =
            check(&partial).map_err(|e| anyhow::anyhow!("the backup written is not valid: {e}"))?;
        std::fs::rename(&partial, out)?;
        sync_parent(out)?;
        tracing::info!(online, records = summary.header.records, "backup written");
        Ok(summary)
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result
}

/// Writes the backup into `partial`; says whether a running server made it.
fn write_partial(dir: &Path, partial: &Path) -> anyhow::Result<bool> {
    let mut options = File::options();
    options.write(true).create_new(true);
    // A backup holds the whole record: its owner's only, like the data directory.
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(partial)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", partial.display()))?;
    #[cfg(unix)]
    if crate::ops::control::request_backup(dir, &mut file)? {
        file.sync_all()?;
        return Ok(true);
    }
    let store = crate::ops::verify::open(dir)?;
    write(&store, &mut file)?;
    file.sync_all()?;
    Ok(false)
}

/// What a restore did.
#[derive(Debug)]
pub struct Restored {
    pub summary: Summary,
    pub rebuilt: crate::ops::verify::Rebuilt,
    pub report: crate::ops::verify::Report,
}

/// `toron-server restore --data DIR BACKUP`: checks the whole backup, writes its log into
/// `dir` (which must be new or empty), rebuilds snapshots and timeline, and verifies the
/// result. The restored store gets a storage id of its own, so clients resync from scratch
/// instead of trusting what they last shared with the old one.
pub fn run_restore(backup: &Path, dir: &Path) -> anyhow::Result<Restored> {
    let empty = match std::fs::read_dir(dir) {
        Ok(mut entries) => entries.next().is_none(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
        Err(e) => anyhow::bail!("cannot read {}: {e}", dir.display()),
    };
    if !empty {
        anyhow::bail!(
            "{} is not empty; restore into a new directory (nothing was written)",
            dir.display()
        );
    }
    let summary = check(backup)
        .map_err(|e| anyhow::anyhow!("{}: {e} (nothing was written)", backup.display()))?;
    let written = Store::create_from(dir, Reader::open(backup)?);
    let (store, written) = match written {
        Ok(w) => w,
        Err(e) => {
            // The directory was empty or new: nothing of anybody else's is removed.
            let _ = std::fs::remove_dir_all(dir);
            anyhow::bail!("restore failed, {} removed again: {e}", dir.display());
        }
    };
    anyhow::ensure!(
        written == summary.entries,
        "wrote {written} entries of {}",
        summary.entries
    );
    let rebuilt = crate::ops::verify::rebuild(&store)?;
    let report = crate::ops::verify::verify(&store)?;
    store.close();
    Ok(Restored {
        summary,
        rebuilt,
        report,
    })
}

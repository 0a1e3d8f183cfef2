//! The data directory: made private, and sled opened in it (waiting out a lock that a
//! store dropped a moment ago still holds).

use std::path::Path;

use super::StoreError;

/// How long opening waits for sled's lock on the directory: a store dropped a moment ago (a
/// restart in the same process, a process that is just exiting) still holds it while sled's
/// background IO threads finish. Another server running on the directory is still reported,
/// this much later.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Creates `dir` if missing and makes it its owner's only (0700): it holds the whole record
/// and the admin token, and sled creates its files readable by anyone the umask lets in. A
/// directory made before this, open to others, is closed with a note in the log.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        if !dir.exists() {
            return std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir);
        }
        let mode = std::fs::metadata(dir)?.permissions().mode();
        if mode & 0o077 != 0 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
            tracing::info!(dir = %dir.display(), was = format!("{:o}", mode & 0o777), "data directory made private (0700)");
        }
    }
    #[cfg(not(unix))]
    std::fs::create_dir_all(dir)?;
    Ok(())
}

pub(super) fn open_db(dir: &Path) -> Result<sled::Db, StoreError> {
    private_dir(dir)?;
    let config = sled::Config::new()
        .path(dir)
        // We flush ourselves, once per group commit; the background flusher would only
        // add unsynced writes of its own.
        .flush_every_ms(None)
        .cache_capacity(256 * 1024 * 1024);
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    loop {
        match config.open() {
            // sled reports it as `Other`, with this text.
            Err(sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock")
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return Ok(other?),
        }
    }
}

//! The control socket: a Unix socket at `<data>/control.sock` through which commands run on
//! the same machine reach the server that holds the data directory (sled locks it, so they
//! cannot open it themselves). Today it answers one request, a backup.
//!
//! Who may use it is decided by the file system, as for the data files themselves: the socket
//! is created with mode 0600 in the data directory. It is not reachable over the network.
//!
//! Protocol: the client sends one line, `backup`; the server answers with the backup file's
//! bytes (they begin with [`crate::ops::backup_file::MAGIC`]) and closes, or with one line
//! `error: <reason>`.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::ops::backup_file::MAGIC;
use crate::store::Store;

const SOCKET: &str = "control.sock";
/// A client that sends nothing, or stops reading a backup, is dropped after this long.
const IDLE: Duration = Duration::from_secs(30);

pub fn socket_path(dir: &Path) -> PathBuf {
    dir.join(SOCKET)
}

/// Binds the control socket and serves it until `stop`; the task ends having removed it. Failing to bind (a data directory
/// path too long for a Unix socket, say) is logged, not fatal: only online backups need it.
pub fn serve(
    dir: &Path,
    store: Arc<Store>,
    mut stop: watch::Receiver<bool>,
) -> Option<tokio::task::JoinHandle<()>> {
    let path = socket_path(dir);
    // We hold sled's lock on the directory, so a socket file left here is a dead server's.
    let _ = std::fs::remove_file(&path);
    let listener = match tokio::net::UnixListener::bind(&path) {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "no control socket: `toron-server backup` needs the server stopped");
            return None;
        }
    };
    if let Err(e) = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)) {
        tracing::warn!(error = %e, "could not restrict the control socket to its owner");
    }
    let busy = Arc::new(AtomicBool::new(false));
    Some(tokio::spawn(async move {
        loop {
            let stream = tokio::select! {
                _ = async { let _ = stop.wait_for(|s| *s).await; } => break,
                accepted = listener.accept() => match accepted {
                    Ok((s, _)) => s,
                    Err(e) => {
                        tracing::warn!(error = %e, "control socket accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let (store, busy) = (store.clone(), busy.clone());
            let stream = match stream.into_std() {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "control socket stream");
                    continue;
                }
            };
            tokio::task::spawn_blocking(move || handle(stream, &store, &busy));
        }
        let _ = std::fs::remove_file(&path);
    }))
}

fn handle(stream: UnixStream, store: &Store, busy: &AtomicBool) {
    let setup = stream
        .set_nonblocking(false)
        .and_then(|_| stream.set_read_timeout(Some(IDLE)))
        .and_then(|_| stream.set_write_timeout(Some(IDLE)));
    if let Err(e) = setup {
        tracing::warn!(error = %e, "control socket stream");
        return;
    }
    let mut line = String::new();
    let read = BufReader::new((&stream).take(64)).read_line(&mut line);
    let mut out = &stream;
    match (read, line.trim()) {
        (Ok(_), "backup") => {
            if busy.swap(true, Ordering::SeqCst) {
                let _ = out.write_all(b"error: a backup is already being taken\n");
                return;
            }
            let started = std::time::Instant::now();
            match crate::ops::backup_file::write(store, out) {
                Ok(s) => tracing::info!(
                    records = s.header.records,
                    documents = s.documents,
                    bytes = s.bytes,
                    ms = started.elapsed().as_millis() as u64,
                    "backup sent"
                ),
                Err(e) => tracing::error!(error = %e, "backup failed"),
            }
            busy.store(false, Ordering::SeqCst);
        }
        (Ok(_), other) => {
            let _ = writeln!(out, "error: unknown request {other:?}");
        }
        (Err(e), _) => tracing::debug!(error = %e, "control socket: no request"),
    }
}

/// Asks the server running on `dir` for a backup and copies it into `out`. `Ok(false)` when
/// no server answers there (then the caller may open the directory itself).
pub fn request_backup(dir: &Path, out: &mut impl Write) -> anyhow::Result<bool> {
    let mut stream = match UnixStream::connect(socket_path(dir)) {
        Ok(s) => s,
        Err(_) => return Ok(false),
    };
    stream.set_read_timeout(Some(IDLE))?;
    stream.write_all(b"backup\n")?;
    let mut first = [0u8; MAGIC.len()];
    let mut got = 0;
    while got < first.len() {
        match stream.read(&mut first[got..])? {
            0 => break,
            n => got += n,
        }
    }
    if first[..got] != MAGIC[..got] || got < first.len() {
        let mut rest = Vec::new();
        let _ = (&mut stream).take(1024).read_to_end(&mut rest);
        let mut text = String::from_utf8_lossy(&first[..got]).into_owned();
        text.push_str(&String::from_utf8_lossy(&rest));
        let text = match text.trim() {
            "" => "it closed the connection without one",
            t => t,
        };
        anyhow::bail!(
            "the server did not send a backup: {}",
            text.strip_prefix("error: ").unwrap_or(text)
        );
    }
    out.write_all(&first)?;
    std::io::copy(&mut stream, out)?;
    Ok(true)
}

//! The office files that take typesetting — the PDF (typst) and the HWPX (its charts drawn by
//! resvg) — made in a child process with a memory and a time limit, one at a time, and kept
//! for the report version they were made of.
//!
//! What participants write reaches the typesetter, and typesetting costs far more memory than
//! the text (a report of 17.5 MiB of notes once took 3.5 GB and half a minute, in the server's
//! own process). So the server runs its own binary as `toron-server render-report` with the
//! render's inputs on stdin: the child limits its own data segment (`RLIMIT_DATA`) before it
//! reads them, the server kills it at the time limit, and either ends in a `503` that says
//! which limit the report passed — the server itself never grows. A render waits for the one
//! before it (a few may wait; more are told to come back). The same inputs give the same
//! bytes, so the last few files are kept by the SHA-256 of their inputs and served again.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use toron_domain::report::{Format, Lang};

use crate::api::render::{render, Part, RenderError};
pub use crate::config::TypesetLimits;

/// Renders waiting for the one in progress; more are answered 503 at once.
const MAX_WAITING: usize = 4;
/// Files kept for their inputs, and their bytes in all.
const CACHE_FILES: usize = 8;
const CACHE_BYTES: usize = 64 << 20;

/// What the child is given: exactly [`render`]'s inputs.
#[derive(Debug, Serialize, Deserialize)]
pub struct Job {
    pub bundle: serde_json::Value,
    pub session: Option<String>,
    pub department: Option<String>,
    pub format: Format,
    pub lang: Lang,
    pub base: String,
}

impl Job {
    /// Renders in this process.
    pub fn run(self) -> Result<Vec<u8>, RenderError> {
        let part = Part {
            session: self.session.as_deref(),
            department: self.department.as_deref(),
        };
        render(self.bundle, part, self.format, self.lang, &self.base)
    }
}

#[derive(Debug)]
pub struct Typesetter {
    limits: TypesetLimits,
    slot: tokio::sync::Semaphore,
    waiting: AtomicUsize,
    cache: Mutex<VecDeque<Kept>>,
}

/// A file kept, by the SHA-256 of its inputs.
type Kept = ([u8; 32], Arc<Vec<u8>>);

impl Typesetter {
    pub fn new(limits: TypesetLimits) -> Self {
        Self {
            limits,
            slot: tokio::sync::Semaphore::new(1),
            waiting: AtomicUsize::new(0),
            cache: Mutex::new(VecDeque::new()),
        }
    }

    /// The file for `job` (a typeset format): from the cache, or made now — in the child,
    /// within the limits, after the renders before it.
    pub async fn render(&self, job: Job) -> Result<Vec<u8>, RenderError> {
        let input = serde_json::to_vec(&job).map_err(|e| RenderError::Write(e.to_string()))?;
        let key: [u8; 32] = Sha256::digest(&input).into();
        if let Some(hit) = self.cached(&key) {
            return Ok(hit.to_vec());
        }
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= MAX_WAITING {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(RenderError::Busy(
                "다른 보고서 파일을 만드는 중입니다. 잠시 후 다시 받으세요 (the server is typesetting other reports; try again in a moment)".into(),
            ));
        }
        let permit = self.slot.acquire().await;
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        let _permit = permit.map_err(|e| RenderError::Write(e.to_string()))?;
        // Another request may have made it while this one waited.
        if let Some(hit) = self.cached(&key) {
            return Ok(hit.to_vec());
        }
        let bytes = match &self.limits.program {
            Some(program) => self.in_child(program, input).await?,
            None => tokio::task::spawn_blocking(move || job.run())
                .await
                .map_err(|e| RenderError::Write(e.to_string()))??,
        };
        self.keep(key, &bytes);
        Ok(bytes)
    }

    fn cached(&self, key: &[u8; 32]) -> Option<Arc<Vec<u8>>> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
    }

    fn keep(&self, key: [u8; 32], bytes: &[u8]) {
        if bytes.len() > CACHE_BYTES {
            return;
        }
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.push_back((key, Arc::new(bytes.to_vec())));
        while cache.len() > CACHE_FILES
            || cache.iter().map(|(_, v)| v.len()).sum::<usize>() > CACHE_BYTES
        {
            cache.pop_front();
        }
    }

    /// Runs `program render-report` with `input` on stdin; its stdout is the file.
    async fn in_child(&self, program: &PathBuf, input: Vec<u8>) -> Result<Vec<u8>, RenderError> {
        let mut child = tokio::process::Command::new(program)
            .arg("render-report")
            .arg("--max-bytes")
            .arg(self.limits.max_bytes.to_string())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| RenderError::Write(format!("could not start the typesetter: {e}")))?;
        let (Some(mut stdin), Some(mut stdout), Some(mut stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(RenderError::Write("the typesetter has no pipes".into()));
        };
        let work = async {
            let feed = async {
                // The child may end before reading everything (out of memory): not our error.
                let _ = stdin.write_all(&input).await;
                drop(stdin);
            };
            let mut out = Vec::new();
            let mut err = Vec::new();
            let (_, o, e) = tokio::join!(
                feed,
                stdout.read_to_end(&mut out),
                stderr.read_to_end(&mut err)
            );
            o.and(e).map_err(|e| RenderError::Write(e.to_string()))?;
            let status = child
                .wait()
                .await
                .map_err(|e| RenderError::Write(e.to_string()))?;
            Ok::<_, RenderError>((status, out, err))
        };
        let limit = self.limits.timeout;
        let (status, out, err) = match tokio::time::timeout(limit, work).await {
            Ok(r) => r?,
            Err(_) => {
                return Err(RenderError::Busy(format!(
                    "이 보고서는 {} 초 안에 만들 수 없습니다. 내용이 지나치게 많습니다 (typesetting passed its time limit of {} s)",
                    limit.as_secs(),
                    limit.as_secs()
                )))
            }
        };
        let said = String::from_utf8_lossy(&err).trim().to_string();
        match status.code() {
            Some(0) => Ok(out),
            Some(2) => Err(RenderError::Format(said)),
            Some(3) => Err(RenderError::Write(said)),
            _ => Err(RenderError::Busy(format!(
                "이 보고서는 메모리 한도({} MiB) 안에서 만들 수 없습니다. 내용이 지나치게 많습니다 (typesetting passed its memory limit{})",
                self.limits.max_bytes >> 20,
                if said.is_empty() { String::new() } else { format!(": {}", clip(&said)) }
            ))),
        }
    }
}

fn clip(s: &str) -> String {
    s.lines()
        .last()
        .unwrap_or_default()
        .chars()
        .take(200)
        .collect()
}

/// The child's side (`toron-server render-report`): limits its own data segment, reads a
/// [`Job`] from stdin, writes the file to stdout. Exit 2: the job is wrong (format, part);
/// 3: a writer failed (fonts missing); killed or aborted: a limit was passed.
pub fn child_main(max_bytes: u64) -> std::process::ExitCode {
    use std::process::ExitCode;
    if max_bytes > 0 {
        let limit = rustix::process::Rlimit {
            current: Some(max_bytes),
            maximum: Some(max_bytes),
        };
        if let Err(e) = rustix::process::setrlimit(rustix::process::Resource::Data, limit) {
            eprintln!("could not limit the typesetter's memory: {e}");
            return ExitCode::from(3);
        }
    }
    let mut input = Vec::new();
    if let Err(e) = std::io::stdin().read_to_end(&mut input) {
        eprintln!("{e}");
        return ExitCode::from(2);
    }
    let job: Job = match serde_json::from_slice(&input) {
        Ok(j) => j,
        Err(e) => {
            eprintln!("not a render job: {e}");
            return ExitCode::from(2);
        }
    };
    drop(input);
    match job.run() {
        Ok(bytes) => match std::io::stdout().write_all(&bytes) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(3)
            }
        },
        Err(RenderError::Format(m)) => {
            eprintln!("{m}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(3)
        }
    }
}

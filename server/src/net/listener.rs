//! Accepting TCP connections and serving HTTP/1.1 on them, with the bounds `axum::serve` does
//! not set: a deadline for a request's headers (which is also the idle time allowed between
//! requests on a kept-alive connection), a deadline for its body, and a cap on sockets that
//! are not WebSockets. Without them a client that sends a header byte every few seconds (or
//! opens sockets and sends nothing) holds a socket and a task for ever, until the server runs
//! out of file descriptors and nobody else can connect.
//!
//! WebSockets leave this module's accounting when they are upgraded: from then on
//! `http::upgrade`'s connection cap and the connection's pings bound them. Replays leave it
//! for their own ([`Streams`]): at most a few per token and a few dozen in all, so that no
//! reader's replays can take the places that requests and WebSocket handshakes need.

use std::collections::HashMap;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::Request;
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;
use futures_util::StreamExt;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};

use crate::metrics::{ErrorKind, Metrics};

/// What [`serve`] needs besides the listener and the app.
#[derive(Debug, Clone)]
pub struct HttpBounds {
    /// Headers must arrive within this; also the longest idle time between requests.
    pub header_timeout: Duration,
    /// Sockets served at once before the upgrade to a WebSocket.
    pub max_sockets: usize,
    pub metrics: Arc<Metrics>,
}

/// The sockets being served (before any upgrade), and which of them are only waiting for a
/// request. When all `max` are taken, a new socket takes the place of the one that has
/// waited longest without a request in progress — so that sockets opened and left idle (or
/// renewed just under the header deadline) cannot keep people out — and is turned away only
/// when every socket is in the middle of a request. A socket whose request turned into a
/// long-lived stream (a replay) leaves this count for the streams' own ([`Streams`]).
#[derive(Debug)]
pub struct SocketSlots {
    max: usize,
    table: Mutex<HashMap<u64, SlotState>>,
    next: AtomicU64,
}

#[derive(Debug)]
struct SlotState {
    /// Requests in progress on it (headers read, response not yet sent).
    busy: u32,
    /// Since when it has had none.
    idle_since: Instant,
    evict: Arc<Notify>,
}

/// One served socket's place among the [`SocketSlots`]; requests find it in their extensions.
#[derive(Debug, Clone)]
pub struct SocketSlot {
    id: u64,
    slots: Arc<SocketSlots>,
}

impl SocketSlots {
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            max: max.max(1),
            table: Mutex::new(HashMap::new()),
            next: AtomicU64::new(0),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, SlotState>> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A place for a new socket, taking one from the longest-idle socket when all are
    /// taken; `None` when every socket has a request in progress.
    fn admit(self: &Arc<Self>) -> Option<(SocketSlot, Arc<Notify>)> {
        let mut table = self.lock();
        if table.len() >= self.max {
            let oldest = table
                .iter()
                .filter(|(_, s)| s.busy == 0)
                .min_by_key(|(_, s)| s.idle_since)
                .map(|(id, _)| *id)?;
            if let Some(s) = table.remove(&oldest) {
                s.evict.notify_one();
            }
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let evict = Arc::new(Notify::new());
        table.insert(
            id,
            SlotState {
                busy: 0,
                idle_since: Instant::now(),
                evict: evict.clone(),
            },
        );
        Some((
            SocketSlot {
                id,
                slots: self.clone(),
            },
            evict,
        ))
    }

    /// Sockets counted now (tests and metrics).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl SocketSlot {
    /// A request's headers arrived on this socket.
    fn begin(&self) {
        if let Some(s) = self.slots.lock().get_mut(&self.id) {
            s.busy += 1;
        }
    }

    /// Its response was sent (its headers; a body may still stream).
    fn end(&self) {
        if let Some(s) = self.slots.lock().get_mut(&self.id) {
            s.busy = s.busy.saturating_sub(1);
            if s.busy == 0 {
                s.idle_since = Instant::now();
            }
        }
    }

    /// The request became a long-lived stream: the socket leaves the count (the stream is
    /// counted by [`Streams`]), never evicted while it streams.
    pub fn leave_for_stream(&self) {
        self.slots.lock().remove(&self.id);
    }

    fn release(&self) {
        self.slots.lock().remove(&self.id);
    }
}

/// Long-lived responses (replays) open now: at most `per_token` for one token and `max` in
/// all, apart from the sockets requests and handshakes need.
#[derive(Debug)]
pub struct Streams {
    per_token: usize,
    max: usize,
    open: Mutex<HashMap<String, usize>>,
}

/// One open stream, counted while it lives.
#[derive(Debug)]
pub struct StreamSlot {
    who: String,
    streams: Arc<Streams>,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.streams.lock();
        if let Some(n) = open.get_mut(&self.who) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.who);
            }
        }
    }
}

/// Why a stream was not opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamRefused {
    /// This token holds its `per_token` streams already.
    PerToken(usize),
    /// The server holds `max` streams.
    Full(usize),
}

impl Streams {
    pub fn new(per_token: usize, max: usize) -> Arc<Self> {
        Arc::new(Self {
            per_token: per_token.max(1),
            max: max.max(1),
            open: Mutex::new(HashMap::new()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts a stream for `who` (a participant; in open mode the caller's address).
    pub fn open(self: &Arc<Self>, who: &str) -> Result<StreamSlot, StreamRefused> {
        let mut open = self.lock();
        if open.values().sum::<usize>() >= self.max {
            return Err(StreamRefused::Full(self.max));
        }
        let n = open.entry(who.to_string()).or_insert(0);
        if *n >= self.per_token {
            return Err(StreamRefused::PerToken(self.per_token));
        }
        *n += 1;
        Ok(StreamSlot {
            who: who.to_string(),
            streams: self.clone(),
        })
    }
}

/// Serves `app` on `listener` until `stop` turns true; then stops accepting, lets every
/// request in progress finish (the caller bounds how long it waits) and returns.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    bounds: HttpBounds,
    mut stop: watch::Receiver<bool>,
) {
    let slots = SocketSlots::new(bounds.max_sockets);
    // Each connection task holds a receiver; `closed` resolves when the last one is gone.
    let (all_done, done) = watch::channel(());
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = async { let _ = stop.wait_for(|s| *s).await; } => break,
        };
        let tcp = match accepted {
            Ok((tcp, _)) => tcp,
            Err(e) => {
                // Out of file descriptors (or a socket reset before it was accepted): wait a
                // moment instead of spinning, as `axum::serve` does.
                tracing::debug!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some((slot, evicted)) = slots.admit() else {
            bounds.metrics.error(ErrorKind::over_capacity);
            drop(tcp);
            continue;
        };
        // Without TCP_NODELAY a small sync message can wait for the peer's delayed ACK (up to
        // 40 ms on Linux) before it leaves: the whole tail of a busy debate's fan-out.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
        let service = TowerToHyperService::new(Counted {
            inner: app.clone(),
            slot: slot.clone(),
        });
        let mut stop = stop.clone();
        let done = done.clone();
        let header_timeout = bounds.header_timeout;
        tokio::spawn(async move {
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(TokioTimer::new())
                .header_read_timeout(header_timeout);
            let mut conn = pin!(http
                .serve_connection(TokioIo::new(tcp), service)
                .with_upgrades());
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(error = %e, "HTTP connection ended");
                    }
                }
                // Its place was given to a newer socket while it waited for a request.
                () = evicted.notified() => {}
                () = async { let _ = stop.wait_for(|s| *s).await; } => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
            slot.release();
            drop(done);
        });
    }
    drop(done);
    all_done.closed().await;
}

/// The app, marking its socket busy while each request is handled, and giving the request
/// its socket's place (for a handler that turns it into a stream).
#[derive(Debug, Clone)]
struct Counted {
    inner: Router,
    slot: SocketSlot,
}

impl<B> tower_service::Service<axum::http::Request<B>> for Counted
where
    B: axum::body::HttpBody<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = Response;
    type Error = std::convert::Infallible;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Response, std::convert::Infallible>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        tower_service::Service::<axum::http::Request<B>>::poll_ready(&mut self.inner, cx)
    }

    fn call(&mut self, mut req: axum::http::Request<B>) -> Self::Future {
        let slot = self.slot.clone();
        slot.begin();
        req.extensions_mut().insert(slot.clone());
        let fut = tower_service::Service::call(&mut self.inner, req);
        Box::pin(async move {
            let r = fut.await;
            slot.end();
            r
        })
    }
}

/// Middleware: a request's body must have arrived `limit` after its headers, or reading it
/// fails (the handler answers 400 and the connection is closed). Lazy: nothing is read
/// before the handler asks, so routes that check a token first still do.
pub async fn body_deadline(limit: Duration, req: Request, next: Next) -> Response {
    let has_body = req.headers().contains_key(header::TRANSFER_ENCODING)
        || req
            .headers()
            .get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0");
    if !has_body {
        return next.run(req).await;
    }
    let deadline = tokio::time::Instant::now() + limit;
    let (parts, body) = req.into_parts();
    let timed =
        futures_util::stream::unfold(Some(body.into_data_stream()), move |stream| async move {
            let mut stream = stream?;
            match tokio::time::timeout_at(deadline, stream.next()).await {
                Ok(Some(item)) => Some((item, Some(stream))),
                Ok(None) => None,
                Err(_) => Some((
                    Err(axum::Error::new(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!(
                            "the request body did not arrive within {} s",
                            limit.as_secs()
                        ),
                    ))),
                    None,
                )),
            }
        });
    next.run(Request::from_parts(parts, Body::from_stream(timed)))
        .await
}

//! Accepting TCP connections and serving HTTP/1.1 on them, with the bounds `axum::serve` does
//! not set: a deadline for a request's headers (which is also the idle time allowed between
//! requests on a kept-alive connection), a deadline for its body, and a cap on sockets that
//! are not WebSockets. Without them a client that sends a header byte every few seconds (or
//! opens sockets and sends nothing) holds a socket and a task for ever, until the server runs
//! out of file descriptors and nobody else can connect.
//!
//! WebSockets leave this module's accounting when they are upgraded: from then on
//! `http::upgrade`'s connection cap and the connection's pings bound them.

use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

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
use tokio::sync::{watch, Semaphore};

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

/// Serves `app` on `listener` until `stop` turns true; then stops accepting, lets every
/// request in progress finish (the caller bounds how long it waits) and returns.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    bounds: HttpBounds,
    mut stop: watch::Receiver<bool>,
) {
    let sockets = Arc::new(Semaphore::new(bounds.max_sockets.max(1)));
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
        let Ok(permit) = sockets.clone().try_acquire_owned() else {
            bounds.metrics.error(ErrorKind::over_capacity);
            drop(tcp);
            continue;
        };
        // Without TCP_NODELAY a small sync message can wait for the peer's delayed ACK (up to
        // 40 ms on Linux) before it leaves: the whole tail of a busy debate's fan-out.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
        let service = TowerToHyperService::new(app.clone());
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
                () = async { let _ = stop.wait_for(|s| *s).await; } => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
            drop(permit);
            drop(done);
        });
    }
    drop(done);
    all_done.closed().await;
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

//! The attacks of the first red-team pass (issue 15), each in a loop with its own
//! participant's token: takeover, peer ids, invalid ids, import bodies, replays, partial
//! frames, non-readers, repeated requests and ephemeral messages.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use toron_cli::sync_client::url_with_token;
use toron_protocol::{Message, PeerId};
use toron_tests::RawPeer;

use super::{case_id, http_addr, invalid_id_frame, join, repeat, request, Attack, Counts, SESSION};

/// Starts every attack; they run until `stop`.
pub(crate) fn attacks(
    url: &str,
    tokens: &std::collections::HashMap<&'static str, String>,
    stop: &Arc<AtomicBool>,
    counts: &Arc<Counts>,
    counts2: &Arc<super::round2::Counts2>,
    only: &[String],
) -> Vec<tokio::task::JoinHandle<()>> {
    let on = |name: &str| only.is_empty() || only.iter().any(|o| o == name);
    let tok = |who: &str| tokens.get(who).cloned().unwrap_or_default();
    let all: [Attack; 9] = [
        attack_takeover,
        attack_peerid,
        attack_invalid,
        attack_import,
        attack_replay,
        attack_partial,
        attack_silent,
        attack_ephemeral,
        attack_again,
    ];
    let mut tasks: Vec<_> = all
        .iter()
        .flat_map(|attack| attack(url, &tok, &on, stop, counts))
        .collect();
    tasks.extend(super::round2::start(url, &tok, &on, stop, counts2, counts));
    tasks
}

/// Takeover: the observer joins with the facilitator's peer id, twenty times a second.
fn attack_takeover(
    url: &str,
    tok: &dyn Fn(&str) -> String,
    on: &dyn Fn(&str) -> bool,
    stop: &Arc<AtomicBool>,
    counts: &Arc<Counts>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    if on("takeover") {
        let (url, c) = (
            url_with_token(url, Some(&tok("P-takeover"))),
            counts.clone(),
        );
        tasks.push(tokio::spawn(repeat(
            stop.clone(),
            c.clone(),
            Duration::from_millis(50),
            move || {
                let (url, c) = (url.clone(), c.clone());
                async move {
                    let mut p = RawPeer::connect(&url).await?;
                    p.send(&join("chair-tab")?).await?;
                    match p.recv(Duration::from_secs(5)).await? {
                        Some(Message::Error { .. }) | None => {
                            c.takeover_refused.fetch_add(1, Ordering::Relaxed)
                        }
                        Some(_) => c.takeover_accepted.fetch_add(1, Ordering::Relaxed),
                    };
                    Ok(())
                }
            },
        )));
    }
    tasks
}

/// Peer ids of 200 KB.
fn attack_peerid(
    url: &str,
    tok: &dyn Fn(&str) -> String,
    on: &dyn Fn(&str) -> bool,
    stop: &Arc<AtomicBool>,
    counts: &Arc<Counts>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    if on("peerid") {
        let (url, c) = (url_with_token(url, Some(&tok("P-peerid"))), counts.clone());
        let long = "p".repeat(200_000);
        tasks.push(tokio::spawn(repeat(
            stop.clone(),
            c.clone(),
            Duration::from_millis(50),
            move || {
                let (url, c, long) = (url.clone(), c.clone(), long.clone());
                async move {
                    let mut p = RawPeer::connect(&url).await?;
                    p.send(&join(&long)?).await?;
                    if let Ok(toron_tests::Ending::Error(_)) =
                        p.ending(Duration::from_secs(5)).await
                    {
                        c.long_peer_ids_refused.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(())
                }
            },
        )));
    }
    tasks
}

/// Invalid document ids of 64 KiB, a hundred a connection (then it is closed).
fn attack_invalid(
    url: &str,
    tok: &dyn Fn(&str) -> String,
    on: &dyn Fn(&str) -> bool,
    stop: &Arc<AtomicBool>,
    counts: &Arc<Counts>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    if on("invalid") {
        let (url, c) = (url_with_token(url, Some(&tok("P-invalid"))), counts.clone());
        let frame = invalid_id_frame(&format!("{}\nforged line", "x".repeat(64 * 1024)));
        tasks.push(tokio::spawn(repeat(
            stop.clone(),
            c.clone(),
            Duration::from_millis(200),
            move || {
                let (url, c, frame) = (url.clone(), c.clone(), frame.clone());
                async move {
                    let mut p = RawPeer::joined(&url, "invalid").await?;
                    for _ in 0..120 {
                        if p.send_bytes(frame.clone()).await.is_err() {
                            break;
                        }
                        c.invalid_id_messages.fetch_add(1, Ordering::Relaxed);
                    }
                    if let Ok(toron_tests::Ending::Error(_)) =
                        p.ending(Duration::from_secs(5)).await
                    {
                        c.invalid_id_connections_closed
                            .fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(())
                }
            },
        )));
    }
    tasks
}

/// Headers of a 60 MB import: without a token, and with a reader's.
fn attack_import(
    url: &str,
    tok: &dyn Fn(&str) -> String,
    on: &dyn Fn(&str) -> bool,
    stop: &Arc<AtomicBool>,
    counts: &Arc<Counts>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    for token in [None, Some(tok("P-import"))]
        .into_iter()
        .filter(|_| on("import"))
    {
        let (addr, c) = (http_addr(url), counts.clone());
        tasks.push(tokio::spawn(repeat(stop.clone(), c.clone(), Duration::from_millis(20), move || {
            let (addr, c, token) = (addr.clone(), c.clone(), token.clone());
            async move {
                let mut tcp = tokio::net::TcpStream::connect(&addr).await?;
                let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
                tcp.write_all(format!("POST /api/v1/import HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\nContent-Length: 60000000\r\n\r\n").as_bytes()).await?;
                let mut buf = [0u8; 512];
                match tokio::time::timeout(Duration::from_secs(3), tcp.read(&mut buf)).await {
                    Ok(Ok(n)) if n > 0 => c.import_heads_answered.fetch_add(1, Ordering::Relaxed),
                    _ => c.import_heads_unanswered.fetch_add(1, Ordering::Relaxed),
                };
                Ok(())
            }
        })));
    }
    tasks
}

/// Slow replays, opened and abandoned after their first bytes; and a speed that panicked.
fn attack_replay(
    url: &str,
    tok: &dyn Fn(&str) -> String,
    on: &dyn Fn(&str) -> bool,
    stop: &Arc<AtomicBool>,
    counts: &Arc<Counts>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    if on("replay") {
        let (addr, token, c) = (http_addr(url), tok("P-replay"), counts.clone());
        tasks.push(tokio::spawn(repeat(stop.clone(), c.clone(), Duration::from_millis(100), move || {
            let (addr, c, token) = (addr.clone(), c.clone(), token.clone());
            async move {
                for (speed, abandon) in [("0.1", true), ("1e-300", false)] {
                    let mut tcp = tokio::net::TcpStream::connect(&addr).await?;
                    tcp.write_all(format!("GET /api/v1/sessions/{SESSION}/replay?speed={speed}&from=0 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n").as_bytes()).await?;
                    let mut buf = [0u8; 512];
                    let n = tokio::time::timeout(Duration::from_secs(3), tcp.read(&mut buf)).await??;
                    let head = String::from_utf8_lossy(&buf[..n]);
                    if abandon && head.contains(" 200 ") {
                        c.replays_abandoned.fetch_add(1, Ordering::Relaxed);
                    } else if !abandon && head.contains(" 400 ") {
                        c.replay_speeds_refused.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Ok(())
            }
        })));
    }
    tasks
}

/// One token's 32 connections, each holding all but the last bytes of a largest message
/// (the default 4 MiB); again when let go.
fn attack_partial(
    url: &str,
    tok: &dyn Fn(&str) -> String,
    on: &dyn Fn(&str) -> bool,
    stop: &Arc<AtomicBool>,
    counts: &Arc<Counts>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    for i in (0..32).filter(|_| on("partial")) {
        let (url, c) = (url_with_token(url, Some(&tok("P-partial"))), counts.clone());
        tasks.push(tokio::spawn(repeat(
            stop.clone(),
            c.clone(),
            Duration::from_millis(500),
            move || {
                let (url, c) = (url.clone(), c.clone());
                async move {
                    let addr = http_addr(&url);
                    let addr = addr
                        .split(['/', '?'])
                        .next()
                        .unwrap_or_default()
                        .to_string();
                    let tcp = tokio::net::TcpStream::connect(&addr).await?;
                    let (mut ws, _) = tokio_tungstenite::client_async(url.as_str(), tcp).await?;
                    let len: u64 = 4 * 1024 * 1024;
                    let mut head = vec![0x82u8, 0xFF];
                    head.extend_from_slice(&len.to_be_bytes());
                    head.extend_from_slice(&[1, 2, 3, 4]);
                    let tcp = ws.get_mut();
                    tcp.write_all(&head).await?;
                    let chunk = vec![0x5Au8 ^ (i as u8); (1 << 20) - 1];
                    for _ in 0..4 {
                        tcp.write_all(&chunk).await?;
                        c.partial_frame_bytes
                            .fetch_add(chunk.len() as u64, Ordering::Relaxed);
                    }
                    c.partial_frames_held.fetch_add(1, Ordering::Relaxed);
                    // Hold it until the server lets the connection go.
                    let mut buf = [0u8; 4096];
                    while tcp.read(&mut buf).await? > 0 {}
                    Ok(())
                }
            },
        )));
    }
    tasks
}

/// Four connections that ask for the 1 MiB case and never read.
fn attack_silent(
    url: &str,
    tok: &dyn Fn(&str) -> String,
    on: &dyn Fn(&str) -> bool,
    stop: &Arc<AtomicBool>,
    counts: &Arc<Counts>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    for i in (0..4).filter(|_| on("silent")) {
        let (url, c) = (url_with_token(url, Some(&tok("P-silent"))), counts.clone());
        tasks.push(tokio::spawn(repeat(
            stop.clone(),
            c.clone(),
            Duration::from_millis(500),
            move || {
                let (url, c) = (url.clone(), c.clone());
                async move {
                    let peer = format!("silent-{i}");
                    let mut p = RawPeer::connect_small_buffer(&url).await?;
                    p.send(&join(&peer)?).await?;
                    p.send(&request(&peer)?).await?;
                    c.non_readers.fetch_add(1, Ordering::Relaxed);
                    // Never read, nor send: held to the end (the server lets it go when a
                    // write to it passes its deadline).
                    tokio::time::sleep(Duration::from_secs(24 * 3600)).await;
                    drop(p);
                    Ok(())
                }
            },
        )));
    }
    tasks
}

/// Ephemeral messages on the case, each with a new largest `sessionId` (the server keeps
/// one entry per sender and session), then one over the bound.
fn attack_ephemeral(
    url: &str,
    tok: &dyn Fn(&str) -> String,
    on: &dyn Fn(&str) -> bool,
    stop: &Arc<AtomicBool>,
    counts: &Arc<Counts>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    if on("ephemeral") {
        let (url, c) = (
            url_with_token(url, Some(&tok("P-ephemeral"))),
            counts.clone(),
        );
        tasks.push(tokio::spawn(repeat(
            stop.clone(),
            c.clone(),
            Duration::from_millis(200),
            move || {
                let (url, c) = (url.clone(), c.clone());
                async move {
                    let mut p = RawPeer::joined(&url, "ephemeral").await?;
                    p.send(&request("ephemeral")?).await?;
                    let _ = p.recv(Duration::from_secs(10)).await?;
                    let stamp = c.ephemeral_sent.load(Ordering::Relaxed);
                    for n in 0..1_000u64 {
                        let session = format!("{:0>256}", stamp + n);
                        // (256 bytes: the longest the server takes.)
                        p.send(&Message::Ephemeral {
                            sender_id: PeerId::new("ephemeral")?,
                            target_id: PeerId::new("server")?,
                            document_id: case_id(),
                            count: 1,
                            session_id: session,
                            data: vec![0xa0],
                        })
                        .await?;
                        c.ephemeral_sent.fetch_add(1, Ordering::Relaxed);
                    }
                    p.send(&Message::Ephemeral {
                        sender_id: PeerId::new("ephemeral")?,
                        target_id: PeerId::new("server")?,
                        document_id: case_id(),
                        count: 2,
                        session_id: "s".repeat(1 << 20),
                        data: vec![0xa0],
                    })
                    .await?;
                    if let Ok(toron_tests::Ending::Error(_)) =
                        p.ending(Duration::from_secs(5)).await
                    {
                        c.long_session_ids_refused.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(())
                }
            },
        )));
    }
    tasks
}

/// The case asked for again and again on one connection.
fn attack_again(
    url: &str,
    tok: &dyn Fn(&str) -> String,
    on: &dyn Fn(&str) -> bool,
    stop: &Arc<AtomicBool>,
    counts: &Arc<Counts>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    if on("again") {
        let (url, c) = (url_with_token(url, Some(&tok("P-again"))), counts.clone());
        tasks.push(tokio::spawn(repeat(
            stop.clone(),
            c.clone(),
            Duration::from_millis(500),
            move || {
                let (url, c) = (url.clone(), c.clone());
                async move {
                    let mut p = RawPeer::joined(&url, "again").await?;
                    for _ in 0..10 {
                        if p.send(&request("again")?).await.is_err() {
                            break;
                        }
                        c.repeated_requests.fetch_add(1, Ordering::Relaxed);
                        // (What the flood's audience hears reaches this subscriber too.)
                        let answer = loop {
                            match p.recv(Duration::from_secs(10)).await {
                                Ok(Some(Message::Ephemeral { .. })) => continue,
                                other => break other,
                            }
                        };
                        match answer {
                            Ok(Some(Message::Sync { .. })) => {
                                c.repeated_request_answers.fetch_add(1, Ordering::Relaxed);
                            }
                            _ => break,
                        }
                    }
                    Ok(())
                }
            },
        )));
    }
    tasks
}

//! The attacks of the second red-team pass (issue 29), run with the first pass's:
//! - *flood*: an audience of twenty holds the case open while an observer sends ephemeral
//!   messages of 3.5 MiB (each closes its connection) and floods the largest allowed ones;
//! - *bomb*: an activist's sync messages carrying a compressed change that inflates to 32 MiB;
//! - *bloat*: an activist writes notes of 5,000 characters (the most a note holds) into the
//!   example series while its organizer asks for the PDF report again and again;
//! - *streams*: an observer holds sixteen replays open at once;
//! - *squat*: the chair's phone drops and comes back while an observer joins with its peer id;
//! - and a newcomer joins and syncs the case every half second throughout (each must get in).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ReadDoc, ROOT};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use toron_cli::sync_client::{url_with_token, Connection, DocSync};
use toron_domain::policy::DocKey;
use toron_protocol::{Message, PeerId};
use toron_tests::RawPeer;

use super::{case_id, join, note, repeat, request};

/// What the second pass's attacks managed, counted as they go.
#[derive(Debug, Default)]
pub(crate) struct Counts2 {
    pub(crate) flood_sent: AtomicU64,
    pub(crate) flood_large_closed: AtomicU64,
    pub(crate) audience_bytes: AtomicU64,
    pub(crate) bombs_sent: AtomicU64,
    pub(crate) bombs_refused: AtomicU64,
    pub(crate) bloat_notes: AtomicU64,
    pub(crate) pdf_ok: AtomicU64,
    pub(crate) pdf_refused: AtomicU64,
    pub(crate) streams_open: AtomicU64,
    pub(crate) streams_refused: AtomicU64,
    pub(crate) squats_refused: AtomicU64,
    pub(crate) squats_accepted: AtomicU64,
    pub(crate) phone_back: AtomicU64,
    pub(crate) phone_kept_out: AtomicU64,
    pub(crate) newcomers_in: AtomicU64,
    pub(crate) newcomers_failed: AtomicU64,
}

/// The people of the second pass: (participant, role in the attack session).
pub(crate) const PEOPLE: [(&str, &str); 7] = [
    ("P-audience", "observer"),
    ("P-flood", "observer"),
    ("P-bomb", "activist"),
    ("P-streams", "observer"),
    ("P-phone", "facilitator"),
    ("P-squat", "observer"),
    ("P-newcomer", "activist"),
];

fn ephemeral(peer: &str, count: u64, bytes: usize) -> anyhow::Result<Message> {
    Ok(Message::Ephemeral {
        sender_id: PeerId::new(peer)?,
        target_id: PeerId::new("server")?,
        document_id: case_id(),
        count,
        session_id: format!("{peer}-session"),
        data: vec![0x61; bytes],
    })
}

/// Starts every attack of the second pass that `on` names; they run until `stop`.
pub(crate) fn start(
    url: &str,
    tok: &dyn Fn(&str) -> String,
    on: &dyn Fn(&str) -> bool,
    stop: &Arc<AtomicBool>,
    c: &Arc<Counts2>,
    errors: &Arc<super::Counts>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    if on("flood") {
        tasks.extend(flood(url, tok, stop, c, errors));
    }
    if on("bomb") {
        tasks.push(bomb(url, tok, stop, c, errors));
    }
    if on("bloat") {
        tasks.extend(bloat(url, &tok("P-KIM"), stop, c, errors));
    }
    if on("streams") {
        tasks.push(streams(url, tok, stop, c, errors));
    }
    if on("squat") {
        tasks.push(squat(url, tok, stop, c, errors));
    }
    // The newcomer always runs: joining must work whatever else goes on.
    tasks.push(newcomer(url, tok, stop, c, errors));
    tasks
}

/// Twenty people hold the case open and read; an observer sends 3.5 MiB ephemeral messages
/// (each closes its connection) and floods 16 KiB ones as fast as it can.
fn flood(
    url: &str,
    tok: &dyn Fn(&str) -> String,
    stop: &Arc<AtomicBool>,
    c: &Arc<Counts2>,
    errors: &Arc<super::Counts>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    let audience = url_with_token(url, Some(&tok("P-audience")));
    for i in 0..20 {
        let (url, c, stop) = (audience.clone(), c.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let peer = format!("audience-{i}");
            let Ok(mut p) = RawPeer::joined(&url, &peer).await else {
                return;
            };
            let Ok(req) = request(&peer) else { return };
            if p.send(&req).await.is_err() {
                return;
            }
            while !stop.load(Ordering::Relaxed) {
                match p.recv(Duration::from_secs(1)).await {
                    Ok(Some(Message::Ephemeral { data, .. })) => {
                        c.audience_bytes
                            .fetch_add(data.len() as u64, Ordering::Relaxed);
                    }
                    Ok(_) => {}
                    Err(_) => return,
                }
            }
        }));
    }
    let flooder = url_with_token(url, Some(&tok("P-flood")));
    let (url2, c2) = (flooder.clone(), c.clone());
    tasks.push(tokio::spawn(repeat(
        stop.clone(),
        errors.clone(),
        Duration::from_millis(100),
        move || {
            let (url, c) = (url2.clone(), c2.clone());
            async move {
                let mut p = RawPeer::joined(&url, "flood-big").await?;
                p.send(&request("flood-big")?).await?;
                let _ = p.recv(Duration::from_secs(10)).await?;
                p.send(&ephemeral("flood-big", 1, 3_500_000)?).await?;
                if let Ok(toron_tests::Ending::Error(_)) = p.ending(Duration::from_secs(5)).await {
                    c.flood_large_closed.fetch_add(1, Ordering::Relaxed);
                }
                Ok(())
            }
        },
    )));
    let c3 = c.clone();
    tasks.push(tokio::spawn(repeat(
        stop.clone(),
        errors.clone(),
        Duration::from_millis(10),
        move || {
            let (url, c) = (flooder.clone(), c3.clone());
            async move {
                let mut p = RawPeer::joined(&url, "flood").await?;
                p.send(&request("flood")?).await?;
                let _ = p.recv(Duration::from_secs(10)).await?;
                let from = c.flood_sent.load(Ordering::Relaxed) * 2 + 1;
                for n in 0..2_000u64 {
                    p.send(&ephemeral("flood", from + n, 16 * 1024)?).await?;
                    c.flood_sent.fetch_add(1, Ordering::Relaxed);
                }
                Ok(())
            }
        },
    )));
    tasks
}

/// A first sync of the activist's own (empty) layer whose one change, compressed, is a few
/// dozen kilobytes and 32 MiB once inflated.
fn bomb_message() -> anyhow::Result<Vec<u8>> {
    let mut d = AutoCommit::new();
    d.put(ROOT, "schema", "notes/1")?;
    d.put(ROOT, "x", "a".repeat(32 << 20))?;
    d.commit();
    let mut change = d
        .get_changes(&[])
        .into_iter()
        .next()
        .ok_or_else(|| anyhow::anyhow!("no change"))?
        .clone();
    let message = automerge::sync::Message {
        heads: d.get_heads(),
        need: Vec::new(),
        have: Vec::new(),
        changes: vec![change.bytes().to_vec()].into(),
        flags: None,
        version: automerge::sync::MessageVersion::V1,
    };
    Ok(message.encode())
}

fn bomb(
    url: &str,
    tok: &dyn Fn(&str) -> String,
    stop: &Arc<AtomicBool>,
    c: &Arc<Counts2>,
    errors: &Arc<super::Counts>,
) -> tokio::task::JoinHandle<()> {
    let url = url_with_token(url, Some(&tok("P-bomb")));
    let c = c.clone();
    let layer = DocKey::Notes {
        session: super::SESSION.into(),
        participant: "P-bomb".into(),
    }
    .document_id();
    let message = bomb_message().unwrap_or_default();
    tokio::spawn(repeat(
        stop.clone(),
        errors.clone(),
        Duration::from_millis(200),
        move || {
            let (url, c, message) = (url.clone(), c.clone(), message.clone());
            async move {
                let mut p = RawPeer::joined(&url, "bomb").await?;
                p.send(&Message::Sync {
                    sender_id: PeerId::new("bomb")?,
                    target_id: PeerId::new("server")?,
                    document_id: layer,
                    data: message,
                })
                .await?;
                c.bombs_sent.fetch_add(1, Ordering::Relaxed);
                if let Ok(toron_tests::Ending::Error(e)) = p.ending(Duration::from_secs(10)).await {
                    if e.contains("inflated") {
                        c.bombs_refused.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Ok(())
            }
        },
    ))
}

/// The example series' activist writes the longest notes a note may hold, ten a second, while
/// the series' organizer asks for its PDF report every two seconds.
fn bloat(
    url: &str,
    kim: &str,
    stop: &Arc<AtomicBool>,
    c: &Arc<Counts2>,
    errors: &Arc<super::Counts>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    let (writer_url, kim, c1) = (url.to_string(), kim.to_string(), c.clone());
    tasks.push(tokio::spawn(repeat(
        stop.clone(),
        errors.clone(),
        Duration::from_millis(100),
        move || {
            let (url, kim, c) = (writer_url.clone(), kim.clone(), c1.clone());
            async move {
                let mut conn =
                    Connection::connect(&url_with_token(&url, Some(&kim)), super::LIMIT).await?;
                let key = DocKey::Notes {
                    session: "S-LIB".into(),
                    participant: "P-KIM".into(),
                };
                let mut d: DocSync = conn.find(key.document_id(), super::LIMIT).await?;
                for _ in 0..50 {
                    let n = c.bloat_notes.fetch_add(1, Ordering::Relaxed);
                    let body = super::text(5_000, n as u32);
                    let anns = match d.doc.get(ROOT, "annotations")? {
                        Some((_, a)) => a,
                        None => d
                            .doc
                            .put_object(ROOT, "annotations", automerge::ObjType::Map)?,
                    };
                    toron_protocol::json::put_json(
                        &mut d.doc,
                        &anns,
                        format!("bloat-{n:08}").into(),
                        &json!({ "session": "S-LIB", "kind": "comment", "body": body }),
                    )?;
                    d.doc.commit();
                    conn.push(&mut d, super::LIMIT).await?;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Ok(())
            }
        },
    )));
    let (addr, c2) = (super::http_addr(url), c.clone());
    tasks.push(tokio::spawn(repeat(
        stop.clone(),
        errors.clone(),
        Duration::from_secs(2),
        move || {
            let (addr, c) = (addr.clone(), c2.clone());
            async move {
                let mut tcp = tokio::net::TcpStream::connect(&addr).await?;
                tcp.write_all(
                    format!(
                        "GET /api/v1/reports/HB-BENCH-2012?format=pdf HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
                        super::ADMIN
                    )
                    .as_bytes(),
                )
                .await?;
                let mut answer = Vec::new();
                tokio::time::timeout(Duration::from_secs(180), tcp.read_to_end(&mut answer))
                    .await??;
                if answer.starts_with(b"HTTP/1.1 200") {
                    c.pdf_ok.fetch_add(1, Ordering::Relaxed);
                } else {
                    c.pdf_refused.fetch_add(1, Ordering::Relaxed);
                }
                Ok(())
            }
        },
    )));
    tasks
}

/// Sixteen replays held open at once by one observer (four are let through; the rest are
/// refused at once), opened again as they end.
fn streams(
    url: &str,
    tok: &dyn Fn(&str) -> String,
    stop: &Arc<AtomicBool>,
    c: &Arc<Counts2>,
    errors: &Arc<super::Counts>,
) -> tokio::task::JoinHandle<()> {
    let (addr, token, c) = (super::http_addr(url), tok("P-streams"), c.clone());
    tokio::spawn(repeat(
        stop.clone(),
        errors.clone(),
        Duration::from_millis(500),
        move || {
            let (addr, token, c) = (addr.clone(), token.clone(), c.clone());
            async move {
                let mut held = Vec::new();
                for _ in 0..16 {
                    let mut tcp = tokio::net::TcpStream::connect(&addr).await?;
                    tcp.write_all(
                        format!(
                            "GET /api/v1/sessions/{}/replay?speed=0.1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n",
                            super::SESSION
                        )
                        .as_bytes(),
                    )
                    .await?;
                    let mut head = [0u8; 12];
                    let n =
                        tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut head)).await??;
                    if head[..n].starts_with(b"HTTP/1.1 200") {
                        c.streams_open.fetch_add(1, Ordering::Relaxed);
                        held.push(tcp);
                    } else {
                        c.streams_refused.fetch_add(1, Ordering::Relaxed);
                    }
                }
                tokio::time::sleep(Duration::from_secs(5)).await;
                drop(held);
                Ok(())
            }
        },
    ))
}

/// The chair's phone: joins, drops, comes back; between, an observer joins with its peer id.
fn squat(
    url: &str,
    tok: &dyn Fn(&str) -> String,
    stop: &Arc<AtomicBool>,
    c: &Arc<Counts2>,
    errors: &Arc<super::Counts>,
) -> tokio::task::JoinHandle<()> {
    let phone = url_with_token(url, Some(&tok("P-phone")));
    let squatter = url_with_token(url, Some(&tok("P-squat")));
    let c = c.clone();
    tokio::spawn(repeat(
        stop.clone(),
        errors.clone(),
        Duration::from_millis(500),
        move || {
            let (phone, squatter, c) = (phone.clone(), squatter.clone(), c.clone());
            async move {
                let p = RawPeer::joined(&phone, "phone-of-the-chair").await?;
                drop(p);
                tokio::time::sleep(Duration::from_millis(100)).await;
                let mut s = RawPeer::connect(&squatter).await?;
                s.send(&join("phone-of-the-chair")?).await?;
                match s.recv(Duration::from_secs(5)).await {
                    Ok(Some(Message::Peer { .. })) => {
                        c.squats_accepted.fetch_add(1, Ordering::Relaxed)
                    }
                    _ => c.squats_refused.fetch_add(1, Ordering::Relaxed),
                };
                match RawPeer::joined(&phone, "phone-of-the-chair").await {
                    Ok(_) => c.phone_back.fetch_add(1, Ordering::Relaxed),
                    Err(e) => {
                        note(&e);
                        c.phone_kept_out.fetch_add(1, Ordering::Relaxed)
                    }
                };
                Ok(())
            }
        },
    ))
}

/// Somebody new joins every half second and gets the case within five seconds.
fn newcomer(
    url: &str,
    tok: &dyn Fn(&str) -> String,
    stop: &Arc<AtomicBool>,
    c: &Arc<Counts2>,
    errors: &Arc<super::Counts>,
) -> tokio::task::JoinHandle<()> {
    let url = url_with_token(url, Some(&tok("P-newcomer")));
    let c = c.clone();
    let n = Arc::new(AtomicU64::new(0));
    tokio::spawn(repeat(
        stop.clone(),
        errors.clone(),
        Duration::from_millis(500),
        move || {
            let (url, c, n) = (url.clone(), c.clone(), n.clone());
            async move {
                let peer = format!("newcomer-{}", n.fetch_add(1, Ordering::Relaxed));
                let got = async {
                    let mut p = RawPeer::joined(&url, &peer).await?;
                    p.send(&request(&peer)?).await?;
                    loop {
                        if let Some(Message::Sync { .. }) = p.recv(Duration::from_secs(5)).await? {
                            return Ok::<_, anyhow::Error>(());
                        }
                    }
                };
                match tokio::time::timeout(Duration::from_secs(5), got).await {
                    Ok(Ok(())) => c.newcomers_in.fetch_add(1, Ordering::Relaxed),
                    Ok(Err(e)) => {
                        note(&e);
                        c.newcomers_failed.fetch_add(1, Ordering::Relaxed)
                    }
                    Err(_) => c.newcomers_failed.fetch_add(1, Ordering::Relaxed),
                };
                Ok(())
            }
        },
    ))
}

/// The second pass's part of the report, and whether it passed.
pub(crate) fn report(c: &Counts2, only: &[String]) -> (serde_json::Value, bool) {
    let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let ran = |name: &str| only.is_empty() || only.iter().any(|o| o == name);
    let ok = get(&c.squats_accepted) == 0
        && get(&c.phone_kept_out) == 0
        && get(&c.newcomers_failed) == 0
        && get(&c.newcomers_in) > 0
        && (!ran("bomb") || get(&c.bombs_refused) > 0)
        && (!ran("streams") || get(&c.streams_refused) > 0)
        && (!ran("flood") || get(&c.flood_large_closed) > 0);
    (
        json!({
            "ephemeral_flood_sent": get(&c.flood_sent),
            "ephemeral_3_5_mib_closed": get(&c.flood_large_closed),
            "ephemeral_bytes_heard_by_the_audience": get(&c.audience_bytes),
            "compression_bombs_sent": get(&c.bombs_sent),
            "compression_bombs_refused": get(&c.bombs_refused),
            "bloat_notes_written": get(&c.bloat_notes),
            "pdf_made": get(&c.pdf_ok),
            "pdf_refused_503": get(&c.pdf_refused),
            "replays_open": get(&c.streams_open),
            "replays_refused_429": get(&c.streams_refused),
            "squats_refused": get(&c.squats_refused),
            "squats_accepted": get(&c.squats_accepted),
            "phone_back": get(&c.phone_back),
            "phone_kept_out": get(&c.phone_kept_out),
            "newcomers_in": get(&c.newcomers_in),
            "newcomers_failed": get(&c.newcomers_failed),
        }),
        ok,
    )
}

//! `toron history`, `toron at`, `toron diff`: the event log through `/api/v1/documents/…`.

use anyhow::{bail, Context};
use serde_json::Value;
use unicode_width::UnicodeWidthStr;

use crate::admin::Admin;

/// `1790000000000`, or RFC 3339 (`2026-11-26T17:30:00+09:00`) → UTC milliseconds.
pub fn parse_time(s: &str) -> anyhow::Result<u64> {
    if let Ok(ms) = s.parse::<u64>() {
        return Ok(ms);
    }
    let t = chrono::DateTime::parse_from_rfc3339(s).with_context(|| {
        format!("`{s}` is neither milliseconds nor an RFC 3339 time like 2026-11-26T17:30:00+09:00")
    })?;
    u64::try_from(t.timestamp_millis()).context("a time before 1970")
}

/// UTC milliseconds → RFC 3339 in Korea Standard Time (the debates' clock).
pub fn show_time(ms: u64) -> String {
    let Some(t) = chrono::DateTime::from_timestamp_millis(ms as i64) else {
        return ms.to_string();
    };
    match chrono::FixedOffset::east_opt(9 * 3600) {
        Some(kst) => t
            .with_timezone(&kst)
            .format("%Y-%m-%d %H:%M:%S%.3f")
            .to_string(),
        None => t.to_rfc3339(),
    }
}

fn doc_path(url: &str) -> String {
    format!("/api/v1/documents/{}", url.trim_start_matches("automerge:"))
}

/// Every event of a document (following the pages), filtered.
pub fn history(
    api: &Admin,
    url: &str,
    participant: Option<&str>,
    role: Option<&str>,
) -> anyhow::Result<Vec<Value>> {
    let mut out = Vec::new();
    let mut after = 0u64;
    for _ in 0..100_000 {
        let mut q = format!("{}/events?after={after}&limit=1000", doc_path(url));
        if let Some(p) = participant {
            q.push_str(&format!("&participant={p}"));
        }
        if let Some(r) = role {
            q.push_str(&format!("&role={r}"));
        }
        let page = api.call("GET", &q, None)?;
        if let Some(evs) = page["events"].as_array() {
            out.extend(evs.iter().cloned());
        }
        match page["next_after"].as_u64() {
            Some(n) => after = n,
            None => return Ok(out),
        }
    }
    bail!("more than 100 million events")
}

fn pad(s: &str, width: usize) -> String {
    let w = UnicodeWidthStr::width(s);
    format!("{s}{}", " ".repeat(width.saturating_sub(w)))
}

/// A readable table; column widths count display cells, so Hangul lines up.
pub fn table(events: &[Value]) -> String {
    let rows: Vec<[String; 5]> = events
        .iter()
        .map(|e| {
            [
                e["seq"].to_string(),
                e["time_ms"].as_u64().map(show_time).unwrap_or_default(),
                e["participant"].as_str().unwrap_or("-").to_string(),
                e["role"].as_str().unwrap_or("-").to_string(),
                e["hash"]
                    .as_str()
                    .map(|h| h.chars().take(12).collect())
                    .unwrap_or_default(),
            ]
        })
        .collect();
    let header = ["seq", "time (KST)", "participant", "role", "change"];
    let widths: Vec<usize> = (0..5)
        .map(|i| {
            rows.iter()
                .map(|r| UnicodeWidthStr::width(r[i].as_str()))
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut s = String::new();
    for row in std::iter::once(header.map(str::to_string)).chain(rows) {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(i, c)| pad(c, widths[i]))
            .collect();
        s.push_str(cells.join("  ").trim_end());
        s.push('\n');
    }
    s
}

pub fn state_at(
    api: &Admin,
    url: &str,
    seq: Option<u64>,
    time: Option<u64>,
) -> anyhow::Result<Value> {
    let q = match (seq, time) {
        (Some(n), _) => format!("{}/state?seq={n}", doc_path(url)),
        (None, Some(t)) => format!("{}/state?at={t}", doc_path(url)),
        (None, None) => format!("{}/state", doc_path(url)),
    };
    api.call("GET", &q, None)
}

pub fn diff(api: &Admin, url: &str, from: u64, to: u64) -> anyhow::Result<Value> {
    api.call(
        "GET",
        &format!("{}/diff?from={from}&to={to}", doc_path(url)),
        None,
    )
}

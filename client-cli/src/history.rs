//! `toron history`, `toron at`, `toron diff`: the event log through `/api/v1/documents/…`.

use anyhow::{bail, Context};
use serde_json::Value;
use unicode_width::UnicodeWidthStr;

use crate::admin::Admin;

/// `1790000000000`, RFC 3339 (`2026-11-26T17:30:00+09:00`), or a clock time `17:30[:15]` in
/// Korea Standard Time on `date` (`2026-11-26`) → UTC milliseconds. A clock time without a
/// date is refused.
pub fn parse_time_on(s: &str, date: Option<&str>) -> anyhow::Result<u64> {
    if s.len() <= 8 && s.contains(':') {
        let Some(date) = date else {
            bail!("`{s}` is a clock time: give the day too (--date 2026-11-26)");
        };
        let day = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d")
            .with_context(|| format!("`{date}` is not a date like 2026-11-26"))?;
        let time = chrono::NaiveTime::parse_from_str(s, "%H:%M:%S")
            .or_else(|_| chrono::NaiveTime::parse_from_str(s, "%H:%M"))
            .with_context(|| format!("`{s}` is not a time like 17:30 or 17:30:15"))?;
        let kst = chrono::FixedOffset::east_opt(9 * 3600).context("KST")?;
        let t = day
            .and_time(time)
            .and_local_timezone(kst)
            .single()
            .context("no such moment")?;
        return u64::try_from(t.timestamp_millis()).context("a time before 1970");
    }
    parse_time(s)
}

/// The day (KST, `2026-11-26`) of a UTC millisecond time.
pub fn kst_date(ms: u64) -> Option<String> {
    let t = chrono::DateTime::from_timestamp_millis(ms as i64)?;
    Some(
        t.with_timezone(&chrono::FixedOffset::east_opt(9 * 3600)?)
            .format("%Y-%m-%d")
            .to_string(),
    )
}

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
    let base = format!("{}/events?limit=1000", doc_path(url));
    all_pages(api, "events", |after| {
        let mut q = format!("{base}&after={}", after.unwrap_or("0"));
        if let Some(p) = participant {
            q.push_str(&format!("&participant={p}"));
        }
        if let Some(r) = role {
            q.push_str(&format!("&role={r}"));
        }
        q
    })
}

/// Every item under `items` of a paged listing: `query(after)` names a page, from the first
/// (`None`) to the one whose answer has no `next_after` (a number or a string).
fn all_pages(
    api: &Admin,
    items: &str,
    query: impl Fn(Option<&str>) -> String,
) -> anyhow::Result<Vec<Value>> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..100_000 {
        let page = api.call("GET", &query(after.as_deref()), None)?;
        if let Some(list) = page[items].as_array() {
            out.extend(list.iter().cloned());
        }
        after = match &page["next_after"] {
            Value::Number(n) => Some(n.to_string()),
            Value::String(s) => Some(s.clone()),
            _ => return Ok(out),
        };
    }
    bail!("more than 100,000 pages of {items}")
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
    aligned(header, rows, &[0, 1, 2, 3, 4])
}

/// `header` and `rows` in aligned columns (only the columns `show`), two spaces apart; widths
/// count display cells, so Hangul lines up.
fn aligned<const N: usize>(header: [&str; N], rows: Vec<[String; N]>, show: &[usize]) -> String {
    let widths: Vec<usize> = (0..N)
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
        let cells: Vec<String> = show.iter().map(|&i| pad(&row[i], widths[i])).collect();
        s.push_str(cells.join("  ").trim_end());
        s.push('\n');
    }
    s
}

/// Which clock a moment is on: when an act happened (an imported one's own time, which the
/// timeline is ordered by) or when the server received it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Clock {
    #[default]
    Happened,
    Received,
}

impl Clock {
    pub fn as_str(self) -> &'static str {
        match self {
            Clock::Happened => "happened",
            Clock::Received => "received",
        }
    }

    /// The time of a timeline entry or document event on this clock.
    pub fn of(self, e: &Value) -> Option<u64> {
        match self {
            Clock::Happened => e["occurred_ms"].as_u64().or_else(|| e["time_ms"].as_u64()),
            Clock::Received => e["time_ms"].as_u64(),
        }
    }
}

/// Keeps the entries (or document events) between `from` and `to` (inclusive) on `clock`, in
/// that clock's order: the timeline comes in the order of what happened; on the received
/// clock, the order the server took them in.
pub fn on_clock(rows: &mut Vec<Value>, clock: Clock, from: Option<u64>, to: Option<u64>) {
    rows.retain(|e| {
        let t = clock.of(e);
        from.is_none_or(|f| t.is_some_and(|t| t >= f))
            && to.is_none_or(|u| t.is_some_and(|t| t <= u))
    });
    if clock == Clock::Received {
        rows.sort_by_key(|e| {
            (
                e["time_ms"].as_u64(),
                e["global_seq"].as_u64(),
                e["index"].as_u64(),
            )
        });
    }
}

pub fn state_at(
    api: &Admin,
    url: &str,
    seq: Option<u64>,
    time: Option<u64>,
    clock: Clock,
) -> anyhow::Result<Value> {
    let q = match (seq, time) {
        (Some(n), _) => format!("{}/state?seq={n}", doc_path(url)),
        (None, Some(t)) => format!("{}/state?at={t}&clock={}", doc_path(url), clock.as_str()),
        (None, None) => format!("{}/state", doc_path(url)),
    };
    api.call("GET", &q, None)
}

/// The day a clock time without a date means in a session: the session's own date (from the
/// sessions the caller takes part in), else the day of its first timeline entry as it happened.
pub fn session_day(api: &Admin, session: &str) -> anyhow::Result<Option<String>> {
    if let Ok(mine) = api.call("GET", "/api/v1/me/sessions", None) {
        let date = mine["sessions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|s| s["key"] == session)
            .and_then(|s| s["date"].as_str())
            .map(str::to_string);
        if date.is_some() {
            return Ok(date);
        }
    }
    let first = api.call(
        "GET",
        &format!("{}/timeline?limit=1", session_path(session)),
        None,
    )?;
    Ok(Clock::Happened.of(&first["entries"][0]).and_then(kst_date))
}

pub fn diff(api: &Admin, url: &str, from: u64, to: u64) -> anyhow::Result<Value> {
    api.call(
        "GET",
        &format!("{}/diff?from={from}&to={to}", doc_path(url)),
        None,
    )
}

fn session_path(session: &str) -> String {
    format!("/api/v1/sessions/{session}")
}

/// Filters of a session timeline.
#[derive(Debug, Default, Clone)]
pub struct TimelineFilter {
    pub participant: Option<String>,
    pub role: Option<String>,
    pub kind: Option<String>,
    pub since: Option<u64>,
    pub until: Option<u64>,
}

/// Every entry of a session's timeline the caller may see (following the pages).
pub fn timeline(api: &Admin, session: &str, f: &TimelineFilter) -> anyhow::Result<Vec<Value>> {
    let base = format!("{}/timeline?limit=5000", session_path(session));
    all_pages(api, "entries", |after| {
        let mut q = base.clone();
        for (k, v) in [
            ("participant", f.participant.clone()),
            ("role", f.role.clone()),
            ("kind", f.kind.clone()),
            ("since", f.since.map(|x| x.to_string())),
            ("until", f.until.map(|x| x.to_string())),
            ("after", after.map(str::to_string)),
        ] {
            if let Some(v) = v {
                q.push_str(&format!("&{k}={v}"));
            }
        }
        q
    })
}

/// One timeline entry as the cells of a row: time, occurred, who, role, what, document.
fn entry_cells(e: &Value) -> [String; 6] {
    let doc = match (e["document"].as_str(), e["doc_seq"].as_u64()) {
        (Some(d), Some(s)) => format!("{d} #{s}"),
        (Some(d), None) => d.to_string(),
        _ => String::new(),
    };
    [
        e["time_ms"].as_u64().map(show_time).unwrap_or_default(),
        e["occurred_ms"].as_u64().map(show_time).unwrap_or_default(),
        e["participant"].as_str().unwrap_or("-").to_string(),
        e["role"].as_str().unwrap_or("-").to_string(),
        format!(
            "{}: {}",
            e["kind"].as_str().unwrap_or("?"),
            e["summary"].as_str().unwrap_or("")
        ),
        doc,
    ]
}

/// One entry on one line (what `toron replay` prints as it plays).
pub fn timeline_line(e: &Value) -> String {
    let c = entry_cells(e);
    let when = if c[1].is_empty() {
        c[0].clone()
    } else {
        format!("{} (happened {})", c[0], c[1])
    };
    format!("{when}  {}  {}  {}  {}", c[2], c[3], c[4], c[5])
        .trim_end()
        .to_string()
}

/// The timeline as a table. The "happened" column appears when an importer gave times.
pub fn timeline_table(entries: &[Value]) -> String {
    let rows: Vec<[String; 6]> = entries.iter().map(entry_cells).collect();
    let header = [
        "received (KST)",
        "happened (KST)",
        "participant",
        "role",
        "what",
        "document",
    ];
    let show: Vec<usize> = (0..6)
        .filter(|i| *i != 1 || rows.iter().any(|r| !r[1].is_empty()))
        .collect();
    aligned(header, rows, &show)
}

/// Plays a session back through `/replay` (server-sent events), calling `on_entry` as each
/// entry arrives. `speed` is `1`, `4`, `16`… or `max`. Returns the number of entries.
pub fn replay(
    server: &str,
    token: Option<&str>,
    session: &str,
    speed: &str,
    from: Option<u64>,
    mut on_entry: impl FnMut(&Value),
) -> anyhow::Result<u64> {
    use std::io::BufRead;
    let mut url = format!(
        "{}{}/replay?speed={speed}",
        crate::admin::http_base(server),
        session_path(session)
    );
    if let Some(f) = from {
        url.push_str(&format!("&from={f}"));
    }
    // No overall timeout: a replay at ×1 lasts as long as the session did.
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(std::time::Duration::from_secs(10)))
        .build()
        .new_agent();
    let mut req = agent.get(&url);
    if let Some(t) = token {
        req = req.header("Authorization", &format!("Bearer {t}"));
    }
    let mut resp = req
        .call()
        .with_context(|| format!("could not reach {url}"))?;
    if !resp.status().is_success() {
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        let msg = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| {
                v.pointer("/error/message")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .unwrap_or(text);
        bail!("{status} {msg}");
    }
    let reader = std::io::BufReader::new(resp.body_mut().as_reader());
    let (mut event, mut n) = (String::new(), 0u64);
    for line in reader.lines() {
        let line = line.context("the replay stream broke off")?;
        if let Some(e) = line.strip_prefix("event: ") {
            event = e.to_string();
        } else if let Some(d) = line.strip_prefix("data: ") {
            match event.as_str() {
                "entry" => {
                    let v: Value = serde_json::from_str(d).context("a replay entry is not JSON")?;
                    on_entry(&v);
                    n += 1;
                }
                "end" => {
                    // The server says why it stopped when it was not the end of the record.
                    let end: Value = serde_json::from_str(d).unwrap_or(Value::Null);
                    if end["revoked"] == true {
                        bail!("the server ended the replay after {n} entries: the token is no longer valid");
                    }
                    if end["cut"] == true {
                        bail!("the server cut the replay after {n} entries: a replay lasts six hours at most (use --from or a higher --speed)");
                    }
                    return Ok(n);
                }
                _ => {}
            }
        }
    }
    bail!("the replay stream ended without its `end` event after {n} entries")
}

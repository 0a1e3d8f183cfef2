//! `toron import --format w3c`: W3C Web Annotations brought into a session's notes, each
//! re-anchored by its quote.

use anyhow::Context;
use serde_json::Value;
use std::time::Duration;
use toron_domain::bundle::Bundle;

use super::{export_of, read_limited, run_bytes, Options};

/// Brings a W3C Web Annotation file into `session`: the session as the server holds it (its
/// export) gains the file's annotations — each re-anchored by its quote in the text as it is
/// now, those already there left alone — and the whole is checked and imported like a bundle.
pub async fn run_w3c(
    server: &str,
    token: Option<String>,
    path: &std::path::Path,
    session: &str,
    opts: Options,
    limit: Duration,
) -> anyhow::Result<Value> {
    let (name, bytes) = read_limited(path)?;
    let file: Value =
        serde_json::from_slice(&bytes).with_context(|| format!("{name}: not JSON"))?;
    // The whole series the session is in: its findings and triage name annotations and
    // findings of its other sessions too, which a bundle of this session alone would lack.
    let of_session = export_of(server, token.clone(), session, limit).await?;
    let series = of_session["series"]["key"]
        .as_str()
        .with_context(|| format!("the export of {session} names no series"))?
        .to_string();
    let mut bundle = export_of(server, token.clone(), &series, limit).await?;
    let current =
        toron_domain::integrity::read_export(bundle.clone()).map_err(anyhow::Error::msg)?;
    let annotations = toron_domain::w3c::annotations_from(&file, &current, session)
        .map_err(|errors| anyhow::anyhow!("{name}: {}", errors.join(&format!("\n{name}: "))))?;
    let sessions = bundle["sessions"]
        .as_array_mut()
        .with_context(|| format!("the export of {session} has no sessions"))?;
    let target = sessions
        .iter_mut()
        .find(|s| s["key"] == session)
        .with_context(|| format!("the server has no session `{session}`"))?;
    let list = target["annotations"]
        .as_array_mut()
        .with_context(|| format!("the export of {session} has no annotation list"))?;
    let have: std::collections::BTreeSet<String> = list
        .iter()
        .filter_map(|a| a["id"].as_str().map(str::to_string))
        .collect();
    list.extend(
        annotations
            .into_iter()
            .filter(|a| !a["id"].as_str().is_some_and(|id| have.contains(id))),
    );
    let merged = serde_json::to_vec(&bundle)?;
    let parsed = Bundle::parse(&merged)
        .map_err(|e| anyhow::anyhow!("{name} (joined to session {session}): {e}"))?;
    run_bytes(server, token, merged, parsed, opts, limit).await
}

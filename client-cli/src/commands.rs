//! The document commands of the CLI: `new`, `get`, `set`, `watch`, each one a short
//! conversation with the server through [`crate::sync_client`].

use std::time::Duration;

use automerge::transaction::CommitOptions;
use automerge::AutoCommit;
use serde_json::Value as Json;
use toron_protocol::{AutomergeUrl, DocumentId};

use crate::json::{doc_to_json, init_from_json, set_path};
use crate::sync_client::{Connection, DocSync, Event};

/// Creates a document (from a JSON object, or empty) and returns its URL once the server has
/// stored it.
pub async fn new_document(
    server: &str,
    initial: Option<&Json>,
    limit: Duration,
) -> anyhow::Result<AutomergeUrl> {
    let mut conn = Connection::connect(server, limit).await?;
    let mut doc = AutoCommit::new();
    match initial {
        Some(v) => init_from_json(&mut doc, v)?,
        None => {
            // A document exists once it has a change; an empty one still needs one.
            doc.empty_change(CommitOptions::default());
        }
    }
    let id = DocumentId::random();
    let mut d = DocSync::new(id, doc);
    conn.push(&mut d, limit).await?;
    conn.close().await;
    Ok(id.url())
}

/// Fetches a document as JSON.
pub async fn get_document(
    server: &str,
    url: &AutomergeUrl,
    limit: Duration,
) -> anyhow::Result<Json> {
    let mut conn = Connection::connect(server, limit).await?;
    let d = conn.find(url.document_id, limit).await?;
    conn.close().await;
    Ok(doc_to_json(&d.doc))
}

/// Sets `path` to `value` and waits until the server has stored the change. Returns the
/// document as JSON afterwards.
///
/// With `create`, a document the server has no content for yet (a registered, still empty one
/// such as a participant's own `notes:` layer) is started from nothing.
pub async fn set_value(
    server: &str,
    url: &AutomergeUrl,
    path: &str,
    value: &Json,
    create: bool,
    limit: Duration,
) -> anyhow::Result<Json> {
    let mut conn = Connection::connect(server, limit).await?;
    let mut d = match conn.find(url.document_id, limit).await {
        Ok(d) => d,
        Err(crate::sync_client::ClientError::Unavailable(_)) if create => {
            DocSync::new(url.document_id, AutoCommit::new())
        }
        Err(e) => return Err(e.into()),
    };
    set_path(&mut d.doc, path, value)?;
    conn.push(&mut d, limit).await?;
    conn.close().await;
    Ok(doc_to_json(&d.doc))
}

/// Prints the document, then the document again after every change, `count` times if given.
/// `idle_limit` bounds the wait for the first state only; after it, watching waits forever
/// unless `count` ends it.
pub async fn watch_document(
    server: &str,
    url: &AutomergeUrl,
    count: Option<u64>,
    limit: Duration,
    mut emit: impl FnMut(&Json),
) -> anyhow::Result<()> {
    let mut conn = Connection::connect(server, limit).await?;
    let mut d = conn.find(url.document_id, limit).await?;
    emit(&doc_to_json(&d.doc));
    let mut seen = 0u64;
    while count.is_none_or(|c| seen < c) {
        if let Event::Synced { changed: true, .. } = conn.next_event(&mut [&mut d]).await? {
            seen += 1;
            emit(&doc_to_json(&d.doc));
        }
    }
    conn.close().await;
    Ok(())
}

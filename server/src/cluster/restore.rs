//! `toron-server --cluster … restore BACKUP`: a backup (of a single node, or of a cluster's
//! node) becomes the log of a cluster whose stream is empty. The backup is checked and
//! restored into a scratch directory first (every check of a single node's restore); then
//! its registry goes in as one entry, and every record in its order, changes grouped by
//! document. Nodes started afterwards build their replicas from the stream as always.

use std::path::Path;

use crate::config::ClusterConfig;
use crate::store::{LogEntry, PendingEvent, RegistryOp, Replicator};
use toron_protocol::{AdminAction, Event};

/// Records read from the scratch store at a time.
const PAGE: usize = 1024;

/// What went into the stream.
#[derive(Debug)]
pub struct Seeded {
    pub records: u64,
    pub entries: u64,
}

pub async fn into_stream(backup: &Path, config: &ClusterConfig) -> anyhow::Result<Seeded> {
    let scratch_dir = std::env::temp_dir().join(format!("toron-restore-{}", uuid::Uuid::new_v4()));
    let restored = crate::ops::backup::run_restore(backup, &scratch_dir);
    let result = match restored {
        Ok(r) if !r.report.ok() => Err(anyhow::anyhow!(
            "the backup does not verify: {}",
            r.report.problems.join("; ")
        )),
        Ok(_) => seed(&scratch_dir, config).await,
        Err(e) => Err(e),
    };
    let _ = std::fs::remove_dir_all(&scratch_dir);
    result
}

async fn seed(dir: &Path, config: &ClusterConfig) -> anyhow::Result<Seeded> {
    let store = crate::ops::verify::open(dir)?;
    let publisher = super::Node::publisher_for(config).await?;
    let mut seeded = Seeded {
        records: 0,
        entries: 0,
    };
    // The registry first: participants, tokens (hashed), grants, documents, bindings.
    let registry: Vec<RegistryOp> = store
        .registry_entries()?
        .into_iter()
        .map(|(k, v)| RegistryOp::Put(k, v))
        .collect();
    publisher
        .publish(LogEntry::Event {
            event: PendingEvent::Admin(AdminAction {
                at_ms: crate::clock::Clock::system().now_ms(),
                by: "server".into(),
                action: serde_json::json!({ "restored_from_backup": { "registry_entries": registry.len() } })
                    .to_string(),
            }),
            registry,
        })
        .await?;
    seeded.entries += 1;
    let mut from = 1;
    loop {
        let page = store.events(from, PAGE)?;
        let Some(last) = page.last() else { break };
        from = last.global_seq() + 1;
        seeded.records += page.len() as u64;
        for entry in entries_of(page) {
            publisher.publish(entry).await?;
            seeded.entries += 1;
        }
    }
    store.close();
    Ok(seeded)
}

/// Records as the entries a node would have published: consecutive changes of one document
/// together, every other record alone.
fn entries_of(records: Vec<Event>) -> Vec<LogEntry> {
    let mut out: Vec<LogEntry> = Vec::new();
    for r in records {
        let entry = match r {
            Event::Change(c) => {
                if let Some(LogEntry::Changes { doc, changes, .. }) = out.last_mut() {
                    if *doc == c.change.document_id {
                        changes.push(c.change);
                        continue;
                    }
                }
                LogEntry::Changes {
                    doc: c.change.document_id,
                    changes: vec![c.change],
                    bindings: Vec::new(),
                }
            }
            Event::Rejection { rejection, .. } => LogEntry::Event {
                event: PendingEvent::Rejection(rejection),
                registry: Vec::new(),
            },
            Event::Admin { action, .. } => LogEntry::Event {
                event: PendingEvent::Admin(action),
                registry: Vec::new(),
            },
            Event::Presence { presence, .. } => LogEntry::Event {
                event: PendingEvent::Presence(presence),
                registry: Vec::new(),
            },
        };
        out.push(entry);
    }
    out
}

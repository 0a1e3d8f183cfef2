//! `toron-server --cluster … --data DIR verify`: a stopped node's replica against the
//! cluster's stream. The stream's entries up to the replica's position are applied to a
//! scratch store the way the applier applies them; every record and registry entry of the
//! replica must then be the scratch store's, byte for byte.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self};
use futures_util::StreamExt;

use crate::store::Store;

/// How long reading the stream may wait for its next entry.
const IDLE: Duration = Duration::from_secs(10);
/// Differences named before the rest are counted only.
const NAMED: usize = 20;

/// What the comparison found.
#[derive(Debug)]
pub struct StreamCheck {
    /// The replica's position in the stream, and where the stream ends now.
    pub position: u64,
    pub stream_end: u64,
    /// Records compared.
    pub records: usize,
    pub problems: Vec<String>,
}

pub async fn against_stream(
    replica: &Arc<Store>,
    urls: &[String],
    stream_name: &str,
    key: &super::auth::ClusterKey,
) -> anyhow::Result<StreamCheck> {
    let (options, urls) = super::nats_options(urls);
    let client = options
        .connection_timeout(Duration::from_secs(5))
        .connect(urls)
        .await?;
    let js = jetstream::new(client);
    let stream = js.get_stream(stream_name).await?;
    let stream_end = stream.get_info().await?.state.last_sequence;
    let position = replica.replica_position();
    let scratch_dir = std::env::temp_dir().join(format!("toron-verify-{}", uuid::Uuid::new_v4()));
    let scratch = Store::open(&scratch_dir, None)?;
    let result = async {
        if position > 0 {
            replay(&stream, &scratch, position, key).await?;
        }
        compare(replica, &scratch)
    }
    .await;
    scratch.close();
    drop(scratch);
    let _ = std::fs::remove_dir_all(&scratch_dir);
    let (records, problems) = result?;
    Ok(StreamCheck {
        position,
        stream_end,
        records,
        problems,
    })
}

/// The stream's entries 1..=`upto`, applied to `scratch` as the applier applies them.
async fn replay(
    stream: &jetstream::stream::Stream,
    scratch: &Store,
    upto: u64,
    key: &super::auth::ClusterKey,
) -> anyhow::Result<()> {
    let mut chunks = super::applier::entries_from(stream, 1)
        .await
        .map_err(|e| anyhow::anyhow!("reading the stream: {e}"))?;
    let mut at = 0;
    while at < upto {
        let chunk = tokio::time::timeout(IDLE, chunks.next())
            .await
            .map_err(|_| anyhow::anyhow!("the stream stopped answering at entry {at} of {upto}"))?
            .ok_or_else(|| anyhow::anyhow!("the stream ended at entry {at} of {upto}"))?;
        let mut entries = Vec::new();
        for m in chunk {
            let msg = m.map_err(|e| anyhow::anyhow!("reading the stream: {e}"))?;
            let Some(r) = super::applier::read(&msg, key) else {
                anyhow::bail!("a stream message without its position");
            };
            at = r.seq;
            if r.seq > upto {
                break;
            }
            // The applier skips an unreadable entry; so does the replay.
            entries.push((r.seq, r.entry.ok()));
        }
        scratch.apply_replicated(entries).await?;
    }
    Ok(())
}

/// Every record and registry entry of `replica` against `scratch`.
fn compare(replica: &Store, scratch: &Store) -> anyhow::Result<(usize, Vec<String>)> {
    let mut problems = Vec::new();
    let (mine, theirs) = (replica.global_seqs()?, scratch.global_seqs()?);
    if mine.len() != theirs.len() {
        problems.push(format!(
            "the replica holds {} records, the stream up to its position makes {}",
            mine.len(),
            theirs.len()
        ));
    }
    let mut differing = 0;
    // Both lists are in key order: a lookup is a binary search, not a scan per record.
    for g in mine.iter().filter(|g| theirs.binary_search(g).is_ok()) {
        if replica.raw_record(*g)? != scratch.raw_record(*g)? {
            differing += 1;
            if differing <= NAMED {
                problems.push(format!(
                    "record {g} differs from what the stream makes of it"
                ));
            }
        }
    }
    if differing > NAMED {
        problems.push(format!("… {} more records differ", differing - NAMED));
    }
    if replica.registry_entries()? != scratch.registry_entries()? {
        problems.push("the registry differs from what the stream makes of it".into());
    }
    Ok((mine.len(), problems))
}

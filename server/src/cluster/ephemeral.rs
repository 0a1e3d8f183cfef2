//! Ephemeral messages between nodes (cursors, "typing…", whatever clients broadcast): plain
//! NATS subjects `toron.eph.<document>`, not the stream — they are not kept, as on one node.
//! A node publishes what its clients send that is new to it; every other node relays it to
//! its own subscribers of the document, whose engine relays each (sender, session, count)
//! once — so a message crosses once, and a client's echo stops at the first node.

use std::sync::Arc;

use minicbor::{Decoder, Encoder};
use tokio::sync::{mpsc, watch};
use toron_protocol::{DocumentId, Ephemeral, PeerId};

use crate::net::hub::Hub;
use crate::net::open_docs::EphemeralBus;

use super::auth::{signed_headers, verified_origin, ClusterKey};

const SUBJECTS: &str = "toron.eph.>";
/// Messages waiting to be published; more are dropped (ephemeral traffic is best effort).
const QUEUE: usize = 4096;

/// The node's side of the bus: what its document actors hand over.
#[derive(Debug)]
pub struct Bus {
    tx: mpsc::Sender<Ephemeral>,
}

impl EphemeralBus for Bus {
    fn publish(&self, message: &Ephemeral) {
        let _ = self.tx.try_send(message.clone());
    }
}

/// Starts publishing this node's messages and relaying the other nodes'; both stop with
/// `stopped`.
pub fn start(
    client: async_nats::Client,
    node: String,
    key: ClusterKey,
    hub: Arc<Hub>,
    stopped: watch::Receiver<bool>,
) -> Bus {
    let (tx, rx) = mpsc::channel(QUEUE);
    tokio::spawn(publish(
        client.clone(),
        node.clone(),
        key.clone(),
        rx,
        stopped.clone(),
    ));
    tokio::spawn(relay(client, node, key, hub, stopped));
    Bus { tx }
}

async fn publish(
    client: async_nats::Client,
    node: String,
    key: ClusterKey,
    mut rx: mpsc::Receiver<Ephemeral>,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        let m = tokio::select! {
            m = rx.recv() => m,
            _ = stopped.wait_for(|s| *s) => return,
        };
        let Some(m) = m else { return };
        let subject = format!("toron.eph.{}", m.document_id);
        let payload = encode(&m);
        let headers = signed_headers(&key, &subject, &node, &payload);
        if let Err(e) = client
            .publish_with_headers(subject, headers, payload.into())
            .await
        {
            tracing::debug!(error = %e, "an ephemeral message did not reach the other nodes");
        }
    }
}

async fn relay(
    client: async_nats::Client,
    node: String,
    key: ClusterKey,
    hub: Arc<Hub>,
    stopped: watch::Receiver<bool>,
) {
    super::each_message(client, SUBJECTS, stopped, |msg| {
        // Only the cluster's nodes speak here (`auth`); our own messages come back too.
        match verified_origin(&key, &msg) {
            Some(origin) if origin != node => {}
            _ => return,
        }
        match decode(&msg.payload) {
            Some(m) => hub.cluster_ephemeral(m),
            None => tracing::debug!("an unreadable ephemeral message from another node"),
        }
    })
    .await;
}

fn encode(m: &Ephemeral) -> Vec<u8> {
    let mut e = Encoder::new(Vec::new());
    // Writing into a Vec cannot fail.
    let _ = e
        .array(5)
        .and_then(|e| e.str(m.sender_id.as_str()))
        .and_then(|e| e.bytes(m.document_id.as_bytes()))
        .and_then(|e| e.u64(m.count))
        .and_then(|e| e.str(&m.session_id))
        .and_then(|e| e.bytes(&m.data));
    e.into_writer()
}

fn decode(b: &[u8]) -> Option<Ephemeral> {
    let mut d = Decoder::new(b);
    if d.array().ok()? != Some(5) {
        return None;
    }
    let sender_id = PeerId::new(d.str().ok()?).ok()?;
    let document_id = DocumentId::from_slice(d.bytes().ok()?).ok()?;
    let count = d.u64().ok()?;
    let session_id = d.str().ok()?.to_string();
    let data = d.bytes().ok()?.to_vec();
    Some(Ephemeral {
        sender_id,
        document_id,
        count,
        session_id,
        data,
    })
}

//! Who is present, across nodes: each node publishes who is present through it (its whole
//! list, small) on the plain NATS subject `toron.presence` at every change and every few
//! seconds; each node keeps the others' latest lists and forgets a node not heard from for a
//! while (it died). A participant in the hall through node B is then in the list node A's
//! clients see. The joined/left records stay what each node logs for its own connections.

use std::collections::BTreeMap;

use super::auth::{signed_headers, verified_origin, ClusterKey};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::net::hub::{Hub, PresenceBus};

const SUBJECT: &str = "toron.presence";
/// A node's list goes out at least this often, so that a new node learns it.
const HEARTBEAT: Duration = Duration::from_secs(3);
/// A node not heard from for this long is gone, and so is everyone present through it.
const FORGET_AFTER: Duration = Duration::from_secs(10);

/// This node's side: its latest list, for the publishing task.
#[derive(Debug)]
pub struct Bus {
    latest: watch::Sender<BTreeMap<String, Vec<String>>>,
}

impl PresenceBus for Bus {
    fn publish(&self, here: BTreeMap<String, Vec<String>>) {
        self.latest.send_replace(here);
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Said {
    node: String,
    here: BTreeMap<String, Vec<String>>,
}

/// Starts telling this node's list and hearing the others'; both stop with `stopped`.
pub fn start(
    client: async_nats::Client,
    node: String,
    key: ClusterKey,
    hub: Arc<Hub>,
    stopped: watch::Receiver<bool>,
) -> Bus {
    let (latest, rx) = watch::channel(hub.local_presence());
    tokio::spawn(tell(
        client.clone(),
        node.clone(),
        key.clone(),
        rx,
        hub.clone(),
        stopped.clone(),
    ));
    tokio::spawn(hear(client, node, key, hub, stopped));
    Bus { latest }
}

async fn tell(
    client: async_nats::Client,
    node: String,
    key: ClusterKey,
    mut latest: watch::Receiver<BTreeMap<String, Vec<String>>>,
    hub: Arc<Hub>,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        let said = Said {
            node: node.clone(),
            here: latest.borrow_and_update().clone(),
        };
        if let Ok(bytes) = serde_json::to_vec(&said) {
            let headers = signed_headers(&key, SUBJECT, &node, &bytes);
            if let Err(e) = client
                .publish_with_headers(SUBJECT, headers, bytes.into())
                .await
            {
                tracing::debug!(error = %e, "presence not told to the other nodes");
            }
        }
        hub.expire_remote_presence(FORGET_AFTER);
        tokio::select! {
            _ = latest.changed() => {}
            () = tokio::time::sleep(HEARTBEAT) => {}
            _ = stopped.wait_for(|s| *s) => return,
        }
    }
}

async fn hear(
    client: async_nats::Client,
    node: String,
    key: ClusterKey,
    hub: Arc<Hub>,
    stopped: watch::Receiver<bool>,
) {
    super::each_message(client, SUBJECT, stopped, |msg| {
        // Only the cluster's nodes speak here, each for itself (`auth`).
        let Some(origin) = verified_origin(&key, &msg) else {
            return;
        };
        match serde_json::from_slice::<Said>(&msg.payload) {
            Ok(said) if said.node != node && said.node == origin => {
                hub.remote_presence(&said.node, said.here)
            }
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "unreadable presence from another node"),
        }
    })
    .await;
}

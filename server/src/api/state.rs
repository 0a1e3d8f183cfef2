//! What every HTTP handler is given: the hub, the shutdown signal and the WebSocket caps.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{watch, Semaphore};

use crate::net::hub::Hub;

#[derive(Debug, Clone)]
pub struct AppState {
    pub hub: Arc<Hub>,
    pub shutdown: watch::Receiver<bool>,
    pub connection_permits: Arc<Semaphore>,
    /// Open connections per token (by the token's SHA-256), for `max_connections_per_token`.
    pub token_conns: Arc<Mutex<HashMap<[u8; 32], usize>>>,
    /// Long-lived responses (replays) open now, per token and in all.
    pub streams: Arc<crate::net::listener::Streams>,
    /// PDF and HWPX files, typeset in a child process one at a time.
    pub typesetter: Arc<crate::api::typeset::Typesetter>,
}

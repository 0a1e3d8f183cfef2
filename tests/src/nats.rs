//! A NATS JetStream cluster on loopback, for the cluster tests (issue 20): three
//! `nats-server` processes (Debian's 2.9 — `.ci/run` installs it), each with its own data
//! folder and client port, routes to the others, JetStream on. A test kills and restarts
//! single servers with `kill` and `restart`; dropping the cluster stops them all.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a server may take to accept connections after it starts.
const READY_WITHIN: Duration = Duration::from_secs(15);

#[derive(Debug)]
struct Node {
    name: String,
    client: SocketAddr,
    conf: PathBuf,
    child: Option<Child>,
}

/// Three NATS servers in one cluster, on loopback.
#[derive(Debug)]
pub struct NatsCluster {
    _dir: tempfile::TempDir,
    nodes: Vec<Node>,
}

/// A loopback port nobody listens on now (the OS picks it; it is free until somebody binds it).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// The path of Debian's `nats-server`, or the test's explanation of how to get it.
pub fn nats_server() -> PathBuf {
    [
        "/usr/sbin/nats-server",
        "/usr/bin/nats-server",
        "/usr/local/bin/nats-server",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
    .expect(
        "the cluster tests need nats-server (apt-get install -y nats-server; .ci/run installs it)",
    )
}

/// The NATS user the test clusters give their Toron nodes (and its password).
pub const NATS_USER: &str = "toron";
pub const NATS_PASSWORD: &str = "test-cluster-password-3d1f";
/// The key the test clusters' nodes share (`--cluster-key`); node processes get it as
/// `TORON_CLUSTER_KEY`.
pub const CLUSTER_KEY: &str = "test-cluster-key-0123456789abcdef0123456789abcdef";

impl NatsCluster {
    /// Starts `n` servers in one cluster and waits until each accepts connections.
    pub fn start(n: usize) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let ports: Vec<(u16, u16)> = (0..n).map(|_| (free_port(), free_port())).collect();
        let mut nodes = Vec::new();
        for (i, (client, cluster)) in ports.iter().enumerate() {
            let name = format!("n{}", i + 1);
            let routes: Vec<String> = ports
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, (_, c))| format!("\"nats-route://127.0.0.1:{c}\""))
                .collect();
            let store = dir.path().join(&name);
            let conf = dir.path().join(format!("{name}.conf"));
            std::fs::write(
                &conf,
                format!(
                    "server_name: {name}\nlisten: 127.0.0.1:{client}\n\
                     authorization {{ users: [ {{ user: {NATS_USER}, password: \"{NATS_PASSWORD}\" }} ] }}\n\
                     jetstream {{ store_dir: \"{}\", max_memory_store: 64MB, max_file_store: 1GB }}\n\
                     cluster {{ name: toron-test, listen: 127.0.0.1:{cluster}, routes: [{}] }}\n",
                    store.display(),
                    routes.join(", ")
                ),
            )
            .expect("write the server's configuration");
            nodes.push(Node {
                name,
                client: SocketAddr::from(([127, 0, 0, 1], *client)),
                conf,
                child: None,
            });
        }
        let mut c = Self { _dir: dir, nodes };
        for i in 0..n {
            c.spawn(i);
        }
        for i in 0..n {
            c.wait_ready(i);
        }
        c
    }

    fn spawn(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let log = node.conf.with_extension("log");
        let child = Command::new(nats_server())
            .arg("-c")
            .arg(&node.conf)
            .arg("-l")
            .arg(&log)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nats-server");
        node.child = Some(child);
    }

    fn wait_ready(&self, i: usize) {
        let node = &self.nodes[i];
        let start = Instant::now();
        while TcpStream::connect_timeout(&node.client, Duration::from_millis(200)).is_err() {
            assert!(
                start.elapsed() < READY_WITHIN,
                "nats-server {} did not listen on {} within {READY_WITHIN:?}: {}",
                node.name,
                node.client,
                self.log(i)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// What server `i` wrote to its log (for a failing test's message).
    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.nodes[i].conf.with_extension("log")).unwrap_or_default()
    }

    /// The client URL of server `i`, with the nodes' NATS user in it.
    pub fn url(&self, i: usize) -> String {
        format!(
            "nats://{NATS_USER}:{NATS_PASSWORD}@{}",
            self.nodes[i].client
        )
    }

    /// Server `i`'s address without credentials: what anyone on the machine can dial.
    pub fn anonymous_url(&self, i: usize) -> String {
        format!("nats://{}", self.nodes[i].client)
    }

    /// Every server's client URL, comma-separated (what a client is given to find any of them).
    pub fn urls(&self) -> String {
        (0..self.nodes.len())
            .map(|i| self.url(i))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Kills server `i` at once (SIGKILL: no goodbye to the others, nothing flushed).
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts server `i` again on its own data folder and waits until it listens.
    pub fn restart(&mut self, i: usize) {
        self.kill(i);
        self.spawn(i);
        self.wait_ready(i);
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }
}

impl NatsCluster {
    /// A secured Toron node named `name`, on `dir`, joined to this cluster (the stream `TORON`,
    /// three replicas), whose first organizer's token is `admin`.
    pub fn node_config(
        &self,
        dir: &std::path::Path,
        name: &str,
        admin: &str,
    ) -> toron_server::Config {
        let mut c = crate::secure_config(dir);
        c.admin_token = Some(admin.into());
        c.cluster = Some(toron_server::config::ClusterConfig {
            urls: self.urls().split(',').map(str::to_string).collect(),
            node: name.into(),
            stream: "TORON".into(),
            replicas: 3,
            key: toron_server::cluster::auth::ClusterKey::new(CLUSTER_KEY)
                .expect("the test cluster's key"),
        });
        c
    }

    /// `n` Toron nodes in this process (`n1`, `n2`, …), each on a fresh directory, joined to
    /// this cluster; the directories live as long as the returned guards.
    pub async fn toron_nodes(
        &self,
        n: usize,
        admin: &str,
    ) -> (Vec<tempfile::TempDir>, Vec<toron_server::Running>) {
        let mut dirs = Vec::new();
        let mut nodes = Vec::new();
        for i in 0..n {
            let dir = tempfile::tempdir().expect("tempdir");
            let config = self.node_config(dir.path(), &format!("n{}", i + 1), admin);
            nodes.push(crate::start_with(config).await);
            dirs.push(dir);
        }
        (dirs, nodes)
    }
}

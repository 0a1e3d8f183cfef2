// The reference: automerge-repo's own sync server setup — a Repo with the WebSocket server
// adapter and the Node file-system storage adapter, announcing nothing (clients ask for what
// they want, as they do with toron-server). Usage: node reference-server.mjs DATA_DIR [PORT]
// Prints "reference listening on ws://127.0.0.1:PORT" when ready.
import { Repo } from "@automerge/automerge-repo";
import { NodeWSServerAdapter } from "@automerge/automerge-repo-network-websocket";
import { NodeFSStorageAdapter } from "@automerge/automerge-repo-storage-nodefs";
import { WebSocketServer } from "ws";

const dir = process.argv[2] || "reference-data";
const port = Number(process.argv[3] || 0);
const wss = new WebSocketServer({ host: "127.0.0.1", port, maxPayload: 256 * 1024 * 1024 });
// Announce only once the socket listens *and* the repo's adapter has attached its handlers:
// the repo connects its adapter after a promise, and a connection accepted before that is
// never served (a client that connects at once would hang).
let listening = false;
let adapterReady = false;
const announce = () => {
  if (listening && adapterReady) console.log(`reference listening on ws://127.0.0.1:${wss.address().port}`);
};
wss.on("listening", () => {
  listening = true;
  announce();
});
const adapter = new NodeWSServerAdapter(wss);
const repo = new Repo({
  network: [adapter],
  storage: new NodeFSStorageAdapter(dir),
  sharePolicy: async () => false,
});
// The adapter has no event for it: `connect` sets its peer id.
const waitForAdapter = setInterval(() => {
  if (adapter.peerId === undefined) return;
  clearInterval(waitForAdapter);
  adapterReady = true;
  announce();
}, 2);
const stop = () => {
  wss.close();
  repo.shutdown?.().finally(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);

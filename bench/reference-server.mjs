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
wss.on("listening", () => {
  console.log(`reference listening on ws://127.0.0.1:${wss.address().port}`);
});
const repo = new Repo({
  network: [new NodeWSServerAdapter(wss)],
  storage: new NodeFSStorageAdapter(dir),
  sharePolicy: async () => false,
});
const stop = () => {
  wss.close();
  repo.shutdown?.().finally(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);

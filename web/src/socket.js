// The hall's WebSocket, guarded. automerge-repo 2.5.6's WebSocket adapter throws when it is
// asked to send on a socket that is not open — closing, closed, or connecting again — and the
// throw escapes the repo's machinery with nothing to catch it: on a venue's Wi-Fi, a socket
// that closed mid-sync left the page receiving nothing for good. automerge-repo PR #627
// (merged after 2.5.6, in no release yet) drops such a send instead; the repo's sync state
// sends what is needed again once the socket is open. This is that guard, until a release
// carries it. No imports: the Node tests load it with the Node client's adapter.

const OPEN = 1;

/// `Adapter` (the WebSocket client adapter class) whose `send` drops what it is given while
/// its socket is not open.
export function guarded(Adapter) {
  return class GuardedWebSocketAdapter extends Adapter {
    send(message) {
      const socket = this.socket;
      if (socket && socket.readyState !== OPEN) return;
      return super.send(message);
    }
  };
}

// Waiting with a bound, shared by the Node checks (interop.mjs, hall-client.mjs): every wait
// names what it waited for when it times out.

export const LIMIT_MS = 10_000;

/** `promise`, or an error naming `what` after `ms`. */
export function withTimeout(promise, what, ms = LIMIT_MS) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Resolves once `predicate(doc)` holds for the handle, checking on every change. */
export function until(handle, predicate, what) {
  return withTimeout(
    new Promise((resolve) => {
      const check = () => {
        const doc = handle.doc();
        if (doc && predicate(doc)) {
          handle.off("change", check);
          resolve(doc);
        }
      };
      handle.on("change", check);
      check();
    }),
    what,
  );
}

// Builds the web client into dist/, which toron-server embeds (with src/index.html, the page,
// which needs no building):
//   app.js, app.css (both minified), automerge.wasm — and a gzip and a brotli copy of each,
//   made here once (best compression, no timestamps: the same sources give the same bytes) so
//   the server only picks one.
// The Automerge WASM is its own file, not base64 inside the script: the browser compiles it
// while it streams in, and the page shows sessions before it is needed. Its debug-name
// section (function names for stack traces, a fifth of the file) is left out.
// `node build.mjs --check` builds into a temporary folder and fails if dist/ differs: the
// committed assets must be what the sources build.
import { build } from "esbuild";
import { gzipSync, brotliCompressSync, constants } from "node:zlib";
import { mkdtempSync, readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";

const here = dirname(fileURLToPath(import.meta.url));
const check = process.argv.includes("--check");
const out = check ? mkdtempSync(join(tmpdir(), "toron-web-")) : join(here, "dist");
mkdirSync(out, { recursive: true });

await build({
  entryPoints: [join(here, "src/main.js")],
  bundle: true,
  minify: true,
  format: "esm",
  target: "es2022",
  platform: "browser",
  outfile: join(out, "app.js"),
  legalComments: "none",
  logLevel: "warning",
  define: { "process.env.NODE_ENV": '"production"', global: "globalThis" },
});
await build({
  entryPoints: [join(here, "src/app.css")],
  bundle: true,
  minify: true,
  target: "es2022",
  outfile: join(out, "app.css"),
  legalComments: "none",
  logLevel: "warning",
});

/// The module without its custom `name` section (section id 0 named "name"): the sections are
/// copied as they are, only that one is skipped.
function withoutNames(wasm) {
  const keep = [wasm.subarray(0, 8)];
  let i = 8;
  const leb = () => {
    let v = 0;
    for (let shift = 0; ; shift += 7) {
      const b = wasm[i++];
      v += (b & 0x7f) * 2 ** shift;
      if (!(b & 0x80)) return v;
    }
  };
  while (i < wasm.length) {
    const start = i;
    const id = wasm[i++];
    const size = leb();
    const body = i;
    let name = "";
    if (id === 0) {
      const n = leb();
      name = wasm.subarray(i, i + n).toString("utf8");
    }
    i = body + size;
    if (!(id === 0 && name === "name")) keep.push(wasm.subarray(start, i));
  }
  return Buffer.concat(keep);
}
const require = createRequire(import.meta.url);
const wasmPath = require.resolve("@automerge/automerge/automerge.wasm");
writeFileSync(join(out, "automerge.wasm"), withoutNames(readFileSync(wasmPath)));

const COMPRESSED = ["app.js", "app.css", "automerge.wasm"];
for (const f of COMPRESSED) {
  const raw = readFileSync(join(out, f));
  writeFileSync(join(out, `${f}.gz`), gzipSync(raw, { level: constants.Z_BEST_COMPRESSION }));
  writeFileSync(
    join(out, `${f}.br`),
    brotliCompressSync(raw, {
      params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: raw.length },
    }),
  );
}

if (check) {
  const all = COMPRESSED.flatMap((f) => [f, `${f}.gz`, `${f}.br`]);
  const differ = all.filter((f) => {
    try {
      return !readFileSync(join(out, f)).equals(readFileSync(join(here, "dist", f)));
    } catch {
      return true;
    }
  });
  if (differ.length) {
    console.error(`web/dist is not what web/src builds (${differ.join(", ")}): run npm run build in web/`);
    process.exit(1);
  }
  console.log("web/dist matches the sources");
}

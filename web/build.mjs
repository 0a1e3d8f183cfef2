// Builds the web client into dist/ (index.html, app.js, app.css), which toron-server embeds.
// `node build.mjs --check` builds into a temporary folder and fails if dist/ differs: the
// committed assets must be what the sources build.
import { build } from "esbuild";
import { gzipSync, constants } from "node:zlib";
import { mkdtempSync, readFileSync, writeFileSync, copyFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

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
copyFileSync(join(here, "src/index.html"), join(out, "index.html"));
copyFileSync(join(here, "src/app.css"), join(out, "app.css"));
// The server sends this to browsers that accept gzip (a fifth of the size; no timestamp in it,
// so the same sources give the same bytes).
writeFileSync(join(out, "app.js.gz"), gzipSync(readFileSync(join(out, "app.js")), { level: constants.Z_BEST_COMPRESSION }));

if (check) {
  const differ = ["index.html", "app.js", "app.js.gz", "app.css"].filter(
    (f) => !readFileSync(join(out, f)).equals(readFileSync(join(here, "dist", f))),
  );
  if (differ.length) {
    console.error(`web/dist is not what web/src builds (${differ.join(", ")}): run npm run build in web/`);
    process.exit(1);
  }
  console.log("web/dist matches the sources");
}

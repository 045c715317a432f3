// make docs, the last step (compile.mjs calls it): writes FILE.br (Brotli, quality 11) and FILE.gz (gzip, level 9)
// beside every file of the built site that is worth compressing, for a server that sends them with
// Content-Encoding to a browser that accepts it (serve.py here; nginx's brotli_static and gzip_static elsewhere).
// A copy is written only where it is at least 5% smaller than the file. Brotli at quality 11 takes a minute or
// two on the largest files, so each compressed copy is kept in a cache (~/.cache/paramsym/compressed, or
// $PARAMSYM_COMPRESS_CACHE) under the hash of what it was made from: a rebuild, in this checkout or another,
// compresses again only the files that changed (usually python.zip).
//
// usage: node docs/playground/compress.mjs SITE
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import zlib from "node:zlib";

const CACHE = process.env.PARAMSYM_COMPRESS_CACHE ||
  join(process.env.XDG_CACHE_HOME || join(homedir(), ".cache"), "paramsym", "compressed");
// what gains: text, WebAssembly, zips of uncompressed members (compile.mjs), TrueType fonts; not woff/woff2/png
const EXTENSIONS = /\.(html|js|mjs|css|json|wasm|zip|svg|xml|txt|map|ttf)$/;
const SMALLEST = 1024;
const brotli = promisify(zlib.brotliCompress);
const gzip = promisify(zlib.gzip);
const ENCODINGS = {
  br: (data) => brotli(data, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 11,
    [zlib.constants.BROTLI_PARAM_LGWIN]: 24, [zlib.constants.BROTLI_PARAM_SIZE_HINT]: data.length } }),
  gz: (data) => gzip(data, { level: 9 }),
};

function files(folder) {
  return readdirSync(folder, { withFileTypes: true }).flatMap((entry) => {
    const path = join(folder, entry.name);
    return entry.isDirectory() ? files(path) : [path];
  });
}

async function compressed(data, encoding) {
  const key = createHash("sha256").update(data).digest("hex") + "." + encoding;
  const cached = join(CACHE, key.slice(0, 2), key);
  if (existsSync(cached)) return readFileSync(cached);
  const out = await ENCODINGS[encoding](data);
  mkdirSync(dirname(cached), { recursive: true });
  writeFileSync(cached, out);
  return out;
}

export async function compressTree(site) {
  const started = Date.now();
  let before = 0, after = 0, count = 0;
  const jobs = [];
  for (const path of files(site)) {
    if (/\.(br|gz)$/.test(path)) { rmSync(path); continue; }  // left by an earlier build
    if (!EXTENSIONS.test(path) || statSync(path).size < SMALLEST) continue;
    const data = readFileSync(path);
    jobs.push(Promise.all(Object.keys(ENCODINGS).map(async (encoding) => {
      const out = await compressed(data, encoding);
      if (out.length > 0.95 * data.length) return data.length;
      writeFileSync(`${path}.${encoding}`, out);
      return out.length;
    })).then((sizes) => { before += data.length; after += Math.min(...sizes); count++; }));
  }
  await Promise.all(jobs);
  console.log(`compressed ${count} files of ${relative(process.cwd(), site) || "."}: ${(before / 1e6).toFixed(1)} MB ` +
    `-> ${(after / 1e6).toFixed(1)} MB with Brotli (${((Date.now() - started) / 1000).toFixed(0)} s)`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await compressTree(resolve(process.argv[2] || "site"));
}

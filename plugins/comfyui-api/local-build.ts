// A comfyui-api build on this machine, made ready to send: a single binary as it is, a build
// folder (or a tarball of one, unpacked first) as a gzip tarball plus its sha256 manifest.
import { spawn } from "node:child_process";
import { createReadStream, rmSync } from "node:fs";
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative, resolve, sep } from "node:path";
import { createHash } from "node:crypto";
import { TaskError } from "../../lib/index.ts";
import { folderManifest, isArchiveName, LAUNCHER, MANIFEST, MARKER, type TreeEntry } from "./builds.ts";

export interface LocalBuild {
  kind: "binary" | "folder";
  /** the binary, or the tarball made from the folder */
  upload: string;
  /** folder: the sha256sum manifest */
  sums?: string;
  sha256: string;
  /** payload bytes (the binary, or the folder's files) */
  bytes: number;
  files: number;
  version?: string;
  /** remove the temporary files */
  cleanup(): Promise<void>;
  cleanupSync(): void;
}

function fileSha256(path: string): Promise<string> {
  return new Promise((ok, fail) => {
    const h = createHash("sha256");
    createReadStream(path)
      .on("error", fail)
      .on("data", (c) => h.update(c))
      .on("end", () => ok(h.digest("hex")));
  });
}

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((ok, fail) => {
    const p = spawn(cmd, args, { stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    p.stderr.on("data", (c: Buffer) => (err += c));
    p.on("error", fail);
    p.on("close", (code) => (code === 0 ? ok() : fail(new Error(`${cmd} ${args.join(" ")}: exit ${code}: ${err.trim()}`))));
  });
}

async function walk(root: string, dir = root, out: TreeEntry[] = [], bytes = { n: 0 }): Promise<{ entries: TreeEntry[]; bytes: number }> {
  for (const d of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, d.name);
    const rel = relative(root, p).split(sep).join("/");
    if (dir === root && (d.name === MANIFEST || d.name === MARKER)) continue; // flow's own files, from a build copied off a host
    if (d.isSymbolicLink()) out.push({ path: rel, type: "link", target: await readlink(p) });
    else if (d.isDirectory()) await walk(root, p, out, bytes);
    else if (d.isFile()) {
      const st = await lstat(p);
      bytes.n += st.size;
      out.push({ path: rel, type: "file", sha256: await fileSha256(p), executable: (st.mode & 0o100) !== 0 });
    }
  }
  return { entries: out, bytes: bytes.n };
}

/** The folder to use when an archive holds one top folder and no launcher beside it. */
async function buildRoot(dir: string): Promise<string> {
  const names = await readdir(dir);
  if (names.includes(LAUNCHER) || names.length !== 1) return dir;
  const only = join(dir, names[0]!);
  return (await stat(only)).isDirectory() ? only : dir;
}

async function versionOf(dir: string): Promise<string | undefined> {
  for (const f of ["flow-build.json", "dist/package.json", "package.json"]) {
    try {
      const v = JSON.parse(await readFile(join(dir, f), "utf8")).version;
      if (typeof v === "string" && v) return v;
    } catch {
      /* next */
    }
  }
  return undefined;
}

/** Read a local file or folder into a build ready to send; throws a TaskError naming what is wrong. */
export async function prepareLocalBuild(path: string): Promise<LocalBuild> {
  const abs = resolve(path);
  const st = await stat(abs).catch(() => null);
  if (!st) throw new TaskError(`--from ${path}: no such file or folder`);
  path = abs;
  const temps: string[] = [];
  const cleanup = async () => {
    for (const t of temps) await rm(t, { recursive: true, force: true });
  };
  const cleanupSync = () => {
    for (const t of temps) rmSync(t, { recursive: true, force: true });
  };
  try {
    if (st.isFile() && !isArchiveName(abs)) {
      if ((st.mode & 0o111) === 0)
        throw new TaskError(`--from ${path}: not executable (a comfyui-api binary, a build folder or a .tgz of one)`);
      return { kind: "binary", upload: abs, sha256: await fileSha256(abs), bytes: st.size, files: 1, cleanup, cleanupSync };
    }
    let dir = abs;
    if (st.isFile()) {
      const tmp = await mkdtemp(join(tmpdir(), "flow-api-build-"));
      temps.push(tmp);
      await mkdir(join(tmp, "x"));
      await run("tar", ["-xf", abs, "-C", join(tmp, "x")]);
      dir = await buildRoot(join(tmp, "x"));
    } else if (!st.isDirectory()) throw new TaskError(`--from ${path}: not a file or folder`);
    const launcher = await lstat(join(dir, LAUNCHER)).catch(() => null);
    if (!launcher?.isFile()) throw new TaskError(`--from ${path}: a build folder has its launcher ${LAUNCHER} at the top (none found)`);
    if ((launcher.mode & 0o100) === 0) throw new TaskError(`--from ${path}: ${LAUNCHER} at the build's top is not executable`);
    const tmp = await mkdtemp(join(tmpdir(), "flow-api-tgz-"));
    temps.push(tmp);
    const tgz = join(tmp, "build.tgz");
    // hashing and packing at once: both read every file, tar's gzip is the slow half
    const [{ entries, bytes }] = await Promise.all([
      walk(dir),
      run("tar", ["-czf", tgz, "-C", dir, "--exclude", `./${MANIFEST}`, "--exclude", `./${MARKER}`, "."]),
    ]);
    let m: { sums: string; sha256: string };
    try {
      m = folderManifest(entries);
    } catch (e) {
      throw new TaskError(`--from ${path}: ${(e as Error).message}`);
    }
    return {
      kind: "folder",
      upload: tgz,
      sums: m.sums,
      sha256: m.sha256,
      bytes,
      files: entries.filter((e) => e.type === "file").length,
      version: await versionOf(dir),
      cleanup,
      cleanupSync,
    };
  } catch (e) {
    await cleanup();
    throw e;
  }
}

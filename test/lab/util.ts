// Paths and one way to run a program (argv only, never a shell string).
import { spawn } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { mkdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
/** Lab state (keys, known_hosts, inventory, Node tarball); git-ignored. */
export const labDir = resolve(repoRoot, ".lab");
/** Survives `rm -rf .lab` and `docker system prune`: debootstrap output and .debs. */
export const cacheDir = "/var/cache/flow-lab";

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  input?: string | Buffer;
  cwd?: string;
  /** resolve with the exit code instead of throwing on failure */
  allowFail?: boolean;
  timeoutMs?: number;
  /** stream output to this process's stderr (long builds) */
  echo?: boolean;
}

export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    // no input: stdin is /dev/null (ssh would otherwise forward our stdin and may hit EPIPE)
    const stdin = opts.input === undefined ? "ignore" : "pipe";
    const child = spawn(cmd, args, { stdio: [stdin, "pipe", "pipe"], timeout: opts.timeoutMs, cwd: opts.cwd });
    let stdout = "";
    let stderr = "";
    child.stdout!.on("data", (d: Buffer) => {
      stdout += d;
      if (opts.echo) process.stderr.write(d);
    });
    child.stderr!.on("data", (d: Buffer) => {
      stderr += d;
      if (opts.echo) process.stderr.write(d);
    });
    child.on("error", (err) => (opts.allowFail ? resolvePromise({ code: 127, stdout, stderr: String(err) }) : reject(err)));
    child.on("close", (code, signal) => {
      const result = { code: code ?? 128, stdout, stderr };
      if (code === 0 || opts.allowFail) return resolvePromise(result);
      const why = signal ? `killed by ${signal}` : `exit ${code}`;
      reject(new Error(`${cmd} ${args.join(" ")}: ${why}\n${stderr.trim().split("\n").slice(-15).join("\n")}`));
    });
    if (child.stdin) {
      child.stdin.on("error", () => {}); // a child that exits without reading its input is reported by its exit code
      child.stdin.end(opts.input);
    }
  });
}

/** true when `cmd` can be executed (found on PATH). */
export async function have(cmd: string): Promise<boolean> {
  const r = await run(cmd, ["--version"], { allowFail: true });
  return r.code !== 127;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Run `fn` holding a lock: an atomic mkdir of `dir` with the holder's pid inside. A lock whose
 * holder is gone is taken over. For builds into the shared cache (several test processes, or
 * several engineers, may want the same build at once: one builds, the others wait and reuse it).
 */
export async function withDirLock<T>(dir: string, fn: () => Promise<T>, timeoutMs = 30 * 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await mkdir(dir);
      await writeFile(`${dir}/pid`, String(process.pid));
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      const pid = Number(await readFile(`${dir}/pid`, "utf8").catch(() => "0"));
      let stale: boolean;
      if (!pid) stale = Date.now() - ((await stat(dir).catch(() => null))?.mtimeMs ?? 0) > 10_000;
      else {
        try {
          process.kill(pid, 0);
          stale = false;
        } catch (e) {
          stale = (e as NodeJS.ErrnoException).code === "ESRCH";
        }
      }
      if (stale) {
        await rm(dir, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline) throw new Error(`${dir} is held by process ${pid} (waited ${Math.round(timeoutMs / 1000)}s)`);
      await sleep(500);
    }
  }
  try {
    return await fn();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** dockerd starts in the background with a lab host; give it a minute. */
async function waitForInnerEngine(container: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await run("docker", ["exec", container, "docker", "info", "--format", "{{.Driver}}"], { allowFail: true, timeoutMs: 20_000 });
    if (r.code === 0) return;
    if (Date.now() > deadline)
      throw new Error(`${container}: inner Docker engine does not answer (was the host started with docker: false?)\n${r.stderr.trim()}`);
    await sleep(500);
  }
}

/** Like util's run, with a file as stdin (a 100 MB tarball is not a string). */
function runWithFileInput(cmd: string, args: string[], file: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const fd = openSync(file, "r");
    const child = spawn(cmd, args, { stdio: [fd, "ignore", "pipe"] });
    closeSync(fd);
    let stderr = "";
    child.stderr!.on("data", (d: Buffer) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(" ")}: exit ${code}\n${stderr.trim()}`))));
  });
}

export interface InnerImageLoad {
  /** false when the host already had this exact image */
  loaded: boolean;
  ms: number;
  /** the image's size as the inner engine reports it */
  bytes: number;
}

/**
 * Make sure a lab host's inner engine has `tag` imported from the tarball at `path`, labelled with
 * its content `hash` (`hashLabel`): imported only when the host's copy carries another hash.
 */
export async function ensureInnerImage(
  host: { name: string; container: string },
  image: { tag: string; hashLabel: string; hash: string; path: string; changes: string[] },
  log: (msg: string) => void = () => {},
): Promise<InnerImageLoad> {
  const started = Date.now();
  const inspect = async (): Promise<{ hash: string; bytes: number } | null> => {
    const format = `{{index .Config.Labels "${image.hashLabel}"}} {{.Size}}`;
    const r = await run("docker", ["exec", host.container, "docker", "image", "inspect", "--format", format, image.tag], {
      allowFail: true,
    });
    if (r.code !== 0) return null;
    const [hash = "", size] = r.stdout.trim().split(" ");
    return { hash, bytes: Number(size) };
  };
  await waitForInnerEngine(host.container);
  let loaded = false;
  if ((await inspect())?.hash !== image.hash) {
    log(`${host.name}: loading ${image.tag} (${image.hash}) into the inner engine`);
    const changes = [...image.changes, `LABEL ${image.hashLabel}=${image.hash}`].flatMap((c) => ["--change", c]);
    await runWithFileInput("docker", ["exec", "-i", host.container, "docker", "import", ...changes, "-", image.tag], image.path);
    loaded = true;
  }
  const now = await inspect();
  if (now?.hash !== image.hash) throw new Error(`${host.name}: ${image.tag} has hash ${now?.hash ?? "(none)"} after loading ${image.hash}`);
  return { loaded, ms: Date.now() - started, bytes: now.bytes };
}

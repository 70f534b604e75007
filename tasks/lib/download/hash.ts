// sha256 off the main thread, fed in file order as the contiguous prefix of a .part grows,
// and a sidecar remembering a verified hash so a re-run does not re-read 20 GB.
import { Worker } from "node:worker_threads";
import { readFileSync, rmSync, writeFileSync, renameSync, type Stats } from "node:fs";
import { basename, dirname, join } from "node:path";

// Inline (eval) worker: survives esbuild bundling into a single pushed file.
// It re-reads the file from the page cache, which is cheaper than holding received chunks.
const WORKER = `
const { parentPort, workerData } = require("node:worker_threads");
const fs = require("node:fs");
const h = require("node:crypto").createHash("sha256");
const fd = fs.openSync(workerData.path, "r");
const buf = Buffer.allocUnsafe(4 << 20);
let pos = 0;
parentPort.on("message", (m) => {
  try {
    while (pos < m.upTo) {
      const n = fs.readSync(fd, buf, 0, Math.min(buf.length, m.upTo - pos), pos);
      if (n <= 0) throw new Error("file shorter than " + m.upTo + " bytes");
      h.update(n === buf.length ? buf : buf.subarray(0, n));
      pos += n;
    }
    if (m.final) { fs.closeSync(fd); parentPort.postMessage({ digest: h.digest("hex"), pos }); }
  } catch (e) { parentPort.postMessage({ error: String(e && e.message || e) }); }
});
`;

/** Hashes path from byte 0 up to whatever feed() says is final on disk. */
export class Hasher {
  private started?: Worker;
  private sent = 0;
  private failed?: string;
  private result?: Promise<string>;

  /**
   * startAt: the worker starts once the prefix reaches this many bytes (or at digest). Starting a
   * thread and hashing take CPU that, on a small box, the connections need while they ramp up;
   * the hash catches up later (it runs at ~1.5 GB/s, faster than any link it follows).
   */
  constructor(
    private readonly path: string,
    private readonly startAt = 0,
  ) {
    if (startAt <= 0) void this.worker;
  }

  private get worker(): Worker {
    if (!this.started) {
      // execArgv []: the worker needs no loader, and inheriting one (tsx's --import) can deadlock Node 20
      this.started = new Worker(WORKER, { eval: true, workerData: { path: this.path }, execArgv: [] });
      this.started.on("message", (m: { error?: string }) => {
        if (m.error) this.failed = m.error;
      });
    }
    return this.started;
  }

  /** Bytes [0, upTo) are written and will not change. Cheap; batches small advances. */
  feed(upTo: number, force = false): void {
    if (upTo < this.startAt && !this.started) return;
    if (upTo > this.sent && (force || upTo - this.sent >= 1 << 20)) {
      this.sent = upTo;
      this.worker.postMessage({ upTo });
    }
  }

  digest(size: number): Promise<string> {
    this.result ??= new Promise<string>((resolve, reject) => {
      this.worker.on("message", (m: { digest?: string; error?: string; pos?: number }) => {
        if (m.error) reject(new Error(`hashing failed: ${m.error}`));
        else if (m.digest) resolve(m.digest);
      });
      this.worker.once("error", reject);
      if (this.failed) reject(new Error(`hashing failed: ${this.failed}`));
      this.worker.postMessage({ upTo: size, final: true });
    }).finally(() => void this.worker.terminate());
    return this.result;
  }

  close(): void {
    void this.started?.terminate();
  }
}

export async function hashFile(path: string, size: number): Promise<string> {
  return new Hasher(path).digest(size);
}

/** Hidden, next to the model: `.name.safetensors.sha256` (not a model extension ComfyUI lists). */
export function verifiedPath(target: string): string {
  return join(dirname(target), `.${basename(target)}.sha256`);
}

interface Verified {
  sha256: string;
  size: number;
  mtimeMs: number;
  ino: number;
}

/** The hash verified earlier, if the file has not changed since (same size, mtime, inode). */
export function readVerified(target: string, st: Stats): string | undefined {
  try {
    const v = JSON.parse(readFileSync(verifiedPath(target), "utf8")) as Verified;
    if (v.size === st.size && v.mtimeMs === st.mtimeMs && v.ino === st.ino) return v.sha256;
  } catch {
    /* no sidecar, or an unreadable one: hash again */
  }
  return undefined;
}

export function writeVerified(target: string, sha256: string, st: Stats): void {
  const p = verifiedPath(target);
  try {
    // a fresh .tmp, created exclusively ("wx" never follows a planted symlink)
    rmSync(p + ".tmp", { recursive: true, force: true });
    const record = JSON.stringify({ sha256, size: st.size, mtimeMs: st.mtimeMs, ino: st.ino } satisfies Verified);
    writeFileSync(p + ".tmp", record, { flag: "wx", mode: 0o600 }); // only the downloader reads it
    renameSync(p + ".tmp", p);
  } catch {
    rmSync(p + ".tmp", { force: true });
  }
}

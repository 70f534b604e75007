// The download engine: M files at once, each over N HTTP Range connections that share the work
// (in-order chunks, then the largest remaining range is split for an idle connection), positional
// writes into <target>.part, resumable from <target>.part.state, sha256 alongside, atomic placement.
import { Agent, buildConnector, type ConnectorFn, type Dispatcher } from "./undici.ts";
import {
  closeSync, constants, fdatasync, ftruncateSync, fstatSync, mkdirSync, openSync, readSync, realpathSync, renameSync, rmSync, statSync,
  writevSync, type Stats,
} from "node:fs";
import { setMaxListeners } from "node:events";
import { basename, dirname, isAbsolute, relative, resolve, sep } from "node:path";
import type { ConnectionOptions } from "node:tls";
import { FatalError, RetryableError, classify, contentLength, contentRange, open, shown, type Opened } from "./http.ts";
import { FallbackError, RangeConnection } from "./range-client.ts";
import { Hasher, hashFile, readVerified, writeVerified } from "./hash.ts";
import { RangeSet, type Range } from "./ranges.ts";
import { StateFile, partPath, readState, removeState, removeUnlessFile } from "./state.ts";
import { SNIFF_BYTES, sniff } from "./sniff.ts";
import type { DownloadEvent, DownloadFile, DownloadJob, DownloadSummary, FileProgress, FileResult } from "./types.ts";
import { guardConnector, type Connector, type NetPolicy } from "../../../lib/net-policy.ts";
import { maskUrlsInText, stripUrlCredentials } from "../../../lib/url-credentials.ts";

const KiB = 1024;
const MiB = 1024 * KiB;

export interface DownloadOptions {
  onProgress?: (event: DownloadEvent) => void;
  signal?: AbortSignal;
  /** Tests and benchmarks: undici dispatcher to use instead of a fresh Agent. */
  dispatcher?: Dispatcher;
  /** Tests: TLS options (a private CA) for both undici and the range connections. */
  tls?: ConnectionOptions;
}

interface Settings {
  connections: number;
  parallelFiles: number;
  chunkSize?: number;
  retries: number;
  retryBaseMs: number;
  retryMaxMs: number;
  timeoutMs: number;
  progressMs: number;
  fsync: boolean;
  modelsRoot: string;
  /** Where requests may go: public addresses over https, and the hosts the flowfile's settings.allowHosts lists. */
  policy: NetPolicy;
}

export async function downloadAll(job: DownloadJob, opts: DownloadOptions = {}): Promise<DownloadSummary> {
  const started = Date.now();
  if (!job || !Array.isArray(job.files)) throw new Error("download job: files must be a list");
  if (!job.modelsRoot || !isAbsolute(job.modelsRoot)) throw new Error("download job: modelsRoot must be an absolute path");
  const s: Settings = {
    connections: clampInt(job.connections ?? 16, 1, 64),
    parallelFiles: clampInt(job.parallelFiles ?? 2, 1, 16),
    chunkSize: job.chunkSize,
    retries: job.retries ?? 8,
    retryBaseMs: job.retryBaseMs ?? 1000,
    retryMaxMs: job.retryMaxMs ?? 60_000,
    timeoutMs: job.timeoutMs ?? 30_000,
    progressMs: job.progressMs ?? 250,
    fsync: job.fsync ?? false,
    modelsRoot: resolve(job.modelsRoot),
    policy: { allowHosts: Array.isArray(job.allowHosts) ? job.allowHosts.map(String) : [] },
  };
  const onProgress = opts.onProgress ?? (() => {});
  // a URL may carry a credential (?token=): no message leaves with one, whoever wrote it
  const emit = (e: DownloadEvent) => {
    if (e.type === "log") onProgress({ ...e, message: maskUrlsInText(e.message) });
    else if (e.type === "file" && e.reason) onProgress({ ...e, reason: maskUrlsInText(e.reason) });
    else onProgress(e);
  };
  // every connection undici opens is checked against the policy when it is made (names once resolved)
  const connect = guardConnector(s.policy, buildConnector({ timeout: s.timeoutMs, ...opts.tls }) as unknown as Connector);
  const agent = opts.dispatcher ?? new Agent({ keepAliveTimeout: 10_000, connect: connect as unknown as ConnectorFn });
  const active = new Set<FileDownload>();
  const results: FileResult[] = new Array(job.files.length);

  const tick = () => {
    if (!active.size) return;
    const files = [...active].map((f) => f.snapshot());
    const done = files.reduce((n, f) => n + f.done, 0);
    const total = files.reduce((n, f) => n + f.total, 0);
    const speed = files.reduce((n, f) => n + f.speed, 0);
    emit({ type: "progress", files, done, total, speed, eta: speed > 0 ? Math.round((total - done) / speed) : null });
  };
  const ticker = setInterval(tick, s.progressMs);
  ticker.unref();

  const twice = duplicates(job.files);
  let next = 0;
  const lane = async () => {
    while (next < job.files.length) {
      const i = next++;
      const f = new FileDownload(job.files[i]!, s, agent, emit, opts.signal, opts.tls);
      active.add(f);
      try {
        const dup = twice.get(i);
        // one writer per target: two at once would race on the same .part and rename
        results[i] = dup ? f.result(dup.same ? "skipped" : "failed", dup.reason) : await f.run();
      } catch (err) {
        results[i] = f.result("failed", (err as Error).message);
      } finally {
        active.delete(f);
        f.dispose();
      }
      const r = results[i]!;
      emit({ type: "file", status: r.status, name: r.name, target: r.target, reason: r.reason, bytes: r.fetched });
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(s.parallelFiles, job.files.length) }, lane));
  } finally {
    clearInterval(ticker);
    if (!opts.dispatcher) await (agent as InstanceType<typeof Agent>).close().catch(() => {});
  }
  return {
    downloaded: results.filter((r) => r.status === "downloaded"),
    skipped: results.filter((r) => r.status === "skipped"),
    failed: results.filter((r) => r.status === "failed"),
    fetched: results.reduce((n, r) => n + r.fetched, 0),
    seconds: (Date.now() - started) / 1000,
  };
}

/**
 * Entries whose target another, earlier entry of the job already names: same: the same source
 * (skipped), or a different one (failed; the job's builder should have settled which).
 */
function duplicates(files: DownloadFile[]): Map<number, { same: boolean; reason: string }> {
  const first = new Map<string, number>();
  const out = new Map<number, { same: boolean; reason: string }>();
  const source = (f: DownloadFile) => `${stripUrlCredentials(String(f.url))}\0${f.sha256?.toLowerCase() ?? ""}\0${f.size ?? ""}`;
  files.forEach((f, i) => {
    const key = typeof f?.target === "string" && isAbsolute(f.target) ? resolve(f.target) : undefined;
    if (key === undefined) return;
    const j = first.get(key);
    if (j === undefined) return void first.set(key, i);
    const other = files[j]!;
    const same = source(other) === source(f);
    const reason = same
      ? `listed twice in the job (as ${other.name ?? basename(key)}): downloaded once`
      : `listed twice in the job for ${key}, with another source than ${shown(String(other.url))}: not downloaded`;
    out.set(i, { same, reason });
  });
  return out;
}

function clampInt(v: number, lo: number, hi: number): number {
  return Math.max(lo, Math.min(hi, Math.floor(Number(v) || lo)));
}

/** Inside root lexically, and still inside once symlinks of existing ancestors are resolved. */
export function insideRoot(root: string, target: string): boolean {
  const within = (r: string, t: string) => {
    const rel = relative(r, t);
    return rel !== "" && !rel.startsWith(".." + sep) && rel !== ".." && !isAbsolute(rel);
  };
  if (!isAbsolute(target) || !within(root, resolve(target))) return false;
  let realRoot: string;
  try {
    realRoot = realpathSync(root);
  } catch {
    return true; // nothing exists yet, so nothing can point elsewhere
  }
  let p = dirname(resolve(target));
  for (;;) {
    try {
      const real = realpathSync(p);
      return real === realRoot || within(realRoot, real);
    } catch {
      const up = dirname(p);
      if (up === p) return false;
      p = up;
    }
  }
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((done) => {
    if (signal.aborted || ms <= 0) return done();
    const t = setTimeout(finish, ms);
    function finish() {
      clearTimeout(t);
      signal.removeEventListener("abort", finish);
      done();
    }
    signal.addEventListener("abort", finish);
  });

/** Positional write of several buffers (writev: no copy into one buffer), short writes continued. */
function writeAllSync(fd: number, bufs: Buffer[], pos: number): void {
  while (bufs.length) {
    let n = writevSync(fd, bufs, pos);
    pos += n;
    while (bufs.length && n >= bufs[0]!.length) n -= bufs.shift()!.length;
    if (bufs.length && n) bufs[0] = bufs[0]!.subarray(n);
  }
}

interface Assignment {
  start: number;
  pos: number;
  /** Exclusive; lowered when an idle connection takes over the second half. */
  end: number;
  ctrl: AbortController;
  /** The URL this assignment's request went to (a signed link, after the first resolve). */
  url?: string;
}

/**
 * Received chunks of one assignment go to disk in order, gathered into writes of at least
 * `batch` bytes (0: each chunk at once, for chunks that are a reused read buffer). Synchronous,
 * on purpose: a write into the page cache is a memory copy, cheaper than a round trip through
 * libuv's threadpool; bytes are recorded as written the moment they are, so the state a kill
 * leaves trails the network by little; and a slow disk slows the reading of the sockets, which
 * is the back-pressure a download wants.
 */
class Writer {
  private bufs: Buffer[] = [];
  private bufPos = 0;
  private bufLen = 0;

  constructor(private f: FileDownload, private batch: number) {}

  push(pos: number, buf: Buffer): void {
    if (!this.bufLen) this.bufPos = pos;
    this.bufs.push(buf);
    this.bufLen += buf.length;
    if (this.bufLen >= this.batch) this.flush();
  }

  /** Write what is gathered; throws a FatalError naming the .part when the disk refuses. */
  flush(): void {
    if (!this.bufLen) return;
    const pos = this.bufPos;
    const len = this.bufLen;
    const data = this.bufs;
    this.bufs = [];
    this.bufLen = 0;
    try {
      writeAllSync(this.f.fd, data, pos);
    } catch (e) {
      throw new FatalError(`cannot write ${this.f.part}: ${(e as Error).message}`);
    }
    this.f.written(pos, pos + len);
  }
}

class FileDownload {
  readonly name: string;
  readonly target: string;
  readonly part: string;
  readonly label: string;
  private readonly started = Date.now();
  private size?: number;
  private readonly sha?: string;
  // resolved once (redirects followed), then every range request goes straight there
  private url: string;
  /** The URL as the state file records it: without credentials (a refreshed ?token= still resumes). */
  private readonly stateUrl: string;
  private headers: Record<string, string>;
  private resolved = false;
  private reresolves = 0;

  private done = new RangeSet();
  private doneBytes = 0;
  private pending: Range[] = [];
  private active = new Set<Assignment>();
  private rangeOk = false;
  private single = false;
  private alive = 0;
  private allDone?: () => void;
  private error?: Error;
  private notBefore = 0;
  private stop = new AbortController();
  private hasher?: Hasher;
  fd = -1;
  private received = 0;
  private samples: [number, number][] = [];
  private savedBytes = 0;
  private savedAt = 0;
  private saveEvery = MiB;
  private state?: StateFile;
  private batch = 64 * KiB;
  private verifying = false;
  /** Set when the range connections met a response they leave to undici: the rest of this file goes there. */
  private fastOff = false;

  constructor(
    private readonly file: DownloadFile,
    private readonly s: Settings,
    private readonly agent: Dispatcher,
    private readonly emit: (e: DownloadEvent) => void,
    signal?: AbortSignal,
    private readonly tls?: ConnectionOptions,
  ) {
    this.target = String(file.target ?? "");
    this.name = file.name ?? basename(this.target);
    this.part = partPath(this.target);
    this.label = shown(String(file.url ?? ""));
    this.url = String(file.url ?? "");
    this.stateUrl = stripUrlCredentials(this.url);
    this.headers = { ...(file.headers ?? {}) };
    this.size = typeof file.size === "number" && file.size >= 0 ? file.size : undefined;
    this.sha = file.sha256 ? file.sha256.toLowerCase() : undefined;
    signal?.addEventListener("abort", () => this.fail(new FatalError("cancelled")), { once: true });
  }

  result(status: FileResult["status"], why?: string): FileResult {
    const reason = why === undefined ? undefined : maskUrlsInText(why); // the summary is written down too
    return {
      name: this.name, target: this.target, url: this.label, status, reason, size: this.size, sha256: this.sha,
      fetched: this.received, seconds: (Date.now() - this.started) / 1000,
    };
  }

  snapshot(): FileProgress {
    const now = Date.now();
    this.samples.push([now, this.received]);
    while (this.samples.length > 2 && now - this.samples[0]![0] > 3000) this.samples.shift();
    const [t0, b0] = this.samples[0]!;
    const speed = now > t0 ? Math.round(((this.received - b0) * 1000) / (now - t0)) : 0;
    const total = this.size ?? 0;
    const done = this.verifying ? total : this.doneBytes;
    return { name: this.name, done, total, speed, eta: speed > 0 && total ? Math.round((total - done) / speed) : null };
  }

  dispose(): void {
    this.hasher?.close();
    this.stop.abort();
    this.state?.close(); // kept on disk: the next run resumes from it
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }

  async run(): Promise<FileResult> {
    if (!/^https?:\/\//i.test(this.url)) return this.result("failed", `not an http(s) URL: ${this.label}`);
    if (!insideRoot(this.s.modelsRoot, this.target)) {
      return this.result("failed", `target ${this.target} is outside the models root ${this.s.modelsRoot}: refused`);
    }
    if (this.sha && !/^[0-9a-f]{64}$/.test(this.sha)) return this.result("failed", `not a sha256: ${this.file.sha256}`);
    mkdirSync(dirname(this.target), { recursive: true });
    if (this.size === undefined) await this.probeSize();

    const present = statOrUndefined(this.target);
    if (present?.isFile() && this.size !== undefined && present.size === this.size) {
      if (!this.sha) return this.result("skipped", "present with the expected size");
      if (readVerified(this.target, present) === this.sha) return this.result("skipped", "present, sha256 verified earlier");
      this.emit({ type: "file", status: "verifying", name: this.name, target: this.target });
      if ((await hashFile(this.target, present.size)) === this.sha) {
        writeVerified(this.target, this.sha, present);
        return this.result("skipped", "present, sha256 verified");
      }
      this.emit({ type: "log", message: `${this.name}: present but its sha256 differs; downloading again` });
    }

    this.emit({ type: "file", status: "start", name: this.name, target: this.target, bytes: this.size });
    for (let attempt = 1; ; attempt++) {
      const failure = await this.fetchAll();
      if (failure) return this.result("failed", failure);
      const placed = await this.verifyAndPlace();
      if (placed === true) return this.result("downloaded");
      if (attempt >= 2) return this.result("failed", placed);
      // a corrupt .part cannot be repaired piecewise without piece hashes: fetch it all again
      this.emit({ type: "log", message: `${this.name}: ${placed}; fetching it again` });
    }
  }

  /** Size unknown: ask for one byte (a GET works where HEAD is not wired the same way). */
  private async probeSize(): Promise<void> {
    const res = await open(this.url, {
      dispatcher: this.agent, headers: this.headers, range: [0, 0], signal: this.stop.signal, timeoutMs: this.s.timeoutMs,
      label: this.label, policy: this.s.policy,
    });
    discard(res.body);
    this.url = res.url;
    this.headers = res.sendHeaders;
    this.resolved = true;
    this.size = res.status === 206 ? contentRange(res.headers)?.total : contentLength(res.headers);
  }

  /** Runs the connections until the .part is complete; returns a reason when the file failed. */
  private async fetchAll(): Promise<string | undefined> {
    this.preparePart();
    const size = this.size;
    if (size !== undefined && this.doneBytes >= size) return undefined;
    this.error = undefined;
    this.stop = new AbortController();
    setMaxListeners(0, this.stop.signal); // one listener per connection and per sleeping retry
    const finished = new Promise<void>((r) => (this.allDone = r));
    this.spawn(1); // the first request shows whether Range works and where redirects lead; the others follow it
    await finished;
    this.saveState(true);
    const error = this.error as Error | undefined;
    if (!error) return undefined;
    // what is on disk belongs to another file, or there is nothing worth resuming (a 401 on the first request)
    if (error instanceof MismatchError || this.doneBytes === 0) this.discardPart();
    return error.message;
  }

  private preparePart(): void {
    this.state?.close();
    this.state = undefined;
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
    this.hasher?.close();
    this.hasher = undefined;
    // a .part that is not a regular file (a planted symlink) is removed, never written through
    removeUnlessFile(this.part);
    const st = readState(this.target);
    const partSt = statOrUndefined(this.part);
    const resumable =
      st && this.size !== undefined && st.size === this.size && st.url === this.stateUrl && (st.sha256 ?? "") === (this.sha ?? "") &&
      partSt?.size === this.size;
    this.done = new RangeSet(resumable ? st.ranges : []);
    this.doneBytes = this.done.bytes;
    if (!resumable) this.dropState();
    const nofollow = constants.O_NOFOLLOW ?? 0;
    this.fd = openSync(this.part, resumable ? constants.O_RDWR | nofollow : constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | nofollow, 0o666);
    if (this.size !== undefined) ftruncateSync(this.fd, this.size); // sparse: positional writes may land anywhere
    this.pending = this.size === undefined ? [] : this.done.missing(this.size);
    this.savedBytes = this.doneBytes;
    // what a kill may lose (with the writes gathered below): well under 1% of the file
    this.saveEvery = Math.max(256 * KiB, Math.min(2 * MiB, Math.floor((this.size ?? 0) / 512)));
    // writes of up to 512 KiB; small files keep small writes so little sits in memory at a kill
    this.batch = Math.max(64 * KiB, Math.min(512 * KiB, Math.floor((this.size ?? 0) / (this.s.connections * 64))));
    this.rangeOk = false;
    this.single = this.size === undefined;
    if (this.sha) {
      this.hasher = new Hasher(this.part, Math.min(256 * MiB, Math.floor((this.size ?? 0) / 4)));
      this.hasher.feed(this.done.prefix, true);
    }
    if (resumable && this.doneBytes) this.emit({ type: "log", message: `${this.name}: resuming with ${mb(this.doneBytes)} of ${mb(this.size!)} on disk` });
  }

  /** The first bytes of the .part, read back once it is complete (the write fd may be write-only). */
  private readHead(): Buffer {
    const buf = Buffer.alloc(SNIFF_BYTES);
    const fd = openSync(this.part, constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0));
    try {
      return buf.subarray(0, readSync(fd, buf, 0, SNIFF_BYTES, 0));
    } finally {
      closeSync(fd);
    }
  }

  private discardPart(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
    rmSync(this.part, { force: true });
    this.dropState();
  }

  private dropState(): void {
    this.state?.close();
    this.state = undefined;
    removeState(this.target);
  }

  /** Complete .part: check size and sha256, then rename into place. true, or the reason it was not placed. */
  private async verifyAndPlace(): Promise<true | string> {
    const st = fstatSync(this.fd);
    const size = this.size ?? st.size;
    this.size = size;
    if (st.size !== size || this.doneBytes < size) {
      this.discardPart();
      return `size mismatch: expected ${size} bytes, have ${this.doneBytes}`;
    }
    if (!this.sha) {
      // nothing proves these bytes are the model: an error page must not take its name (a sha256 would have)
      const why = sniff(this.readHead(), this.target, size);
      if (why) {
        this.discardPart();
        throw new FatalError(`${why}: ${this.label}`);
      }
    }
    if (this.hasher) {
      this.verifying = true;
      this.emit({ type: "file", status: "verifying", name: this.name, target: this.target });
      const got = await this.hasher.digest(size).finally(() => (this.verifying = false));
      this.hasher = undefined;
      if (got !== this.sha) {
        this.discardPart();
        return `sha256 mismatch: expected ${this.sha}, got ${got}`;
      }
    }
    if (this.s.fsync) {
      // the rename must not reach the disk before the data it names (power loss, not just a kill);
      // off by default: 1 GiB of dirty pages takes ~0.6 s to flush here, and a kill needs no flush
      await new Promise<void>((ok, fail) => fdatasync(this.fd, (e) => (e ? fail(e) : ok())));
    }
    closeSync(this.fd);
    this.fd = -1;
    renameSync(this.part, this.target);
    this.dropState();
    if (this.sha) writeVerified(this.target, this.sha, statSync(this.target));
    return true;
  }

  // ---- connections

  private spawn(n: number): void {
    for (let i = 0; i < n; i++) {
      this.alive++;
      void this.worker();
    }
  }

  private ensureWorkers(): void {
    if (this.rangeOk && !this.error && this.alive < this.s.connections) this.spawn(this.s.connections - this.alive);
  }

  private async worker(): Promise<void> {
    let failures = 0;
    let chunk = this.initialChunk();
    const slot: Slot = {};
    try {
      while (!this.error) {
        // the request that finds out whether ranges work goes through undici alone, the others
        // wait for it: a short one, so this connection is on the bulk path soon
        const a = this.take(this.rangeOk || this.s.chunkSize ? chunk : Math.min(chunk, MiB));
        if (!a) return;
        const t0 = performance.now();
        try {
          await this.fetch(a, slot);
          // size the next request to take about 0.25 s at this connection's speed: few requests, short tail
          const ms = performance.now() - t0;
          if (!this.s.chunkSize && a.pos - a.start >= chunk / 2 && ms > 0) {
            chunk = Math.max(MiB, Math.min(64 * MiB, Math.round(((a.pos - a.start) * 250) / ms / MiB) * MiB));
          }
          failures = 0;
          this.reresolves = 0;
          this.release(a);
        } catch (err) {
          const got = a.pos - a.start;
          this.release(a);
          if (this.error) return;
          const e = classify(err);
          if (e instanceof RetryableError) {
            failures = got > 0 ? 1 : failures + 1;
            if (failures > this.s.retries) {
              this.fail(new FatalError(`gave up after ${this.s.retries} retries: ${e.message}`));
              return;
            }
            if (e.retryAfterMs !== undefined) this.notBefore = Math.max(this.notBefore, Date.now() + Math.min(e.retryAfterMs, this.s.retryMaxMs));
            const backoff = Math.min(this.s.retryMaxMs, this.s.retryBaseMs * 2 ** (failures - 1)) * (0.5 + Math.random() / 2);
            // a reset, or a kept-alive connection the server had just closed: at once, the first time
            const immediate = got > 0 || (failures === 1 && !/^HTTP /.test(e.message));
            const wait = Math.max(immediate ? 0 : backoff, this.notBefore - Date.now());
            this.emit({ type: "log", message: `${this.name}: ${e.message}; retrying${wait > 0 ? ` in ${(wait / 1000).toFixed(1)} s` : ""}` });
            await sleep(wait, this.stop.signal);
            continue;
          }
          if (e instanceof FatalError && (e.status === 401 || e.status === 403) && a.url && a.url !== this.file.url) {
            // a signed CDN link may have expired: start again from the URL we were given. Every
            // connection meets the same expiry; one link counts once, three in a row fail the file
            if (a.url === this.url) {
              if (++this.reresolves > 3) {
                this.fail(e);
                return;
              }
              this.url = this.file.url;
              this.headers = { ...(this.file.headers ?? {}) };
              this.resolved = false;
            }
            continue;
          }
          this.fail(e instanceof Error ? e : new Error(String(e)));
          return;
        }
      }
    } finally {
      slot.conn?.close();
      if (--this.alive === 0) this.allDone?.();
    }
  }

  private initialChunk(): number {
    if (this.s.chunkSize) return this.s.chunkSize;
    const size = this.size ?? 0;
    return Math.max(MiB, Math.min(8 * MiB, Math.floor(size / (this.s.connections * 4) / MiB) * MiB));
  }

  /** The next range for an idle connection: the first unassigned bytes, or half of the largest range in flight. */
  private take(chunk: number): Assignment | null {
    if (this.single) {
      if (this.active.size || (this.size !== undefined && this.doneBytes >= this.size)) return null;
      this.restartSingle(); // without Range nothing on disk helps: from byte 0 again
      return this.assign(0, this.size ?? Infinity);
    }
    const p = this.pending[0];
    if (p) {
      // near the end, smaller pieces (a quarter of an even share of what is left): every connection
      // finishes at about the same time, so the tail needs no splitting (a split aborts a request,
      // wasting what was in flight), and the contiguous prefix the hash reads trails the last byte
      // by little, so the hash is done soon after it (1 GiB: the hash tail 70-140 ms -> ~5 ms)
      let left = 0;
      for (const [s, e] of this.pending) left += e - s;
      const len = Math.max(256 * KiB, Math.min(chunk, Math.ceil(left / this.s.connections / 4 / (64 * KiB)) * 64 * KiB));
      const end = Math.min(p[1], p[0] + len);
      const start = p[0];
      if (end >= p[1]) this.pending.shift();
      else p[0] = end;
      return this.assign(start, end);
    }
    if (!this.rangeOk) return null;
    let victim: Assignment | undefined;
    for (const a of this.active) if (!victim || a.end - a.pos > victim.end - victim.pos) victim = a;
    // only a straggler is worth a split: one whose remaining bytes take long at a typical speed
    if (!victim || victim.end - victim.pos < Math.max(4 * MiB, chunk)) return null;
    const mid = victim.pos + Math.ceil((victim.end - victim.pos) / 2 / (64 * KiB)) * 64 * KiB;
    if (mid >= victim.end) return null;
    const end = victim.end;
    victim.end = mid;
    return this.assign(mid, end);
  }

  private assign(start: number, end: number): Assignment {
    const a = { start, pos: start, end, ctrl: new AbortController() };
    this.active.add(a);
    return a;
  }

  /** The connection is done with a: what it did not get goes back to be taken again. */
  private release(a: Assignment): void {
    if (!this.active.delete(a)) return;
    if (this.single || a.pos >= a.end || this.error) return;
    const r: Range = [a.pos, a.end];
    let i = 0;
    while (i < this.pending.length && this.pending[i]![0] < r[0]) i++;
    this.pending.splice(i, 0, r);
    this.ensureWorkers();
  }

  private fail(e: Error): void {
    if (this.error) return;
    this.error = e;
    for (const a of this.active) a.ctrl.abort();
    this.stop.abort();
  }

  private async fetch(a: Assignment, slot: Slot): Promise<void> {
    const wait = this.notBefore - Date.now();
    if (wait > 0) await sleep(wait, this.stop.signal);
    if (this.error) return;
    a.url = this.url;
    const onStop = () => a.ctrl.abort();
    this.stop.signal.addEventListener("abort", onStop, { once: true });
    try {
      if (this.rangeOk && this.resolved && !this.single && !this.fastOff) {
        try {
          return await this.fetchRange(a, slot);
        } catch (err) {
          if (!(err instanceof FallbackError)) throw err;
          // nothing of the body was taken: the same range goes through undici, as does the rest
          this.fastOff = true;
          slot.conn?.close();
          slot.conn = undefined;
        }
      }
      const res = await open(this.url, {
        dispatcher: this.agent,
        headers: this.headers,
        range: this.single ? undefined : [a.pos, a.end - 1],
        signal: a.ctrl.signal,
        timeoutMs: this.s.timeoutMs,
        label: this.label,
        policy: this.s.policy,
      });
      if (!this.resolved) {
        this.url = res.url;
        this.headers = res.sendHeaders;
        this.resolved = true;
      }
      if (res.status === 206) {
        try {
          this.checkRange(res.headers, a.pos, a.end - 1, res.url, false);
        } catch (e) {
          discard(res.body);
          throw e;
        }
        if (!this.rangeOk) {
          this.rangeOk = true;
          this.spawn(this.s.connections - this.alive);
        }
      } else {
        const len = contentLength(res.headers);
        if (this.size !== undefined && len !== undefined && len !== this.size) {
          discard(res.body);
          throw new MismatchError(`size mismatch: expected ${this.size} bytes, the server sends ${len} (${this.label})`);
        }
        if (!this.single) {
          if (this.rangeOk) {
            discard(res.body);
            throw new RetryableError(`the server ignored a Range request (HTTP 200) from ${shown(res.url)}`);
          }
          this.goSingle(a);
        }
        if (this.size === undefined && len !== undefined) this.size = len;
      }
      const w = new Writer(this, this.batch);
      try {
        await this.receive(res.body, a, w, res.status === 206 ? contentRange(res.headers)!.end + 1 : Infinity);
      } finally {
        w.flush();
      }
      if (this.single) {
        if (this.size === undefined) this.size = a.pos;
        else if (a.pos < this.size) throw new RetryableError(`connection closed after ${a.pos} of ${this.size} bytes from ${shown(res.url)}`);
      }
    } finally {
      this.stop.signal.removeEventListener("abort", onStop);
    }
  }

  /**
   * A 206's Content-Range must start where we asked and name our file's size; exactEnd: end there
   * too (the range path reads the body by Content-Length; undici's path stops at a.end itself).
   */
  private checkRange(headers: Opened["headers"], start: number, end: number, from: string, exactEnd: boolean): void {
    const cr = contentRange(headers);
    if (!cr || cr.start !== start || (exactEnd && cr.end !== end)) {
      throw new RetryableError(`unexpected Content-Range "${headers["content-range"]}" for bytes ${start}-${end} from ${shown(from)}`);
    }
    if (cr.total !== undefined && this.size !== undefined && cr.total !== this.size) {
      throw new MismatchError(`size mismatch: expected ${this.size} bytes, the server has ${cr.total} (${this.label})`);
    }
  }

  /** Body bytes of assignment a into its writer, cut at a.end (which may have moved down). true: a wants more. */
  private accept(a: Assignment, w: Writer, chunk: Buffer): boolean {
    const room = a.end - a.pos;
    const c = chunk.length > room ? chunk.subarray(0, room) : chunk;
    if (c.length) {
      w.push(a.pos, c);
      a.pos += c.length;
      this.received += c.length;
    }
    return a.pos < a.end;
  }

  /** One range over this worker's own kept-alive connection (range-client.ts). */
  private async fetchRange(a: Assignment, slot: Slot): Promise<void> {
    const url = new URL(this.url);
    if (slot.conn?.origin !== url.origin) {
      slot.conn?.close();
      slot.conn = new RangeConnection(url.origin, this.s.timeoutMs, this.tls ?? {}, this.s.policy);
    }
    const asked = a.end;
    // the chunks are views of the connection's read buffer (256 KiB reads): written as they come
    const w = new Writer(this, 0);
    try {
      await slot.conn.get({
        url,
        headers: this.headers,
        start: a.pos,
        end: a.end - 1,
        signal: a.ctrl.signal,
        label: this.label,
        head: ({ headers }) => this.checkRange(headers, a.pos, asked - 1, this.url, true),
        // false once the rest was handed to another connection: stop (costs this connection)
        body: (chunk) => this.accept(a, w, chunk) || a.end >= asked,
      });
    } finally {
      w.flush();
    }
  }

  /**
   * Body bytes into the writer until the assignment's end (which may move down while we read).
   * 'data' events rather than for-await: one promise per 64 KiB chunk is measurable CPU here.
   */
  private receive(body: Opened["body"], a: Assignment, w: Writer, asked: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let over = false;
      const finish = (err?: unknown) => {
        if (over) return;
        over = true;
        body.off("data", onData);
        if (err) reject(err);
        else resolve();
      };
      const onData = (chunk: Buffer) => {
        if (over) return;
        try {
          this.accept(a, w, chunk);
        } catch (e) {
          discard(body);
          return finish(e);
        }
        if (a.pos >= a.end) {
          // the rest was handed to another connection: stop this response (costs the connection).
          // Otherwise the response ends by itself and the connection is kept for the next range.
          if (a.end < asked) {
            finish();
            discard(body);
          }
        }
      };
      body.on("data", onData);
      body.once("end", () => finish());
      body.once("error", (e) => finish(e));
      body.once("close", () => finish(a.pos >= a.end ? undefined : new RetryableError(`connection closed at byte ${a.pos} of a range ending at ${a.end} (${this.label})`)));
    });
  }

  /** The server answers Range with 200: one connection, from byte 0 (nothing on disk is usable). */
  private goSingle(a: Assignment): void {
    this.emit({ type: "log", message: `${this.name}: the server does not support Range requests; one connection, from the start` });
    this.single = true;
    this.pending = [];
    this.restartSingle();
    a.start = a.pos = 0;
    a.end = this.size ?? Infinity;
  }

  private restartSingle(): void {
    this.done = new RangeSet();
    this.doneBytes = 0;
    this.dropState();
    if (this.sha) {
      this.hasher?.close();
      this.hasher = new Hasher(this.part);
    }
  }

  /** Bytes [s, e) are on disk (page cache): record them, feed the hash, maybe save the state. */
  written(s: number, e: number): void {
    this.done.add(s, e);
    this.doneBytes += e - s;
    this.hasher?.feed(this.done.prefix);
    this.saveState(false);
  }

  /**
   * Record the written ranges every saveEvery bytes or 250 ms: synchronously, like the writes, so
   * the state trails them by at most that much (one pwrite, ~30 us with the JSON).
   */
  private saveState(force: boolean): void {
    if (this.size === undefined || this.single) return;
    const now = Date.now();
    if (!force && this.doneBytes - this.savedBytes < this.saveEvery && now - this.savedAt < 250) return;
    if (this.doneBytes === this.savedBytes && !force) return;
    this.savedBytes = this.doneBytes;
    this.savedAt = now;
    try {
      this.state ??= new StateFile(this.target);
      this.state.save({ v: 1, url: this.stateUrl, size: this.size, sha256: this.sha, ranges: this.done.toJSON() });
    } catch (err) {
      this.fail(new FatalError(`cannot write ${this.part}.state: ${(err as Error).message}`));
    }
  }
}

/** A worker's own connection for the range path, kept across its requests. */
interface Slot {
  conn?: RangeConnection;
}

/** The server's file is not the one the job describes. */
class MismatchError extends FatalError {}

/** Drop a response body we will not read (destroying it reports an abort we expect). */
function discard(body: { on(ev: "error", f: () => void): unknown; destroy(): unknown }): void {
  body.on("error", () => {});
  body.destroy();
}

function statOrUndefined(p: string): Stats | undefined {
  try {
    return statSync(p);
  } catch {
    return undefined;
  }
}

function mb(n: number): string {
  return `${(n / MiB).toFixed(1)} MiB`;
}

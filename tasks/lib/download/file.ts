// One file of a job, from its URL to its placed target: the checks, the size, what is already
// there, then attempts: the connections (workers) fetch what the .part misses, retrying with the
// one back-off of lib/retry.ts, until it is complete; then it is verified and placed.
import { mkdirSync } from "node:fs";
import { setMaxListeners } from "node:events";
import { basename, dirname } from "node:path";
import type { ConnectionOptions } from "node:tls";
import { backoffMs } from "../../../lib/retry.ts";
import { maskUrlsInText, stripUrlCredentials } from "../../../lib/url-credentials.ts";
import { FatalError, MismatchError, RetryableError, classify, shown } from "./http.ts";
import { PartFile } from "./part-file.ts";
import { verifyAndPlace } from "./place.ts";
import { alreadyThere, probeSize } from "./probe.ts";
import { fileProgress, SpeedMeter } from "./progress.ts";
import { FallbackError } from "./range-client.ts";
import { Scheduler, type Assignment } from "./scheduler.ts";
import type { Settings } from "./settings.ts";
import { insideRoot } from "./targets.ts";
import { fetchRange, type Slot } from "./transfer-range.ts";
import { fetchUndici } from "./transfer-undici.ts";
import type { DownloadEvent, DownloadFile, FileProgress, FileResult } from "./types.ts";
import type { Dispatcher } from "./undici.ts";

const MiB = 1024 * 1024;

export class FileDownload {
  readonly name: string;
  readonly target: string;
  /** The URL as messages show it: origin and path, never the query. */
  readonly label: string;
  readonly sha?: string;
  readonly part: PartFile;
  readonly sched: Scheduler;
  /** Set while the sha256 is finished after the last byte (progress shows the file as done). */
  verifying = false;
  // resolved once (redirects followed), then every range request goes straight there
  url: string;
  headers: Record<string, string>;
  resolved = false;
  private reresolves = 0;
  private readonly started = Date.now();
  private readonly speed = new SpeedMeter();
  /** Workers running; the attempt is over when the last one returns. */
  private alive = 0;
  private allDone?: () => void;
  private error?: Error;
  /** No request before this time (a server's Retry-After holds every connection of the file). */
  private notBefore = 0;
  private stop = new AbortController();
  /** Set when the range connections met a response they leave to undici: the rest of this file goes there. */
  private fastOff = false;

  constructor(
    private readonly file: DownloadFile,
    readonly s: Settings,
    readonly agent: Dispatcher,
    readonly emit: (e: DownloadEvent) => void,
    signal?: AbortSignal,
    readonly tls?: ConnectionOptions,
  ) {
    this.target = String(file.target ?? "");
    this.name = file.name ?? basename(this.target);
    this.label = shown(String(file.url ?? ""));
    this.url = String(file.url ?? "");
    this.headers = { ...(file.headers ?? {}) };
    this.sha = file.sha256 ? file.sha256.toLowerCase() : undefined;
    const size = typeof file.size === "number" && file.size >= 0 ? file.size : undefined;
    this.part = new PartFile(this.target, size, this.sha, stripUrlCredentials(this.url), (e) => this.fail(e));
    this.sched = new Scheduler(this.part, s.connections, s.chunkSize);
    signal?.addEventListener("abort", () => this.fail(new FatalError("cancelled")), { once: true });
  }

  result(status: FileResult["status"], why?: string): FileResult {
    const reason = why === undefined ? undefined : maskUrlsInText(why); // the summary is written down too
    return {
      name: this.name,
      target: this.target,
      url: this.label,
      status,
      reason,
      size: this.part.size,
      sha256: this.sha,
      fetched: this.part.received,
      seconds: (Date.now() - this.started) / 1000,
    };
  }

  snapshot(): FileProgress {
    const speed = this.speed.sample(this.part.received);
    const total = this.part.size ?? 0;
    return fileProgress(this.name, this.verifying ? total : this.part.doneBytes, total, speed);
  }

  dispose(): void {
    this.stop.abort();
    this.part.close(); // the state stays on disk: the next run resumes from it
  }

  async run(): Promise<FileResult> {
    if (!/^https?:\/\//i.test(this.url)) return this.result("failed", `not an http(s) URL: ${this.label}`);
    if (!insideRoot(this.s.modelsRoot, this.target)) {
      return this.result("failed", `target ${this.target} is outside the models root ${this.s.modelsRoot}: refused`);
    }
    if (this.sha && !/^[0-9a-f]{64}$/.test(this.sha)) return this.result("failed", `not a sha256: ${this.file.sha256}`);
    mkdirSync(dirname(this.target), { recursive: true });
    if (this.part.size === undefined) await probeSize(this, this.stop.signal);
    const skip = await alreadyThere(this);
    if (skip) return this.result("skipped", skip);

    this.emit({ type: "file", status: "start", name: this.name, target: this.target, bytes: this.part.size });
    for (let attempt = 1; ; attempt++) {
      const failure = await this.fetchAll();
      if (failure) return this.result("failed", failure);
      const placed = await verifyAndPlace(this);
      if (placed === true) return this.result("downloaded");
      if (attempt >= 2) return this.result("failed", placed);
      // a corrupt .part cannot be repaired piecewise without piece hashes: fetch it all again
      this.emit({ type: "log", message: `${this.name}: ${placed}; fetching it again` });
    }
  }

  /** The URL answered (redirects followed): later requests go straight there, with these headers. */
  resolvedTo(url: string, headers: Record<string, string>): void {
    this.url = url;
    this.headers = headers;
    this.resolved = true;
  }

  /** A 206 came back: the other connections may start. */
  rangesWork(): void {
    this.sched.rangeOk = true;
    this.spawn(this.s.connections - this.alive);
  }

  /** Runs the connections until the .part is complete; returns a reason when the file failed. */
  private async fetchAll(): Promise<string | undefined> {
    const kept = this.part.open(this.s.connections);
    this.sched.reset();
    const size = this.part.size;
    if (kept) this.emit({ type: "log", message: `${this.name}: resuming with ${mb(kept)} of ${mb(size!)} on disk` });
    if (size !== undefined && this.part.doneBytes >= size) return undefined;
    this.error = undefined;
    this.stop = new AbortController();
    setMaxListeners(0, this.stop.signal); // one listener per connection and per sleeping retry
    const finished = new Promise<void>((r) => (this.allDone = r));
    this.spawn(1); // the first request shows whether Range works and where redirects lead; the others follow it
    await finished;
    this.part.save(true);
    const error = this.error as Error | undefined;
    if (!error) return undefined;
    // what is on disk belongs to another file, or there is nothing worth resuming (a 401 on the first request)
    if (error instanceof MismatchError || this.part.doneBytes === 0) this.part.discard();
    return error.message;
  }

  private fail(e: Error): void {
    if (this.error) return;
    this.error = e;
    this.sched.abortAll();
    this.stop.abort();
  }

  // ---- connections

  private spawn(n: number): void {
    for (let i = 0; i < n; i++) {
      this.alive++;
      void this.worker();
    }
  }

  private ensureWorkers(): void {
    if (this.sched.rangeOk && !this.error && this.alive < this.s.connections) this.spawn(this.s.connections - this.alive);
  }

  private release(a: Assignment): void {
    if (this.sched.release(a, !!this.error)) this.ensureWorkers();
  }

  private async worker(): Promise<void> {
    let failures = 0;
    let chunk = this.sched.initialChunk();
    const slot: Slot = {};
    try {
      while (!this.error) {
        // the request that finds out whether ranges work goes through undici alone, the others
        // wait for it: a short one, so this connection is on the bulk path soon
        const a = this.sched.take(this.sched.rangeOk || this.s.chunkSize ? chunk : Math.min(chunk, MiB));
        if (!a) return;
        const t0 = performance.now();
        try {
          await this.fetch(a, slot);
          chunk = this.sched.nextChunk(chunk, a, performance.now() - t0);
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
            if (e.retryAfterMs !== undefined) {
              this.notBefore = Math.max(this.notBefore, Date.now() + Math.min(e.retryAfterMs, this.s.retryMaxMs));
            }
            // a reset, or a kept-alive connection the server had just closed: at once, the first time
            const immediate = got > 0 || (failures === 1 && !/^HTTP /.test(e.message));
            const backoff = immediate ? 0 : backoffMs(failures, { baseMs: this.s.retryBaseMs, maxMs: this.s.retryMaxMs });
            const wait = Math.max(backoff, this.notBefore - Date.now());
            const when = wait > 0 ? ` in ${(wait / 1000).toFixed(1)} s` : "";
            this.emit({ type: "log", message: `${this.name}: ${e.message}; retrying${when}` });
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

  /** One assignment: over the worker's range connection once the file is resolved, else through undici. */
  private async fetch(a: Assignment, slot: Slot): Promise<void> {
    const wait = this.notBefore - Date.now();
    if (wait > 0) await sleep(wait, this.stop.signal);
    if (this.error) return;
    a.url = this.url;
    const onStop = () => a.ctrl.abort();
    this.stop.signal.addEventListener("abort", onStop, { once: true });
    try {
      if (this.sched.rangeOk && this.resolved && !this.sched.single && !this.fastOff) {
        try {
          return await fetchRange(this, a, slot);
        } catch (err) {
          if (!(err instanceof FallbackError)) throw err;
          // nothing of the body was taken: the same range goes through undici, as does the rest
          this.fastOff = true;
          slot.conn?.close();
          slot.conn = undefined;
        }
      }
      await fetchUndici(this, a);
    } finally {
      this.stop.signal.removeEventListener("abort", onStop);
    }
  }
}

/** Resolves after ms, or at once when the file is stopped. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise<void>((done) => {
    if (signal.aborted || ms <= 0) return done();
    const t = setTimeout(finish, ms);
    function finish() {
      clearTimeout(t);
      signal.removeEventListener("abort", finish);
      done();
    }
    signal.addEventListener("abort", finish);
  });
}

function mb(n: number): string {
  return `${(n / MiB).toFixed(1)} MiB`;
}

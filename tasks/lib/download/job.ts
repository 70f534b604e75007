// The download engine: M files at once, each over N HTTP Range connections that share the work
// (in-order chunks, then the largest remaining range is split for an idle connection), positional
// writes into <target>.part, resumable from <target>.part.state, sha256 alongside, atomic placement.
// This module runs a job: its settings, one undici Agent checked against the address policy, the
// files in parallel lanes, the progress ticks, the summary. One file's download is file.ts.
import { isAbsolute } from "node:path";
import type { ConnectionOptions } from "node:tls";
import { guardConnector, type Connector } from "../../../lib/net-policy.ts";
import { maskUrlsInText } from "../../../lib/url-credentials.ts";
import { FileDownload } from "./file.ts";
import { jobProgress } from "./progress.ts";
import { settingsOf } from "./settings.ts";
import { duplicates } from "./targets.ts";
import type { DownloadEvent, DownloadJob, DownloadSummary, FileResult } from "./types.ts";
import { Agent, buildConnector, type ConnectorFn, type Dispatcher } from "./undici.ts";

export interface DownloadOptions {
  onProgress?: (event: DownloadEvent) => void;
  signal?: AbortSignal;
  /** Tests and benchmarks: undici dispatcher to use instead of a fresh Agent. */
  dispatcher?: Dispatcher;
  /** Tests: TLS options (a private CA) for both undici and the range connections. */
  tls?: ConnectionOptions;
}

export async function downloadAll(job: DownloadJob, opts: DownloadOptions = {}): Promise<DownloadSummary> {
  const started = Date.now();
  if (!job || !Array.isArray(job.files)) throw new Error("download job: files must be a list");
  if (!job.modelsRoot || !isAbsolute(job.modelsRoot)) throw new Error("download job: modelsRoot must be an absolute path");
  const s = settingsOf(job);
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
    if (active.size) emit(jobProgress([...active].map((f) => f.snapshot())));
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

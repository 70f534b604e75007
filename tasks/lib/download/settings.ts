// A job's knobs with their defaults and bounds, read once: every file of the job shares them.
import { resolve } from "node:path";
import type { NetPolicy } from "../../../lib/net-policy.ts";
import type { DownloadJob } from "./types.ts";

export interface Settings {
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

/** HTTP Range connections per file when the job does not say: the one place this default is written. */
export const DEFAULT_CONNECTIONS = 16;
export const MAX_CONNECTIONS = 64;

export function settingsOf(job: DownloadJob): Settings {
  return {
    connections: clampInt(job.connections ?? DEFAULT_CONNECTIONS, 1, MAX_CONNECTIONS),
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
}

function clampInt(v: number, lo: number, hi: number): number {
  return Math.max(lo, Math.min(hi, Math.floor(Number(v) || lo)));
}

// The job a download script receives, the events it reports and the summary it returns.
// Plain data (JSON in job.json, JSON lines out), so flow and the host agree without sharing code.

export interface DownloadFile {
  url: string;
  /** Absolute path; must resolve inside the job's modelsRoot. */
  target: string;
  /** Expected size in bytes; when absent the server's answer is trusted. */
  size?: number;
  /** Expected sha256 (hex, any case); checked before the file is placed. */
  sha256?: string;
  /** Sent with the first request (e.g. Authorization); dropped on a redirect to another origin. */
  headers?: Record<string, string>;
  /** Label for progress and summary; defaults to the target's file name. */
  name?: string;
}

export interface DownloadJob {
  files: DownloadFile[];
  modelsRoot: string;
  /**
   * The flowfile's settings.allowHosts ("host" or "host:port"): the only hosts reached over plain
   * http or at a loopback, private, link-local or otherwise non-public address (redirects included).
   */
  allowHosts?: string[];
  /** HTTP Range connections per file (default 16). */
  connections?: number;
  /** Files downloaded at once (default 2). */
  parallelFiles?: number;
  /** Bytes per request handed to a connection before it asks for more (default: sized from file and connections). */
  chunkSize?: number;
  /** Attempts without progress before a file fails (default 8). */
  retries?: number;
  /** First retry delay; doubles each attempt, with jitter (default 1000 ms). */
  retryBaseMs?: number;
  /** Longest wait between attempts, Retry-After included (default 60 s). */
  retryMaxMs?: number;
  /** No response headers or no body bytes for this long counts as a failure (default 30 s). */
  timeoutMs?: number;
  /** Progress events at most this often (default 250 ms). */
  progressMs?: number;
  /** fdatasync each file before it is renamed into place (default false: a kill loses nothing
   *  without it, and sha256 is checked again only when the verified-hash sidecar is stale). */
  fsync?: boolean;
}

export interface FileProgress {
  name: string;
  done: number;
  total: number;
  /** Bytes per second over the last few seconds. */
  speed: number;
  /** Seconds left at the current speed; null while unknown. */
  eta: number | null;
}

export type DownloadEvent =
  | {
      type: "file";
      status: "start" | "skipped" | "downloaded" | "failed" | "verifying";
      name: string;
      target: string;
      reason?: string;
      bytes?: number;
    }
  | ({ type: "progress"; files: FileProgress[] } & Omit<FileProgress, "name">)
  | { type: "log"; message: string };

export interface FileResult {
  name: string;
  target: string;
  url: string;
  status: "downloaded" | "skipped" | "failed";
  /** Why it was skipped or failed. */
  reason?: string;
  size?: number;
  sha256?: string;
  /** Body bytes received from the network for this file in this run. */
  fetched: number;
  seconds: number;
}

export interface DownloadSummary {
  downloaded: FileResult[];
  skipped: FileResult[];
  failed: FileResult[];
  fetched: number;
  seconds: number;
}

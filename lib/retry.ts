// One back-off for every HTTP client flow has (cloud APIs, hub lookups, the host's downloader):
// a server's Retry-After wins, else exponential back-off with "equal jitter" (half fixed, half random).

export interface RetryPolicy {
  /** attempts in all, the first included */
  tries: number;
  baseMs: number;
  maxMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { tries: 6, baseMs: 1000, maxMs: 60_000 };

/** A server asking for a wait longer than our cap still gets it, bounded at 10 minutes. */
const MAX_ASKED_MS = 600_000;

export function backoffMs(
  attempt: number,
  policy: Omit<RetryPolicy, "tries">,
  retryAfter: string | null = null,
  now = Date.now(),
  random = Math.random,
): number {
  const asked = parseRetryAfter(retryAfter, now);
  if (asked !== null) return Math.min(asked, MAX_ASKED_MS);
  const ceiling = Math.min(policy.maxMs, policy.baseMs * 2 ** (attempt - 1));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

/** Retry-After in seconds or as an HTTP date; null when absent or unreadable. */
export function parseRetryAfter(value: string | null | undefined, now = Date.now()): number | null {
  if (!value) return null;
  const v = value.trim();
  if (/^\d+(\.\d+)?$/.test(v)) return Math.round(Number(v) * 1000);
  const at = Date.parse(v);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}

/** What one attempt says: a value, or why to try again (with the server's Retry-After, if any). */
export type Attempt<T> = { value: T } | { again: string; retryAfter?: string | null; status?: number };

export interface RetryHooks {
  onRetry?: (info: { attempt: number; tries: number; delayMs: number; reason: string; status?: number }) => void;
  /** the error thrown once every try is used; gets the last reason */
  giveUp: (reason: string, tries: number, status?: number) => Error;
  signal?: AbortSignal;
}

/** Run `attempt` until it gives a value or `policy.tries` are used, sleeping the back-off between tries. */
export async function withRetry<T>(policy: RetryPolicy, attempt: (n: number) => Promise<Attempt<T>>, hooks: RetryHooks): Promise<T> {
  for (let n = 1; ; n++) {
    const r = await attempt(n);
    if ("value" in r) return r.value;
    if (n >= policy.tries) throw hooks.giveUp(r.again, policy.tries, r.status);
    const delayMs = backoffMs(n, policy, r.retryAfter ?? null);
    hooks.onRetry?.({ attempt: n, tries: policy.tries, delayMs, reason: r.again, status: r.status });
    await sleep(delayMs, hooks.signal);
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => (signal?.removeEventListener("abort", stop), resolve()), ms);
    const stop = () => (clearTimeout(t), reject(signal!.reason));
    signal?.addEventListener("abort", stop, { once: true });
  });
}

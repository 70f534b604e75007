// A token bucket per key: `perMinute` requests a minute on average, `burst` at once. The rate gate
// (tasks/rate-gate.ts) keeps one per API token; pure, with the clock given, so it is tested as is.

export interface Take {
  ok: boolean;
  /** whole seconds until one request is allowed again (0 when ok) */
  retryAfter: number;
}

export class TokenBuckets {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    readonly perMinute: number,
    readonly burst: number,
    private readonly now: () => number = Date.now,
    /** keys kept at most; past it, buckets that are full again (idle keys) are dropped */
    private readonly maxKeys = 10_000,
  ) {
    if (!(perMinute > 0) || !(burst >= 1)) throw new Error(`a rate needs perMinute > 0 and burst >= 1 (got ${perMinute}, ${burst})`);
  }

  take(key: string): Take {
    const t = this.now();
    const perMs = this.perMinute / 60_000;
    const b = this.buckets.get(key) ?? { tokens: this.burst, at: t };
    b.tokens = Math.min(this.burst, b.tokens + (t - b.at) * perMs);
    b.at = t;
    if (!this.buckets.has(key)) {
      if (this.buckets.size >= this.maxKeys) this.prune(t);
      this.buckets.set(key, b);
    }
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return { ok: true, retryAfter: 0 };
    }
    return { ok: false, retryAfter: Math.max(1, Math.ceil((1 - b.tokens) / perMs / 1000)) };
  }

  get size(): number {
    return this.buckets.size;
  }

  private prune(t: number): void {
    const perMs = this.perMinute / 60_000;
    for (const [k, b] of this.buckets) if (b.tokens + (t - b.at) * perMs >= this.burst) this.buckets.delete(k);
  }
}

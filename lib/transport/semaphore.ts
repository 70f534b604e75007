// Counting semaphore: caps the channels open on one SSH connection.
export class Semaphore {
  private waiters: (() => void)[] = [];
  /** slots held right now */
  inUse = 0;
  /** highest inUse seen (tests assert the cap) */
  peak = 0;

  constructor(readonly limit: number) {
    if (!(limit >= 1)) throw new RangeError(`semaphore limit must be >= 1, got ${limit}`);
  }

  async acquire(): Promise<void> {
    if (this.inUse < this.limit) {
      this.inUse++;
      this.peak = Math.max(this.peak, this.inUse);
      return;
    }
    // the releasing holder hands its slot straight over, so inUse stays put
    await new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  release(): void {
    const next = this.waiters.shift();
    if (next) next();
    else this.inUse--;
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    await this.acquire();
    try {
      return await fn();
    } finally {
      this.release();
    }
  }
}

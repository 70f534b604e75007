// Which bytes each connection asks for next: the missing ranges in order, in pieces that shrink
// near the end, then half of the largest range in flight for an idle connection; one connection
// from byte 0 when the server ignores Range.
import type { PartFile } from "./part-file.ts";
import type { Range } from "./ranges.ts";

const KiB = 1024;
const MiB = 1024 * KiB;

/** A range handed to one connection. */
export interface Assignment {
  start: number;
  pos: number;
  /** Exclusive; lowered when an idle connection takes over the second half. */
  end: number;
  ctrl: AbortController;
  /** The URL this assignment's request went to (a signed link, after the first resolve). */
  url?: string;
}

export class Scheduler {
  /** Not yet handed out, in order. */
  private pending: Range[] = [];
  private readonly active = new Set<Assignment>();
  /** A 206 came back: the server serves ranges, so idle connections may split others' ranges. */
  rangeOk = false;
  /** The server ignores Range: one connection, from byte 0. */
  single = false;

  constructor(
    private readonly part: PartFile,
    private readonly connections: number,
    /** The job's fixed request size, if it set one. */
    private readonly chunkSize: number | undefined,
  ) {}

  /** A new attempt: what the .part still misses, and nothing known of the server yet. */
  reset(): void {
    this.pending = this.part.missing();
    this.rangeOk = false;
    this.single = this.part.size === undefined;
  }

  /** The first request size of a connection: a quarter of an even share, 1 to 8 MiB. */
  initialChunk(): number {
    if (this.chunkSize) return this.chunkSize;
    const size = this.part.size ?? 0;
    return Math.max(MiB, Math.min(8 * MiB, Math.floor(size / (this.connections * 4) / MiB) * MiB));
  }

  /** The next request size: about 0.25 s at this connection's speed (few requests, short tail). */
  nextChunk(chunk: number, a: Assignment, ms: number): number {
    if (this.chunkSize || a.pos - a.start < chunk / 2 || ms <= 0) return chunk;
    return Math.max(MiB, Math.min(64 * MiB, Math.round(((a.pos - a.start) * 250) / ms / MiB) * MiB));
  }

  /** The next range for an idle connection: the first unassigned bytes, or half of the largest range in flight. */
  take(chunk: number): Assignment | null {
    if (this.single) {
      if (this.active.size || (this.part.size !== undefined && this.part.doneBytes >= this.part.size)) return null;
      this.part.restart(); // without Range nothing on disk helps: from byte 0 again
      return this.assign(0, this.part.size ?? Infinity);
    }
    const p = this.pending[0];
    if (p) {
      // near the end, smaller pieces (a quarter of an even share of what is left): every connection
      // finishes at about the same time, so the tail needs no splitting (a split aborts a request,
      // wasting what was in flight), and the contiguous prefix the hash reads trails the last byte
      // by little, so the hash is done soon after it (1 GiB: the hash tail 70-140 ms -> ~5 ms)
      let left = 0;
      for (const [s, e] of this.pending) left += e - s;
      const len = Math.max(256 * KiB, Math.min(chunk, Math.ceil(left / this.connections / 4 / (64 * KiB)) * 64 * KiB));
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

  /**
   * The connection is done with a: what it did not get goes back to be taken again (not once the
   * file has failed). true when something went back.
   */
  release(a: Assignment, failed: boolean): boolean {
    if (!this.active.delete(a)) return false;
    if (this.single || a.pos >= a.end || failed) return false;
    const r: Range = [a.pos, a.end];
    let i = 0;
    while (i < this.pending.length && this.pending[i]![0] < r[0]) i++;
    this.pending.splice(i, 0, r);
    return true;
  }

  /** The server answered Range with 200: a becomes the one connection, from byte 0. */
  goSingle(a: Assignment): void {
    this.single = true;
    this.pending = [];
    this.part.restart();
    a.start = a.pos = 0;
    a.end = this.part.size ?? Infinity;
  }

  abortAll(): void {
    for (const a of this.active) a.ctrl.abort();
  }
}

// A set of byte ranges [start, end), kept sorted and merged: what of a .part file is on disk.

export type Range = [start: number, end: number];

export class RangeSet {
  private r: Range[] = [];

  constructor(ranges: Range[] = []) {
    for (const [s, e] of ranges) this.add(s, e);
  }

  add(start: number, end: number): void {
    if (end <= start) return;
    const r = this.r;
    // first range that ends at or after start (touching ranges merge)
    let i = r.length;
    while (i > 0 && r[i - 1]![1] >= start) i--;
    let j = i;
    let s = start;
    let e = end;
    while (j < r.length && r[j]![0] <= e) {
      s = Math.min(s, r[j]![0]);
      e = Math.max(e, r[j]![1]);
      j++;
    }
    r.splice(i, j - i, [s, e]);
  }

  /** Bytes covered. */
  get bytes(): number {
    let n = 0;
    for (const [s, e] of this.r) n += e - s;
    return n;
  }

  /** End of the range that starts at 0: the contiguous prefix. */
  get prefix(): number {
    const first = this.r[0];
    return first && first[0] === 0 ? first[1] : 0;
  }

  /** The ranges of [0, size) not covered, in order. */
  missing(size: number): Range[] {
    const out: Range[] = [];
    let pos = 0;
    for (const [s, e] of this.r) {
      if (s >= size) break;
      if (s > pos) out.push([pos, s]);
      pos = Math.max(pos, e);
    }
    if (pos < size) out.push([pos, size]);
    return out;
  }

  toJSON(): Range[] {
    return this.r.map(([s, e]) => [s, e]);
  }
}

// Body bytes of one request into the .part at their position.
import { writevSync } from "node:fs";
import { FatalError } from "./http.ts";
import type { PartFile } from "./part-file.ts";
import type { Assignment } from "./scheduler.ts";

/** Positional write of several buffers (writev: no copy into one buffer), short writes continued. */
function writeAllSync(fd: number, bufs: Buffer[], pos: number): void {
  while (bufs.length) {
    let n = writevSync(fd, bufs, pos);
    pos += n;
    while (bufs.length && n >= bufs[0]!.length) n -= bufs.shift()!.length;
    if (bufs.length && n) bufs[0] = bufs[0]!.subarray(n);
  }
}

/**
 * Received chunks of one assignment go to disk in order, gathered into writes of at least
 * `batch` bytes (0: each chunk at once, for chunks that are a reused read buffer). Synchronous,
 * on purpose: a write into the page cache is a memory copy, cheaper than a round trip through
 * libuv's threadpool; bytes are recorded as written the moment they are, so the state a kill
 * leaves trails the network by little; and a slow disk slows the reading of the sockets, which
 * is the back-pressure a download wants.
 */
export class Writer {
  private bufs: Buffer[] = [];
  private bufPos = 0;
  private bufLen = 0;

  constructor(
    private readonly part: PartFile,
    private readonly a: Assignment,
    private readonly batch: number,
  ) {}

  /** Body bytes of the assignment, cut at a.end (which may have moved down). true: a wants more. */
  accept(chunk: Buffer): boolean {
    const a = this.a;
    const room = a.end - a.pos;
    const c = chunk.length > room ? chunk.subarray(0, room) : chunk;
    if (c.length) {
      this.push(a.pos, c);
      a.pos += c.length;
      this.part.received += c.length;
    }
    return a.pos < a.end;
  }

  private push(pos: number, buf: Buffer): void {
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
      writeAllSync(this.part.fd, data, pos);
    } catch (e) {
      throw new FatalError(`cannot write ${this.part.path}: ${(e as Error).message}`);
    }
    this.part.written(pos, pos + len);
  }
}

// One file's `<target>.part` while it downloads: opened fresh or resumed from its state file, the
// byte ranges written so far, the state saves that record them, and the sha256 fed as the
// contiguous prefix grows. Every received byte passes through written(): it is the hot path.
import { closeSync, constants, ftruncateSync, openSync, readSync, rmSync, statSync, type Stats } from "node:fs";
import { Hasher } from "./hash.ts";
import { FatalError } from "./http.ts";
import { RangeSet, type Range } from "./ranges.ts";
import { SNIFF_BYTES } from "./sniff.ts";
import { StateFile, partPath, readState, removeState, removeUnlessFile } from "./state.ts";

const KiB = 1024;
const MiB = 1024 * KiB;

export class PartFile {
  readonly path: string;
  /** Expected size; learnt from the server when the job did not say. */
  size?: number;
  fd = -1;
  /** Body bytes received from the network for this file in this run (all attempts). */
  received = 0;
  /** Gathered writes of the undici path, sized from the file (the range path writes each read as it comes). */
  batch = 64 * KiB;
  private done = new RangeSet();
  private _doneBytes = 0;
  private hasher?: Hasher;
  private state?: StateFile;
  private savedBytes = 0;
  private savedAt = 0;
  private saveEvery = MiB;
  /** One connection from byte 0 (no Range): nothing on disk could be resumed, so no state is kept. */
  private stateless = false;

  constructor(
    readonly target: string,
    size: number | undefined,
    private readonly sha: string | undefined,
    /** The URL as the state file records it: without credentials (a refreshed ?token= still resumes). */
    private readonly stateUrl: string,
    /** A state save failed: the file fails with this. */
    private readonly onError: (e: Error) => void,
  ) {
    this.path = partPath(target);
    this.size = size;
  }

  get doneBytes(): number {
    return this._doneBytes;
  }

  /**
   * Open the .part for an attempt: resumed when its state matches this file (source, size, sha256)
   * and its size is right, else fresh. connections sizes the gathered writes. Returns the bytes kept.
   */
  open(connections: number): number {
    this.close();
    // a .part that is not a regular file (a planted symlink) is removed, never written through
    removeUnlessFile(this.path);
    const st = readState(this.target);
    const partSt = statOrUndefined(this.path);
    const resumable =
      st &&
      this.size !== undefined &&
      st.size === this.size &&
      st.url === this.stateUrl &&
      (st.sha256 ?? "") === (this.sha ?? "") &&
      partSt?.size === this.size;
    this.done = new RangeSet(resumable ? st.ranges : []);
    this._doneBytes = this.done.bytes;
    if (!resumable) this.dropState();
    const nofollow = constants.O_NOFOLLOW ?? 0;
    const flags = resumable ? constants.O_RDWR | nofollow : constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | nofollow;
    this.fd = openSync(this.path, flags, 0o666);
    if (this.size !== undefined) ftruncateSync(this.fd, this.size); // sparse: positional writes may land anywhere
    this.savedBytes = this._doneBytes;
    // what a kill may lose (with the writes gathered in writer.ts): well under 1% of the file
    this.saveEvery = Math.max(256 * KiB, Math.min(2 * MiB, Math.floor((this.size ?? 0) / 512)));
    // writes of up to 512 KiB; small files keep small writes so little sits in memory at a kill
    this.batch = Math.max(64 * KiB, Math.min(512 * KiB, Math.floor((this.size ?? 0) / (connections * 64))));
    this.stateless = this.size === undefined;
    if (this.sha) {
      this.hasher = new Hasher(this.path, Math.min(256 * MiB, Math.floor((this.size ?? 0) / 4)));
      this.hasher.feed(this.done.prefix, true);
    }
    return resumable ? this._doneBytes : 0;
  }

  /** The byte ranges still to fetch, in order. */
  missing(): Range[] {
    return this.size === undefined ? [] : this.done.missing(this.size);
  }

  /** The server ignores Range: from byte 0 again, on one connection, keeping no state (nothing on disk helps). */
  restart(): void {
    this.done = new RangeSet();
    this._doneBytes = 0;
    this.stateless = true;
    this.dropState();
    if (this.sha) {
      this.hasher?.close();
      this.hasher = new Hasher(this.path);
    }
  }

  /** Bytes [s, e) are on disk (page cache): record them, feed the hash, maybe save the state. */
  written(s: number, e: number): void {
    this.done.add(s, e);
    this._doneBytes += e - s;
    this.hasher?.feed(this.done.prefix);
    this.save(false);
  }

  /**
   * Record the written ranges every saveEvery bytes or 250 ms: synchronously, like the writes, so
   * the state trails them by at most that much (one pwrite, ~30 us with the JSON).
   */
  save(force: boolean): void {
    if (this.size === undefined || this.stateless) return;
    const now = Date.now();
    if (!force && this._doneBytes - this.savedBytes < this.saveEvery && now - this.savedAt < 250) return;
    if (this._doneBytes === this.savedBytes && !force) return;
    this.savedBytes = this._doneBytes;
    this.savedAt = now;
    try {
      this.state ??= new StateFile(this.target);
      this.state.save({ v: 1, url: this.stateUrl, size: this.size, sha256: this.sha, ranges: this.done.toJSON() });
    } catch (err) {
      this.onError(new FatalError(`cannot write ${this.path}.state: ${(err as Error).message}`));
    }
  }

  /** The sha256 of the complete .part (the hash has followed the writes), or undefined without one. */
  digest(size: number): Promise<string> | undefined {
    const h = this.hasher;
    this.hasher = undefined;
    return h?.digest(size);
  }

  /** The first bytes of the .part, read back once it is complete (the write fd may be write-only). */
  readHead(): Buffer {
    const buf = Buffer.alloc(SNIFF_BYTES);
    const fd = openSync(this.path, constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0));
    try {
      return buf.subarray(0, readSync(fd, buf, 0, SNIFF_BYTES, 0));
    } finally {
      closeSync(fd);
    }
  }

  closeFd(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }

  /** Nothing of it is worth keeping: the .part and its state go. */
  discard(): void {
    this.closeFd();
    rmSync(this.path, { force: true });
    this.dropState();
  }

  dropState(): void {
    this.state?.close();
    this.state = undefined;
    removeState(this.target);
  }

  /** Done with this attempt, or with the file: the state stays on disk (the next run resumes from it). */
  close(): void {
    this.hasher?.close();
    this.hasher = undefined;
    this.state?.close();
    this.state = undefined;
    this.closeFd();
  }
}

export function statOrUndefined(p: string): Stats | undefined {
  try {
    return statSync(p);
  } catch {
    return undefined;
  }
}

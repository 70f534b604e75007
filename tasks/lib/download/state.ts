// `<target>.part.state`: which byte ranges of `<target>.part` are written, so any interruption
// (SIGKILL included) resumes from disk. Two slots, written in turn in place (one pwrite, no
// rename: a rename costs ~1 ms here and a save happens every few MiB), each with a sequence
// number and a checksum: a kill mid-write tears at most the slot being written, and the reader
// takes the newest intact one. Data written with write(2) survives the death of the process in
// the page cache, so the state only has to trail the writes, not fsync them.
import { closeSync, constants, fchmodSync, lstatSync, openSync, readSync, rmSync, writeSync } from "node:fs";
import { createHash } from "node:crypto";
import type { Range } from "./ranges.ts";

export interface PartState {
  v: 1;
  /** The source, without credentials (lib/url-credentials.ts): the file is on disk for as long as the .part. */
  url: string;
  size: number;
  sha256?: string;
  ranges: Range[];
}

/**
 * Whatever sits at p and is not a regular file (a planted symlink above all) is removed, so that
 * opening p for writing cannot reach through it to a file outside the models root.
 */
export function removeUnlessFile(p: string): void {
  try {
    if (lstatSync(p).isFile()) return;
  } catch {
    return; // nothing there
  }
  rmSync(p, { recursive: true, force: true }); // a symlink itself goes, never what it points to
}

export const partPath = (target: string) => `${target}.part`;
export const statePath = (target: string) => `${target}.part.state`;

/** Bytes per slot; a state that would not fit drops its smallest ranges (they are fetched again). */
export const SLOT = 64 * 1024;

const sum = (text: string) => createHash("sha256").update(text).digest("hex").slice(0, 16);

function parseSlot(buf: Buffer): { seq: number; state: PartState } | undefined {
  const end = buf.indexOf(10); // "\n" closes a slot's record; what follows is an older, longer one
  if (end <= 0) return undefined;
  try {
    const rec = JSON.parse(buf.subarray(0, end).toString("utf8")) as { seq?: unknown; sum?: unknown; state?: unknown };
    const text = JSON.stringify(rec.state);
    if (typeof rec.seq !== "number" || rec.sum !== sum(text)) return undefined;
    const st = rec.state as PartState;
    const whole = st?.v === 1 && Array.isArray(st.ranges) && typeof st.size === "number" && typeof st.url === "string";
    if (whole) return { seq: rec.seq, state: st };
  } catch {
    /* torn by a kill mid-write: the other slot holds the state before */
  }
  return undefined;
}

function slots(fd: number): { seq: number; state: PartState }[] {
  const out: { seq: number; state: PartState }[] = [];
  const buf = Buffer.alloc(SLOT);
  for (let slot = 0; slot < 2; slot++) {
    const got = parseSlot(buf.subarray(0, readSync(fd, buf, 0, SLOT, slot * SLOT)));
    if (got) out.push(got);
  }
  return out;
}

/** The newest intact slot's state, or undefined (none, or both unreadable: start over). */
export function readState(target: string): PartState | undefined {
  let fd: number;
  try {
    fd = openSync(statePath(target), constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0));
  } catch {
    return undefined;
  }
  try {
    return slots(fd).sort((a, b) => b.seq - a.seq)[0]?.state;
  } finally {
    closeSync(fd);
  }
}

/** Open for one download attempt; save() after each stretch of writes, close() at the end. */
export class StateFile {
  private fd: number;
  private seq: number;

  constructor(readonly target: string) {
    const p = statePath(target);
    removeUnlessFile(p);
    // 0600: only the download's own user reads it (an older run may have left it 0644)
    this.fd = openSync(p, constants.O_RDWR | constants.O_CREAT | (constants.O_NOFOLLOW ?? 0), 0o600);
    fchmodSync(this.fd, 0o600);
    this.seq = Math.max(0, ...slots(this.fd).map((x) => x.seq)); // this run's saves outrank the last run's
  }

  save(state: PartState): void {
    const seq = ++this.seq;
    let st = state;
    for (;;) {
      const text = JSON.stringify(st);
      const data = Buffer.from(`{"seq":${seq},"sum":"${sum(text)}","state":${text}}\n`);
      if (data.length <= SLOT || st.ranges.length <= 1) {
        writeSync(this.fd, data, 0, Math.min(data.length, SLOT), (seq % 2) * SLOT);
        return;
      }
      // too fragmented to fit: keep the larger half of the ranges, the others are fetched again
      const keep = [...st.ranges].sort((a, b) => b[1] - b[0] - (a[1] - a[0])).slice(0, Math.ceil(st.ranges.length / 2));
      st = { ...st, ranges: keep.sort((a, b) => a[0] - b[0]) };
    }
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}

export function removeState(target: string): void {
  rmSync(statePath(target), { force: true });
}

// `<target>.part.state`: which byte ranges of `<target>.part` are written, so any interruption
// (SIGKILL included) resumes from disk. Replaced atomically (write + rename): a kill leaves the
// old or the new version, never half of one. Data written with write(2) survives the death of the
// process in the page cache, so the state only has to trail the writes, not fsync them.
import { lstatSync, readFileSync, rmSync } from "node:fs";
import { rename, rm, writeFile } from "node:fs/promises";
import type { Range } from "./ranges.ts";

export interface PartState {
  v: 1;
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

export function readState(target: string): PartState | undefined {
  try {
    const s = JSON.parse(readFileSync(statePath(target), "utf8")) as PartState;
    if (s.v === 1 && Array.isArray(s.ranges) && typeof s.size === "number") return s;
  } catch {
    /* none, or torn by something other than us: start over */
  }
  return undefined;
}

/** The caller runs one save at a time, so the .tmp is never written by two saves at once. */
export async function writeState(target: string, s: PartState): Promise<void> {
  const p = statePath(target);
  // a fresh .tmp, created exclusively ("wx": O_CREAT|O_EXCL never follows a symlink); the rename
  // replaces a symlink at p itself, not what it points to
  await rm(p + ".tmp", { recursive: true, force: true });
  await writeFile(p + ".tmp", JSON.stringify(s), { flag: "wx" });
  await rename(p + ".tmp", p);
}

export function removeState(target: string): void {
  rmSync(statePath(target), { force: true });
  rmSync(statePath(target) + ".tmp", { force: true });
}

// Room on the models volume before a download starts: a 20 GB model that fails at 90% because the
// disk is full has cost the user the GPU minutes it took. The free space is asked of `df` through
// zx's $ (host-side shell work in pushed scripts goes through zx; it quotes what it interpolates).
import { existsSync, statSync } from "node:fs";
import { $ } from "zx/core";
import { partPath } from "./download/state.ts";

export interface Need {
  target: string;
  size?: number;
}

/** Bytes still to write: known sizes, less what is already placed or in a resumable .part. */
export function bytesStillNeeded(files: Need[]): number {
  let need = 0;
  for (const f of files) {
    if (f.size === undefined) continue;
    if (existsSync(f.target) && statSync(f.target).size === f.size) continue;
    const part = partPath(f.target);
    need += Math.max(0, f.size - (existsSync(part) ? statSync(part).size : 0));
  }
  return need;
}

/** Free bytes where `dir` lives (POSIX df, 1-byte blocks), or undefined when df says nothing usable. */
export async function freeBytes(dir: string): Promise<number | undefined> {
  const r = await $({ nothrow: true, quiet: true })`df -PB1 -- ${dir}`;
  const cols = r.stdout.trim().split("\n").pop()?.trim().split(/\s+/) ?? [];
  return cols.length >= 6 && /^\d+$/.test(cols[3]!) ? Number(cols[3]) : undefined;
}

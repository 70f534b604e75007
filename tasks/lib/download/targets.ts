// Where a job's files may land: inside the models root (symlinks of existing ancestors resolved),
// and one writer per target (two entries for one path would race on the same .part and rename).
import { realpathSync } from "node:fs";
import { basename, dirname, isAbsolute, relative, resolve, sep } from "node:path";
import { stripUrlCredentials } from "../../../lib/url-credentials.ts";
import { shown } from "./http.ts";
import type { DownloadFile } from "./types.ts";

/** Inside root lexically, and still inside once symlinks of existing ancestors are resolved. */
export function insideRoot(root: string, target: string): boolean {
  const within = (r: string, t: string) => {
    const rel = relative(r, t);
    return rel !== "" && !rel.startsWith(".." + sep) && rel !== ".." && !isAbsolute(rel);
  };
  if (!isAbsolute(target) || !within(root, resolve(target))) return false;
  let realRoot: string;
  try {
    realRoot = realpathSync(root);
  } catch {
    return true; // nothing exists yet, so nothing can point elsewhere
  }
  let p = dirname(resolve(target));
  for (;;) {
    try {
      const real = realpathSync(p);
      return real === realRoot || within(realRoot, real);
    } catch {
      const up = dirname(p);
      if (up === p) return false;
      p = up;
    }
  }
}

export interface Duplicate {
  /** The same source as the earlier entry (skipped), or another one (failed). */
  same: boolean;
  reason: string;
}

/**
 * Entries whose target another, earlier entry of the job already names: same: the same source
 * (skipped), or a different one (failed; the job's builder should have settled which).
 */
export function duplicates(files: DownloadFile[]): Map<number, Duplicate> {
  const first = new Map<string, number>();
  const out = new Map<number, Duplicate>();
  const source = (f: DownloadFile) => `${stripUrlCredentials(String(f.url))}\0${f.sha256?.toLowerCase() ?? ""}\0${f.size ?? ""}`;
  files.forEach((f, i) => {
    const key = typeof f?.target === "string" && isAbsolute(f.target) ? resolve(f.target) : undefined;
    if (key === undefined) return;
    const j = first.get(key);
    if (j === undefined) return void first.set(key, i);
    const other = files[j]!;
    const same = source(other) === source(f);
    const reason = same
      ? `listed twice in the job (as ${other.name ?? basename(key)}): downloaded once`
      : `listed twice in the job for ${key}, with another source than ${shown(String(other.url))}: not downloaded`;
    out.set(i, { same, reason });
  });
  return out;
}

// What is known before a file's first byte: its size when the job did not give it (one-byte GET),
// and whether the target is already there (same size, and the same sha256 when the job names one).
import type { FileDownload } from "./file.ts";
import { hashFile, readVerified, writeVerified } from "./hash.ts";
import { contentLength, contentRange, discard, open } from "./http.ts";
import { statOrUndefined } from "./part-file.ts";

/** Size unknown: ask for one byte (a GET works where HEAD is not wired the same way). */
export async function probeSize(f: FileDownload, signal: AbortSignal): Promise<void> {
  const res = await open(f.url, {
    dispatcher: f.agent,
    headers: f.headers,
    range: [0, 0],
    signal,
    timeoutMs: f.s.timeoutMs,
    label: f.label,
    policy: f.s.policy,
  });
  discard(res.body);
  f.resolvedTo(res.url, res.sendHeaders);
  f.part.size = res.status === 206 ? contentRange(res.headers)?.total : contentLength(res.headers);
}

/** Why the target need not be downloaded (it is there, verified), or undefined. */
export async function alreadyThere(f: FileDownload): Promise<string | undefined> {
  const size = f.part.size;
  const present = statOrUndefined(f.target);
  if (!present?.isFile() || size === undefined || present.size !== size) return undefined;
  if (!f.sha) return "present with the expected size";
  if (readVerified(f.target, present) === f.sha) return "present, sha256 verified earlier";
  f.emit({ type: "file", status: "verifying", name: f.name, target: f.target });
  if ((await hashFile(f.target, present.size)) === f.sha) {
    writeVerified(f.target, f.sha, present);
    return "present, sha256 verified";
  }
  f.emit({ type: "log", message: `${f.name}: present but its sha256 differs; downloading again` });
  return undefined;
}

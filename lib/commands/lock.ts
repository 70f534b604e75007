// Host lock as data: `mkdir` is atomic, so only one run can create the folder; the
// details file says who holds it. No I/O here: the runner sends these to the host.
import { hostPath } from "./paths.ts";
import { shQuote } from "../quote.ts";

export interface LockDetails {
  holder: string;
  /** flow's id of the holder's machine (see lib/machine-id.ts) */
  machine?: string;
  task: string;
  since: string;
  pid: number;
}

/** Exit 0: acquired. Exit 1: held by someone else (details on stdout). */
export function acquireLock(remoteDir: string, details: LockDetails): string {
  const dir = hostPath(remoteDir, "lock");
  return [
    `mkdir -p -- ${hostPath(remoteDir)}`,
    `if mkdir -- ${dir} 2>/dev/null; then printf '%s\\n' ${shQuote(JSON.stringify(details))} > ${dir}/details; exit 0; fi`,
    `cat ${dir}/details 2>/dev/null; exit 1`,
  ].join("\n");
}

export function readLock(remoteDir: string): string {
  const dir = hostPath(remoteDir, "lock");
  return `if [ -d ${dir} ]; then cat ${dir}/details 2>/dev/null || echo '{}'; fi`;
}

/** Release only when the details still name us, so a run never removes another's lock. */
export function releaseLock(remoteDir: string, details?: LockDetails): string {
  const dir = hostPath(remoteDir, "lock");
  if (!details) return `rm -rf ${dir}`;
  return `grep -qF ${shQuote(JSON.stringify(details))} ${dir}/details 2>/dev/null && rm -rf ${dir}; true`;
}

export function parseLockDetails(text: string): LockDetails | null {
  try {
    const v = JSON.parse(text.trim());
    return v && typeof v === "object" && typeof v.holder === "string" ? (v as LockDetails) : null;
  } catch {
    return null;
  }
}

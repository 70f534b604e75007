// A random id for this machine, kept in flow's cache: user@hostname is not unique enough
// (CI containers, laptops of the same make) to decide that a lock's holder is on this machine.
import { randomUUID } from "node:crypto";
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

let cached: string | undefined;

export function machineId(): string {
  if (cached) return cached;
  const dir = join(process.env.XDG_CACHE_HOME || join(homedir(), ".cache"), "flow");
  const file = join(dir, "machine-id");
  try {
    cached = readFileSync(file, "utf8").trim();
    if (cached) return cached;
  } catch {
    // first run on this machine
  }
  cached = randomUUID();
  try {
    mkdirSync(dir, { recursive: true });
    writeFileSync(`${file}.tmp`, cached + "\n");
    renameSync(`${file}.tmp`, file);
  } catch {
    // a read-only home still gets a per-process id: stale locks are then left to lock:release
  }
  return cached;
}

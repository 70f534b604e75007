// Reading flow.lock.json: one reader for workflow:lock, nodes:install and nodes:update, so a file
// of another version or not JSON is the same clear error everywhere, and an absent one is undefined.
import { readFile } from "node:fs/promises";
import { TaskError } from "../../lib/index.ts";
import { LOCK_VERSION, type LockFile } from "../../lib/comfy/lockfile.ts";

export async function readLockFile(path: string): Promise<LockFile | undefined> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch {
    return undefined;
  }
  let j: LockFile;
  try {
    j = JSON.parse(text) as LockFile;
  } catch (e) {
    throw new TaskError(`${path}: not JSON (${(e as Error).message}); run flow run workflow:lock to rewrite it`);
  }
  if (j?.version !== LOCK_VERSION || typeof j.workflows !== "object") {
    throw new TaskError(`${path}: not a version ${LOCK_VERSION} flow lock file; run flow run workflow:lock to rewrite it`);
  }
  return j;
}

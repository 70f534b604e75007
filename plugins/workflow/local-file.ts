// The apply half of the local workflow tasks: a file in the project, written only when its text
// differs (a second run reports ok), never on a dry run.
import { readFile } from "node:fs/promises";
import type { StepResult } from "../../lib/index.ts";
import { writeFileAtomic } from "../../lib/cache.ts";

export async function writeIfChanged(path: string, text: string, dryRun: boolean, note: string): Promise<StepResult> {
  if ((await readFile(path, "utf8").catch(() => undefined)) === text) return { status: "ok", note };
  if (dryRun) return { status: "changed", note: `would write: ${note}` };
  await writeFileAtomic(path, text);
  return { status: "changed", note };
}

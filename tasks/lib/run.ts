// Script side of a detached run: read the job, report progress as JSON lines, write the result.
// Bundled into every pushed script; runs on the host with flow's Node.
import { appendFileSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export interface RunHandle<J> {
  dir: string;
  job: J;
  progress(event: Record<string, unknown>): void;
  log(message: string): void;
}

/** Reads the job (then deletes it: it may hold secrets), runs body, writes result.json atomically. */
export async function runScript<J, R>(body: (run: RunHandle<J>) => Promise<R>): Promise<void> {
  const dir = process.argv[2];
  if (!dir) throw new Error("usage: script <run-dir>");
  const jobFile = join(dir, "job.json");
  let job = {} as J;
  try {
    job = JSON.parse(readFileSync(jobFile, "utf8")) as J;
  } finally {
    rmSync(jobFile, { force: true });
  }
  const events = join(dir, "events.jsonl");
  const progress = (event: Record<string, unknown>) => appendFileSync(events, JSON.stringify({ t: Date.now(), ...event }) + "\n");
  const handle: RunHandle<J> = { dir, job, progress, log: (message) => progress({ type: "log", message }) };
  try {
    const result = await body(handle);
    writeFileSync(join(dir, "result.json.tmp"), JSON.stringify(result ?? null));
    renameSync(join(dir, "result.json.tmp"), join(dir, "result.json"));
  } catch (err) {
    progress({ type: "error", message: (err as Error).message });
    console.error((err as Error).stack ?? String(err));
    process.exitCode = 1;
  }
}

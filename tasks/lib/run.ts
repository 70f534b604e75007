// Script side of a detached run: read the job, report progress as JSON lines, write the result.
// Bundled into every pushed script; runs on the host with flow's Node.
//
// Pushed scripts are zx scripts: host-side commands (git, pip, df...) go through zx's $, imported
// from "zx/core" by the script that runs them (test/fixtures/tasks/count.ts does). Not from "zx":
// its index is one CommonJS bundle (minimist, fs-extra, yaml, globby, a fetch polyfill) that esbuild
// cannot trim, and importing argv and fs from it costs every start of the pushed script ~40 ms and
// 885 KB (tasks/models-download.ts: 0.55 MB -> 1.44 MB, bench/README.md); zx/core costs ~10 ms and
// 100 KB. So this frame reads its one argument from process.argv and its files with node:fs, and
// a script that runs no command (the downloader) bundles no zx at all. Nor does the body run in
// zx's within(): on Node 20 its AsyncLocalStorage turns on promise hooks for every await after it.
import { appendFileSync, chmodSync, closeSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { maskUrlsInText } from "../../lib/url-credentials.ts";

/** The run's files say which files are fetched from where: 0600, however they came to exist (the launcher's log, a follower's touch). */
function private0600(p: string): void {
  closeSync(openSync(p, "a", 0o600));
  chmodSync(p, 0o600);
}

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
  for (const f of ["log", "events.jsonl"]) private0600(join(dir, f));
  const progress = (event: Record<string, unknown>) => appendFileSync(events, JSON.stringify({ t: Date.now(), ...event }) + "\n");
  const handle: RunHandle<J> = { dir, job, progress, log: (message) => progress({ type: "log", message }) };
  try {
    const result = await body(handle);
    rmSync(join(dir, "result.json.tmp"), { force: true });
    writeFileSync(join(dir, "result.json.tmp"), JSON.stringify(result ?? null), { mode: 0o600 });
    renameSync(join(dir, "result.json.tmp"), join(dir, "result.json"));
  } catch (err) {
    progress({ type: "error", message: maskUrlsInText((err as Error).message) });
    console.error(maskUrlsInText((err as Error).stack ?? String(err)));
    process.exitCode = 1;
  }
}

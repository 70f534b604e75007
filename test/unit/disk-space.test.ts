// The pushed downloader refuses to start when the files cannot fit, before the first byte moves.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bytesStillNeeded, freeBytes } from "../../tasks/lib/disk-space.ts";
import { bundleScript } from "../../lib/remote-script.ts";

test("bytes still needed: placed files count nothing, a .part counts what it misses, unknown sizes are left out", () => {
  const dir = mkdtempSync(join(tmpdir(), "flow-space-"));
  writeFileSync(join(dir, "done.bin"), Buffer.alloc(100));
  writeFileSync(join(dir, "half.bin.part"), Buffer.alloc(40));
  const need = bytesStillNeeded([
    { target: join(dir, "done.bin"), size: 100 },
    { target: join(dir, "half.bin"), size: 100 },
    { target: join(dir, "new.bin"), size: 7 },
    { target: join(dir, "unknown.bin") },
  ]);
  assert.equal(need, 60 + 7);
});

test("free bytes from df (through zx's $), and a download that cannot fit fails before it starts, naming both figures", async () => {
  const dir = mkdtempSync(join(tmpdir(), "flow-space-"));
  const free = await freeBytes(dir);
  const df = execFileSync("df", ["-PB1", "--", dir]).toString().trim().split("\n").pop()!.split(/\s+/)[3];
  assert.ok(free !== undefined && Math.abs(free - Number(df)) < 64 * 1024 * 1024, `${free} vs ${df}`);
  assert.equal(await freeBytes(join(dir, "no such folder")), undefined);

  const script = join(dir, "models-download.mjs");
  writeFileSync(script, await bundleScript("models-download"));
  const run = join(dir, "run");
  execFileSync("mkdir", ["-p", run, join(dir, "models")]);
  const huge = 1e15; // a petabyte: no disk here has it
  writeFileSync(
    join(run, "job.json"),
    JSON.stringify({
      modelsRoot: join(dir, "models"),
      files: [{ url: "https://example.invalid/model.safetensors", target: join(dir, "models/model.safetensors"), size: huge }],
    }),
  );
  const r = spawnSync(process.execPath, [script, run], { encoding: "utf8", timeout: 30_000 });
  assert.equal(r.status, 1, r.stderr);
  const events = readFileSync(join(run, "events.jsonl"), "utf8");
  assert.match(events, /not enough space on the models volume .*: 931322\.6 GB to download, [\d.]+ GB free/);
  assert.doesNotMatch(events, /"type":"file"/, "no file was started");
});

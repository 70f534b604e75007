// `logs`: the line parser and the error filter on a log captured from a lab host (the real
// comfyui-api's pino lines, the stand-in ComfyUI's text, a Python traceback, a failed download),
// hand-made lines, the follow command's watchdog (run here with a fake docker), the export's
// archive and secret masking, and Ctrl-C for following bodies.
import { test } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawn, spawnSync } from "node:child_process";
import {
  ErrorFilter,
  followCommand,
  formatLogLine,
  LineSplitter,
  logsCommand,
  maskSecretAssignments,
  parseLogLine,
  validSince,
} from "../../lib/facts/logs.ts";
import { interruptible, tarGz } from "../../plugins/logs.ts";

const captured = readFileSync(new URL("../fixtures/ops/docker-logs.txt", import.meta.url), "utf8")
  .split("\n")
  .filter(Boolean);
const errorsOf = (lines: string[]) => {
  const f = new ErrorFilter();
  return lines.map(parseLogLine).filter((l) => f.push(l));
};

test("pino lines become readable: time, level name, message, request and response, other fields", () => {
  const lines = captured.map(parseLogLine);
  const incoming = lines.find((l) => l.msg === "incoming request")!;
  assert.equal(incoming.source, "api");
  assert.equal(incoming.level, 30);
  assert.equal(formatLogLine(incoming), "2026-11-30 02:33:51 INFO  api   incoming request GET /ready reqId=req-1");
  assert.equal(
    formatLogLine(lines.find((l) => l.msg === "request completed")!),
    "2026-11-30 02:33:51 INFO  api   request completed 200 4ms reqId=req-1",
  );
  const failed = lines.find((l) => l.msg.startsWith("Download failed"))!;
  assert.equal(
    formatLogLine(failed),
    "2026-11-30 02:34:06 ERROR api   Download failed: fetch failed " +
      "url=http://127.0.0.1:9/x.safetensors model_type=checkpoints hasAuth=false",
  );
  // ComfyUI's text keeps docker's time
  const text = lines.find((l) => l.msg.startsWith("Failed to get ComfyUI description"))!;
  assert.equal(text.source, "comfy");
  assert.equal(
    formatLogLine(text),
    "2026-11-30 02:34:02       comfy Failed to get ComfyUI description: Command failed: python3 /opt/ComfyUI/temp_comfy_description.py",
  );
  // an error with a stack: the stack under it; a line without docker's time
  const withStack = parseLogLine(
    JSON.stringify({
      level: 50,
      time: 0,
      msg: "Failed to evaluate workflow file",
      file: "/workflows/a.js",
      error: "x is not defined",
      stack: "ReferenceError: x is not defined\n    at a.js:1:1",
    }),
  );
  assert.equal(
    formatLogLine(withStack),
    [
      '1970-01-01 00:00:00 ERROR api   Failed to evaluate workflow file file=/workflows/a.js error="x is not defined"',
      "    ReferenceError: x is not defined",
      "        at a.js:1:1",
    ].join("\n"),
  );
  assert.equal(formatLogLine(parseLogLine("plain")), "-                         comfy plain");
  assert.equal(parseLogLine("{not json}").source, "comfy");
  assert.equal(parseLogLine('{"level":"info"}').source, "comfy", "pino's level is a number");
});

test("--errors on the captured log: the 'Failed to' line, the whole traceback, the two level-50 lines", () => {
  assert.deepEqual(
    errorsOf(captured).map((l) => l.msg),
    [
      "Failed to get ComfyUI description: Command failed: python3 /opt/ComfyUI/temp_comfy_description.py",
      "Traceback (most recent call last):",
      '  File "/opt/ComfyUI/execution.py", line 10, in execute',
      '    raise RuntimeError("boom")',
      "RuntimeError: boom",
      "Error downloading file:",
      "Download failed: fetch failed",
    ],
  );
});

test("--errors on hand-made lines: ComfyUI's exceptions, chained tracebacks, import failures, Node stacks; ordinary lines dropped", () => {
  const lines = [
    "got prompt",
    "!!! Exception during processing !!! CUDA out of memory",
    "Traceback (most recent call last):",
    '  File "a.py", line 1, in <module>',
    "KeyError: 'x'",
    "",
    "During handling of the above exception, another exception occurred:",
    "",
    "Traceback (most recent call last):",
    '  File "b.py", line 2, in f',
    "ValueError: y",
    "Prompt executed in 0.1 seconds",
    "Cannot import /opt/ComfyUI/custom_nodes/Bad module for custom nodes: No module named 'cv2'",
    "   0.0 seconds (IMPORT FAILED): /opt/ComfyUI/custom_nodes/Bad",
    "Error: listen EADDRINUSE",
    "    at Server.listen (node:net:1:1)",
    "To see the GUI go to: http://0.0.0.0:8188",
    "    indented but not under an error",
    JSON.stringify({ level: 40, msg: "Failed to send webhook" }),
    JSON.stringify({ level: 40, msg: "slow" }),
    JSON.stringify({ level: 60, msg: "fatal" }),
  ];
  assert.deepEqual(
    errorsOf(lines).map((l) => l.msg),
    [
      // the blank line between the exception and "During handling ..." is not kept; the chained one is
      ...lines.slice(1, 5),
      ...lines.slice(6, 11),
      lines[12],
      lines[13],
      lines[14],
      lines[15],
      "Failed to send webhook",
      "fatal",
    ],
  );
});

test("lines split across chunks come out whole; --since takes docker's forms", () => {
  const got: string[] = [];
  const s = new LineSplitter((l) => got.push(l));
  for (const c of ["ab", "c\nde", "f\n\ng", "h"]) s.push(c);
  s.end();
  assert.deepEqual(got, ["abc", "def", "", "gh"]);
  for (const ok of ["10m", "1h30m", "45s", "1700000000", "2025-05-01", "2025-05-01T12:00:00Z", "2025-05-01T12:00:00.5+02:00"])
    assert.ok(validSince(ok), ok);
  for (const bad of ["", "10 minutes", "yesterday", "10m; rm -rf /", "-1h"]) assert.ok(!validSince(bad), bad);
  assert.equal(logsCommand({ container: "comfyui", since: "10m", tail: 5 }), "docker logs --timestamps --since 10m --tail 5 comfyui 2>&1");
  assert.equal(logsCommand({ container: "x'y" }), "docker logs --timestamps 'x'\\''y' 2>&1");
});

test("the follow command: lines stream; when its stdin closes (the channel), docker logs is killed", async () => {
  const bin = mkdtempSync(join(tmpdir(), "flow-fake-docker-"));
  const pidFile = join(bin, "pid");
  // a docker that follows forever, printing a line every 50 ms, and records its pid
  writeFileSync(
    join(bin, "docker"),
    `#!/bin/sh\necho $$ > ${pidFile}\nexec sh -c 'i=0; while :; do i=$((i+1)); echo "line $i"; sleep 0.05; done'\n`,
  );
  chmodSync(join(bin, "docker"), 0o755);
  const child = spawn("sh", ["-c", followCommand({ container: "comfyui", tail: 10 })], {
    env: { ...process.env, PATH: `${bin}:${process.env.PATH}` },
    stdio: ["pipe", "pipe", "pipe"],
  });
  let out = "";
  child.stdout.on("data", (c: Buffer) => (out += c));
  const closed = new Promise<number | null>((r) => child.on("close", (code) => r(code)));
  for (let i = 0; i < 100 && !out.includes("line 3"); i++) await new Promise((r) => setTimeout(r, 50));
  assert.match(out, /^line 1\nline 2\nline 3/);
  const pid = Number(readFileSync(pidFile, "utf8"));
  assert.ok(alive(pid), "docker logs runs while stdin is open");
  child.stdin.end();
  const code = await Promise.race([closed, new Promise((r) => setTimeout(() => r("hung"), 5000))]);
  assert.notEqual(code, "hung", "the command ends when its stdin ends");
  assert.ok(!alive(pid), "no docker logs left behind");
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test("the export's archive: a .tar.gz tar reads back, byte for byte", () => {
  const dir = mkdtempSync(join(tmpdir(), "flow-tar-"));
  const big = Buffer.alloc(1500, 7);
  writeFileSync(
    join(dir, "a.tar.gz"),
    tarGz(
      "lab9-20250101-000000",
      [
        { name: "comfyui.log", data: "line 1\nline 2 é\n" },
        { name: "empty.txt", data: "" },
        { name: "big.bin", data: big },
      ],
      1_700_000_000,
    ),
  );
  const list = spawnSync("tar", ["-tzvf", join(dir, "a.tar.gz")], { encoding: "utf8" });
  assert.equal(list.status, 0, list.stderr);
  assert.deepEqual(
    list.stdout
      .trim()
      .split("\n")
      .map((l) => l.split(/\s+/).at(-1)),
    ["lab9-20250101-000000/", "lab9-20250101-000000/comfyui.log", "lab9-20250101-000000/empty.txt", "lab9-20250101-000000/big.bin"],
  );
  assert.equal(spawnSync("tar", ["-xzf", join(dir, "a.tar.gz"), "-C", dir]).status, 0);
  assert.equal(readFileSync(join(dir, "lab9-20250101-000000/comfyui.log"), "utf8"), "line 1\nline 2 é\n");
  assert.deepEqual(readFileSync(join(dir, "lab9-20250101-000000/big.bin")), big);
  assert.throws(() => tarGz("d", [{ name: "x".repeat(120), data: "" }]), /too long/);
});

test("secret-looking assignments are masked in exported text; other values stay", () => {
  const inspect = JSON.stringify({
    Env: ["HF_TOKEN=hf_abcdef", "CIVITAI_API_TOKEN=xyz", "AWS_SECRET_ACCESS_KEY=k", "PORT=3000", "MODEL_DIR=/opt/ComfyUI/models"],
  });
  const masked = maskSecretAssignments(inspect);
  assert.ok(!masked.includes("hf_abcdef") && !masked.includes("=xyz") && !masked.includes('KEY=k"'), masked);
  assert.match(masked, /"PORT=3000"/);
  assert.match(masked, /"MODEL_DIR=\/opt\/ComfyUI\/models"/);
  assert.equal(maskSecretAssignments("using HF_TOKEN=hf_x for org/model"), "using HF_TOKEN=*** for org/model");
});

test("Ctrl-C while following: every follower stops at once, the handler goes away after", async () => {
  // listr2's listener (it exits 127 at once) waits aside meanwhile
  const listr = function signalHandler() {
    throw new Error("listr2's handler ran");
  }.bind(null);
  process.once("SIGINT", listr);
  const before = process.listenerCount("SIGINT");
  const a = interruptible();
  assert.ok(!process.listeners("SIGINT").includes(listr));
  const b = interruptible();
  assert.equal(process.listenerCount("SIGINT"), before, "one handler for the run, in listr2's place");
  assert.equal(await a.sleep(10), false);
  const waits = [a.sleep(60_000), b.sleep(60_000)];
  const write = process.stderr.write;
  process.stderr.write = () => true;
  try {
    process.emit("SIGINT", "SIGINT");
  } finally {
    process.stderr.write = write;
  }
  assert.deepEqual(await Promise.all(waits), [true, true]);
  assert.ok(a.signal.aborted && b.signal.aborted);
  a.done();
  assert.equal(process.listenerCount("SIGINT"), before, "b still follows");
  b.done();
  assert.equal(process.listenerCount("SIGINT"), before);
  process.removeListener("SIGINT", listr);
  assert.equal(process.listenerCount("SIGINT"), before - 1, "listr2's listener was back");
});

// The status fact's parser on outputs captured from a lab host (the real comfyui-api 1.18.0 in front
// of the stand-in ComfyUI; running, then stopped), on hand-made sections (GPUs, a busy queue, odd
// answers), the fleet table, the models comparison and the exit code policy.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import {
  parsePorts,
  parseProbe,
  parseStatus,
  portWarnings,
  servedWorkflows,
  splitSections,
  statusCommand,
  statusMarker,
  type HostStatus,
} from "../../lib/facts/status.ts";
import { fleetTable, fmtDuration, rowText, statusCells, statusNotes } from "../../lib/facts/status-view.ts";
import { parseScan } from "../../plugins/models/plan.ts";
import { modelsStatus, statusExitCode, statusTable, workflowEndpoints } from "../../plugins/ops.ts";
import type { HostRecap } from "../../lib/events.ts";

const MARK = "@@flow-section-0123456789ab@@";
const fixture = (name: string) => readFileSync(new URL(`../fixtures/ops/${name}`, import.meta.url), "utf8");
const sec = (name: string, body: string) => `${MARK}${name}\n${body}\n`;
const probe = (code: number, body: string, rc = 0, err = "") => `${rc} ${code}\n${err}\n${body}\n`;

test("a healthy lab host, as captured: every field", () => {
  const s = parseStatus(fixture("status-lab.txt"), "/home/ubuntu", { marker: MARK });
  assert.equal(s.reachable, true);
  assert.equal(s.os, "Debian GNU/Linux 12 (bookworm)");
  assert.equal(s.hostname, "lab9");
  assert.deepEqual(s.load, [4.91, 6.96, 6.26]);
  assert.equal(s.disk?.path, "/home/ubuntu");
  assert.ok(s.disk!.availableGB > 0);
  assert.equal(s.gpus, null);
  assert.equal(s.docker.state, "ok");
  assert.deepEqual(
    s.docker.containers.map((c) => [c.name, c.state]),
    [["comfyui", "running"]],
  );
  assert.equal(s.container?.state, "running");
  assert.equal(s.container?.image, "flow-comfy-standin:latest");
  assert.equal(s.container?.uptimeSeconds, 1796006037 - Math.floor(Date.parse("2026-11-30T02:33:50.099Z") / 1000));
  assert.equal(s.container?.restarts, 0);
  assert.deepEqual(s.api, {
    url: "http://127.0.0.1:3000",
    version: "1.18.0",
    health: { code: 200, status: "healthy" },
    ready: { code: 200, status: "ready" },
  });
  assert.deepEqual(s.queue, { running: 0, pending: 0, total: 0 });
  assert.deepEqual(s.workflows, { served: ["lab/hello"] });
  assert.deepEqual(s.nodePacks, ["ComfyUI-Manager"]);
  // 3000 on every interface (the flowfile's default), 8188 on 127.0.0.1 only
  assert.deepEqual(
    s.openPorts.map((p) => `${p.hostIp}:${p.hostPort}->${p.containerPort}`),
    ["0.0.0.0:3000->3000"],
  );
  assert.equal(s.warnings.length, 1);
  assert.match(s.warnings[0]!, /^comfyui: port 3000->3000\/tcp is open to the world \(published on 0\.0\.0\.0\)$/);
  // the models scan, appended last, comes back raw for the models tier's parser
  const scan = parseScan(splitSections(fixture("status-lab.txt"), MARK).get("models")!);
  assert.deepEqual(
    scan.files.map((f) => f.path),
    ["checkpoints/c.safetensors"],
  );
});

test("the same host with the container stopped: state and exit code, nothing answers, reasons short", () => {
  const s = parseStatus(fixture("status-lab-stopped.txt"), "/home/ubuntu", { marker: MARK });
  assert.equal(s.container?.state, "exited");
  assert.equal(s.container?.exitCode, 0);
  assert.equal(s.container?.uptimeSeconds, null);
  assert.deepEqual(s.api.health, { code: null, error: "connection refused" });
  assert.equal(s.api.version, null);
  assert.equal(s.queue, null);
  assert.equal(s.queueError, "connection refused");
  assert.equal(s.workflows, null);
  assert.equal(s.workflowsError, "connection refused");
  assert.deepEqual(s.openPorts, [], "a stopped container publishes nothing");
  const c = statusCells(s);
  assert.deepEqual([c.comfyui, c.health, c.ready, c.queue, c.workflows], ["exited (exit 0)", "refused", "refused", "?", "?"]);
});

test("hand-made sections: GPUs, a busy queue, /ready 503, a timeout, no curl, docker missing", () => {
  const out = [
    sec("os", "Ubuntu 22.04.4 LTS\n5.15.0\ngpu1"),
    sec("docker", "!docker-missing"),
    sec("gpu", "NVIDIA H100 80GB HBM3, 1024, 81559, 37, 41\nNVIDIA H100 80GB HBM3, 2048, 81559, [N/A], 40"),
    sec("container", "!docker-unavailable"),
    sec("health", probe(200, '{"version":"1.18.1","status":"healthy"}')),
    sec("ready", probe(503, '{"version":"1.18.1","status":"not ready"}')),
    sec("docs", probe(0, "", 28, "curl: (28) Operation timed out after 3001 milliseconds with 0 bytes received")),
    sec(
      "queue",
      probe(
        200,
        JSON.stringify({
          queue_running: [[0, "a", {}, {}, []]],
          queue_pending: [
            [1, "b"],
            [2, "c"],
          ],
        }),
      ),
    ),
    sec("nodes", "d ComfyUI-Manager\nd __pycache__\nf my_node.py\nd ComfyUI-WanVideoWrapper"),
  ].join("");
  const s = parseStatus(out, "/home/user", { marker: MARK });
  assert.equal(s.docker.state, "missing");
  assert.equal(s.container, null);
  assert.deepEqual(
    s.gpus?.map((g) => [g.memoryUsedMB, g.utilization]),
    [
      [1024, 37],
      [2048, null],
    ],
  );
  assert.equal(s.api.version, "1.18.1");
  assert.deepEqual(s.api.ready, { code: 503, status: "not ready" });
  assert.equal(s.workflowsError, "timed out");
  assert.deepEqual(s.queue, { running: 1, pending: 2, total: 3 });
  assert.deepEqual(s.nodePacks, ["ComfyUI-Manager", "ComfyUI-WanVideoWrapper", "my_node.py"]);
  const c = statusCells(s);
  assert.equal(c.gpu, "2x H100 80GB HBM3 3/159G 37%");
  assert.equal(c.comfyui, "docker missing");
  assert.deepEqual([c.health, c.ready, c.queue, c.workflows, c.packs], ["200", "503", "3", "?", "3"]);
  // /queue unusable: GET /prompt's total stands in
  const viaPrompt = parseStatus(sec("queue", probe(500, "oops")) + sec("prompt", probe(200, '{"exec_info":{"queue_remaining":4}}')), "/", {
    marker: MARK,
  });
  assert.deepEqual(viaPrompt.queue, { running: null, pending: null, total: 4 });
  assert.deepEqual(parseProbe("!no-curl\n"), { code: null, error: "curl is not installed on the host", body: "" });
  assert.deepEqual(parseStatus(sec("nodes", "!missing"), "/", { marker: MARK }).nodePacks, null);
});

test("ports: docker's notations; one warning per port open to the world, 8188 with advice", () => {
  const ps = parsePorts(
    "comfyui",
    "0.0.0.0:8188->8188/tcp, :::8188->8188/tcp, [::]:3000->3000/tcp, 127.0.0.1:9000->9000/tcp, 7000/tcp, 0.0.0.0:5000-5001->5000-5001/udp",
  );
  assert.deepEqual(
    ps.map((p) => `${p.hostIp}|${p.hostPort}|${p.containerPort}|${p.proto}`),
    ["0.0.0.0|8188|8188|tcp", "::|8188|8188|tcp", "[::]|3000|3000|tcp", "127.0.0.1|9000|9000|tcp", "0.0.0.0|5000-5001|5000-5001|udp"],
  );
  const warnings = portWarnings(ps.filter((p) => ["0.0.0.0", "::", "[::]"].includes(p.hostIp)));
  assert.equal(warnings.length, 3);
  assert.match(
    warnings[0]!,
    /port 8188->8188\/tcp is open to the world \(published on 0\.0\.0\.0, ::\): ComfyUI's UI and Manager can install and run any code/,
  );
  assert.match(warnings[1]!, /port 3000->3000\/tcp .*\(published on \[::\]\)$/);
});

test("a marker is random, and a section cannot be faked by text printed after it", () => {
  assert.notEqual(statusMarker(), statusMarker());
  const out = sec("os", "Real OS\nk\nh") + sec("nodes", `d x\n${MARK}os\nFake OS`);
  assert.equal(parseStatus(out, "/", { marker: MARK }).os, "Real OS");
  assert.deepEqual(servedWorkflows({ paths: { "/health": {}, "/workflow/a/b": {}, "/workflow/c/": {}, "/prompt": {} } }), ["a/b", "c"]);
  assert.equal(servedWorkflows({ nope: 1 }), null);
});

test("the command runs here under sh and parses, whatever this machine lacks", () => {
  const marker = statusMarker();
  const r = spawnSync("sh", ["-c", statusCommand("/", { marker, timeoutSeconds: 1, extra: [{ name: "extra", command: "echo hi" }] })], {
    encoding: "utf8",
    timeout: 30_000,
  });
  assert.equal(r.status, 0, r.stderr);
  const s = parseStatus(r.stdout, "/", { marker });
  assert.ok(s.os.length > 0 && s.disk && s.load);
  assert.ok(s.api.health && (s.api.health.code !== null || s.api.health.error));
  assert.equal(splitSections(r.stdout, marker).get("extra"), "hi\n");
});

test("views: durations, labelled lines, the fleet table with unreachable and failed rows, notes", () => {
  assert.deepEqual(
    [fmtDuration(45), fmtDuration(125), fmtDuration(3 * 3600 + 65), fmtDuration(2 * 86400 + 4 * 3600), fmtDuration(null)],
    ["45s", "2m", "3h01m", "2d4h", "?"],
  );
  const s = parseStatus(fixture("status-lab.txt"), "/home/ubuntu", { marker: MARK });
  s.workflows = { served: ["lab/hello"], expected: ["lab/hello", "other"], missing: ["other"], unexpected: [] };
  s.models = { from: "workflow_templates/", needed: 2, ready: 1, missing: ["loras/a.safetensors"], workflows: { total: 1, ready: 0 } };
  assert.match(
    rowText(s),
    new RegExp(
      String.raw`^gpu -  comfyui up \S+  api 1\.18\.0  proxy -  health 200  ready 200  queue 0  workflows 1\/2  pack` +
        String.raw`s 1  models 1\/2  disk free \S+G  load 4\.91$`,
    ),
  );
  assert.equal(rowText({ reachable: false, error: "connection refused" }), "unreachable: connection refused");
  const t = fleetTable([
    { host: "lab9", row: s },
    { host: "dead", row: { reachable: false, error: "dead (127.0.0.1:1): connect ECONNREFUSED" } },
    { host: "odd", error: "failed: the status command failed" },
  ]).split("\n");
  assert.match(t[0]!, /^host\s+gpu\s+comfyui\s+api\s+proxy\s+health\s+ready\s+queue\s+workflows\s+packs\s+models\s+disk free\s+load$/);
  assert.match(t[1]!, /^lab9\s+-\s+up \S+\s+1\.18\.0\s+-\s+200\s+200\s+0\s+1\/2\s+1\s+1\/2\s+\S+G\s+4\.91$/);
  assert.equal(t[2], "dead  unreachable: dead (127.0.0.1:1): connect ECONNREFUSED");
  assert.equal(t[3], "odd   failed: the status command failed");
  assert.deepEqual(
    t.slice(5),
    statusNotes(s).map((n) => `lab9: ${n}`),
  );
  assert.deepEqual(statusNotes(s).slice(1), [
    "not served: other (in workflows/, not in GET /docs/json)",
    "models missing: loras/a.safetensors (flow run models:download)",
  ]);
});

test("what the project expects: workflows/ endpoints (.ts and .js once), models ready / missing from a scan", () => {
  const dir = mkdtempSync(join(tmpdir(), "flow-ops-wf-"));
  mkdirSync(join(dir, "qwen"));
  mkdirSync(join(dir, ".hidden"));
  for (const f of ["qwen/qwen_base_txt2img.ts", "qwen/qwen_base_txt2img.js", "top.js", "types.d.ts", "README.md", ".hidden/x.ts"])
    writeFileSync(join(dir, f), "");
  assert.deepEqual(workflowEndpoints(dir), ["qwen/qwen_base_txt2img", "top"]);
  assert.equal(workflowEndpoints(join(dir, "nope")), null);

  const dep = (folder: string, name: string, optional = false) => ({
    name,
    folder,
    optional,
    usedBy: [],
    found: ["properties.models" as const],
  });
  const deps = [
    { workflow: "a.json", models: [dep("loras", "a.safetensors"), dep("checkpoints", "c.safetensors")] },
    { workflow: "b.json", models: [dep("diffusion_models", "u.safetensors"), dep("vae", "opt.safetensors", true)] },
  ];
  const needed = [
    { folder: "loras", name: "a.safetensors", optional: false, dep: deps[0]!.models[0]!, workflows: ["a.json"] },
    { folder: "checkpoints", name: "c.safetensors", optional: false, dep: deps[0]!.models[1]!, workflows: ["a.json"] },
    { folder: "diffusion_models", name: "u.safetensors", optional: false, dep: deps[1]!.models[0]!, workflows: ["b.json"] },
  ];
  // u.safetensors sits in unet/, the old name of diffusion_models: present
  const scan = {
    files: [
      { path: "checkpoints/c.safetensors", size: 2, ino: 1, links: 1 },
      { path: "unet/u.safetensors", size: 2, ino: 2, links: 1 },
    ],
    downloadRunning: true,
  };
  assert.deepEqual(modelsStatus({ deps, needed, bad: ["broken.json"] }, scan), {
    from: "workflow_templates/",
    needed: 3,
    ready: 2,
    missing: ["loras/a.safetensors"],
    workflows: { total: 2, ready: 1 },
    downloading: true,
    error: "unreadable: broken.json",
  });
  assert.equal(modelsStatus({ deps, needed, bad: [] }, null).error, "the models volume was not scanned");
});

test(
  "exit code: 0 when every reached host reported; unreachable hosts are rows; 1 when a " +
    "reached host could not report or none was reached",
  () => {
    const recap = (host: string, outcome: HostRecap["outcome"], data: Record<string, unknown> = {}, error?: string): HostRecap => ({
      host,
      outcome,
      ok: 1,
      changed: 0,
      skipped: 0,
      failed: outcome === "failed" ? 1 : 0,
      ms: 1,
      data,
      error,
    });
    const ok = recap("a", "ok", { status: { reachable: true } });
    const dead = recap("b", "unreachable", {}, "b: connect ECONNREFUSED");
    const lost = recap("c", "failed", { status: { reachable: false, error: "connection lost" } });
    const broken = recap("d", "failed", {}, "status: the status command failed");
    assert.equal(statusExitCode([ok, dead]), 0);
    assert.equal(statusExitCode([ok, lost]), 0);
    assert.equal(statusExitCode([ok, broken]), 1);
    assert.equal(statusExitCode([dead]), 1);
    assert.equal(statusExitCode([]), 1);
    const t = statusTable([dead, broken]);
    assert.match(t, /^b\s+unreachable: b: connect ECONNREFUSED$/m);
    assert.match(t, /^d\s+failed: status: the status command failed$/m);
  },
);

test("one host's status as the task emits it: a TaskContext double answering from the captured output", async () => {
  const { status } = await import("../../plugins/ops.ts");
  const emitted: Record<string, unknown>[] = [];
  const warnings: string[] = [];
  const project = mkdtempSync(join(tmpdir(), "flow-ops-proj-"));
  mkdirSync(join(project, "workflows", "lab"), { recursive: true });
  writeFileSync(join(project, "workflows", "lab", "hello.ts"), "");
  writeFileSync(join(project, "workflows", "other.ts"), "");
  const ctx = {
    host: { name: "lab9", address: "127.0.0.1", groups: [], data: { dataRoot: "/home/ubuntu" } },
    flow: { models: {}, settings: { remoteDir: ".flow" }, providers: [] },
    transport: { user: "ubuntu" },
    projectDir: project,
    hasTask: () => false,
    async exec(command: string) {
      const marker = /echo (@@flow-section-[0-9a-f]+@@)os/.exec(command)![1]!;
      return { code: 0, stdout: fixture("status-lab.txt").split(MARK).join(marker), stderr: "" };
    },
    async step(_t: string, body: () => Promise<{ status: string; note?: string }>) {
      return (await body()).status;
    },
    emit: (d: Record<string, unknown>) => emitted.push(d),
    warn: (w: string) => warnings.push(w),
  };
  await status.run(ctx as never, {});
  const s = emitted[0]!.status as HostStatus;
  assert.deepEqual(s.workflows, { served: ["lab/hello"], expected: ["lab/hello", "other"], missing: ["other"], unexpected: [] });
  assert.equal(s.models, null, "no workflow_templates/ in this project");
  assert.deepEqual(warnings, [s.warnings[0], "not served: other (in workflows/, not in GET /docs/json)"]);
});

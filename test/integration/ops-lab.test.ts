// status and logs on a lab host (lab9: the real comfyui-api 1.18.0 in front of the stand-in
// ComfyUI, set up by `comfyui:up`), the same host under a second name (lab9b: two hosts to follow),
// and a host whose port is closed (dead).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { flow, flowfileSource, FLOW_BIN, REPO, type CliResult } from "../support/cli.ts";
import { ensureLab, labUnavailableReason, resetHost, sshArgv, type LabInventory } from "../lab/lab.ts";
import { ensureStandinImage, STANDIN_TAG } from "../lab/standin/image.ts";
import { run } from "../lab/util.ts";

const why = await labUnavailableReason();
const HOST = "lab9";
/** planted where the export must not carry it: the container's environment and a logged URL */
const SECRET = `opslab${Math.random().toString(36).slice(2, 12)}secret`;
const env = { FLOW_OPS_SECRET: SECRET };

// a workflow comfyui-api loads (no model enum: nothing on the host needed)
const WORKFLOW = `import { z } from "zod";
import { ComfyPrompt, Workflow } from "../types";

const RequestSchema = z.object({ prompt: z.string().default("a lab").describe("what to draw") });

function generateWorkflow(input: z.infer<typeof RequestSchema>): ComfyPrompt {
  return { text: { class_type: "CLIPTextEncode", inputs: { text: input.prompt, clip: ["x", 1] } } } as unknown as ComfyPrompt;
}

const workflow: Workflow = { RequestSchema, generateWorkflow, summary: "ops lab workflow" };
export default workflow;
`;
const TEMPLATE = JSON.stringify({
  nodes: [
    {
      id: 1,
      type: "ModelHolder",
      mode: 0,
      widgets_values: [],
      properties: {
        models: [
          { name: "a.safetensors", url: "https://huggingface.co/org/models/resolve/main/a.safetensors", directory: "loras" },
          { name: "c.safetensors", url: "https://huggingface.co/org/models/resolve/main/c.safetensors", directory: "checkpoints" },
        ],
      },
    },
  ],
  links: [],
});

const events = (stdout: string) =>
  stdout
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, any>);

async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

describe("status and logs on a lab host and an unreachable one", { skip: why ?? false, timeout: 600_000 }, () => {
  let inv: LabInventory;
  let dir: string;
  const onHost = async (command: string) => {
    const r = await run("ssh", sshArgv(inv.hosts[HOST]!.port, "ubuntu", command), { allowFail: true, timeoutMs: 60_000 });
    assert.equal(r.code, 0, `${command}\n${r.stdout}${r.stderr}`);
    return r.stdout;
  };
  const dockerLogsOnHost = async () => Number((await onHost("ps -eo args= | grep -c '^docker logs' || true")).trim());
  const runFlow = (args: string[]) => flow(["run", ...args], { cwd: dir, env });

  before(async () => {
    const t0 = Date.now();
    await ensureLab({ hosts: 9 });
    inv = await resetHost(HOST);
    await ensureStandinImage(inv, HOST);
    const h = inv.hosts[HOST]!;
    dir = mkdtempSync(join(tmpdir(), "flow-ops-"));
    const keys = `identityFile: ${JSON.stringify(h.identityFile)}, knownHostsFile: ${JSON.stringify(inv.knownHostsFile)}`;
    writeFileSync(
      join(dir, "flowfile.ts"),
      flowfileSource(`
import { comfyui } from ${JSON.stringify(join(REPO, "plugins/index.ts"))};
// declares the planted secret, so flow knows to redact it
const secret = defineTask({ name: "opslab:secret", description: "-", optionalSecrets: ["FLOW_OPS_SECRET"], async run() {} });
export default defineFlow({
  inventory: [${JSON.stringify(join(REPO, ".lab/inventory.json"))}],
  hosts: {
    dead: { host: "ubuntu@127.0.0.1:${await closedPort()}", ${keys} },
    lab9b: { host: "ubuntu@127.0.0.1:${h.port}", ${keys} },
  },
  plugins: [
    ops(),
    comfyui({ image: ${JSON.stringify(STANDIN_TAG)}, healthTimeoutSeconds: 90, env: { LAB_NOTE: process.env.FLOW_OPS_SECRET ?? "none" } }),
    definePlugin({ name: "opslab", tasks: [secret] }),
  ],
});`),
    );
    symlinkSync(join(REPO, "node_modules"), join(dir, "node_modules"));
    // the project: two workflows expected, one template needing two models
    mkdirSync(join(dir, "workflows", "lab"), { recursive: true });
    writeFileSync(join(dir, "workflows", "lab", "hello.ts"), WORKFLOW);
    writeFileSync(join(dir, "workflows", "other.ts"), WORKFLOW);
    mkdirSync(join(dir, "workflow_templates"));
    writeFileSync(join(dir, "workflow_templates", "main.json"), TEMPLATE);
    const up = await runFlow(["comfyui:up", "--hosts", HOST]);
    assert.equal(up.code, 0, up.stdout + up.stderr);
    // on the host: one of the two workflows, one of the two models, and a container with a port open to the world
    await onHost(
      `mkdir -p ~/comfyui-api/workflows/lab && cat > ~/comfyui-api/workflows/lab/hello.ts <<'EOF'
${WORKFLOW}
EOF
echo ` +
        `x > ~/comfyui/models/checkpoints/c.safetensors
sudo -n docker restart -t 1 comfyui >/dev/null
sudo ` +
        `-n docker run -d --name opslab-open -p 0.0.0.0:18188:8188 --entrypoint /usr/local/bin/node ` +
        `${STANDIN_TAG} -e 'setInterval(() => {}, 1e9)' >/dev/null
for i in $(seq 300); do curl -fsS ` +
        `-o /dev/null http://127.0.0.1:3000/ready 2>/dev/null && exit 0; sleep 0.1; done; exit 1`,
    );
    console.log(`# ops lab: ${HOST} reset, image loaded, comfyui:up and restart in ${((Date.now() - t0) / 1000).toFixed(1)}s`);
  });

  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test("status --json: every field for the healthy host, a row for the unreachable one; exit 0 (1 when none is reached)", async () => {
    const t0 = Date.now();
    const r = await runFlow(["status", "--hosts", `${HOST},dead`, "--json"]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const ev = events(r.stdout);
    const s = ev.find((e) => e.type === "data" && e.host === HOST)!.data.status;
    for (const key of [
      "reachable",
      "os",
      "uptimeSeconds",
      "load",
      "memory",
      "disk",
      "docker",
      "gpus",
      "container",
      "api",
      "queue",
      "workflows",
      "nodePacks",
      "models",
      "openPorts",
      "warnings",
    ]) {
      assert.ok(key in s, `status.${key} missing`);
    }
    assert.equal(s.reachable, true);
    assert.equal(s.gpus, null, "no nvidia-smi in the lab");
    assert.equal(s.container.state, "running");
    assert.ok(s.container.uptimeSeconds >= 0);
    assert.equal(s.container.image, STANDIN_TAG);
    assert.equal(s.api.version, "1.18.0");
    assert.deepEqual([s.api.health.code, s.api.ready.code], [200, 200]);
    assert.deepEqual(s.queue, { running: 0, pending: 0, total: 0 });
    assert.deepEqual(s.workflows, { served: ["lab/hello"], expected: ["lab/hello", "other"], missing: ["other"], unexpected: [] });
    assert.ok(s.nodePacks.includes("ComfyUI-Manager"), s.nodePacks);
    assert.deepEqual([s.models.needed, s.models.ready, s.models.missing], [2, 1, ["loras/a.safetensors"]]);
    assert.equal(s.disk.path, "/home/ubuntu");
    assert.ok(s.disk.availableGB > 0 && s.load.length === 3);
    // every port open to the world is warned about, the planted one with ComfyUI's advice
    assert.ok(s.openPorts.some((p: { container: string; hostPort: string }) => p.container === "opslab-open" && p.hostPort === "18188"));
    assert.ok(s.openPorts.every((p: { hostIp: string }) => ["0.0.0.0", "::", "[::]"].includes(p.hostIp)));
    assert.equal(
      s.warnings.length,
      new Set(s.openPorts.map((p: { container: string; hostPort: string }) => `${p.container}:${p.hostPort}`)).size,
    );
    assert.ok(
      s.warnings.some((w: string) => /^opslab-open: port 18188->8188\/tcp is open to the world .*publish it on 127\.0\.0\.1/.test(w)),
      s.warnings,
    );
    const dead = ev.find((e) => e.type === "recap")!.hosts.find((x: { host: string }) => x.host === "dead");
    assert.equal(dead.outcome, "unreachable");
    assert.match(dead.error, /refused/i);
    const ms = Date.now() - t0;

    const text = await runFlow(["status", "--hosts", `${HOST},dead`]);
    assert.equal(text.code, 0, text.stdout);
    assert.match(
      text.stdout,
      /^host\s+gpu\s+comfyui\s+api\s+proxy\s+health\s+ready\s+queue\s+workflows\s+packs\s+models\s+disk free\s+load$/m,
    );
    // no proxy in this flow: its cell is "-"
    assert.match(text.stdout, /^lab9\s+-\s+up \S+\s+1\.18\.0\s+-\s+200\s+200\s+0\s+1\/2\s+\d+\s+1\/2\s+\S+G\s+[\d.]+$/m);
    assert.match(text.stdout, /^dead\s+unreachable: .*refused/im);
    assert.match(text.stdout, /^lab9: not served: other /m);
    assert.match(text.stdout, /^lab9: models missing: loras\/a\.safetensors/m);
    const none = await runFlow(["status", "--hosts", "dead"]);
    assert.equal(none.code, 1, "no host reached: nothing reported");
    console.log(`# status --json on ${HOST} + an unreachable host: ${(ms / 1000).toFixed(1)}s`);
  });

  test("status --watch 1 --count 2: a line per host and round when not on a terminal", async () => {
    const r = await runFlow(["status", "--hosts", `${HOST},dead`, "--watch", "1", "--count", "2"]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(r.stdout.match(/^\[lab9\] \d\d:\d\d:\d\d gpu - +comfyui up /gm)?.length, 2, r.stdout);
    assert.match(r.stdout, /\[lab9\] status every 1s, 2 times: ok \(2 rounds;/);
  });

  test("logs --follow on two hosts: lines from both as they come, each prefixed; SIGINT ends it cleanly, no docker logs left", async () => {
    const child = spawn(process.execPath, [FLOW_BIN, "run", "logs", "--hosts", `${HOST},lab9b`, "--follow"], {
      cwd: dir,
      env: { ...process.env, CI: "true", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c));
    child.stderr.on("data", (c: Buffer) => (stderr += c));
    const done = new Promise<CliResult>((r) => child.on("close", (code) => r({ code, stdout, stderr })));
    const until = async (what: string, ok: () => boolean | Promise<boolean>, ms = 20_000) => {
      const end = Date.now() + ms;
      while (!(await ok())) {
        if (Date.now() > end) throw new Error(`timed out waiting for ${what}\n${stdout}\n${stderr}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    try {
      await until("both followers", async () => (await dockerLogsOnHost()) === 2);
      // a new line, made now, reaches both
      const mark = `opslab-${Date.now()}`;
      await onHost(`curl -s -o /dev/null http://127.0.0.1:3000/${mark}`);
      await until(
        "the new line on both hosts",
        () =>
          stdout.includes(`[lab9] `) &&
          new RegExp(`^\\[lab9\\] .*GET /${mark}`, "m").test(stdout) &&
          new RegExp(`^\\[lab9b\\] .*GET /${mark}`, "m").test(stdout),
      );
      const t0 = Date.now();
      child.kill("SIGINT");
      const r = await done;
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /\[lab9\] following the log \(Ctrl-C ends\): ok \(stopped after \d+ lines\)/);
      assert.match(r.stdout, /\[lab9b\] following the log \(Ctrl-C ends\): ok \(stopped after \d+ lines\)/);
      assert.match(r.stderr, /SIGINT: stopping/);
      await until("docker logs gone from the host", async () => (await dockerLogsOnHost()) === 0, 5_000);
      console.log(`# logs --follow: SIGINT to exit and no docker logs on the host in ${((Date.now() - t0) / 1000).toFixed(1)}s`);
    } finally {
      child.kill("SIGKILL");
    }
  });

  test("logs --errors finds a provoked error (a failed download) and nothing ordinary; the secret in it is redacted", async () => {
    await onHost(
      `curl -s -o /dev/null -H 'content-type: application/json' ` +
        `-d '{"url":"http://127.0.0.1:9/${SECRET}.safetensors","model_type":"checkpoints","wait":true}' ` +
        `http://127.0.0.1:3000/download`,
    );
    const r = await runFlow(["logs", "--hosts", HOST, "--errors", "--since", "10m"]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    // one host: the lines as they are, for piping
    assert.match(
      r.stdout,
      /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ERROR api +Download failed: fetch failed url=http:\/\/127\.0\.0\.1:9\/\*\*\*\.safetensors/m,
    );
    assert.ok(!r.stdout.includes(SECRET), "the planted secret is redacted");
    assert.doesNotMatch(r.stdout, /incoming request|INFO /);
    const all = await runFlow(["logs", "--hosts", HOST, "--lines", "30"]);
    assert.match(all.stdout, / INFO  api +request completed \d{3} \d+ms reqId=/);
  });

  test("logs --export: a tar.gz per host (log, docker inspect, status, manifest) without the planted secret", async () => {
    const out = join(dir, "exported");
    const r = await runFlow(["logs", "--hosts", `${HOST},lab9b`, "--export", out]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const files = readdirSync(out).sort();
    assert.equal(files.length, 2, files.join(" "));
    assert.match(files[0]!, /^lab9-\d{8}-\d{6}\.tar\.gz$/);
    assert.match(files[1]!, /^lab9b-\d{8}-\d{6}\.tar\.gz$/);
    for (const f of files) {
      const x = join(out, f.replace(/\.tar\.gz$/, ""));
      mkdirSync(x);
      await run("tar", ["-xzf", join(out, f), "-C", x]);
      const [top] = readdirSync(x);
      const inside = readdirSync(join(x, top!)).sort();
      assert.deepEqual(inside, ["comfyui-readable.log", "comfyui.log", "docker-inspect.json", "manifest.json", "status.json"]);
      for (const name of inside) assert.ok(!readFileSync(join(x, top!, name), "utf8").includes(SECRET), `${f}/${name} carries the secret`);
      assert.match(readFileSync(join(x, top!, "comfyui.log"), "utf8"), /Download failed/);
      assert.match(readFileSync(join(x, top!, "comfyui-readable.log"), "utf8"), / ERROR api +Download failed/);
      assert.match(readFileSync(join(x, top!, "docker-inspect.json"), "utf8"), /"LAB_NOTE=\*\*\*"/);
      assert.equal(JSON.parse(readFileSync(join(x, top!, "status.json"), "utf8")).api.version, "1.18.0");
      assert.deepEqual(JSON.parse(readFileSync(join(x, top!, "manifest.json"), "utf8")).notes, ["no nvidia-smi on the host"]);
    }
  });
});

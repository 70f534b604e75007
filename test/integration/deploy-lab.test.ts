// deploy end to end on a lab host running the real comfyui-api: the first run syncs the workflows,
// downloads the checkpoint they need (from a fake Hugging Face reached through an SSH forward),
// restarts once and proves every workflow is served; the second run changes nothing, does not
// restart, and takes at most a quarter of the first's time.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { spawn, type ChildProcess } from "node:child_process";
import { seeded, startFakeHub, type FakeHub } from "../support/fake-hub.ts";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { flow, flowfileSource, REPO } from "../support/cli.ts";
import { labUnavailableReason, resetHost, sshArgv, sshTarget, type LabInventory } from "../lab/lab.ts";
import { ensureStandinImage, STANDIN_TAG } from "../lab/standin/image.ts";
import { run } from "../lab/util.ts";

const HOST = "lab7";
const VENDOR = resolve(REPO, "../shared/vendor/comfyui-api");
const reason = (await labUnavailableReason()) ?? (existsSync(join(VENDOR, "src/types.ts")) ? null : `no comfyui-api source at ${VENDOR}`);
const STARTED = "ComfyUI API 1.18.0 started.";

// a minimal comfyui-api workflow, written for this test: one checkpoint, one image
const workflow = (summary: string) => `
import { z } from "zod";
import { ComfyPrompt, Workflow } from "../types";
import config from "../config";

const RequestSchema = z.object({
  prompt: z.string().default("a lab fox").describe("The positive prompt"),
  width: z.number().int().min(64).max(1024).optional().default(64).describe("Width"),
  height: z.number().int().min(64).max(1024).optional().default(64).describe("Height"),
  model: config.models.checkpoints.enum.optional().default(config.models.checkpoints.all[0]).describe("Checkpoint"),
});

function generateWorkflow(input: z.infer<typeof RequestSchema>): ComfyPrompt {
  return {
    "4": { inputs: { ckpt_name: input.model }, class_type: "CheckpointLoaderSimple" },
    "5": { inputs: { width: input.width, height: input.height, batch_size: 1 }, class_type: "EmptyLatentImage" },
    "6": { inputs: { text: input.prompt, clip: ["4", 1] }, class_type: "CLIPTextEncode" },
    "3": {
      inputs: { seed: 1, steps: 1, cfg: 1, sampler_name: "euler", scheduler: "normal", denoise: 1, model: ["4", 0],
        positive: ["6", 0], negative: ["6", 0], latent_image: ["5", 0] },
      class_type: "KSampler",
    },
    "8": { inputs: { samples: ["3", 0], vae: ["4", 2] }, class_type: "VAEDecode" },
    "9": { inputs: { filename_prefix: "lab", images: ["8", 0] }, class_type: "SaveImage" },
  };
}

const workflow: Workflow = { RequestSchema, generateWorkflow, summary: ${JSON.stringify(summary)} };
export default workflow;
`;

function recapOf(stdout: string): { ok: number; changed: number; skipped: number; failed: number; seconds: number } {
  const m = new RegExp(`^${HOST}\\s+\\S+\\s+(\\d+)\\s+(\\d+)\\s+(\\d+)\\s+(\\d+)\\s+([\\d.]+)s`, "m").exec(stdout);
  assert.ok(m, `no recap line for ${HOST} in:\n${stdout}`);
  return { ok: +m[1]!, changed: +m[2]!, skipped: +m[3]!, failed: +m[4]!, seconds: +m[5]! };
}

const MB = 1024 * 1024;
const CHECKPOINT = seeded("deploy-ckpt", 8 * MB);

describe("deploy on a lab host with the real comfyui-api", { skip: reason ?? false, timeout: 10 * 60_000 }, () => {
  let inv: LabInventory;
  let dir: string;
  let hub: FakeHub;
  let tunnel: ChildProcess | undefined;
  const sh = async (script: string) => {
    const r = await run("ssh", sshArgv(inv.hosts[HOST]!.port, "ubuntu", "sudo sh -s"), {
      input: `set -eu\n${script}\n`,
      allowFail: true,
      timeoutMs: 120_000,
    });
    assert.equal(r.code, 0, `${script}\n${r.stdout}\n${r.stderr}`);
    return r.stdout;
  };
  const starts = async () => (await sh("docker logs comfyui 2>&1")).split("\n").filter((l) => l.includes(STARTED)).length;

  const hubEnv = () => ({ FLOW_HF_URL: hub.url, FLOW_COMFY_DATA_URL: `${hub.url}/no-data/`, XDG_CACHE_HOME: join(dir, ".cache") });

  before(async () => {
    inv = await resetHost(HOST);
    await ensureStandinImage(inv, HOST);
    hub = await startFakeHub({ hf: { "org/lab": { files: { "lab.safetensors": CHECKPOINT } } } });
    // the host reaches the fake hub on its own loopback, through remote forwards of this SSH session
    const h = inv.hosts[HOST]!;
    const ports = [new URL(hub.url).port, new URL(hub.cdnUrl).port];
    tunnel = spawn(
      "ssh",
      ["-N", "-o", "ExitOnForwardFailure=yes", ...ports.flatMap((p) => ["-R", `${p}:127.0.0.1:${p}`]), ...sshTarget(h.port, h.user)],
      { stdio: "ignore" },
    );
    for (let i = 0; i < 100; i++) {
      const r = await run("ssh", sshArgv(h.port, "ubuntu", `curl -s -o /dev/null -w '%{http_code}' ${hub.url}/nope`), { allowFail: true });
      if (r.stdout.trim() === "404") break;
      await new Promise((res) => setTimeout(res, 200));
    }
    dir = mkdtempSync(join(tmpdir(), "flow-deploy-lab-"));
    symlinkSync(join(REPO, "node_modules"), join(dir, "node_modules"));
    writeFileSync(
      join(dir, "flowfile.ts"),
      flowfileSource(`
import { comfyui, comfyuiApi, models, nodes } from ${JSON.stringify(join(REPO, "plugins/index.ts"))};
export default defineFlow({
  inventory: [${JSON.stringify(join(REPO, ".lab/inventory.json"))}],
  settings: { allowHosts: [${JSON.stringify(new URL(hub.url).host)}, ${JSON.stringify(new URL(hub.cdnUrl).host)}] },
  plugins: [ops(), models({ connections: 4 }), nodes(), comfyui({ image: ${JSON.stringify(STANDIN_TAG)}, healthTimeoutSeconds: 120 }),
    comfyuiApi({ source: { dir: ${JSON.stringify(VENDOR)} }, readyTimeoutSeconds: 120 })],
});`),
    );
    for (const [rel, summary] of [
      ["txt2img.ts", "lab text to image"],
      ["sd15/small.ts", "lab small images"],
    ] as const) {
      mkdirSync(join(dir, "workflows", rel, ".."), { recursive: true });
      writeFileSync(join(dir, "workflows", rel), workflow(summary));
    }
    // the checkpoint both workflows load, as a UI export names it: downloaded by deploy's models step
    mkdirSync(join(dir, "workflow_templates"));
    const url = "https://huggingface.co/org/lab/resolve/main/lab.safetensors";
    const models = [{ name: "lab.safetensors", url, directory: "checkpoints" }];
    writeFileSync(
      join(dir, "workflow_templates/lab.json"),
      JSON.stringify({
        nodes: [{ id: 1, type: "CheckpointLoaderSimple", mode: 0, properties: { models }, widgets_values: ["lab.safetensors"] }],
        links: [],
      }),
    );
    hub.faults.rate = 2 * MB; // per connection, as a real CDN caps it: the download takes a moment
    const up = await flow(["run", "comfyui:up", "--hosts", HOST], { cwd: dir, env: hubEnv() });
    assert.equal(up.code, 0, up.stdout + up.stderr);
  });

  after(async () => {
    tunnel?.kill();
    await hub?.close();
  });

  test("deploy twice: the first syncs, restarts once and verifies; the second changes nothing, no restart, <= 1/4 the time", async () => {
    const before = await starts();
    const t1 = Date.now();
    const first = await flow(["run", "deploy", "--hosts", HOST], { cwd: dir, env: hubEnv() });
    const firstMs = Date.now() - t1;
    assert.equal(first.code, 0, first.stdout + first.stderr);
    const r1 = recapOf(first.stdout);
    assert.ok(r1.changed > 0, first.stdout);
    // the workflow is not in flow.lock.json: deploy says so and goes on (the verify is the proof)
    assert.match(first.stdout, /flow\.lock\.json does not pin workflow_templates\/lab\.json \(not locked\).*their packs are not installed/);
    assert.equal(await starts(), before + 1, "one restart");
    assert.match(
      await sh("sha256sum /home/ubuntu/comfyui/models/checkpoints/lab.safetensors"),
      new RegExp(createHash("sha256").update(CHECKPOINT).digest("hex")),
    );
    const served = JSON.parse(await sh("curl -fsS http://127.0.0.1:3000/docs/json")).paths;
    assert.ok(served["/workflow/txt2img"] && served["/workflow/sd15/small"], Object.keys(served).join(" "));

    const t2 = Date.now();
    const second = await flow(["run", "deploy", "--hosts", HOST], { cwd: dir, env: hubEnv() });
    const secondMs = Date.now() - t2;
    assert.equal(second.code, 0, second.stdout + second.stderr);
    assert.equal(recapOf(second.stdout).changed, 0, second.stdout);
    assert.match(second.stdout, /restart: skipped \(nothing changed\)/);
    assert.equal(await starts(), before + 1, "no restart on the second run");
    process.stderr.write(`deploy on ${HOST}: first ${(firstMs / 1000).toFixed(1)} s, second ${(secondMs / 1000).toFixed(1)} s\n`);
    assert.ok(secondMs <= firstMs / 4, `second run ${secondMs} ms > a quarter of the first (${firstMs} ms)`);
  });
});

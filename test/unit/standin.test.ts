// The lab's comfyui-api stand-in (test/lab/standin/server.mjs), run locally with
// node, against ../shared/comfyui-api-contract.md: it must reflect the disk on
// every request and speak ComfyUI's websocket and prompt protocol.
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Duplex } from "node:stream";
import { after, before, describe, test } from "node:test";
import { freePort } from "../support/sshd.ts";
import { serverScript } from "../lab/standin/image.ts";

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Running {
  proc: ChildProcess;
  comfy: string;
  api: string;
  comfyPort: number;
  logs: () => string;
  exited: Promise<number | null>;
  stop: () => Promise<void>;
}

async function start(env: Record<string, string>): Promise<Running> {
  const comfyPort = await freePort();
  const apiPort = await freePort();
  const proc = spawn(process.execPath, [serverScript], {
    env: { PATH: process.env.PATH, LISTEN_HOST: "127.0.0.1", PORT: String(apiPort), COMFY_PORT: String(comfyPort), STARTUP_CHECK_INTERVAL_S: "0.1", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  proc.stdout!.on("data", (d) => (out += d));
  proc.stderr!.on("data", (d) => (out += d));
  const exited = new Promise<number | null>((r) => proc.on("exit", (code) => r(code)));
  return {
    proc, comfyPort, comfy: `http://127.0.0.1:${comfyPort}`, api: `http://127.0.0.1:${apiPort}`, logs: () => out, exited,
    stop: async () => {
      if (proc.exitCode === null) proc.kill("SIGTERM");
      await exited;
    },
  };
}

function portOpen(url: string): Promise<boolean> {
  const { port } = new URL(url);
  return new Promise((resolve) => {
    const s = connect(Number(port), "127.0.0.1");
    s.once("connect", () => { s.destroy(); resolve(true); });
    s.once("error", () => resolve(false));
  });
}

async function waitUp(s: Running, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await portOpen(s.api))) {
    if (s.proc.exitCode !== null) throw new Error(`stand-in exited ${s.proc.exitCode}:\n${s.logs()}`);
    if (Date.now() > deadline) throw new Error(`stand-in API not up:\n${s.logs()}`);
    await sleep(50);
  }
}

async function getJson(url: string): Promise<any> {
  const r = await fetch(url);
  assert.equal(r.status, 200, `${url}: ${r.status} ${await r.clone().text()}`);
  return r.json();
}
async function post(url: string, body: unknown): Promise<{ status: number; json: any }> {
  const r = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  const text = await r.text();
  let json: any;
  try { json = JSON.parse(text); } catch { json = text; }
  return { status: r.status, json };
}

// ---- a websocket client by hand: an http upgrade, then RFC 6455 frames (server frames are unmasked)

interface WsMessage { type: string; data: any }
class WsClient {
  messages: WsMessage[] = [];
  raw: string[] = [];
  private waiters: (() => void)[] = [];
  private constructor(private socket: Duplex) {}

  static open(port: number, clientId: string): Promise<WsClient> {
    const key = randomBytes(16).toString("base64");
    return new Promise((resolve, reject) => {
      const req = http.request({
        host: "127.0.0.1", port, path: `/ws?clientId=${clientId}`,
        headers: { Connection: "Upgrade", Upgrade: "websocket", "Sec-WebSocket-Key": key, "Sec-WebSocket-Version": "13" },
      });
      req.on("upgrade", (res, socket, head) => {
        const expected = createHash("sha1").update(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest("base64");
        if (res.headers["sec-websocket-accept"] !== expected) return reject(new Error("bad Sec-WebSocket-Accept"));
        const ws = new WsClient(socket);
        ws.feed(head);
        socket.on("data", (d: Buffer) => ws.feed(d));
        resolve(ws);
      });
      req.on("response", (res) => reject(new Error(`no upgrade: HTTP ${res.statusCode}`)));
      req.on("error", reject);
      req.end();
    });
  }

  private buf = Buffer.alloc(0);
  private feed(chunk: Buffer): void {
    this.buf = Buffer.concat([this.buf, chunk]);
    for (;;) {
      if (this.buf.length < 2) return;
      const opcode = this.buf[0] & 0x0f;
      assert.equal(this.buf[1] & 0x80, 0, "server frames must not be masked");
      let len = this.buf[1] & 0x7f, off = 2;
      if (len === 126) { if (this.buf.length < 4) return; len = this.buf.readUInt16BE(2); off = 4; }
      else if (len === 127) { if (this.buf.length < 10) return; len = Number(this.buf.readBigUInt64BE(2)); off = 10; }
      if (this.buf.length < off + len) return;
      const payload = this.buf.subarray(off, off + len).toString("utf8");
      this.buf = this.buf.subarray(off + len);
      if (opcode === 1) {
        this.raw.push(payload);
        this.messages.push(JSON.parse(payload));
        this.waiters.splice(0).forEach((w) => w());
      }
    }
  }

  async next(match: (m: WsMessage) => boolean, timeoutMs = 10_000): Promise<WsMessage> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.messages.find(match);
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`no matching message; got ${this.raw.join("\n")}`);
      await new Promise<void>((r) => { this.waiters.push(r); setTimeout(r, 100); });
    }
  }

  close(): void {
    // a masked close frame, as a client must send
    const mask = randomBytes(4);
    this.socket.end(Buffer.concat([Buffer.from([0x88, 0x80]), mask]));
  }
}

// ---- fixtures

function tree(): { home: string; workflows: string } {
  const root = mkdtempSync(join(tmpdir(), "flow-standin-"));
  const home = join(root, "ComfyUI");
  const workflows = join(root, "workflows");
  for (const d of ["models/checkpoints", "models/loras/style", "models/clip", "models/text_encoders", "models/vae", "custom_nodes", "input", "output"]) {
    mkdirSync(join(home, d), { recursive: true });
  }
  writeFileSync(join(home, "models/checkpoints/sd15.safetensors"), "x");
  writeFileSync(join(home, "models/loras/style/ink.safetensors"), "x");
  writeFileSync(join(home, "models/clip/t5xxl.safetensors"), "x");
  writeFileSync(join(home, "models/text_encoders/clip_l.safetensors"), "x");
  const wf = (rel: string, text: string) => {
    mkdirSync(join(workflows, rel, ".."), { recursive: true });
    writeFileSync(join(workflows, rel), text);
  };
  const good = (summary: string, extra = "") =>
    `import { z } from "zod";\nimport config from "../config";\n${extra}\nconst RequestSchema = z.object({ prompt: z.string() });\n` +
    `function generateWorkflow(input) { return {}; }\nexport default { RequestSchema, generateWorkflow, summary: "${summary}" };\n`;
  wf("qwen/qwen_base_txt2img.ts", good("Qwen text to image", "const ckpt = config.models.checkpoints.enum;"));
  wf("sdxl/plain.js", good("Plain JS workflow"));
  wf("flux/needs_vae.ts", good("Needs a VAE", "const vae = config.models.vae.enum;")); // models/vae is empty: skipped
  wf("broken/not_a_workflow.ts", "export const nothing = 1;\n"); // no RequestSchema: skipped
  wf("locked/cannot_write.ts", good("Cannot be transpiled"));
  mkdirSync(join(workflows, "locked/cannot_write.js")); // the sibling .js cannot be written
  wf("qwen/types.d.ts", "export type X = 1;\n");
  return { home, workflows };
}

describe("comfyui-api stand-in", { timeout: 120_000 }, () => {
  let s: Running;
  let home: string;
  let workflows: string;
  const started = Date.now();

  before(async () => {
    ({ home, workflows } = tree());
    s = await start({ COMFY_HOME: home, WORKFLOW_DIR: workflows, PROMPT_DURATION_MS: "600" });
    await waitUp(s);
  });
  after(async () => {
    await s?.stop();
    if (home) rmSync(join(home, ".."), { recursive: true, force: true });
  });

  test("ComfyUI side: GET / is HTML, /system_stats has system and devices", async () => {
    const r = await fetch(`${s.comfy}/`);
    assert.equal(r.status, 200);
    assert.match(r.headers.get("content-type")!, /text\/html/);
    const stats = await getJson(`${s.comfy}/system_stats`);
    assert.equal(typeof stats.system.comfyui_version, "string");
    assert.ok(Array.isArray(stats.devices) && stats.devices.length >= 1);
  });

  test("/models lists ComfyUI's folders; /models/<folder> the files on disk, recursively, live", async () => {
    const folders: string[] = await getJson(`${s.comfy}/models`);
    for (const f of ["checkpoints", "loras", "vae", "text_encoders", "diffusion_models", "upscale_models"]) assert.ok(folders.includes(f), f);
    assert.ok(!folders.includes("clip"), "legacy clip/ is read as text_encoders");
    assert.deepEqual(await getJson(`${s.comfy}/models/checkpoints`), ["sd15.safetensors"]);
    assert.deepEqual(await getJson(`${s.comfy}/models/loras`), ["style/ink.safetensors"]);
    assert.deepEqual(await getJson(`${s.comfy}/models/text_encoders`), ["clip_l.safetensors", "t5xxl.safetensors"]);
    writeFileSync(join(home, "models/checkpoints/flux1-dev.safetensors"), "x");
    writeFileSync(join(home, "models/checkpoints/README.md"), "not a model");
    assert.deepEqual(await getJson(`${s.comfy}/models/checkpoints`), ["flux1-dev.safetensors", "sd15.safetensors"]);
    assert.equal((await fetch(`${s.comfy}/models/no_such_folder`)).status, 404);
    rmSync(join(home, "models/checkpoints/flux1-dev.safetensors"));
    assert.deepEqual(await getJson(`${s.comfy}/models/checkpoints`), ["sd15.safetensors"]);
  });

  test("/object_info: core classes with real input specs; model enums follow the disk", async () => {
    const info = await getJson(`${s.comfy}/object_info`);
    for (const c of ["CheckpointLoaderSimple", "CLIPTextEncode", "KSampler", "EmptyLatentImage", "VAEDecode", "SaveImage",
      "LoraLoader", "UNETLoader", "VAELoader", "DualCLIPLoader"]) {
      assert.ok(info[c], c);
      assert.equal(info[c].name, c);
      assert.ok(Array.isArray(info[c].input_order.required));
    }
    assert.deepEqual(info.KSampler.input_order.required, ["model", "seed", "steps", "cfg", "sampler_name", "scheduler", "positive", "negative", "latent_image", "denoise"]);
    assert.ok(info.KSampler.input.required.sampler_name[0].includes("euler"));
    assert.equal(info.SaveImage.output_node, true);
    assert.deepEqual(info.CheckpointLoaderSimple.output, ["MODEL", "CLIP", "VAE"]);
    assert.deepEqual(info.CheckpointLoaderSimple.input.required.ckpt_name[0], ["sd15.safetensors"]);
    assert.deepEqual(info.LoraLoader.input.required.lora_name[0], ["style/ink.safetensors"]);
    assert.deepEqual(info.UNETLoader.input.required.unet_name[0], []);
    mkdirSync(join(home, "models/diffusion_models"), { recursive: true });
    writeFileSync(join(home, "models/diffusion_models/qwen_image_fp8.safetensors"), "x");
    const again = await getJson(`${s.comfy}/object_info`);
    assert.deepEqual(again.UNETLoader.input.required.unet_name[0], ["qwen_image_fp8.safetensors"]);
    const one = await getJson(`${s.comfy}/object_info/UNETLoader`);
    assert.deepEqual(Object.keys(one), ["UNETLoader"]);
  });

  test("/object_info: node packs present under custom_nodes appear and disappear without restart", async () => {
    const nodes = join(home, "custom_nodes");
    const before = await getJson(`${s.comfy}/object_info`);
    assert.ok(!before.StandinManifestNode && !before.ImpactWildcardProcessor);
    // the convention file
    mkdirSync(join(nodes, "pack-a"));
    writeFileSync(join(nodes, "pack-a/flow-standin-nodes.json"), JSON.stringify(["StandinManifestNode"]));
    // what a git-cloned pack looks like: literal NODE_CLASS_MAPPINGS keys in its .py files
    mkdirSync(join(nodes, "ComfyUI-Impact-Pack/modules"), { recursive: true });
    writeFileSync(join(nodes, "ComfyUI-Impact-Pack/__init__.py"), `from .modules.nodes import *\nNODE_CLASS_MAPPINGS = {\n    "ImpactWildcardProcessor": ImpactWildcardProcessor,  # a comment: "NotAClass": x\n    'SAMLoader': SAMLoader,\n    "Nested": {"inner": 1}["inner"],\n}\nNODE_DISPLAY_NAME_MAPPINGS = { "SAMLoader": "SAMLoader (Impact)" }\n`);
    writeFileSync(join(nodes, "ComfyUI-Impact-Pack/modules/nodes.py"), `NODE_CLASS_MAPPINGS["DetailerForEach"] = DetailerForEach\n`);
    mkdirSync(join(nodes, "OldPack.disabled"));
    writeFileSync(join(nodes, "OldPack.disabled/__init__.py"), `NODE_CLASS_MAPPINGS = {"DisabledNode": X}\n`);
    const info = await getJson(`${s.comfy}/object_info`);
    for (const c of ["StandinManifestNode", "ImpactWildcardProcessor", "SAMLoader", "Nested", "DetailerForEach"]) assert.ok(info[c], c);
    for (const c of ["NotAClass", "inner", "DisabledNode"]) assert.ok(!info[c], c);
    assert.equal(info.SAMLoader.python_module, "custom_nodes.ComfyUI-Impact-Pack");
    // ComfyUI-Manager registers no classes, but its routes show whether it is there
    assert.equal((await fetch(`${s.comfy}/manager/version`)).status, 404);
    mkdirSync(join(nodes, "ComfyUI-Manager"));
    assert.equal((await fetch(`${s.comfy}/manager/version`)).status, 200);
    rmSync(join(nodes, "ComfyUI-Impact-Pack"), { recursive: true });
    const gone = await getJson(`${s.comfy}/object_info`);
    assert.ok(!gone.SAMLoader && gone.StandinManifestNode);
  });

  test("/prompt round trip over a real websocket: execution_success, then history with outputs and a PNG on disk", async () => {
    const ws = await WsClient.open(s.comfyPort, "test-client-1");
    try {
      const status = await ws.next((m) => m.type === "status");
      assert.equal(typeof status.data.status.exec_info.queue_remaining, "number");
      const prompt = {
        "4": { class_type: "CheckpointLoaderSimple", inputs: { ckpt_name: "sd15.safetensors" } },
        "5": { class_type: "EmptyLatentImage", inputs: { width: 512, height: 512, batch_size: 1 } },
        "6": { class_type: "CLIPTextEncode", inputs: { text: "a cat", clip: ["4", 1] } },
        "3": { class_type: "KSampler", inputs: { model: ["4", 0], seed: 1, steps: 20, cfg: 8, sampler_name: "euler", scheduler: "normal", positive: ["6", 0], negative: ["6", 0], latent_image: ["5", 0], denoise: 1 } },
        "8": { class_type: "VAEDecode", inputs: { samples: ["3", 0], vae: ["4", 2] } },
        "9": { class_type: "SaveImage", inputs: { images: ["8", 0], filename_prefix: "roundtrip_output" } },
      };
      const r = await post(`${s.comfy}/prompt`, { prompt, client_id: "test-client-1" });
      assert.equal(r.status, 200, JSON.stringify(r.json));
      const id = r.json.prompt_id;
      assert.equal(typeof id, "string");
      assert.equal(typeof r.json.number, "number");
      assert.deepEqual(await getJson(`${s.comfy}/history/${id}`), {}, "history is {} while the prompt runs");
      const queue = await getJson(`${s.comfy}/queue`);
      assert.equal(queue.queue_running.length + queue.queue_pending.length, 1);
      await ws.next((m) => m.type === "executing" && m.data.node === "9" && m.data.prompt_id === id);
      await ws.next((m) => m.type === "execution_success" && m.data.prompt_id === id);
      const h = (await getJson(`${s.comfy}/history/${id}`))[id];
      assert.deepEqual(h.status.completed, true);
      assert.equal(h.status.status_str, "success");
      assert.deepEqual(h.outputs["9"].images, [{ filename: "roundtrip_output_00001_.png", subfolder: "", type: "output" }]);
      const png = readFileSync(join(home, "output/roundtrip_output_00001_.png"));
      assert.deepEqual(png.subarray(0, 8), PNG_SIGNATURE);
      assert.equal(png.readUInt32BE(16), 512, "the PNG is as wide as the latent");
      await ws.next((m) => m.type === "executing" && m.data.node === null && m.data.prompt_id === id);
      // the contract: every text message is JSON with a data object
      for (const m of ws.messages) assert.ok(m.data && typeof m.data === "object", JSON.stringify(m));
      // a second prompt with the same prefix counts on
      const r2 = await post(`${s.comfy}/prompt`, { prompt, client_id: "test-client-1" });
      await ws.next((m) => m.type === "execution_success" && m.data.prompt_id === r2.json.prompt_id);
      assert.ok(existsSync(join(home, "output/roundtrip_output_00002_.png")));
    } finally {
      ws.close();
    }
  });

  test("/prompt refuses unknown classes, missing model files and prompts without outputs, as ComfyUI does", async () => {
    const save = { class_type: "SaveImage", inputs: { images: ["1", 0], filename_prefix: "x" } };
    const unknown = await post(`${s.comfy}/prompt`, { prompt: { "1": { class_type: "NoSuchNode", inputs: {} }, "2": save } });
    assert.equal(unknown.status, 400);
    assert.equal(unknown.json.error.type, "invalid_prompt");
    assert.match(unknown.json.error.message, /NoSuchNode does not exist/);
    const missing = await post(`${s.comfy}/prompt`, { prompt: { "1": { class_type: "CheckpointLoaderSimple", inputs: { ckpt_name: "absent.safetensors" } }, "2": save } });
    assert.equal(missing.status, 400);
    assert.equal(missing.json.error.type, "prompt_outputs_failed_validation");
    assert.equal(missing.json.node_errors["1"].errors[0].type, "value_not_in_list");
    const noOut = await post(`${s.comfy}/prompt`, { prompt: { "1": { class_type: "EmptyLatentImage", inputs: {} } } });
    assert.equal(noOut.status, 400);
    assert.equal(noOut.json.error.type, "prompt_no_outputs");
  });

  test("/interrupt stops the running prompt: execution_interrupted, history says error", async () => {
    const ws = await WsClient.open(s.comfyPort, "test-client-2");
    try {
      const prompt = { "1": { class_type: "EmptyImage", inputs: { width: 64, height: 64, batch_size: 1, color: 0 } }, "2": { class_type: "SaveImage", inputs: { images: ["1", 0], filename_prefix: "stopped" } } };
      const r = await post(`${s.comfy}/prompt`, { prompt, client_id: "test-client-2" });
      assert.equal(r.status, 200);
      await sleep(100);
      assert.equal((await post(`${s.comfy}/interrupt`, { prompt_id: r.json.prompt_id })).status, 200);
      const m = await ws.next((x) => x.type === "execution_interrupted");
      assert.equal(m.data.prompt_id, r.json.prompt_id);
      const h = (await getJson(`${s.comfy}/history/${r.json.prompt_id}`))[r.json.prompt_id];
      assert.equal(h.status.status_str, "error");
      assert.equal(h.status.completed, false);
      assert.ok(!existsSync(join(home, "output/stopped_00001_.png")));
    } finally {
      ws.close();
    }
  });

  test("API side: /health and /ready give {version, status}", async () => {
    const h = await getJson(`${s.api}/health`);
    assert.equal(h.status, "healthy");
    assert.equal(typeof h.version, "string");
    const r = await getJson(`${s.api}/ready`);
    assert.equal(r.status, "ready");
  });

  test("API side: /docs/json has POST /workflow/<dir>/<name> for each loadable workflow file", async () => {
    const doc = await getJson(`${s.api}/docs/json`);
    assert.match(doc.openapi, /^3\./);
    const workflowPaths = Object.keys(doc.paths).filter((p) => p.startsWith("/workflow/")).sort();
    assert.deepEqual(workflowPaths, ["/workflow/qwen/qwen_base_txt2img", "/workflow/sdxl/plain"]);
    const op = doc.paths["/workflow/qwen/qwen_base_txt2img"].post;
    assert.equal(op.summary, "Qwen text to image");
    assert.deepEqual(op.requestBody.content["application/json"].schema.required, ["input"]);
    for (const p of ["/health", "/ready", "/models", "/prompt", "/interrupt"]) assert.ok(doc.paths[p], p);
    // .ts transpiled beside itself; the ones that cannot load are logged and skipped
    assert.ok(existsSync(join(workflows, "qwen/qwen_base_txt2img.js")));
    const logs = s.logs();
    assert.match(logs, /Failed to load workflow .*cannot_write\.ts/);
    assert.match(logs, /Failed to load workflow .*not_a_workflow\.ts/);
    assert.match(logs, /Failed to load workflow .*needs_vae\.ts.*vae/);
  });

  test("API side: /models asks ComfyUI on every call", async () => {
    const m = await getJson(`${s.api}/models`);
    assert.deepEqual(m.checkpoints, ["sd15.safetensors"]);
    writeFileSync(join(home, "models/vae/ae.safetensors"), "x");
    assert.deepEqual((await getJson(`${s.api}/models`)).vae, ["ae.safetensors"]);
  });

  test("API side: POST /workflow/<dir>/<name> runs a prompt and returns base64 images; the file is removed", async () => {
    const r = await post(`${s.api}/workflow/qwen/qwen_base_txt2img`, { input: { prompt: "a cat", width: 128, height: 96 }, id: "wf-req-1" });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.equal(r.json.id, "wf-req-1");
    assert.equal(r.json.images.length, 1);
    const png = Buffer.from(r.json.images[0], "base64");
    assert.deepEqual(png.subarray(0, 8), PNG_SIGNATURE);
    assert.equal(png.readUInt32BE(16), 128);
    assert.ok(!existsSync(join(home, "output/wf-req-1_output_00001_.png")), "read and deleted, as the real one does");
    assert.equal((await post(`${s.api}/workflow/qwen/qwen_base_txt2img`, { nope: 1 })).status, 400);
    assert.equal((await post(`${s.api}/workflow/qwen/absent`, { input: {} })).status, 404);
  });

  test("API side: POST /prompt forwards (SaveImage prefix rewritten to <id>_output); POST /interrupt answers", async () => {
    const prompt = { "1": { class_type: "EmptyImage", inputs: { width: 32, height: 32, batch_size: 1, color: 0 } }, "2": { class_type: "SaveImage", inputs: { images: ["1", 0], filename_prefix: "mine" } } };
    const r = await post(`${s.api}/prompt`, { prompt, id: "api-prompt-1" });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.deepEqual(r.json.filenames, ["api-prompt-1_output_00001_.png"]);
    assert.equal(r.json.images.length, 1);
    const bad = await post(`${s.api}/prompt`, { prompt: { "1": { class_type: "Nope", inputs: {} } } });
    assert.equal(bad.status, 400);
    assert.equal((await post(`${s.api}/interrupt`, { id: "whatever" })).status, 200);
  });

  test("start-up took the ComfyUI side first (logs in order)", () => {
    const logs = s.logs();
    assert.ok(logs.indexOf("To see the GUI go to") < logs.indexOf("Server listening at"), logs);
    assert.ok(Date.now() - started > 0);
  });
});

describe("comfyui-api stand-in: start-up and failure", { timeout: 60_000 }, () => {
  const dirs: string[] = [];
  after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
  const home = () => {
    const d = mkdtempSync(join(tmpdir(), "flow-standin-"));
    dirs.push(d);
    mkdirSync(join(d, "models/checkpoints"), { recursive: true });
    return d;
  };

  test("port 3000 opens only after 8188 answers (STARTUP_DELAY_MS)", async () => {
    const s = await start({ COMFY_HOME: home(), WORKFLOW_DIR: "/nonexistent", STARTUP_DELAY_MS: "1500" });
    try {
      const t0 = Date.now();
      let comfyAt = 0, apiAt = 0;
      while (!apiAt && Date.now() - t0 < 15_000) {
        const [c, a] = await Promise.all([portOpen(s.comfy), portOpen(s.api)]);
        if (c && !comfyAt) comfyAt = Date.now() - t0;
        if (a) apiAt = Date.now() - t0;
        if (a) assert.ok(c, "API answered while ComfyUI did not");
        await sleep(25);
      }
      assert.ok(comfyAt >= 1000, `ComfyUI side up after ${comfyAt} ms despite STARTUP_DELAY_MS=1500`);
      assert.ok(apiAt >= comfyAt, `API at ${apiAt} ms, ComfyUI at ${comfyAt} ms`);
      assert.equal((await getJson(`${s.api}/health`)).status, "healthy");
    } finally {
      await s.stop();
    }
    assert.equal(await s.exited, 0, "SIGTERM ends it cleanly");
  });

  test("missing MODEL_DIR: logs it and exits 1 without opening a port", async () => {
    const h = home();
    const s = await start({ COMFY_HOME: h, MODEL_DIR: join(h, "no-models") });
    assert.equal(await s.exited, 1);
    assert.match(s.logs(), /no-models does not exist/);
    assert.equal(await portOpen(s.comfy), false);
  });

  test("FAIL_STARTUP=1 exits 1 after logging", async () => {
    const s = await start({ COMFY_HOME: home(), FAIL_STARTUP: "1" });
    assert.equal(await s.exited, 1);
    assert.match(s.logs(), /"level":60/);
  });

  test("ComfyUI never answering: 'Comfy UI did not start after N seconds', exit 1", async () => {
    const s = await start({ COMFY_HOME: home(), STARTUP_DELAY_MS: "60000", STARTUP_CHECK_MAX_TRIES: "5" });
    assert.equal(await s.exited, 1);
    assert.match(s.logs(), /Comfy UI did not start after/);
  });
});

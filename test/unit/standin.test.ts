// The lab's stand-in ComfyUI (test/lab/standin/server.mjs), run locally with node the way the
// real comfyui-api runs it (through CMD, with ComfyUI's own --listen/--port flags and comfyui-api's
// environment, PORT included), against ../shared/comfyui-api-contract.md: it must reflect the disk
// (models on every request, node packs as loaded at start-up) and speak ComfyUI's websocket and
// prompt protocol. The real comfyui-api in front of it is tested in a lab host:
// test/integration/standin-lab.test.ts; its pack loader with python: standin-introspect.test.ts.
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Duplex } from "node:stream";
import { after, before, describe, test } from "node:test";
import { freePort } from "../support/sshd.ts";
import { serverScript } from "../lab/standin/image.ts";
import { COMFYUI_API, comfyuiApiHash, comfyuiApiSource, vendorDir } from "../lab/standin/comfyui-api.ts";

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Running {
  proc: ChildProcess;
  comfy: string;
  comfyPort: number;
  /** the PORT comfyui-api passes on to its child (its own port): must stay closed */
  apiPort: number;
  logs: () => string;
  exited: Promise<number | null>;
  stop: () => Promise<void>;
}

/** As comfyui-api starts it: CMD split on spaces, comfyui-api's environment (PORT=its own) plus
 * DIRECT_ADDRESS and COMFYUI_PORT_HOST. */
async function start(env: Record<string, string>): Promise<Running> {
  const comfyPort = await freePort();
  const apiPort = await freePort();
  const proc = spawn(process.execPath, [serverScript, "--listen", "127.0.0.1", "--port", String(comfyPort)], {
    env: {
      PATH: process.env.PATH,
      PORT: String(apiPort),
      DIRECT_ADDRESS: "127.0.0.1",
      COMFYUI_PORT_HOST: String(comfyPort),
      WORKFLOW_DIR: "/nonexistent",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  proc.stdout!.on("data", (d) => (out += d));
  proc.stderr!.on("data", (d) => (out += d));
  const exited = new Promise<number | null>((r) => proc.on("exit", (code) => r(code)));
  return {
    proc,
    comfyPort,
    apiPort,
    comfy: `http://127.0.0.1:${comfyPort}`,
    logs: () => out,
    exited,
    stop: async () => {
      if (proc.exitCode === null) proc.kill("SIGINT"); // what comfyui-api sends its child
      await exited;
    },
  };
}

function portOpen(url: string): Promise<boolean> {
  const { port } = new URL(url);
  return new Promise((resolve) => {
    const s = connect(Number(port), "127.0.0.1");
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

async function waitUp(s: Running, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await portOpen(s.comfy))) {
    if (s.proc.exitCode !== null) throw new Error(`stand-in exited ${s.proc.exitCode}:\n${s.logs()}`);
    if (Date.now() > deadline) throw new Error(`stand-in ComfyUI not up:\n${s.logs()}`);
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
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: r.status, json };
}

// ---- a websocket client by hand: an http upgrade, then RFC 6455 frames (server frames are unmasked)

interface WsMessage {
  type: string;
  data: any;
}
class WsClient {
  messages: WsMessage[] = [];
  raw: string[] = [];
  private waiters: (() => void)[] = [];
  private constructor(private socket: Duplex) {}

  static open(port: number, clientId: string): Promise<WsClient> {
    const key = randomBytes(16).toString("base64");
    return new Promise((resolve, reject) => {
      const req = http.request({
        host: "127.0.0.1",
        port,
        path: `/ws?clientId=${clientId}`,
        headers: { Connection: "Upgrade", Upgrade: "websocket", "Sec-WebSocket-Key": key, "Sec-WebSocket-Version": "13" },
      });
      req.on("upgrade", (res, socket, head) => {
        const expected = createHash("sha1")
          .update(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")
          .digest("base64");
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
      let len = this.buf[1] & 0x7f,
        off = 2;
      if (len === 126) {
        if (this.buf.length < 4) return;
        len = this.buf.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (this.buf.length < 10) return;
        len = Number(this.buf.readBigUInt64BE(2));
        off = 10;
      }
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
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 100);
      });
    }
  }

  close(): void {
    // a masked close frame, as a client must send
    const mask = randomBytes(4);
    this.socket.end(Buffer.concat([Buffer.from([0x88, 0x80]), mask]));
  }
}

// ---- fixtures

function tree(): string {
  const root = mkdtempSync(join(tmpdir(), "flow-standin-"));
  const home = join(root, "ComfyUI");
  for (const d of [
    "models/checkpoints",
    "models/loras/style",
    "models/clip",
    "models/text_encoders",
    "models/vae",
    "custom_nodes",
    "input",
    "output",
  ]) {
    mkdirSync(join(home, d), { recursive: true });
  }
  writeFileSync(join(home, "models/checkpoints/sd15.safetensors"), "x");
  writeFileSync(join(home, "models/loras/style/ink.safetensors"), "x");
  writeFileSync(join(home, "models/clip/t5xxl.safetensors"), "x");
  writeFileSync(join(home, "models/text_encoders/clip_l.safetensors"), "x");
  return home;
}

describe("stand-in ComfyUI", { timeout: 120_000 }, () => {
  let s: Running;
  let home: string;

  before(async () => {
    home = tree();
    s = await start({ COMFY_HOME: home, PROMPT_DURATION_MS: "600" });
    await waitUp(s);
  });
  after(async () => {
    await s?.stop();
    if (home) rmSync(join(home, ".."), { recursive: true, force: true });
  });

  test("started as comfyui-api starts it: listens on --port, leaves comfyui-api's PORT alone", async () => {
    assert.equal(await portOpen(s.comfy), true);
    assert.equal(await portOpen(`http://127.0.0.1:${s.apiPort}`), false, "PORT is comfyui-api's, not ComfyUI's");
    const stats = await getJson(`${s.comfy}/system_stats`);
    assert.deepEqual(stats.system.argv, ["main.py", "--listen", "127.0.0.1", "--port", String(s.comfyPort)]);
    assert.match(s.logs(), /To see the GUI go to: http:\/\/127\.0\.0\.1:\d+/);
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
    for (const f of ["checkpoints", "loras", "vae", "text_encoders", "diffusion_models", "upscale_models"])
      assert.ok(folders.includes(f), f);
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
    for (const c of [
      "CheckpointLoaderSimple",
      "CLIPTextEncode",
      "KSampler",
      "EmptyLatentImage",
      "VAEDecode",
      "SaveImage",
      "LoraLoader",
      "UNETLoader",
      "VAELoader",
      "DualCLIPLoader",
    ]) {
      assert.ok(info[c], c);
      assert.equal(info[c].name, c);
      assert.ok(Array.isArray(info[c].input_order.required));
    }
    assert.deepEqual(info.KSampler.input_order.required, [
      "model",
      "seed",
      "steps",
      "cfg",
      "sampler_name",
      "scheduler",
      "positive",
      "negative",
      "latent_image",
      "denoise",
    ]);
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

  test("/object_info: node packs under custom_nodes, read once at start-up (here without python: literal class names)", async () => {
    // packs load once, as in ComfyUI; with python3 they are imported for real (standin-introspect.test.ts)
    const h = join(home, "..", "packs-home");
    const nodes = join(h, "custom_nodes");
    mkdirSync(nodes, { recursive: true });
    // the convention file
    mkdirSync(join(nodes, "pack-a"));
    writeFileSync(join(nodes, "pack-a/flow-standin-nodes.json"), JSON.stringify(["StandinManifestNode"]));
    // what a git-cloned pack looks like: literal NODE_CLASS_MAPPINGS keys in its .py files
    mkdirSync(join(nodes, "ComfyUI-Impact-Pack/modules"), { recursive: true });
    writeFileSync(
      join(nodes, "ComfyUI-Impact-Pack/__init__.py"),
      `from .modules.nodes import *\nNODE_CLASS_MAPPINGS = {\n    "ImpactWildcardProcessor": ImpactWildcardProcessor, ` +
        ` # a comment: "NotAClass": x\n    'SAMLoader': SAMLoader,\n    "Nested": {"inner": 1}["inner"],\n}\nNODE_DISPLAY_NAME_MAPPINGS ` +
        `= { "SAMLoader": "SAMLoader (Impact)" }\n`,
    );
    writeFileSync(join(nodes, "ComfyUI-Impact-Pack/modules/nodes.py"), `NODE_CLASS_MAPPINGS["DetailerForEach"] = DetailerForEach\n`);
    mkdirSync(join(nodes, "OldPack.disabled"));
    writeFileSync(join(nodes, "OldPack.disabled/__init__.py"), `NODE_CLASS_MAPPINGS = {"DisabledNode": X}\n`);
    let p = await start({ COMFY_HOME: h, STANDIN_PYTHON: "none" });
    try {
      await waitUp(p);
      const info = await getJson(`${p.comfy}/object_info`);
      for (const c of ["StandinManifestNode", "ImpactWildcardProcessor", "SAMLoader", "Nested", "DetailerForEach"]) assert.ok(info[c], c);
      for (const c of ["NotAClass", "inner", "DisabledNode"]) assert.ok(!info[c], c);
      assert.equal(info.SAMLoader.python_module, "custom_nodes.ComfyUI-Impact-Pack");
      assert.match(p.logs(), /Import times for custom nodes:\n {3}0\.0 seconds: \S+\/ComfyUI-Impact-Pack\n {3}0\.0 seconds: \S+\/pack-a\n/);
      // ComfyUI-Manager registers no classes, but its routes show whether it is there
      assert.equal((await fetch(`${p.comfy}/manager/version`)).status, 404);
      mkdirSync(join(nodes, "ComfyUI-Manager"));
      assert.equal((await fetch(`${p.comfy}/manager/version`)).status, 200);
      // a pack removed (or added) while ComfyUI runs changes nothing until a restart
      rmSync(join(nodes, "ComfyUI-Impact-Pack"), { recursive: true });
      assert.ok((await getJson(`${p.comfy}/object_info`)).SAMLoader);
      await p.stop();
      p = await start({ COMFY_HOME: h, STANDIN_PYTHON: "none" });
      await waitUp(p);
      const gone = await getJson(`${p.comfy}/object_info`);
      assert.ok(!gone.SAMLoader && gone.StandinManifestNode);
    } finally {
      await p.stop();
    }
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
        "3": {
          class_type: "KSampler",
          inputs: {
            model: ["4", 0],
            seed: 1,
            steps: 20,
            cfg: 8,
            sampler_name: "euler",
            scheduler: "normal",
            positive: ["6", 0],
            negative: ["6", 0],
            latent_image: ["5", 0],
            denoise: 1,
          },
        },
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
    const missing = await post(`${s.comfy}/prompt`, {
      prompt: { "1": { class_type: "CheckpointLoaderSimple", inputs: { ckpt_name: "absent.safetensors" } }, "2": save },
    });
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
      const prompt = {
        "1": { class_type: "EmptyImage", inputs: { width: 64, height: 64, batch_size: 1, color: 0 } },
        "2": { class_type: "SaveImage", inputs: { images: ["1", 0], filename_prefix: "stopped" } },
      };
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

  test("after the prompts above the queue is empty: GET /queue and GET /prompt", async () => {
    const q = await getJson(`${s.comfy}/queue`);
    assert.deepEqual([q.queue_running.length, q.queue_pending.length], [0, 0]);
    assert.deepEqual(await getJson(`${s.comfy}/prompt`), { exec_info: { queue_remaining: 0 } });
  });
});

describe("stand-in ComfyUI: start-up and faults (what comfyui-api reacts to)", { timeout: 60_000 }, () => {
  const dirs: string[] = [];
  after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
  const home = () => {
    const d = mkdtempSync(join(tmpdir(), "flow-standin-"));
    dirs.push(d);
    mkdirSync(join(d, "models/checkpoints"), { recursive: true });
    return d;
  };

  test("STARTUP_DELAY_MS: the port opens only after the delay (comfyui-api keeps polling GET /)", async () => {
    const s = await start({ COMFY_HOME: home(), STARTUP_DELAY_MS: "1500" });
    try {
      const t0 = Date.now();
      let comfyAt = 0;
      while (!comfyAt && Date.now() - t0 < 15_000) {
        if (await portOpen(s.comfy)) comfyAt = Date.now() - t0;
        else await sleep(25);
      }
      assert.ok(comfyAt >= 1000, `ComfyUI up after ${comfyAt} ms despite STARTUP_DELAY_MS=1500`);
      assert.equal((await fetch(`${s.comfy}/`)).status, 200);
    } finally {
      await s.stop();
    }
    assert.equal(await s.exited, 0, "SIGINT (comfyui-api's) ends it cleanly");
  });

  test("FAIL_STARTUP=1: a traceback and exit 1 before listening (comfyui-api then exits 1 too)", async () => {
    const s = await start({ COMFY_HOME: home(), FAIL_STARTUP: "1" });
    assert.equal(await s.exited, 1);
    assert.match(s.logs(), /FAIL_STARTUP=1[\s\S]*Traceback/);
    assert.equal(await portOpen(s.comfy), false);
  });

  test("FAIL_PROMPTS=1: the prompt ends in execution_error on the websocket; history says error", async () => {
    const s = await start({ COMFY_HOME: home(), FAIL_PROMPTS: "1", PROMPT_DURATION_MS: "50" });
    try {
      await waitUp(s);
      const ws = await WsClient.open(s.comfyPort, "client-f");
      try {
        const prompt = {
          "1": { class_type: "EmptyImage", inputs: { width: 32, height: 32, batch_size: 1, color: 0 } },
          "2": { class_type: "SaveImage", inputs: { images: ["1", 0], filename_prefix: "f" } },
        };
        const r = await post(`${s.comfy}/prompt`, { prompt, client_id: "client-f" });
        assert.equal(r.status, 200);
        const m = await ws.next((x) => x.type === "execution_error");
        assert.equal(m.data.prompt_id, r.json.prompt_id);
        assert.equal(typeof m.data.exception_message, "string");
        const h = (await getJson(`${s.comfy}/history/${r.json.prompt_id}`))[r.json.prompt_id];
        assert.deepEqual([h.status.status_str, h.status.completed], ["error", false]);
      } finally {
        ws.close();
      }
    } finally {
      await s.stop();
    }
  });

  test("ComfyUI's version: from $COMFY_HOME/comfyui_version.py (comfyui-api reads the same file)", async () => {
    const h = home();
    writeFileSync(join(h, "comfyui_version.py"), `__version__ = "9.8.7-test"\n`);
    const s = await start({ COMFY_HOME: h });
    try {
      await waitUp(s);
      assert.equal((await getJson(`${s.comfy}/system_stats`)).system.comfyui_version, "9.8.7-test");
    } finally {
      await s.stop();
    }
  });
});

// Where the lab image's comfyui-api comes from when ../shared/vendor/comfyui-api is absent (a
// user's clone): GitHub's tarball of the pinned commit. GitHub cannot be reached here, so a local
// server plays it (a redirect to a tarball with one top folder, as github.com/<repo>/archive does).
describe(
  "comfyui-api source for the lab image, without the vendor copy",
  { skip: existsSync(vendorDir) ? false : `${vendorDir} absent`, timeout: 60_000 },
  () => {
    let server: http.Server;
    let base = "";
    let hits = 0;
    const dirs: string[] = [];
    before(async () => {
      const top = `comfyui-api-${COMFYUI_API.commit}`;
      const tgz = await new Promise<Buffer>((resolve, reject) => {
        const p = spawn("tar", [
          "-czf",
          "-",
          `--transform=s,^,${top}/,`,
          "-C",
          vendorDir,
          "package.json",
          "package-lock.json",
          "tsconfig.json",
          "src",
        ]);
        const chunks: Buffer[] = [];
        p.stdout.on("data", (c: Buffer) => chunks.push(c));
        p.on("error", reject);
        p.on("close", (code) => (code === 0 ? resolve(Buffer.concat(chunks)) : reject(new Error(`tar exit ${code}`))));
      });
      server = http.createServer((req, res) => {
        if (req.url === `/archive/${COMFYUI_API.commit}.tar.gz`) {
          res.writeHead(302, { location: `/codeload/${COMFYUI_API.commit}` }).end();
        } else if (req.url === `/codeload/${COMFYUI_API.commit}`) {
          hits++;
          res.writeHead(200, { "content-type": "application/x-gzip", "content-length": tgz.length }).end(tgz);
        } else res.writeHead(404).end();
      });
      await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
      base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    });
    after(() => {
      server?.close();
      dirs.forEach((d) => rmSync(d, { recursive: true, force: true }));
    });
    const cache = () => {
      const d = mkdtempSync(join(tmpdir(), "flow-capi-src-"));
      dirs.push(d);
      return d;
    };

    test("downloaded once into the cache; the same content hash as the vendor copy, so the same build", async () => {
      const c = cache();
      const opts = { vendor: join(c, "no-vendor"), url: `${base}/archive/${COMFYUI_API.commit}.tar.gz`, cache: c };
      const logged: string[] = [];
      const got = await comfyuiApiSource((m) => logged.push(m), opts);
      assert.match(got.origin, /^github 4dfc930/);
      assert.ok(got.dir.startsWith(c));
      assert.ok(existsSync(join(got.dir, "src/index.ts")));
      assert.match(logged.join("\n"), /no-vendor is absent; downloading http/);
      assert.equal(await comfyuiApiHash(got.dir), await comfyuiApiHash(vendorDir));
      const again = await comfyuiApiSource(() => {}, opts);
      assert.equal(again.dir, got.dir);
      assert.equal(hits, 1, "the second call uses the cached source");
    });

    test("offline: fails at once with a message that says what is missing and what to do", async () => {
      const c = cache();
      const closed = await freePort();
      await assert.rejects(
        comfyuiApiSource(() => {}, { vendor: join(c, "no-vendor"), url: `http://127.0.0.1:${closed}/archive/x.tar.gz`, cache: c }),
        (err: Error) => {
          assert.match(err.message, /needs comfyui-api 1\.18\.0's source and cannot get it/);
          assert.match(err.message, /no-vendor is absent/);
          assert.match(err.message, /downloading http:\/\/127\.0\.0\.1:\d+\/archive\/x\.tar\.gz failed \(fetch failed: .*ECONNREFUSED/);
          assert.match(err.message, /offline\?/);
          assert.match(err.message, /FLOW_LAB_COMFYUI_API_SRC/);
          return true;
        },
      );
      assert.deepEqual(readdirSync(c), [], "nothing half-written is left in the cache");
    });

    test("a tarball of another version, or an HTTP error, is refused and leaves nothing behind", async () => {
      const c = cache();
      const other = join(c, "other");
      mkdirSync(join(other, "src"), { recursive: true });
      const pkg = JSON.parse(readFileSync(join(vendorDir, "package.json"), "utf8"));
      writeFileSync(join(other, "package.json"), JSON.stringify({ ...pkg, version: "9.9.9" }));
      for (const f of ["package-lock.json", "tsconfig.json", "src/index.ts"])
        writeFileSync(join(other, f), readFileSync(join(vendorDir, f)));
      const tgz = spawnSync("tar", ["-czf", "-", "--transform=s,^\\.,comfyui-api-x,", "-C", other, "."]).stdout;
      const srv = http.createServer((_req, res) => res.writeHead(200, { "content-length": tgz.length }).end(tgz));
      await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
      try {
        const url = `http://127.0.0.1:${(srv.address() as { port: number }).port}/x.tar.gz`;
        await assert.rejects(
          comfyuiApiSource(() => {}, { vendor: join(c, "no-vendor"), url, cache: c }),
          /is comfyui-api 9\.9\.9; the lab pins 1\.18\.0/,
        );
      } finally {
        srv.close();
      }
      await assert.rejects(
        comfyuiApiSource(() => {}, { vendor: join(c, "no-vendor"), url: `${base}/nothing-here`, cache: c }),
        /downloading .* failed \(HTTP 404/,
      );
      assert.deepEqual(readdirSync(c).sort(), ["other"]);
    });
  },
);

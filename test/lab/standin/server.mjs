#!/usr/bin/env node
// The lab's stand-in for ComfyUI (port 8188), run by the REAL comfyui-api in the lab image:
// comfyui-api 1.18.0 starts it through its `CMD` environment variable, exactly as it starts
// `comfy launch` in the real image, then talks to it over HTTP and the websocket. One
// dependency-free Node script (node: built-ins only).
//
// It follows ../../../../shared/comfyui-api-contract.md and, unlike a mock, reads the host's
// real state: model files on disk appear in /models/<folder> and in /object_info enums on every
// request, node packs under custom_nodes appear in /object_info (with their python_module) as
// loaded at start-up, prompts write real PNG files to OUTPUT_DIR.
//
// It serves ComfyUI's side only. comfyui-api passes its own environment to its child, PORT=3000
// included, so PORT is ignored here (as real ComfyUI ignores it); the port comes from ComfyUI's
// own arguments:
//   node server.mjs [--listen [ADDR]] [--port N]     (ComfyUI's flags; other flags are ignored)
// Environment:
//   COMFY_PORT (8188, when --port is not given)  LISTEN_HOST (0.0.0.0, when --listen is not given)
//   COMFY_HOME (/opt/ComfyUI)  MODEL_DIR ($COMFY_HOME/models)  OUTPUT_DIR ($COMFY_HOME/output)
//   INPUT_DIR ($COMFY_HOME/input)
// and faults for tests, which reach it through comfyui-api (it passes every variable on):
//   STARTUP_DELAY_MS   listen only after this long (a slow start: comfyui-api keeps polling GET /)
//   FAIL_STARTUP=1     log a fatal start-up error and exit 1, like a broken image (comfyui-api
//                      then logs "Process exited with code 1" and exits 1 itself)
//   PROMPT_DURATION_MS how long one prompt "runs" (200)
//   FAIL_PROMPTS=1     every prompt ends in execution_error (comfyui-api answers 500)
//
// The stand-in once imitated comfyui-api's own half (port 3000) too; that imitation is gone:
// every fault a test needs is one of ComfyUI's, above, and the real server shows what follows.
//
// Custom node classes: loaded once at start-up, as ComfyUI loads them (a pack installed later
// needs a restart). With python3 (STANDIN_PYTHON, "none" for never), ./introspect.py imports each
// pack for real, stubbing only what ComfyUI's image provides: a pack whose requirements are not
// importable fails with ComfyUI's log lines, the others give their real definitions. Without
// python, a pack contributes the keys of every literal `NODE_CLASS_MAPPINGS = { "Name": ... }`
// (and `NODE_CLASS_MAPPINGS["Name"] = ...`) in its .py files. Either way a pack folder may hold
// flow-standin-nodes.json: ["Name", ...] or {"Name": {partial definition}}, classes declared
// without python (such a folder needs no __init__.py). After loading, ComfyUI's "Import times
// for custom nodes:" summary. Packs named *.disabled, hidden ones and __pycache__ are skipped.
//   STANDIN_LOAD_TIMEOUT_MS   how long loading packs with python may take (300000), then the regex way
// GET /manager/version answers while custom_nodes/ComfyUI-Manager exists (the image has one).
import { spawn, spawnSync } from "node:child_process";
import { createHash, randomUUID } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import http from "node:http";
import os from "node:os";
import { basename, dirname, extname, join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { deflateSync } from "node:zlib";

const env = process.env;
const COMFY_HOME = env.COMFY_HOME || "/opt/ComfyUI";

/** ComfyUI's own flags: `--listen` (no value: every interface) and `--port`. */
function parseArgs(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--port") out.port = Number(argv[++i]);
    else if (argv[i] === "--listen") {
      const next = argv[i + 1];
      out.listen = next && !next.startsWith("--") ? argv[++i] : "0.0.0.0";
    }
  }
  return out;
}
const args = parseArgs(process.argv.slice(2));
// "*" and ComfyUI's "0.0.0.0,::" mean every interface; node takes one address
const listenHost = (h) => (!h || h === "*" ? "0.0.0.0" : h.split(",")[0]);

const cfg = {
  comfyPort: args.port || Number(env.COMFY_PORT || 8188),
  host: listenHost(args.listen ?? env.LISTEN_HOST),
  modelDir: env.MODEL_DIR || join(COMFY_HOME, "models"),
  outputDir: env.OUTPUT_DIR || join(COMFY_HOME, "output"),
  inputDir: env.INPUT_DIR || join(COMFY_HOME, "input"),
  customNodesDir: join(COMFY_HOME, "custom_nodes"),
  tempDir: join(COMFY_HOME, "temp"),
  startupDelayMs: Number(env.STARTUP_DELAY_MS || 0),
  promptMs: Number(env.PROMPT_DURATION_MS || 200),
  failPrompts: env.FAIL_PROMPTS === "1",
};
if (!Number.isInteger(cfg.comfyPort) || cfg.comfyPort <= 0) {
  process.stderr.write(`stand-in ComfyUI: bad port ${cfg.comfyPort}\n`);
  process.exit(2);
}

/** ComfyUI's version: STANDIN_COMFY_VERSION, else $COMFY_HOME/comfyui_version.py (comfyui-api reads
 * the same file when it cannot import ComfyUI with python), else a default. */
function comfyVersion() {
  if (env.STANDIN_COMFY_VERSION) return env.STANDIN_COMFY_VERSION;
  try {
    const m = /__version__\s*=\s*["']([^"']+)["']/.exec(readFileSync(join(COMFY_HOME, "comfyui_version.py"), "utf8"));
    if (m) return m[1];
  } catch {}
  return "0.3.68-standin";
}
const COMFY_VERSION = comfyVersion();

// ComfyUI prints plain text; in the container its lines are interleaved with comfyui-api's
// pino JSON lines, as in the real image.
const comfyLog = (msg) => process.stdout.write(`${msg}\n`);

// ---------------------------------------------------------------- small helpers

function send(res, status, body, type = "application/json") {
  const data = typeof body === "string" || Buffer.isBuffer(body) ? body : JSON.stringify(body);
  res.writeHead(status, { "content-type": type, "content-length": Buffer.byteLength(data) });
  res.end(data);
}

/** JSON body, or undefined when it is not JSON (callers answer 400). */
function readJson(req, limit = 50 * 1024 * 1024) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on("data", (c) => {
      size += c.length;
      if (size > limit) return reject(Object.assign(new Error("body too large"), { status: 413 }));
      chunks.push(c);
    });
    req.on("end", () => {
      const text = Buffer.concat(chunks).toString("utf8");
      if (!text) return resolve({});
      try {
        resolve(JSON.parse(text));
      } catch {
        resolve(undefined);
      }
    });
    req.on("error", reject);
  });
}

const isDir = (p) => {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------- models on disk

// ComfyUI's folder names, the directories each one reads (legacy names share
// a key: clip -> text_encoders, unet -> diffusion_models) and the extensions it lists.
const PT = [".ckpt", ".pt", ".pt2", ".bin", ".pth", ".safetensors", ".pkl", ".sft"];
const FOLDERS = {
  checkpoints: [["checkpoints"], PT],
  configs: [["configs"], [".yaml"]],
  loras: [["loras"], PT],
  vae: [["vae"], PT],
  text_encoders: [["text_encoders", "clip"], PT],
  diffusion_models: [["unet", "diffusion_models"], PT],
  clip_vision: [["clip_vision"], PT],
  style_models: [["style_models"], PT],
  embeddings: [["embeddings"], PT],
  diffusers: [["diffusers"], "folders"],
  vae_approx: [["vae_approx"], PT],
  controlnet: [["controlnet", "t2i_adapter"], PT],
  gligen: [["gligen"], PT],
  upscale_models: [["upscale_models"], PT],
  latent_upscale_models: [["latent_upscale_models"], PT],
  custom_nodes: [[], []], // resolved to $COMFY_HOME/custom_nodes below; [] = every file
  hypernetworks: [["hypernetworks"], PT],
  photomaker: [["photomaker"], PT],
  classifiers: [["classifiers"], []],
  model_patches: [["model_patches"], PT],
  audio_encoders: [["audio_encoders"], PT],
};
const LEGACY = new Set(["clip", "unet", "t2i_adapter"]);

/** Folder names as /models lists them: ComfyUI's own plus any other directory
 * under MODEL_DIR (in real ComfyUI, custom nodes register such folders). */
function folderNames() {
  const extra = safeReaddir(cfg.modelDir).filter(
    (n) => !n.startsWith(".") && !LEGACY.has(n) && !(n in FOLDERS) && isDir(join(cfg.modelDir, n)),
  );
  return [...Object.keys(FOLDERS), ...extra.sort()];
}

function safeReaddir(dir) {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** Files of one folder, recursively, "/"-separated and sorted; null for an unknown folder. */
function listFolder(folder) {
  let dirs, exts;
  if (folder === "custom_nodes") [dirs, exts] = [[cfg.customNodesDir], []];
  else if (folder in FOLDERS) [dirs, exts] = [FOLDERS[folder][0].map((d) => join(cfg.modelDir, d)), FOLDERS[folder][1]];
  else if (!folder.startsWith(".") && !folder.includes("/") && isDir(join(cfg.modelDir, folder)))
    [dirs, exts] = [[join(cfg.modelDir, folder)], PT];
  else return null;
  const out = new Set();
  for (const root of dirs) {
    if (exts === "folders") {
      for (const n of safeReaddir(root)) if (isDir(join(root, n))) out.add(n);
      continue;
    }
    walk(root, (file) => {
      if (exts.length === 0 || exts.includes(extname(file).toLowerCase())) out.add(relative(root, file).split(sep).join("/"));
    });
  }
  return [...out].sort();
}

/** Visit files under `dir`, following symlinks (models are often links), skipping .git. */
function walk(dir, visit, depth = 0) {
  if (depth > 12) return;
  for (const name of safeReaddir(dir)) {
    if (name === ".git") continue;
    const p = join(dir, name);
    let st;
    try {
      st = statSync(p);
    } catch {
      continue;
    } // dangling link
    if (st.isDirectory()) walk(p, visit, depth + 1);
    else if (st.isFile()) visit(p);
  }
}

// ---------------------------------------------------------------- node classes

const SAMPLERS = [
  "euler",
  "euler_cfg_pp",
  "euler_ancestral",
  "euler_ancestral_cfg_pp",
  "heun",
  "heunpp2",
  "dpm_2",
  "dpm_2_ancestral",
  "lms",
  "dpm_fast",
  "dpm_adaptive",
  "dpmpp_2s_ancestral",
  "dpmpp_2s_ancestral_cfg_pp",
  "dpmpp_sde",
  "dpmpp_sde_gpu",
  "dpmpp_2m",
  "dpmpp_2m_cfg_pp",
  "dpmpp_2m_sde",
  "dpmpp_2m_sde_gpu",
  "dpmpp_3m_sde",
  "dpmpp_3m_sde_gpu",
  "ddpm",
  "lcm",
  "ipndm",
  "ipndm_v",
  "deis",
  "res_multistep",
  "res_multistep_cfg_pp",
  "gradient_estimation",
  "er_sde",
  "seeds_2",
  "seeds_3",
  "sa_solver",
  "ddim",
  "uni_pc",
  "uni_pc_bh2",
];
const SCHEDULERS = ["simple", "sgm_uniform", "karras", "exponential", "ddim_uniform", "beta", "normal", "linear_quadratic", "kl_optimal"];
const CLIP_TYPES = [
  "stable_diffusion",
  "stable_cascade",
  "sd3",
  "stable_audio",
  "mochi",
  "ltxv",
  "pixart",
  "cosmos",
  "lumina2",
  "wan",
  "hidream",
  "chroma",
  "ace",
  "omnigen2",
  "qwen_image",
  "hunyuan_image",
];
const DUAL_CLIP_TYPES = ["sdxl", "sd3", "flux", "hunyuan_video", "hidream", "hunyuan_image"];

const INT = (d, min, max, more = {}) => ["INT", { default: d, min, max, ...more }];
const FLOAT = (d, min, max, step, more = {}) => ["FLOAT", { default: d, min, max, step, ...more }];
const SEED = INT(0, 0, 0xffffffffffffffff, { control_after_generate: true });
const DIM = INT(512, 16, 16384, { step: 8 });

/** One node definition in /object_info's shape. outputs: [[TYPE, name], ...]. */
function def(name, category, required, outputs, more = {}) {
  const { optional, hidden, display, output_node = false, module = "nodes" } = more;
  const input = { required };
  if (optional) input.optional = optional;
  if (hidden) input.hidden = hidden;
  const order = { required: Object.keys(required) };
  if (optional) order.optional = Object.keys(optional);
  return {
    input,
    input_order: order,
    output: outputs.map((o) => o[0]),
    output_is_list: outputs.map(() => false),
    output_name: outputs.map((o) => o[1]),
    name,
    display_name: display || name,
    description: "",
    python_module: module,
    category,
    output_node,
  };
}

/** The core classes, built per request so enums list the files present right now. */
function coreNodes() {
  const m = (folder) => [listFolder(folder) || []];
  const images = safeReaddir(cfg.inputDir)
    .filter((f) => isFileSync(join(cfg.inputDir, f)))
    .sort();
  const audios = images.filter((f) => /\.(wav|mp3|flac|ogg|m4a)$/i.test(f));
  const list = [
    def(
      "CheckpointLoaderSimple",
      "loaders",
      { ckpt_name: m("checkpoints") },
      [
        ["MODEL", "MODEL"],
        ["CLIP", "CLIP"],
        ["VAE", "VAE"],
      ],
      { display: "Load Checkpoint" },
    ),
    def(
      "CLIPTextEncode",
      "conditioning",
      { text: ["STRING", { multiline: true, dynamicPrompts: true }], clip: ["CLIP"] },
      [["CONDITIONING", "CONDITIONING"]],
      { display: "CLIP Text Encode (Prompt)" },
    ),
    def(
      "KSampler",
      "sampling",
      {
        model: ["MODEL"],
        seed: SEED,
        steps: INT(20, 1, 10000),
        cfg: FLOAT(8.0, 0.0, 100.0, 0.1, { round: 0.01 }),
        sampler_name: [SAMPLERS],
        scheduler: [SCHEDULERS],
        positive: ["CONDITIONING"],
        negative: ["CONDITIONING"],
        latent_image: ["LATENT"],
        denoise: FLOAT(1.0, 0.0, 1.0, 0.01),
      },
      [["LATENT", "LATENT"]],
    ),
    def("EmptyLatentImage", "latent", { width: DIM, height: DIM, batch_size: INT(1, 1, 4096) }, [["LATENT", "LATENT"]], {
      display: "Empty Latent Image",
    }),
    def("VAEDecode", "latent", { samples: ["LATENT"], vae: ["VAE"] }, [["IMAGE", "IMAGE"]], { display: "VAE Decode" }),
    def("VAEEncode", "latent", { pixels: ["IMAGE"], vae: ["VAE"] }, [["LATENT", "LATENT"]], { display: "VAE Encode" }),
    def("SaveImage", "image", { images: ["IMAGE"], filename_prefix: ["STRING", { default: "ComfyUI" }] }, [], {
      hidden: { prompt: "PROMPT", extra_pnginfo: "EXTRA_PNGINFO" },
      output_node: true,
      display: "Save Image",
    }),
    def("PreviewImage", "image", { images: ["IMAGE"] }, [], {
      hidden: { prompt: "PROMPT", extra_pnginfo: "EXTRA_PNGINFO" },
      output_node: true,
      display: "Preview Image",
    }),
    def(
      "LoadImage",
      "image",
      { image: [images, { image_upload: true }] },
      [
        ["IMAGE", "IMAGE"],
        ["MASK", "MASK"],
      ],
      { display: "Load Image" },
    ),
    // ComfyUI's audio loader (comfy_extras.nodes_audio): InfiniteTalk's workflow starts from it
    def("LoadAudio", "audio", { audio: [audios, { audio_upload: true }] }, [["AUDIO", "AUDIO"]], {
      module: "comfy_extras.nodes_audio",
      display: "Load Audio",
    }),
    def(
      "EmptyImage",
      "image",
      { width: DIM, height: DIM, batch_size: INT(1, 1, 4096), color: INT(0, 0, 0xffffff, { display: "color" }) },
      [["IMAGE", "IMAGE"]],
      { module: "comfy_extras.nodes_images" },
    ),
    def(
      "LoraLoader",
      "loaders",
      {
        model: ["MODEL"],
        clip: ["CLIP"],
        lora_name: m("loras"),
        strength_model: FLOAT(1.0, -100.0, 100.0, 0.01),
        strength_clip: FLOAT(1.0, -100.0, 100.0, 0.01),
      },
      [
        ["MODEL", "MODEL"],
        ["CLIP", "CLIP"],
      ],
      { display: "Load LoRA" },
    ),
    def("LoraLoaderModelOnly", "loaders", { model: ["MODEL"], lora_name: m("loras"), strength_model: FLOAT(1.0, -100.0, 100.0, 0.01) }, [
      ["MODEL", "MODEL"],
    ]),
    def(
      "UNETLoader",
      "advanced/loaders",
      { unet_name: m("diffusion_models"), weight_dtype: [["default", "fp8_e4m3fn", "fp8_e4m3fn_fast", "fp8_e5m2"]] },
      [["MODEL", "MODEL"]],
      { display: "Load Diffusion Model" },
    ),
    def("VAELoader", "loaders", { vae_name: m("vae") }, [["VAE", "VAE"]], { display: "Load VAE" }),
    def("CLIPLoader", "advanced/loaders", { clip_name: m("text_encoders"), type: [CLIP_TYPES] }, [["CLIP", "CLIP"]], {
      optional: { device: [["default", "cpu"], { advanced: true }] },
      display: "Load CLIP",
    }),
    def(
      "DualCLIPLoader",
      "advanced/loaders",
      { clip_name1: m("text_encoders"), clip_name2: m("text_encoders"), type: [DUAL_CLIP_TYPES] },
      [["CLIP", "CLIP"]],
      { optional: { device: [["default", "cpu"], { advanced: true }] } },
    ),
    def("CLIPVisionLoader", "loaders", { clip_name: m("clip_vision") }, [["CLIP_VISION", "CLIP_VISION"]], { display: "Load CLIP Vision" }),
    def("ControlNetLoader", "loaders", { control_net_name: m("controlnet") }, [["CONTROL_NET", "CONTROL_NET"]], {
      display: "Load ControlNet Model",
    }),
    def("UpscaleModelLoader", "loaders", { model_name: m("upscale_models") }, [["UPSCALE_MODEL", "UPSCALE_MODEL"]], {
      display: "Load Upscale Model",
      module: "comfy_extras.nodes_upscale_model",
    }),
  ];
  return Object.fromEntries(list.map((d) => [d.name, d]));
}

const isFileSync = (p) => {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
};

/** Class names a .py file registers with literal keys. */
function pyClassNames(text) {
  const names = new Set();
  const quoted = /["']([^"'\n]+)["']\s*:/g;
  // NODE_CLASS_MAPPINGS = { ... }   and   NODE_CLASS_MAPPINGS.update({ ... })
  const opener = /NODE_CLASS_MAPPINGS\s*(?::[^=\n]*)?(?:=|\.update\()\s*\{/g;
  for (let m = opener.exec(text); m; m = opener.exec(text)) {
    let depth = 1,
      i = m.index + m[0].length;
    const start = i;
    while (i < text.length && depth > 0) {
      if (text[i] === "{") depth++;
      else if (text[i] === "}") depth--;
      i++;
    }
    // only the top level of the dict: drop nested {...} before collecting keys
    let body = text.slice(start, i - 1);
    for (let prev; prev !== body;) {
      prev = body;
      body = body.replace(/\{[^{}]*\}/g, "");
    }
    body = body.replace(/#[^\n]*/g, "");
    for (let k = quoted.exec(body); k; k = quoted.exec(body)) names.add(k[1]);
  }
  for (const k of text.matchAll(/NODE_CLASS_MAPPINGS\s*\[\s*["']([^"'\n]+)["']\s*\]\s*=/g)) names.add(k[1]);
  return names;
}

const skipPack = (name) => name.startsWith(".") || name === "__pycache__" || name.endsWith(".disabled");
/** What ComfyUI tries to load: folders, and single .py files, under custom_nodes (name order). */
const packPaths = () =>
  safeReaddir(cfg.customNodesDir)
    .sort()
    .filter((n) => !skipPack(n) && (isDir(join(cfg.customNodesDir, n)) || n.endsWith(".py")))
    .map((n) => join(cfg.customNodesDir, n));
const packModule = (path) => `custom_nodes.${basename(path).replace(/\.py$/, "")}`;
const packDef = (path, name, partial = {}) => ({
  ...def(name, basename(path).replace(/\.py$/, ""), {}, [], { module: packModule(path) }),
  ...partial,
  name,
});

/** The regex way, without python: literal NODE_CLASS_MAPPINGS keys in a pack's .py files. */
function literalNodes() {
  const out = {};
  for (const path of packPaths()) {
    const add = (n) => (out[n] = packDef(path, n));
    if (!isDir(path)) {
      for (const n of pyClassNames(readText(path))) add(n);
      continue;
    }
    let files = 0;
    walk(path, (file) => {
      if (file.endsWith(".py") && files++ < 500) for (const n of pyClassNames(readText(file))) add(n);
    });
  }
  return out;
}

/** Classes that packs declare in flow-standin-nodes.json (with python or without). */
function manifestNodes() {
  const out = {};
  for (const path of packPaths()) {
    const manifest = join(path, "flow-standin-nodes.json");
    if (!existsSync(manifest)) continue;
    try {
      const listed = JSON.parse(readText(manifest));
      if (Array.isArray(listed)) for (const n of listed) out[String(n)] = packDef(path, String(n));
      else
        for (const [n, partial] of Object.entries(listed)) out[n] = packDef(path, n, partial && typeof partial === "object" ? partial : {});
    } catch (err) {
      comfyLog(`Cannot import ${path} module for custom nodes: ${err.message}`);
    }
  }
  return out;
}

function readText(file) {
  try {
    return readFileSync(file, "utf8").slice(0, 2_000_000);
  } catch {
    return "";
  }
}

// Packs are loaded once, before the server listens, as ComfyUI does: a pack installed later
// shows only after a restart. With python3, ./introspect.py imports them for real (stubs for
// what ComfyUI's image provides) and stays up to answer each /object_info, calling INPUT_TYPES()
// again as ComfyUI does, so model lists in pack nodes follow the disk. STANDIN_PYTHON names the
// interpreter (default python3; "none" for the regex way).
const introspectScript = join(dirname(fileURLToPath(import.meta.url)), "introspect.py");
const packs = { declared: {}, child: null, pending: [], last: {} };

function pythonCommand() {
  const py = env.STANDIN_PYTHON ?? "python3";
  if (!py || py === "none" || !existsSync(introspectScript)) return null;
  return spawnSync(py, ["--version"], { stdio: "ignore" }).status === 0 ? py : null;
}

/** Starts introspect.py --serve; resolves with its first answer ({packs, nodes}) once every pack is loaded. */
function startIntrospect(py, timeoutMs) {
  const child = spawn(py, [introspectScript, "--serve"], {
    env: { ...env, COMFY_HOME, MODEL_DIR: cfg.modelDir, INPUT_DIR: cfg.inputDir, OUTPUT_DIR: cfg.outputDir },
    // its log lines (ComfyUI's and the packs') go where ComfyUI's go: our stdout
    stdio: ["pipe", "pipe", 1],
  });
  packs.child = child;
  let buf = "";
  child.stdout.setEncoding("utf8");
  child.stdout.on("data", (d) => {
    buf += d;
    for (let i = buf.indexOf("\n"); i >= 0; i = buf.indexOf("\n")) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      packs.pending.shift()?.(line);
    }
  });
  child.stdin.on("error", () => {});
  const gone = (why) => {
    if (packs.child !== child) return;
    packs.child = null;
    comfyLog(`(stand-in) introspect.py ${why}; /object_info keeps the classes it had`);
    for (const r of packs.pending.splice(0)) r(null);
  };
  child.on("error", (err) => gone(`failed: ${err.message}`));
  child.on("exit", (code, sig) => gone(`exited (${sig || code})`));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`no answer in ${timeoutMs / 1000}s`));
    }, timeoutMs);
    packs.pending.push((line) => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(line));
      } catch {
        reject(new Error(line === null ? "it exited while loading" : `not JSON: ${line.slice(0, 200)}`));
      }
    });
  });
}

/** The packs' classes now: asked of introspect.py while it runs, else what was loaded at start-up. */
async function packNodes() {
  if (!packs.child) return packs.last;
  const line = await new Promise((resolve) => {
    const timer = setTimeout(() => resolve(null), 30_000);
    packs.pending.push((l) => {
      clearTimeout(timer);
      resolve(l);
    });
    packs.child.stdin.write("object_info\n");
  });
  try {
    if (line) packs.last = JSON.parse(line).nodes;
  } catch {}
  return packs.last;
}

/** Load every pack once; returns ComfyUI's import report [{path, ok, seconds}]. */
async function loadPacks() {
  packs.declared = manifestNodes();
  const py = pythonCommand();
  if (py) {
    try {
      const first = await startIntrospect(py, Number(env.STANDIN_LOAD_TIMEOUT_MS || 300_000));
      packs.last = first.nodes;
      return first.packs;
    } catch (err) {
      comfyLog(`(stand-in) loading packs with ${py} failed (${err.message}); reading NODE_CLASS_MAPPINGS literally`);
    }
  }
  packs.last = literalNodes();
  return packPaths().map((path) => ({ path, ok: true, seconds: 0 }));
}

/** ComfyUI's summary after loading custom nodes (only when there is a pack, as there). */
function importTimes(report) {
  if (!report.length) return;
  const rows = [...report].sort((a, b) => a.seconds - b.seconds || (a.path < b.path ? -1 : 1));
  const line = (r) => `${r.seconds.toFixed(1).padStart(6)} seconds${r.ok ? "" : " (IMPORT FAILED)"}: ${r.path}`;
  comfyLog(`\nImport times for custom nodes:\n${rows.map(line).join("\n")}\n`);
}

const objectInfo = async () => ({ ...(await packNodes()), ...packs.declared, ...coreNodes() });

// ---------------------------------------------------------------- websocket (RFC 6455 by hand)

const sockets = new Map(); // client id -> net.Socket

function wsFrame(opcode, payload) {
  const len = payload.length;
  let head;
  if (len < 126) head = Buffer.from([0x80 | opcode, len]);
  else if (len < 65536) {
    head = Buffer.alloc(4);
    head[0] = 0x80 | opcode;
    head[1] = 126;
    head.writeUInt16BE(len, 2);
  } else {
    head = Buffer.alloc(10);
    head[0] = 0x80 | opcode;
    head[1] = 127;
    head.writeBigUInt64BE(BigInt(len), 2);
  }
  return Buffer.concat([head, payload]);
}

function wsUpgrade(req, socket) {
  const url = new URL(req.url, "http://x");
  const key = req.headers["sec-websocket-key"];
  if (url.pathname !== "/ws") return socket.end("HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n");
  if (!key || String(req.headers.upgrade).toLowerCase() !== "websocket")
    return socket.end("HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n");
  const accept = createHash("sha1")
    .update(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")
    .digest("base64");
  socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
  // ComfyUI keeps the client's id when it gives one, else makes one up
  const sid = url.searchParams.get("clientId") || randomUUID().replace(/-/g, "");
  sockets.set(sid, socket); // a reconnect with the same id takes over its messages
  socket.setNoDelay(true);
  const forget = () => {
    if (sockets.get(sid) === socket) sockets.delete(sid);
  };
  socket.on("close", forget);
  socket.on("error", forget);
  let buf = Buffer.alloc(0);
  socket.on("data", (chunk) => {
    buf = Buffer.concat([buf, chunk]);
    for (;;) {
      if (buf.length < 2) return;
      const opcode = buf[0] & 0x0f,
        masked = buf[1] & 0x80;
      let len = buf[1] & 0x7f,
        off = 2;
      if (len === 126) {
        if (buf.length < 4) return;
        len = buf.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (buf.length < 10) return;
        len = Number(buf.readBigUInt64BE(2));
        off = 10;
      }
      const maskOff = off;
      if (masked) off += 4;
      if (buf.length < off + len) return;
      const payload = Buffer.from(buf.subarray(off, off + len));
      if (masked) for (let i = 0; i < len; i++) payload[i] ^= buf[maskOff + (i % 4)];
      buf = buf.subarray(off + len);
      if (opcode === 0x8) {
        socket.end(wsFrame(0x8, payload.subarray(0, 2)));
        forget();
        return;
      }
      if (opcode === 0x9) socket.write(wsFrame(0xa, payload));
      // text from clients (feature flags) is accepted and ignored
    }
  });
  wsSend(sid, "status", statusData(sid));
}

/** Send to one client id, or to every client when sid is null (as ComfyUI does). */
function wsSend(sid, type, data) {
  const frame = wsFrame(0x1, Buffer.from(JSON.stringify({ type, data })));
  const targets = sid == null ? [...sockets.values()] : sockets.has(sid) ? [sockets.get(sid)] : [];
  for (const s of targets) if (!s.destroyed) s.write(frame);
}

// ---------------------------------------------------------------- the prompt queue

const queue = []; // pending: {number, id, prompt, extra, outputs, clientId}
let running = null; // the prompt being executed, plus {interrupted}
let counter = 0;
const history = new Map();

const queueRemaining = () => queue.length + (running ? 1 : 0);
const statusData = (sid) => ({ status: { exec_info: { queue_remaining: queueRemaining() } }, ...(sid ? { sid } : {}) });
const broadcastStatus = () => wsSend(null, "status", statusData());
const queueItem = (p) => [p.number, p.id, p.prompt, { client_id: p.clientId }, p.outputs];

/** Validate like ComfyUI: known classes, at least one output node, enum values present. */
async function validatePrompt(prompt) {
  const info = await objectInfo();
  const error = (type, message, details = "", node_errors = {}) => ({ error: { type, message, details, extra_info: {} }, node_errors });
  if (!prompt || typeof prompt !== "object" || Array.isArray(prompt)) return error("invalid_prompt", "Prompt is not a dict");
  const outputs = [];
  for (const [id, node] of Object.entries(prompt)) {
    const cls = node && node.class_type;
    if (!cls) return error("invalid_prompt", `Cannot execute because a node is missing the class_type property.`, `Node ID '#${id}'`);
    if (!info[cls]) return error("invalid_prompt", `Cannot execute because node ${cls} does not exist.`, `Node ID '#${id}'`);
    if (info[cls].output_node) outputs.push(id);
  }
  if (!outputs.length) return error("prompt_no_outputs", "Prompt has no outputs");
  const nodeErrors = {};
  for (const [id, node] of Object.entries(prompt)) {
    const spec = { ...info[node.class_type].input.required, ...info[node.class_type].input.optional };
    for (const [name, value] of Object.entries(node.inputs || {})) {
      const s = spec[name];
      if (!s || !Array.isArray(s[0]) || Array.isArray(value)) continue; // not an enum, or a link
      if (!s[0].includes(value)) {
        nodeErrors[id] ??= { errors: [], dependent_outputs: outputs, class_type: node.class_type };
        nodeErrors[id].errors.push({
          type: "value_not_in_list",
          message: "Value not in list",
          details: `${name}: '${value}' not in ${JSON.stringify(s[0])}`,
          extra_info: { input_name: name, input_config: s, received_value: value },
        });
      }
    }
  }
  if (Object.keys(nodeErrors).length) return error("prompt_outputs_failed_validation", "Prompt outputs failed validation", "", nodeErrors);
  return { outputs };
}

async function runQueue() {
  if (running) return;
  while (queue.length) {
    running = { ...queue.shift(), interrupted: false };
    broadcastStatus();
    await execute(running).catch((err) => comfyLog(`!!! Exception during processing !!! ${err.stack || err}`));
    running = null;
    broadcastStatus();
  }
}

async function execute(p) {
  const started = Date.now();
  const to = p.clientId ?? null;
  const ids = Object.keys(p.prompt);
  const executed = [];
  const outputs = {};
  const messages = [];
  const note = (type, data) => {
    messages.push([type, { ...data, timestamp: Date.now() }]);
    wsSend(to, type, { ...data, timestamp: Date.now() });
  };
  comfyLog("got prompt");
  note("execution_start", { prompt_id: p.id });
  note("execution_cached", { nodes: [], prompt_id: p.id });
  let end = null;
  for (const [i, id] of ids.entries()) {
    const node = p.prompt[id];
    await sleep(cfg.promptMs / ids.length);
    if (p.interrupted) {
      end = ["execution_interrupted", { prompt_id: p.id, node_id: id, node_type: node.class_type, executed: [...executed] }];
      break;
    }
    wsSend(to, "executing", { node: id, display_node: id, prompt_id: p.id });
    if (cfg.failPrompts && i === ids.length - 1) {
      end = [
        "execution_error",
        {
          prompt_id: p.id,
          node_id: id,
          node_type: node.class_type,
          executed: [...executed],
          exception_message: "FAIL_PROMPTS=1 (stand-in)",
          exception_type: "RuntimeError",
          traceback: [],
          current_inputs: {},
          current_outputs: {},
        },
      ];
      break;
    }
    const output = runNode(node, p.prompt);
    if (output) {
      outputs[id] = output;
      wsSend(to, "executed", { node: id, display_node: id, output, prompt_id: p.id });
    }
    executed.push(id);
  }
  if (end) {
    note(...end);
    comfyLog(
      end[0] === "execution_interrupted" ? "Processing interrupted" : `!!! Exception during processing !!! ${end[1].exception_message}`,
    );
  } else {
    note("execution_success", { prompt_id: p.id });
  }
  // history is written before "executing null", as ComfyUI's worker does
  history.set(p.id, {
    prompt: queueItem(p),
    outputs,
    status: { status_str: end ? "error" : "success", completed: !end, messages },
    meta: Object.fromEntries(
      Object.keys(outputs).map((id) => [id, { node_id: id, display_node: id, parent_node: null, real_node_id: id }]),
    ),
  });
  wsSend(to, "executing", { node: null, prompt_id: p.id });
  comfyLog(`Prompt executed in ${((Date.now() - started) / 1000).toFixed(2)} seconds`);
}

/** Output nodes write real PNGs; everything else is a no-op. */
function runNode(node, prompt) {
  const inputs = node.inputs || {};
  if (node.class_type !== "SaveImage" && node.class_type !== "PreviewImage") return null;
  const preview = node.class_type === "PreviewImage";
  const prefix = preview ? `ComfyUI_temp_${randomUUID().slice(0, 5)}` : String(inputs.filename_prefix ?? "ComfyUI");
  const root = preview ? cfg.tempDir : cfg.outputDir;
  const subfolder = dirname(prefix) === "." ? "" : dirname(prefix);
  const base = basename(prefix);
  const dir = join(root, subfolder);
  mkdirSync(dir, { recursive: true });
  // ComfyUI counts on from the highest counter already on disk for this prefix
  const taken = safeReaddir(dir)
    .map((f) => f.startsWith(`${base}_`) && /^(\d{5})_\.png$/.exec(f.slice(base.length + 1)))
    .filter(Boolean)
    .map((m) => Number(m[1]));
  const n = (taken.length ? Math.max(...taken) : 0) + 1;
  const filename = `${base}_${String(n).padStart(5, "0")}_.png`;
  const src = upstreamSize(prompt, inputs.images);
  const size = (v) => (Number.isInteger(v) && v > 0 ? Math.min(v, 2048) : 64);
  writeFileSync(join(dir, filename), png(size(src.width), size(src.height), [0x40, 0x80, 0xc0]));
  return { images: [{ filename, subfolder, type: preview ? "temp" : "output" }] };
}

/** The first literal width/height found up the links (EmptyLatentImage, EmptyImage...), so the
 * image has the size the workflow asked for; {} when there is none (64x64). */
function upstreamSize(prompt, link, seen = new Set()) {
  if (!Array.isArray(link) || seen.has(link[0]) || !prompt[link[0]]) return {};
  seen.add(link[0]);
  const inputs = prompt[link[0]].inputs || {};
  if (Number.isInteger(inputs.width) && Number.isInteger(inputs.height)) return inputs;
  for (const v of Object.values(inputs)) {
    const found = upstreamSize(prompt, v, seen);
    if (found.width) return found;
  }
  return {};
}

// A real, small PNG: one solid colour, 8-bit RGB.
const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
function png(width, height, [r, g, b]) {
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, "ascii"), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(td));
    return Buffer.concat([len, td, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8;
  ihdr[9] = 2; // 8 bits, truecolour; compression, filter, interlace 0
  const row = Buffer.alloc(1 + width * 3);
  for (let x = 0; x < width; x++) row.set([r, g, b], 1 + x * 3);
  const raw = Buffer.concat(Array.from({ length: height }, () => row));
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("IDAT", deflateSync(raw)),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

// ---------------------------------------------------------------- ComfyUI side (8188)

async function comfyRoutes(req, res) {
  const url = new URL(req.url, "http://x");
  const path = url.pathname;
  const route = `${req.method} ${path}`;
  if (route === "GET /")
    return send(
      res,
      200,
      `<!DOCTYPE html><html><head><title>ComfyUI</title></head><body><div id="vue-app"></div></body></html>`,
      "text/html; charset=utf-8",
    );
  if (route === "GET /ws") return send(res, 400, "Expected a websocket upgrade", "text/plain");
  if (route === "GET /system_stats") {
    return send(res, 200, {
      system: {
        os: "posix",
        ram_total: os.totalmem(),
        ram_free: os.freemem(),
        comfyui_version: COMFY_VERSION,
        required_frontend_version: "1.28.8",
        python_version: "3.12.3 (stand-in)",
        pytorch_version: "2.8.0+cu128",
        embedded_python: false,
        argv: ["main.py", ...process.argv.slice(2)],
      },
      devices: [{ name: "cpu", type: "cpu", index: null, vram_total: 0, vram_free: 0, torch_vram_total: 0, torch_vram_free: 0 }],
    });
  }
  if (route === "GET /object_info") return send(res, 200, await objectInfo());
  if (req.method === "GET" && path.startsWith("/object_info/")) {
    const name = decodeURIComponent(path.slice("/object_info/".length));
    const info = await objectInfo();
    return send(res, 200, info[name] ? { [name]: info[name] } : {});
  }
  if (route === "GET /models") return send(res, 200, folderNames());
  if (req.method === "GET" && path.startsWith("/models/")) {
    const files = listFolder(decodeURIComponent(path.slice("/models/".length)));
    return files ? send(res, 200, files) : send(res, 404, "404: Not Found", "text/plain");
  }
  // ComfyUI-Manager's routes exist only while its folder does (a mount over custom_nodes hides it)
  if (route === "GET /manager/version" || route === "GET /v2/manager/version") {
    return isDir(join(cfg.customNodesDir, "ComfyUI-Manager"))
      ? send(res, 200, "V3.37 (stand-in)", "text/plain")
      : send(res, 404, "404: Not Found", "text/plain");
  }
  if (route === "GET /embeddings")
    return send(
      res,
      200,
      (listFolder("embeddings") || []).map((f) => f.replace(/\.[^.]+$/, "")),
    );
  if (route === "POST /prompt") {
    const body = await readJson(req);
    if (!body || typeof body !== "object")
      return send(res, 400, { error: { type: "invalid_prompt", message: "invalid json", details: "", extra_info: {} }, node_errors: {} });
    const checked = await validatePrompt(body.prompt);
    if (checked.error) {
      comfyLog(`invalid prompt: ${checked.error.message}`);
      return send(res, 400, checked);
    }
    const item = {
      number: counter++,
      id: body.prompt_id || randomUUID(),
      prompt: body.prompt,
      clientId: body.client_id,
      outputs: checked.outputs,
    };
    queue.push(item);
    broadcastStatus();
    setImmediate(runQueue);
    return send(res, 200, { prompt_id: item.id, number: item.number, node_errors: {} });
  }
  if (route === "GET /prompt") return send(res, 200, { exec_info: { queue_remaining: queueRemaining() } });
  if (route === "GET /queue")
    return send(res, 200, { queue_running: running ? [queueItem(running)] : [], queue_pending: queue.map(queueItem) });
  if (route === "POST /queue") {
    const body = (await readJson(req)) || {};
    if (body.clear) queue.length = 0;
    if (Array.isArray(body.delete))
      for (const id of body.delete) {
        const i = queue.findIndex((p) => p.id === id);
        if (i >= 0) queue.splice(i, 1);
      }
    broadcastStatus();
    return send(res, 200, "", "text/plain");
  }
  if (route === "POST /interrupt") {
    const body = (await readJson(req)) || {};
    // with a prompt_id only that prompt is interrupted; without one, whatever runs
    if (running && (!body.prompt_id || body.prompt_id === running.id)) running.interrupted = true;
    return send(res, 200, "", "text/plain");
  }
  if (route === "GET /history") return send(res, 200, Object.fromEntries(history));
  if (req.method === "GET" && path.startsWith("/history/")) {
    const id = decodeURIComponent(path.slice("/history/".length));
    return send(res, 200, history.has(id) ? { [id]: history.get(id) } : {});
  }
  if (route === "POST /history") {
    const body = (await readJson(req)) || {};
    if (body.clear) history.clear();
    if (Array.isArray(body.delete)) body.delete.forEach((id) => history.delete(id));
    return send(res, 200, "", "text/plain");
  }
  if (route === "GET /view") {
    const root = { output: cfg.outputDir, input: cfg.inputDir, temp: cfg.tempDir }[url.searchParams.get("type") || "output"];
    const name = url.searchParams.get("filename") || "";
    const sub = url.searchParams.get("subfolder") || "";
    if (!root || !name || name.includes("..") || sub.includes("..")) return send(res, 400, "bad request", "text/plain");
    try {
      return send(res, 200, readFileSync(join(root, sub, name)), "image/png");
    } catch {
      return send(res, 404, "404: Not Found", "text/plain");
    }
  }
  return send(res, 404, "404: Not Found", "text/plain");
}

// ---------------------------------------------------------------- start-up

const servers = [];
function serve(handler, port, onUpgrade) {
  const server = http.createServer((req, res) => {
    handler(req, res).catch((err) => {
      comfyLog(`${req.method} ${req.url}: ${err.stack || err}`);
      if (!res.headersSent) send(res, err.status || 500, { error: String(err.message || err) });
      else res.destroy();
    });
  });
  if (onUpgrade) server.on("upgrade", onUpgrade);
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, cfg.host, () => resolve(server));
  });
}

async function main() {
  comfyLog(`Stand-in ComfyUI (node ${process.version}); COMFY_HOME=${COMFY_HOME} MODEL_DIR=${cfg.modelDir}`);
  if (env.FAIL_STARTUP === "1") {
    comfyLog("FAIL_STARTUP=1: simulating a start-up failure\nTraceback (most recent call last):\nRuntimeError: stand-in start-up failure");
    process.exit(1);
  }
  for (const d of [cfg.outputDir, cfg.inputDir]) mkdirSync(d, { recursive: true });
  if (cfg.startupDelayMs) await sleep(cfg.startupDelayMs);
  comfyLog(`ComfyUI version: ${COMFY_VERSION}`);
  importTimes(await loadPacks());
  servers.push(await serve(comfyRoutes, cfg.comfyPort, wsUpgrade));
  comfyLog("Starting server\n");
  comfyLog(`To see the GUI go to: http://${cfg.host}:${cfg.comfyPort}`);
}

// comfyui-api stops its child with SIGINT; docker and tests send SIGTERM.
for (const sig of ["SIGTERM", "SIGINT"]) {
  process.on(sig, () => {
    comfyLog(`${sig}: shutting down`);
    for (const s of sockets.values()) s.destroy();
    for (const s of servers) s.close();
    packs.child?.kill("SIGTERM");
    process.exit(0);
  });
}

main().catch((err) => {
  comfyLog(`ComfyUI failed to start: ${err.stack || err}`);
  process.exit(1);
});

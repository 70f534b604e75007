#!/usr/bin/env node
// The lab's stand-in for ComfyUI (port 8188), run by the REAL comfyui-api in the lab image:
// comfyui-api 1.18.0 starts it through its `CMD` environment variable, exactly as it starts
// `comfy launch` in the real image, then talks to it over HTTP and the websocket. One
// dependency-free Node script (node: built-ins only).
//
// It follows ../../../../shared/comfyui-api-contract.md and, unlike a mock, reads the host's
// real state: model files on disk appear in /models/<folder> and in /object_info enums on every
// request, node packs under custom_nodes appear in /object_info (with their python_module) as
// loaded at start-up, prompts write real files to OUTPUT_DIR.
//
// Core node classes are a real ComfyUI's: its /object_info as committed in this repository
// (test/fixtures/data/comfyui/object_info.json, carried into the image as core_object_info.json
// beside this script; STANDIN_CORE_OBJECT_INFO names another), the classes that are not custom
// nodes', with every model-file combo of a core loader and the media combos of the input loaders
// listing the disk as it is at each request. A prompt is validated as ComfyUI validates it (known
// classes, an output node, then from each output node: required inputs present, links resolved,
// combo values in their lists) and its output nodes leave small real files with the history
// entries ComfyUI's nodes give: SaveImage / PreviewImage a PNG (`images`), SaveVideo an mp4,
// SaveAudio a FLAC (`audio`), VideoHelperSuite's VHS_VideoCombine a video (`gifs`).
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
import { basename, dirname, extname, isAbsolute, join, relative, sep } from "node:path";
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

/** One node definition in /object_info's shape (packs' classes declared without python). outputs: [[TYPE, name], ...]. */
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

// The core classes are a real ComfyUI's own: its /object_info as committed in the repository
// (test/fixtures/data/comfyui/object_info.json; the image carries it beside main.mjs), every class
// whose python_module is not a custom node's. Loaded once at start-up; only what follows the disk
// is rewritten per request, below.
const here = dirname(fileURLToPath(import.meta.url));
const CORE_INFO_FILES = [
  env.STANDIN_CORE_OBJECT_INFO,
  join(here, "core_object_info.json"),
  join(here, "../../fixtures/data/comfyui/object_info.json"),
].filter(Boolean);
let CORE = {};

function loadCore() {
  const file = CORE_INFO_FILES.find((f) => existsSync(f));
  if (!file) throw new Error(`no core object_info (looked for ${CORE_INFO_FILES.join(", ")})`);
  const all = JSON.parse(readFileSync(file, "utf8"));
  CORE = Object.fromEntries(Object.entries(all).filter(([, d]) => d && !String(d.python_module ?? "").startsWith("custom_nodes")));
}

// Core loader inputs and the model folder each lists (ComfyUI's nodes.py and comfy_extras):
// their combos hold the files on disk now, whatever the fixture's machine had.
const MODEL_INPUTS = {
  CheckpointLoader: { config_name: "configs", ckpt_name: "checkpoints" },
  CheckpointLoaderSimple: { ckpt_name: "checkpoints" },
  unCLIPCheckpointLoader: { ckpt_name: "checkpoints" },
  ImageOnlyCheckpointLoader: { ckpt_name: "checkpoints" },
  DiffusersLoader: { model_path: "diffusers" },
  LoraLoader: { lora_name: "loras" },
  LoraLoaderModelOnly: { lora_name: "loras" },
  CreateHookLora: { lora_name: "loras" },
  CreateHookLoraModelOnly: { lora_name: "loras" },
  CreateHookModelAsLora: { ckpt_name: "checkpoints" },
  CreateHookModelAsLoraModelOnly: { ckpt_name: "checkpoints" },
  ControlNetLoader: { control_net_name: "controlnet" },
  DiffControlNetLoader: { control_net_name: "controlnet" },
  UNETLoader: { unet_name: "diffusion_models" },
  CLIPLoader: { clip_name: "text_encoders" },
  DualCLIPLoader: { clip_name1: "text_encoders", clip_name2: "text_encoders" },
  TripleCLIPLoader: { clip_name1: "text_encoders", clip_name2: "text_encoders", clip_name3: "text_encoders" },
  QuadrupleCLIPLoader: {
    clip_name1: "text_encoders",
    clip_name2: "text_encoders",
    clip_name3: "text_encoders",
    clip_name4: "text_encoders",
  },
  CLIPVisionLoader: { clip_name: "clip_vision" },
  StyleModelLoader: { style_model_name: "style_models" },
  GLIGENLoader: { gligen_name: "gligen" },
  HypernetworkLoader: { hypernetwork_name: "hypernetworks" },
  UpscaleModelLoader: { model_name: "upscale_models" },
  PhotoMakerLoader: { photomaker_model_name: "photomaker" },
  ModelPatchLoader: { name: "model_patches" },
  AudioEncoderLoader: { audio_encoder_name: "audio_encoders" },
};

// Media by extension, as ComfyUI sorts the input folder by content type (mimetypes).
const MEDIA = {
  image: [".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff"],
  audio: [".wav", ".mp3", ".flac", ".ogg", ".m4a", ".aac", ".opus"],
  video: [".mp4", ".webm", ".mkv", ".mov", ".avi", ".m4v"],
};
// Loaders of the input folder: their combos list its media of these kinds, and ComfyUI checks
// them with VALIDATE_INPUTS (the file exists) instead of the list, so the absolute path
// comfyui-api writes for an uploaded or base64 input passes.
const MEDIA_INPUTS = {
  LoadImage: { image: ["image"] },
  LoadImageMask: { image: ["image"] },
  LoadAudio: { audio: ["audio", "video"] },
  LoadVideo: { file: ["video"] },
};

/** A combo's values: `[[...values], opts]` (V1) or `["COMBO", {options}]` (V3); null for other inputs. */
function comboValues(spec) {
  if (!Array.isArray(spec)) return null;
  if (Array.isArray(spec[0])) return spec[0];
  if (spec[0] === "COMBO" && Array.isArray(spec[1]?.options)) return spec[1].options;
  return null;
}
const withValues = (spec, values) => (Array.isArray(spec[0]) ? [values, ...spec.slice(1)] : ["COMBO", { ...spec[1], options: values }]);

/** The VAE loader's list: the vae folder, the tiny autoencoders whose two halves are in vae_approx, pixel_space. */
function vaeList() {
  const approx = listFolder("vae_approx") || [];
  const both = (n) => approx.some((f) => f.startsWith(`${n}_encoder.`)) && approx.some((f) => f.startsWith(`${n}_decoder.`));
  return [...(listFolder("vae") || []), ...["taesd", "taesdxl", "taesd3", "taef1"].filter(both), "pixel_space"];
}

/** The input folder's files (top level, as ComfyUI lists it) of these kinds. */
function inputMedia(kinds) {
  const exts = kinds.flatMap((k) => MEDIA[k]);
  return safeReaddir(cfg.inputDir)
    .filter((f) => exts.includes(extname(f).toLowerCase()) && isFileSync(join(cfg.inputDir, f)))
    .sort();
}

/** The core classes now: the fixture's definitions, the disk's files in every model and media combo. */
function coreNodes() {
  const out = { ...CORE };
  const patch = (cls, inputs) => {
    const d = out[cls];
    if (!d) return;
    const input = { ...d.input };
    for (const section of ["required", "optional"]) {
      for (const [name, values] of Object.entries(inputs)) {
        const spec = input[section]?.[name];
        if (comboValues(spec)) input[section] = { ...input[section], [name]: withValues(spec, values()) };
      }
    }
    out[cls] = { ...d, input };
  };
  for (const [cls, inputs] of Object.entries(MODEL_INPUTS)) {
    patch(cls, Object.fromEntries(Object.entries(inputs).map(([name, folder]) => [name, () => listFolder(folder) || []])));
  }
  patch("VAELoader", { vae_name: vaeList });
  for (const [cls, inputs] of Object.entries(MEDIA_INPUTS)) {
    patch(cls, Object.fromEntries(Object.entries(inputs).map(([name, kinds]) => [name, () => inputMedia(kinds)])));
  }
  return out;
}

/** ComfyUI's exists_annotated_filepath: "name [input|output|temp]", relative to that folder, or an absolute path. */
function mediaExists(value) {
  if (typeof value !== "string" || !value) return false;
  const m = /^(.*) \[(input|output|temp)\]$/.exec(value);
  const [name, root] = m ? [m[1], { input: cfg.inputDir, output: cfg.outputDir, temp: cfg.tempDir }[m[2]]] : [value, cfg.inputDir];
  return isFileSync(isAbsolute(name) ? name : join(root, name));
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

/**
 * Validate like ComfyUI's validate_prompt: every class known, at least one output node, then from
 * each output node up its links: required inputs present, links to nodes that exist, combo values
 * in their list (media loaders: the file exists). The outputs whose nodes all pass are run; when
 * none does, the prompt is refused with every node's errors.
 */
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
  const checked = new Map(); // node id -> valid
  const check = (id, output) => {
    if (checked.has(id)) return checked.get(id);
    checked.set(id, true); // a cycle is ComfyUI's executor's problem, not validation's
    const node = prompt[id];
    const d = info[node.class_type];
    const inputs = node.inputs || {};
    const errors = [];
    let linkedOk = true;
    const add = (type, message, details, extra) => errors.push({ type, message, details, extra_info: extra });
    for (const section of ["required", "optional"]) {
      for (const [name, spec] of Object.entries(d.input?.[section] || {})) {
        if (!Object.hasOwn(inputs, name)) {
          if (section === "required") add("required_input_missing", "Required input is missing", name, { input_name: name });
          continue;
        }
        const value = inputs[name];
        if (Array.isArray(value)) {
          if (value.length !== 2 || !Object.hasOwn(prompt, String(value[0]))) {
            add("bad_linked_input", "Bad linked input, must be a length-2 list of [string, int]", name, {
              input_name: name,
              received_value: value,
            });
          } else if (!check(String(value[0]), output)) linkedOk = false;
          continue;
        }
        if (MEDIA_INPUTS[node.class_type]?.[name]) {
          if (!mediaExists(value))
            add("custom_validation_failed", "Custom validation failed for node", `${name} - Invalid file: ${value}`, { input_name: name });
          continue;
        }
        const values = comboValues(spec);
        if (values && !values.includes(value)) {
          add("value_not_in_list", "Value not in list", `${name}: '${value}' not in ${JSON.stringify(values)}`, {
            input_name: name,
            input_config: spec,
            received_value: value,
          });
        }
      }
    }
    if (errors.length) {
      nodeErrors[id] ??= { errors, dependent_outputs: [], class_type: node.class_type };
    }
    if (nodeErrors[id] && !nodeErrors[id].dependent_outputs.includes(output)) nodeErrors[id].dependent_outputs.push(output);
    const ok = !errors.length && linkedOk;
    checked.set(id, ok);
    return ok;
  };
  const good = outputs.filter((id) => {
    checked.clear(); // each output walks its own graph, so every failing node names it
    return check(id, id);
  });
  if (!good.length) return error("prompt_outputs_failed_validation", "Prompt outputs failed validation", "", nodeErrors);
  return { outputs: good, nodeErrors };
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
    // only the outputs that passed validation run (the rest of the graph computes nothing here)
    const output = p.outputs.includes(id) ? runNode(node, p.prompt) : null;
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

/**
 * What an output node leaves: a small real file where the node would write it, and the entry its
 * `ui` output puts in the history (which comfyui-api reads: every entry with a `filename`, from
 * the top of OUTPUT_DIR). Other nodes compute nothing.
 */
function runNode(node, prompt) {
  const inputs = node.inputs || {};
  const prefix = String(inputs.filename_prefix ?? "ComfyUI");
  switch (node.class_type) {
    case "SaveImage":
    case "PreviewImage": {
      const preview = node.class_type === "PreviewImage";
      const at = saveTarget(preview ? `ComfyUI_temp_${randomUUID().slice(0, 5)}` : prefix, preview ? cfg.tempDir : cfg.outputDir);
      const filename = `${at.base}_${String(comfyCounter(at)).padStart(5, "0")}_.png`;
      const src = upstreamSize(prompt, inputs.images);
      const size = (v) => (Number.isInteger(v) && v > 0 ? Math.min(v, 2048) : 64);
      writeFileSync(join(at.dir, filename), png(size(src.width), size(src.height), [0x40, 0x80, 0xc0]));
      return { images: [{ filename, subfolder: at.subfolder, type: preview ? "temp" : "output" }] };
    }
    // comfy_extras.nodes_video: an mp4 shown as an animated image
    case "SaveVideo": {
      const at = saveTarget(String(inputs.filename_prefix ?? "video/ComfyUI"), cfg.outputDir);
      const filename = `${at.base}_${String(comfyCounter(at)).padStart(5, "0")}_.mp4`;
      writeFileSync(join(at.dir, filename), mediaBytes("mp4"));
      return { images: [{ filename, subfolder: at.subfolder, type: "output" }], animated: [true] };
    }
    case "SaveAudio":
    case "SaveAudioMP3":
    case "SaveAudioOpus": {
      const ext = { SaveAudio: "flac", SaveAudioMP3: "mp3", SaveAudioOpus: "opus" }[node.class_type];
      const at = saveTarget(String(inputs.filename_prefix ?? "audio/ComfyUI"), cfg.outputDir);
      const filename = `${at.base}_${String(comfyCounter(at)).padStart(5, "0")}_.${ext}`;
      writeFileSync(join(at.dir, filename), mediaBytes(ext));
      return { audio: [{ filename, subfolder: at.subfolder, type: "output" }] };
    }
    // VideoHelperSuite's Video Combine: <prefix>_00001.<ext> in output (or temp when save_output is
    // false), listed under `gifs` with its format and frame rate
    case "VHS_VideoCombine": {
      const format = String(inputs.format ?? "image/gif");
      const last = format.split(/[/-]/).at(-1).toLowerCase();
      const ext = { prores: "mov", h264: "mp4", h265: "mp4" }[last] ?? last;
      const output = inputs.save_output !== false;
      const at = saveTarget(String(inputs.filename_prefix ?? "AnimateDiff"), output ? cfg.outputDir : cfg.tempDir);
      const counter = nextCounter(at.dir, (f) => new RegExp(`^${escapeRe(at.base)}_(\\d+)\\D*\\..+$`).exec(f)?.[1]);
      const filename = `${at.base}_${String(counter).padStart(5, "0")}.${ext}`;
      writeFileSync(join(at.dir, filename), mediaBytes(ext));
      const frameRate = typeof inputs.frame_rate === "number" ? inputs.frame_rate : 8;
      const entry = { filename, subfolder: at.subfolder, type: output ? "output" : "temp", format, frame_rate: frameRate };
      return { gifs: [{ ...entry, fullpath: join(at.dir, filename) }] };
    }
    default:
      return null;
  }
}

/** ComfyUI's get_save_image_path: the folder (made), file base and subfolder a prefix names under `root`. */
function saveTarget(prefix, root) {
  const subfolder = dirname(prefix) === "." ? "" : dirname(prefix);
  const dir = join(root, subfolder);
  mkdirSync(dir, { recursive: true });
  return { dir, base: basename(prefix), subfolder };
}

/** ComfyUI counts on from the highest counter on disk among `<base>_<digits>_...` files, whatever their type. */
const comfyCounter = ({ dir, base }) =>
  nextCounter(dir, (f) => (f.startsWith(`${base}_`) ? /^(\d+)_/.exec(f.slice(base.length + 1))?.[1] : undefined));

function nextCounter(dir, counterOf) {
  const taken = safeReaddir(dir)
    .map(counterOf)
    .filter((c) => c !== undefined)
    .map(Number);
  return (taken.length ? Math.max(...taken) : 0) + 1;
}
const escapeRe = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** A few bytes with the right signature for a file type (the lab has no encoder, and nothing decodes them). */
function mediaBytes(ext) {
  const mp4 = () => {
    // an ISO media file type box, then an empty free box
    const ftyp = Buffer.concat([Buffer.from([0, 0, 0, 0x18]), Buffer.from("ftypisom"), Buffer.from([0, 0, 2, 0]), Buffer.from("isommp41")]);
    return Buffer.concat([ftyp, Buffer.from([0, 0, 0, 8]), Buffer.from("free")]);
  };
  switch (ext) {
    case "mp4":
    case "mov":
      return mp4();
    case "png":
      return png(8, 8, [0x40, 0x80, 0xc0]);
    case "gif": // one transparent pixel
      return Buffer.from("47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b", "hex");
    case "webm":
    case "mkv": // the EBML magic
      return Buffer.concat([Buffer.from([0x1a, 0x45, 0xdf, 0xa3]), Buffer.alloc(28)]);
    case "flac": {
      // "fLaC" and its one (last) metadata block, STREAMINFO: 4096-sample blocks, 44.1 kHz, mono, 16 bit, no samples
      const info = Buffer.alloc(34);
      info.writeUInt16BE(4096, 0);
      info.writeUInt16BE(4096, 2);
      info.writeBigUInt64BE((44100n << 44n) | (0n << 41n) | (15n << 36n), 10);
      return Buffer.concat([Buffer.from("fLaC"), Buffer.from([0x80, 0, 0, 34]), info]);
    }
    default:
      return Buffer.from(`stand-in ${ext} output\n`);
  }
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

const VIEW_TYPES = {
  ".png": "image/png",
  ".gif": "image/gif",
  ".webp": "image/webp",
  ".mp4": "video/mp4",
  ".mov": "video/quicktime",
  ".webm": "video/webm",
  ".flac": "audio/flac",
  ".mp3": "audio/mpeg",
  ".opus": "audio/ogg",
};

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
    return send(res, 200, { prompt_id: item.id, number: item.number, node_errors: checked.nodeErrors });
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
      return send(res, 200, readFileSync(join(root, sub, name)), VIEW_TYPES[extname(name).toLowerCase()] ?? "application/octet-stream");
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
  loadCore();
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

// The lab stand-in's pack loader (test/lab/standin/introspect.py) with this machine's python3:
// the real InfiniteTalk fork of ComfyUI-WanVideoWrapper (cloned from ../shared/vendor) imports
// like in ComfyUI once its requirements are importable, and fails with ComfyUI's log lines when
// they are not; INPUT_TYPES() errors, stubs in combos and odd packs are handled as ComfyUI would.
// Then the stand-in (server.mjs) with it: packs loaded once at start-up, model lists live.
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { introspectScript, serverScript } from "../lab/standin/image.ts";
import { freePort } from "../support/sshd.ts";
import { dataPath, SHARED } from "./comfy/shared-data.ts";

const python = spawnSync("python3", ["--version"], { encoding: "utf8" });
const NO_PYTHON = python.status === 0 ? false : "no python3 on this machine (the stand-in then reads NODE_CLASS_MAPPINGS literally)";
const BUNDLE = join(SHARED, "..", "vendor", "packs", "InfiniteTalk-comfyui.bundle");
const WORKFLOW = dataPath("infinitetalk/wanvideo_infinitetalk_single_example.json");
const REQUIREMENTS = dataPath("infinitetalk/requirements.txt");
const NO_PACK =
  !existsSync(BUNDLE) || !WORKFLOW || !REQUIREMENTS ? `the InfiniteTalk bundle or its data is not beside this clone (${SHARED})` : false;
const PACK = "ComfyUI-WanVideoWrapper";

// A permissive stand-in for a requirement (what pip would install): every attribute and submodule
// exists and works as a value, a callable, a decorator (it hands back what it wraps), an empty
// iterable or a base class.
const STUB_INIT = `import importlib.abc, importlib.machinery, sys, types

class _Base:
    def __init_subclass__(cls, **kw):
        pass

    def __init__(self, *a, **kw):
        pass

class _M(types.ModuleType):
    def __getattr__(self, a):
        if a.startswith("__"):
            raise AttributeError(a)
        v = _M(self.__name__ + "." + a)
        setattr(self, a, v)
        return v

    def __call__(self, *a, **kw):
        return a[0] if len(a) == 1 and not kw and callable(a[0]) else _M(self.__name__ + "()")

    def __iter__(self):
        return iter(())

    def __mro_entries__(self, bases):
        return (self.__dict__.setdefault("_cls", type(self.__name__.rpartition(".")[2], (_Base,), {})),)

class _F(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path, target=None):
        if name.startswith(__name__ + "."):
            return importlib.machinery.ModuleSpec(name, self, is_package=True)

    def create_module(self, spec):
        return _M(spec.name)

    def exec_module(self, m):
        pass

sys.meta_path.append(_F())
sys.modules[__name__].__class__ = _M
`;

/** Stub modules for requirements.txt lines (protobuf is imported as google.protobuf). */
function writeStubs(dir: string, requirements: string[]): string[] {
  const names = requirements.map((r) => (r === "protobuf" ? "google.protobuf" : r.replace(/-/g, "_")));
  for (const n of names) {
    const d = join(dir, ...n.split("."));
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, "__init__.py"), STUB_INIT);
  }
  return names;
}

interface Introspected {
  packs: { path: string; ok: boolean; seconds: number }[];
  nodes: Record<string, any>;
}
function introspect(home: string, pythonPath?: string): Introspected & { log: string; ms: number } {
  const t0 = Date.now();
  const r = spawnSync("python3", [introspectScript], {
    env: { PATH: process.env.PATH, COMFY_HOME: home, ...(pythonPath ? { PYTHONPATH: pythonPath } : {}) },
    encoding: "utf8",
    timeout: 60_000,
  });
  assert.equal(r.status, 0, r.stderr);
  return { ...(JSON.parse(r.stdout) as Introspected), log: r.stderr, ms: Date.now() - t0 };
}

function comfyHome(root: string, name: string): string {
  const home = join(root, name);
  for (const d of ["custom_nodes", "input", "models/diffusion_models", "models/unet", "models/vae", "models/loras", "models/text_encoders"])
    mkdirSync(join(home, d), { recursive: true });
  return home;
}

describe("introspect.py on the real InfiniteTalk pack", { skip: NO_PYTHON || NO_PACK, timeout: 120_000 }, () => {
  let root: string;
  let home: string;
  let stubs: string;
  let stubbed: string[];
  let packClasses: string[];
  const requirements = () =>
    readFileSync(REQUIREMENTS!, "utf8")
      .split("\n")
      .map((l) => l.replace(/#.*/, "").trim())
      .filter(Boolean)
      .map((l) => l.split(/[<>=!~;[ ]/)[0]!);

  before(() => {
    root = mkdtempSync(join(tmpdir(), "flow-introspect-"));
    home = comfyHome(root, "ComfyUI");
    const clone = spawnSync("git", ["clone", "--quiet", BUNDLE, join(home, "custom_nodes", PACK)], { encoding: "utf8" });
    assert.equal(clone.status, 0, clone.stderr);
    for (const f of ["diffusion_models/Wan2_1-I2V-14B-480P_fp8_e5m2.safetensors", "diffusion_models/infinite_talk.safetensors"])
      writeFileSync(join(home, "models", f), "x");
    writeFileSync(join(home, "models/unet/wan2.1-i2v-480p-Q4_K_M.gguf"), "x");
    writeFileSync(join(home, "models/vae/Wan2_1_VAE_fp32.safetensors"), "x");
    writeFileSync(join(home, "models/loras/lightx2v_rank32.safetensors"), "x");
    writeFileSync(join(home, "models/text_encoders/umt5-xxl-enc-bf16.safetensors"), "x");
    writeFileSync(join(home, "models/vae/notes.txt"), "not a model");
    // the pack's requirements, and OpenCV: infinitetalk/utils.py imports cv2, which neither
    // ComfyUI's image nor this pack's requirements.txt provide (other packs' requirements do)
    stubs = join(root, "site");
    stubbed = writeStubs(stubs, requirements());
    mkdirSync(join(stubs, "cv2"));
    writeFileSync(join(stubs, "cv2/__init__.py"), STUB_INIT);
    // the classes of this pack the example workflow uses
    const wf = JSON.parse(readFileSync(WORKFLOW!, "utf8"));
    packClasses = [...new Set<string>(wf.nodes.filter((n: any) => n.properties?.cnr_id === PACK).map((n: any) => n.type as string))].sort();
  });
  after(() => root && rmSync(root, { recursive: true, force: true }));

  test("with its requirements importable: every class the example workflow uses, with the pack's real inputs", (t) => {
    const r = introspect(home, stubs);
    t.diagnostic(`${python.stdout.trim()}: ${Object.keys(r.nodes).length} classes in ${r.ms} ms`);
    assert.deepEqual(
      r.packs.map((p) => [p.path, p.ok]),
      [[join(home, "custom_nodes", PACK), true]],
      r.log,
    );
    assert.ok(packClasses.length >= 12, packClasses.join(" "));
    for (const c of ["WanVideoModelLoader", "LoadWanVideoT5TextEncoder", "WanVideoVAELoader", "MultiTalkModelLoader", "WanVideoSampler"])
      assert.ok(packClasses.includes(c), c);
    for (const c of packClasses) {
      assert.ok(r.nodes[c], `${c} missing\n${r.log}`);
      assert.equal(r.nodes[c].python_module, `custom_nodes.${PACK}`, c);
      assert.equal(r.nodes[c].name, c);
    }
    // nodes_model_loading.py: the model list is folder_paths' unet_gguf (.gguf files of the
    // diffusion_models folders, which the pack registers) then diffusion_models
    const loader = r.nodes.WanVideoModelLoader;
    assert.deepEqual(loader.input_order.required, ["model", "base_precision", "quantization", "load_device"]);
    assert.deepEqual(loader.input.required.model[0], [
      "wan2.1-i2v-480p-Q4_K_M.gguf",
      "Wan2_1-I2V-14B-480P_fp8_e5m2.safetensors",
      "infinite_talk.safetensors",
    ]);
    assert.deepEqual(loader.input.required.base_precision, [["fp32", "bf16", "fp16", "fp16_fast"], { default: "bf16" }]);
    assert.ok(loader.input.required.quantization[0].includes("fp8_e4m3fn"));
    assert.deepEqual(loader.input.required.load_device[0], ["main_device", "offload_device"]);
    assert.deepEqual(loader.input.optional.compile_args, ["WANCOMPILEARGS"]);
    assert.deepEqual(loader.input.optional.lora, ["WANVIDLORA", { default: null }]);
    assert.deepEqual([loader.output, loader.output_name, loader.category], [["WANVIDEOMODEL"], ["model"], "WanVideoWrapper"]);
    assert.equal(loader.display_name, "WanVideo Model Loader");
    assert.equal(loader.output_node, false);
    // the other loaders read their own folders
    assert.deepEqual(r.nodes.WanVideoVAELoader.input.required.model_name[0], ["Wan2_1_VAE_fp32.safetensors"]);
    assert.deepEqual(r.nodes.LoadWanVideoT5TextEncoder.input.required.model_name[0], ["umt5-xxl-enc-bf16.safetensors"]);
    assert.deepEqual(r.nodes.WanVideoLoraSelect.input.required.lora[0], ["lightx2v_rank32.safetensors"]);
    assert.deepEqual(r.nodes.WanVideoLoraSelect.input.hidden, { unique_id: "UNIQUE_ID" });
    assert.deepEqual(r.nodes.MultiTalkModelLoader.input.required.model[0], [
      "Wan2_1-I2V-14B-480P_fp8_e5m2.safetensors",
      "infinite_talk.safetensors",
    ]);
    assert.ok(r.nodes.DownloadAndLoadWav2VecModel.input.required.model[0].includes("TencentGameMate/chinese-wav2vec2-base"));
    assert.deepEqual(r.nodes.MultiTalkWav2VecEmbeds.output, ["MULTITALK_EMBEDS", "AUDIO"]);
    assert.deepEqual(r.nodes.MultiTalkWav2VecEmbeds.input.required.num_frames, ["INT", { default: 81, min: 1, max: 1000, step: 1 }]);
    assert.deepEqual(r.nodes.WanVideoSampler.output_name, ["samples"]);
    assert.ok(r.nodes.WanVideoSampler.input_order.required.includes("scheduler"));
    assert.deepEqual(r.nodes.WanVideoImageToVideoMultiTalk.output, ["WANVIDIMAGE_EMBEDS"]);
    assert.doesNotMatch(r.log, /Cannot import|IMPORT FAILED|\[ERROR\]/);
  });

  test("without its requirements: ComfyUI's traceback and 'Cannot import' line, no classes", () => {
    const r = introspect(home);
    const path = join(home, "custom_nodes", PACK);
    assert.deepEqual(
      r.packs.map((p) => [p.path, p.ok]),
      [[path, false]],
    );
    assert.deepEqual(r.nodes, {});
    const traceback = /Traceback \(most recent call last\):\n[\s\S]*\nModuleNotFoundError: No module named '([\w.]+)'\n\n/.source;
    const m = new RegExp(`${traceback}Cannot import (\\S+) module for custom nodes: No module named '([\\w.]+)'\n`).exec(r.log);
    assert.ok(m, r.log);
    assert.equal(m[2], path);
    assert.equal(m[1], m[3]);
    // a requirement of the pack, not one of the modules ComfyUI's image has (torch, einops, ...)
    assert.ok(stubbed.includes(m[1]!.split(".")[0]!), `${m[1]} is not one of ${stubbed.join(" ")}`);
  });
});

describe("introspect.py: odd packs and odd definitions", { skip: NO_PYTHON, timeout: 60_000 }, () => {
  let root: string;
  let home: string;
  before(() => {
    root = mkdtempSync(join(tmpdir(), "flow-introspect-"));
    home = comfyHome(root, "ComfyUI");
    writeFileSync(join(home, "models/diffusion_models/a.safetensors"), "x");
    const nodes = join(home, "custom_nodes");
    const pack = (name: string, files: Record<string, string>) => {
      for (const [f, text] of Object.entries(files)) {
        mkdirSync(join(nodes, name, f, ".."), { recursive: true });
        writeFileSync(join(nodes, name, f), text);
      }
    };
    pack("Mixed", {
      "__init__.py": `import torch
import comfy.model_management as mm
import folder_paths
from nodes import MAX_RESOLUTION
from server import PromptServer
from .nodes import Good, Broken, Odd

@PromptServer.instance.routes.get("/mixed/ping")
async def ping(request):
    return None

NODE_CLASS_MAPPINGS = {"Good": Good, "Broken": Broken, "Odd": Odd}
NODE_DISPLAY_NAME_MAPPINGS = {"Good": "Good Node"}
`,
      "nodes.py": `import torch
import folder_paths
from nodes import MAX_RESOLUTION

class Good:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": (folder_paths.get_filename_list("diffusion_models"),),
                             "width": ("INT", {"default": 512, "max": MAX_RESOLUTION})},
                "hidden": {"prompt": "PROMPT"}}
    RETURN_TYPES = ("IMAGE",)
    OUTPUT_NODE = True
    FUNCTION = "run"
    CATEGORY = "mixed"
    DESCRIPTION = "a good node"

class Broken:
    @classmethod
    def INPUT_TYPES(cls):
        raise RuntimeError("no inputs today")
    RETURN_TYPES = ()

class Odd(torch.nn.Module):
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"dtype": ([torch.float16, "fp16", "bf16"], {"default": "fp16", "device": torch.device("cuda")}),
                             "x": (torch.Tensor,)}}
    RETURN_TYPES = (torch.Tensor, "LATENT")
    RETURN_NAMES = ("tensor", "latent")
    OUTPUT_IS_LIST = (True, False)
`,
    });
    // a single-file pack, a disabled one, one without NODE_CLASS_MAPPINGS, one declaring classes in the manifest only
    writeFileSync(
      join(nodes, "single.py"),
      `class One:\n    INPUT_TYPES = classmethod(lambda c: {"required": {}})\n    RETURN_TYPES = ("INT",)\n\n` +
        `NODE_CLASS_MAPPINGS = {"SingleFileNode": One}\n`,
    );
    pack("Old.disabled", { "__init__.py": `NODE_CLASS_MAPPINGS = {"DisabledNode": object}\n` });
    pack("NoMappings", { "__init__.py": `X = 1\n` });
    pack("Declared", { "flow-standin-nodes.json": JSON.stringify(["DeclaredNode"]) });
    writeFileSync(join(nodes, "README.md"), "not a pack");
  });
  after(() => root && rmSync(root, { recursive: true, force: true }));

  test("a class whose INPUT_TYPES raises is left out and logged; stubs and non-JSON values are converted", () => {
    const r = introspect(home);
    const p = (n: string) => join(home, "custom_nodes", n);
    assert.deepEqual(
      r.packs.map((x) => [x.path, x.ok]),
      [
        [p("Declared"), true],
        [p("Mixed"), true],
        [p("NoMappings"), false],
        [p("single.py"), true],
      ],
      r.log,
    );
    assert.deepEqual(Object.keys(r.nodes).sort(), ["Good", "Odd", "SingleFileNode"]);
    assert.match(
      r.log,
      /\[ERROR\] An error occurred while retrieving information for the 'Broken' node\.\nTraceback[\s\S]*RuntimeError: no inputs today/,
    );
    assert.match(r.log, /Skip .*NoMappings module for custom nodes due to the lack of NODE_CLASS_MAPPINGS/);
    assert.deepEqual(r.nodes.Good, {
      input: { required: { model: [["a.safetensors"]], width: ["INT", { default: 512, max: 16384 }] }, hidden: { prompt: "PROMPT" } },
      input_order: { required: ["model", "width"], hidden: ["prompt"] },
      output: ["IMAGE"],
      output_is_list: [false],
      output_name: ["IMAGE"],
      name: "Good",
      display_name: "Good Node",
      description: "a good node",
      python_module: "custom_nodes.Mixed",
      category: "mixed",
      output_node: true,
    });
    const odd = r.nodes.Odd;
    assert.deepEqual(odd.input.required.dtype, [["fp16", "bf16"], { default: "fp16" }], "stubs dropped from the combo and the options");
    assert.equal(typeof odd.input.required.x[0], "string");
    assert.deepEqual(
      [odd.output[1], odd.output_name, odd.output_is_list, odd.category],
      ["LATENT", ["tensor", "latent"], [true, false], "sd"],
    );
    assert.equal(r.nodes.SingleFileNode.python_module, "custom_nodes.single");
  });
});

// ---- the stand-in with python: loaded once, model lists live

interface Server {
  proc: ChildProcess;
  url: string;
  logs: () => string;
  stop: () => Promise<void>;
}
async function startServer(home: string, env: Record<string, string> = {}): Promise<Server> {
  const port = await freePort();
  const proc = spawn(process.execPath, [serverScript, "--listen", "127.0.0.1", "--port", String(port)], {
    env: { PATH: process.env.PATH, COMFY_HOME: home, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  proc.stdout!.on("data", (d) => (out += d));
  proc.stderr!.on("data", (d) => (out += d));
  const exited = new Promise((r) => proc.on("exit", r));
  const deadline = Date.now() + 30_000;
  for (;;) {
    const open = await new Promise<boolean>((resolve) => {
      const s = connect(port, "127.0.0.1");
      s.once("connect", () => (s.destroy(), resolve(true)));
      s.once("error", () => resolve(false));
    });
    if (open) break;
    if (proc.exitCode !== null || Date.now() > deadline) throw new Error(`stand-in not up:\n${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    proc,
    url: `http://127.0.0.1:${port}`,
    logs: () => out,
    stop: async () => {
      if (proc.exitCode === null) proc.kill("SIGINT");
      await exited;
    },
  };
}
const getJson = async (url: string) => (await fetch(url)).json() as Promise<any>;

describe("the stand-in ComfyUI loads packs once at start-up", { timeout: 60_000 }, () => {
  let root: string;
  const servers: Server[] = [];
  const PACK_PY = (cls: string, dep = "") => `${dep}import folder_paths

class ${cls}:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"unet_name": (folder_paths.get_filename_list("diffusion_models"),)}}
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "load"

NODE_CLASS_MAPPINGS = {"${cls}": ${cls}}
`;
  before(() => (root = mkdtempSync(join(tmpdir(), "flow-introspect-srv-"))));
  after(async () => {
    for (const s of servers) await s.stop();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  for (const mode of ["python", "none"] as const) {
    const how = mode === "python" ? "with python3 (introspect.py)" : "without python (literal NODE_CLASS_MAPPINGS)";
    test(
      `${how}: a pack installed later appears after a restart`,
      {
        skip: mode === "python" && NO_PYTHON,
      },
      async () => {
        const home = comfyHome(root, mode);
        const env: Record<string, string> = mode === "none" ? { STANDIN_PYTHON: "none" } : {};
        mkdirSync(join(home, "custom_nodes/First"));
        writeFileSync(join(home, "custom_nodes/First/__init__.py"), PACK_PY("FirstLoader"));
        mkdirSync(join(home, "custom_nodes/NeedsDep"));
        writeFileSync(join(home, "custom_nodes/NeedsDep/__init__.py"), PACK_PY("NeedsDepNode", "import flow_absent_requirement\n"));
        let s = await startServer(home, env);
        servers.push(s);
        const info = await getJson(`${s.url}/object_info`);
        assert.equal(info.FirstLoader?.python_module, "custom_nodes.First", s.logs());
        assert.ok(info.KSampler, "core classes are there too");
        if (mode === "python") {
          assert.equal(info.NeedsDepNode, undefined);
          assert.match(s.logs(), /Cannot import \S+NeedsDep module for custom nodes: No module named 'flow_absent_requirement'/);
          assert.match(
            s.logs(),
            /Import times for custom nodes:\n +0\.\d seconds: \S+\/First\n +0\.\d seconds \(IMPORT FAILED\): \S+\/NeedsDep\n/,
          );
          // INPUT_TYPES() runs on every request, as in ComfyUI: a model added later is listed
          assert.deepEqual(info.FirstLoader.input.required.unet_name[0], []);
          writeFileSync(join(home, "models/diffusion_models/later.safetensors"), "x");
          const again = await getJson(`${s.url}/object_info/FirstLoader`);
          assert.deepEqual(again.FirstLoader.input.required.unet_name[0], ["later.safetensors"]);
        } else {
          assert.ok(info.NeedsDepNode, "without python nothing is imported");
          assert.match(s.logs(), /Import times for custom nodes:\n +0\.0 seconds: \S+\/First\n +0\.0 seconds: \S+\/NeedsDep\n/);
        }
        // installed while it runs: not there until a restart
        mkdirSync(join(home, "custom_nodes/Second"));
        writeFileSync(join(home, "custom_nodes/Second/__init__.py"), PACK_PY("SecondLoader"));
        assert.equal((await getJson(`${s.url}/object_info`)).SecondLoader, undefined);
        assert.deepEqual(await getJson(`${s.url}/object_info/SecondLoader`), {});
        await s.stop();
        s = await startServer(home, env);
        servers.push(s);
        const after = await getJson(`${s.url}/object_info`);
        assert.equal(after.SecondLoader?.python_module, "custom_nodes.Second");
        assert.ok(after.FirstLoader);
      },
    );
  }
});

// The lab's comfyui-api image in a real lab host (lab3): the REAL comfyui-api 1.18.0, built from
// source, in front of the stand-in ComfyUI it starts through CMD. The container is created with
// exactly the `docker run` flow's comfyui plugin makes (lib/comfy/deploy.ts), on a data root
// inside the host; requests go over ssh from inside the host and through the ports the lab
// publishes on 127.0.0.1.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { comfyContainerSpec, comfyLayout } from "../../lib/comfy/deploy.ts";
import { runArgv } from "../../lib/commands/docker.ts";
import { shJoin } from "../../lib/quote.ts";
import { parseImportReport } from "../../lib/comfy/import-log.ts";
import { ensureLab, labUnavailableReason, sshArgv, type LabInventory } from "../lab/lab.ts";
import { COMFYUI_API } from "../lab/standin/comfyui-api.ts";
import { ensureStandinImage, IMAGE_PATHS, STANDIN_TAG, type StandinLoad } from "../lab/standin/image.ts";
import { run } from "../lab/util.ts";

const reason = await labUnavailableReason();

/** A request through the ports the lab publishes on 127.0.0.1 (the outer engine's proxy): other
 * lab hosts being created or removed at the same moment can make one attempt fail. */
async function fetchPublished(url: string): Promise<Response> {
  for (let i = 1; ; i++) {
    try {
      return await fetch(url);
    } catch (err) {
      if (i === 3) throw new Error(`${url}: ${(err as Error).message} (${String((err as { cause?: unknown }).cause)})`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}
const HOST = "lab3"; // lab1/lab2 belong to other lab tests; flow setups use lab4/lab5
const NAME = "flow-standin-it";
const ROOT = "/tmp/flow-standin-it"; // the data root on the host
const L = comfyLayout(ROOT);
const CHECKPOINT = "dummy-sd15.safetensors";
const PNG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

// Workflows in comfyui-api's own shape (RequestSchema + generateWorkflow, evaluated inside its
// dist/src/workflows, so `../config` is comfyui-api's config), written for this test on the
// model of comfyui-api's example-workflows/sd1.5/txt2img.ts.
const modelWorkflow = (folder: string, loader: string, input: string, summary: string) => `
import { z } from "zod";
import { ComfyPrompt, Workflow } from "../types";
import config from "../config";

const RequestSchema = z.object({
  prompt: z.string().describe("what to draw"),
  negative_prompt: z.string().optional().default("blurry").describe("what not to draw"),
  width: z.number().int().min(64).max(1024).optional().default(512).describe("image width"),
  height: z.number().int().min(64).max(1024).optional().default(512).describe("image height"),
  seed: z.number().int().optional().default(42).describe("sampler seed"),
  steps: z.number().int().min(1).max(50).optional().default(12).describe("sampling steps"),
  // the files in MODEL_DIR/${folder} when comfyui-api started
  model: config.models.${folder}.enum.optional().default(config.models.${folder}.all[0]).describe("model file"),
});

type Input = z.infer<typeof RequestSchema>;

function generateWorkflow(input: Input): ComfyPrompt {
  return {
    ckpt: { class_type: "${loader}", inputs: { ${input}: input.model } },
    latent: { class_type: "EmptyLatentImage", inputs: { width: input.width, height: input.height, batch_size: 1 } },
    pos: { class_type: "CLIPTextEncode", inputs: { text: input.prompt, clip: ["ckpt", 1] } },
    neg: { class_type: "CLIPTextEncode", inputs: { text: input.negative_prompt, clip: ["ckpt", 1] } },
    sample: {
      class_type: "KSampler",
      inputs: {
        model: ["ckpt", 0], positive: ["pos", 0], negative: ["neg", 0], latent_image: ["latent", 0],
        seed: input.seed, steps: input.steps, cfg: 7, sampler_name: "euler", scheduler: "normal", denoise: 1,
      },
    },
    decode: { class_type: "VAEDecode", inputs: { samples: ["sample", 0], vae: ["ckpt", 2] } },
    save: { class_type: "SaveImage", inputs: { images: ["decode", 0], filename_prefix: "lab" } },
  };
}

const workflow: Workflow = { RequestSchema, generateWorkflow, summary: ${JSON.stringify(summary)} };
export default workflow;
`;
const WORKFLOWS: Record<string, string> = {
  // needs a checkpoint: one is on the host
  "sd15/txt2img.ts": modelWorkflow("checkpoints", "CheckpointLoaderSimple", "ckpt_name", "SD 1.5 text to image (lab)"),
  // models/diffusion_models exists and is empty: an empty enum
  "flux/unet.ts": modelWorkflow("diffusion_models", "UNETLoader", "unet_name", "needs a diffusion model"),
  // models/clip_vision does not exist on the host: config.models.clip_vision is undefined
  "wan/clip_vision.ts": modelWorkflow("clip_vision", "CLIPVisionLoader", "clip_name", "needs a clip_vision model"),
};

// Packs the stand-in imports with the image's python, as ComfyUI imports them (introspect.py).
const PACK_INIT = `from .nodes import LabPackSampler, LabPackLoader
NODE_CLASS_MAPPINGS = {
    "LabPackSampler": LabPackSampler,
    "LabPackLoader": LabPackLoader,
}
NODE_DISPLAY_NAME_MAPPINGS = {"LabPackLoader": "Lab Pack Loader"}
`;
const PACK_NODES = `import torch  # the image's (a stub in the stand-in)
import folder_paths

class LabPackLoader:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"ckpt_name": (folder_paths.get_filename_list("checkpoints"),)}}
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "load"
    CATEGORY = "lab"

class LabPackSampler:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",), "steps": ("INT", {"default": 20, "min": 1})}}
    RETURN_TYPES = ("LATENT",)
    FUNCTION = "sample"
    CATEGORY = "lab"
`;
/** A pack that imports `module` (none of the image's) at load time, and registers `cls`. */
const needsPack = (cls: string, module: string) => `import ${module}

class ${cls}:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("STRING", {"default": getattr(${module}, "VALUE", "")})}}
    RETURN_TYPES = ("STRING",)
    FUNCTION = "run"

NODE_CLASS_MAPPINGS = {"${cls}": ${cls}}
`;
const DEP = "flow_lab_dep"; // what LabPackNeedsDep imports: a wheel pip installs into /opt/flow/python below

describe("the lab's comfyui-api image in a lab host", { skip: reason ?? false, timeout: 15 * 60_000 }, () => {
  let inv: LabInventory;
  let first: StandinLoad;
  let startMs = 0;
  const sh = (script: string, timeoutMs = 120_000) =>
    run("ssh", sshArgv(inv.hosts[HOST]!.port, "ubuntu", "sudo sh -s"), { input: `set -eu\n${script}\n`, allowFail: true, timeoutMs });
  const shOk = async (script: string) => {
    const r = await sh(script);
    assert.equal(r.code, 0, `${script}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`);
    return r.stdout;
  };
  const getJson = async (path: string, port = 3000) => JSON.parse(await shOk(`curl -fsS http://127.0.0.1:${port}${path}`));
  const postJson = async (path: string, body: unknown) => {
    const out = await shOk(
      `curl -sS -o /tmp/flow-standin-body -w '%{http_code}' -H 'content-type: application/json' ` +
        `--data-binary @- http://127.0.0.1:3000${path} <<'EOF'
${JSON.stringify(body)}
EOF
echo; cat ` +
        `/tmp/flow-standin-body`,
    );
    const [status, ...rest] = out.split("\n");
    return { status: Number(status), json: JSON.parse(rest.join("\n")) };
  };
  const logs = (name = NAME) => shOk(`docker logs ${name} 2>&1`);
  /** comfyui-api's pino lines */
  const apiLines = async (name = NAME) =>
    (await logs(name)).split("\n").flatMap((l) => {
      try {
        return l.startsWith("{") ? [JSON.parse(l) as Record<string, unknown>] : [];
      } catch {
        return [];
      }
    });
  const waitReady = (port: number) =>
    `for i in $(seq 600); do curl -fsS -o /dev/null http://127.0.0.1:${port}/ready 2>/dev/null && exit 0; sleep 0.1; done; exit 1`;

  before(async () => {
    inv = await ensureLab({ hosts: 3, docker: true });
    first = await ensureStandinImage(inv, HOST, (m) => process.stderr.write(`[standin] ${m}\n`));
    const files = Object.entries(WORKFLOWS)
      .map(([rel, text]) => `mkdir -p ${L.workflows}/${rel.split("/")[0]}\ncat > ${L.workflows}/${rel} <<'EOF'\n${text}\nEOF`)
      .join("\n");
    await shOk(
      `
docker rm -f ${NAME} ${NAME}-custom >/dev/null 2>&1 || true
rm -rf ${ROOT}
mkdir -p ${L.models}/checkpoints ` +
        `${L.models}/diffusion_models ${L.models}/loras ${L.customNodes}/LabPack ${L.customNodes}/LabPackNeedsDep ` +
        `${L.input} ${L.output} ${L.python} ${L.workflows}
echo 'not really a model' > ${L.models}/checkpoints/${CHECKPOINT}
cat > ${L.customNodes}/LabPack/__init__.py ` +
        `<<'EOF'
${PACK_INIT}
EOF
cat > ${L.customNodes}/LabPack/nodes.py <<'EOF'
${PACK_NODES}
EOF
cat > ${L.customNodes}/LabPackNeedsDep/__init__.py <<'EOF'
${needsPack("LabPackNeedsDepNode", DEP)}
EOF
${files}`,
    );
    // what flow's comfyui:up runs, on this data root
    // ComfyUI's port is reached from outside the lab host below: published on all interfaces here
    const spec = comfyContainerSpec({ image: STANDIN_TAG, dataRoot: ROOT, gpu: false, name: NAME, expose: { comfyui: true, api: true } });
    const t0 = Date.now();
    const r = await sh(`${shJoin(runArgv(spec))} >/dev/null\n${waitReady(3000)}`);
    startMs = Date.now() - t0;
    assert.equal(r.code, 0, `not ready:\n${r.stderr}\n${(await sh(`docker logs ${NAME} 2>&1 | tail -40`)).stdout}`);
  });

  after(async () => {
    if (inv && !reason) await sh(`docker rm -f ${NAME} ${NAME}-custom >/dev/null 2>&1 || true; rm -rf ${ROOT} /tmp/flow-standin-body`);
  });

  test("the image: built once per content hash, loaded again only when the host lacks it; timings", async (t) => {
    const b = first.build;
    t.diagnostic(`comfyui-api build: ${b.api.built ? `built in ${(b.api.ms / 1000).toFixed(1)}s` : "from the cache"} (${b.api.hash})`);
    t.diagnostic(
      `image rootfs: ${b.built ? "built" : "from the cache"}, ${(b.ms / 1000).toFixed(1)}s in all; ` +
        `load into ${HOST}: loaded=${first.loaded}, ${(first.ms / 1000).toFixed(1)}s`,
    );
    t.diagnostic(`image size ${(first.bytes / 1e6).toFixed(1)} MB; first container start to /ready: ${(startMs / 1000).toFixed(1)}s`);
    assert.ok(first.bytes < 250e6, `image is ${first.bytes} bytes`);
    const again = await ensureStandinImage(inv, HOST);
    assert.equal(again.loaded, false);
    assert.equal(again.build.built, false);
    assert.equal(again.build.api.built, false);
    assert.equal(again.hash, first.hash);
  });

  test("the real comfyui-api answers /health and /ready with version 1.18.0, inside the host and through the published port", async () => {
    assert.deepEqual(await getJson("/health"), { version: COMFYUI_API.version, status: "healthy" });
    assert.deepEqual(await getJson("/ready"), { version: COMFYUI_API.version, status: "ready" });
    const res = await fetchPublished(`http://127.0.0.1:${inv.hosts[HOST]!.data.apiPort}/health`);
    assert.deepEqual(await res.json(), { version: COMFYUI_API.version, status: "healthy" });
    // the image's command is comfyui-api's launcher; comfyui-api started the stand-in through CMD
    const top = await shOk(`docker top ${NAME} -o pid,ppid,args`);
    assert.match(top, new RegExp(`node ${IMAGE_PATHS.api}/dist/src/index\\.js`), top);
    assert.match(top, new RegExp(`node ${IMAGE_PATHS.comfyMain} --listen 0\\.0\\.0\\.0 --port 8188`), top);
    const lines = await apiLines();
    assert.ok(
      lines.some((l) => l.msg === `Starting ComfyUI API ${COMFYUI_API.version} with ComfyUI 0.19.3-standin`),
      "comfyui-api read the stand-in's version",
    );
    assert.ok(lines.some((l) => l.msg === "Connected to Comfy UI websocket"));
  });

  test("/docs/json is comfyui-api's own OpenAPI document; the mounted workflow is an endpoint with its zod schema", async () => {
    const doc = await getJson("/docs/json");
    assert.equal(doc.info.version, COMFYUI_API.version);
    for (const p of ["/health", "/ready", "/models", "/prompt", "/interrupt", "/download"]) assert.ok(doc.paths[p], p);
    const op = doc.paths["/workflow/sd15/txt2img"]?.post;
    assert.ok(op, Object.keys(doc.paths).join(" "));
    assert.equal(op.summary, "SD 1.5 text to image (lab)");
    const schema = op.requestBody.content["application/json"].schema;
    assert.deepEqual(schema.required, ["input"]);
    assert.deepEqual(schema.properties.input.required, ["prompt"]);
    assert.deepEqual(schema.properties.input.properties.model.enum, [CHECKPOINT], "the enum lists the checkpoint on the host");
    assert.equal(schema.properties.input.properties.width.default, 512);
    // its Swagger UI and YAML form
    assert.match(await shOk(`curl -fsS http://127.0.0.1:3000/docs`), /swagger-ui-bundle\.js/);
    await shOk(`curl -fsS -o /dev/null http://127.0.0.1:3000/docs/static/swagger-ui-bundle.js`);
    assert.match(await shOk(`curl -fsS http://127.0.0.1:3000/docs/yaml`), /^openapi: 3\./);
    // comfyui-api transpiled the .ts beside itself, in the host's folder
    await shOk(`test -s ${L.workflows}/sd15/txt2img.js`);
    const lines = await apiLines();
    assert.ok(lines.some((l) => l.msg === "Registered workflow /workflow/sd15/txt2img"));
  });

  test(
    "POST /workflow/sd15/txt2img goes through comfyui-api to the stand-in ComfyUI and back: " + "images (base64 PNG) and filenames",
    async () => {
      const r = await postJson("/workflow/sd15/txt2img", {
        id: "lab-req-1",
        input: { prompt: "a cat", width: 128, height: 96, unknown: 1 },
      });
      assert.equal(r.status, 200, JSON.stringify(r.json));
      assert.equal(r.json.id, "lab-req-1");
      assert.equal(r.json.images.length, 1);
      const png = Buffer.from(r.json.images[0], "base64");
      assert.deepEqual(png.subarray(0, 8), PNG);
      assert.equal(png.readUInt32BE(16), 128, "as wide as asked");
      assert.equal(png.readUInt32BE(20), 96);
      assert.deepEqual(r.json.filenames, ["lab-req-1_lab_00001_.png"]);
      // the defaults came from the workflow's schema; unknown keys were dropped
      assert.deepEqual(r.json.input, {
        prompt: "a cat",
        negative_prompt: "blurry",
        width: 128,
        height: 96,
        seed: 42,
        steps: 12,
        model: CHECKPOINT,
      });
      assert.equal(r.json.prompt.ckpt.inputs.ckpt_name, CHECKPOINT);
      assert.equal(typeof r.json.stats.comfy_round_trip_time, "number");
      // comfyui-api read the file from OUTPUT_DIR and deleted it
      assert.equal((await shOk(`ls -A ${L.output}`)).trim(), "");
      // a value outside the enum is refused by comfyui-api's validation, before ComfyUI is asked
      const bad = await postJson("/workflow/sd15/txt2img", { input: { prompt: "a cat", model: "absent.safetensors" } });
      assert.equal(bad.status, 400);
      assert.match(bad.json.message, /Invalid enum value/);
    },
  );

  test(
    "model folders decide the workflows: a missing folder drops the workflow (its file is " + "logged), an empty one gives an empty enum",
    async () => {
      const doc = await getJson("/docs/json");
      // models/clip_vision is absent: evaluating the workflow throws, comfyui-api logs it and goes on
      assert.equal(doc.paths["/workflow/wan/clip_vision"], undefined);
      const failed = (await apiLines()).find((l) => l.msg === "Failed to evaluate workflow file");
      assert.ok(failed, "comfyui-api logs the failure");
      assert.equal(failed.level, 50);
      assert.equal(failed.file, "/workflows/wan/clip_vision.js");
      assert.match(String(failed.error), /Cannot read properties of undefined \(reading 'enum'\)/);
      // models/diffusion_models exists but is empty: comfyui-api 1.18.0 still serves the workflow,
      // with an enum of no values, so every request naming a model is refused
      const unet = doc.paths["/workflow/flux/unet"]?.post;
      assert.ok(unet, "an empty folder does not drop the workflow");
      assert.deepEqual(unet.requestBody.content["application/json"].schema.properties.input.properties.model.enum, []);
      const r = await postJson("/workflow/flux/unet", { input: { prompt: "x", model: "flux1-dev.safetensors" } });
      assert.equal(r.status, 400);
      assert.match(r.json.message, /Invalid enum value\. Expected , received 'flux1-dev\.safetensors'/);
    },
  );

  test("the stand-in ComfyUI reflects the host: a pack in custom_nodes in /object_info, a model added later in /models", async () => {
    const info = await getJson("/object_info", 8188);
    assert.equal(info.LabPackSampler?.python_module, "custom_nodes.LabPack");
    // imported by the image's python: the definitions are the pack's own, combos read from the disk
    assert.deepEqual(info.LabPackSampler.input.required.steps, ["INT", { default: 20, min: 1 }]);
    assert.deepEqual(info.LabPackLoader.input.required.ckpt_name, [[CHECKPOINT]]);
    assert.equal(info.LabPackLoader.display_name, "Lab Pack Loader");
    assert.deepEqual(info.CheckpointLoaderSimple.input.required.ckpt_name[0], [CHECKPOINT]);
    await shOk(`echo x > ${L.models}/loras/added-later.safetensors`);
    assert.deepEqual(await getJson("/models/loras", 8188), ["added-later.safetensors"]);
    // comfyui-api's GET /models asks ComfyUI on every call
    const models = await getJson("/models");
    assert.deepEqual(models.loras, ["added-later.safetensors"]);
    assert.deepEqual(models.checkpoints, [CHECKPOINT]);
    // (from this machine only the API port is tried: flow publishes ComfyUI's on the host's loopback by default)
    const stats = await getJson("/system_stats", 8188);
    assert.equal(stats.system.comfyui_version, "0.19.3-standin");
  });

  test("python and pip in the container; a pack whose requirement is missing is logged as IMPORT FAILED, as ComfyUI does", async () => {
    // the real image's python comes from conda, with `python` and `python3`
    assert.match(await shOk(`docker exec ${NAME} python3 -m pip --version`), /^pip \d+\.\d+(\.\d+)? from \S+ \(python 3\.\d+\)/);
    assert.match(await shOk(`docker exec ${NAME} python --version`), /^Python 3\.\d+\.\d+/);
    assert.equal((await shOk(`docker exec ${NAME} sh -c 'echo $PYTHONPATH'`)).trim(), "/opt/flow/python");
    const log = await logs();
    const path = `${IMAGE_PATHS.comfyHome}/custom_nodes/LabPackNeedsDep`;
    const cannot = `Cannot import ${path} module for custom nodes: No module named '${DEP}'`;
    assert.ok(log.includes(`ModuleNotFoundError: No module named '${DEP}'\n\n${cannot}\n`), log);
    const report = parseImportReport(log);
    assert.deepEqual(report.failed, [{ pack: "LabPackNeedsDep", path, error: `No module named '${DEP}'` }]);
    assert.deepEqual(report.loaded.sort(), ["LabPack"]); // the mount over custom_nodes hides the image's ComfyUI-Manager
    assert.equal((await getJson("/object_info", 8188)).LabPackNeedsDepNode, undefined);
  });

  test(
    "pip install --target /opt/flow/python from an index (--index-url) inside the container; packs load once: " +
      "a new pack and the one whose requirement pip installed appear only after a restart",
    async (t) => {
      // a PEP 503 index on the lab host with one wheel, reached from the container through its gateway
      const index = "/tmp/flow-standin-index";
      await shOk(`rm -rf ${index}; mkdir -p ${index}/simple/flow-lab-dep
cd ${index}/simple/flow-lab-dep
python3 - <<'EOF'
import base64, hashlib, zipfile
info = "flow_lab_dep-1.0.dist-info"
files = {
    "${DEP}/__init__.py": "VALUE = 'from the index'\\n",
    info + "/METADATA": "Metadata-Version: 2.1\\nName: flow-lab-dep\\nVersion: 1.0\\n",
    info + "/WHEEL": "Wheel-Version: 1.0\\nGenerator: flow-test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n",
}
digest = lambda d: base64.urlsafe_b64encode(hashlib.sha256(d.encode()).digest()).rstrip(b"=").decode()
record = "".join(f"{p},sha256={digest(d)},{len(d)}\\n" for p, d in files.items())
files[info + "/RECORD"] = record + info + "/RECORD,,\\n"
with zipfile.ZipFile("flow_lab_dep-1.0-py3-none-any.whl", "w") as z:
    for p, d in files.items():
        z.writestr(p, d)
EOF
echo '<a href="flow_lab_dep-1.0-py3-none-any.whl">flow_lab_dep-1.0-py3-none-any.whl</a>' > index.html
nohup python3 -m http.server 18765 --bind 0.0.0.0 --directory ${index} </dev/null >/dev/null 2>&1 &
echo $! > ${index}.pid`);
      try {
        const gw = (await shOk(`docker inspect -f '{{range .NetworkSettings.Networks}}{{.Gateway}}{{end}}' ${NAME}`)).trim();
        const url = `http://${gw}:18765/simple`;
        await shOk(`for i in $(seq 50); do curl -fsS -o /dev/null ${url}/flow-lab-dep/ && exit 0; sleep 0.1; done; exit 1`);
        // a pack installed while it runs
        await shOk(`mkdir -p ${L.customNodes}/LabPackLate
cat > ${L.customNodes}/LabPackLate/__init__.py <<'EOF'
${needsPack("LabPackLateNode", "json")}
EOF`);
        const pip = await sh(
          `docker exec ${NAME} python3 -m pip install --disable-pip-version-check --index-url ${url} --trusted-host ${gw} ` +
            `--target /opt/flow/python flow-lab-dep`,
        );
        assert.equal(pip.code, 0, pip.stdout + pip.stderr);
        assert.match(pip.stdout, /Successfully installed flow-lab-dep-1\.0/);
        await shOk(`test -f ${L.python}/${DEP}/__init__.py`); // on the host: a re-created container keeps it
        // ComfyUI loaded its packs at start-up: neither shows yet
        const before = await getJson("/object_info", 8188);
        assert.equal(before.LabPackLateNode, undefined);
        assert.equal(before.LabPackNeedsDepNode, undefined);
        const t0 = Date.now();
        await shOk(`docker restart ${NAME} >/dev/null\n${waitReady(3000)}`);
        t.diagnostic(`docker restart to /ready: ${((Date.now() - t0) / 1000).toFixed(1)}s`);
        const info = await getJson("/object_info", 8188);
        assert.equal(info.LabPackLateNode?.python_module, "custom_nodes.LabPackLate");
        assert.equal(info.LabPackNeedsDepNode?.python_module, "custom_nodes.LabPackNeedsDep");
        assert.deepEqual(info.LabPackNeedsDepNode.input.required.value, ["STRING", { default: "from the index" }]);
        const report = parseImportReport(await logs()); // the last start's
        assert.deepEqual(report.failed, []);
        assert.deepEqual(report.loaded.sort(), ["LabPack", "LabPackLate", "LabPackNeedsDep"]);
      } finally {
        await sh(`kill $(cat ${index}.pid) || true; rm -rf ${index} ${index}.pid`);
      }
    },
  );

  test("flow's customBinary run: a build folder in <data root>/comfyui-api/bin runs as /app/bin/comfyui-api", async () => {
    // a lab "binary" is the build folder: launcher comfyui-api + dist + node_modules (here: the image's own)
    await shOk(`mkdir -p ${L.bin}; c=$(docker create ${STANDIN_TAG}); trap 'docker rm "$c" >/dev/null' EXIT
docker cp "$c:${IMAGE_PATHS.api}/." ${L.bin}/; test -x ${L.bin}/comfyui-api`);
    const spec = comfyContainerSpec({
      image: STANDIN_TAG,
      dataRoot: ROOT,
      gpu: false,
      name: `${NAME}-custom`,
      customBinary: true,
      comfyPort: 18188,
      apiPort: 13000,
    });
    assert.deepEqual(spec.command, ["/app/bin/comfyui-api"]);
    const r = await sh(`${shJoin(runArgv(spec))} >/dev/null\n${waitReady(13000)}`);
    assert.equal(r.code, 0, (await sh(`docker logs ${NAME}-custom 2>&1 | tail -30`)).stdout);
    assert.equal((await getJson("/health", 13000)).version, COMFYUI_API.version);
    assert.match(await shOk(`docker top ${NAME}-custom -o pid,args`), /node \/app\/bin\/dist\/src\/index\.js/);
    await shOk(`docker rm -f ${NAME}-custom >/dev/null`);
  });
});

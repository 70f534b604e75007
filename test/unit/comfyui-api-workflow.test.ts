// What a workflow's source says about itself (model folders, model files, node classes, example,
// metadata) and whether comfyui-api's eval finds its Workflow; the host checks made from that.
import { test } from "node:test";
import assert from "node:assert/strict";
import ts from "typescript";
import { analyzeWorkflow, loadProblem } from "../../lib/comfy/comfyui-api-workflow.ts";
import { hostProblems, parseModelListing, searchFolders } from "../../lib/comfy/comfyui-api-deps.ts";

const WF = `import { z } from "zod";
import { ComfyPrompt, Workflow } from "../types";
import cfg from "../config";

export const example = { prompt: "a red fox", width: 256, steps: -1, tags: ["a", "b"], extra: null } as const;
export const metadata = { models: ["loras/style.safetensors", { folder: "vae", name: "sd15/vae.pt" }] };

const RequestSchema = z.object({
  prompt: z.string(),
  checkpoint: cfg.models.checkpoints.enum.optional().default(cfg.models.checkpoints.all[0]),
  upscaler: cfg.models["upscale_models"].enum.optional(),
  unet: cfg.models?.unet?.enum.optional(),
});

function generateWorkflow(input: z.infer<typeof RequestSchema>): ComfyPrompt {
  return {
    "1": { class_type: "CheckpointLoaderSimple", inputs: { ckpt_name: input.checkpoint } },
    "2": { class_type: "VAELoader", inputs: { vae_name: "fixed-vae.safetensors" } },
    "3": { class_type: "UnetLoaderGGUF", inputs: { unet_name: "flux-q8.gguf", other: "x.safetensors" } },
    "4": { class_type: "KSampler", inputs: { seed: 1 } },
    "5": { "class_type": "SaveImage", inputs: { filename_prefix: "out" } },
  };
}

const workflow: Workflow = { RequestSchema, generateWorkflow };
export default workflow;
`;

test(
  "analyzeWorkflow: config.models folders, literal model files (core loaders, custom loaders " +
    "by input name, metadata), classes, example",
  () => {
    const f = analyzeWorkflow("a/wf.ts", WF);
    assert.deepEqual(f.modelFolders, ["checkpoints", "unet", "upscale_models"]);
    assert.deepEqual(f.modelFiles, [
      { folder: "diffusion_models", name: "flux-q8.gguf", via: "UnetLoaderGGUF.unet_name" },
      { folder: "loras", name: "style.safetensors", via: "metadata.models" },
      { folder: "vae", name: "fixed-vae.safetensors", via: "VAELoader.vae_name" },
      { folder: "vae", name: "sd15/vae.pt", via: "metadata.models" },
    ]);
    assert.deepEqual(f.classTypes, ["CheckpointLoaderSimple", "KSampler", "SaveImage", "UnetLoaderGGUF", "VAELoader"]);
    assert.deepEqual(f.example, { prompt: "a red fox", width: 256, steps: -1, tags: ["a", "b"], extra: null });
    assert.deepEqual(f.problems, []);
    // a .js workflow that requires config
    const js = analyzeWorkflow(
      "b.js",
      `const config = require("../config").default;\nconst x = config.models.loras;\nmodule.exports ` +
        `= { RequestSchema: 1, generateWorkflow: 2 };\n`,
    );
    assert.deepEqual(js.modelFolders, ["loras"]);
    assert.deepEqual(js.problems, []);
  },
);

test("analyzeWorkflow: an example that is not a literal is named; __proto__ in one is a plain key", () => {
  const f = analyzeWorkflow(
    "x.ts",
    `const p = "x";\nexport const example = { prompt: p };\nexport default { RequestSchema: null, generateWorkflow: null };\n`,
  );
  assert.match(f.problems.join(), /`example` must be a literal object/);
  const g = analyzeWorkflow("y.ts", `export const example = { "__proto__": { polluted: 1 } };\nexport default {};\n`);
  assert.equal(Object.getPrototypeOf(g.example), Object.prototype);
  assert.deepEqual(Object.keys(g.example!), ["__proto__"]);
});

/** comfyui-api's loader, as src/workflows/index.ts does it: transpile to CommonJS, eval, take the value. */
function comfyuiApiEval(rel: string, text: string): unknown {
  const js = rel.endsWith(".js") ? text : ts.transpileModule(text, { compilerOptions: { module: ts.ModuleKind.CommonJS } }).outputText;
  const exports = {};
  const module = { exports };
  const require = () => ({ default: {}, z: {} });
  // eslint-disable-next-line no-new-func
  return new Function("exports", "require", "module", "src", "return eval(src)")(exports, require, module, js);
}

test("loadProblem agrees with comfyui-api's eval: the file's last value must be its default export", () => {
  const cases: [string, string, boolean][] = [
    ["ok.ts", `const workflow = { RequestSchema: 1, generateWorkflow: 2 };\nexport default workflow;\n`, true],
    [
      "ok-trailing-decls.ts",
      `const w = { RequestSchema: 1, generateWorkflow: 2 };\nexport default w;\nfunction helper() ` +
        `{}\ninterface X { a: 1 }\ntype Y = string;\nconst z = 3;\n`,
      true,
    ],
    [
      "late-export.ts",
      `const w = { RequestSchema: 1, generateWorkflow: 2 };\nexport default w;\nexport const example = { prompt: "x" };\n`,
      false,
    ],
    ["call-after.ts", `const w = { RequestSchema: 1, generateWorkflow: 2 };\nexport default w;\nconsole.log("loaded");\n`, false],
    ["no-export.ts", `const w = { RequestSchema: 1, generateWorkflow: 2 };\n`, false],
    ["cjs.js", `const w = { RequestSchema: 1, generateWorkflow: 2 };\nmodule.exports = w;\n`, true],
  ];
  for (const [rel, text, loads] of cases) {
    let value: unknown;
    try {
      value = comfyuiApiEval(rel, text.replace(/console\.log\("loaded"\);/, "void 0;"));
    } catch {
      value = undefined;
    }
    const isWorkflow = !!value && typeof value === "object" && "RequestSchema" in value && "generateWorkflow" in value;
    assert.equal(isWorkflow, loads, `${rel}: eval gives ${JSON.stringify(value)}`);
    const why = loadProblem(rel, text);
    assert.equal(why === undefined, loads, `${rel}: ${why}`);
  }
  assert.match(
    loadProblem("late-export.ts", cases[2]![1])!,
    /last statement .*`exports\.example = \{ prompt: "x" \};`.*put `export default <workflow>` last/,
  );
  assert.match(loadProblem("no-export.ts", cases[4]![1])!, /^no default export/);
  assert.match(
    loadProblem("esm.js", `import { z } from "zod";\nexport default { RequestSchema: z.object({}), generateWorkflow: () => ({}) };\n`)!,
    /a \.js workflow is evaluated as it is, as CommonJS/,
  );
  // a named export last happens to eval to the object too, but comfyui-api's shape is `export default`
  // (its examples, its docs); the type-check asks for that, so flow does not lean on the accident
  assert.equal(
    loadProblem("named.ts", `export const w = { RequestSchema: 1, generateWorkflow: 2 };\n`),
    "comfyui-api takes the value of the file's last statement as the workflow, and here that " +
      "is `exports.w = { RequestSchema: 1, generateWorkflow: 2 };`: put `export default " +
      "<workflow>` last",
  );
});

const LISTING = `d checkpoints
f checkpoints/sd15.safetensors
f checkpoints/put_checkpoints_here
d loras
f loras/put_loras_here
d unet
f unet/flux-q8.gguf
d diffusion_models
d vae
d vae/sd15
f vae/sd15/vae.pt
f stray.txt
`;

test("host models: comfyui-api's view (top-level entries, put_*_here left out) and every file", () => {
  const m = parseModelListing(LISTING);
  assert.deepEqual([...m.folders].sort(), ["checkpoints", "diffusion_models", "loras", "unet", "vae"]);
  assert.deepEqual(m.entries.get("checkpoints"), ["sd15.safetensors"]);
  assert.equal(m.entries.get("loras"), undefined);
  assert.deepEqual(m.entries.get("vae"), ["sd15"]);
  assert.ok(m.files.has("vae/sd15/vae.pt") && !m.files.has("stray.txt"));
  assert.deepEqual(searchFolders("diffusion_models"), ["diffusion_models", "unet"]);
  assert.deepEqual(searchFolders("ipadapter"), ["ipadapter"]);
});

test("hostProblems: a missing or empty model folder, a missing file, a missing node class; aliases count", () => {
  const f = analyzeWorkflow("a/wf.ts", WF);
  const problems = hostProblems(f, {
    models: parseModelListing(LISTING),
    classes: new Map([
      ["KSampler", true],
      ["UnetLoaderGGUF", false],
    ]),
  });
  assert.deepEqual(problems, [
    "reads config.models.upscale_models, but models/upscale_models is not a folder on the " +
      'host: comfyui-api would fail to load it ("Cannot read properties of undefined")',
    "metadata.models names loras/style.safetensors, which is not on the host (models:download fetches what workflows name)",
    "VAELoader.vae_name names vae/fixed-vae.safetensors, which is not on the host (models:download fetches what workflows name)",
    "uses node class UnetLoaderGGUF, which the host's ComfyUI does not have (its custom node pack is not installed?)",
  ]);
  const empty = hostProblems(
    analyzeWorkflow("l.ts", `import config from "../config";\nconst e = config.models.loras.enum;\nexport default {};\n`),
    { models: parseModelListing(LISTING) },
  );
  assert.deepEqual(empty, ["reads config.models.loras, but models/loras on the host is empty: its model enum would offer nothing"]);
});

test("a generated endpoint's metadata.requiredModels are its model files (its loader inputs are parameters, not literals)", async () => {
  const { readFileSync } = await import("node:fs");
  const text = readFileSync(new URL("../../workflows/qwen/qwen_img_edit.ts", import.meta.url), "utf8");
  const facts = analyzeWorkflow("qwen/qwen_img_edit.ts", text);
  assert.deepEqual(facts.problems, []);
  assert.ok(
    facts.modelFiles.some((m) => m.folder === "diffusion_models" && m.name === "qwen_image_edit_fp8_e4m3fn.safetensors"),
    JSON.stringify(facts.modelFiles),
  );
  assert.ok(facts.modelFiles.every((m) => m.via === "metadata.requiredModels"));
});

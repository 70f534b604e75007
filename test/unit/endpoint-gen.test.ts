// workflow:generate's core: which inputs of a prompt become request fields, their names, and the
// TypeScript it writes: evaluated here as comfyui-api evaluates it (transpiled to CommonJS, eval'd,
// zod 3's API), laid out as Prettier would, and safe for any string a workflow carries.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { isDeepStrictEqual } from "node:util";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { z as z3 } from "zod/v3";
import { convertUiToApi } from "../../lib/comfy/convert.ts";
import { analyzeWorkflow } from "../../lib/comfy/comfyui-api-workflow.ts";
import { parseObjectInfo, type ObjectInfo } from "../../lib/comfy/data-schemas.ts";
import {
  GENERATED_MARK,
  detectParams,
  generateEndpoint,
  readGeneratedHeader,
  type EndpointParam,
  type GenerateInput,
} from "../../lib/comfy/endpoint-gen.ts";
import type { ApiPrompt } from "../../lib/comfy/workflow-read.ts";
import { typecheckWorkflows } from "../../plugins/comfyui-api/typecheck.ts";
import { REPO } from "../support/cli.ts";
import { SHARED, SKIP_MSG, jsonShared, needs } from "./comfy/shared-data.ts";

const SAMPLERS = ["euler", "euler_ancestral", "dpmpp_2m"];
const SCHEDULERS = ["normal", "simple", "karras"];
/** A few real node definitions, reduced to what the rules read. */
const OI = parseObjectInfo({
  KSampler: {
    input: {
      required: {
        model: ["MODEL"],
        seed: ["INT", { default: 0, min: 0, max: 18446744073709552000, control_after_generate: true }],
        steps: ["INT", { default: 20, min: 1, max: 10000 }],
        cfg: ["FLOAT", { default: 8, min: 0, max: 100, step: 0.1 }],
        sampler_name: [SAMPLERS],
        scheduler: [SCHEDULERS],
        positive: ["CONDITIONING"],
        negative: ["CONDITIONING"],
        latent_image: ["LATENT"],
        denoise: ["FLOAT", { default: 1, min: 0, max: 1, step: 0.01 }],
      },
    },
    output: ["LATENT"],
    display_name: "KSampler",
  },
  CLIPTextEncode: {
    input: { required: { text: ["STRING", { multiline: true }], clip: ["CLIP"] } },
    output: ["CONDITIONING"],
    display_name: "CLIP Text Encode (Prompt)",
  },
  ConditioningZeroOut: { input: { required: { conditioning: ["CONDITIONING"] } }, output: ["CONDITIONING"] },
  CheckpointLoaderSimple: {
    input: { required: { ckpt_name: [["m.safetensors"]] } },
    output: ["MODEL", "CLIP", "VAE"],
    display_name: "Load Checkpoint",
  },
  LoraLoader: {
    input: {
      required: {
        model: ["MODEL"],
        clip: ["CLIP"],
        lora_name: [["l.safetensors"]],
        strength_model: ["FLOAT", { default: 1, min: -100, max: 100, step: 0.01 }],
        strength_clip: ["FLOAT", { default: 1, min: -100, max: 100, step: 0.01 }],
      },
    },
    output: ["MODEL", "CLIP"],
  },
  EmptyLatentImage: {
    input: {
      required: {
        width: ["INT", { default: 512, min: 16, max: 16384, step: 8 }],
        height: ["INT", { default: 512, min: 16, max: 16384, step: 8 }],
        batch_size: ["INT", { default: 1, min: 1, max: 4096 }],
      },
    },
    output: ["LATENT"],
    display_name: "Empty Latent Image",
  },
  LoadImage: {
    input: { required: { image: [["example.png"], { image_upload: true }] } },
    output: ["IMAGE", "MASK"],
    display_name: "Load Image",
  },
  LoadAudio: { input: { required: { audio: [[], { audio_upload: true }] } }, output: ["AUDIO"] },
  PrimitiveInt: { input: { required: { value: ["INT", { min: -9223372036854776000, max: 9223372036854776000 }] } }, output: ["INT"] },
  ModelSamplingAuraFlow: {
    input: { required: { model: ["MODEL"], shift: ["FLOAT", { default: 1.73, min: 0, max: 100 }] } },
    output: ["MODEL"],
  },
  SaveImage: { input: { required: { images: ["IMAGE"], filename_prefix: ["STRING", { default: "ComfyUI" }] } }, output: [] },
});

const META: GenerateInput["metadata"] = {
  requiredNodes: ["KSampler"],
  requiredModels: [{ folder: "checkpoints", name: "m.safetensors" }],
  modelSources: {},
};
const TEMPLATE = { path: "workflow_templates/t.json", sha256: "0".repeat(64) };

/** A txt2img prompt in API format, ids and titles as ComfyUI exports them. */
function txt2img(): ApiPrompt {
  return JSON.parse(
    JSON.stringify({
      "3": {
        class_type: "KSampler",
        inputs: {
          seed: 42,
          steps: 20,
          cfg: 7,
          sampler_name: "euler",
          scheduler: "normal",
          denoise: 1,
          model: ["4", 0],
          positive: ["6", 0],
          negative: ["7", 0],
          latent_image: ["5", 0],
        },
        _meta: { title: "KSampler" },
      },
      "4": { class_type: "CheckpointLoaderSimple", inputs: { ckpt_name: "m.safetensors" }, _meta: { title: "Load Checkpoint" } },
      "5": { class_type: "EmptyLatentImage", inputs: { width: 512, height: 768, batch_size: 1 }, _meta: { title: "Empty Latent Image" } },
      "6": { class_type: "CLIPTextEncode", inputs: { text: "a cat", clip: ["4", 1] }, _meta: { title: "CLIP Text Encode (Prompt)" } },
      "7": { class_type: "CLIPTextEncode", inputs: { text: "blurry", clip: ["4", 1] }, _meta: { title: "CLIP Text Encode (Prompt)" } },
      "8": { class_type: "SaveImage", inputs: { filename_prefix: "out", images: ["3", 0] }, _meta: { title: "Save Image" } },
    }),
  );
}

const summary = (ps: EndpointParam[]) => ps.map((p) => `${p.name}:${p.kind}`);

interface Loaded {
  RequestSchema: z3.ZodObject<any>;
  generateWorkflow: (input: unknown) => Record<string, unknown>;
  summary?: string;
  description?: string;
}

/** As comfyui-api loads a workflow: transpile to CommonJS, eval, take the last statement's value; zod 3. */
function load(source: string, models: Record<string, string[]> = {}, oi: ObjectInfo = OI): Loaded {
  const out = ts.transpileModule(source, {
    compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2021 },
    reportDiagnostics: true,
  });
  assert.deepEqual(out.diagnostics?.map((d) => ts.flattenDiagnosticMessageText(d.messageText, "\n")) ?? [], []);
  // comfyui-api lists KSampler's samplers and schedulers
  const list = (input: string) => z3.enum(oi.KSampler!.input.required![input]![0] as [string, ...string[]]);
  const config = {
    samplers: list("sampler_name"),
    schedulers: list("scheduler"),
    models: Object.fromEntries(
      Object.entries(models).map(([f, all]) => [f, { dir: `/m/${f}`, all, enum: z3.enum(all as [string, ...string[]]) }]),
    ),
  };
  const req = (m: string) => {
    if (m === "zod") return { z: z3 };
    if (m === "../types") return {};
    if (m === "../config") return { __esModule: true, default: config };
    throw new Error(`the workflow requires ${m}`);
  };
  const module = { exports: {} };
  const run = new Function("exports", "require", "module", "__js", "return eval(__js);");
  return run(module.exports, req, module, out.outputText) as Loaded;
}

/** The request that reproduces the export: defaults, plus the exported seed and media values. */
function exportedRequest(params: EndpointParam[], prompt: ApiPrompt): Record<string, unknown> {
  const req: Record<string, unknown> = {};
  for (const p of params)
    if (p.kind === "seed" || p.kind === "media")
      req[p.name] = (prompt[p.targets[0]!.node]!.inputs as Record<string, unknown>)[p.targets[0]!.input];
  return req;
}

async function prettierFormat(source: string): Promise<string> {
  const prettier = await import("prettier");
  const options = (await prettier.resolveConfig(join(REPO, "workflows/x.ts"))) ?? {};
  return prettier.format(source, { ...options, parser: "typescript" });
}

function gen(prompt: ApiPrompt, more: Partial<GenerateInput> = {}, objectInfo: ObjectInfo = OI) {
  return generateEndpoint({ prompt, objectInfo, template: TEMPLATE, metadata: META, summary: "Text to image", ...more });
}

test("a txt2img prompt: its parameters, the file's layout, and a round trip through comfyui-api's loading", async () => {
  const prompt = txt2img();
  const before = JSON.stringify(prompt);
  const g = gen(prompt);
  assert.equal(JSON.stringify(prompt), before, "the prompt is not changed");
  assert.deepEqual(summary(g.params), [
    "prompt:string",
    "negative_prompt:string",
    "seed:seed",
    "steps:int",
    "cfg:float",
    "sampler_name:sampler",
    "scheduler:scheduler",
    "denoise:float",
    "ckpt_name:model",
    "width:int",
    "height:int",
    "batch_size:int",
  ]);
  const by = Object.fromEntries(g.params.map((p) => [p.name, p]));
  assert.deepEqual(by.steps, {
    name: "steps",
    targets: [{ node: "3", input: "steps" }],
    kind: "int",
    default: 20,
    required: false,
    min: 1,
    max: 10000,
    description: "Number of sampling steps (node 3: KSampler.steps)",
  });
  assert.equal(by.seed!.default, 42, "the exported seed is recorded");
  assert.equal(by.seed!.max, undefined, "a bound past 2^53 is ComfyUI's 'unbounded'");
  assert.deepEqual([by.ckpt_name!.folder, by.ckpt_name!.default], ["checkpoints", "m.safetensors"]);
  assert.deepEqual([by.width!.step, by.width!.default], [8, 512]);

  const lines = g.source.split("\n");
  assert.equal(lines[0], GENERATED_MARK);
  assert.deepEqual(lines.slice(-3), ["", "export default workflow;", ""]);
  assert.match(g.source, /^import config from "\.\.\/config";$/m);
  const seed = [
    "  seed: z",
    "    .number()",
    "    .int()",
    "    .min(0)",
    "    .optional()",
    "    .default(() => Math.floor(Math.random() * 1e15))",
  ];
  assert.ok(g.source.includes(seed.join("\n")), "the seed's default is a fresh random number, as comfyui-api's examples have it");
  assert.ok(g.source.indexOf("export const metadata = {") < g.source.indexOf("const workflow: Workflow = {"));
  const imports = [...g.source.matchAll(/^import .* from "(.*)";$/gm)].map((m) => m[1]);
  assert.deepEqual(imports, ["zod", "../types", "../config"]);
  assert.deepEqual(analyzeWorkflow("t.ts", g.source).problems, []);

  const w = load(g.source, { checkpoints: ["m.safetensors", "other.safetensors"] });
  assert.equal(w.summary, "Text to image");
  assert.deepEqual(w.generateWorkflow(w.RequestSchema.parse(exportedRequest(g.params, prompt))), prompt);
  // a request without a seed gets a fresh one; a field sets exactly its input
  const changed = w.generateWorkflow(w.RequestSchema.parse({ steps: 9, ckpt_name: "other.safetensors" })) as ApiPrompt;
  assert.equal(changed["3"]!.inputs.steps, 9);
  assert.equal(changed["4"]!.inputs.ckpt_name, "other.safetensors");
  assert.equal(typeof changed["3"]!.inputs.seed, "number");
  assert.throws(() => w.RequestSchema.parse({ steps: 0 }), /greater than or equal to 1/);
  assert.throws(() => w.RequestSchema.parse({ sampler_name: "nope" }));

  assert.equal(await prettierFormat(g.source), g.source, "Prettier leaves a generated file as it is");
});

test("byte-identical regeneration, overrides kept through the header", () => {
  const overrides = {
    rename: { steps: "num_steps" },
    hide: ["batch_size"],
    add: [{ name: "filename", node: "8", input: "filename_prefix" }],
  };
  const a = gen(txt2img(), { overrides });
  const b = gen(txt2img(), { overrides: structuredClone(overrides) });
  assert.equal(a.source, b.source);
  const header = readGeneratedHeader(a.source);
  assert.deepEqual(header, { template: TEMPLATE.path, sha256: TEMPLATE.sha256, overrides });
  const again = gen(txt2img(), { overrides: header!.overrides });
  assert.equal(again.source, a.source, "regenerating with the header's overrides gives the same bytes");
  assert.notEqual(gen(txt2img()).source, a.source);
  assert.equal(readGeneratedHeader(gen(txt2img()).source)?.overrides, undefined);
});

test("overrides: rename, hide, add, a rename that merges two fields; names that cannot work are refused", () => {
  const prompt = txt2img();
  const g = gen(prompt, {
    overrides: {
      rename: { steps: "num_steps", negative_prompt: "avoid" },
      hide: ["cfg", "batch_size"],
      add: [{ name: "filename", node: "8", input: "filename_prefix", description: "Output file prefix" }],
    },
  });
  const names = g.params.map((p) => p.name);
  assert.deepEqual(names, [
    "prompt",
    "avoid",
    "seed",
    "num_steps",
    "sampler_name",
    "scheduler",
    "denoise",
    "ckpt_name",
    "width",
    "height",
    "filename",
  ]);
  assert.deepEqual(g.params.at(-1), {
    name: "filename",
    targets: [{ node: "8", input: "filename_prefix" }],
    kind: "string",
    default: "out",
    required: false,
    description: "Output file prefix",
  });
  const w = load(g.source, { checkpoints: ["m.safetensors"] });
  const out = w.generateWorkflow(w.RequestSchema.parse({ seed: 42, filename: "x", avoid: "dogs" })) as ApiPrompt;
  assert.equal(out["8"]!.inputs.filename_prefix, "x");
  assert.equal(out["7"]!.inputs.text, "dogs");
  assert.equal(out["3"]!.inputs.cfg, 7, "a hidden parameter stays as exported");
  assert.equal(out["5"]!.inputs.batch_size, 1);
  assert.deepEqual(w.generateWorkflow(w.RequestSchema.parse({ seed: 42 })), prompt);

  // one name for two prompt texts: one field sets both
  const merged = gen(prompt, { overrides: { rename: { negative_prompt: "prompt" } } });
  const p = merged.params.find((x) => x.name === "prompt")!;
  assert.deepEqual(p.targets, [
    { node: "6", input: "text" },
    { node: "7", input: "text" },
  ]);
  const m = load(merged.source, { checkpoints: ["m.safetensors"] }).generateWorkflow({ prompt: "same", seed: 1 }) as ApiPrompt;
  assert.deepEqual([m["6"]!.inputs.text, m["7"]!.inputs.text], ["same", "same"]);

  const refused = (o: GenerateInput["overrides"], re: RegExp) =>
    assert.throws(() => detectParams({ prompt, objectInfo: OI, overrides: o }), re);
  refused({ hide: ["nope"] }, /hide: no generated parameter "nope" \(have: prompt, negative_prompt, seed/);
  refused({ rename: { nope: "x" } }, /rename: no generated parameter "nope"/);
  refused({ rename: { steps: "9lives" } }, /"9lives" is not a usable parameter name/);
  refused({ rename: { steps: "constructor" } }, /"constructor" is not a usable parameter name/);
  refused({ rename: { steps: "prompt" } }, /"prompt" would stand for a string and a int parameter/);
  refused({ add: [{ name: "model", node: "3", input: "model" }] }, /node 3 input model is a link/);
  refused({ add: [{ name: "x", node: "3", input: "steps" }] }, /is parameter "steps" already/);
  refused({ add: [{ name: "x", node: "99", input: "a" }] }, /no node "99"/);
  refused({ add: [{ name: "x", node: "__proto__", input: "a" }] }, /no node "__proto__"/);
  refused({ add: [{ name: "seed", node: "8", input: "filename_prefix" }] }, /a parameter named "seed" exists already/);
});

test("names: prompt roles follow the links, not titles; titles name a node's only parameter; equal names by node id", () => {
  const prompt: ApiPrompt = JSON.parse(
    JSON.stringify({
      "10": {
        class_type: "KSampler",
        inputs: { seed: 1, steps: 30, positive: ["2", 0], negative: ["11", 0] },
        _meta: { title: "Refiner" },
      },
      "3": {
        class_type: "KSampler",
        inputs: { seed: 2, steps: ["20", 0], positive: ["2", 0], negative: ["1", 0] },
        _meta: { title: "Base" },
      },
      // titled "Positive" but wired to negative: the wiring decides
      "1": { class_type: "CLIPTextEncode", inputs: { text: "bad" }, _meta: { title: "Positive" } },
      "2": { class_type: "CLIPTextEncode", inputs: { text: "good" }, _meta: { title: "Negative" } },
      // reaches negative only through a zero-out: still a prompt text, named by that role
      "11": { class_type: "ConditioningZeroOut", inputs: { conditioning: ["12", 0] } },
      "12": { class_type: "CLIPTextEncode", inputs: { text: "ignored" }, _meta: { title: "CLIP Text Encode (Prompt)" } },
      "20": { class_type: "PrimitiveInt", inputs: { value: 25 }, _meta: { title: "Base Steps" } },
      "5": { class_type: "LoadImage", inputs: { image: "a.png" }, _meta: { title: "Photo" } },
      "6": { class_type: "LoadImage", inputs: { image: "b.png" }, _meta: { title: "Photo" } },
      "7": { class_type: "LoadImage", inputs: { image: "c.png" }, _meta: { title: "Style Reference" } },
      "8": { class_type: "LoadAudio", inputs: { audio: "v.wav" }, _meta: { title: "LoadAudio" } },
      "9:4": { class_type: "LoraLoader", inputs: { lora_name: "l.safetensors", strength_model: 0.8, strength_clip: 1 } },
      "9": { class_type: "SaveImage", inputs: { filename_prefix: "x", image: "not a loader: it saves" } },
    }),
  );
  const ps = detectParams({ prompt, objectInfo: OI });
  const row = (p: EndpointParam) => `${p.name}:${p.kind}@${p.targets.map((t) => `${t.node}.${t.input}`).join("+")}`;
  assert.deepEqual(ps.map(row), [
    "prompt:string@2.text",
    "negative_prompt:string@1.text",
    "negative_prompt_2:string@12.text",
    "image:media@5.image",
    "image_2:media@6.image",
    "style_reference:media@7.image",
    "audio:media@8.audio",
    "seed:seed@3.seed",
    "lora_name:model@9:4.lora_name",
    "lora_strength_model:float@9:4.strength_model",
    "lora_strength_clip:float@9:4.strength_clip",
    "seed_2:seed@10.seed",
    "steps:int@10.steps",
    "base_steps:int@20.value",
  ]);
  const prim = ps.find((p) => p.name === "base_steps")!;
  assert.deepEqual([prim.min, prim.max, prim.default], [1, 10000, 25], "a primitive takes the bounds of the input it feeds");
  assert.equal(ps.find((p) => p.name === "image")!.required, true);
  assert.equal(
    Object.hasOwn(
      ps.find((p) => p.name === "image")!,
      "default",
    ),
    false,
  );
  assert.match(ps.find((p) => p.name === "image")!.description, /URL or base64/);

  // titles given by the caller (from the UI file) win over _meta
  const titled = detectParams({ prompt, objectInfo: OI, titles: { "7": "Load Image", "8": "Voice", "20": "Steps" } });
  assert.deepEqual(
    titled.filter((p) => ["7", "8", "20"].includes(p.targets[0]!.node)).map((p) => p.name),
    ["image_3", "voice", "steps_2"],
    "a title equal to the display name is no title; a title name another parameter has is suffixed",
  );
});

test("a hostile prompt: the source is valid TypeScript and carries every value exactly", async () => {
  const nasty = "end */ `tick` ${process.exit(1)} \"dq\" 'sq' \\ back\\slash\nline\r\u2028\u2029\u0000 é 漢 😀 \ud800 </script>";
  // JSON.parse: "__proto__" stays an own key, as it does in a parsed export
  const prompt: ApiPrompt = JSON.parse(
    JSON.stringify({
      "1": { class_type: "CheckpointLoaderSimple", inputs: { ckpt_name: "m */`${x}`.safetensors" } },
      "2": {
        class_type: "KSampler",
        inputs: {
          seed: 5,
          steps: 20,
          cfg: 7,
          sampler_name: "euler",
          scheduler: "normal",
          denoise: 1,
          positive: ["P", 0],
          negative: ["3", 0],
        },
        _meta: { title: nasty },
      },
      "3": { class_type: "CLIPTextEncode", inputs: { text: "`${a}`", clip: ["1", 1] }, _meta: { title: "*/ //" } },
      "6": { class_type: "LoadImage", inputs: { image: "x.png" }, _meta: { title: nasty } },
      "5": {
        class_type: 'Weird"Node*/',
        inputs: {
          'we"ird */ key': nasty,
          constructor: { p: 1 },
          toString: [1, "x", null, true, { a: "b" }],
          "${a}": 1e21,
          n: -0.5,
          e: 1e-7,
        },
        _meta: { title: "constructor" },
      },
      'a"b\n': { class_type: "SaveImage", inputs: { filename_prefix: nasty, images: ["5", 0] } },
    }).replace('"P"', '"__proto__"'),
  );
  Object.defineProperty(prompt, "__proto__", {
    value: { class_type: "CLIPTextEncode", inputs: { text: nasty, clip: ["1", 1] }, _meta: { title: nasty } },
    enumerable: true,
    configurable: true,
    writable: true,
  });
  const ps = detectParams({ prompt, objectInfo: OI });
  assert.deepEqual(
    ps.filter((p) => p.kind === "string" || p.kind === "media").map((p) => `${p.name}@${p.targets[0]!.node}`),
    ["prompt@__proto__", "negative_prompt@3", "end_tick_process_exit_1_dq_sq_back_slash_line_e_script@6"],
  );
  const template = { path: "evil\n*/ `${x}` \u2028.json", sha256: '"*/' };
  const g = generateEndpoint({
    prompt,
    objectInfo: OI,
    template,
    summary: nasty,
    description: nasty,
    metadata: {
      requiredNodes: [nasty],
      requiredModels: [{ folder: "a*/", name: nasty }],
      modelSources: JSON.parse(`{"__proto__": ${JSON.stringify(nasty)}}`),
    },
    overrides: { add: [{ name: "weird", node: "5", input: 'we"ird */ key', description: nasty }] },
  });
  assert.ok(!/[^\x0a\x20-\x7e]/.test(g.source), "every character is printable ASCII (or a newline)");
  assert.deepEqual(analyzeWorkflow("t.ts", g.source).problems, []);
  const w = load(g.source, { checkpoints: ["m */`${x}`.safetensors"] });
  assert.equal(w.summary, nasty);
  const out = w.generateWorkflow(w.RequestSchema.parse({ seed: 5, end_tick_process_exit_1_dq_sq_back_slash_line_e_script: "x.png" }));
  assert.equal(Object.getPrototypeOf(out), Object.prototype, "a node id __proto__ did not become the prototype");
  assert.ok(Object.hasOwn(out, "__proto__"));
  assert.deepEqual(out, prompt);
  const added = w.generateWorkflow(w.RequestSchema.parse({ weird: "ok", end_tick_process_exit_1_dq_sq_back_slash_line_e_script: "y" }));
  assert.equal((added["5"] as ApiPrompt[string]).inputs['we"ird */ key'], "ok");
  assert.equal(readGeneratedHeader(g.source)?.template, template.path);
  assert.equal(readGeneratedHeader(g.source)?.sha256, template.sha256);
  assert.deepEqual(readGeneratedHeader(g.source)?.overrides?.add?.[0]?.description, nasty);
  assert.equal(await prettierFormat(g.source), g.source);
});

test("readGeneratedHeader: only a file that starts with the mark and whose header lines parse", () => {
  const src = gen(txt2img()).source;
  assert.equal(readGeneratedHeader(src.replace(GENERATED_MARK, "// my own workflow")), undefined);
  assert.equal(readGeneratedHeader(src.replace('// template: "', "// template: ")), undefined);
  assert.equal(readGeneratedHeader(src.replace(/^\/\/ sha256: .*\n/m, "")), undefined);
  assert.equal(readGeneratedHeader(src.replace("// Do not edit", '// overrides: {"hide": "x"}\n// Do not edit')), undefined);
  assert.deepEqual(readGeneratedHeader(src.replaceAll("\n", "\r\n")), { template: TEMPLATE.path, sha256: TEMPLATE.sha256 });
});

// ---------- the official templates, converted with the real object_info ----------

const REAL = [
  "comfyui/object_info.json",
  "templates/image_qwen_image.json",
  "templates/image_qwen_image_edit.json",
  "templates/flux_depth_lora_example.json",
];
let realOi: ObjectInfo | undefined;
function real(name: string) {
  realOi ??= parseObjectInfo(jsonShared("comfyui/object_info.json"));
  const { prompt, issues } = convertUiToApi(jsonShared(`templates/${name}.json`), realOi);
  assert.deepEqual(issues, []);
  const models = new Map<string, string[]>();
  const g = generateEndpoint({
    prompt,
    objectInfo: realOi,
    template: { path: `workflow_templates/${name}.json`, sha256: "f".repeat(64) },
    metadata: META,
  });
  for (const p of g.params) if (p.kind === "model") models.set(p.folder!, [...(models.get(p.folder!) ?? []), String(p.default)]);
  return { prompt, g, models: Object.fromEntries(models) };
}
const kinds = (ps: EndpointParam[]) => Object.fromEntries(ps.map((p) => [p.name, p.kind]));

test(
  "templates: names and kinds on qwen image, qwen image edit, flux depth LoRA; each loads and round-trips",
  { skip: needs(...REAL) },
  async () => {
    const qwen = real("image_qwen_image");
    assert.deepEqual(kinds(qwen.g.params), {
      prompt: "string",
      negative_prompt: "string",
      seed: "seed",
      steps: "int",
      cfg: "float",
      sampler_name: "sampler",
      scheduler: "scheduler",
      denoise: "float",
      unet_name: "model",
      clip_name: "model",
      vae_name: "model",
      width: "int",
      height: "int",
      batch_size: "int",
    });
    const q = Object.fromEntries(qwen.g.params.map((p) => [p.name, p]));
    assert.deepEqual([q.unet_name!.folder, q.clip_name!.folder, q.vae_name!.folder], ["diffusion_models", "text_encoders", "vae"]);
    assert.deepEqual([q.width!.default, q.width!.min, q.width!.max, q.width!.step], [1328, 16, 16384, 16]);
    assert.equal(q.prompt!.targets[0]!.node, "6");

    const edit = real("image_qwen_image_edit");
    const e = Object.fromEntries(edit.g.params.map((p) => [p.name, p]));
    assert.deepEqual([e.image!.kind, e.image!.required, e.image!.targets], ["media", true, [{ node: "78", input: "image" }]]);
    assert.deepEqual(
      [e.prompt!.targets[0], e.negative_prompt!.targets[0]],
      [
        { node: "76", input: "prompt" },
        { node: "77", input: "prompt" },
      ],
    );
    assert.equal(e.width, undefined, "no empty latent: the size comes from the image");

    const flux = real("flux_depth_lora_example");
    assert.deepEqual(kinds(flux.g.params), {
      prompt: "string",
      negative_prompt: "string",
      image: "media",
      seed: "seed",
      steps: "int",
      cfg: "float",
      sampler_name: "sampler",
      scheduler: "scheduler",
      denoise: "float",
      unet_name: "model",
      vae_name: "model",
      clip_name1: "model",
      clip_name2: "model",
      lora_name: "model",
      lora_strength_model: "float",
    });
    const f = Object.fromEntries(flux.g.params.map((p) => [p.name, p]));
    assert.deepEqual([f.lora_strength_model!.default, f.lora_strength_model!.min, f.lora_strength_model!.max], [1, -100, 100]);
    assert.equal(f.lora_name!.folder, "loras");
    assert.equal(f.prompt!.targets[0]!.node, "23", "the positive text reaches the sampler through FluxGuidance and InstructPixToPix");

    for (const t of [qwen, edit, flux]) {
      const w = load(t.g.source, t.models, realOi);
      assert.deepEqual(w.generateWorkflow(w.RequestSchema.parse(exportedRequest(t.g.params, t.prompt))), t.prompt);
      assert.equal(await prettierFormat(t.g.source), t.g.source);
      assert.deepEqual(analyzeWorkflow("t.ts", t.g.source).problems, []);
    }
  },
);

const VENDOR = resolve(fileURLToPath(new URL("../../", import.meta.url)), "../shared/vendor/comfyui-api");
test(
  "templates: the generated files type-check against comfyui-api's types",
  { skip: needs(...REAL) || (existsSync(join(VENDOR, "src/types.ts")) ? false : `no comfyui-api source at ${VENDOR}`) },
  () => {
    const read = (f: string) => readFileSync(join(VENDOR, f), "utf8");
    const files = ["image_qwen_image", "image_qwen_image_edit", "flux_depth_lora_example"].map((n) => ({
      rel: `t/${n}.ts`,
      text: real(n).g.source,
    }));
    files.push({ rel: "t/txt2img.ts", text: gen(txt2img()).source });
    const problems = typecheckWorkflows(files, {
      types: read("src/types.ts"),
      config: read("src/config.ts"),
      packageJson: read("package.json"),
    });
    assert.deepEqual(problems, []);
  },
);

test("every template that converts: a file Prettier leaves as it is, that loads and round-trips", { skip: SKIP_MSG }, async () => {
  realOi ??= parseObjectInfo(jsonShared("comfyui/object_info.json"));
  const names = readdirSync(join(SHARED, "templates")).filter((f) => f.endsWith(".json"));
  const failed: string[] = [];
  let converted = 0;
  for (const f of names.sort()) {
    const { prompt, issues } = convertUiToApi(jsonShared(`templates/${f}`), realOi);
    if (issues.some((i) => i.kind === "missing-class")) continue; // a node the object_info lacks: the proof's count says which
    converted++;
    const g = generateEndpoint({ prompt, objectInfo: realOi, template: { path: f, sha256: "0".repeat(64) }, metadata: META, summary: f });
    const models: Record<string, string[]> = {};
    for (const p of g.params) if (p.kind === "model") (models[p.folder!] ??= []).push(String(p.default));
    const w = load(g.source, models, realOi);
    if (!isDeepStrictEqual(w.generateWorkflow(w.RequestSchema.parse(exportedRequest(g.params, prompt))), prompt))
      failed.push(`${f}: round trip`);
    if ((await prettierFormat(g.source)) !== g.source) failed.push(`${f}: Prettier would change it`);
  }
  assert.deepEqual(failed, []);
  assert.ok(converted >= 39, `${converted} of ${names.length} templates convert`);
});

// The proof of an endpoint file (issue 14 item 4): type-check against comfyui-api's real
// types.ts / config.ts, the round trip to the exported prompt, each parameter changing exactly the
// inputs it names, and the looser rule for a file an LLM wrote. Endpoint files here are written by
// hand; the generator's own output is proven over the templates corpus when lib/comfy/endpoint-gen.ts is there.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { ApiSources } from "../../plugins/comfyui-api/typecheck.ts";
import type { ObjectInfo } from "../../lib/comfy/data-schemas.ts";
import type { ApiPrompt } from "../../lib/comfy/workflow-read.ts";
import { convertUiToApi } from "../../lib/comfy/convert.ts";
import { generateEndpoint } from "../../lib/comfy/endpoint-gen.ts";
import { proveEndpoint, proveEndpoints, type ProofInput, type ProofParam } from "../../plugins/workflow/endpoint-proof.ts";
import { SHARED, SKIP_MSG, dataPath, jsonShared, needs } from "./comfy/shared-data.ts";

const VENDOR = resolve(fileURLToPath(new URL("../../", import.meta.url)), "../shared/vendor/comfyui-api");
const skip = existsSync(join(VENDOR, "src/types.ts")) ? false : `no comfyui-api source at ${VENDOR}`;
const read = (f: string) => readFileSync(join(VENDOR, f), "utf8");

// A small object_info: what the config stand-in reads (samplers, schedulers, the checkpoints folder).
const OBJECT_INFO = {
  KSampler: {
    input: { required: { sampler_name: [["euler", "dpmpp_2m", "heun"]], scheduler: [["normal", "karras", "simple"]] } },
  },
  CheckpointLoaderSimple: { input: { required: { ckpt_name: [["sd_xl_base_1.0.safetensors", "other.safetensors"]] } } },
} as unknown as ObjectInfo;

const PROMPT: ApiPrompt = {
  "4": { class_type: "CheckpointLoaderSimple", inputs: { ckpt_name: "sd_xl_base_1.0.safetensors" }, _meta: { title: "Load" } },
  "5": { class_type: "EmptyLatentImage", inputs: { width: 1024, height: 1024, batch_size: 1 } },
  "6": { class_type: "CLIPTextEncode", inputs: { text: "a cat on a mat", clip: ["4", 1] } },
  "7": { class_type: "CLIPTextEncode", inputs: { text: "blurry", clip: ["4", 1] } },
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
  },
  "8": { class_type: "VAEDecode", inputs: { samples: ["3", 0], vae: ["4", 2] } },
  "9": { class_type: "SaveImage", inputs: { filename_prefix: "ComfyUI", images: ["8", 0] } },
  "10": { class_type: "LoadImage", inputs: { image: "example.png" } },
};

const p = (name: string, kind: ProofParam["kind"], node: string, input: string, extra: Partial<ProofParam> = {}): ProofParam => ({
  name,
  kind,
  targets: [{ node, input }],
  required: false,
  description: name,
  ...extra,
});

const PARAMS: ProofParam[] = [
  p("prompt", "string", "6", "text", { required: true }),
  p("negative_prompt", "string", "7", "text"),
  p("seed", "seed", "3", "seed"),
  p("steps", "int", "3", "steps", { min: 1, max: 10000 }),
  p("cfg", "float", "3", "cfg", { min: 0, max: 100, step: 0.1 }),
  p("sampler_name", "sampler", "3", "sampler_name"),
  p("scheduler", "scheduler", "3", "scheduler"),
  p("denoise", "float", "3", "denoise", { min: 0, max: 1, step: 0.01 }),
  p("width", "int", "5", "width", { min: 16, max: 16384, step: 8 }),
  p("height", "int", "5", "height", { min: 16, max: 16384, step: 8 }),
  p("checkpoint", "model", "4", "ckpt_name", { folder: "checkpoints" }),
  p("image", "media", "10", "image", { required: true }),
];

// Written by hand the way the generator writes it: a comfyui-api workflow (zod 3 API, ../types, ../config).
const GOOD = `import { z } from "zod";
import { ComfyPrompt, Workflow } from "../types";
import config from "../config";

const RequestSchema = z.object({
  prompt: z.string().describe("Positive prompt"),
  negative_prompt: z.string().optional().default("blurry").describe("Negative prompt"),
  seed: z
    .number()
    .int()
    .min(0)
    .optional()
    .default(() => Math.floor(Math.random() * 1000000000000000))
    .describe("Seed"),
  steps: z.number().int().min(1).max(10000).optional().default(20).describe("Steps"),
  cfg: z.number().min(0).max(100).optional().default(7).describe("CFG"),
  sampler_name: config.samplers.optional().default("euler").describe("Sampler"),
  scheduler: config.schedulers.optional().default("normal").describe("Scheduler"),
  denoise: z.number().min(0).max(1).optional().default(1).describe("Denoise"),
  width: z.number().int().min(16).max(16384).optional().default(1024).describe("Width"),
  height: z.number().int().min(16).max(16384).optional().default(1024).describe("Height"),
  checkpoint: config.models.checkpoints.enum.optional().default("sd_xl_base_1.0.safetensors").describe("Checkpoint"),
  image: z.string().describe("Reference image: a URL or base64"),
});

type InputType = z.infer<typeof RequestSchema>;

function generateWorkflow(input: InputType): ComfyPrompt {
  return {
    "4": { inputs: { ckpt_name: input.checkpoint }, class_type: "CheckpointLoaderSimple", _meta: { title: "Load" } },
    "5": { inputs: { width: input.width, height: input.height, batch_size: 1 }, class_type: "EmptyLatentImage" },
    "6": { inputs: { text: input.prompt, clip: ["4", 1] }, class_type: "CLIPTextEncode" },
    "7": { inputs: { text: input.negative_prompt, clip: ["4", 1] }, class_type: "CLIPTextEncode" },
    "3": {
      inputs: {
        seed: input.seed,
        steps: input.steps,
        cfg: input.cfg,
        sampler_name: input.sampler_name,
        scheduler: input.scheduler,
        denoise: input.denoise,
        model: ["4", 0],
        positive: ["6", 0],
        negative: ["7", 0],
        latent_image: ["5", 0],
      },
      class_type: "KSampler",
    },
    "8": { inputs: { samples: ["3", 0], vae: ["4", 2] }, class_type: "VAEDecode" },
    "9": { inputs: { filename_prefix: "ComfyUI", images: ["8", 0] }, class_type: "SaveImage" },
    "10": { inputs: { image: input.image }, class_type: "LoadImage" },
  };
}

export const metadata = { requiredNodes: [], requiredModels: [], modelSources: {} };

const workflow: Workflow = { RequestSchema, generateWorkflow, summary: "Text to image", description: "A test endpoint" };

export default workflow;
`;

/** GOOD with one exact piece of text replaced (the replacement must happen: a typo in a test fails it). */
function edit(from: string, to: string, src = GOOD): string {
  assert.ok(src.includes(from), `fixture does not contain ${from}`);
  return src.replace(from, to);
}

// An LLM's take on the same workflow: other field names, its own defaults, its own layout.
const LLM = `import { z } from "zod";
import { ComfyPrompt, Workflow } from "../types";
import config from "../config";

const RequestSchema = z.object({
  positive: z.string().describe("What to draw"),
  negative: z.string().optional().default("low quality").describe("What to avoid"),
  noise_seed: z.number().int().optional().default(() => Math.floor(Math.random() * 1e9)).describe("Seed"),
  num_steps: z.number().int().min(1).max(150).optional().default(30).describe("Steps"),
  guidance: z.number().min(0).max(30).optional().default(7).describe("CFG"),
  sampler: config.samplers.optional().default("euler").describe("Sampler"),
  size: z.number().int().min(256).max(4096).optional().default(1024).describe("Width and height"),
  reference: z.string().describe("Image URL"),
});

function generateWorkflow(input: z.infer<typeof RequestSchema>): ComfyPrompt {
  const prompt: ComfyPrompt = {};
  prompt["4"] = { class_type: "CheckpointLoaderSimple", inputs: { ckpt_name: "sd_xl_base_1.0.safetensors" } };
  prompt["5"] = { class_type: "EmptyLatentImage", inputs: { width: input.size, height: input.size, batch_size: 1 } };
  prompt["6"] = { class_type: "CLIPTextEncode", inputs: { text: input.positive, clip: ["4", 1] } };
  prompt["7"] = { class_type: "CLIPTextEncode", inputs: { text: input.negative, clip: ["4", 1] } };
  prompt["3"] = {
    class_type: "KSampler",
    inputs: {
      seed: input.noise_seed,
      steps: input.num_steps,
      cfg: input.guidance,
      sampler_name: input.sampler,
      scheduler: "normal",
      denoise: 1,
      model: ["4", 0],
      positive: ["6", 0],
      negative: ["7", 0],
      latent_image: ["5", 0],
    },
  };
  prompt["8"] = { class_type: "VAEDecode", inputs: { samples: ["3", 0], vae: ["4", 2] } };
  prompt["9"] = { class_type: "SaveImage", inputs: { filename_prefix: "ComfyUI", images: ["8", 0] } };
  prompt["10"] = { class_type: "LoadImage", inputs: { image: input.reference } };
  return prompt;
}

const workflow: Workflow = { RequestSchema, generateWorkflow };
export default workflow;
`;

describe("endpoint proof with comfyui-api 1.18.0's types", { skip }, () => {
  let api: ApiSources;
  const input = (source: string, params: ProofParam[] | null = PARAMS, rel = "test/txt2img.ts"): ProofInput => ({
    rel,
    source,
    prompt: PROMPT,
    params: params ?? undefined,
    objectInfo: OBJECT_INFO,
    api,
  });
  before(() => {
    api = { types: read("src/types.ts"), config: read("src/config.ts"), packageJson: read("package.json") };
  });

  test("a correct file passes every check", async (t) => {
    const t0 = performance.now();
    const r = await proveEndpoint(input(GOOD));
    t.diagnostic(`proof of one file: ${((performance.now() - t0) / 1000).toFixed(1)}s`);
    assert.deepEqual(r.problems, []);
    assert.deepEqual(r.checks, { typecheck: true, roundTrip: true, params: true });
    assert.equal(r.ok, true);
  });

  test("a generateWorkflow that drops an input fails the round trip, naming node and input", async () => {
    const r = await proveEndpoint(input(edit("        denoise: input.denoise,\n", "")));
    assert.equal(r.checks.roundTrip, false);
    assert.equal(r.ok, false);
    assert.ok(r.problems.includes("round trip: 3.denoise (KSampler) is missing (the export has 1)"), r.problems.join("\n"));
    // and the parameter left with nothing to set is named too
    assert.ok(r.problems.includes(`param "denoise" (set to 0.99) changes nothing; it names 3.denoise`), r.problems.join("\n"));
    assert.equal(r.checks.typecheck, true);
  });

  test("a fixed value that differs, and a node too many, are round-trip problems", async () => {
    const r = await proveEndpoint(
      input(
        edit(
          `filename_prefix: "ComfyUI"`,
          `filename_prefix: "flow"`,
          edit(`"10": {`, `"11": { inputs: {}, class_type: "Note" },\n    "10": {`),
        ),
      ),
    );
    assert.equal(r.checks.roundTrip, false);
    assert.ok(r.problems.includes(`round trip: 9.filename_prefix (SaveImage) is "flow", the export has "ComfyUI"`), r.problems.join("\n"));
    assert.ok(r.problems.includes("round trip: node 11 (Note) is not in the export"), r.problems.join("\n"));
    assert.equal(r.checks.params, true, "the parameters still do what they say");
  });

  test("a parameter wired to the wrong input fails the per-parameter check, naming it", async () => {
    // width and height are both 1024 in the export: swapped, the round trip cannot tell
    const r = await proveEndpoint(input(edit("width: input.width, height: input.height", "width: input.height, height: input.width")));
    assert.equal(r.checks.roundTrip, true);
    assert.equal(r.checks.params, false);
    assert.deepEqual(r.problems, [
      `param "width" (set to 1025) changes 5.height; it names 5.width`,
      `param "height" (set to 1025) changes 5.width; it names 5.height`,
    ]);
  });

  test("a parameter list that names the wrong input, or a field the schema lacks, is a problem", async () => {
    const params = PARAMS.map((q) => (q.name === "negative_prompt" ? { ...q, targets: [{ node: "7", input: "clip" }] } : q));
    const r = await proveEndpoint(input(GOOD, [...params, p("strength", "float", "3", "strength")]));
    assert.ok(
      r.problems.includes(`param "negative_prompt": its target 7.clip is a link in the export, not a value`),
      r.problems.join("\n"),
    );
    assert.ok(r.problems.includes(`param "strength" is not a field of RequestSchema`), r.problems.join("\n"));
    assert.ok(r.problems.includes(`param "strength": its target 3.strength is not in the export`), r.problems.join("\n"));
    assert.equal(r.ok, false);
  });

  test("every kind of parameter is varied: model to another file, sampler and scheduler to other options, media to a URL", async () => {
    // a file whose model, sampler, scheduler and image fields go nowhere: each must be named
    const src = edit(
      "ckpt_name: input.checkpoint",
      `ckpt_name: "sd_xl_base_1.0.safetensors"`,
      edit(
        "sampler_name: input.sampler_name,\n        scheduler: input.scheduler,",
        `sampler_name: "euler",\n        scheduler: "normal",`,
        edit("image: input.image", `image: "example.png"`),
      ),
    );
    const r = await proveEndpoint(input(src));
    assert.equal(r.checks.roundTrip, true);
    const named = r.problems.map((m) => /^param "(\w+)" \(set to (.*)\) changes nothing/.exec(m)?.slice(1, 3).join("="));
    assert.deepEqual(named, [
      `sampler_name="dpmpp_2m"`,
      `scheduler="karras"`,
      `checkpoint="flow-proof-alt.safetensors"`,
      `image="https://example.com/x.png"`,
    ]);
    // the TypeScript compiler still sees unused fields as fine: only the proof catches them
    assert.equal(r.checks.typecheck, true);
  });

  test("a type error fails the type-check, naming file and line", async () => {
    const src = edit("steps: input.steps,", "steps: input.stpes,");
    const line = src.split("\n").findIndex((l) => l.includes("input.stpes")) + 1;
    const r = await proveEndpoint(input(src));
    assert.equal(r.checks.typecheck, false);
    assert.ok(
      r.problems.some((m) => m.startsWith(`type-check: test/txt2img.ts:${line}:`) && /Property 'stpes' does not exist/.test(m)),
      r.problems.join("\n"),
    );
    assert.equal(r.ok, false);
  });

  test("files that do not load are problems with a reason, never a crash", async () => {
    const cases: [string, string, RegExp][] = [
      [
        "throws",
        edit("const RequestSchema", `throw new Error("no GPU here");\nconst RequestSchema`),
        /^load: .* throws while loading: no GPU here$/,
      ],
      [
        "unknown folder",
        edit("config.models.checkpoints.enum", "config.models.no_such_folder.enum"),
        /^load: .* throws while loading: Cannot read properties of undefined \(reading 'enum'\)$/,
      ],
      ["syntax", edit("type InputType", "type InputType = = ;\ntype Other"), /^syntax: bad\/syntax\.ts:\d+:\d+: Type expected\.$/],
      [
        "require",
        edit(`import config from "../config";`, `import config from "../config";\nimport fs from "fs";\nfs.existsSync("/");`),
        /cannot require 'fs'/,
      ],
      ["not last", GOOD + "export const example = { prompt: 'x' };\n", /last statement/],
      ["no workflow", edit("export default workflow;", "export default { generateWorkflow };"), /does not `export default` a Workflow/],
      [
        "generate throws",
        edit(
          "function generateWorkflow(input: InputType): ComfyPrompt {",
          `function generateWorkflow(input: InputType): ComfyPrompt {\n  throw new Error("nope");`,
        ),
        /^round trip: generateWorkflow throws: nope$/,
      ],
      [
        "not a prompt",
        edit(
          "function generateWorkflow(input: InputType): ComfyPrompt {",
          `function generateWorkflow(input: InputType): ComfyPrompt {\n  return [] as any;`,
        ),
        /^round trip: generateWorkflow's result is not a ComfyUI prompt: \[\] is not an object of nodes$/,
      ],
    ];
    const t0 = performance.now();
    const results = await proveEndpoints(cases.map(([name, src]) => input(src, PARAMS, `bad/${name.replace(/ /g, "-")}.ts`)));
    for (const [k, [name, , re]] of cases.entries()) {
      const r = results[k]!;
      assert.equal(r.ok, false, name);
      assert.ok(
        r.problems.some((m) => re.test(m)),
        `${name}: ${r.problems.join("\n")}`,
      );
    }
    assert.ok(performance.now() - t0 < 60_000);
  });

  test("an LLM-written file with its own names and defaults passes the LLM rule", async () => {
    const r = await proveEndpoint(input(LLM, null, "llm/txt2img.ts"));
    assert.deepEqual(r.problems, []);
    assert.deepEqual(r.checks, { typecheck: true, roundTrip: true, params: true });
    // the differences it is allowed are each accounted for by the field that sets them
    assert.deepEqual(r.notes.filter((n) => !n.startsWith("3.seed")).sort(), [
      `10.image (LoadImage) is "flow-proof", the export has "example.png": set by "reference"`,
      `3.steps (KSampler) is 30, the export has 20: set by "num_steps"`,
      `6.text (CLIPTextEncode) is "flow-proof", the export has "a cat on a mat": set by "positive"`,
      `7.text (CLIPTextEncode) is "low quality", the export has "blurry": set by "negative"`,
    ]);
    // the seed is the file's random default
    assert.match(
      r.notes.find((n) => n.startsWith("3.seed"))!,
      /^3\.seed \(KSampler\) is \d+, the export has 42: set by "noise_seed"$/,
    );
  });

  test("an LLM-written file that rewires a link, or changes a fixed value, fails", async () => {
    const rewired = edit(`positive: ["6", 0],\n      negative: ["7", 0],`, `positive: ["7", 0],\n      negative: ["6", 0],`, LLM);
    const fixed = edit(`scheduler: "normal"`, `scheduler: "karras"`, LLM);
    const [a, b] = await proveEndpoints([input(rewired, null, "llm/a.ts"), input(fixed, null, "llm/b.ts")]);
    assert.equal(a!.checks.roundTrip, false);
    assert.ok(a!.problems.includes(`round trip: 3.positive (KSampler) is ["7",0], the export has ["6",0]`), a!.problems.join("\n"));
    assert.ok(a!.problems.includes(`round trip: 3.negative (KSampler) is ["6",0], the export has ["7",0]`), a!.problems.join("\n"));
    assert.equal(b!.checks.roundTrip, false);
    assert.deepEqual(b!.problems, [`round trip: 3.scheduler (KSampler) is "karras", the export has "normal" (no request field sets it)`]);
  });

  test("an LLM-written file with a field that sets nothing fails the parameter check", async () => {
    const src = edit(
      `reference: z.string().describe("Image URL"),`,
      `reference: z.string().describe("Image URL"),\n  upscale: z.boolean().optional().default(false),`,
      LLM,
    );
    const r = await proveEndpoint(input(src, null, "llm/c.ts"));
    assert.equal(r.checks.params, false);
    assert.deepEqual(r.problems, [`field "upscale" (set to true) changes nothing in the prompt`]);
  });
});

// ---------- the generator's own output, over the official templates ----------

const apiSources = (): ApiSources => ({ types: read("src/types.ts"), config: read("src/config.ts"), packageJson: read("package.json") });

/** A template converted with the real object_info and generated; why not, when it cannot be. */
function generated(file: string, dir: string, oi: ObjectInfo, api: ApiSources): ProofInput | string {
  const buf = readFileSync(file);
  const { prompt, issues } = convertUiToApi(JSON.parse(buf.toString("utf8")), oi, { file });
  const missing = issues.filter((i) => i.kind === "missing-class");
  if (missing.length)
    return `does not convert: ${[...new Set(missing.map((i) => i.classType ?? i.message))].join(", ")} not in object_info`;
  const name = relative(dir, file);
  try {
    const g = generateEndpoint({
      prompt,
      objectInfo: oi,
      template: { path: `workflow_templates/${name}`, sha256: createHash("sha256").update(buf).digest("hex") },
      metadata: { requiredNodes: [], requiredModels: [], modelSources: {} },
    });
    return { rel: `templates/${name.replace(/\.json$/, ".ts")}`, source: g.source, prompt, params: g.params, objectInfo: oi, api };
  } catch (e) {
    return `the generator throws: ${e instanceof Error ? e.message : String(e)}`;
  }
}

const TEMPLATE_DATA = ["templates/image_qwen_image.json", "comfyui/object_info.json"];

test("the generator's file for the Qwen image template proves", { skip: skip || needs(...TEMPLATE_DATA) }, async (t) => {
  const oi = jsonShared("comfyui/object_info.json") as ObjectInfo;
  const file = dataPath("templates/image_qwen_image.json")!;
  const g = generated(file, dirname(file), oi, apiSources());
  assert.ok(typeof g !== "string", String(g));
  const t0 = performance.now();
  const r = await proveEndpoint(g);
  t.diagnostic(`qwen image: ${g.params!.length} params proven in ${((performance.now() - t0) / 1000).toFixed(1)}s`);
  assert.deepEqual(r.problems, []);
  assert.deepEqual(r.checks, { typecheck: true, roundTrip: true, params: true });
  // the proof has teeth on this file: the prompt wired to the negative encoder is caught by name
  const positive = g.params!.find((q) => q.name === "prompt")!.targets[0]!;
  const negative = g.params!.find((q) => q.name === "negative_prompt")!.targets[0]!;
  const swapped = { ...g, params: g.params!.map((q) => (q.name === "prompt" ? { ...q, targets: [negative] } : q)) };
  const bad = await proveEndpoint(swapped);
  assert.equal(bad.ok, false);
  assert.ok(
    bad.problems.some((m) => m.startsWith(`param "prompt" (set to "flow-proof") changes ${positive.node}.${positive.input}; it names`)),
    bad.problems.join("\n"),
  );
});

/** Every .json under a folder, sub-folders too. */
function jsonFiles(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((n) => {
      const p = join(dir, n);
      return statSync(p).isDirectory() ? jsonFiles(p) : n.endsWith(".json") ? [p] : [];
    });
}

// Measured: 39 of the 41 templates convert with the real object_info (api_recraft_vector_gen needs SaveSVG,
// video_wan2_2_14B_animate custom nodes), and every one of those generates and proves.
const CONVERT_FLOOR = 39;

test(
  "corpus: every template that converts generates a file that type-checks, round-trips and whose every parameter is proven",
  // the whole corpus is only in ../shared/data (test/fixtures/data holds two of its templates)
  { skip: skip || SKIP_MSG || needs("comfyui/object_info.json") },
  async (t) => {
    const oi = jsonShared("comfyui/object_info.json") as ObjectInfo;
    const api = apiSources();
    const dir = SHARED + "templates/";
    const files = jsonFiles(dir);
    const t0 = performance.now();
    const inputs: ProofInput[] = [];
    const cannot: string[] = [];
    for (const f of files) {
      const g = generated(f, dir, oi, api);
      if (typeof g === "string") cannot.push(`${relative(dir, f)}: ${g}`);
      else inputs.push(g);
    }
    const t1 = performance.now();
    const results = await proveEndpoints(inputs);
    // the same files held to the LLM rule: it must not refuse what the deterministic proof accepts
    const asLlm = await proveEndpoints(inputs.map((i) => ({ ...i, params: undefined })));
    const t2 = performance.now();
    const count = (f: (r: (typeof results)[number]) => boolean) => results.filter(f).length;
    const failed = results.flatMap((r, k) => (r.ok ? [] : [`${inputs[k]!.rel}: ${r.problems.slice(0, 3).join("; ")}`]));
    const llmFailed = asLlm.flatMap((r, k) => (r.ok ? [] : [`${inputs[k]!.rel}: ${r.problems.slice(0, 3).join("; ")}`]));
    const params = inputs.reduce((n, i) => n + i.params!.length, 0);
    console.log(
      `# generate corpus: ${inputs.length} of ${files.length} convert and generate, ${count((r) => r.checks.typecheck)} type-check, ` +
        `${count((r) => r.checks.roundTrip)} round-trip, ${count((r) => r.checks.params)} prove all ${params} params, ` +
        `${asLlm.filter((r) => r.ok).length} pass the LLM rule; ` +
        `generate ${((t1 - t0) / 1000).toFixed(1)}s, prove ${((t2 - t1) / 1000).toFixed(1)}s (both rules)` +
        (cannot.length ? `; cannot: ${cannot.join("; ")}` : ""),
    );
    t.diagnostic(`cannot: ${cannot.join(" | ") || "none"}`);
    assert.ok(inputs.length >= CONVERT_FLOOR, `only ${inputs.length} templates convert and generate: ${cannot.join("; ")}`);
    assert.deepEqual(failed, []);
    assert.deepEqual(llmFailed, []);
  },
);

// ---------- an LLM-written file runs in a child process ----------

// The child has no environment, reads none of the project, writes nothing, starts nothing and is stopped
// at its time limit and heap cap (plugins/workflow/endpoint-proof.ts observeInChild). Each file below
// would succeed in flow's own process: what it reports shows where it ran.
describe("an LLM-written file is evaluated in a child process", { skip }, () => {
  let api: ApiSources;
  const SECRET = "sk-or-v1-proof-secret-" + Math.random().toString(36).slice(2);
  const saved = process.env.OPENROUTER_API_KEY;
  const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));
  const llm = (source: string, rel: string, extra: Partial<ProofInput> = {}): ProofInput => ({
    rel,
    source,
    prompt: PROMPT,
    objectInfo: OBJECT_INFO,
    api,
    ...extra,
  });
  /** LLM with `code` run first at load */
  const atLoad = (code: string) => edit(`const RequestSchema`, `${code}\nconst RequestSchema`, LLM);
  before(() => {
    api = apiSources();
    process.env.OPENROUTER_API_KEY = SECRET;
  });
  after(() => {
    if (saved === undefined) delete process.env.OPENROUTER_API_KEY;
    else process.env.OPENROUTER_API_KEY = saved;
  });

  test("it sees no environment: the parent's OPENROUTER_API_KEY is not there, and a good file still passes", async () => {
    const env = 'throw new Error("env " + JSON.stringify(process.env));';
    // a default taken from the environment: in flow's process it would be the key
    const fromEnv = edit(`.default("low quality")`, `.default((process as any).env.OPENROUTER_API_KEY ?? "low quality")`, LLM);
    const [a, b] = await proveEndpoints([llm(atLoad(env), "llm/env.ts"), llm(fromEnv, "llm/from-env.ts")]);
    assert.ok(a!.problems.includes("load: llm/env.ts throws while loading: env {}"), a!.problems.join("\n"));
    assert.deepEqual(b!.problems, []);
    assert.equal(b!.ok, true);
    assert.ok(
      b!.notes.includes(`7.text (CLIPTextEncode) is "low quality", the export has "blurry": set by "negative"`),
      b!.notes.join("\n"),
    );
    assert.ok(![...a!.problems, ...b!.notes].some((m) => m.includes(SECRET)));
  });

  test("it cannot read the project, write, start a process or worker, or signal flow: each attempt fails, named", async () => {
    const file = join(REPO_ROOT, "package.json");
    assert.match(readFileSync(file, "utf8"), /"name": "flow"/, "the parent can read it");
    const gbm = `(process as any).getBuiltinModule`;
    const denied = /^load: llm\/\w+\.ts throws while loading: Access to this API has been restricted$/;
    // Node's own import() (TypeScript turns a literal one into the file's require): generateWorkflow awaits it
    const viaImport = edit(
      `function generateWorkflow(input: z.infer<typeof RequestSchema>): ComfyPrompt {`,
      `async function generateWorkflow(input: z.infer<typeof RequestSchema>): Promise<ComfyPrompt> {\n` +
        `  const fs = await (0, eval)('import("node:fs")');\n  fs.readFileSync(${JSON.stringify(file)});`,
      LLM,
    );
    const cases: [string, string, RegExp][] = [
      [
        "require",
        atLoad(`require("fs").readFileSync(${JSON.stringify(file)});`),
        /^load: llm\/require\.ts throws while loading: cannot require 'fs'/,
      ],
      ["read", atLoad(`throw new Error("read " + ${gbm}("fs").readFileSync(${JSON.stringify(file)}, "utf8"));`), denied],
      ["import", viaImport, /^round trip: generateWorkflow throws: Access to this API has been restricted$/],
      ["write", atLoad(`${gbm}("fs").writeFileSync("written.txt", "x");`), denied],
      ["exec", atLoad(`${gbm}("child_process").execFileSync("id");`), denied],
      ["worker", atLoad(`new (${gbm}("worker_threads").Worker)("1", { eval: true });`), denied],
      ["inspector", atLoad(`${gbm}("inspector").open(0);`), denied],
      ["signal", atLoad(`process.kill(process.ppid, 0);`), /^load: llm\/signal\.ts throws while loading: process\.kill is not a function$/],
    ];
    const results = await proveEndpoints(cases.map(([name, src]) => llm(src, `llm/${name}.ts`)));
    for (const [k, [name, , re]] of cases.entries()) {
      const named = results[k]!.problems.filter((m) => m.startsWith("load: ") || m.startsWith("round trip: "));
      assert.ok(named.length === 1 && re.test(named[0]!), `${name}: ${results[k]!.problems.join("\n")}`);
      assert.equal(results[k]!.ok, false, name);
    }
    assert.ok(!results.some((r) => r.problems.some((m) => m.includes(`"name": "flow"`))), "the file's text reached no problem");
  });

  test("an endless loop is stopped at the time limit and reported", async () => {
    const loop = edit(`const prompt: ComfyPrompt = {};`, `const prompt: ComfyPrompt = {};\n  for (;;) {}`, LLM);
    const t0 = performance.now();
    const [a, b] = await proveEndpoints([
      llm(atLoad("while (true) {}"), "llm/loop-load.ts", { timeLimitMs: 3000 }),
      llm(loop, "llm/loop-generate.ts", { timeLimitMs: 3000 }),
    ]);
    assert.deepEqual(
      a!.problems.filter((m) => m.startsWith("load: ")),
      ["load: llm/loop-load.ts did not finish loading and generating in 3 s: stopped"],
    );
    assert.deepEqual(
      b!.problems.filter((m) => m.startsWith("load: ")),
      ["load: llm/loop-generate.ts did not finish loading and generating in 3 s: stopped"],
    );
    assert.equal(a!.ok || b!.ok, false);
    assert.ok(performance.now() - t0 < 20_000, "both stopped near their limit");
  });

  test("a file that eats memory is stopped at the heap cap and reported", async () => {
    const r = await proveEndpoint(llm(atLoad("const hog: number[][] = [];\nfor (;;) hog.push(new Array(1e6).fill(1));"), "llm/hog.ts"));
    assert.deepEqual(
      r.problems.filter((m) => m.startsWith("load: ")),
      ["load: llm/hog.ts ran out of memory (256 MB) loading and generating"],
    );
  });
});

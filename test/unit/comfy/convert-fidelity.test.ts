// Issue #15: UI -> API conversion as ComfyUI's own frontend does it, on any ComfyUI version. One
// group of cases per class of miss (widgets older/newer than the definition, dynamic widgets,
// subgraphs, links through nodes, object_info from other sources), built from small workflows and
// definitions derived from a real /object_info; then comfy-cli's sd15 fixture, the 41 official
// templates with the real object_info, and the same templates with a derived newer object_info
// (new widgets with defaults, a dynamic combo) whose right answer is known by construction.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, existsSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { convertUiToApi, type ConvertIssue } from "../../../lib/comfy/convert.ts";
import type { ApiPrompt } from "../../../lib/comfy/workflow-read.ts";
import { flow, REPO } from "../../support/cli.ts";
import { SHARED, SKIP_MSG, jsonShared, needs } from "./shared-data.ts";

type Json = Record<string, any>;
/** The real ComfyUI /object_info (test/fixtures/data): every derived definition starts from it. */
const REAL: Json = jsonShared("comfyui/object_info.json");
const real = (...names: string[]): Json => Object.fromEntries(names.map((n) => [n, structuredClone(REAL[n])]));
/** Add inputs to a definition: to the end of a group, or right after `after`. */
function addInput(def: Json, group: "required" | "optional", name: string, spec: unknown, after?: string): Json {
  def.input[group] = { ...def.input[group], [name]: spec };
  def.input_order ??= {};
  const order: string[] = def.input_order[group] ?? Object.keys(def.input[group]).filter((n) => n !== name);
  const at = after === undefined ? order.length : order.indexOf(after) + 1;
  def.input_order[group] = [...order.slice(0, at), name, ...order.slice(at)];
  return def;
}
const L = (id: number, from: number, fromSlot: number, to: number, toSlot: number, type: string) => [id, from, fromSlot, to, toSlot, type];
const kinds = (issues: ConvertIssue[]) => issues.map((i) => `${i.node} ${i.kind}${i.input ? ` ${i.input}` : ""}`).sort();

/** KSampler's sockets, linked as given (links by input name). */
function samplerInputs(links: Record<string, number> = {}, widgets: string[] = []) {
  const sockets = ["model", "positive", "negative", "latent_image"].map((name) => ({
    name,
    type: { model: "MODEL", latent_image: "LATENT" }[name] ?? "CONDITIONING",
    link: links[name] ?? null,
  }));
  return [...sockets, ...widgets.map((name) => ({ name, type: "INT", widget: { name }, link: links[name] ?? null }))];
}
const SAMPLER_WV = [42, "randomize", 20, 8, "euler", "normal", 1];
const SAMPLER_VALUES = { seed: 42, steps: 20, cfg: 8, sampler_name: "euler", scheduler: "normal", denoise: 1 };

// ---------- 1. widgets older or newer than the definition ----------

test("1: an older workflow on a newer definition: every missing widget gets its default, required and optional alike", () => {
  const oi = real("KSampler");
  addInput(oi.KSampler, "required", "noise_type", [["gaussian", "uniform"], {}]); // a combo without default: its first option
  addInput(oi.KSampler, "optional", "cfg_rescale", ["FLOAT", { default: 0.7 }]);
  addInput(oi.KSampler, "optional", "negative_hint", ["STRING", { multiline: true }]); // no default: ""
  addInput(oi.KSampler, "optional", "sampler_mode", ["COMBO", { options: ["a", "b", "c"], default: "b" }]);
  const r = convertUiToApi({ nodes: [{ id: 3, type: "KSampler", widgets_values: SAMPLER_WV, inputs: samplerInputs() }], links: [] }, oi);
  assert.deepEqual(r.prompt["3"]!.inputs, {
    ...SAMPLER_VALUES,
    noise_type: "gaussian",
    cfg_rescale: 0.7,
    negative_hint: "",
    sampler_mode: "b",
  });
  assert.deepEqual(kinds(r.issues), [
    "3 default-filled cfg_rescale",
    "3 default-filled negative_hint",
    "3 default-filled noise_type",
    "3 default-filled sampler_mode",
  ]);
  assert.match(r.issues.find((i) => i.input === "cfg_rescale")!.message, /no value in the file: default 0.7 used/);
});

test("1: where the file records every widget's name, values align by name: a widget added in the middle gets its default", () => {
  const oi = real("KSampler");
  addInput(oi.KSampler, "required", "shift", ["FLOAT", { default: 3 }], "steps"); // between steps and cfg: in order it would take cfg's 8
  const widgets = ["seed", "steps", "cfg", "sampler_name", "scheduler", "denoise"];
  const node = { id: 3, type: "KSampler", widgets_values: SAMPLER_WV, inputs: samplerInputs({}, widgets) };
  const r = convertUiToApi({ nodes: [node], links: [] }, oi);
  assert.deepEqual(r.prompt["3"]!.inputs, { ...SAMPLER_VALUES, shift: 3 });
  assert.deepEqual(kinds(r.issues), ["3 default-filled shift"]);
  // a widget the definition no longer has: its value is dropped, with a warning naming it
  const gone = { ...node, widgets_values: [42, "randomize", 20, 0.25, 8, "euler", "normal", 1] };
  gone.inputs = samplerInputs({}, ["seed", "steps", "old_knob", "cfg", "sampler_name", "scheduler", "denoise"]);
  const g = convertUiToApi({ nodes: [gone], links: [] }, real("KSampler"));
  assert.deepEqual(g.prompt["3"]!.inputs, SAMPLER_VALUES);
  assert.deepEqual(kinds(g.issues), ["3 widget-dropped"]);
  assert.match(g.issues[0]!.message, /widget old_knob \(0.25\) is not in the definition: dropped/);
});

test("1: names recorded only for widgets converted to inputs (older frontends, in the order converted) do not reorder values", () => {
  // steps converted before seed: the names come in the other order and cover 2 of 7 values
  const node = { id: 3, type: "KSampler", widgets_values: SAMPLER_WV, inputs: samplerInputs({}, ["steps", "seed"]) };
  const r = convertUiToApi({ nodes: [node], links: [] }, real("KSampler"));
  assert.deepEqual(r.prompt["3"]!.inputs, SAMPLER_VALUES);
  assert.deepEqual(r.issues, []);
});

test("1: dict-shaped widgets_values and widgets_values_named align by name; a name the definition lacks is dropped", () => {
  const oi = real("CLIPTextEncode", "EmptyLatentImage");
  const r = convertUiToApi(
    {
      nodes: [
        { id: 1, type: "CLIPTextEncode", widgets_values: { text: "a cat", old_weight: 2, videopreview: { hidden: false } } },
        { id: 2, type: "EmptyLatentImage", widgets_values: [1, 2, 3], widgets_values_named: { height: 768, width: 1024 } },
      ],
      links: [],
    },
    oi,
  );
  assert.deepEqual(r.prompt["1"]!.inputs, { text: "a cat" });
  assert.deepEqual(r.prompt["2"]!.inputs, { width: 1024, height: 768, batch_size: 1 });
  assert.deepEqual(kinds(r.issues), ["1 widget-dropped", "2 default-filled batch_size"]);
  assert.match(r.issues[0]!.message, /old_weight/);
});

test("1: control widgets occupy slots without being inputs: a seed's, any INT's, a combo's control and its filter box", () => {
  const oi = {
    Picker: {
      input: {
        required: {
          choice: [["a", "b", "c"], { control_after_generate: true }],
          count: ["INT", { default: 1, control_after_generate: true }],
          noise_seed: ["INT", {}],
          label: ["STRING", {}],
        },
      },
      output: ["STRING"],
    },
    Plain: { input: { required: { n: ["INT", {}], mode: ["STRING", {}] } }, output: [] },
  };
  const r = convertUiToApi(
    {
      nodes: [
        { id: 1, type: "Picker", widgets_values: ["b", "increment", "", 3, "fixed", 99, "randomize", "hello"] },
        // no control declared: a STRING holding "fixed" after an INT is a value
        { id: 2, type: "Plain", widgets_values: [1, "fixed"] },
      ],
      links: [],
    },
    oi,
  );
  assert.deepEqual(r.prompt["1"]!.inputs, { choice: "b", count: 3, noise_seed: 99, label: "hello" });
  assert.deepEqual(r.prompt["2"]!.inputs, { n: 1, mode: "fixed" });
  assert.deepEqual(r.issues, []);
});

test("1: values past the definition's widgets are dropped with a warning; an upload button's leftovers are not", () => {
  const oi = real("LoadImage", "EmptyLatentImage", "ImageScale");
  addInput(oi.LoadImage, "optional", "frame", ["INT", { default: 0 }]); // after the upload button's slot
  const r = convertUiToApi(
    {
      nodes: [
        { id: 1, type: "LoadImage", widgets_values: ["photo.png", "image"] },
        { id: 2, type: "EmptyLatentImage", widgets_values: [512, 512, 1, 0.5] },
        { id: 3, type: "ImageScale", widgets_values: ["lanczos", 64, 64, "center"] },
        { id: 4, type: "ImageScale", widgets_values: ["sinc", 64, 64, "center"] },
      ],
      links: [],
    },
    oi,
  );
  assert.deepEqual(r.prompt["1"]!.inputs, { image: "photo.png", frame: 0 }); // not in the host's list: the models/files tier's business
  assert.deepEqual(r.prompt["2"]!.inputs, { width: 512, height: 512, batch_size: 1 });
  assert.deepEqual(r.prompt["4"]!.inputs, { upscale_method: "sinc", width: 64, height: 64, crop: "center" });
  assert.deepEqual(kinds(r.issues), ["1 default-filled frame", "2 widget-dropped", "4 combo-value upscale_method"]);
  assert.match(r.issues.find((i) => i.node === "2")!.message, /1 value\(s\) past the definition's widgets \(0.5\): dropped/);
});

test("1: values in order that land on widgets of the wrong type are aligned by type, and that is said", () => {
  const oi = real("ImageScale", "EmptyLatentImage");
  addInput(oi.ImageScale, "required", "keep_ratio", ["BOOLEAN", { default: false }], "height"); // before crop, no names in the file
  const r = convertUiToApi({ nodes: [{ id: 5, type: "ImageScale", widgets_values: ["lanczos", 640, 480, "center"] }], links: [] }, oi);
  assert.deepEqual(r.prompt["5"]!.inputs, { upscale_method: "lanczos", width: 640, height: 480, keep_ratio: false, crop: "center" });
  assert.deepEqual(kinds(r.issues), ["5 default-filled keep_ratio", "5 realigned"]);
  // a definition that lost a widget in the middle: the stray value is dropped, the rest keep their widgets
  const lost = convertUiToApi(
    { nodes: [{ id: 6, type: "ImageScale", widgets_values: ["lanczos", 640, "x", 480, "center"] }], links: [] },
    real("ImageScale"),
  );
  assert.deepEqual(lost.prompt["6"]!.inputs, { upscale_method: "lanczos", width: 640, height: 480, crop: "center" });
  assert.deepEqual(kinds(lost.issues), ["6 realigned", "6 widget-dropped"]);
});

// ---------- 2. dynamic widgets ----------

/** A node as newer ComfyUI declares one: a dynamic combo whose options add sub-inputs, an autogrow group. */
const DYNAMIC = {
  ResizeAny: {
    input: {
      required: {
        image: ["IMAGE", {}],
        model: [
          "COMFY_DYNAMICCOMBO_V3",
          {
            options: [
              { key: "fixed", inputs: { required: { width: ["INT", { default: 512 }], height: ["INT", { default: 512 }] } } },
              {
                key: "preset",
                inputs: {
                  required: {
                    size_preset: [["1024x1024", "768x768"], {}],
                    mode: [
                      "COMFY_DYNAMICCOMBO_V3",
                      {
                        options: [
                          { key: "fast", inputs: {} },
                          { key: "thinking", inputs: { required: { budget: ["INT", { default: 1024 }] } } },
                        ],
                      },
                    ],
                  },
                  optional: { mask: ["MASK", {}] },
                },
              },
            ],
          },
        ],
        scale: ["FLOAT", { default: 1 }],
      },
    },
    output: ["IMAGE"],
  },
  Batch: {
    input: {
      required: {
        images: ["COMFY_AUTOGROW_V3", { template: { input: { required: { image: ["IMAGE", {}] } }, prefix: "image", min: 1, max: 4 } }],
      },
    },
    output: ["IMAGE"],
  },
  Src: { input: { required: {} }, output: ["IMAGE", "MASK"] },
};

test("2: a dynamic combo's chosen option adds its sub-widgets right after it, named <combo>.<sub>", () => {
  const r = convertUiToApi(
    {
      nodes: [
        { id: 1, type: "Src" },
        { id: 2, type: "ResizeAny", widgets_values: ["fixed", 640, 480, 1.5], inputs: [{ name: "image", type: "IMAGE", link: 1 }] },
        {
          id: 3,
          type: "ResizeAny",
          widgets_values: ["preset", "768x768", "thinking", 2048, 2],
          inputs: [
            { name: "image", type: "IMAGE", link: 2 },
            { name: "model.mask", type: "MASK", link: 3 },
          ],
        },
      ],
      links: [L(1, 1, 0, 2, 0, "IMAGE"), L(2, 1, 0, 3, 0, "IMAGE"), L(3, 1, 1, 3, 1, "MASK")],
    },
    DYNAMIC,
  );
  assert.deepEqual(r.prompt["2"]!.inputs, { model: "fixed", "model.width": 640, "model.height": 480, scale: 1.5, image: ["1", 0] });
  assert.deepEqual(r.prompt["3"]!.inputs, {
    model: "preset",
    "model.size_preset": "768x768",
    "model.mode": "thinking",
    "model.mode.budget": 2048,
    scale: 2,
    image: ["1", 0],
    "model.mask": ["1", 1],
  });
  assert.deepEqual(r.issues, []);
});

test("2: a dynamic combo saved before its option gained a sub-input, or without its value: defaults, said so", () => {
  const r = convertUiToApi(
    {
      nodes: [
        { id: 2, type: "ResizeAny", widgets_values: { model: "fixed", "model.width": 640, scale: 1.5 } },
        { id: 3, type: "ResizeAny", widgets_values: [] },
        { id: 4, type: "ResizeAny", widgets_values: ["bogus", 2] },
      ],
      links: [],
    },
    DYNAMIC,
  );
  assert.deepEqual(r.prompt["2"]!.inputs, { model: "fixed", "model.width": 640, "model.height": 512, scale: 1.5 });
  assert.deepEqual(r.prompt["3"]!.inputs, { model: "fixed", "model.width": 512, "model.height": 512, scale: 1 });
  assert.deepEqual(r.prompt["4"]!.inputs, { model: "bogus", scale: 2 });
  assert.deepEqual(kinds(r.issues), [
    "2 default-filled model.height",
    "3 default-filled model",
    "3 default-filled model.height",
    "3 default-filled model.width",
    "3 default-filled scale",
    "4 combo-value model",
  ]);
});

test("2: autogrow inputs are sockets named <group>.<prefix><n>: linked ones are exported, empty ones not", () => {
  const r = convertUiToApi(
    {
      nodes: [
        { id: 1, type: "Src" },
        {
          id: 2,
          type: "Batch",
          inputs: [
            { name: "images.image0", type: "IMAGE", link: 1 },
            { name: "images.image1", type: "IMAGE", link: 2 },
            { name: "images.image2", type: "IMAGE", link: null },
          ],
        },
      ],
      links: [L(1, 1, 0, 2, 0, "IMAGE"), L(2, 1, 0, 2, 1, "IMAGE")],
    },
    DYNAMIC,
  );
  assert.deepEqual(r.prompt["2"]!.inputs, { "images.image0": ["1", 0], "images.image1": ["1", 0] });
  assert.deepEqual(r.issues, []);
});

// ---------- 3. subgraphs ----------

const SG = "5a5a5a5a-0000-4000-8000-000000000001";
const OUTER = "5a5a5a5a-0000-4000-8000-000000000002";
/** A subgraph around one KSampler: inputs seed, steps (both INT, both widgets inside) and model; output its LATENT. */
const samplerSubgraph = (id = SG) => ({
  id,
  name: "Sampler",
  inputs: [
    { name: "seed", type: "INT", linkIds: [21] },
    { name: "steps", type: "INT", linkIds: [22] },
    { name: "model", type: "MODEL", linkIds: [20] },
  ],
  outputs: [{ name: "LATENT", type: "LATENT", linkIds: [23] }],
  nodes: [
    {
      id: 5,
      type: "KSampler",
      widgets_values: [1, "fixed", 2, 8, "euler", "normal", 1],
      inputs: samplerInputs({ model: 20, seed: 21, steps: 22 }, ["seed", "steps"]),
    },
  ],
  links: [
    { id: 20, origin_id: -10, origin_slot: 2, target_id: 5, target_slot: 0, type: "MODEL" },
    { id: 21, origin_id: -10, origin_slot: 0, target_id: 5, target_slot: 4, type: "INT" },
    { id: 22, origin_id: -10, origin_slot: 1, target_id: 5, target_slot: 5, type: "INT" },
    { id: 23, origin_id: 5, origin_slot: 0, target_id: -20, target_slot: 0, type: "LATENT" },
  ],
});
const SG_OI = real("KSampler", "PrimitiveInt", "CheckpointLoaderSimple", "VAEDecode");

test("3: each subgraph input reaches the inner input its own link targets: two INT inputs (seed, steps) never swap", () => {
  const r = convertUiToApi(
    {
      nodes: [
        { id: 1, type: "PrimitiveInt", widgets_values: [111, "fixed"] },
        { id: 2, type: "PrimitiveInt", widgets_values: [222, "fixed"] },
        { id: 3, type: "CheckpointLoaderSimple", widgets_values: ["m.safetensors"] },
        // the instance lists its inputs in another order than the subgraph does
        {
          id: 10,
          type: SG,
          inputs: [
            { name: "steps", type: "INT", link: 2 },
            { name: "seed", type: "INT", link: 1 },
            { name: "model", type: "MODEL", link: 3 },
          ],
          outputs: [{ name: "LATENT", type: "LATENT", links: [4] }],
        },
        { id: 11, type: "VAEDecode", inputs: [{ name: "samples", type: "LATENT", link: 4 }] },
      ],
      links: [L(1, 1, 0, 10, 1, "INT"), L(2, 2, 0, 10, 0, "INT"), L(3, 3, 0, 10, 2, "MODEL"), L(4, 10, 0, 11, 0, "LATENT")],
      definitions: { subgraphs: [samplerSubgraph()] },
    },
    SG_OI,
  );
  assert.deepEqual(r.prompt["10:5"]!.inputs, { ...SAMPLER_VALUES, seed: ["1", 0], steps: ["2", 0], model: ["3", 0] });
  assert.deepEqual(r.prompt["11"]!.inputs, { samples: ["10:5", 0] });
});

test("3: a widget value on the instance overrides the inner one; unlinked without one, the inner value stays", () => {
  const inst = (id: number, wv?: unknown[]) => ({ id, type: SG, ...(wv && { widgets_values: wv }), inputs: [] });
  const r = convertUiToApi(
    { nodes: [inst(10, [77, 12]), inst(11, [78, "randomize", 13]), inst(12)], links: [], definitions: { subgraphs: [samplerSubgraph()] } },
    SG_OI,
  );
  assert.deepEqual([r.prompt["10:5"]!.inputs.seed, r.prompt["10:5"]!.inputs.steps], [77, 12]);
  assert.deepEqual([r.prompt["11:5"]!.inputs.seed, r.prompt["11:5"]!.inputs.steps], [78, 13]); // an older file's control value skipped
  assert.deepEqual([r.prompt["12:5"]!.inputs.seed, r.prompt["12:5"]!.inputs.steps], [1, 2]);
});

test("3: nested subgraphs: ids <outer>:<inner>:<node>; the outermost instance's value wins, else the nested instance's", () => {
  const outer = (wv?: unknown[]) => ({
    id: OUTER,
    name: "Outer",
    inputs: [{ name: "seed", type: "INT", linkIds: [31] }],
    outputs: [{ name: "LATENT", type: "LATENT", linkIds: [32] }],
    nodes: [
      {
        id: 7,
        type: SG,
        widgets_values: [321, 9],
        inputs: [
          { name: "seed", type: "INT", widget: { name: "seed" }, link: 31 },
          { name: "steps", type: "INT", widget: { name: "steps" }, link: null },
        ],
      },
    ],
    links: [
      { id: 31, origin_id: -10, origin_slot: 0, target_id: 7, target_slot: 0, type: "INT" },
      { id: 32, origin_id: 7, origin_slot: 0, target_id: -20, target_slot: 0, type: "LATENT" },
    ],
    ...(wv && {}),
  });
  const wf = (wv?: unknown[]) => ({
    nodes: [
      {
        id: 20,
        type: OUTER,
        ...(wv && { widgets_values: wv }),
        inputs: [{ name: "seed", type: "INT", widget: { name: "seed" }, link: null }],
      },
      { id: 21, type: "VAEDecode", inputs: [{ name: "samples", type: "LATENT", link: 1 }] },
    ],
    links: [L(1, 20, 0, 21, 0, "LATENT")],
    definitions: { subgraphs: [outer(), samplerSubgraph()] },
  });
  const a = convertUiToApi(wf([555]), SG_OI);
  assert.deepEqual(Object.keys(a.prompt).sort(), ["20:7:5", "21"]);
  assert.deepEqual([a.prompt["20:7:5"]!.inputs.seed, a.prompt["20:7:5"]!.inputs.steps], [555, 9]);
  assert.deepEqual(a.prompt["21"]!.inputs, { samples: ["20:7:5", 0] });
  const b = convertUiToApi(wf(), SG_OI);
  assert.equal(b.prompt["20:7:5"]!.inputs.seed, 321);
});

test("3: proxyWidgets: a value an instance sets on an inner widget holds for that instance only", () => {
  const inst = (id: number, cfg: number) => ({
    id,
    type: SG,
    properties: { proxyWidgets: [["5", "cfg"]] },
    widgets_values: [cfg],
    inputs: [],
  });
  const r = convertUiToApi({ nodes: [inst(30, 4.5), inst(31, 6.5)], links: [], definitions: { subgraphs: [samplerSubgraph()] } }, SG_OI);
  assert.equal(r.prompt["30:5"]!.inputs.cfg, 4.5);
  assert.equal(r.prompt["31:5"]!.inputs.cfg, 6.5);
});

// ---------- 4. links that pass through nodes ----------

const LINK_OI = {
  ...real("CheckpointLoaderSimple", "LoraLoader", "CLIPTextEncode", "KSampler", "VAEDecode", "VAELoader", "PrimitiveInt", "SaveImage"),
  TwoIn: { input: { required: { mask: ["MASK"], any: ["*"], image: ["IMAGE"] } }, output: ["IMAGE"] },
  Encode: { input: { required: { clip_vision: ["CLIP_VISION"], image: ["IMAGE"] } }, output: ["CLIP_VISION_OUTPUT"] },
  Src: { input: { required: {} }, output: ["IMAGE", "MASK", "CLIP_VISION"] },
  Want: { input: { required: { image: ["IMAGE"] }, optional: { cv: ["CLIP_VISION_OUTPUT"] } }, output: [], output_node: true },
};

test("4: Reroutes (several hops), a bypassed LoRA (each output passes its own type), Set/Get: the real sources", () => {
  const r = convertUiToApi(
    {
      nodes: [
        { id: 1, type: "CheckpointLoaderSimple", widgets_values: ["m.safetensors"] },
        { id: 2, type: "Reroute", inputs: [{ name: "", type: "*", link: 1 }], outputs: [{ type: "MODEL" }] },
        { id: 3, type: "Reroute", inputs: [{ name: "", type: "*", link: 2 }], outputs: [{ type: "MODEL" }] },
        {
          id: 4,
          type: "LoraLoader",
          mode: 4,
          widgets_values: ["l.safetensors", 1, 1],
          inputs: [
            { name: "model", type: "MODEL", link: 3 },
            { name: "clip", type: "CLIP", link: 4 },
          ],
          outputs: [
            { name: "MODEL", type: "MODEL" },
            { name: "CLIP", type: "CLIP" },
          ],
        },
        { id: 5, type: "SetNode", widgets_values: ["clip"], inputs: [{ name: "CLIP", type: "CLIP", link: 5 }] },
        { id: 6, type: "GetNode", widgets_values: ["clip"], outputs: [{ type: "CLIP" }] },
        { id: 7, type: "CLIPTextEncode", widgets_values: ["a cat"], inputs: [{ name: "clip", type: "CLIP", link: 6 }] },
        { id: 8, type: "KSampler", widgets_values: SAMPLER_WV, inputs: samplerInputs({ model: 7, positive: 8 }) },
        { id: 9, type: "Note", widgets_values: ["hi"] },
        { id: 10, type: "Fast Groups Bypasser (rgthree)" },
      ],
      links: [L(1, 1, 0, 2, 0, "MODEL"), L(2, 2, 0, 3, 0, "MODEL"), L(3, 3, 0, 4, 0, "MODEL"), L(4, 1, 1, 4, 1, "CLIP")].concat([
        L(5, 4, 1, 5, 0, "CLIP"),
        L(6, 6, 0, 7, 0, "CLIP"),
        L(7, 4, 0, 8, 0, "MODEL"),
        L(8, 7, 0, 8, 1, "CONDITIONING"),
      ]),
    },
    LINK_OI,
    { dropUnknown: true },
  );
  // no node the frontend would not export, none it exports missing
  assert.deepEqual(Object.keys(r.prompt).sort(), ["1", "7", "8"]);
  assert.deepEqual(r.prompt["7"]!.inputs, { text: "a cat", clip: ["1", 1] });
  assert.deepEqual(r.prompt["8"]!.inputs, { ...SAMPLER_VALUES, model: ["1", 0], positive: ["7", 0] });
  assert.deepEqual(r.issues, []);
});

test("4: bypass passes the input of exactly the wanted type (over the same slot, over wildcards); else the one at the slot", () => {
  const bypassed = (id: number, type: string, ins: [string, string, number][], out: string) => ({
    id,
    type,
    mode: 4,
    inputs: ins.map(([name, t, link]) => ({ name, type: t, link })),
    outputs: [{ type: out }],
  });
  const r = convertUiToApi(
    {
      nodes: [
        { id: 1, type: "Src" },
        bypassed(
          2,
          "TwoIn",
          [
            ["mask", "MASK", 1],
            ["any", "*", 7],
            ["image", "IMAGE", 2],
          ],
          "IMAGE",
        ),
        bypassed(
          3,
          "Encode",
          [
            ["clip_vision", "CLIP_VISION", 3],
            ["image", "IMAGE", 4],
          ],
          "CLIP_VISION_OUTPUT",
        ),
        {
          id: 4,
          type: "Want",
          inputs: [
            { name: "image", type: "IMAGE", link: 5 },
            { name: "cv", type: "CLIP_VISION_OUTPUT", link: 6 },
          ],
        },
      ],
      links: [L(1, 1, 1, 2, 0, "MASK"), L(2, 1, 0, 2, 1, "IMAGE"), L(3, 1, 2, 3, 0, "CLIP_VISION"), L(4, 1, 0, 3, 1, "IMAGE")].concat([
        L(5, 2, 0, 4, 0, "IMAGE"),
        L(6, 3, 0, 4, 1, "CLIP_VISION_OUTPUT"),
        L(7, 1, 1, 2, 1, "MASK"),
      ]),
    },
    LINK_OI,
  );
  assert.deepEqual(r.prompt["4"]!.inputs, { image: ["1", 0], cv: ["1", 2] });
  assert.deepEqual(kinds(r.issues), ["3 bypass-type"]);
  assert.match(r.issues[0]!.message, /no input of type CLIP_VISION_OUTPUT .* its input clip_vision \(CLIP_VISION\) passes through/);
});

test("4: a muted node is not exported and takes the inputs linked to it along, widget inputs too; PrimitiveNode values inlined", () => {
  const r = convertUiToApi(
    {
      nodes: [
        { id: 1, type: "VAELoader", mode: 2, widgets_values: ["ae.safetensors"] },
        { id: 2, type: "PrimitiveInt", mode: 2, widgets_values: [5, "fixed"] },
        { id: 3, type: "PrimitiveNode", widgets_values: [31337, "fixed"], outputs: [{ type: "INT" }] },
        { id: 4, type: "Reroute", inputs: [{ name: "", type: "*", link: 3 }], outputs: [{ type: "INT" }] },
        { id: 5, type: "KSampler", widgets_values: SAMPLER_WV, inputs: samplerInputs({ seed: 4, steps: 2 }, ["seed", "steps"]) },
        { id: 6, type: "VAEDecode", inputs: [{ name: "vae", type: "VAE", link: 1 }] },
      ],
      links: [L(1, 1, 0, 6, 0, "VAE"), L(2, 2, 0, 5, 5, "INT"), L(3, 3, 0, 4, 0, "INT"), L(4, 4, 0, 5, 4, "INT")],
    },
    LINK_OI,
  );
  assert.deepEqual(Object.keys(r.prompt).sort(), ["5", "6"]);
  const { steps: _gone, ...rest } = SAMPLER_VALUES;
  assert.deepEqual(r.prompt["5"]!.inputs, { ...rest, seed: 31337 });
  assert.deepEqual(r.prompt["6"]!.inputs, {});
  assert.deepEqual(kinds(r.issues), ["5 dropped-link steps", "6 dropped-link vae"]);
});

test("4: a class the object_info lacks is left out with its links and named (dropUnknown); kept by default", () => {
  const wf = {
    nodes: [
      { id: 1, type: "FancyPackLoader", widgets_values: ["x"] },
      { id: 2, type: "SaveImage", widgets_values: ["out"], inputs: [{ name: "images", type: "IMAGE", link: 1 }] },
    ],
    links: [L(1, 1, 0, 2, 0, "IMAGE")],
  };
  const dropped = convertUiToApi(wf, LINK_OI, { dropUnknown: true });
  assert.deepEqual(dropped.prompt, {
    "2": { inputs: { filename_prefix: "out" }, class_type: "SaveImage", _meta: { title: "Save Image" } },
  });
  assert.deepEqual(kinds(dropped.issues), ["1 missing-class", "2 dropped-link images"]);
  assert.equal(dropped.issues.find((i) => i.kind === "missing-class")!.classType, "FancyPackLoader");
  const kept = convertUiToApi(wf, LINK_OI);
  assert.deepEqual(Object.keys(kept.prompt).sort(), ["1", "2"]);
  assert.deepEqual(kept.prompt["2"]!.inputs, { filename_prefix: "out", images: ["1", 0] });
});

// ---------- 5. object_info from other sources ----------

test("5: bare type strings, missing sections and input_order, extra keys: read as ComfyUI reads them", () => {
  const oi = {
    Src: { input: { required: { n: "INT" } }, output: ["IMAGE"], some_future_key: { a: 1 } },
    Pass: {
      input: { required: { image: "IMAGE", s: ["STRING"] }, hidden: { unique_id: "UNIQUE_ID" } },
      api_node: false,
      output: ["IMAGE"],
    },
    Out: { input: { optional: { images: "IMAGE", prefix: ["STRING", { default: "x" }] } }, output_node: true },
    NoInputs: { output: ["IMAGE"] },
  };
  const r = convertUiToApi(
    {
      nodes: [
        { id: 1, type: "Src", widgets_values: [7] },
        { id: 2, type: "Pass", widgets_values: ["hello"], inputs: [{ name: "image", type: "IMAGE", link: 1 }] },
        { id: 3, type: "Out", widgets_values: ["y"], inputs: [{ name: "images", type: "IMAGE", link: 2 }] },
        { id: 4, type: "NoInputs" },
      ],
      links: [L(1, 1, 0, 2, 0, "IMAGE"), L(2, 2, 0, 3, 0, "IMAGE")],
    },
    oi,
  );
  assert.deepEqual(r.prompt["1"]!.inputs, { n: 7 });
  assert.deepEqual(r.prompt["2"]!.inputs, { s: "hello", image: ["1", 0] });
  assert.deepEqual(r.prompt["3"]!.inputs, { prefix: "y", images: ["2", 0] });
  assert.deepEqual(r.prompt["4"]!.inputs, {});
  assert.deepEqual(r.issues, []);
});

test("5: one malformed definition fails only the nodes that use it, by name", () => {
  const oi = {
    ...real("EmptyLatentImage", "VAEDecode"),
    Broken: { input: { required: { x: 5 } }, output: ["LATENT"] },
    NotAnObject: "nope",
    BadSection: { input: { required: [["INT"]] }, output: ["LATENT"] },
  };
  const wf = {
    nodes: [
      { id: 1, type: "Broken", widgets_values: [1] },
      { id: 2, type: "NotAnObject" },
      { id: 3, type: "BadSection" },
      { id: 4, type: "EmptyLatentImage", widgets_values: [512, 512, 1] },
      { id: 5, type: "VAEDecode", inputs: [{ name: "samples", type: "LATENT", link: 1 }] },
    ],
    links: [L(1, 1, 0, 5, 0, "LATENT")],
  };
  const r = convertUiToApi(wf, oi, { dropUnknown: true });
  assert.deepEqual(Object.keys(r.prompt).sort(), ["4", "5"]);
  assert.deepEqual(r.prompt["4"]!.inputs, { width: 512, height: 512, batch_size: 1 });
  assert.deepEqual(kinds(r.issues), ["1 bad-definition", "2 bad-definition", "3 bad-definition", "5 dropped-link samples"]);
  const msg = Object.fromEntries(r.issues.map((i) => [i.node, i.message]));
  assert.match(msg["1"]!, /definition of Broken cannot be read \(input x: spec is 5\)/);
  assert.match(msg["2"]!, /NotAnObject .*string, not an object/);
  assert.match(msg["3"]!, /input.required is not an object/);
});

// ---------- hostile sizes stay linear ----------

test("40,000 same-named subgraph inputs with instance values and proxyWidgets, 200,000 widget values: linear, under 5 s", () => {
  const n = 40_000;
  const id = "5a5a5a5a-0000-4000-8000-0000000000ff";
  const oi = {
    Src: { input: {}, output: ["INT"] },
    Sink: { input: { required: { v: ["INT", {}] } } },
    Wide: { input: { required: { a: ["INT", {}] } } },
  };
  const sg = {
    id,
    inputs: Array.from({ length: n }, () => ({ name: "v", type: "INT" })),
    outputs: [],
    nodes: Array.from({ length: n }, (_, i) => ({
      id: i + 1,
      type: "Sink",
      widgets_values: [-1],
      inputs: [{ name: "v", type: "INT", widget: { name: "v" }, link: i + 1 }],
    })),
    links: Array.from({ length: n }, (_, i) => ({
      id: i + 1,
      origin_id: -10,
      origin_slot: i,
      target_id: i + 1,
      target_slot: 0,
      type: "INT",
    })),
  };
  const inst = {
    id: 2,
    type: id,
    widgets_values: Array.from({ length: n }, (_, i) => i),
    properties: { proxyWidgets: Array.from({ length: n }, () => ["-1", "v"]) },
    inputs: Array.from({ length: n }, (_, i) => ({ name: "v", type: "INT", link: i === 1 ? 1 : null })),
  };
  const t = performance.now();
  const r = convertUiToApi(
    {
      nodes: [{ id: 1, type: "Src" }, inst, { id: 3, type: "Wide", widgets_values: Array.from({ length: 200_000 }, (_, i) => i) }],
      links: [L(1, 1, 0, 2, 1, "INT")],
      definitions: { subgraphs: [sg] },
    },
    oi,
  );
  const ms = performance.now() - t;
  assert.equal(Object.keys(r.prompt).length, n + 2);
  assert.deepEqual(r.prompt["2:2"]!.inputs, { v: ["1", 0] }); // the second input named v is the one linked
  assert.deepEqual(r.prompt["2:1"]!.inputs, { v: n - 1 }); // every proxied value names the first input v: the last one holds
  assert.deepEqual(r.prompt["2:3"]!.inputs, { v: -1 }); // unlinked, no value of the instance's: the inner one
  assert.ok(ms < 5000, `${Math.round(ms)} ms`);
});

// ---------- workflow:convert: warnings, --json, --strict ----------

test("workflow:convert prints each guess, --json carries them with their kind, --strict exits 1 and writes nothing", async () => {
  const dir = mkdtempSync(join(tmpdir(), "flow-convert-"));
  writeFileSync(
    join(dir, "flowfile.ts"),
    `import { defineFlow } from ${JSON.stringify(REPO + "lib/index.ts")};
import { workflow } from ${JSON.stringify(REPO + "plugins/index.ts")};
export default defineFlow({ plugins: [workflow()] });
`,
  );
  symlinkSync(join(REPO, "node_modules"), join(dir, "node_modules"));
  const oi = jsonShared("comfy-cli/sd15_object_info.json");
  addInput(oi.KSampler, "optional", "cfg_rescale", ["FLOAT", { default: 0.7 }]);
  writeFileSync(join(dir, "oi.json"), JSON.stringify(oi));
  writeFileSync(join(dir, "sd15.json"), JSON.stringify(jsonShared("comfy-cli/sd15_ui_workflow.json")));
  const args = ["run", "workflow:convert", "--file", "sd15.json", "--object-info", "oi.json", "-o", "out.json"];
  const plain = await flow(args, { cwd: dir });
  assert.equal(plain.code, 0, plain.stdout + plain.stderr);
  assert.match(plain.stdout + plain.stderr, /node 3 \(KSampler\): widget cfg_rescale has no value in the file: default 0.7 used/);
  assert.equal(JSON.parse(readFileSync(join(dir, "out.json"), "utf8"))["3"].inputs.cfg_rescale, 0.7);
  const json = await flow([...args, "--json"], { cwd: dir });
  const data = Object.assign(
    {},
    ...json.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l))
      .filter((l) => l.type === "data")
      .map((l) => l.data),
  );
  assert.deepEqual(
    data.convert.issues.map((i: ConvertIssue) => [i.node, i.kind, i.input]),
    [["3", "default-filled", "cfg_rescale"]],
  );
  const strict = await flow(
    ["run", "workflow:convert", "--file", "sd15.json", "--object-info", "oi.json", "-o", "strict.json", "--strict"],
    { cwd: dir },
  );
  assert.equal(strict.code, 1, strict.stdout + strict.stderr);
  assert.match(strict.stdout + strict.stderr, /1 guess .*--strict: nothing written/);
  assert.ok(!existsSync(join(dir, "strict.json")));
  // with the object_info the workflow was made for, --strict passes
  writeFileSync(join(dir, "oi.json"), JSON.stringify(jsonShared("comfy-cli/sd15_object_info.json")));
  assert.equal((await flow([...args, "--strict"], { cwd: dir })).code, 0);
});

// ---------- measures ----------

test(
  "comfy-cli's sd15 fixture converts to exactly its expected API prompt, nothing guessed",
  { skip: needs("comfy-cli/sd15_ui_workflow.json") },
  () => {
    const r = convertUiToApi(jsonShared("comfy-cli/sd15_ui_workflow.json"), jsonShared("comfy-cli/sd15_object_info.json"), {
      dropUnknown: true,
    });
    assert.deepEqual(r.prompt, jsonShared("comfy-cli/sd15_expected_api.json"));
    assert.deepEqual(r.issues, []);
  },
);

/**
 * A newer ComfyUI, derived from the real object_info: widgets (with defaults) added to definitions
 * the templates use, at the end of a group or, for ImageScale, in the middle; a dynamic combo added
 * to KSampler. What the frontend exports from an older file is known by construction: the old
 * prompt plus each new widget's default (a dynamic combo's first option with its sub-widgets).
 */
const NEWER: Record<
  string,
  { group: "required" | "optional"; name: string; spec: unknown; after?: string; adds: Record<string, unknown> }[]
> = {
  KSampler: [
    { group: "optional", name: "cfg_rescale", spec: ["FLOAT", { default: 0 }], adds: { cfg_rescale: 0 } },
    {
      group: "optional",
      name: "guidance",
      spec: [
        "COMFY_DYNAMICCOMBO_V3",
        {
          options: [
            { key: "apg", inputs: { required: { eta: ["FLOAT", { default: 1 }], norm: ["FLOAT", { default: 2.5 }] } } },
            { key: "none", inputs: {} },
          ],
        },
      ],
      adds: { guidance: "apg", "guidance.eta": 1, "guidance.norm": 2.5 },
    },
  ],
  CLIPTextEncode: [{ group: "optional", name: "weight_style", spec: [["comfy", "a1111"], {}], adds: { weight_style: "comfy" } }],
  VAEDecode: [{ group: "optional", name: "tile_size", spec: ["INT", { default: 0, min: 0 }], adds: { tile_size: 0 } }],
  SaveImage: [{ group: "optional", name: "embed_workflow", spec: ["BOOLEAN", { default: true }], adds: { embed_workflow: true } }],
  LoadImage: [{ group: "optional", name: "frame", spec: ["INT", { default: 0 }], adds: { frame: 0 } }],
  UNETLoader: [{ group: "required", name: "compile", spec: ["BOOLEAN", { default: false }], adds: { compile: false } }],
  VAELoader: [
    { group: "optional", name: "dtype", spec: ["COMBO", { options: ["auto", "fp16"], default: "auto" }], adds: { dtype: "auto" } },
  ],
  EmptyLatentImage: [{ group: "optional", name: "layout", spec: [["nchw", "nhwc"], {}], adds: { layout: "nchw" } }],
  ImageScale: [
    { group: "required", name: "keep_ratio", spec: ["BOOLEAN", { default: false }], after: "height", adds: { keep_ratio: false } },
  ],
};

test("the 41 templates: with the real object_info, and with a derived newer one", { skip: SKIP_MSG }, () => {
  const files = readdirSync(SHARED + "templates/").filter((f) => f.endsWith(".json"));
  const newer = structuredClone(REAL);
  for (const [cls, adds] of Object.entries(NEWER)) for (const a of adds) addInput(newer[cls], a.group, a.name, a.spec, a.after);
  let clean = 0;
  let knownClasses = 0;
  let same = 0;
  let touched = 0;
  const byKind = new Map<string, number>();
  const misses: string[] = [];
  for (const f of files) {
    const ui = jsonShared("templates/" + f);
    const old = convertUiToApi(ui, REAL, { dropUnknown: true });
    if (!old.issues.length) clean++;
    if (!old.issues.some((i) => i.kind === "missing-class")) knownClasses++;
    for (const i of old.issues) byKind.set(i.kind, (byKind.get(i.kind) ?? 0) + 1);
    const expected: ApiPrompt = structuredClone(old.prompt);
    for (const n of Object.values(expected))
      for (const a of NEWER[n.class_type] ?? []) for (const [k, v] of Object.entries(a.adds)) if (!(k in n.inputs)) n.inputs[k] = v;
    const now = convertUiToApi(ui, newer, { dropUnknown: true });
    if (Object.values(old.prompt).some((n) => NEWER[n.class_type])) touched++;
    try {
      assert.deepEqual(now.prompt, expected);
      same++;
    } catch {
      misses.push(f);
    }
  }
  const kindsSeen = [...byKind].map(([k, n]) => `${k} ${n}`).join(", ");
  console.log(
    `# convert: real object_info: ${clean}/${files.length} templates with no guess, ${knownClasses} with every class known (${kindsSeen})`,
  );
  console.log(
    `# convert: newer object_info: ${same}/${files.length} give the frontend's prompt (${touched} use a changed definition)` +
      (misses.length ? `; misses: ${misses.join(", ")}` : ""),
  );
  assert.ok(clean >= 34, `${clean} clean`);
  assert.ok(knownClasses >= 39, `${knownClasses} with every class known`);
  assert.ok(touched >= 37, `${touched} touched`);
  assert.equal(same, files.length);
});

import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { readWorkflow } from "../../../lib/comfy/workflow-read.ts";
import { modelDeps, parseModelUrl } from "../../../lib/comfy/model-deps.ts";
import { parseModelList } from "../../../lib/comfy/data-schemas.ts";
import { HAVE_SHARED, SHARED, SKIP_MSG, jsonShared, readShared } from "./shared-data.ts";

const wf = (nodes: unknown[]) => readWorkflow({ nodes, links: [] }, "m.json");
const find = (r: ReturnType<typeof modelDeps>, name: string) => r.models.find((m) => m.name === name);

test("loader widgets map to folders by node and widget index, multi-CLIP loaders included", () => {
  const r = modelDeps(
    wf([
      { id: 1, type: "CheckpointLoader", widgets_values: ["v1.yaml", "ck.safetensors"] },
      { id: 2, type: "QuadrupleCLIPLoader", widgets_values: ["a.st", "b.safetensors", "c.safetensors", "d.safetensors"] },
      { id: 3, type: "DualCLIPLoader", widgets_values: ["l.safetensors", "t5.safetensors", "flux"] },
      { id: 4, type: "UNETLoader", widgets_values: ["u.safetensors", "default"] },
      { id: 5, type: "LoraLoader", widgets_values: ["sub\\l.safetensors", 1, 1] },
      { id: 6, type: "ModelPatchLoader", widgets_values: ["p.safetensors"] },
    ]),
  );
  assert.equal(find(r, "ck.safetensors")?.folder, "checkpoints");
  assert.equal(find(r, "v1.yaml")?.folder, "configs");
  assert.equal(find(r, "d.safetensors")?.folder, "text_encoders");
  assert.equal(find(r, "t5.safetensors")?.folder, "text_encoders");
  assert.equal(find(r, "u.safetensors")?.folder, "diffusion_models");
  assert.equal(find(r, "sub/l.safetensors")?.folder, "loras", "Windows backslash made harmless");
  assert.equal(find(r, "p.safetensors")?.folder, "model_patches");
  assert.equal(find(r, "flux"), undefined);
});

test("properties.models gives name, folder, url, hash; legacy folder aliases resolved", () => {
  const r = modelDeps(
    wf([
      {
        id: 1,
        type: "CLIPLoader",
        widgets_values: ["t.safetensors"],
        properties: {
          models: [
            {
              name: "t.safetensors",
              directory: "clip",
              url: "https://huggingface.co/o/r/resolve/main/split/t.safetensors?download=true",
              hash: "ab",
              hash_type: "sha256",
            },
          ],
        },
      },
    ]),
  );
  assert.equal(r.models.length, 1);
  const m = r.models[0];
  assert.equal(m.folder, "text_encoders");
  assert.deepEqual(m.source, { kind: "huggingface", repo: "o/r", revision: "main", path: "split/t.safetensors" });
  assert.deepEqual(m.hash, { type: "sha256", value: "ab" });
  assert.deepEqual(m.found.sort(), ["loader-widget", "properties.models"]);
});

test("API format: known loader inputs and any string ending in a model extension", () => {
  const r = modelDeps(
    readWorkflow(
      {
        "1": { class_type: "VAELoader", inputs: { vae_name: "v.safetensors" } },
        "2": { class_type: "UnetLoaderGGUF", inputs: { unet_name: "f.gguf" } },
        "3": { class_type: "X", inputs: { thing: "w.pth", text: "hello" } },
      },
      "a.json",
    ),
  );
  assert.equal(find(r, "v.safetensors")?.folder, "vae");
  assert.equal(find(r, "f.gguf")?.folder, "diffusion_models");
  assert.ok(find(r, "w.pth"));
  assert.equal(r.models.length, 3);
});

test("models used only by muted or bypassed nodes are optional", () => {
  const r = modelDeps(
    wf([
      { id: 1, type: "LoraLoader", mode: 4, widgets_values: ["a.safetensors"] },
      { id: 2, type: "LoraLoader", mode: 2, widgets_values: ["b.safetensors"] },
      { id: 3, type: "LoraLoader", widgets_values: ["b.safetensors"] },
    ]),
  );
  assert.equal(find(r, "a.safetensors")?.optional, true);
  assert.equal(find(r, "b.safetensors")?.optional, false);
});

test("source precedence: workflow url, then user map, then model-list.json", () => {
  const ml = parseModelList({
    models: [
      { name: "x", type: "lora", save_path: "default", filename: "m.safetensors", url: "https://example.com/m", filename2: 1 },
      { name: "y", type: "checkpoint", save_path: "default", filename: "u.safetensors", url: "https://example.com/list-u" },
    ],
  });
  const r = modelDeps(
    wf([
      { id: 1, type: "LoraLoader", widgets_values: ["m.safetensors"] },
      { id: 2, type: "CheckpointLoaderSimple", widgets_values: ["u.safetensors"] },
    ]),
    {
      modelList: ml,
      userModels: { "u.safetensors": "https://civitai.com/models/1234?modelVersionId=5678" },
    },
  );
  assert.equal(find(r, "m.safetensors")?.urlFrom, "model-list");
  assert.equal(find(r, "u.safetensors")?.urlFrom, "user-map");
  assert.deepEqual(find(r, "u.safetensors")?.source, { kind: "civitai", modelVersionId: "5678", modelId: "1234" });
});

test("URL parsing: HF resolve/blob, datasets, CivitAI download API", () => {
  assert.deepEqual(parseModelUrl("https://huggingface.co/Comfy-Org/x/blob/abc123/a/b.safetensors"), {
    kind: "huggingface",
    repo: "Comfy-Org/x",
    revision: "abc123",
    path: "a/b.safetensors",
  });
  assert.deepEqual(parseModelUrl("https://huggingface.co/datasets/o/d/resolve/main/f.bin"), {
    kind: "huggingface",
    repo: "datasets/o/d",
    revision: "main",
    path: "f.bin",
  });
  assert.deepEqual(parseModelUrl("https://civitai.com/api/download/models/998877?type=Model"), {
    kind: "civitai",
    modelVersionId: "998877",
  });
  assert.deepEqual(parseModelUrl("https://example.com/x"), { kind: "url" });
});

test("hostile names and URLs are refused, not returned", () => {
  const r = modelDeps(
    wf([
      { id: 1, type: "LoraLoader", widgets_values: ["../../etc/passwd.safetensors"] },
      { id: 2, type: "VAELoader", widgets_values: ["/abs.safetensors"] },
      {
        id: 3,
        type: "X",
        properties: {
          models: [
            { name: "ok.safetensors", directory: "../..", url: "https://e.com/a" },
            { name: "a;rm -rf.safetensors", directory: "loras" },
            { name: "fine.safetensors", directory: "loras", url: "file:///etc/passwd" },
          ],
        },
      },
    ]),
  );
  assert.deepEqual(
    r.models.map((m) => m.name),
    ["fine.safetensors"],
  );
  assert.equal(r.models[0].url, undefined);
  assert.equal(r.refused.length, 5);
});

test("acceptance: every properties.models entry of the 41 templates found with same name/folder/url", { skip: SKIP_MSG }, () => {
  const ml = parseModelList(jsonShared("comfyui-manager/model-list.json"));
  const files = readdirSync(SHARED + "templates/").filter((f) => f.endsWith(".json"));
  let found = 0;
  let total = 0;
  const missing: string[] = [];
  for (const f of files) {
    const raw = jsonShared("templates/" + f);
    const r = modelDeps(readWorkflow(raw, f), { modelList: ml });
    const all = [...raw.nodes, ...(raw.definitions?.subgraphs ?? []).flatMap((s: any) => s.nodes)];
    for (const n of all)
      for (const pm of n.properties?.models ?? []) {
        total++;
        if (r.models.some((m) => m.name === pm.name && m.folder === pm.directory && m.url === pm.url)) found++;
        else missing.push(`${f}: ${pm.directory}/${pm.name}`);
      }
  }
  console.log(`template properties.models found: ${found}/${total}`);
  assert.equal(found, total, missing.join("\n"));
});

test("a Hugging Face URL with a malformed escape is read as a plain URL, not thrown through the whole workflow", () => {
  assert.deepEqual(parseModelUrl("https://huggingface.co/org/repo/resolve/main/x%E0%A4%A.safetensors"), { kind: "url" });
  assert.deepEqual(parseModelUrl("https://huggingface.co/org/repo/resolve/main/..%2F..%2Fapi%2Fwhoami-v2"), { kind: "url" });
  const wf = readWorkflow(
    {
      nodes: [
        {
          id: 1,
          type: "LoraLoader",
          widgets_values: ["bad.safetensors"],
          properties: {
            models: [{ name: "bad.safetensors", directory: "loras", url: "https://huggingface.co/o/r/resolve/main/x%E0%A4%A.safetensors" }],
          },
        },
        {
          id: 2,
          type: "LoraLoader",
          widgets_values: ["good.safetensors"],
          properties: {
            models: [{ name: "good.safetensors", directory: "loras", url: "https://huggingface.co/o/r/resolve/main/good.safetensors" }],
          },
        },
      ],
      links: [],
    },
    "w.json",
  );
  const names = modelDeps(wf).models.map((m) => `${m.name}:${m.source?.kind}`);
  assert.deepEqual(names.sort(), ["bad.safetensors:url", "good.safetensors:huggingface"]);
});

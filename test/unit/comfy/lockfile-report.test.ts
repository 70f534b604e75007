import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { readWorkflow } from "../../../lib/comfy/workflow-read.ts";
import { buildIndex, coreClassesFrom, resolveWorkflowNodes } from "../../../lib/comfy/node-resolve.ts";
import { modelDeps } from "../../../lib/comfy/model-deps.ts";
import { checkLock, lockWorkflow, serializeLock, workflowContentHash, type LockFile } from "../../../lib/comfy/lockfile.ts";
import { buildDepsReport, renderDepsText } from "../../../lib/comfy/deps-report.ts";
import { parseExtensionNodeMap, parseGithubStats, parseModelList, parseObjectInfo } from "../../../lib/comfy/data-schemas.ts";
import { SHARED, SKIP_MSG, jsonShared, readShared } from "./shared-data.ts";

const map = parseExtensionNodeMap({ "https://github.com/a/pack": [["Foo"], {}] });
const idx = buildIndex({ extensionNodeMap: map, coreClasses: new Set(["LoraLoader"]) });
const json = {
  nodes: [
    { id: 1, type: "Foo", properties: { cnr_id: "pack", ver: "1.0.0" } },
    {
      id: 2,
      type: "LoraLoader",
      widgets_values: ["l.safetensors"],
      properties: { models: [{ name: "l.safetensors", directory: "loras", url: "https://e.com/l", hash: "ff" }] },
    },
    { id: 3, type: "LoraLoader", widgets_values: ["nosrc.safetensors"] },
  ],
  links: [],
};

test("lock: registry packs with version, models with url/size/sha256; unresolved listed", () => {
  const wf = readWorkflow(json, "w.json");
  const l = lockWorkflow(json, resolveWorkflowNodes(wf, idx), modelDeps(wf).models, { models: { "https://e.com/l": { size: 123 } } });
  assert.deepEqual(l.packs, [
    { kind: "registry", id: "pack", version: "1.0.0", repo: "https://github.com/a/pack", classes: ["Foo"], optional: false },
  ]);
  assert.deepEqual(l.models, [
    { folder: "loras", name: "l.safetensors", url: "https://e.com/l", size: 123, sha256: "ff", optional: false },
  ]);
  assert.deepEqual(l.unresolved, ["model loras/nosrc.safetensors: no source URL"]);
});

test("lock --check: hash ignores key order, detects changes, additions, removals", () => {
  assert.equal(workflowContentHash({ a: 1, b: [1, { c: 2, d: 3 }] }), workflowContentHash({ b: [1, { d: 3, c: 2 }], a: 1 }));
  const lock: LockFile = {
    version: 1,
    workflows: {
      w: { contentHash: workflowContentHash(json), packs: [], models: [], unresolved: [] },
      gone: { contentHash: "x", packs: [], models: [], unresolved: [] },
    },
  };
  assert.deepEqual(checkLock(lock, { w: json, n: {} }), { changed: [], added: ["n"], removed: ["gone"] });
  assert.deepEqual(checkLock(lock, { w: { ...json, links: [[1]] } }).changed, ["w"]);
  assert.ok(serializeLock(lock).endsWith("\n"));
});

test("deps report: stable JSON shape and a readable table with the how-to for missing sources", () => {
  const wf = readWorkflow(json, "w.json");
  const rep = buildDepsReport(wf, resolveWorkflowNodes(wf, idx), modelDeps(wf));
  assert.equal(rep.schema, "flow.workflow-deps/1");
  assert.deepEqual(Object.keys(rep), ["schema", "file", "format", "packs", "problems", "models", "refused", "warnings"]);
  assert.deepEqual(rep.packs[0], {
    repo: "https://github.com/a/pack",
    registryId: "pack",
    version: "1.0.0",
    commit: null,
    classes: ["Foo"],
    how: "cnr_id",
    runnersUp: [],
    optional: false,
  });
  const text = renderDepsText(rep);
  assert.match(text, /pack\s+classes used\s+source\s+version/);
  assert.match(text, /no source known for loras\/nosrc\.safetensors: add it to the flowfile/);
});

test("timing: deps (read + resolve + models + report) over the 41 templates, data already loaded", { skip: SKIP_MSG }, () => {
  let t = performance.now();
  const m = parseExtensionNodeMap(jsonShared("comfyui-manager/extension-node-map.json"));
  const real = buildIndex({
    extensionNodeMap: m,
    coreClasses: coreClassesFrom(m, parseObjectInfo(jsonShared("comfyui/object_info.json"))),
    githubStats: parseGithubStats(jsonShared("comfyui-manager/github-stats.json")),
  });
  const ml = parseModelList(jsonShared("comfyui-manager/model-list.json"));
  const load = performance.now() - t;
  const files = readdirSync(SHARED + "templates/").filter((f) => f.endsWith(".json"));
  const bufs = files.map((f) => readShared("templates/" + f));
  t = performance.now();
  for (let i = 0; i < files.length; i++) {
    const wf = readWorkflow(bufs[i], files[i]);
    renderDepsText(buildDepsReport(wf, resolveWorkflowNodes(wf, real), modelDeps(wf, { modelList: ml })));
  }
  const run = performance.now() - t;
  console.log(`41 templates: deps ${run.toFixed(0)} ms (loading + validating + indexing reference data once: ${load.toFixed(0)} ms)`);
  assert.ok(run < 1000);
});

test("lock: a model URL's token (from the flowfile's models map) never reaches flow.lock.json", () => {
  const tokenJson = {
    nodes: [
      {
        id: 2,
        type: "LoraLoader",
        widgets_values: ["l.safetensors"],
        properties: {
          models: [
            { name: "l.safetensors", directory: "loras", url: "https://civitai.com/api/download/models/9?type=Model&token=sekrit123" },
          ],
        },
      },
    ],
    links: [],
  };
  const wf = readWorkflow(tokenJson, "w.json");
  const l = lockWorkflow(tokenJson, resolveWorkflowNodes(wf, idx), modelDeps(wf).models);
  const text = serializeLock({ version: 1, workflows: { w: l } });
  assert.ok(!text.includes("sekrit123"), text);
  assert.equal(l.models[0]!.url, "https://civitai.com/api/download/models/9?type=Model");
});

// Issue #10 item 7: node ids, node types, input names, group names and versions named like
// Object.prototype's members (__proto__, constructor, toString, hasOwnProperty) are ordinary names.
// Every workflow here is JSON text, as it arrives from a file: JSON.parse gives "__proto__" own keys.
import { test } from "node:test";
import assert from "node:assert/strict";
import { convertUiToApi } from "../../../lib/comfy/convert.ts";
import { parseExtensionNodeMap, parseObjectInfo } from "../../../lib/comfy/data-schemas.ts";
import { buildDepsReport } from "../../../lib/comfy/deps-report.ts";
import { checkLock, lockWorkflow, serializeLock, workflowContentHash, type LockFile } from "../../../lib/comfy/lockfile.ts";
import { modelDeps } from "../../../lib/comfy/model-deps.ts";
import { canonicalFolder } from "../../../lib/comfy/model-folders.ts";
import { buildIndex, resolveWorkflowNodes } from "../../../lib/comfy/node-resolve.ts";
import { readWorkflow } from "../../../lib/comfy/workflow-read.ts";
import { PROTO_NAMES } from "./hostile-workflows.ts";

const own = (o: object) => Object.keys(o);
// Computed keys make own properties, as JSON.parse does ({ __proto__: x } would set the prototype).
const P = "__proto__";

const UI_TEXT = JSON.stringify({
  nodes: [
    { id: P, type: "LoraLoader", widgets_values: ["p.safetensors", 1, 1] },
    { id: "constructor", type: "constructor", widgets_values: ["c.safetensors"] },
    { id: "toString", type: "toString", properties: { models: [{ name: "constructor", directory: "toString" }] } },
    { id: "hasOwnProperty", type: "hasOwnProperty" },
    { id: 5, type: P },
    { id: 6, type: "workflow>constructor" },
    { id: 7, type: `workflow>${P}` },
  ],
  links: [],
  extra: {
    node_versions: { [P]: "1.0.0", constructor: "2.0.0" },
    groupNodes: { [P]: { nodes: [{ id: -1, index: 0, type: "VAELoader", widgets_values: ["g.safetensors"] }], links: [] } },
  },
});

const API_TEXT = JSON.stringify({
  [P]: { class_type: "LoraLoader", inputs: { lora_name: "a.safetensors" } },
  constructor: { class_type: "constructor", inputs: { constructor: "b.safetensors", [P]: "c.safetensors", toString: [P, 0] } },
  toString: { class_type: "toString", inputs: {} },
  hasOwnProperty: { class_type: "hasOwnProperty", inputs: { hasOwnProperty: "d.pt" } },
});

const idx = buildIndex({
  extensionNodeMap: parseExtensionNodeMap({ "https://github.com/a/pack": [["Foo"], { nodename_pattern: "^Foo" }] }),
  coreClasses: new Set(["LoraLoader", "VAELoader"]),
});

// [key, type] of the four nodes both workflows start with
const SAME = [
  [P, "LoraLoader"],
  ["constructor", "constructor"],
  ["toString", "toString"],
  ["hasOwnProperty", "hasOwnProperty"],
];

test("readWorkflow keeps nodes, group nodes and node_versions named like Object.prototype members", () => {
  const wf = readWorkflow(UI_TEXT, "proto-ui.json");
  assert.deepEqual(
    wf.nodes.map((n) => [n.key, n.type]),
    [...SAME, ["5", P], ["6", "workflow>constructor"], ["7:0", "VAELoader"]],
  );
  assert.equal(wf.nodes.at(-1)!.where, `group:${P}`);
  assert.deepEqual(Object.entries(wf.nodeVersions), [
    [P, "1.0.0"],
    ["constructor", "2.0.0"],
  ]);
  const api = readWorkflow(API_TEXT, "proto-api.json");
  assert.equal(api.format, "api");
  assert.deepEqual(
    api.nodes.map((n) => [n.key, n.type]),
    SAME,
  );
  assert.deepEqual(own(api.nodes[1]!.apiInputs!), ["constructor", P, "toString"]);
});

test("deps: classes named constructor, toString, hasOwnProperty, __proto__ are unknown (missing), not Object's members", () => {
  for (const [text, file] of [
    [UI_TEXT, "proto-ui.json"],
    [API_TEXT, "proto-api.json"],
  ] as const) {
    const wf = readWorkflow(text, file);
    const res = resolveWorkflowNodes(wf, idx);
    for (const name of PROTO_NAMES) {
      const c = res.classes.find((x) => x.classType === name);
      if (!c) continue; // the API workflow has no class "__proto__" (its node id is)
      assert.equal(c.status, "unknown", `${file} ${name}: ${JSON.stringify(c)}`);
      assert.equal(c.pack, undefined);
    }
    assert.deepEqual(res.packs, []);
    const report = buildDepsReport(wf, res, modelDeps(wf));
    const expected = file === "proto-ui.json" ? [...PROTO_NAMES] : PROTO_NAMES.filter((n) => n !== P);
    assert.deepEqual(report.problems.map((p) => p.classType).sort(), [...expected].sort());
    for (const p of report.problems) assert.match(p.reason, new RegExp(`no pack claims "${p.classType}"`));
  }
});

test("model deps: prototype-named loaders, inputs, folders and user-map names are plain data", () => {
  const user = { "other.safetensors": "https://example.com/o.safetensors" };
  const ui = modelDeps(readWorkflow(UI_TEXT, "proto-ui.json"), { userModels: user });
  assert.deepEqual(ui.refused, []);
  assert.deepEqual(ui.models.map((m) => `${m.folder ?? "?"}/${m.name} ${m.url ?? "-"}`).sort(), [
    "?/c.safetensors -",
    "loras/p.safetensors -",
    "toString/constructor -",
    "vae/g.safetensors -",
  ]);
  const api = modelDeps(readWorkflow(API_TEXT, "proto-api.json"), { userModels: user });
  assert.deepEqual(api.refused, []);
  const apiModels = api.models.map((m) => `${m.folder ?? "?"}/${m.name}`).sort();
  assert.deepEqual(apiModels, ["?/b.safetensors", "?/c.safetensors", "?/d.pt", "loras/a.safetensors"]);
  for (const name of PROTO_NAMES) assert.equal(canonicalFolder(name), undefined, name);
  assert.equal(canonicalFolder("unet"), "diffusion_models");
});

test("convert: a node with id __proto__ is kept with its inputs; prototype-named inputs and classes too", () => {
  const oi = parseObjectInfo({
    Src: { input: { required: { n: ["INT", {}] } }, output: ["IMAGE"] },
    Out: { input: { required: { images: ["IMAGE"] } }, output: [], output_node: true },
  });
  const L = (id: number, from: string | number, to: string | number, slot = 0) => [id, from, 0, to, slot, "IMAGE"];
  const ui = JSON.parse(
    JSON.stringify({
      nodes: [
        { id: P, type: "Src", widgets_values: [5] },
        {
          id: "constructor",
          type: "Out",
          inputs: [
            { name: "images", link: 1 },
            { name: P, link: 2 },
          ],
        },
        { id: "toString", type: "constructor", widgets_values: [1] },
        { id: "hasOwnProperty", type: "toString" },
        { id: 9, type: "Out", inputs: [{ name: "images", link: 3 }] },
        // A SetNode is never emitted: a link from one dangles and must be dropped, even named valueOf.
        { id: "valueOf", type: "SetNode", widgets_values: ["w"] },
        { id: 10, type: "Out", inputs: [{ name: "images", link: 4 }] },
      ],
      links: [L(1, P, "constructor"), L(2, P, "constructor", 1), L(3, "hasOwnProperty", 9), L(4, "valueOf", 10)],
    }),
  );
  const r = convertUiToApi(ui, oi, { file: "proto.json" });
  const written = JSON.parse(JSON.stringify(r.prompt, null, 2));
  assert.deepEqual(
    written,
    JSON.parse(
      JSON.stringify({
        [P]: { inputs: { n: 5 }, class_type: "Src", _meta: { title: "Src" } },
        constructor: { inputs: { images: [P, 0], [P]: [P, 0] }, class_type: "Out", _meta: { title: "Out" } },
        toString: { inputs: {}, class_type: "constructor", _meta: { title: "constructor" } },
        hasOwnProperty: { inputs: {}, class_type: "toString", _meta: { title: "toString" } },
        "9": { inputs: { images: ["hasOwnProperty", 0] }, class_type: "Out", _meta: { title: "Out" } },
        "10": { inputs: {}, class_type: "Out", _meta: { title: "Out" } },
      }),
    ),
  );
  assert.deepEqual(r.issues.map((i) => `${i.node} ${i.classType}`).sort(), ["10 Out", "hasOwnProperty toString", "toString constructor"]);
  assert.match(r.issues.find((i) => i.node === "10")!.message, /linked to dropped node valueOf/);
});

test("lockfile: prototype-named classes unresolved, the __proto__ node hashed, workflows named like members compared", () => {
  const api = readWorkflow(API_TEXT, "proto-api.json");
  const json = JSON.parse(API_TEXT);
  const l = lockWorkflow(json, resolveWorkflowNodes(api, idx), modelDeps(api).models);
  for (const name of ["constructor", "toString", "hasOwnProperty"])
    assert.ok(
      l.unresolved.some((u) => u.startsWith(`class ${name}: `)),
      `${name}: ${l.unresolved.join("; ")}`,
    );
  // The __proto__ node is part of the content: editing it changes the hash.
  const edited = JSON.parse(API_TEXT.replace("a.safetensors", "z.safetensors"));
  assert.notEqual(workflowContentHash(edited), l.contentHash);
  const lock: LockFile = { version: 1, workflows: JSON.parse(JSON.stringify({ [P]: l, constructor: l })) };
  assert.deepEqual(own(JSON.parse(serializeLock(lock)).workflows).sort(), [P, "constructor"].sort());
  const current = JSON.parse(JSON.stringify({ [P]: json, toString: json }));
  assert.deepEqual(checkLock(lock, current), { changed: [], added: ["toString"], removed: ["constructor"] });
});

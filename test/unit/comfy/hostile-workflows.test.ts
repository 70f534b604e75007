// Issue #10 item 6: crafted workflows must neither hang nor crash. Each case runs in a worker with a
// hard time and memory limit (bounded.ts) and must finish in under 5 s.
import { test } from "node:test";
import assert from "node:assert/strict";
import { bounded, describe, type Outcome } from "./bounded.ts";
import { doublingSubgraphs, sgId } from "./hostile-workflows.ts";
import { convertUiToApi } from "../../../lib/comfy/convert.ts";
import { parseObjectInfo } from "../../../lib/comfy/data-schemas.ts";
import { readWorkflow } from "../../../lib/comfy/workflow-read.ts";
import { needs } from "./shared-data.ts";

const FAST_MS = 5000;

function finishedFast(o: Outcome): void {
  assert.equal(o.killed, undefined, describe(o));
  assert.ok(o.ms !== undefined && o.ms < FAST_MS, `took ${o.ms} ms: ${describe(o)}`);
}
function refusedNaming(o: Outcome, file: string, what: RegExp): void {
  finishedFast(o);
  assert.ok(o.error, `expected an error, got ${describe(o)}`);
  assert.equal(o.error.name, "WorkflowReadError", describe(o));
  assert.ok(o.error.message.startsWith(`${file}: `), o.error.message);
  assert.match(o.error.message, what);
}
function succeeded(o: Outcome): any {
  finishedFast(o);
  assert.equal(o.error, undefined, describe(o));
  return o.value;
}

const LIMIT = /more than 50,000 nodes/;
const DEEP = /nested more than 500 levels deep/;

test("a 31-level doubling subgraph (8 KB, 2^30 leaves) stops at 50,000 expanded nodes with an error naming the file", async () => {
  assert.ok(JSON.stringify(doublingSubgraphs(31)).length < 9000);
  refusedNaming(await bounded("deps", { gen: "doublingSubgraphs", n: 31, file: "bombs/sg31.json" }), "bombs/sg31.json", LIMIT);
});

test("the same bomb made of group nodes (no depth guard before) stops at the same limit", async () => {
  refusedNaming(await bounded("deps", { gen: "doublingGroupNodes", n: 31, file: "bombs/groups31.json" }), "bombs/groups31.json", LIMIT);
});

test("convert: a 20-level doubling subgraph stops at the limit instead of writing a 100 MB prompt", async () => {
  const o = await bounded("convert", { gen: "doublingSubgraphsConvertible", n: 20, file: "bombs/sg20.json" });
  refusedNaming(o, "bombs/sg20.json", LIMIT);
});

test("the limit is exact: 15 levels (49,150 expanded nodes) are read and converted in full, 16 levels are refused", async () => {
  const leaves = 2 ** 14;
  const d = succeeded(await bounded("deps", { gen: "doublingSubgraphs", n: 15, file: "sg15.json" }));
  assert.equal(d.nodes, leaves + 1);
  assert.deepEqual(d.models, ["loras/leaf.safetensors", "vae/top.safetensors"]);
  const c = succeeded(await bounded("convert", { gen: "doublingSubgraphsConvertible", n: 15, file: "sg15.json" }));
  assert.equal(c.nodes, leaves + 1);
  refusedNaming(await bounded("deps", { gen: "doublingSubgraphs", n: 16, file: "sg16.json" }), "sg16.json", LIMIT);
  refusedNaming(await bounded("convert", { gen: "doublingSubgraphsConvertible", n: 16, file: "sg16.json" }), "sg16.json", LIMIT);
});

test("a group node holding itself is reported as a cycle; the rest of the workflow is read", async () => {
  const d = succeeded(await bounded("deps", { gen: "groupNodeRing", n: 1, file: "self.json" }));
  assert.deepEqual(d.models, ["loras/in-ring0.safetensors", "vae/outside.safetensors"]);
  assert.ok(
    d.warnings.some((w: string) => /cycle/.test(w) && /ring0 > .*ring0/.test(w)),
    d.warnings.join("\n"),
  );
});

test("group nodes holding each other (rings of 2 and 5, both type spellings) are reported as a cycle", async () => {
  for (const ring of [2, 5]) {
    const d = succeeded(await bounded("deps", { gen: "groupNodeRing", n: ring, file: "ring.json" }));
    const inside = Array.from({ length: ring }, (_, i) => `loras/in-ring${i}.safetensors`);
    assert.deepEqual(d.models, [...inside, "vae/outside.safetensors"]);
    assert.equal(d.warnings.filter((w: string) => /cycle/.test(w)).length, 1, d.warnings.join("\n"));
  }
});

test("subgraphs that contain each other are reported as a cycle, naming the subgraphs", () => {
  const [a, b] = [sgId(1), sgId(2)];
  const sg = (id: string, inner: string) => ({
    id,
    inputs: [],
    outputs: [],
    nodes: [
      { id: 1, type: inner },
      { id: 2, type: "VAELoader" },
    ],
    links: [],
  });
  const json = { nodes: [{ id: 7, type: a }], links: [], definitions: { subgraphs: [sg(a, b), sg(b, a)] } };
  const wf = readWorkflow(json, "mutual.json");
  assert.deepEqual(
    wf.nodes.map((n) => n.key),
    ["7:1:2", "7:2"],
  );
  assert.equal(wf.warnings.length, 1);
  assert.match(wf.warnings[0]!, /cycle/);
  assert.ok(wf.warnings[0]!.includes(`${a} > ${b} > ${a}`), wf.warnings[0]);
  const c = convertUiToApi(json, parseObjectInfo({ VAELoader: { input: { required: {} }, output: ["VAE"] } }), { file: "mutual.json" });
  assert.deepEqual(Object.keys(c.prompt).sort(), ["7:1:2", "7:2"]);
  const issues = c.issues.map((i) => `${i.node}: ${i.message}`);
  assert.deepEqual(issues, [`7:1:1: subgraph ${a} nests itself (cycle: ${a} > ${b} > ${a}); not expanded`]);
});

test("a 60,000-node Reroute chain converts without a stack overflow: the output reads the source", async () => {
  const n = 60_000;
  const c = succeeded(await bounded("convert", { gen: "rerouteChain", n, file: "reroutes.json", out: String(n + 2) }));
  assert.deepEqual(c.out.inputs, { images: ["1", 0] });
  assert.equal(c.nodes, 2);
  const d = succeeded(await bounded("deps", { gen: "rerouteChain", n, file: "reroutes.json" }));
  assert.equal(d.nodes, n + 2);
});

test("a 60,000-hop chain of bypassed nodes and Set/Get wires converts: the output reads the source", async () => {
  const n = 60_000;
  // ids: 1 source, then per two hops one bypassed node and a Set/Get pair, then the output
  const out = String(2 + n / 2 + n);
  const c = succeeded(await bounded("convert", { gen: "bypassAndVirtualWireChain", n, file: "wires.json", out }));
  assert.deepEqual(c.out?.inputs, { images: ["1", 0] });
});

test("50,000 top-level nodes naming 50,000 different model files, or one file 50,000 times: model deps in < 5 s", async () => {
  const n = 50_000;
  const d = succeeded(await bounded("deps", { gen: "distinctModels", n, file: "many.json" }));
  assert.equal(d.models.length, n);
  const s = succeeded(await bounded("deps", { gen: "sameModel", n, file: "same.json" }));
  assert.deepEqual(s.models, ["?/same.safetensors"]);
});

test(
  "resolution: 50,000 classes claimed by two packs in use (real map) are tie-broken in < 5 s",
  { skip: needs("comfyui-manager/extension-node-map.json") },
  async () => {
    const n = 50_000;
    const r = succeeded(await bounded("resolveManyAmbiguous", { n }));
    const pair = ["https://github.com/jtrue/comfyui-jarue", "https://github.com/jtrue/comfyui-wordembeddings"];
    assert.deepEqual(r.candidates.sort(), pair, "the map changed: pick other names");
    assert.equal(r.resolved, n);
    assert.equal(r.packs.length, 1, r.packs.join(", "));
    assert.ok(r.ms < FAST_MS, `resolution took ${r.ms} ms`);
  },
);

test("150,000 top-level nodes naming different model files: the text report renders (no 150,000-argument call)", async () => {
  const n = 150_000;
  const d = succeeded(await bounded("depsText", { gen: "distinctModels", n, file: "wide.json" }));
  assert.equal(d.models, n);
  assert.ok(d.textLines > n, String(d.textLines));
});

test("canonicalJson (the lock's content hash) walks 100,000 levels of arrays or objects without recursion", async () => {
  for (const kind of ["array", "object"] as const) {
    const r = succeeded(await bounded("canonical", { kind, n: 100_000 }));
    assert.equal(r.equal, true, kind);
  }
});

test("100,000 levels of [[[...]]] in widgets_values or inputs: a clear error naming the file, no stack overflow", async () => {
  for (const gen of ["deepUiArray", "deepUiObject", "deepApiArray"]) {
    refusedNaming(await bounded("deps", { gen, n: 100_000, file: `deep/${gen}.json` }), `deep/${gen}.json`, DEEP);
  }
  refusedNaming(await bounded("convert", { gen: "deepUiArray", n: 100_000, file: "deep/c.json" }), "deep/c.json", DEEP);
  // Ordinary nesting is untouched: 400 levels read, convert and serialise.
  const d = succeeded(await bounded("deps", { gen: "deepUiArray", n: 400, file: "ok.json" }));
  assert.deepEqual(d.models, ["loras/a.safetensors"]);
  const c = succeeded(await bounded("convert", { gen: "deepUiArray", n: 400, file: "ok.json" }));
  assert.equal(c.nodes, 2);
});

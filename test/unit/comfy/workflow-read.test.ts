import { test } from "node:test";
import assert from "node:assert/strict";
import { deflateSync } from "node:zlib";
import { readWorkflow, WorkflowReadError, pngTextChunks } from "../../../lib/comfy/workflow-read.ts";

const ui = (nodes: unknown[], extra: Record<string, unknown> = {}) => ({ nodes, links: [], ...extra });

test("UI format: nodes with modes, muted=2 bypassed=4", () => {
  const wf = readWorkflow(
    ui([
      { id: 1, type: "A" },
      { id: 2, type: "B", mode: 2 },
      { id: 3, type: "C", mode: 4 },
    ]),
    "x.json",
  );
  assert.equal(wf.format, "ui");
  assert.deepEqual(
    wf.nodes.map((n) => [n.key, n.effectiveMode]),
    [
      ["1", "active"],
      ["2", "muted"],
      ["3", "bypassed"],
    ],
  );
});

test("API format is read", () => {
  const wf = readWorkflow(JSON.stringify({ "3": { class_type: "KSampler", inputs: { seed: 1 } } }), "api.json");
  assert.equal(wf.format, "api");
  assert.equal(wf.nodes[0].type, "KSampler");
  assert.deepEqual(wf.nodes[0].apiInputs, { seed: 1 });
});

test("subgraphs nested at any depth are flattened; a muted instance mutes its interior", () => {
  const A = "11111111-1111-1111-1111-111111111111";
  const B = "22222222-2222-2222-2222-222222222222";
  const wf = readWorkflow(
    ui(
      [
        { id: 5, type: A, mode: 2 },
        { id: 6, type: A },
      ],
      {
        definitions: {
          subgraphs: [
            {
              id: A,
              name: "outer",
              inputs: [],
              outputs: [],
              nodes: [
                { id: 1, type: B },
                { id: 2, type: "LoraLoader" },
              ],
              links: [],
            },
            { id: B, name: "inner", inputs: [], outputs: [], nodes: [{ id: 7, type: "UNETLoader" }], links: [] },
          ],
        },
      },
    ),
    "sg.json",
  );
  assert.deepEqual(
    wf.nodes.map((n) => `${n.key}:${n.type}:${n.effectiveMode}:${n.where}`),
    [
      "5:1:7:UNETLoader:muted:subgraph:inner",
      "5:2:LoraLoader:muted:subgraph:outer",
      "6:1:7:UNETLoader:active:subgraph:inner",
      "6:2:LoraLoader:active:subgraph:outer",
    ],
  );
});

test("a self-nesting subgraph does not loop forever", () => {
  const A = "11111111-1111-1111-1111-111111111111";
  const wf = readWorkflow(
    ui([{ id: 1, type: A }], { definitions: { subgraphs: [{ id: A, inputs: [], outputs: [], nodes: [{ id: 1, type: A }], links: [] }] } }),
    "loop.json",
  );
  assert.equal(wf.nodes.length, 0);
  assert.ok(wf.warnings.some((w) => w.includes("nests itself")));
});

test("group nodes (extra.groupNodes) are expanded", () => {
  const wf = readWorkflow(
    ui([{ id: 9, type: "workflow>pair" }], {
      extra: {
        groupNodes: {
          pair: {
            nodes: [
              { id: -1, type: "CLIPTextEncode" },
              { id: -1, type: "Foo" },
            ],
          },
        },
      },
    }),
    "g.json",
  );
  assert.deepEqual(
    wf.nodes.map((n) => [n.key, n.type, n.where]),
    [
      ["9:0", "CLIPTextEncode", "group:pair"],
      ["9:1", "Foo", "group:pair"],
    ],
  );
});

function chunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  return Buffer.concat([len, Buffer.from(type, "latin1"), data, Buffer.alloc(4)]); // CRC not checked
}
const SIG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

test("PNG: workflow from a tEXt chunk, prompt from a compressed iTXt chunk", () => {
  const w = JSON.stringify(ui([{ id: 1, type: "CheckpointLoaderSimple", widgets_values: ["a.safetensors"] }]));
  const png = Buffer.concat([
    SIG,
    chunk("IHDR", Buffer.alloc(13)),
    chunk("tEXt", Buffer.from(`workflow\0${w}`, "latin1")),
    chunk("IEND", Buffer.alloc(0)),
  ]);
  assert.equal(readWorkflow(png, "a.png").nodes[0].type, "CheckpointLoaderSimple");
  const p = JSON.stringify({ "1": { class_type: "VAELoader", inputs: { vae_name: "ü.safetensors" } } });
  const itxt = Buffer.concat([Buffer.from("prompt\0\x01\x00\0\0", "latin1"), deflateSync(Buffer.from(p, "utf8"))]);
  const png2 = Buffer.concat([SIG, chunk("iTXt", itxt), chunk("IEND", Buffer.alloc(0))]);
  const wf = readWorkflow(png2, "b.png");
  assert.equal(wf.format, "api");
  assert.equal(wf.nodes[0].apiInputs?.vae_name, "ü.safetensors");
  assert.deepEqual(Object.keys(pngTextChunks(png2)), ["prompt"]);
});

test("anything else is refused, naming the file and what was expected", () => {
  for (const bad of ["not json", "[1,2]", '{"a":1}', Buffer.concat([SIG, chunk("IEND", Buffer.alloc(0))])]) {
    assert.throws(
      () => readWorkflow(bad, "dir/bad.json"),
      (e: unknown) => e instanceof WorkflowReadError && /dir\/bad\.json/.test(e.message) && /expected a ComfyUI workflow/.test(e.message),
    );
  }
});

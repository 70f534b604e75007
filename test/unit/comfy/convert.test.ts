import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { convertUiToApi } from "../../../lib/comfy/convert.ts";
import { parseObjectInfo } from "../../../lib/comfy/data-schemas.ts";
import { readWorkflow } from "../../../lib/comfy/workflow-read.ts";
import { SHARED, SKIP_MSG, jsonShared, needs } from "./shared-data.ts";

const oi = parseObjectInfo({
  Src: { input: { required: { n: ["INT", {}] } }, output: ["IMAGE"] },
  Seeded: {
    input: { required: { seed: ["INT", { control_after_generate: true }], steps: ["INT", {}], image: ["IMAGE"] } },
    output: ["IMAGE"],
  },
  Pass: { input: { required: { image: ["IMAGE"], s: ["STRING", {}] } }, output: ["IMAGE"] },
  Out: { input: { required: { images: ["IMAGE"] } }, output: [], output_node: true, display_name: "Output" },
});
const L = (id: number, o: number, os: number, t: number, ts: number) => [id, o, os, t, ts, "IMAGE"];

test("widgets in object_info order, control_after_generate companion dropped, links after", () => {
  const r = convertUiToApi(
    {
      nodes: [
        { id: 1, type: "Src", widgets_values: [7] },
        { id: 2, type: "Seeded", widgets_values: [42, "randomize", 20], inputs: [{ name: "image", link: 1 }] },
      ],
      links: [L(1, 1, 0, 2, 0)],
    },
    oi,
  );
  assert.deepEqual(r.prompt["2"].inputs, { seed: 42, steps: 20, image: ["1", 0] });
  assert.equal(r.prompt["2"]._meta?.title, "Seeded");
});

test("links followed through Reroute and bypassed nodes; muted and Note nodes dropped; output kept", () => {
  const r = convertUiToApi(
    {
      nodes: [
        { id: 1, type: "Src", widgets_values: [1] },
        { id: 2, type: "Reroute", inputs: [{ name: "", type: "*", link: 1 }], outputs: [{ type: "*" }] },
        {
          id: 3,
          type: "Pass",
          mode: 4,
          widgets_values: ["x"],
          inputs: [{ name: "image", type: "IMAGE", link: 2 }],
          outputs: [{ type: "IMAGE" }],
        },
        { id: 4, type: "Out", inputs: [{ name: "images", link: 3 }] },
        { id: 5, type: "Pass", mode: 2, widgets_values: ["m"] },
        { id: 6, type: "Note", widgets_values: ["hi"] },
      ],
      links: [L(1, 1, 0, 2, 0), L(2, 2, 0, 3, 0), L(3, 3, 0, 4, 0)],
    },
    oi,
  );
  assert.deepEqual(Object.keys(r.prompt).sort(), ["1", "4"]);
  assert.deepEqual(r.prompt["4"].inputs, { images: ["1", 0] });
});

test("PrimitiveNode values are inlined", () => {
  const r = convertUiToApi(
    {
      nodes: [
        { id: 1, type: "PrimitiveNode", widgets_values: [99, "fixed"], outputs: [{ type: "INT" }] },
        { id: 2, type: "Src", widgets_values: [0], inputs: [{ name: "n", widget: { name: "n" }, link: 1 }] },
      ],
      links: [[1, 1, 0, 2, 0, "INT"]],
    },
    oi,
  );
  assert.deepEqual(r.prompt, { "2": { inputs: { n: 99 }, class_type: "Src", _meta: { title: "Src" } } });
});

test("subgraphs expand with ids <instance>:<inner>, links crossing the boundary both ways", () => {
  const SG = "11111111-1111-1111-1111-111111111111";
  const r = convertUiToApi(
    {
      nodes: [
        { id: 1, type: "Src", widgets_values: [3] },
        { id: 2, type: SG, inputs: [{ name: "img", link: 1 }], outputs: [{ name: "out", links: [2] }] },
        { id: 3, type: "Out", inputs: [{ name: "images", link: 2 }] },
      ],
      links: [L(1, 1, 0, 2, 0), L(2, 2, 0, 3, 0)],
      definitions: {
        subgraphs: [
          {
            id: SG,
            inputs: [{ name: "img" }],
            outputs: [{ name: "out" }],
            nodes: [{ id: 5, type: "Pass", widgets_values: ["s"], inputs: [{ name: "image", link: 10 }] }],
            links: [
              { id: 10, origin_id: -10, origin_slot: 0, target_id: 5, target_slot: 0 },
              { id: 11, origin_id: 5, origin_slot: 0, target_id: -20, target_slot: 0 },
            ],
          },
        ],
      },
    },
    oi,
  );
  assert.deepEqual(r.prompt["2:5"].inputs, { image: ["1", 0], s: "s" });
  assert.deepEqual(r.prompt["3"].inputs, { images: ["2:5", 0] });
});

test(
  "acceptance: sd15 comfy-cli fixture converts to exactly the expected API JSON",
  { skip: needs("comfy-cli/sd15_ui_workflow.json") },
  () => {
    const r = convertUiToApi(jsonShared("comfy-cli/sd15_ui_workflow.json"), parseObjectInfo(jsonShared("comfy-cli/sd15_object_info.json")));
    assert.deepEqual(r.prompt, jsonShared("comfy-cli/sd15_expected_api.json"));
    assert.deepEqual(r.issues, []);
  },
);

test("acceptance: subgraph template expands with no node lost", { skip: needs("comfy-cli/subgraph_template_ui.json") }, () => {
  const ui = jsonShared("comfy-cli/subgraph_template_ui.json");
  const r = convertUiToApi(ui, parseObjectInfo(jsonShared("comfy-cli/subgraph_object_info.json")));
  // Every executable node inside every instance must appear (frontend-only ones excepted).
  const expected = readWorkflow(ui, "sg.json")
    .nodes.filter((n) => !["MarkdownNote", "Note"].includes(n.type))
    .map((n) => n.key)
    .sort();
  assert.deepEqual(Object.keys(r.prompt).sort(), expected);
  assert.equal(expected.length, 15);
});

test("acceptance: the 41 templates with the real object_info: every class but a few custom ones known", { skip: SKIP_MSG }, () => {
  const big = parseObjectInfo(jsonShared("comfyui/object_info.json"));
  const files = readdirSync(SHARED + "templates/").filter((f) => f.endsWith(".json"));
  let known = 0;
  const notes: string[] = [];
  for (const f of files) {
    const missing = convertUiToApi(jsonShared("templates/" + f), big).issues.filter((i) => i.kind === "missing-class");
    if (!missing.length) known++;
    else notes.push(`${f}: ${[...new Set(missing.map((i) => i.classType))].join(", ")} not in object_info`);
  }
  console.log(`templates whose every class is in the object_info: ${known}/${files.length}; ${notes.join("; ")}`);
  assert.ok(known >= 39);
});

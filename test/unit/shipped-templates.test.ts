// The user's four workflows ship in workflow_templates/ as copies of their sources (official
// ComfyUI templates, InfiniteTalk's example; see workflow_templates/PROVENANCE.md) with the Note and
// MarkdownNote nodes removed: their prose is not ours. This test is the recipe: each shipped file
// must be byte for byte what `withoutNotes` makes of its source, so a re-copy is reproducible.
//   FLOW_WRITE_FIXTURES=1 node test/run.mjs shipped-templates     # (re)writes the four files
//
// And the three core ones run on the lab's stand-in ComfyUI (test/lab/standin/server.mjs), whose
// core classes are a real ComfyUI's: converted with that object_info, each is accepted as ComfyUI
// validates a prompt and leaves a PNG; what ComfyUI refuses, it refuses.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { convertUiToApi } from "../../lib/comfy/convert.ts";
import { parseObjectInfo } from "../../lib/comfy/data-schemas.ts";
import { modelDeps } from "../../lib/comfy/model-deps.ts";
import { readWorkflow, type ApiPrompt } from "../../lib/comfy/workflow-read.ts";
import { REPO } from "../support/cli.ts";
import { freePort } from "../support/sshd.ts";
import { serverScript } from "../lab/standin/image.ts";
import { dataPath, FIXTURES } from "./comfy/shared-data.ts";

/** shipped file in workflow_templates/ -> its source under the reference data */
const SOURCES: Record<string, string> = {
  "qwen_base_txt2img.json": "templates/image_qwen_image.json",
  "qwen_img_edit.json": "templates/image_qwen_image_edit.json",
  "flux_depth.json": "templates/flux_depth_lora_example.json",
  "infinitetalk.json": "infinitetalk/wanvideo_infinitetalk_single_example.json",
};
const NOTES = new Set(["Note", "MarkdownNote"]);
const WRITE = process.env.FLOW_WRITE_FIXTURES === "1";

type Json = Record<string, any>;

/** Link ids and the nodes they join, for both link shapes ([id, from, slot, to, slot, type] and subgraphs' objects). */
const linkEnds = (l: any): { id: unknown; from: unknown; to: unknown } =>
  Array.isArray(l) ? { id: l[0], from: l[1], to: l[3] } : { id: l?.id, from: l?.origin_id, to: l?.target_id };

/** One graph (the top level or a subgraph) without its notes, nor links to or from them. */
function stripGraph(g: Json): Json {
  if (!Array.isArray(g.nodes)) return g;
  const gone = new Set(g.nodes.filter((n: Json) => NOTES.has(n.type)).map((n: Json) => n.id));
  if (!gone.size) return g;
  const links: unknown[] = Array.isArray(g.links) ? g.links : [];
  const dropped = new Set(
    links
      .map(linkEnds)
      .filter((e) => gone.has(e.from) || gone.has(e.to))
      .map((e) => e.id),
  );
  const nodes = g.nodes
    .filter((n: Json) => !gone.has(n.id))
    .map((n: Json) =>
      dropped.size
        ? {
            ...n,
            ...(Array.isArray(n.inputs) && { inputs: n.inputs.map((i: Json) => (dropped.has(i.link) ? { ...i, link: null } : i)) }),
            ...(Array.isArray(n.outputs) && {
              outputs: n.outputs.map((o: Json) =>
                Array.isArray(o.links) ? { ...o, links: o.links.filter((id: unknown) => !dropped.has(id)) } : o,
              ),
            }),
          }
        : n,
    );
  return { ...g, nodes, ...(Array.isArray(g.links) && { links: links.filter((l) => !dropped.has(linkEnds(l).id)) }) };
}

/** A UI-format workflow without Note / MarkdownNote nodes (subgraphs' too); everything else as it was, key order kept. */
export function withoutNotes(wf: Json): Json {
  const out = stripGraph(wf);
  const subgraphs = wf.definitions?.subgraphs;
  if (!Array.isArray(subgraphs)) return out;
  return { ...out, definitions: { ...wf.definitions, subgraphs: subgraphs.map(stripGraph) } };
}

/** The shipped text: the sources are JSON.stringify(_, null, 2) without a final newline, so the copies are too. */
const render = (wf: Json) => JSON.stringify(wf, null, 2);

describe("workflow_templates/: the user's workflows as shipped", () => {
  for (const [name, rel] of Object.entries(SOURCES)) {
    const src = dataPath(rel);
    test(`${name} is ${rel} without its notes`, { skip: src ? false : `reference data missing: ${rel}` }, () => {
      const source = JSON.parse(readFileSync(src!, "utf8")) as Json;
      const expected = render(withoutNotes(source));
      const file = join(REPO, "workflow_templates", name);
      if (WRITE) writeFileSync(file, expected);
      assert.ok(existsSync(file), `${file} is missing (FLOW_WRITE_FIXTURES=1 writes it)`);
      assert.equal(readFileSync(file, "utf8"), expected);
      // what was taken away is exactly the notes
      const kept = new Set((JSON.parse(expected).nodes as Json[]).map((n) => n.id));
      const removed = (source.nodes as Json[]).filter((n) => !kept.has(n.id));
      assert.ok(removed.every((n) => NOTES.has(n.type)));
    });
  }

  test("no shipped template carries a note; each has its graph and the groups' titles", () => {
    for (const name of Object.keys(SOURCES)) {
      const wf = JSON.parse(readFileSync(join(REPO, "workflow_templates", name), "utf8")) as Json;
      const graphs = [wf, ...(wf.definitions?.subgraphs ?? [])];
      assert.deepEqual(
        graphs.flatMap((g: Json) => g.nodes.filter((n: Json) => NOTES.has(n.type)).map((n: Json) => n.id)),
        [],
        name,
      );
      assert.ok(wf.nodes.length >= 10 && wf.links.length >= 10, name);
      for (const g of wf.groups ?? []) assert.equal(typeof g.title, "string", `${name}: a group keeps its title`);
    }
  });
});

describe("withoutNotes", () => {
  test("drops a note, the links to and from it (both link shapes) and their ids on the nodes they joined", () => {
    const wf = {
      nodes: [
        { id: 1, type: "LoadImage", outputs: [{ name: "IMAGE", links: [10, 11] }] },
        { id: 2, type: "Note", inputs: [{ name: "x", link: 10 }], outputs: [{ name: "y", links: [12] }], widgets_values: ["prose"] },
        {
          id: 3,
          type: "SaveImage",
          inputs: [
            { name: "images", link: 11 },
            { name: "extra", link: 12 },
          ],
        },
      ],
      links: [
        [10, 1, 0, 2, 0, "IMAGE"],
        [11, 1, 0, 3, 0, "IMAGE"],
        [12, 2, 0, 3, 1, "*"],
      ],
      groups: [{ title: "Models" }],
      definitions: {
        subgraphs: [
          {
            id: "s",
            nodes: [
              { id: 7, type: "MarkdownNote" },
              { id: 8, type: "VAEDecode", inputs: [{ name: "vae", link: 5 }] },
            ],
            links: [{ id: 5, origin_id: 7, target_id: 8 }],
          },
        ],
      },
    };
    assert.deepEqual(withoutNotes(wf), {
      nodes: [
        { id: 1, type: "LoadImage", outputs: [{ name: "IMAGE", links: [11] }] },
        {
          id: 3,
          type: "SaveImage",
          inputs: [
            { name: "images", link: 11 },
            { name: "extra", link: null },
          ],
        },
      ],
      links: [[11, 1, 0, 3, 0, "IMAGE"]],
      groups: [{ title: "Models" }],
      definitions: { subgraphs: [{ id: "s", nodes: [{ id: 8, type: "VAEDecode", inputs: [{ name: "vae", link: null }] }], links: [] }] },
    });
  });

  test("a workflow without notes comes back as it was", () => {
    const wf = { nodes: [{ id: 1, type: "KSampler" }], links: [], extra: { ds: { scale: 1 } } };
    assert.equal(withoutNotes(wf), wf);
  });
});

describe("the shipped core templates on the lab's stand-in ComfyUI", { timeout: 60_000 }, () => {
  const CORE = ["qwen_base_txt2img.json", "qwen_img_edit.json", "flux_depth.json"];
  const oi = parseObjectInfo(JSON.parse(readFileSync(join(FIXTURES, "comfyui/object_info.json"), "utf8")));
  let home = "";
  let url = "";
  let stop = () => {};
  const upload = () => join(home, "input", "upload.png"); // where comfyui-api writes an uploaded image

  before(async () => {
    home = mkdtempSync(join(tmpdir(), "flow-shipped-"));
    mkdirSync(join(home, "input"), { recursive: true });
    // the model files the templates load, as small stand-ins in their folders
    for (const name of CORE) {
      for (const m of modelDeps(readWorkflow(readFileSync(join(REPO, "workflow_templates", name)), name)).models) {
        mkdirSync(join(home, "models", m.folder!), { recursive: true });
        writeFileSync(join(home, "models", m.folder!, m.name), "a stand-in model file");
      }
    }
    writeFileSync(upload(), Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
    const port = await freePort();
    const env = { PATH: process.env.PATH, COMFY_HOME: home, STANDIN_PYTHON: "none", PROMPT_DURATION_MS: "20" };
    const proc = spawn(process.execPath, [serverScript, "--listen", "127.0.0.1", "--port", String(port)], { env, stdio: "ignore" });
    stop = () => proc.kill("SIGTERM");
    url = `http://127.0.0.1:${port}`;
    for (let i = 0; ; i++) {
      if (
        await fetch(`${url}/`).then(
          (r) => r.ok,
          () => false,
        )
      )
        break;
      if (i > 200) throw new Error("the stand-in ComfyUI did not start");
      await new Promise((r) => setTimeout(r, 50));
    }
  });
  after(() => {
    stop();
    if (home) rmSync(home, { recursive: true, force: true });
  });

  const convert = (name: string): ApiPrompt => {
    const { prompt, issues } = convertUiToApi(JSON.parse(readFileSync(join(REPO, "workflow_templates", name), "utf8")), oi);
    assert.deepEqual(issues, [], name);
    // comfyui-api hands ComfyUI an uploaded image as the absolute path it saved it to
    for (const n of Object.values(prompt)) if (n.class_type === "LoadImage") n.inputs.image = upload();
    return prompt;
  };
  const post = async (prompt: ApiPrompt) => {
    const r = await fetch(`${url}/prompt`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ prompt }),
    });
    return { status: r.status, json: (await r.json()) as any };
  };
  const outputsOf = async (id: string) => {
    for (let i = 0; i < 200; i++) {
      const h = ((await (await fetch(`${url}/history/${id}`)).json()) as any)[id];
      if (h) return h.outputs as Record<string, { images?: { filename: string; type: string }[] }>;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`prompt ${id} never finished`);
  };

  for (const name of CORE) {
    test(`${name}: every class known, accepted, one PNG from its SaveImage`, async () => {
      const prompt = convert(name);
      const r = await post(prompt);
      assert.equal(r.status, 200, JSON.stringify(r.json));
      assert.deepEqual(r.json.node_errors, {});
      const saves = Object.keys(prompt).filter((k) => prompt[k]!.class_type === "SaveImage");
      const outputs = await outputsOf(r.json.prompt_id);
      assert.deepEqual(Object.keys(outputs), saves);
      const file = outputs[saves[0]!]!.images![0]!;
      assert.equal(file.type, "output");
      assert.deepEqual([...readFileSync(join(home, "output", file.filename)).subarray(1, 4)], [0x50, 0x4e, 0x47]);
    });
  }

  test("refused as ComfyUI refuses: a required input missing, a model file not on disk, an upload that is not there", async () => {
    const prompt = convert("qwen_base_txt2img.json");
    const [sampler] = Object.entries(prompt).find(([, n]) => n.class_type === "KSampler")!;
    const [unet] = Object.entries(prompt).find(([, n]) => n.class_type === "UNETLoader")!;
    delete prompt[sampler]!.inputs.seed;
    prompt[unet]!.inputs.unet_name = "not-on-disk.safetensors";
    const r = await post(prompt);
    assert.equal(r.status, 400);
    assert.equal(r.json.error.type, "prompt_outputs_failed_validation");
    assert.deepEqual(
      r.json.node_errors[sampler].errors.map((e: any) => [e.type, e.details]),
      [["required_input_missing", "seed"]],
    );
    assert.equal(r.json.node_errors[unet].errors[0].type, "value_not_in_list");

    const edit = convert("qwen_img_edit.json");
    const [loader] = Object.entries(edit).find(([, n]) => n.class_type === "LoadImage")!;
    edit[loader]!.inputs.image = join(home, "input", "gone.png");
    const e = await post(edit);
    assert.equal(e.status, 400);
    assert.equal(e.json.node_errors[loader].errors[0].type, "custom_validation_failed");
  });
});

describe("infinitetalk.json converted with the lab's object_info: the generated packs' nodes as their real packs name them", () => {
  // object_info_infinitetalk.json over a real ComfyUI's: ImageResizeKJv2, VHS_VideoCombine, AudioCrop and
  // AudioSeparation come from the lab's generated packs, declared as KJNodes, VideoHelperSuite and
  // audio-separation-nodes declare them (test/support/pack-definitions.ts); their widget values must land
  // on those names.
  const fixture = join(FIXTURES, "comfyui/object_info_infinitetalk.json");
  const link = Symbol("a link");
  const EXPECTED: Record<string, Record<string, unknown>> = {
    ImageResizeKJv2: {
      image: link,
      width: 832,
      height: 480,
      upscale_method: "lanczos",
      keep_proportion: "crop",
      pad_color: "0, 0, 0",
      crop_position: "center",
      divisible_by: 2,
      device: "cpu",
    },
    VHS_VideoCombine: {
      images: link,
      audio: link,
      frame_rate: 25,
      loop_count: 0,
      filename_prefix: "WanVideo2_1_multitalk",
      format: "video/h264-mp4",
      pingpong: false,
      save_output: false,
    },
    AudioCrop: { audio: link, start_time: "0:00", end_time: "10:00" },
    AudioSeparation: { audio: link, chunk_fade_shape: "linear", chunk_length: 10, chunk_overlap: 0.1 },
  };
  // the widgets video/h264-mp4 adds after `format` (the combo's `formats` option), with the workflow's values:
  // ComfyUI's frontend sends them; a converter that does not lay them out may leave them out
  const H264_WIDGETS: Record<string, unknown> = { pix_fmt: "yuv420p", crf: 19, save_metadata: true, trim_to_audio: false };

  test(
    "each of the four has its real inputs with the workflow's values, nothing else",
    { skip: existsSync(fixture) ? false : `${fixture} is missing` },
    () => {
      const core = JSON.parse(readFileSync(join(FIXTURES, "comfyui/object_info.json"), "utf8")) as Json;
      const oi = parseObjectInfo({ ...core, ...(JSON.parse(readFileSync(fixture, "utf8")) as Json) });
      const { prompt, issues } = convertUiToApi(
        JSON.parse(readFileSync(join(REPO, "workflow_templates", "infinitetalk.json"), "utf8")),
        oi,
      );
      for (const [cls, expected] of Object.entries(EXPECTED)) {
        const nodes = Object.entries(prompt).filter(([, n]) => n.class_type === cls);
        assert.equal(nodes.length, 1, cls);
        const [id, node] = nodes[0]!;
        const extra = cls === "VHS_VideoCombine" ? H264_WIDGETS : {};
        assert.deepEqual(
          Object.keys(node.inputs).filter((k) => !Object.hasOwn(expected, k) && !Object.hasOwn(extra, k)),
          [],
          `${cls}: inputs its pack does not declare`,
        );
        for (const [name, want] of Object.entries({ ...expected, ...extra })) {
          const got = node.inputs[name];
          if (want === link)
            assert.ok(Array.isArray(got) && got.length === 2 && Object.hasOwn(prompt, String(got[0])), `${cls}.${name}: ${got}`);
          // a format widget may be missing; when there, it has the workflow's value
          else if (Object.hasOwn(expected, name) || got !== undefined) assert.deepEqual(got, want, `${cls}.${name}`);
        }
        const mine = issues.filter((i) => i.node === id);
        const formatWidget = (m: string) => Object.keys(H264_WIDGETS).some((w) => m.includes(`widget ${w} `));
        assert.deepEqual(
          mine.filter((i) => !(cls === "VHS_VideoCombine" && formatWidget(i.message))).map((i) => i.message),
          [],
          cls,
        );
      }
      // the output node: Video Combine, as VideoHelperSuite declares it
      assert.equal(oi.VHS_VideoCombine?.output_node, true);
    },
  );
});

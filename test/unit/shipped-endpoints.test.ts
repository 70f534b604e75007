// The user's four endpoints in workflows/ are what workflow:generate makes from workflow_templates/
// today, and proven (type-checked against comfyui-api's source, round trip, every parameter): the
// project's own `workflow:generate --check`, as CI runs it. Then their parameters, by name.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { flow, REPO } from "../support/cli.ts";

const VENDOR = resolve(REPO, "../shared/vendor/comfyui-api");
const skip = existsSync(join(VENDOR, "src/types.ts")) ? false : `no comfyui-api source at ${VENDOR}`;
const ENDPOINTS = ["qwen/qwen_base_txt2img.ts", "qwen/qwen_img_edit.ts", "flux/flux_depth.ts", "wan/infinitetalk.ts"];

test("workflow:generate --check: the four shipped endpoints are up to date and proven", { skip, timeout: 180_000 }, async () => {
  const r = await flow(["run", "workflow:generate", "--check", "--strict"], { cwd: REPO, env: { FLOW_LAB: "1" } });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  for (const e of ENDPOINTS) assert.ok(r.stdout.includes(`workflows/${e}`), `${e} checked:\n${r.stdout}`);
});

/** Field name -> the text of its zod chain, from the generated RequestSchema. */
function fields(rel: string): Map<string, string> {
  const text = readFileSync(join(REPO, "workflows", rel), "utf8");
  const body = text.slice(text.indexOf("const RequestSchema = z.object({"), text.indexOf("\n});\n"));
  const out = new Map<string, string>();
  let cur = "";
  for (const line of body.split("\n").slice(1)) {
    const m = /^ {2}([A-Za-z_][A-Za-z0-9_]*): (.*)$/.exec(line);
    if (m) out.set((cur = m[1]!), m[2]!);
    else if (cur) out.set(cur, `${out.get(cur)} ${line.trim()}`);
  }
  return out;
}
const required = (chain: string) => !/\.optional\(\)|\.default\(/.test(chain);

test("the shipped endpoints' parameters, by name", () => {
  const base = fields("qwen/qwen_base_txt2img.ts");
  for (const f of ["prompt", "negative_prompt", "seed", "steps", "cfg", "sampler_name", "scheduler", "width", "height"]) {
    assert.ok(base.has(f), `qwen_base_txt2img: ${f} in ${[...base.keys()]}`);
  }
  assert.match(base.get("sampler_name")!, /^config\.samplers/);
  assert.match(base.get("seed")!, /Math\.random/);

  const edit = fields("qwen/qwen_img_edit.ts");
  assert.ok(edit.has("image") && required(edit.get("image")!), "qwen_img_edit: a required image");

  const depth = fields("flux/flux_depth.ts");
  assert.ok([...depth].some(([, c]) => required(c) && /LoadImage\.image/.test(c)), "flux_depth: the control image, required");
  assert.ok([...depth.keys()].some((k) => /strength/.test(k)), "flux_depth: the LoRA strength");

  const talk = fields("wan/infinitetalk.ts");
  const media = [...talk].filter(([, c]) => required(c));
  assert.ok(media.some(([, c]) => /LoadImage\.image/.test(c)), `infinitetalk: an image input in ${[...talk.keys()]}`);
  assert.ok(media.some(([, c]) => /LoadAudio\.audio/.test(c)), `infinitetalk: an audio input in ${[...talk.keys()]}`);
  assert.match(talk.get("prompt") ?? "", /WanVideoTextEncode/);
});

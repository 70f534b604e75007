// What an endpoint's prompt changes from the export so comfyui-api can serve it: savers save, and a
// pack's upload node comfyui-api cannot fill becomes the core loader with the same output.
import { test } from "node:test";
import assert from "node:assert/strict";
import { prepareApiPrompt } from "../../lib/comfy/endpoint-prompt.ts";
import type { ObjectInfo } from "../../lib/comfy/data-schemas.ts";

const def = (output: string[]) => ({ input: { required: {} }, output, output_name: output, name: "x", category: "", output_node: false });
const oi = {
  LoadImage: def(["IMAGE", "MASK"]),
  ImageOrVideoUpload: { ...def(["IMAGE"]), display_name: "WanVideo Reference Image/Video Upload" },
  OtherUpload: def(["LATENT"]),
} as unknown as ObjectInfo;

test("a saver that does not save is made to, and the export itself is left as it was", () => {
  const exported = {
    "1": { class_type: "VHS_VideoCombine", inputs: { filename_prefix: "talk", save_output: false, images: ["2", 0] } },
    "2": { class_type: "Thing", inputs: {} },
  };
  const r = prepareApiPrompt(exported as never, oi);
  assert.equal(r.prompt["1"]!.inputs.save_output, true);
  assert.equal(exported["1"].inputs.save_output, false);
  assert.match(r.changes[0]!, /^1 \(VHS_VideoCombine\): save_output true/);
});

test("ImageOrVideoUpload becomes LoadImage with the exported file, links kept; not when the used slot's type differs", () => {
  const exported = {
    "5": { class_type: "ImageOrVideoUpload", inputs: { "input file": "moon.mp4", stride: 72 }, _meta: { title: "Reference" } },
    "6": { class_type: "ImageResizeKJv2", inputs: { image: ["5", 0], width: 512 } },
  };
  const r = prepareApiPrompt(exported as never, oi);
  assert.deepEqual(r.prompt["5"], { class_type: "LoadImage", inputs: { image: "moon.mp4" }, _meta: { title: "Reference" } });
  assert.deepEqual(r.prompt["6"]!.inputs.image, ["5", 0]);
  assert.match(r.changes[0]!, /5 \(ImageOrVideoUpload\): LoadImage/);
  // the class's own display name as title would now name the wrong class: dropped
  const shown = { ...exported, "5": { ...exported["5"], _meta: { title: "WanVideo Reference Image/Video Upload" } } };
  assert.equal(prepareApiPrompt(shown as never, oi).prompt["5"]!._meta, undefined);
  // a slot the loader does not give: left alone
  const odd = {
    "5": { class_type: "ImageOrVideoUpload", inputs: { "input file": "a.png" } },
    "6": { class_type: "X", inputs: { i: ["5", 1] } },
  };
  assert.equal(prepareApiPrompt(odd as never, oi).prompt["5"]!.class_type, "ImageOrVideoUpload");
  // without the loader's definition there is nothing to check the types against
  const noLoader = { ImageOrVideoUpload: def(["IMAGE"]) } as unknown as ObjectInfo;
  assert.equal(prepareApiPrompt(exported as never, noLoader).prompt["5"]!.class_type, "ImageOrVideoUpload");
});

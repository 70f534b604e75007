// The API prompt an endpoint serves, made from the exported one where comfyui-api needs it to
// differ; the generator and the proof both start from this, so the round trip compares like with
// like. Two facts of comfyui-api 1.18 (src/comfy-node-preprocessors.ts):
// - it returns only outputs that are saved: a saver with `save_output: false` (VideoHelperSuite's
//   preview setting) gives the caller nothing, and a prompt with no saver is refused;
// - it downloads a URL or base64 input only into the loaders it knows (any `image` input, LoadVideo,
//   VHS_LoadVideo*, LoadAudio): an upload node of a pack it does not know keeps a file name the
//   caller cannot supply, so such a node becomes the core loader with the same output at that slot.
import type { ObjectInfo } from "./data-schemas.ts";
import type { ApiPrompt } from "./workflow-read.ts";
import { getOwn } from "./own-keys.ts";

interface UploadSwap {
  /** the loader comfyui-api preprocesses, and its input that takes the URL or base64 */
  loader: string;
  input: string;
  /** output slot of the pack's node -> the loader's slot with the same type */
  slots: Record<number, number>;
}

/** Pack upload nodes whose output comfyui-api's own loaders give (types checked against object_info before swapping). */
export const UPLOAD_SWAPS: Record<string, UploadSwap> = {
  // WanVideoWrapper's reference image/video upload: IMAGE at 0, as LoadImage's IMAGE at 0
  ImageOrVideoUpload: { loader: "LoadImage", input: "image", slots: { 0: 0 } },
};

export interface PreparedPrompt {
  prompt: ApiPrompt;
  /** what was changed from the export, a line each, for the user and the file's header */
  changes: string[];
}

const isLink = (v: unknown): v is [string, number] => Array.isArray(v) && v.length === 2 && typeof v[1] === "number";

export function prepareApiPrompt(exported: ApiPrompt, objectInfo: ObjectInfo): PreparedPrompt {
  const prompt = structuredClone(exported) as ApiPrompt;
  const changes: string[] = [];
  for (const id of Object.keys(prompt)) {
    const node = prompt[id]!;
    if (typeof getOwn(node.inputs, "filename_prefix") === "string" && getOwn(node.inputs, "save_output") === false) {
      node.inputs.save_output = true;
      changes.push(`${id} (${node.class_type}): save_output true, so comfyui-api returns its output`);
    }
  }
  for (const id of Object.keys(prompt)) {
    const node = prompt[id]!;
    const swap = getOwn(UPLOAD_SWAPS, node.class_type);
    const loaderDef = swap && getOwn(objectInfo, swap.loader);
    const ownDef = swap && getOwn(objectInfo, node.class_type);
    if (!swap || !loaderDef || !ownDef) continue;
    // every slot another node reads must map to a loader slot of the same type
    const used = new Set<number>();
    for (const other of Object.values(prompt)) for (const v of Object.values(other.inputs)) if (isLink(v) && v[0] === id) used.add(v[1]);
    const ok = [...used].every((s) => swap.slots[s] !== undefined && ownDef.output?.[s] === loaderDef.output?.[swap.slots[s]!]);
    if (!ok) continue;
    for (const other of Object.values(prompt))
      for (const [k, v] of Object.entries(other.inputs)) if (isLink(v) && v[0] === id) other.inputs[k] = [id, swap.slots[v[1]]!];
    const was = node.class_type;
    // the exported file stays the value (the generator makes it the required media field)
    const file = Object.values(node.inputs).find((v): v is string => typeof v === "string" && v !== "") ?? "input.png";
    // a title that only named the old class would now name the wrong one; the user's own title stays
    const title = node._meta?.title;
    const own = title !== undefined && title !== was && title !== ownDef.display_name;
    prompt[id] = { class_type: swap.loader, inputs: { [swap.input]: file }, ...(own ? { _meta: node._meta } : {}) };
    changes.push(`${id} (${was}): ${swap.loader}, which comfyui-api fills from a URL or base64 input`);
  }
  return { prompt, changes };
}

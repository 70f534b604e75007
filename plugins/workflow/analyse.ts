// What the local workflow tasks share: the reference data (one reported step) and one workflow's
// analysis (node packs resolved, model files found) against it.
import type { TaskContext } from "../../lib/index.ts";
import type { ObjectInfo } from "../../lib/comfy/data-schemas.ts";
import { resolveWorkflowNodes, type ResolveIndex, type WorkflowResolution } from "../../lib/comfy/node-resolve.ts";
import { modelDeps } from "../../lib/comfy/model-deps.ts";
import type { Workflow } from "../../lib/comfy/workflow-read.ts";
import { comfyDataUrl, loadRefData, withObjectInfo, type RefData } from "../shared/refdata.ts";
import { readObjectInfoFile } from "./object-info.ts";

export interface Analysed {
  name: string;
  /** what the lock hashes */
  json: unknown;
  wf: Workflow;
  nodes: WorkflowResolution;
  models: ReturnType<typeof modelDeps>;
}

export function analyse(
  name: string,
  wf: Workflow,
  json: unknown,
  index: ResolveIndex,
  ref: RefData,
  userModels: Record<string, string>,
): Analysed {
  return { name, json, wf, nodes: resolveWorkflowNodes(wf, index), models: modelDeps(wf, { modelList: ref.modelList, userModels }) };
}

/** The reference data, as the step "reference data" (stale-copy warnings shown). */
export async function loadRef(ctx: TaskContext, offline: boolean): Promise<RefData> {
  let ref!: RefData;
  const baseUrl = comfyDataUrl(process.env, ctx.flow.settings.comfyDataUrl);
  await ctx.step("reference data", async () => {
    ref = await loadRefData({ baseUrl, offline });
    for (const w of ref.warnings) ctx.warn(w);
    return { status: "ok", note: `${baseUrl}${offline ? " (offline)" : ""}` };
  });
  return ref;
}

/** The index to resolve with: the reference data's, with a saved /object_info applied when one is given. */
export async function resolveIndex(ref: RefData, objectInfoFile: string | undefined): Promise<ResolveIndex> {
  const oi: ObjectInfo | undefined = objectInfoFile ? await readObjectInfoFile(objectInfoFile) : undefined;
  return withObjectInfo(ref.index, oi);
}

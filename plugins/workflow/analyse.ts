// What the local workflow tasks share: the reference data (one reported step) and one workflow's
// analysis (node packs resolved, model files found) against it. The model analysis also takes the
// flowfile's folders and the loaders a saved /object_info shows: both are facts of the run, kept
// beside its reference data so that every caller of analyse() gets them.
import type { TaskContext } from "../../lib/index.ts";
import type { ObjectInfo } from "../../lib/comfy/data-schemas.ts";
import { resolveWorkflowNodes, type ResolveIndex, type WorkflowResolution } from "../../lib/comfy/node-resolve.ts";
import { modelDeps } from "../../lib/comfy/model-deps.ts";
import { folderListingsFromObjectInfo, inferLoaderInputs } from "../../lib/comfy/custom-loaders.ts";
import type { LoaderInput } from "../../lib/comfy/model-folders.ts";
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

interface RunModelFacts {
  /** the flowfile's { folder } entries */
  userFolders?: Record<string, string>;
  /** custom loaders' folders read off the saved /object_info */
  loaderInputs?: Record<string, LoaderInput[]>;
}

const runFacts = new WeakMap<RefData, RunModelFacts>();
const factsOf = (ref: RefData) => {
  let f = runFacts.get(ref);
  if (!f) runFacts.set(ref, (f = {}));
  return f;
};

export function analyse(
  name: string,
  wf: Workflow,
  json: unknown,
  index: ResolveIndex,
  ref: RefData,
  userModels: Record<string, string>,
): Analysed {
  const { userFolders, loaderInputs } = runFacts.get(ref) ?? {};
  const models = modelDeps(wf, { modelList: ref.modelList, userModels, userFolders, loaderInputs });
  return { name, json, wf, nodes: resolveWorkflowNodes(wf, index), models };
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
  // a fresh run's facts: nothing of an earlier run in this process carries over
  runFacts.set(ref, { userFolders: ctx.flow.modelFolders });
  return ref;
}

/** Custom loaders' folders from a host's /object_info: its combos matched against the folder listings its core loaders show. */
export function objectInfoLoaders(oi: ObjectInfo): Record<string, LoaderInput[]> {
  return inferLoaderInputs(oi, folderListingsFromObjectInfo(oi));
}

/**
 * The index to resolve with: the reference data's, with a saved /object_info applied when one is
 * given (and the custom loaders' folders it shows kept for analyse()).
 */
export async function resolveIndex(ref: RefData, objectInfoFile: string | undefined): Promise<ResolveIndex> {
  const oi: ObjectInfo | undefined = objectInfoFile ? await readObjectInfoFile(objectInfoFile) : undefined;
  if (oi) factsOf(ref).loaderInputs = objectInfoLoaders(oi);
  return withObjectInfo(ref.index, oi);
}

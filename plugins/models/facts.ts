// The facts the models tasks decide from: which models the workflows need (read here, from the
// project), what the host's models volume holds (one batched scan), and where each needed file
// comes from (resolved here, where the tokens are). Each is one reported step or a pure function.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { TaskError, type TaskContext } from "../../lib/index.ts";
import { comfyLayout } from "../../lib/comfy/deploy.ts";
import { dataRootOf } from "../../lib/host-data.ts";
import { modelDeps } from "../../lib/comfy/model-deps.ts";
import { isHfUrl } from "../../lib/comfy/hf-url.ts";
import { joinInside, safeFolder, safeModelRelPath } from "../../lib/comfy/safe-names.ts";
import type { ModelList } from "../../lib/comfy/data-schemas.ts";
import { comfyDataUrl, loadRefData } from "../shared/refdata.ts";
import { readWorkflowFile, workflowFiles } from "../shared/workflow-files.ts";
import { mapLimit } from "../shared/map-limit.ts";
import { verifyHfToken } from "../shared/hf.ts";
import { parseLock, type LockFile } from "../../lib/comfy/lockfile.ts";
import { LOCK_FILE } from "../workflow/index.ts";
import { scanCommand } from "./commands.ts";
import { finalPath, parseScan, type Needed, type Scan, type WorkflowDeps } from "./plan.ts";
import { resolveEnv, resolveModel, sourcesByName, type Resolved } from "./resolve.ts";
import type { ModelsOptions } from "./index.ts";

export const modelsRoot = (ctx: TaskContext) => comfyLayout(dataRootOf(ctx)).models;

const plural = (n: number, one: string) => `${n} ${one}${n === 1 ? "" : "s"}`;

/**
 * What every workflow needs. model-list.json only fills in sources workflows do not give: without it we go on.
 * withTemplates: every file in workflow_templates/ too, besides the given files (cleanup's keep-set), and
 * an unreadable workflow stops the task instead of being skipped.
 */
export async function loadDeps(
  ctx: TaskContext,
  files: string[] | undefined,
  offline: boolean,
  withTemplates = false,
): Promise<WorkflowDeps[]> {
  const out: WorkflowDeps[] = [];
  await ctx.step("workflows", async () => {
    let chosen = workflowFiles(ctx.projectDir, files);
    if (withTemplates && files?.length) {
      let all: typeof chosen = [];
      try {
        all = workflowFiles(ctx.projectDir);
      } catch {
        /* no workflow_templates/: the given files are all there is */
      }
      chosen = [...all, ...chosen.filter((g) => !all.some((a) => a.abs === g.abs))];
    }
    let modelList: ModelList | undefined;
    try {
      modelList = (await loadRefData({ baseUrl: comfyDataUrl(process.env, ctx.flow.settings.comfyDataUrl), offline })).modelList;
    } catch (e) {
      const why = (e as Error).message.split("\n")[0];
      ctx.warn(`reference data unavailable (${why}): using the workflows' own model URLs and the flowfile's models map only`);
    }
    const bad: string[] = [];
    for (const f of chosen) {
      // One bad file (unreadable, a workflow bomb, ...) is named and skipped; the others' models still count.
      try {
        const wf = (await readWorkflowFile(f)).wf;
        const deps = modelDeps(wf, { modelList, userModels: ctx.flow.models, userFolders: ctx.flow.modelFolders });
        for (const r of deps.refused) ctx.warn(`${f.name}: refused ${JSON.stringify(r.value)} (node ${r.node}): ${r.reason}`);
        out.push({ workflow: f.name, models: deps.models, snapshots: deps.snapshots });
      } catch (e) {
        const msg = (e as Error).message;
        ctx.warn(msg.startsWith(`${f.name}: `) ? msg : `${f.name}: ${msg}`);
        bad.push(f.name);
      }
    }
    // Cleanup keeps what workflows need: with one unreadable, a model it needs would look unused.
    if (withTemplates && bad.length)
      throw new TaskError(`cannot tell which models ${bad.join(", ")} need: nothing is removed until they read`);
    const n = new Set(out.flatMap((w) => w.models.map((m) => `${m.folder}/${m.name}`))).size;
    const note = `${plural(out.length, "workflow")}, ${plural(n, "model")}`;
    return bad.length ? { status: "failed", note: `${note}; unreadable: ${bad.join(", ")}` } : { status: "ok", note };
  });
  return out;
}

/** The host's models volume: download state, free space, every file (one round trip). */
export async function scanHost(ctx: TaskContext): Promise<Scan> {
  return parseScan(await ctx.sh(scanCommand(modelsRoot(ctx), ctx.flow.settings.remoteDir)));
}

/** One key per file as it lands (aliases and sub-paths folded, as neededModels merges them). */
export const keyOf = (n: { folder?: string; name: string }) => (n.folder ? finalPath(n.folder, n.name) : `?/${n.name}`);

/** `<models root>/<folder>/<file>`, proven to stay inside the root. */
export function targetOf(root: string, n: Needed): { ok: true; value: string } | { ok: false; reason: string } {
  const f = safeFolder(n.folder);
  if (!f.ok) return f;
  const m = safeModelRelPath(n.name);
  if (!m.ok) return m;
  return joinInside(root, f.value, m.value);
}

const envOf = (ctx: TaskContext, plugin: ModelsOptions) =>
  resolveEnv(process.env, ctx.secrets, plugin.mirrors, ctx.flow.settings.allowHosts);

/**
 * When HF_TOKEN is set and a needed file is on Hugging Face, the step "HF_TOKEN": asked once per
 * run (whoAmI), a wrong token stops the task naming HF_TOKEN (never its value) before any lookup.
 */
export async function checkHfToken(ctx: TaskContext, needed: Needed[], plugin: ModelsOptions): Promise<void> {
  const env = envOf(ctx, plugin);
  const token = env.hfToken;
  if (!token || !needed.some((n) => !n.conflict && n.dep.url && isHfUrl(n.dep.url))) return;
  await ctx.step("HF_TOKEN", async () => {
    const who = await verifyHfToken({ hubUrl: env.hfUrl, token, allowHosts: env.allowHosts });
    return { status: "ok", note: `accepted for ${who}` };
  });
}

/** Where each needed file comes from, keyed by keyOf. */
export async function resolveAll(ctx: TaskContext, needed: Needed[], plugin: ModelsOptions): Promise<Map<string, Resolved>> {
  const env = envOf(ctx, plugin);
  const out = new Map<string, Resolved>();
  // a file whose workflows disagree on its source is not resolved (nor downloaded): its reason says why
  await mapLimit(needed, 8, async (n) => {
    out.set(keyOf(n), n.conflict ? { ok: false, reason: n.conflict } : await resolveModel(n.dep, env));
  });
  return out;
}

/** flow.lock.json of the project, when there is a readable one (an unreadable one is named and left aside). */
async function readProjectLock(ctx: TaskContext): Promise<LockFile | undefined> {
  let text: string;
  try {
    text = await readFile(join(ctx.projectDir, LOCK_FILE), "utf8");
  } catch {
    return undefined;
  }
  const lock = parseLock(text);
  if (!lock) ctx.warn(`${LOCK_FILE} is not a lock file this flow reads: its entries are not used (run flow run workflow:lock)`);
  return lock;
}

/**
 * The step "sources by name" for the models tasks: flow.lock.json's entries first, then
 * settings.modelRepos (resolve.ts sourcesByName); the models are completed in place.
 */
export async function fillSources(ctx: TaskContext, deps: WorkflowDeps[], offline: boolean, plugin: ModelsOptions): Promise<void> {
  if (!deps.some((w) => w.models.some((m) => !m.url) || w.snapshots?.length)) return;
  const lock = await readProjectLock(ctx);
  const work = deps.map((w) => ({ workflow: w.workflow, models: w.models, snapshots: w.snapshots ?? [] }));
  await sourcesByName(ctx, work, { offline, lock, env: envOf(ctx, plugin) });
}

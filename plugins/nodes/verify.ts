// What ComfyUI on the host actually loaded: /object_info's classes (each with the python_module it
// came from) and the packs its log says failed to import. The last word after any install, update
// or ComfyUI update: every class the workflows use must be there, or the task fails naming them.
import { TaskError, type TaskContext } from "../../lib/index.ts";
import { publishedUrl } from "../../lib/commands/docker.ts";
import { objectInfoCommand } from "../workflow/object-info.ts";
import { parseImportFailures, type ImportFailure } from "../../lib/comfy/import-log.ts";
import { CONTAINER, lastLogLines, readEndpoints } from "../comfyui-api/health.ts";
import { packsOfWorkflows, type WantedPack } from "./wanted.ts";

export interface LoadedClass {
  name: string;
  /** `custom_nodes.<folder>` for a pack's class, `nodes` / `comfy_extras...` for core */
  module: string;
}

/** /object_info from the host's ComfyUI, as class -> python_module. */
export async function loadedClasses(ctx: TaskContext, container = CONTAINER): Promise<LoadedClass[]> {
  const ends = await readEndpoints(ctx, container);
  const url = publishedUrl(ends.comfy, "/object_info");
  // the same request as workflow:object-info; read leniently (names and python_module only): one odd
  // definition of some pack must not hide what loaded
  const r = await ctx.exec(objectInfoCommand(publishedUrl(ends.comfy, "/")));
  if (r.code !== 0) throw new TaskError(`ComfyUI did not answer ${url} on the host: ${r.stderr.trim() || `curl exit ${r.code}`}`);
  let j: Record<string, { python_module?: unknown }>;
  try {
    j = JSON.parse(r.stdout);
  } catch {
    throw new TaskError(`${url}: not JSON`);
  }
  return Object.entries(j).map(([name, d]) => ({ name, module: typeof d?.python_module === "string" ? d.python_module : "" }));
}

/** The packs the container's log says ComfyUI could not import (its last start). */
export async function importFailures(ctx: TaskContext, container = CONTAINER): Promise<ImportFailure[]> {
  return parseImportFailures(await lastLogLines(ctx, 5000, container));
}

export interface Missing {
  cls: string;
  pack?: string;
}

export function missingClasses(packs: Pick<WantedPack, "dir" | "classes">[], loaded: LoadedClass[]): Missing[] {
  const have = new Set(loaded.map((c) => c.name));
  return packs.flatMap((p) => p.classes.filter((c) => !have.has(c)).map((cls) => ({ cls, pack: p.dir })));
}

/**
 * The step that ends install, update and remove: every class the packs bring is loaded, and none
 * of the packs is in the import failures of ComfyUI's last start (a pack named on the command line
 * brings classes nobody listed: its import is the proof).
 */
export async function verifyClasses(ctx: TaskContext, packs: WantedPack[], container = CONTAINER): Promise<void> {
  await ctx.step("ComfyUI loaded every pack and every class the workflows use", async () => {
    if (ctx.dryRun) return { status: "skipped", note: "dry run" };
    const loaded = await loadedClasses(ctx, container);
    const missing = missingClasses(packs, loaded);
    const failures = await importFailures(ctx, container).catch(() => []);
    const failedPacks = packs.filter((p) => failures.some((f) => f.pack.toLowerCase() === p.dir.toLowerCase()));
    if (!missing.length && !failedPacks.length) {
      const n = packs.reduce((s, p) => s + p.classes.length, 0);
      return { status: "ok", note: `${packs.length} packs loaded${n ? `, ${n} classes` : ""}` };
    }
    const byPack = new Map<string, string[]>(failedPacks.map((p) => [p.dir, []]));
    for (const m of missing) byPack.set(m.pack ?? "?", [...(byPack.get(m.pack ?? "?") ?? []), m.cls]);
    const lines = [...byPack].map(([pack, classes]) => {
      const f = failures.find((x) => x.pack.toLowerCase() === pack.toLowerCase());
      const why = f ? `ComfyUI could not import it${f.error ? `: ${f.error}` : ""}` : "";
      return `${pack}: ${classes.length ? `${classes.join(", ")} missing` : ""}${classes.length && why ? " (" + why + ")" : why}`;
    });
    ctx.emit({ missingClasses: missing, importFailed: failures });
    const what = missing.length ? `${missing.length} class${missing.length === 1 ? "" : "es"} the workflows use` : "every pack";
    throw new TaskError(`ComfyUI did not load ${what}:\n  ${lines.join("\n  ")}`);
  });
}

/** For comfyui:update: the locked workflows' classes missing on the host now ([] when nothing is locked). */
export async function missingWorkflowClasses(ctx: TaskContext): Promise<Missing[]> {
  let packs: WantedPack[];
  try {
    packs = await packsOfWorkflows(ctx.projectDir);
  } catch {
    return [];
  }
  return missingClasses(
    packs.filter((p) => !p.optional),
    await loadedClasses(ctx),
  );
}

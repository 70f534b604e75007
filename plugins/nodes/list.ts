// nodes:list: the host's packs as they are, whoever installed them: folder, source, commit or
// registry version, dirty, disabled, the classes ComfyUI loaded from each (python_module in
// /object_info) and whether its last start failed to import it (the container's log).
import type { TaskContext } from "../../lib/index.ts";
import { comfyLayout } from "../../lib/comfy/deploy.ts";
import type { ImportFailure } from "../../lib/comfy/import-log.ts";
import { dataRootOf } from "../../lib/host-data.ts";
import { formatTable } from "../../lib/output/table.ts";
import { readHostPacks } from "./host-packs.ts";
import { importFailures, loadedClasses, type LoadedClass } from "./verify.ts";
import type { NodesOptions } from "./index.ts";

export interface ListedPack {
  name: string;
  source: string;
  /** commit (git) or version (registry) */
  at?: string;
  dirty: boolean;
  disabled: boolean;
  /** classes ComfyUI loaded from it, sorted; null when ComfyUI did not answer */
  classes: string[] | null;
  importFailed: boolean;
  error?: string;
}

export function listPacks(
  packs: Awaited<ReturnType<typeof readHostPacks>>,
  loaded: LoadedClass[] | null,
  failures: ImportFailure[],
): ListedPack[] {
  const byModule = new Map<string, string[]>();
  for (const c of loaded ?? []) {
    const m = /^custom_nodes\.(.+)$/.exec(c.module);
    if (m) byModule.set(m[1]!, [...(byModule.get(m[1]!) ?? []), c.name]);
  }
  return packs.map((p) => {
    const f = failures.find((x) => x.pack === p.name || x.pack === `${p.name}.py`);
    const mod = p.name.replace(/\.py$/, "");
    return {
      name: p.name,
      source: p.origin ?? (p.registryId ? `registry:${p.registryId}` : p.kind === "file" ? "single file" : "unknown"),
      ...(p.commit ? { at: p.commit } : p.version ? { at: p.version } : {}),
      dirty: p.dirty,
      disabled: p.disabled,
      classes: loaded ? (byModule.get(mod) ?? []).sort() : null,
      importFailed: !!f && !p.disabled,
      ...(f?.error ? { error: f.error } : {}),
    };
  });
}

export async function runList(ctx: TaskContext, o: NodesOptions, opts: { dataRoot?: string }): Promise<void> {
  const l = comfyLayout(dataRootOf(ctx, opts.dataRoot));
  await ctx.step(`packs in ${l.customNodes}`, async () => {
    const packs = await readHostPacks(ctx, l.customNodes);
    let loaded: LoadedClass[] | null = null;
    try {
      loaded = await loadedClasses(ctx);
    } catch (e) {
      ctx.warn(`classes loaded: unknown (${(e as Error).message})`);
    }
    const failures = await importFailures(ctx).catch(() => []);
    const listed = listPacks(packs, loaded, failures);
    const rows = listed.map((p) => [
      p.name,
      p.source,
      p.at ? (/^[0-9a-f]{40}$/.test(p.at) ? p.at.slice(0, 10) : p.at) : "-",
      [p.disabled ? "disabled" : "", p.dirty ? "dirty" : "clean", p.importFailed ? "IMPORT FAILED" : ""].filter(Boolean).join(", "),
      p.classes === null ? "?" : String(p.classes.length),
    ]);
    ctx.log(formatTable(["pack", "source", "at", "state", "classes"], rows).trimEnd());
    for (const p of listed.filter((x) => x.importFailed)) ctx.warn(`${p.name}: import failed${p.error ? `: ${p.error}` : ""}`);
    ctx.emit({ nodes: { packs: listed } });
    const bad = listed.filter((p) => p.importFailed).length;
    return { status: "ok", note: `${listed.length} packs${bad ? `, ${bad} failed to import` : ""}` };
  });
}

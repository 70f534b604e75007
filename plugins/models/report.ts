// models:report (read-only): per-folder sizes and free space on the host, and per workflow whether
// it is ready or which files (and bytes) are missing; sizes of missing files from their sources.
import type { TaskContext } from "../../lib/index.ts";
import type { ModelDep } from "../../lib/comfy/model-deps.ts";
import { folderUsage, fmtBytes, indexFiles, neededModels, workflowStatus } from "./plan.ts";
import { checkHfToken, fillSources, keyOf, loadDeps, resolveAll, scanHost } from "./facts.ts";
import type { ModelsOptions, ReportOptions } from "./index.ts";

export async function runReport(ctx: TaskContext, o: ReportOptions, plugin: ModelsOptions): Promise<void> {
  const deps = await loadDeps(ctx, o.workflow, o.offline);
  await fillSources(ctx, deps, o.offline, plugin);
  const scan = await scanHost(ctx);
  const idx = indexFiles(scan.files);
  const { needed: all } = neededModels(deps, { userModels: ctx.flow.models });
  const needed = all.filter((n) => o.optional || !n.optional);
  await checkHfToken(ctx, needed, plugin);
  const sizes = new Map<string, number | undefined>();
  await ctx.step("sizes of the sources", async () => {
    const resolved = await resolveAll(ctx, needed, plugin);
    let unknown = 0;
    for (const [k, r] of resolved) {
      sizes.set(k, r.ok ? r.file.size : undefined);
      if (!r.ok) {
        unknown++;
        ctx.warn(`${k}: ${r.reason}`);
      }
    }
    return { status: "ok", note: `${resolved.size - unknown} resolved${unknown ? `, ${unknown} not` : ""}` };
  });
  const sizeOf = (d: ModelDep) => sizes.get(keyOf(d));
  const usage = folderUsage(scan.files);
  const statuses = deps.map((w) => workflowStatus(w, idx, sizeOf, o.optional));
  await ctx.step("models volume", async () => {
    for (const u of usage) ctx.log(`${u.folder.padEnd(20)} ${String(u.files).padStart(5)} files  ${fmtBytes(u.bytes).padStart(10)}`);
    const used = usage.reduce((n, u) => n + u.bytes, 0);
    const free = scan.disk ? `, ${fmtBytes(scan.disk.free)} free of ${fmtBytes(scan.disk.size)}` : "";
    return { status: "ok", note: `${fmtBytes(used)} in ${usage.length} folders${free}` };
  });
  for (const s of statuses) {
    await ctx.step(s.workflow, async () => {
      if (s.ready) return { status: "ok", note: "ready" };
      for (const m of s.missing) ctx.log(`missing ${m.path}${m.bytes !== undefined ? ` (${fmtBytes(m.bytes)})` : " (size unknown)"}`);
      const unknown = s.unknownSizes ? ` + ${s.unknownSizes} of unknown size` : "";
      return { status: "ok", note: `missing ${s.missing.length}: ${fmtBytes(s.bytesToDownload)} to download${unknown}` };
    });
  }
  const toDownload = new Set(statuses.flatMap((s) => s.missing.map((m) => m.path)));
  const total = [...toDownload].reduce((n, p) => n + (sizes.get(p) ?? 0), 0);
  if (scan.disk && total > scan.disk.free) {
    ctx.warn(`the missing models need ${fmtBytes(total)} but only ${fmtBytes(scan.disk.free)} is free`);
  }
  ctx.emit({ modelsReport: { folders: usage, disk: scan.disk ?? null, workflows: statuses, downloadRunning: scan.downloadRunning } });
}

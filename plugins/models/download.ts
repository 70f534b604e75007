// models:download: facts (what the workflows need, where each file comes from) -> plan (one
// download entry per final path, or why not) -> apply (the pushed script downloads on the host,
// detached and resumable; a dry run scans the host and says what it would fetch).
import { DEFAULT_CONNECTIONS } from "../../tasks/lib/download/settings.ts";
import { relative as posixRelative } from "node:path/posix";
import { TaskError, type TaskContext } from "../../lib/index.ts";
import type { DownloadFile, DownloadJob, DownloadSummary } from "../../tasks/lib/download/types.ts";
import { DOWNLOAD_KEY } from "./commands.ts";
import { fmtBytes, indexFiles, isReady, neededModels, progressLine, type Needed } from "./plan.ts";
import { checkHfToken, fillSources, keyOf, loadDeps, modelsRoot, resolveAll, scanHost, targetOf } from "./facts.ts";
import type { Resolved } from "./resolve.ts";
import type { DownloadOptions, ModelsOptions } from "./index.ts";

const files_ = (n: number) => `${n} file${n === 1 ? "" : "s"}`;

export interface DownloadPlan {
  files: DownloadFile[];
  /** files that cannot be downloaded, and why */
  failed: { name: string; reason: string }[];
  /** token problems: the run stops before any byte moves, the user fixes it once */
  auth: string[];
}

/** One entry per final path (never two writers for one file), each target proven inside the models root. */
export function planDownload(
  root: string,
  needed: Needed[],
  resolved: Map<string, Resolved>,
  noFolder: { workflow: string; name: string }[],
): DownloadPlan {
  const failed = noFolder.map((m) => ({ name: m.name, reason: `${m.workflow}: no model folder known for it` }));
  const auth = [...new Set([...resolved.values()].flatMap((r) => (!r.ok && r.auth ? [r.reason] : [])))];
  const files: DownloadFile[] = [];
  const targets = new Set<string>();
  for (const n of needed) {
    const r = resolved.get(keyOf(n))!;
    const t = targetOf(root, n);
    if (!t.ok) failed.push({ name: keyOf(n), reason: `unsafe target: ${t.reason}` });
    else if (!r.ok) failed.push({ name: keyOf(n), reason: r.reason });
    else if (!targets.has(t.value)) {
      targets.add(t.value);
      files.push({ ...r.file, target: t.value });
    }
  }
  return { files, failed, auth };
}

/** --dry-run: what the run would skip, judged as models:report does (the target present with the expected size). */
async function preview(ctx: TaskContext, root: string, files: DownloadFile[]) {
  const scan = await scanHost(ctx);
  const idx = indexFiles(scan.files);
  const missing = files.filter((f) => !isReady(idx.get(posixRelative(root, f.target)), f.size));
  for (const f of missing) {
    ctx.log(`would download ${f.name ?? f.target}${f.size !== undefined ? ` (${fmtBytes(f.size)})` : " (size unknown)"}`);
  }
  const running = scan.downloadRunning ? "; a download is running on the host" : "";
  if (!missing.length) return { status: "ok" as const, note: `all ${files_(files.length)} present${running}` };
  const bytes = missing.reduce((n, f) => n + (f.size ?? 0), 0);
  const unknown = missing.filter((f) => f.size === undefined).length;
  const extra = `${unknown ? ` + ${unknown} of unknown size` : ""}${running}`;
  return { status: "changed" as const, note: `would download ${missing.length} of ${files_(files.length)}, ${fmtBytes(bytes)}${extra}` };
}

export async function runDownload(ctx: TaskContext, o: DownloadOptions, plugin: ModelsOptions): Promise<void> {
  const deps = await loadDeps(ctx, o.workflow, o.offline);
  await fillSources(ctx, deps, o.offline, plugin);
  const { needed: all, noFolder } = neededModels(deps, { userModels: ctx.flow.models });
  const needed = all.filter((n) => o.optional || !n.optional);
  const root = modelsRoot(ctx);
  await checkHfToken(ctx, needed, plugin);
  let plan!: DownloadPlan;
  await ctx.step("resolve sources", async () => {
    plan = planDownload(root, needed, await resolveAll(ctx, needed, plugin), noFolder);
    if (plan.auth.length) throw new TaskError(plan.auth.join("\n"));
    const known = plan.files.reduce((s, f) => s + (f.size ?? 0), 0);
    const unusable = plan.failed.length ? `, ${plan.failed.length} without a usable source` : "";
    return { status: plan.failed.length ? "failed" : "ok", note: `${files_(plan.files.length)}, ${fmtBytes(known)}${unusable}` };
  });
  const { files, failed } = plan;
  for (const f of failed) ctx.warn(`${f.name}: ${f.reason}`);
  const models = (f: number) => `${f} model${f === 1 ? "" : "s"}`;
  if (!files.length) {
    if (failed.length) throw new TaskError(`${models(failed.length)} cannot be downloaded`);
    await ctx.step("download", async () => ({ status: "ok", note: "no models needed" }));
    return;
  }
  const job: DownloadJob = {
    files,
    modelsRoot: root,
    allowHosts: ctx.flow.settings.allowHosts,
    connections: o.connections ?? plugin.connections,
    parallelFiles: o.parallelFiles ?? plugin.parallelFiles,
  };
  const onProgress = (ev: Record<string, unknown>) => {
    if (ev.type === "progress") ctx.progress(progressLine(ev as unknown as Parameters<typeof progressLine>[0]));
  };
  let summary: DownloadSummary | null = null;
  await ctx.step(`download ${files_(files.length)} (${job.connections ?? DEFAULT_CONNECTIONS} connections each)`, async () => {
    // the run's --dry-run, read here once: the preview says what would be fetched; nothing is pushed
    if (ctx.dryRun) return preview(ctx, root, files);
    let run = await ctx.remoteScript(DOWNLOAD_KEY, { key: DOWNLOAD_KEY, job, onProgress });
    if (run.how !== "started") {
      // that run carried an earlier job: report it, then run ours (what it already placed is skipped)
      const earlier = run.result as DownloadSummary | null;
      if (earlier) {
        const { downloaded, skipped, failed: bad, fetched } = earlier;
        const counts = `${downloaded.length} downloaded, ${skipped.length} skipped, ${bad.length} failed`;
        ctx.log(`earlier run: ${counts}, ${fmtBytes(fetched)} fetched`);
      }
      run = await ctx.remoteScript(DOWNLOAD_KEY, { key: DOWNLOAD_KEY, job, onProgress });
    }
    summary = run.result as DownloadSummary | null;
    if (!summary || !Array.isArray(summary.failed)) return { status: "failed", note: "the download script returned no summary" };
    for (const f of summary.downloaded) ctx.log(`downloaded ${f.name} (${fmtBytes(f.size ?? f.fetched)} in ${f.seconds.toFixed(1)}s)`);
    for (const f of summary.skipped) ctx.log(`skipped ${f.name}: ${f.reason ?? "present"}`);
    for (const f of summary.failed) ctx.warn(`failed ${f.name}: ${f.reason ?? "unknown reason"}`);
    const secs = summary.seconds || 1;
    const counts = `${summary.downloaded.length} downloaded, ${summary.skipped.length} skipped, ${summary.failed.length} failed`;
    const rate = `${fmtBytes(summary.fetched / secs)}/s`;
    const note = `${counts}; ${fmtBytes(summary.fetched)} fetched in ${summary.seconds.toFixed(1)}s (${rate})`;
    if (summary.failed.length) return { status: "failed", note };
    return { status: summary.downloaded.length ? "changed" : "ok", note };
  });
  const s = summary as DownloadSummary | null;
  ctx.emit({
    models: {
      downloaded: s?.downloaded.map((f) => f.name) ?? [],
      skipped: s?.skipped.map((f) => f.name) ?? [],
      failed: [...failed, ...(s?.failed.map((f) => ({ name: f.name, reason: f.reason ?? "" })) ?? [])],
      fetched: s?.fetched ?? 0,
    },
  });
  if (failed.length) throw new TaskError(`${models(failed.length)} had no usable source (listed above)`);
}

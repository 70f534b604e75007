// The models tasks' bodies. Loaded only when one of them runs (index.ts imports this lazily).
import { readFile } from "node:fs/promises";
import { relative as posixRelative } from "node:path/posix";
import { TaskError, type TaskContext } from "../../lib/index.ts";
import { comfyLayout } from "../../lib/comfy/deploy.ts";
import { dataRootOf } from "../../lib/host-data.ts";
import { modelDeps, type ModelDep } from "../../lib/comfy/model-deps.ts";
import { readWorkflow } from "../../lib/comfy/workflow-read.ts";
import { joinInside, safeFolder, safeModelRelPath } from "../../lib/comfy/safe-names.ts";
import type { ModelList } from "../../lib/comfy/data-schemas.ts";
import { comfyDataUrl, loadRefData } from "../workflow/refdata.ts";
import { workflowFiles } from "../workflow/tasks.ts";
import { mapLimit } from "../workflow/upstream.ts";
import type { DownloadFile, DownloadJob, DownloadSummary } from "../../tasks/lib/download/types.ts";
import { DOWNLOAD_KEY, hashCommand, linkCommand, moveCommand, removeCommand, scanCommand } from "./commands.ts";
import {
  finalPath, folderUsage, fmtBytes, indexFiles, isReady, neededModels, parseScan, planCleanup, planLinks, planMoves, progressLine,
  sameSizeGroups, workflowStatus, type Needed, type Scan, type ScanFile, type WorkflowDeps,
} from "./plan.ts";
import { resolveEnv, resolveModel, type Resolved } from "./resolve.ts";
import type { CleanupOptions, DownloadOptions, ModelsOptions, OrganizeOptions, ReportOptions } from "./index.ts";

const modelsRoot = (ctx: TaskContext) => comfyLayout(dataRootOf(ctx)).models;

/**
 * What every workflow needs. model-list.json only fills in sources workflows do not give: without it we go on.
 * withTemplates: every file in workflow_templates/ too, besides the given files (cleanup's keep-set), and
 * an unreadable workflow stops the task instead of being skipped.
 */
async function loadDeps(ctx: TaskContext, files: string[] | undefined, offline: boolean, withTemplates = false): Promise<WorkflowDeps[]> {
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
      ctx.warn(`reference data unavailable (${(e as Error).message.split("\n")[0]}): using the workflows' own model URLs and the flowfile's models map only`);
    }
    const bad: string[] = [];
    for (const f of chosen) {
      // One bad file (unreadable, a workflow bomb, ...) is named and skipped; the others' models still count.
      try {
        let buf: Buffer;
        try {
          buf = await readFile(f.abs);
        } catch (e) {
          throw new TaskError(`${f.name}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
        }
        const deps = modelDeps(readWorkflow(buf, f.name), { modelList, userModels: ctx.flow.models });
        for (const r of deps.refused) ctx.warn(`${f.name}: refused ${JSON.stringify(r.value)} (node ${r.node}): ${r.reason}`);
        out.push({ workflow: f.name, models: deps.models });
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
    const note = `${out.length} workflow${out.length === 1 ? "" : "s"}, ${n} model${n === 1 ? "" : "s"}`;
    return bad.length ? { status: "failed", note: `${note}; unreadable: ${bad.join(", ")}` } : { status: "ok", note };
  });
  return out;
}

async function scanHost(ctx: TaskContext): Promise<Scan> {
  return parseScan(await ctx.sh(scanCommand(modelsRoot(ctx), ctx.flow.settings.remoteDir)));
}

/** One key per file as it lands (aliases and sub-paths folded, as neededModels merges them). */
const keyOf = (n: { folder?: string; name: string }) => (n.folder ? finalPath(n.folder, n.name) : `?/${n.name}`);

async function resolveAll(ctx: TaskContext, needed: Needed[], plugin: ModelsOptions): Promise<Map<string, Resolved>> {
  const env = resolveEnv(process.env, ctx.secrets, plugin.mirrors, ctx.flow.settings.allowHosts);
  const out = new Map<string, Resolved>();
  // a file whose workflows disagree on its source is not resolved (nor downloaded): its reason says why
  await mapLimit(needed, 8, async (n) => {
    out.set(keyOf(n), n.conflict ? { ok: false, reason: n.conflict } : await resolveModel(n.dep, env));
  });
  return out;
}

/** `<models root>/<folder>/<file>`, proven to stay inside the root. */
function targetOf(root: string, n: Needed): { ok: true; value: string } | { ok: false; reason: string } {
  const f = safeFolder(n.folder);
  if (!f.ok) return f;
  const m = safeModelRelPath(n.name);
  if (!m.ok) return m;
  return joinInside(root, f.value, m.value);
}

// ---------- models:download ----------

export async function runDownload(ctx: TaskContext, o: DownloadOptions, plugin: ModelsOptions): Promise<void> {
  const deps = await loadDeps(ctx, o.workflow, o.offline);
  const { needed: all, noFolder } = neededModels(deps, { userModels: ctx.flow.models });
  const needed = all.filter((n) => o.optional || !n.optional);
  const root = modelsRoot(ctx);
  const failedEarly: { name: string; reason: string }[] = noFolder.map((m) => ({ name: m.name, reason: `${m.workflow}: no model folder known for it` }));
  const files: DownloadFile[] = [];
  await ctx.step("resolve sources", async () => {
    const resolved = await resolveAll(ctx, needed, plugin);
    const auth = [...resolved.values()].filter((r): r is Extract<Resolved, { ok: false }> => !r.ok && !!r.auth);
    // a token problem stops everything before any byte moves: the user fixes it once, then re-runs
    if (auth.length) throw new TaskError([...new Set(auth.map((a) => a.reason))].join("\n"));
    const targets = new Set<string>();
    for (const n of needed) {
      const r = resolved.get(keyOf(n))!;
      const t = targetOf(root, n);
      if (!t.ok) failedEarly.push({ name: keyOf(n), reason: `unsafe target: ${t.reason}` });
      else if (!r.ok) failedEarly.push({ name: keyOf(n), reason: r.reason });
      else if (targets.has(t.value)) continue; // merged per final path already; never two writers for one file
      else {
        targets.add(t.value);
        files.push({ ...r.file, target: t.value });
      }
    }
    const known = files.reduce((s, f) => s + (f.size ?? 0), 0);
    return { status: failedEarly.length ? "failed" : "ok", note: `${files.length} file${files.length === 1 ? "" : "s"}, ${fmtBytes(known)}${failedEarly.length ? `, ${failedEarly.length} without a usable source` : ""}` };
  });
  for (const f of failedEarly) ctx.warn(`${f.name}: ${f.reason}`);
  if (!files.length) {
    if (failedEarly.length) throw new TaskError(`${failedEarly.length} model${failedEarly.length === 1 ? "" : "s"} cannot be downloaded`);
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
  await ctx.step(`download ${files.length} file${files.length === 1 ? "" : "s"} (${job.connections ?? 16} connections each)`, async () => {
    if (ctx.dryRun) {
      // what the run would skip: the target present with the expected size (as models:report judges it)
      const scan = await scanHost(ctx);
      const idx = indexFiles(scan.files);
      const missing = files.filter((f) => !isReady(idx.get(posixRelative(root, f.target)), f.size));
      for (const f of missing) ctx.log(`would download ${f.name ?? f.target}${f.size !== undefined ? ` (${fmtBytes(f.size)})` : " (size unknown)"}`);
      const running = scan.downloadRunning ? "; a download is running on the host" : "";
      if (!missing.length) return { status: "ok", note: `all ${files.length} file${files.length === 1 ? "" : "s"} present${running}` };
      const bytes = missing.reduce((n, f) => n + (f.size ?? 0), 0);
      const unknown = missing.filter((f) => f.size === undefined).length;
      return {
        status: "changed",
        note: `would download ${missing.length} of ${files.length} file${files.length === 1 ? "" : "s"}, ${fmtBytes(bytes)}${unknown ? ` + ${unknown} of unknown size` : ""}${running}`,
      };
    }
    let run = await ctx.remoteScript(DOWNLOAD_KEY, { key: DOWNLOAD_KEY, job, onProgress });
    if (run.how === "dry-run") return { status: "changed", note: `would download what is missing of ${files.length} files` };
    if (run.how !== "started") {
      // that run carried an earlier job: report it, then run ours (what it already placed is skipped)
      const earlier = run.result as DownloadSummary | null;
      if (earlier) ctx.log(`earlier run: ${earlier.downloaded.length} downloaded, ${earlier.skipped.length} skipped, ${earlier.failed.length} failed, ${fmtBytes(earlier.fetched)} fetched`);
      run = await ctx.remoteScript(DOWNLOAD_KEY, { key: DOWNLOAD_KEY, job, onProgress });
    }
    summary = run.result as DownloadSummary | null;
    if (!summary || !Array.isArray(summary.failed)) return { status: "failed", note: "the download script returned no summary" };
    for (const f of summary.downloaded) ctx.log(`downloaded ${f.name} (${fmtBytes(f.size ?? f.fetched)} in ${f.seconds.toFixed(1)}s)`);
    for (const f of summary.skipped) ctx.log(`skipped ${f.name}: ${f.reason ?? "present"}`);
    for (const f of summary.failed) ctx.warn(`failed ${f.name}: ${f.reason ?? "unknown reason"}`);
    const secs = summary.seconds || 1;
    const note = `${summary.downloaded.length} downloaded, ${summary.skipped.length} skipped, ${summary.failed.length} failed; ${fmtBytes(summary.fetched)} fetched in ${summary.seconds.toFixed(1)}s (${fmtBytes(summary.fetched / secs)}/s)`;
    if (summary.failed.length) return { status: "failed", note };
    return { status: summary.downloaded.length ? "changed" : "ok", note };
  });
  const s = summary as DownloadSummary | null;
  ctx.emit({
    models: {
      downloaded: s?.downloaded.map((f) => f.name) ?? [],
      skipped: s?.skipped.map((f) => f.name) ?? [],
      failed: [...failedEarly, ...(s?.failed.map((f) => ({ name: f.name, reason: f.reason ?? "" })) ?? [])],
      fetched: s?.fetched ?? 0,
    },
  });
  if (failedEarly.length) throw new TaskError(`${failedEarly.length} model${failedEarly.length === 1 ? "" : "s"} had no usable source (listed above)`);
}

// ---------- models:report ----------

export async function runReport(ctx: TaskContext, o: ReportOptions, plugin: ModelsOptions): Promise<void> {
  const deps = await loadDeps(ctx, o.workflow, o.offline);
  const scan = await scanHost(ctx);
  const idx = indexFiles(scan.files);
  const { needed } = neededModels(deps, { userModels: ctx.flow.models });
  // sizes only for what is missing (or present with a size to check): resolution costs a request each
  const sizes = new Map<string, number | undefined>();
  await ctx.step("sizes of the sources", async () => {
    const resolved = await resolveAll(ctx, needed.filter((n) => o.optional || !n.optional), plugin);
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
    return { status: "ok", note: `${fmtBytes(used)} in ${usage.length} folders${scan.disk ? `, ${fmtBytes(scan.disk.free)} free of ${fmtBytes(scan.disk.size)}` : ""}` };
  });
  for (const s of statuses) {
    await ctx.step(s.workflow, async () => {
      if (s.ready) return { status: "ok", note: "ready" };
      for (const m of s.missing) ctx.log(`missing ${m.path}${m.bytes !== undefined ? ` (${fmtBytes(m.bytes)})` : " (size unknown)"}`);
      return {
        status: "ok",
        note: `missing ${s.missing.length}: ${fmtBytes(s.bytesToDownload)} to download${s.unknownSizes ? ` + ${s.unknownSizes} of unknown size` : ""}`,
      };
    });
  }
  const toDownload = statuses.length ? new Set(statuses.flatMap((s) => s.missing.map((m) => m.path))) : new Set<string>();
  const total = [...toDownload].reduce((n, p) => n + (sizes.get(p) ?? 0), 0);
  if (scan.disk && total > scan.disk.free) ctx.warn(`the missing models need ${fmtBytes(total)} but only ${fmtBytes(scan.disk.free)} is free`);
  ctx.emit({ modelsReport: { folders: usage, disk: scan.disk ?? null, workflows: statuses, downloadRunning: scan.downloadRunning } });
}

// ---------- models:organize ----------

export async function runOrganize(ctx: TaskContext, o: OrganizeOptions, _plugin: ModelsOptions): Promise<void> {
  const deps = await loadDeps(ctx, o.workflow, o.offline);
  const root = modelsRoot(ctx);
  const scan = await scanHost(ctx);
  const { needed } = neededModels(deps);
  const moves = planMoves(scan.files, needed);
  // hash only files that share a size with another file: equal hashes need equal sizes
  const groups = sameSizeGroups(scan.files);
  const hashes = new Map<string, string>();
  if (groups.length) {
    await ctx.step("hash same-size files", async () => {
      const paths = [...new Set(groups.flat().map((f) => f.path))];
      const out = (await ctx.sh(hashCommand(root, paths))).split("\n");
      paths.forEach((p, i) => hashes.set(p, out[i]?.trim() || "-"));
      return { status: "ok", note: `${paths.length} files` };
    });
  }
  // the links are planned on the tree as it will be after the moves
  const after: ScanFile[] = scan.files.filter((f) => !moves.some((m) => !m.link && m.from === f.path));
  for (const m of moves) {
    const src = scan.files.find((f) => f.path === m.from)!;
    after.push({ ...src, path: m.to, links: m.link ? src.links + 1 : src.links });
    if (hashes.has(m.from)) hashes.set(m.to, hashes.get(m.from)!);
  }
  const links = planLinks(sameSizeGroups(after), hashes);
  await ctx.step("move models into their folders", async () => {
    for (const m of moves) ctx.log(`${ctx.dryRun ? "would " : ""}${m.link ? "link" : "move"} ${m.from} -> ${m.to}`);
    if (!moves.length) return { status: "ok", note: "every needed model is where ComfyUI looks" };
    if (ctx.dryRun) return { status: "changed", note: `would move ${moves.length}` };
    const plain = moves.filter((m) => !m.link);
    if (plain.length) await ctx.sh(moveCommand(root, plain.map((m) => ({ from: m.from, to: m.to }))));
    const linked = moves.filter((m) => m.link);
    if (linked.length) await ctx.sh(linkCommand(root, linked.map((m) => ({ keep: m.from, replace: m.to }))));
    return { status: "changed", note: `${plain.length} moved, ${linked.length} linked` };
  });
  await ctx.step("hardlink identical files", async () => {
    const size = (p: string) => after.find((f) => f.path === p)?.size ?? 0;
    for (const l of links) ctx.log(`${ctx.dryRun ? "would link" : "link"} ${l.replace} -> ${l.keep} (identical, ${fmtBytes(size(l.replace))})`);
    if (!links.length) return { status: "ok", note: "no duplicates" };
    const saved = links.reduce((n, l) => n + size(l.replace), 0);
    if (ctx.dryRun) return { status: "changed", note: `would link ${links.length}, saving ${fmtBytes(saved)}` };
    await ctx.sh(linkCommand(root, links));
    return { status: "changed", note: `${links.length} linked, ${fmtBytes(saved)} saved` };
  });
  ctx.emit({ modelsOrganize: { moves, links } });
}

// ---------- models:cleanup ----------

export async function runCleanup(ctx: TaskContext, o: CleanupOptions, _plugin: ModelsOptions): Promise<void> {
  // What any workflow in workflow_templates/ needs is always kept: --workflow only adds files to
  // keep for (say, ones kept elsewhere), it never narrows the keep-set to one workflow.
  const deps = await loadDeps(ctx, o.workflow, o.offline, true);
  if (o.workflow?.length) ctx.log("keeping the models of every workflow in workflow_templates/ too: --workflow never narrows what is kept");
  const root = modelsRoot(ctx);
  const scan = await scanHost(ctx);
  const { needed } = neededModels(deps); // optional models count as needed: never delete them
  const plan = planCleanup(scan.files, needed, scan.downloadRunning);
  if (plan.protectedParts.length) ctx.log(`a download is running: leaving ${plan.protectedParts.length} partial file${plan.protectedParts.length === 1 ? "" : "s"} alone`);
  await ctx.step("models no workflow needs", async () => {
    for (const f of plan.remove) ctx.log(`${o.yes && !ctx.dryRun ? "delete" : "unused"} ${f.path} (${fmtBytes(f.size)}${f.links > 1 ? `, ${f.links} links` : ""})`);
    if (!plan.remove.length) return { status: "ok", note: "nothing unused" };
    const what = `${plan.remove.length} file${plan.remove.length === 1 ? "" : "s"}, ${fmtBytes(plan.freed)}`;
    if (!o.yes) return { status: "ok", note: `${what}; run with --yes to delete them` };
    if (ctx.dryRun) return { status: "changed", note: `would delete ${what}` };
    await ctx.sh(removeCommand(root, plan.remove.map((f) => f.path)));
    return { status: "changed", note: `deleted ${what}` };
  });
  ctx.emit({ modelsCleanup: { files: plan.remove.map((f) => ({ path: f.path, size: f.size })), freed: plan.freed, deleted: o.yes && !ctx.dryRun, protectedParts: plan.protectedParts } });
}

// models:cleanup (destructive): facts (what every workflow needs, the host's model files) -> plan
// (the files no workflow needs; partial files left alone while a download runs) -> apply: deleted
// only when the run is confirmed (--yes, or yes at the terminal's question), else only listed.
import type { TaskContext } from "../../lib/index.ts";
import { removeCommand } from "./commands.ts";
import { fmtBytes, neededModels, planCleanup } from "./plan.ts";
import { loadDeps, modelsRoot, scanHost } from "./facts.ts";
import type { CleanupOptions } from "./index.ts";

export async function runCleanup(ctx: TaskContext, o: CleanupOptions): Promise<void> {
  // What any workflow in workflow_templates/ needs is always kept: --workflow only adds files to
  // keep for (say, ones kept elsewhere), it never narrows the keep-set to one workflow.
  const deps = await loadDeps(ctx, o.workflow, o.offline, true);
  if (o.workflow?.length) ctx.log("keeping the models of every workflow in workflow_templates/ too: --workflow never narrows what is kept");
  const root = modelsRoot(ctx);
  const scan = await scanHost(ctx);
  const { needed } = neededModels(deps); // optional models count as needed: never delete them
  // a snapshot's folder is the node's: kept whole, whatever the repository holds today
  const snapshotFolders = deps.flatMap((w) => w.snapshots?.map((s) => s.folder) ?? []);
  const plan = planCleanup(scan.files, needed, scan.downloadRunning, snapshotFolders);
  const parts = plan.protectedParts.length;
  if (parts) ctx.log(`a download is running: leaving ${parts} partial file${parts === 1 ? "" : "s"} alone`);
  const deleting = ctx.confirmed && !ctx.dryRun;
  await ctx.step("models no workflow needs", async () => {
    for (const f of plan.remove) {
      ctx.log(`${deleting ? "delete" : "unused"} ${f.path} (${fmtBytes(f.size)}${f.links > 1 ? `, ${f.links} links` : ""})`);
    }
    if (!plan.remove.length) return { status: "ok", note: "nothing unused" };
    const what = `${plan.remove.length} file${plan.remove.length === 1 ? "" : "s"}, ${fmtBytes(plan.freed)}`;
    if (!ctx.confirmed) return { status: "ok", note: `${what}; run with --yes to delete them` };
    if (ctx.dryRun) return { status: "changed", note: `would delete ${what}` };
    await ctx.sh(
      removeCommand(
        root,
        plan.remove.map((f) => f.path),
      ),
    );
    return { status: "changed", note: `deleted ${what}` };
  });
  const files = plan.remove.map((f) => ({ path: f.path, size: f.size }));
  ctx.emit({ modelsCleanup: { files, freed: plan.freed, deleted: deleting, protectedParts: plan.protectedParts } });
}

// comfyui:snapshot save | list | restore <id>: what a host's ComfyUI runs, kept on the host under
// <data root>/backups/snapshots/<id>/snapshot.json (shape: ./snapshot-data.ts), so a bad update or
// a pack that broke things can be undone there, without this machine.
//
// A restore brings back, in this order: the image (re-created with comfyui:up's spec, rolled back
// if it does not serve; first, so a failure there leaves the packs untouched), the packs (through
// nodes:install; packs the snapshot does not have are moved into the snapshot's removed/ folder,
// not deleted), the pip packages of the python target, then one restart when packs or pip changed.
import { z } from "zod";
import { defineTask, TaskError, type TaskContext } from "../../lib/index.ts";
import { CONTAINER_PYTHON, comfyLayout, snapshotsDir } from "../../lib/comfy/deploy.ts";
import { dataRootOf } from "../../lib/host-data.ts";
import { formatTable } from "../../lib/output/table.ts";
import { shQuote } from "../../lib/quote.ts";
import { publishedUrl } from "../../lib/commands/docker.ts";
import { readHostPacks } from "../nodes/host-packs.ts";
import { readEndpoints } from "../comfyui-api/health.ts";
import { CONTAINER, readComfyHost, recordImageChoice, root, runningContainer, type ComfyuiOptions } from "./container.ts";
import { listSnapshotsCommand, moveAsideCommand, pipFreezeCommand, pipInstallCommand, saveSnapshotCommand } from "./commands.ts";
import { DRAIN_TIMEOUT, HEALTH_TIMEOUT, restartComfy } from "./restart.ts";
import {
  freezeLines,
  isSnapshotId,
  packRestorePlan,
  parseComfyVersion,
  parseSnapshotList,
  pipRestorePlan,
  snapshotId,
  snapshotPack,
  snapshotText,
  type ComfySnapshot,
  type ListedSnapshot,
  type SnapshotPip,
} from "./snapshot-data.ts";
import { switchImage } from "./switch.ts";

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** pip freeze of the python target inside the container; an image without python or pip is recorded as such. */
async function readPip(ctx: TaskContext): Promise<SnapshotPip> {
  const r = await ctx.exec(pipFreezeCommand(CONTAINER, CONTAINER_PYTHON), root);
  if (r.code === 0) return { available: true, freeze: freezeLines(r.stdout) };
  const why = (r.stderr || r.stdout).trim().split("\n").filter(Boolean).pop() ?? `exit ${r.code}`;
  return { available: false, reason: `pip freeze in the ${CONTAINER} container failed: ${why}` };
}

async function comfyVersion(ctx: TaskContext): Promise<string | null> {
  const r = await ctx.exec(`curl -s --max-time 5 ${shQuote(publishedUrl((await readEndpoints(ctx, CONTAINER)).comfy, "/system_stats"))}`);
  return r.code === 0 ? parseComfyVersion(r.stdout) : null;
}

/** Read everything a snapshot holds from the host (nothing is written). */
export async function takeSnapshot(ctx: TaskContext, o: { dataRoot: string; reason?: string }): Promise<ComfySnapshot> {
  const running = await runningContainer(ctx);
  if (!running) throw new TaskError(`no ${CONTAINER} container on this host: nothing to snapshot (flow run comfyui:up makes it)`);
  const packs = await readHostPacks(ctx, comfyLayout(o.dataRoot).customNodes);
  return {
    format: 1,
    id: snapshotId(),
    createdAt: new Date().toISOString(),
    ...(o.reason ? { reason: o.reason } : {}),
    container: CONTAINER,
    image: running.image,
    imageId: running.imageId,
    comfyuiVersion: await comfyVersion(ctx),
    packs: packs.map(snapshotPack),
    pip: await readPip(ctx),
  };
}

const summary = (s: ComfySnapshot) =>
  `${s.image}, ComfyUI ${s.comfyuiVersion ?? "(version unknown)"}, ${plural(s.packs.length, "pack")}, ` +
  (s.pip.available ? plural(s.pip.freeze.length, "pip package") : "no pip");

/** One step: the snapshot taken and written on the host (atomically); returns its id (none in a dry run). */
export async function saveSnapshot(ctx: TaskContext, o: { dataRoot: string; reason?: string }): Promise<string | undefined> {
  const dir = snapshotsDir(comfyLayout(o.dataRoot));
  let id: string | undefined;
  await ctx.step(`snapshot in ${dir}${o.reason ? ` (${o.reason})` : ""}`, async () => {
    const snap = await takeSnapshot(ctx, o);
    if (ctx.dryRun) return { status: "changed", note: `would save ${summary(snap)}` };
    await ctx.sh(saveSnapshotCommand(dir, snap.id), { ...root, stdin: snapshotText(snap) });
    id = snap.id;
    ctx.emit({ snapshot: { id: snap.id, path: `${dir}/${snap.id}` } });
    return { status: "changed", note: `${snap.id}: ${summary(snap)}` };
  });
  return id;
}

export async function listSnapshots(ctx: TaskContext, dataRoot: string): Promise<ListedSnapshot[]> {
  return parseSnapshotList(await ctx.sh(listSnapshotsCommand(snapshotsDir(comfyLayout(dataRoot)))));
}

export function snapshotTable(list: ListedSnapshot[]): string {
  const rows = list.map(({ id, snapshot: s, problem }) =>
    s
      ? [id, s.image, s.comfyuiVersion ?? "?", String(s.packs.length), s.pip.available ? String(s.pip.freeze.length) : "-", s.reason ?? ""]
      : [id, `(unreadable: ${problem})`],
  );
  return formatTable(["ID", "IMAGE", "COMFYUI", "PACKS", "PIP", "WHY"], rows, { right: [3, 4] });
}

export interface RestoreOptions {
  dataRoot?: string;
  healthTimeout: number;
  wait?: boolean;
  drainTimeout: number;
}

/** Bring the host back to snapshot `id` (see the top of this file for the order). */
export async function restoreSnapshot(ctx: TaskContext, plugin: ComfyuiOptions, id: string | undefined, o: RestoreOptions): Promise<void> {
  const host = await readComfyHost(ctx, plugin, o.dataRoot);
  const list = await listSnapshots(ctx, host.dataRoot);
  const ids = list.map((s) => s.id).join(", ") || "none";
  if (!id) throw new TaskError(`comfyui:snapshot restore needs the id of a snapshot; this host has: ${ids}`);
  const found = isSnapshotId(id) ? list.find((s) => s.id === id) : undefined;
  if (!found) throw new TaskError(`no snapshot ${JSON.stringify(id)} on this host; it has: ${ids}`);
  if (!found.snapshot) throw new TaskError(`snapshot ${id} cannot be restored: ${found.problem}`);
  const snap = found.snapshot;
  const snapDir = `${snapshotsDir(host.layout)}/${id}`;

  const running = await runningContainer(ctx);
  if (!running) throw new TaskError(`no ${CONTAINER} container on this host: comfyui:up first, then the restore`);
  // decided before anything changes: a restore that cannot bring the packs back does not start
  const plan = packRestorePlan(snap.packs, await readHostPacks(ctx, host.layout.customNodes));
  if (plan.install.length && !ctx.hasTask("nodes:install")) {
    throw new TaskError(
      `snapshot ${id} has ${plural(plan.install.length, "pack")} this host lacks or runs at another commit ` +
        `(${plan.install.join(", ")}), and bringing them back needs nodes:install: ` +
        "add the nodes plugin to the flowfile; nothing was changed",
    );
  }

  if (running.image !== snap.image || running.state !== "running") {
    await switchImage(ctx, host, running, snap.image, { ...o, what: `restoring snapshot ${id} (image ${snap.image})` });
    await recordImageChoice(ctx, { image: snap.image, flowfileImage: host.flowfileImage });
    const now = ctx.dryRun ? null : await runningContainer(ctx);
    if (now && snap.imageId && now.imageId !== snap.imageId)
      ctx.warn(`${snap.image} names another image now (${now.imageId}) than when snapshot ${id} was taken (${snap.imageId})`);
  } else await ctx.step(`image ${snap.image}`, async () => ({ status: "ok", note: "as in the snapshot" }));

  let changed = false;
  await ctx.step(`packs the snapshot does not have moved to ${snapDir}/removed`, async () => {
    if (!plan.moveAside.length) return { status: "ok", note: "none" };
    const names = plan.moveAside.map((p) => p.name).join(", ");
    changed = true;
    if (ctx.dryRun) return { status: "changed", note: `would move ${names}` };
    await ctx.sh(
      moveAsideCommand(
        plan.moveAside.map((p) => p.path),
        snapDir,
      ),
      root,
    );
    return { status: "changed", note: `moved ${names}` };
  });

  for (const u of plan.unrestorable) ctx.warn(`pack ${u}: not brought back`);
  if (plan.install.length) {
    const t = await ctx.runTask("nodes:install", { packs: plan.install, force: false, restart: false, workflow: [] });
    if (t.failed) throw new TaskError(`nodes:install could not bring back every pack of snapshot ${id} (its steps above say why)`);
    changed ||= t.changed > 0;
  } else await ctx.step("packs", async () => ({ status: "ok", note: `${plural(plan.same, "pack")} as in the snapshot` }));

  changed = (await restorePip(ctx, snap)) || changed;
  if (changed) await restartComfy(ctx, { ...o, reason: `snapshot ${id} restored` });
  ctx.emit({ snapshot: { restored: id, image: snap.image } });
}

/**
 * The python target back to the snapshot's pins, for the packages that differ: each reinstalled at
 * its version with --no-deps, replacing the version there (pipInstallCommand). What it does not
 * undo: packages installed since stay, and lines that are not `name==version` (URLs, editable
 * installs) are only reported; pip needs its index (or PIP_FIND_LINKS) to fetch the old versions.
 */
async function restorePip(ctx: TaskContext, snap: ComfySnapshot): Promise<boolean> {
  let changed = false;
  await ctx.step(`pip packages in ${CONTAINER_PYTHON} as in the snapshot`, async () => {
    if (!snap.pip.available) return { status: "skipped", note: `the snapshot has none (${snap.pip.reason})` };
    const now = await readPip(ctx);
    if (!now.available) {
      if (!snap.pip.freeze.length) return { status: "ok", note: "the snapshot had none" };
      throw new TaskError(`the snapshot lists ${plural(snap.pip.freeze.length, "pip package")}, but ${now.reason}`);
    }
    const plan = pipRestorePlan(snap.pip.freeze, now.freeze);
    const left = [
      ...(plan.extra.length ? [`left in place (installed since): ${plan.extra.join(", ")}`] : []),
      ...(plan.unrestorable.length ? [`not pinned, not brought back: ${plan.unrestorable.join(", ")}`] : []),
    ].join("; ");
    if (!plan.install.length) return { status: "ok", note: left || "as in the snapshot" };
    changed = true;
    const what = `${plan.install.join(", ")}${left ? `; ${left}` : ""}`;
    if (ctx.dryRun) return { status: "changed", note: `would install ${what}` };
    await ctx.sh(pipInstallCommand(CONTAINER, CONTAINER_PYTHON), { ...root, stdin: plan.install.join("\n") + "\n" });
    return { status: "changed", note: `installed ${what}` };
  });
  return changed;
}

export function snapshotTasks(plugin: ComfyuiOptions) {
  const snapshot = defineTask({
    name: "comfyui:snapshot",
    description: "save | list | restore <id>: the image, ComfyUI's version, node packs and pip packages of a host, kept on the host",
    positionals: ["action", "id"],
    options: z.object({
      action: z.enum(["save", "list", "restore"]).describe("save a snapshot, list them, or restore one"),
      id: z.string().min(1).optional().describe("the snapshot to restore (comfyui:snapshot list shows them)"),
      dataRoot: z.string().optional().describe("data root on the host (default: the host's or its provider's)"),
      wait: z.boolean().default(true).describe("restore: wait for ComfyUI's queue to drain before a restart (--no-wait: at once)"),
      drainTimeout: z.number().int().nonnegative().default(DRAIN_TIMEOUT).describe("restore: seconds to wait for the queue"),
      healthTimeout: z
        .number()
        .int()
        .positive()
        .optional()
        .describe(`restore: seconds to wait for GET /health (default ${HEALTH_TIMEOUT})`),
    }),
    async run(ctx, o) {
      if (o.id && o.action !== "restore") throw new TaskError(`comfyui:snapshot ${o.action} takes no id (got ${o.id})`);
      const dataRoot = dataRootOf(ctx, o.dataRoot);
      if (o.action === "save") return void (await saveSnapshot(ctx, { dataRoot }));
      if (o.action === "list") {
        await ctx.step(`snapshots in ${snapshotsDir(comfyLayout(dataRoot))}`, async () => {
          const list = await listSnapshots(ctx, dataRoot);
          if (list.length) ctx.log(snapshotTable(list));
          ctx.emit({ snapshots: list.map((s) => s.snapshot ?? { id: s.id, problem: s.problem }) });
          return { status: "ok", note: plural(list.length, "snapshot") };
        });
        return;
      }
      await restoreSnapshot(ctx, plugin, o.id, {
        dataRoot: o.dataRoot,
        wait: o.wait,
        drainTimeout: o.drainTimeout,
        healthTimeout: o.healthTimeout ?? plugin.healthTimeoutSeconds ?? HEALTH_TIMEOUT,
      });
    },
  });
  return [snapshot];
}

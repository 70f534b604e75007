// The nodes tasks' bodies: decide once on this machine what every host gets (preflight), then each
// host converges to it (install.ts); update also writes the new pins into flow.lock.json.
import { join } from "node:path";
import { shQuote, TaskError, type PreflightContext, type TaskContext } from "../../lib/index.ts";
import { comfyLayout } from "../../lib/comfy/deploy.ts";
import { serializeLock, type LockedPack } from "../../lib/comfy/lockfile.ts";
import { parsePackSpec, PackSpecError, repoKey, type PackSpec } from "../../lib/comfy/pack-spec.ts";
import { safePackDir } from "../../lib/comfy/safe-names.ts";
import { packByName, type ResolveIndex } from "../../lib/comfy/node-resolve.ts";
import { comfyDataUrl, loadRefData } from "../shared/refdata.ts";
import { dataRootOf } from "../../lib/host-data.ts";
import { upstreamClient, upstreamUrls, type UpstreamClient } from "../workflow/upstream.ts";
import { writeIfChanged } from "../workflow/local-file.ts";
import { restartComfy } from "../comfyui/restart.ts";
import { moveAsideCommand } from "./commands.ts";
import { readLockFile } from "../workflow/lock-file.ts";
import { readHostPacks } from "./host-packs.ts";
import { installOnHost } from "./install.ts";
import { findOnHost } from "./plan.ts";
import { verifyClasses } from "./verify.ts";
import { LOCK_FILE, mergeWanted, packKeys, packsOfWorkflows, parsePins, pinSpec, type WantedPack } from "./wanted.ts";
import { decided, type InstallOptions, type NodesOptions, type RemoveOptions, type UpdateOptions } from "./index.ts";

/** What deciding needs: a preflight's context, or a host's when there was no preflight (ctx.runTask). */
type Decide = Pick<PreflightContext, "secrets" | "flow" | "projectDir" | "log"> & { warn?(message: string): void };

function parseSpecs(inputs: string[] | undefined): PackSpec[] {
  try {
    return (inputs ?? []).map(parsePackSpec);
  } catch (e) {
    if (e instanceof PackSpecError) throw new TaskError(e.message);
    throw e;
  }
}

function upstream(pf: Decide): UpstreamClient {
  return upstreamClient(upstreamUrls(process.env), { github: pf.secrets.GITHUB_TOKEN, allowHosts: pf.flow.settings.allowHosts });
}

/**
 * A bare name becomes what ComfyUI-Manager's list says it is: a registry pack, or the one repository
 * of that name (pinned to its default branch's head). Several of that name: the user must choose.
 */
async function resolveName(pf: Decide, spec: PackSpec & { kind: "name" }, index: () => Promise<ResolveIndex>): Promise<PackSpec> {
  const hit = packByName(await index(), spec.name);
  if ("registryId" in hit) return { kind: "registry", id: hit.registryId, input: spec.input };
  if (hit.repos.length === 1) return parsePackSpec(hit.repos[0]!);
  if (hit.repos.length > 1)
    throw new TaskError(`pack ${spec.input}: several repositories go by that name (${hit.repos.join(", ")}): give its URL`);
  // not in the list: perhaps a registry id it does not carry yet
  return { kind: "registry", id: spec.name, input: spec.input };
}

async function pinAll(pf: Decide, specs: { spec: PackSpec; from: string; alias?: string }[]): Promise<WantedPack[]> {
  const up = upstream(pf);
  let idx: Promise<ResolveIndex> | undefined;
  const index = () => (idx ??= loadRefData({ baseUrl: comfyDataUrl(process.env, pf.flow.settings.comfyDataUrl) }).then((r) => r.index));
  return Promise.all(
    specs.map(async ({ spec: given, from, alias }) => {
      try {
        const spec = given.kind === "name" ? await resolveName(pf, given, index) : given;
        const p = await pinSpec(spec, up, from);
        return alias ? { ...p, aliases: [alias] } : p;
      } catch (e) {
        if (e instanceof TaskError) throw e;
        throw new TaskError(`pack ${given.input}: ${(e as Error).message}`);
      }
    }),
  );
}

/** The packs of this run: those named (pinned now), else the workflows' as locked; the flowfile's pins win either way. */
export async function decideInstall(
  pf: Decide,
  o: NodesOptions,
  opts: Pick<InstallOptions, "packs" | "workflow" | "unlocked">,
): Promise<WantedPack[]> {
  const specs = parseSpecs(opts.packs);
  const pins = await pinAll(
    pf,
    parsePins(o.pins).map(({ key, spec }) => ({ spec, from: "pin", alias: key })),
  );
  if (specs.length) {
    // what the command line names is what the user asks for now: it wins over the flowfile's pins
    const named = await pinAll(
      pf,
      specs.map((spec) => ({ spec, from: "command line" })),
    );
    return mergeWanted(named, []);
  }
  const onUnlocked = opts.unlocked === "skip" ? (m: string) => (pf.warn ? pf.warn(m) : pf.log(`warning: ${m}`)) : undefined;
  const fromWorkflows = await packsOfWorkflows(pf.projectDir, opts.workflow?.length ? opts.workflow : undefined, onUnlocked);
  const wanted = mergeWanted(
    fromWorkflows,
    pins.filter((p) => fromWorkflows.some((w) => packKeys(w).some((k) => packKeys(p).includes(k)))),
  );
  pf.log(`nodes: ${wanted.length} pack${wanted.length === 1 ? "" : "s"}: ${wanted.map((p) => p.dir).join(", ") || "none"}`);
  return wanted;
}

const asDecide = (ctx: TaskContext): Decide => ({
  secrets: ctx.secrets,
  flow: ctx.flow,
  projectDir: ctx.projectDir,
  log: (m: string) => ctx.log(m),
  warn: (m: string) => ctx.warn(m),
});

export async function runInstall(ctx: TaskContext, o: NodesOptions, opts: InstallOptions): Promise<void> {
  // called through ctx.runTask (snapshot restore) there was no preflight: decide here
  const wanted = decided.get(opts) ?? (await decideInstall(asDecide(ctx), o, opts));
  ctx.emit({
    nodes: { wanted: wanted.map(({ dir, kind, repo, commit, registryId, version }) => ({ dir, kind, repo, commit, registryId, version })) },
  });
  await installOnHost(ctx, o, { wanted, force: opts.force, restart: opts.restart, verify: opts.verify }, opts.dataRoot);
}

// ---------- update ----------

/** The names a lock entry goes by, in packKeys' terms. */
function lockedKeys(lp: LockedPack): string[] {
  const repo = lp.repo;
  return [
    ...(repo
      ? [
          repoKey(repo),
          repo
            .replace(/\/+$/, "")
            .split("/")
            .pop()!
            .replace(/\.git$/i, "")
            .toLowerCase(),
        ]
      : []),
    ...(lp.kind === "registry" ? [lp.id.toLowerCase()] : []),
  ];
}

function lockedPackOf(p: WantedPack, was: LockedPack): LockedPack {
  return p.kind === "git"
    ? { kind: "git", repo: p.repo!, commit: p.commit!, classes: was.classes, optional: was.optional }
    : {
        kind: "registry",
        id: p.registryId!,
        version: p.version!,
        ...(p.repo ? { repo: p.repo } : {}),
        classes: was.classes,
        optional: was.optional,
      };
}

/** The newest of each chosen pack; the lock's entries for them rewritten (unless --dry-run). */
export async function decideUpdate(pf: PreflightContext, o: NodesOptions, opts: UpdateOptions): Promise<WantedPack[]> {
  const current = await packsOfWorkflows(pf.projectDir).catch((e) => {
    if (opts.packs?.length) return [] as WantedPack[];
    throw e;
  });
  const specs = parseSpecs(opts.packs);
  const chosen = specs.length
    ? specs.map((s) => {
        const key = s.kind === "git" ? s.dir.toLowerCase() : s.kind === "registry" ? s.id.toLowerCase() : s.name.toLowerCase();
        const had = current.find((c) => packKeys(c).includes(key));
        return { spec: s, had };
      })
    : current.map((c) => ({ spec: undefined, had: c }));
  const pins = parsePins(o.pins);
  const toPin: { spec: PackSpec; from: string }[] = [];
  for (const { spec, had } of chosen) {
    if (had && pins.some((p) => packKeys(had).includes(p.key.toLowerCase()))) {
      pf.log(`nodes: ${had.dir} is pinned in the flowfile: not updated`);
      continue;
    }
    // newest: the default branch's head, or the registry's latest version
    const latest: PackSpec | undefined = had
      ? had.kind === "git" || !had.registryId
        ? { kind: "git", repo: had.repo!, dir: had.dir, input: had.repo! }
        : { kind: "name", name: had.registryId, input: had.registryId }
      : spec && spec.kind === "git"
        ? { ...spec, ref: undefined }
        : spec && { kind: "name", name: spec.kind === "registry" ? spec.id : spec.name, input: spec.input };
    if (latest) toPin.push({ spec: latest, from: had?.from[0] ?? "command line" });
  }
  const newest = await pinAll(pf, toPin);
  const wanted = newest.map((n) => {
    const had = current.find((c) => packKeys(c).some((k) => packKeys(n).includes(k)));
    return had ? { ...n, dir: had.dir, classes: had.classes, optional: had.optional, from: had.from } : n;
  });
  const lock = await readLockFile(join(pf.projectDir, LOCK_FILE));
  if (lock && !pf.dryRun) {
    let moved = 0;
    for (const w of Object.values(lock.workflows)) {
      w.packs = w.packs.map((lp) => {
        const keys = lockedKeys(lp);
        const n = wanted.find((x) => packKeys(x).some((k) => keys.includes(k)));
        if (!n) return lp;
        moved++;
        return lockedPackOf(n, lp);
      });
    }
    const r = await writeIfChanged(join(pf.projectDir, LOCK_FILE), serializeLock(lock), false, "");
    const changed = typeof r === "object" && r.status === "changed";
    pf.log(`nodes: ${LOCK_FILE}: ${changed ? `${moved} entries now at the newest` : "already at the newest"}`);
  }
  for (const w of wanted) pf.log(`nodes: ${w.dir} -> ${w.kind === "git" ? w.commit!.slice(0, 10) : w.version}`);
  return wanted;
}

export async function runUpdate(ctx: TaskContext, o: NodesOptions, opts: UpdateOptions): Promise<void> {
  const wanted = decided.get(opts) ?? [];
  await installOnHost(ctx, o, { wanted, force: opts.force, restart: true, verify: true }, opts.dataRoot);
}

// ---------- remove ----------

export async function checkRemove(opts: RemoveOptions): Promise<void> {
  const ok = safePackDir(opts.pack.replace(/\.disabled$/, ""));
  if (!ok.ok) throw new TaskError(`nodes:remove ${JSON.stringify(opts.pack)}: ${ok.reason}`);
}

export async function runRemove(ctx: TaskContext, o: NodesOptions, opts: RemoveOptions): Promise<void> {
  if (!ctx.confirmed && !ctx.dryRun) throw new TaskError(`nodes:remove deletes ${opts.pack}: confirm with --yes`);
  const l = comfyLayout(dataRootOf(ctx, opts.dataRoot));
  const wanted = await packsOfWorkflows(ctx.projectDir).catch(() => [] as WantedPack[]);
  const host = await readHostPacks(ctx, l.customNodes);
  const target = host.find((h) => h.name === opts.pack.replace(/\.disabled$/, ""));
  if (!target) {
    await ctx.step(`${opts.pack}: removed`, async () => ({ status: "ok", note: "not on this host" }));
    return;
  }
  const users = wanted.filter((w) => findOnHost(w, [target]) === target);
  if (users.length && !opts.force) {
    const files = [...new Set(users.flatMap((u) => u.from))].join(", ");
    throw new TaskError(`${opts.pack} brings classes that ${files} use: --force removes it anyway`);
  }
  const aside = `${l.backups}/nodes-removed/${new Date().toISOString().replace(/[-:]|\.\d+/g, "")}`;
  if (ctx.hasTask("comfyui:snapshot")) await ctx.runTask("comfyui:snapshot", { action: "save" });
  // a clean clone comes back from its origin (a snapshot restore does that); anything else is kept aside
  const restorable = target.kind === "git" && !target.dirty && !!target.origin;
  await ctx.step(`${target.name}: removed`, async () => {
    if (ctx.dryRun) return { status: "changed", note: restorable ? "would delete it (dry run)" : `would move it to ${aside} (dry run)` };
    if (restorable) {
      // root: ComfyUI (root in the container) writes __pycache__ into the pack
      await ctx.sh(`rm -rf -- ${shQuote(target.path)}`, { sudo: true });
      return { status: "changed", note: `deleted (was ${target.origin}@${target.commit?.slice(0, 10)})` };
    }
    await ctx.sh(moveAsideCommand(target.path, aside, target.name));
    return { status: "changed", note: `moved to ${aside}: it cannot be fetched again from an origin` };
  });
  await restartComfy(ctx, { reason: `${target.name} removed` });
  await verifyClasses(
    ctx,
    wanted.filter((w) => !w.optional && !users.includes(w)),
  );
}

// nodes:install on one host: each wanted pack put in place as pinned (clone, move to the commit,
// unpack the registry version), its requirements installed with the container's Python, then ONE
// restart when anything changed, then every class the workflows use must be in /object_info.
import { TaskError, type StepResult, type TaskContext } from "../../lib/index.ts";
import { comfyLayout, COMFY_HOME, type ComfyLayout } from "../../lib/comfy/deploy.ts";
import { dataRootOf } from "../../lib/host-data.ts";
import { checkUrl } from "../../lib/net-policy.ts";
import { restartComfy } from "../comfyui/restart.ts";
import { CONTAINER } from "../comfyui-api/health.ts";
import { upstreamClient, upstreamUrls } from "../workflow/upstream.ts";
import { enableCommand, gitInstallCommand, registryInstallCommand } from "./commands.ts";
import { readHostPacks } from "./host-packs.ts";
import { planPack, type PackAction } from "./plan.ts";
import {
  failedRequirement,
  installPyCommand,
  noReportSupport,
  parsePipReport,
  parseRequirementState,
  pipInstallCommand,
  pipPlainInstallCommand,
  pipReportCommand,
  requirementStateCommand,
  writeMarkerCommand,
  type PipWhere,
} from "./pip.ts";
import { verifyClasses } from "./verify.ts";
import type { WantedPack } from "./wanted.ts";
import type { NodesOptions } from "./index.ts";

const root = { sudo: true } as const;
const short = (c?: string) => (c ? c.slice(0, 10) : "?");
const pinText = (p: WantedPack) => (p.kind === "git" ? `${p.repo}@${short(p.commit)}` : `${p.registryId}@${p.version}`);

export interface InstallRun {
  wanted: WantedPack[];
  force: boolean;
  restart: boolean;
  verify: boolean;
}

export function pipWhere(o: NodesOptions, allowHosts: readonly string[]): PipWhere {
  const indexUrl = o.pipIndexUrl;
  let trustedHost: string | undefined;
  if (indexUrl) {
    // plain http or a private address only for an index the flowfile allows (a LAN mirror, the lab's)
    const why = checkUrl({ allowHosts }, indexUrl);
    if (why) throw new TaskError(`nodes({ pipIndexUrl }): ${why}`);
    const u = new URL(indexUrl);
    if (u.protocol === "http:") trustedHost = u.hostname;
  }
  return { container: CONTAINER, python: o.python ?? "python3", indexUrl, trustedHost };
}

/** Download URLs of registry packs, asked once on this machine; the host fetches them (line rate on its side). */
async function registryUrls(ctx: TaskContext, packs: WantedPack[]): Promise<Map<WantedPack, string>> {
  const m = new Map<WantedPack, string>();
  const need = packs.filter((p) => p.kind === "registry");
  if (!need.length) return m;
  const allowHosts = ctx.flow.settings.allowHosts;
  const up = upstreamClient(upstreamUrls(process.env), { allowHosts });
  for (const p of need) {
    const url = await up.registryDownloadUrl(p.registryId!, p.version!);
    const why = checkUrl({ allowHosts }, url);
    if (why) throw new TaskError(`registry pack ${p.registryId}@${p.version}: ${why}`);
    m.set(p, url);
  }
  return m;
}

async function applyAction(ctx: TaskContext, a: PackAction, l: ComfyLayout, aside: string, urls: Map<WantedPack, string>, force: boolean) {
  const p = a.pack;
  switch (a.do) {
    case "none":
      return ctx.step(`${a.host.name}: ${pinText(p)}`, async () => ({ status: "ok", note: a.note }));
    case "keep":
      return ctx.step(`${a.host.name}: wanted ${pinText(p)}`, async () => {
        ctx.warn(`${a.host.name}: ${a.why}`);
        return { status: a.failed ? "failed" : "skipped", note: a.why };
      });
    case "enable":
      await ctx.step(`${a.host.name}: enable (was ${a.host.name}.disabled)`, async () => {
        if (ctx.dryRun) return { status: "changed", note: "would rename it (dry run)" };
        await ctx.sh(enableCommand(l.customNodes, a.host.name));
        return { status: "changed", note: "renamed" };
      });
      if (!a.then) return;
      return applyAction(
        ctx,
        { ...a, do: a.then === "checkout" ? "checkout" : "unpack", dir: a.host.name, from: short(a.host.commit) } as PackAction,
        l,
        aside,
        urls,
        force,
      );
    case "clone":
    case "checkout": {
      const dir = a.do === "clone" ? a.dir : a.host.name;
      const title = a.do === "clone" ? `${dir}: clone ${pinText(p)}` : `${dir}: ${a.from} -> ${short(p.commit)}`;
      return ctx.step(title, async () => {
        if (ctx.dryRun)
          return { status: "changed", note: `would ${a.do === "clone" ? "clone" : "check out"} ${short(p.commit)} (dry run)` };
        const cmd = gitInstallCommand({ customNodes: l.customNodes, dir, repo: p.repo!, commit: p.commit!, asideDir: aside, force });
        const r = await ctx.exec(cmd);
        if (r.code !== 0) return packFailed(ctx, `${dir}: git could not put ${pinText(p)} in place: ${lastLines(r.stderr)}`);
        return { status: "changed", note: `${r.stdout.trim().split("\n").pop()} at ${short(p.commit)}` };
      });
    }
    case "unpack": {
      return ctx.step(`${a.dir}: registry ${p.registryId}@${p.version}`, async () => {
        if (ctx.dryRun) return { status: "changed", note: "would download and unpack it (dry run)" };
        const cmd = registryInstallCommand({
          customNodes: l.customNodes,
          dir: a.dir,
          registryId: p.registryId!,
          version: p.version!,
          downloadUrl: urls.get(p)!,
          asideDir: aside,
        });
        const r = await ctx.exec(cmd);
        if (r.code !== 0) return packFailed(ctx, `${a.dir}: registry ${p.registryId}@${p.version}: ${lastLines(r.stderr)}`);
        return { status: "changed", note: "unpacked" };
      });
    }
  }
}

/** Each installed pack's requirements.txt (and install.py), when they changed since flow last ran them. */
async function requirements(
  ctx: TaskContext,
  l: ComfyLayout,
  packs: { dir: string; pin: string }[],
  w: PipWhere,
): Promise<{ changed: number; failed: string[] }> {
  const markerDir = `${l.python}/.flow-requirements`;
  const state = parseRequirementState(
    await ctx.sh(
      requirementStateCommand(
        l.customNodes,
        markerDir,
        packs.map((p) => p.dir),
      ),
    ),
  );
  let changed = 0;
  const failed: string[] = [];
  let running: boolean | undefined;
  for (const p of packs) {
    const s = state.get(p.dir);
    if (!s || !s.sums) continue;
    const want = `${s.sums}|${p.pin}`;
    if (s.marker === want) {
      await ctx.step(`${p.dir}: requirements`, async () => ({ status: "ok", note: "installed before, unchanged" }));
      continue;
    }
    await ctx.step(`${p.dir}: requirements`, async () => {
      if (ctx.dryRun) return { status: "changed", note: "would run pip in the container (dry run)" };
      running ??= (await ctx.exec(`docker inspect -f '{{.State.Running}}' ${w.container}`, root)).stdout.trim() === "true";
      if (!running) throw new TaskError(`the ${w.container} container is not running: run flow run comfyui:up first (pip runs inside it)`);
      const inContainer = `${COMFY_HOME}/custom_nodes/${p.dir}`;
      const has = (f: string) => s.sums.split(",").some((x) => x.startsWith(`${f}:`));
      let note = "";
      if (has("requirements.txt")) {
        const rep = await ctx.exec(pipReportCommand(w, inContainer), root);
        let pins: string[] | undefined;
        if (rep.code !== 0 && noReportSupport(rep.stderr)) {
          const r = await ctx.exec(pipPlainInstallCommand(w, inContainer), root);
          if (r.code !== 0) return pipFailed(ctx, p.dir, r.stderr, failed);
          note = "installed (pip without --report)";
        } else if (rep.code !== 0) return pipFailed(ctx, p.dir, rep.stderr, failed);
        else pins = parsePipReport(rep.stdout);
        if (pins?.length) {
          const r = await ctx.exec(pipInstallCommand(w, pins), root);
          if (r.code !== 0) return pipFailed(ctx, p.dir, r.stderr, failed);
          note = `installed ${pins.join(" ")}`;
        } else if (pins) note = "already met";
      }
      if (has("install.py")) {
        const r = await ctx.exec(installPyCommand(w, inContainer), root);
        if (r.code !== 0) {
          failed.push(p.dir);
          return packFailed(ctx, `${p.dir}: install.py failed: ${lastLines(r.stderr)}`);
        }
        note += `${note ? "; " : ""}install.py ran`;
      }
      await ctx.sh(writeMarkerCommand(markerDir, p.dir, want));
      changed++;
      return { status: "changed", note };
    });
  }
  return { changed, failed };
}

/** One pack's failure: named, warned, and the step failed; the other packs go on (the run still ends failed). */
function packFailed(ctx: TaskContext, message: string): StepResult {
  ctx.warn(message);
  return { status: "failed", note: message };
}

const lastLines = (text: string) => text.trim().split("\n").slice(-3).join(" / ");

function pipFailed(ctx: TaskContext, dir: string, stderr: string, failed: string[]): StepResult {
  failed.push(dir);
  const req = failedRequirement(stderr);
  const tail = stderr
    .trim()
    .split("\n")
    .filter((x) => /error/i.test(x))
    .slice(-2)
    .join(" / ");
  return packFailed(ctx, `${dir}: pip could not install ${req ? `requirement ${req}` : "its requirements"}${tail ? `: ${tail}` : ""}`);
}

export async function installOnHost(ctx: TaskContext, o: NodesOptions, run: InstallRun, dataRootOverride?: string): Promise<void> {
  const l = comfyLayout(dataRootOf(ctx, dataRootOverride));
  const w = pipWhere(o, ctx.flow.settings.allowHosts);
  const host = await readHostPacks(ctx, l.customNodes);
  const actions = run.wanted.map((p) => planPack(p, host, run.force));
  const urls = await registryUrls(
    ctx,
    actions.filter((a) => a.do === "unpack" || (a.do === "enable" && a.then === "unpack")).map((a) => a.pack),
  );
  const aside = `${l.backups}/nodes-replaced/${new Date().toISOString().replace(/[-:]|\.\d+/g, "")}`;
  let changed = 0;
  for (const a of actions) {
    const status = await applyAction(ctx, a, l, aside, urls, run.force);
    if (status === "changed") changed++;
  }
  const present = actions
    .filter((a) => a.do !== "keep")
    .map((a) => ({ dir: a.do === "clone" || a.do === "unpack" ? a.dir : a.host.name, pin: pinText(a.pack) }));
  const req = await requirements(ctx, l, present, w);
  changed += req.changed;
  if (changed && run.restart) {
    await restartComfy(ctx, { reason: `${changed} change${changed === 1 ? "" : "s"}` });
  } else if (run.restart) await ctx.step("restart ComfyUI", async () => ({ status: "skipped", note: "nothing changed" }));
  if (run.verify)
    await verifyClasses(
      ctx,
      run.wanted.filter((p) => !p.optional),
    );
}

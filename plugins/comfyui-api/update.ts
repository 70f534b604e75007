// api:update, api:rollback, api:builds: comfyui-api builds on a host and the switch between them.
//
//   api:update --from ./comfyui-api | ./build-folder | ./build.tgz | https://host/comfyui-api
//   api:update --version 1.18.1          # <release url>/<version>/comfyui-api
//   api:rollback [--to <build>|image]
//   api:builds
//
// A build goes to <data root>/comfyui-api/bin/<version-or-sha>/ (layout: ./builds.ts), checked
// against its sha256 before it is placed and again before every switch, and is not sent when the
// host has it. The container runs /app/bin/current/comfyui-api with bin/ mounted at /app/bin, so
// a switch is `bin/current -> <build>` plus a restart; the container is re-created only when it
// ran the image's own comfyui-api (comfyui:up decides its spec from the same fact). After a switch
// GET /health and /ready must answer 200; when they do not (comfyui-api exits, or the time runs
// out) flow switches back to the build that ran before, checks that one serves, marks the new
// build failed and says so in red, with the container's last log lines.
//
// URLs are downloaded by the host, not by this machine: a GPU box's bandwidth is better than a
// laptop's uplink, and the host's downloader (tasks/models-download.ts) already resumes, checks
// sha256 and applies the address policy (lib/net-policy.ts: https to public addresses unless
// settings.allowHosts lists the host, redirects included, checked at connect time). The URL is
// checked here too before anything runs, so a refusal costs no round trip.
import { basename, resolve } from "node:path";
import { z } from "zod";
import { defineTask, TaskError, type TaskContext } from "../../lib/index.ts";
import { comfyLayout, CONTAINER_CURRENT_BINARY } from "../../lib/comfy/deploy.ts";
import { restartContainer } from "../../lib/commands/docker.ts";
import { dataRootOf } from "../../lib/host-data.ts";
import { urlProblem } from "../../lib/net-policy.ts";
import { stripUrlCredentials } from "../../lib/url-credentials.ts";
import type { DownloadJob, DownloadSummary } from "../../tasks/lib/download/types.ts";
import {
  buildsFactCommand,
  incomingCommand,
  installDownloadCommand,
  installUploadCommand,
  pruneCommand,
  switchCommand,
  verifyBuildCommand,
  writeHistoryCommand,
  writeMarkerCommand,
} from "./build-commands.ts";
import {
  buildIdFor,
  choosePrune,
  downloadName,
  fmtBytes,
  IMAGE,
  INCOMING,
  isArchiveName,
  isUrl,
  KEEP_BUILDS,
  parseBuildsFact,
  pushHistory,
  releaseUrl,
  RELEASES_ENV,
  RELEASES_URL,
  rollbackTarget,
  runsCurrent,
  sha256Hex,
  versionProblem,
  type BuildMarker,
  type BuildSource,
  type BuildsFact,
} from "./builds.ts";
import { CONTAINER, endpointsOf, healthVersion, hostNow, lastLogLines, servedWorkflows, waitApiHealthy, waitProblem } from "./health.ts";
import { prepareLocalBuild, type LocalBuild } from "./local-build.ts";

const root = { sudo: true } as const;
const DEFAULT_HEALTH_TIMEOUT = 180;
const LOG_LINES = 30;

export interface UpdateSettings {
  /** the container comfyui:up makes (default "comfyui") */
  container?: string;
  /** where --version is fetched from (default GitHub releases; $FLOW_COMFYUI_API_RELEASES_URL overrides) */
  releaseBaseUrl?: string;
  /** builds kept on a host, the current one included (default 3) */
  keep?: number;
  /** seconds to wait for GET /health and /ready after a switch (default 180) */
  healthTimeoutSeconds?: number;
}

const shown = (url: string) => stripUrlCredentials(url, "mask");
const label = (id: string | null) => (id === null || id === IMAGE ? "the image's own comfyui-api" : `build ${id}`);

// ---------- facts ----------

/** Where a host keeps its builds and which container runs them. */
interface Where {
  bin: string;
  container: string;
}

async function readFact(ctx: TaskContext, w: Where): Promise<BuildsFact> {
  return parseBuildsFact(await ctx.sh(buildsFactCommand(w.bin, w.container), root));
}

// ---------- the build onto the host ----------

function describeSource(src: BuildSource): string {
  switch (src.kind) {
    case "release":
      return `release ${src.version}`;
    case "url":
      return shown(src.url);
    default:
      return `${src.kind} ${src.path}`;
  }
}

/** --from / --version as a source; refused here, before any host, when the address policy says no. */
export function parseSource(o: { from?: string; version?: string }, base: string, allowHosts: readonly string[]): BuildSource {
  if (!!o.from === !!o.version) throw new TaskError("api:update needs one of --from <file|folder|url> or --version <release>");
  if (o.version) {
    const why = versionProblem(o.version);
    if (why) throw new TaskError(`--version ${why}`);
    const url = releaseUrl(o.version, base);
    const refused = urlProblem({ allowHosts }, url);
    if (refused) throw new TaskError(`--version ${o.version}: refused ${shown(url)}: ${refused}`);
    return { kind: "release", version: o.version, url };
  }
  const from = o.from!;
  if (isUrl(from)) {
    const refused = urlProblem({ allowHosts }, from);
    if (refused) throw new TaskError(`--from: refused ${shown(from)}: ${refused}`);
    if (new URL(from).protocol !== "https:" && new URL(from).protocol !== "http:")
      throw new TaskError(`--from ${shown(from)}: not an http(s) URL`);
    return { kind: "url", url: from };
  }
  return { kind: isArchiveName(from) ? "archive" : "folder", path: from }; // binary or folder: decided when read
}

interface Placed {
  id: string;
  /** what the step said */
  note: string;
  changed: boolean;
}

/** Send a local build unless the host has it; checked on the host before it is placed. */
async function placeLocal(ctx: TaskContext, bin: string, fact: BuildsFact, local: LocalBuild, source: string): Promise<Placed> {
  const id = buildIdFor({ kind: local.kind }, local.sha256);
  const have = fact.builds.find((b) => b.id === id);
  if (have && (await ctx.exec(verifyBuildCommand(bin, id), root)).code === 0) {
    return { id, changed: false, note: `already on the host (not sent), sha256 checked` };
  }
  if (ctx.dryRun)
    return { id, changed: true, note: `would send ${fmtBytes(local.bytes)}${have ? " (the host's copy does not match its sha256)" : ""}` };
  const inc = `${bin}/${INCOMING}`;
  const marker: BuildMarker = {
    id,
    source,
    sha256: local.sha256,
    bytes: local.bytes,
    version: local.version,
    addedAt: new Date().toISOString(),
  };
  let sent = 0;
  if (local.kind === "binary") {
    sent += (await ctx.transport.upload(local.upload, `${inc}/${id}.bin`, { mode: 0o755 })).bytesSent;
    await ctx.sh(installUploadCommand(bin, id, "binary", local.sha256), { ...root, stdin: JSON.stringify(marker) + "\n" });
  } else {
    sent += (await ctx.transport.upload(local.upload, `${inc}/${id}.tgz`, { mode: 0o644 })).bytesSent;
    await ctx.transport.upload(Buffer.from(local.sums ?? ""), `${inc}/${id}.sha256`, { mode: 0o644 });
    await ctx.sh(installUploadCommand(bin, id, "tgz"), { ...root, stdin: JSON.stringify(marker) + "\n" });
  }
  const what = local.kind === "binary" ? "binary" : `${local.files} files`;
  return { id, changed: true, note: `sent ${fmtBytes(sent)} (${what}, ${fmtBytes(local.bytes)}), sha256 checked` };
}

/** The host downloads a URL (release or not) with flow's downloader, then checks and places it. */
async function placeUrl(
  ctx: TaskContext,
  bin: string,
  fact: BuildsFact,
  src: Extract<BuildSource, { kind: "release" | "url" }>,
  sha256?: string,
): Promise<Placed> {
  const source = src.kind === "release" ? `release ${src.version} (${shown(src.url)})` : shown(src.url);
  // the host has it already: the release's folder, or a build made from the same URL
  const known =
    src.kind === "release"
      ? fact.builds.find((b) => b.id === src.version)
      : fact.builds.find((b) => b.marker.source === source && (!sha256 || b.marker.sha256 === sha256.toLowerCase()));
  if (known && (await ctx.exec(verifyBuildCommand(bin, known.id), root)).code === 0) {
    return { id: known.id, changed: false, note: "already on the host (not downloaded), sha256 checked" };
  }
  if (ctx.dryRun)
    return { id: src.kind === "release" ? src.version : "(its sha256)", changed: true, note: `the host would download ${source}` };
  const dir = `${bin}/${INCOMING}/dl-${buildIdFor({ kind: "url" }, sha256Hex(src.url))}`;
  const name = downloadName(src.url);
  const file = `${dir}/${name}`;
  const job: DownloadJob = {
    files: [
      { url: src.url, target: file, name: `comfyui-api ${src.kind === "release" ? src.version : name}`, ...(sha256 ? { sha256 } : {}) },
    ],
    modelsRoot: `${bin}/${INCOMING}`,
    allowHosts: ctx.flow.settings.allowHosts,
    connections: 8,
    parallelFiles: 1,
  };
  const onProgress = (ev: Record<string, unknown>) => {
    if (ev.type === "progress" && typeof ev.done === "number") {
      const total = typeof ev.total === "number" && ev.total > 0 ? ` of ${fmtBytes(ev.total)}` : "";
      ctx.progress(`downloading ${name}: ${fmtBytes(ev.done)}${total}`);
    }
  };
  const key = `comfyui-api-download`;
  let run = await ctx.remoteScript("models-download", { key, job, onProgress });
  if (run.how !== "started") run = await ctx.remoteScript("models-download", { key, job, onProgress }); // that was an earlier job's
  const summary = run.result as DownloadSummary | null;
  const failed = summary?.failed[0];
  if (!summary || failed || (!summary.downloaded.length && !summary.skipped.length)) {
    throw new TaskError(`the host could not download ${shown(src.url)}: ${failed?.reason ?? "the download script returned no summary"}`);
  }
  const marker: BuildMarker = {
    id: "@ID@",
    source,
    sha256: "@SHA256@",
    bytes: -1,
    ...(src.kind === "release" ? { version: src.version } : {}),
    addedAt: new Date().toISOString(),
  };
  // bytes is filled in on the host: a number in the JSON, not a string
  const markerText = JSON.stringify(marker).replace('"bytes":-1', '"bytes":@BYTES@') + "\n";
  const out = await ctx.sh(
    installDownloadCommand(bin, file, {
      version: src.kind === "release" ? src.version : undefined,
      expect: sha256,
      archive: isArchiveName(name),
    }),
    { ...root, stdin: markerText },
  );
  const m = /^build (\S+) ([0-9a-f]{64}) (\d+)$/m.exec(out);
  if (!m) throw new TaskError(`placing the download on the host: unexpected output ${JSON.stringify(out.slice(0, 200))}`);
  const [, id, , bytes] = m;
  const secs = summary.seconds ? ` in ${summary.seconds.toFixed(1)}s` : "";
  if (/^have /m.test(out)) return { id: id!, changed: false, note: `downloaded on the host${secs}; the same build was there already` };
  return { id: id!, changed: true, note: `downloaded on the host (${fmtBytes(Number(bytes))}${secs}), sha256 ${m[2]!.slice(0, 12)}…` };
}

// ---------- switching ----------

/**
 * Make the container run `id` (or the image's own comfyui-api): the symlink, then a restart when the
 * container already runs bin/current, else comfyui:up (it re-creates the container with
 * /app/bin/current/comfyui-api, or with the image's command when bin/current is gone).
 */
async function activate(ctx: TaskContext, sw: Switch, fact: BuildsFact, id: string): Promise<{ how: string }> {
  const { bin, healthTimeout, dataRoot, container } = sw;
  const image = id === IMAGE;
  await ctx.sh(switchCommand(bin, image ? null : id), root);
  if (!image && runsCurrent(fact.command, CONTAINER_CURRENT_BINARY)) {
    await ctx.sh(restartContainer(container), root);
    return { how: "restarted" };
  }
  if (image && fact.command && !runsCurrent(fact.command, CONTAINER_CURRENT_BINARY)) {
    await ctx.sh(restartContainer(container), root); // already on the image's command (or the flowfile's own binary)
    return { how: "restarted" };
  }
  try {
    await ctx.runTask("comfyui:up", { healthTimeout, ...(dataRoot ? { dataRoot } : {}) });
  } catch (e) {
    if (/no task named comfyui:up/.test((e as Error).message)) {
      throw new TaskError(
        `the ${container} container must be re-created to run ${label(id)}, ` +
          `which needs comfyui:up: add comfyui() to the flowfile's plugins`,
      );
    }
    throw e;
  }
  const after = await readFact(ctx, sw);
  if (!image && !runsCurrent(after.command, CONTAINER_CURRENT_BINARY)) {
    throw new TaskError(
      `comfyui:up did not switch the container to ${CONTAINER_CURRENT_BINARY}: ` +
        `the flowfile's comfyui({ customBinary: false }) keeps the image's own comfyui-api`,
    );
  }
  return { how: "re-created" };
}

/** Where and how a switch happens. */
interface Switch extends Where {
  healthTimeout: number;
  /** --data-root, passed on to comfyui:up */
  dataRoot?: string;
}

interface SwitchResult {
  ok: boolean;
  /** served version on success */
  version?: string;
  problem?: string;
  logs?: string;
}

/**
 * Switch, then wait for /health and /ready, then the workflows: every one the build before served
 * must still be served (a build that cannot load the project's workflows is no better than one that
 * does not start). Any failure (comfyui:up's too) is a failed check.
 */
async function switchAndVerify(ctx: TaskContext, sw: Switch, fact: BuildsFact, id: string, expect: string[] = []): Promise<SwitchResult> {
  const { healthTimeout, container } = sw;
  const since = await hostNow(ctx); // the log lines that matter are the new build's
  let how = "";
  try {
    how = (await activate(ctx, sw, fact, id)).how;
  } catch (e) {
    return { ok: false, problem: (e as Error).message.split("\n")[0], logs: await lastLogLines(ctx, LOG_LINES, container, since) };
  }
  const ends = endpointsOf((await readFact(ctx, sw)).ports);
  const w = await waitApiHealthy(ctx, ends.api, healthTimeout, container);
  if (w.outcome !== "ok")
    return { ok: false, problem: waitProblem(w, healthTimeout), logs: await lastLogLines(ctx, LOG_LINES, container, since) };
  if (expect.length) {
    const served = new Set((await servedWorkflows(ctx, ends.api)) ?? []);
    const missing = expect.filter((p) => !served.has(p));
    if (missing.length) {
      const problem =
        `it does not serve ${missing.length} of the ${expect.length} workflow${expect.length === 1 ? "" : "s"} ` +
        `the build before served: ${missing.join(", ")}`;
      return { ok: false, problem, logs: await lastLogLines(ctx, LOG_LINES, container, since) };
    }
  }
  return { ok: true, version: healthVersion(w.body), problem: how };
}

async function writeHistory(ctx: TaskContext, bin: string, history: string[]): Promise<void> {
  await ctx.sh(writeHistoryCommand(bin), { ...root, stdin: history.map((h) => `${h}\n`).join("") });
}

async function markFailed(ctx: TaskContext, bin: string, fact: BuildsFact, id: string, why: string): Promise<void> {
  const b = fact.builds.find((x) => x.id === id);
  if (!b) return;
  const marker: BuildMarker = { ...b.marker, failedAt: new Date().toISOString(), failure: why };
  await ctx.exec(writeMarkerCommand(bin, id), { ...root, stdin: JSON.stringify(marker) + "\n" });
}

/**
 * The switch and its check as steps; on a failed check, the way back to `previous` as steps too,
 * then a TaskError that names the build, the reason and the log's last lines.
 */
async function switchWithRollback(ctx: TaskContext, sw: Switch, id: string, previous: string, verb: string): Promise<string | undefined> {
  const { bin } = sw;
  let fact = await readFact(ctx, sw);
  // what the running build serves now, to hold the new one to
  const expect = (await servedWorkflows(ctx, endpointsOf(fact.ports).api)) ?? [];
  let result!: SwitchResult;
  const what = expect.length
    ? `GET /health, /ready and its ${expect.length} workflow${expect.length === 1 ? "" : "s"}`
    : "GET /health and /ready";
  await ctx.step(`${verb} to ${label(id)}, check ${what}`, async () => {
    result = await switchAndVerify(ctx, sw, fact, id, expect);
    if (result.ok)
      return {
        status: "changed",
        note: `${result.problem}; serves comfyui-api ${result.version ?? "(version unknown)"}; was ${label(previous)}`,
      };
    return { status: "failed", note: result.problem };
  });
  if (result.ok) return result.version;
  // back to what ran before
  fact = await readFact(ctx, sw);
  await markFailed(ctx, bin, fact, id, result.problem ?? "failed its check");
  let back!: SwitchResult;
  await ctx.step(`switch back to ${label(previous)}`, async () => {
    back = await switchAndVerify(ctx, sw, fact, previous);
    if (back.ok) return { status: "changed", note: `serves comfyui-api ${back.version ?? "(version unknown)"} again` };
    return { status: "failed", note: back.problem };
  });
  const logs = result.logs ? `\nlast ${LOG_LINES} lines of the ${sw.container} container's log (${label(id)}):\n${result.logs}` : "";
  if (!back.ok) {
    throw new TaskError(
      `${label(id)} failed its check (${result.problem}) and switching back to ${label(previous)} failed too ` +
        `(${back.problem}): comfyui-api is down on this host${logs}`,
    );
  }
  throw new TaskError(
    `${label(id)} failed its check (${result.problem}): switched back to ${label(previous)}, ` +
      `which serves (GET /health and /ready 200)${logs}`,
  );
}

async function prune(ctx: TaskContext, w: Where, keep: number): Promise<void> {
  const { bin } = w;
  await ctx.step(`keep the last ${keep} builds`, async () => {
    const fact = await readFact(ctx, w);
    const drop = choosePrune(fact.builds, { current: fact.current, history: fact.history, keep });
    if (!drop.length) return { status: "ok", note: `${fact.builds.length} on the host` };
    if (ctx.dryRun) return { status: "changed", note: `would remove ${drop.join(", ")}` };
    await ctx.sh(pruneCommand(bin, drop), root);
    const history = fact.history.filter((h) => !drop.includes(h));
    if (history.length !== fact.history.length) await writeHistory(ctx, bin, history);
    return { status: "changed", note: `removed ${drop.join(", ")}` };
  });
}

// ---------- the tasks ----------

const releaseBase = (o: { releaseUrl?: string }, settings: UpdateSettings) =>
  o.releaseUrl ?? process.env[RELEASES_ENV] ?? settings.releaseBaseUrl ?? RELEASES_URL;

/** A local build is read (hashed, tarred) once per run, whatever the number of hosts; its temp files go when flow exits. */
const prepared = new Map<string, Promise<LocalBuild>>();
function prepareOnce(path: string, projectDir: string): Promise<LocalBuild> {
  const abs = resolve(projectDir, path);
  let p = prepared.get(abs);
  if (!p) {
    p = prepareLocalBuild(abs);
    prepared.set(abs, p);
    p.then(
      (b) => process.once("exit", () => b.cleanupSync()),
      () => prepared.delete(abs),
    );
  }
  return p;
}

const healthTimeoutOption = z
  .number()
  .int()
  .positive()
  .optional()
  .describe(`seconds for GET /health and /ready after the switch (default ${DEFAULT_HEALTH_TIMEOUT})`);
const dataRootOption = z.string().optional().describe("data root on the host (default: the host's or its provider's)");

export function updateTasks(settings: UpdateSettings = {}) {
  const container = settings.container ?? CONTAINER;
  const update = defineTask({
    name: "api:update",
    description:
      "Put a comfyui-api build on the host (file, folder, URL or release), switch to it, verify; switch back by itself on failure",
    options: z.object({
      from: z.string().min(1).optional().describe("a comfyui-api binary, a build folder, a .tgz of one, or an https:// URL"),
      version: z.string().min(1).optional().describe("a comfyui-api release, e.g. 1.18.1 (<release-url>/<version>/comfyui-api)"),
      sha256: z
        .string()
        .regex(/^[0-9a-fA-F]{64}$/, "64 hex digits")
        .optional()
        .describe("the file's expected sha256 (URL or release)"),
      releaseUrl: z.string().url().optional().describe(`where releases are fetched from (default ${RELEASES_URL}, or $${RELEASES_ENV})`),
      healthTimeout: healthTimeoutOption,
      keep: z.number().int().min(1).optional().describe(`builds kept on the host, the current one included (default ${KEEP_BUILDS})`),
      dataRoot: dataRootOption,
    }),
    // before any host: a refused URL or an unreadable build stops the run (and a build is read once for every host)
    async preflight(ctx, o) {
      const src = parseSource(o, releaseBase(o, settings), ctx.flow.settings.allowHosts ?? []);
      if (src.kind === "folder" || src.kind === "archive") await prepareOnce(src.path, ctx.projectDir);
    },
    async run(ctx, o) {
      const src = parseSource(o, releaseBase(o, settings), ctx.flow.settings.allowHosts ?? []);
      const healthTimeout = o.healthTimeout ?? settings.healthTimeoutSeconds ?? DEFAULT_HEALTH_TIMEOUT;
      const keep = o.keep ?? settings.keep ?? KEEP_BUILDS;
      const bin = comfyLayout(dataRootOf(ctx, o.dataRoot)).bin;
      const sw: Switch = { bin, container, healthTimeout, dataRoot: o.dataRoot };
      let local: LocalBuild | undefined;
      if (src.kind === "folder" || src.kind === "archive") {
        await ctx.step(`read ${src.path}`, async () => {
          local = await prepareOnce(src.path, ctx.projectDir);
          const what = local.kind === "binary" ? "a binary" : `a build folder, ${local.files} files`;
          return {
            status: "ok",
            note:
              `${what}, ${fmtBytes(local.bytes)}, sha256 ${local.sha256.slice(0, 12)}…` +
              `${local.version ? `, version ${local.version}` : ""}`,
          };
        });
      }
      await ctx.step(`${bin}/${INCOMING}`, async () => {
        if (ctx.dryRun) return { status: "skipped", note: "dry run" };
        await ctx.sh(incomingCommand(bin, ctx.transport.user === "root" ? undefined : ctx.transport.user), root);
        return { status: "ok" };
      });
      let fact = await readFact(ctx, sw);
      let placed!: Placed;
      const localPath = src.kind === "folder" || src.kind === "archive" ? resolve(ctx.projectDir, src.path) : "";
      await ctx.step(`comfyui-api ${local ? `from ${basename(localPath)}` : describeSource(src)} on the host`, async () => {
        placed = local
          ? await placeLocal(ctx, bin, fact, local, `file ${localPath}`)
          : await placeUrl(ctx, bin, fact, src as Extract<BuildSource, { kind: "release" | "url" }>, o.sha256);
        return { status: placed.changed ? "changed" : "ok", note: `${placed.id}: ${placed.note}` };
      });
      if (ctx.dryRun) {
        await ctx.step(`switch to ${label(placed.id)}`, async () =>
          fact.current === placed.id
            ? { status: "ok", note: "already current" }
            : { status: "changed", note: `would switch from ${label(fact.current)}, restart and verify` },
        );
        return;
      }
      fact = await readFact(ctx, sw);
      const id = placed.id;
      if (fact.current === id && runsCurrent(fact.command, CONTAINER_CURRENT_BINARY)) {
        // a second run of the same update: nothing to switch, but it must still serve
        await ctx.step(`${label(id)} in use`, async () => {
          const w = await waitApiHealthy(ctx, endpointsOf(fact.ports).api, healthTimeout, container);
          if (w.outcome === "ok")
            return { status: "ok", note: `already current; serves comfyui-api ${healthVersion(w.body) ?? "(version unknown)"}` };
          return { status: "failed", note: `already current, but ${waitProblem(w, healthTimeout)}` };
        });
        await prune(ctx, sw, keep);
        return;
      }
      const previous = fact.current ?? IMAGE;
      const version = await switchWithRollback(ctx, sw, id, previous, "switch");
      fact = await readFact(ctx, sw);
      // the previous build goes on the stack first when it never was (the first switch away from it)
      const below =
        previous !== IMAGE && fact.history[fact.history.length - 1] !== previous ? pushHistory(fact.history, previous) : fact.history;
      await writeHistory(ctx, bin, pushHistory(below, id));
      ctx.emit({ comfyuiApi: { build: id, previous, version } });
      await prune(ctx, sw, keep);
    },
  });

  const rollback = defineTask({
    name: "api:rollback",
    description: "Switch comfyui-api back to the build that ran before the current one (or --to a build), verify",
    options: z.object({
      to: z.string().min(1).optional().describe(`a build on the host (see api:builds), or ${IMAGE} for the image's own comfyui-api`),
      healthTimeout: healthTimeoutOption,
      dataRoot: dataRootOption,
    }),
    async run(ctx, o) {
      const healthTimeout = o.healthTimeout ?? settings.healthTimeoutSeconds ?? DEFAULT_HEALTH_TIMEOUT;
      const bin = comfyLayout(dataRootOf(ctx, o.dataRoot)).bin;
      const sw: Switch = { bin, container, healthTimeout, dataRoot: o.dataRoot };
      const fact = await readFact(ctx, sw);
      let target: string;
      let history: string[];
      if (o.to) {
        if (o.to !== IMAGE && !fact.builds.some((b) => b.id === o.to)) {
          throw new TaskError(
            `no build ${o.to} on the host; there are: ${fact.builds.map((b) => b.id).join(", ") || "none"} (and ${IMAGE})`,
          );
        }
        target = o.to;
        const at = fact.history.lastIndexOf(o.to);
        history = o.to === IMAGE ? [] : at >= 0 ? fact.history.slice(0, at + 1) : pushHistory(fact.history, o.to);
      } else {
        const r = rollbackTarget(fact.history, fact.current, fact.builds);
        if (!r) throw new TaskError(`nothing to roll back to: the host runs ${label(fact.current)} and has no earlier build`);
        ({ target, history } = r);
      }
      if (target === (fact.current ?? IMAGE)) {
        await ctx.step(`${label(target)} in use`, async () => ({ status: "ok", note: "already current" }));
        return;
      }
      if (target !== IMAGE) {
        await ctx.step(`${label(target)} whole (sha256)`, async () => {
          const r = await ctx.exec(verifyBuildCommand(bin, target), root);
          if (r.code !== 0)
            throw new TaskError(`${label(target)} on the host does not match its sha256 manifest:\n${(r.stdout + r.stderr).trim()}`);
          return { status: "ok" };
        });
      }
      if (ctx.dryRun) {
        await ctx.step(`switch to ${label(target)}`, async () => ({
          status: "changed",
          note: `would switch from ${label(fact.current)}, restart and verify`,
        }));
        return;
      }
      const version = await switchWithRollback(ctx, sw, target, fact.current ?? IMAGE, "roll back");
      await writeHistory(ctx, bin, history);
      ctx.emit({ comfyuiApi: { build: target, previous: fact.current ?? IMAGE, version } });
    },
  });

  const list = defineTask({
    name: "api:builds",
    description: "The comfyui-api builds on each host: which one runs, where each came from",
    lock: false,
    options: z.object({ dataRoot: dataRootOption }),
    async run(ctx, o) {
      const bin = comfyLayout(dataRootOf(ctx, o.dataRoot)).bin;
      await ctx.step("builds", async () => {
        const fact = await readFact(ctx, { bin, container });
        const lines = fact.builds
          .sort((a, b) => (a.marker.addedAt < b.marker.addedAt ? 1 : -1))
          .map((b) => {
            const mark = b.id === fact.current ? "*" : " ";
            const failed = b.marker.failedAt ? `  FAILED ${b.marker.failedAt}: ${b.marker.failure ?? ""}` : "";
            const size = b.marker.bytes && b.marker.bytes > 0 ? `  ${fmtBytes(b.marker.bytes)}` : "";
            return `${mark} ${b.id.padEnd(14)} ${b.marker.addedAt}${size}  ${b.marker.source}${failed}`;
          });
        if (!fact.current) lines.unshift(`* ${IMAGE.padEnd(14)} the image's own comfyui-api`);
        ctx.log(lines.join("\n") || "no builds");
        ctx.emit({ comfyuiApi: { current: fact.current ?? IMAGE, history: fact.history, builds: fact.builds.map((b) => b.marker) } });
        return {
          status: "ok",
          note: `${fact.builds.length} build${fact.builds.length === 1 ? "" : "s"}, current ${fact.current ?? IMAGE}`,
        };
      });
    },
  });

  return [update, rollback, list];
}

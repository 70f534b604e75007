// The workflow tasks' bodies. Loaded only when one of them runs (index.ts imports this lazily),
// so that undici, the ComfyUI modules and the runner add nothing to every other `flow` start.
import { existsSync, readdirSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { extname, isAbsolute, join, relative, resolve } from "node:path";
import { shQuote, TaskError, type TaskContext } from "../../lib/index.ts";
import type { HostRecap, Reporter, RunEvent } from "../../lib/events.ts";
import { resolveHosts } from "../../lib/flowfile/load.ts";
import { selectHosts } from "../../lib/select.ts";
import { runTask } from "../../lib/runner.ts";
import { writeFileAtomic } from "../../lib/cache.ts";
import { parseObjectInfo, type ObjectInfo } from "../../lib/comfy/data-schemas.ts";
import { readWorkflow, pngTextChunks, isUiFormat, type Workflow } from "../../lib/comfy/workflow-read.ts";
import { resolveWorkflowNodes, type ResolveIndex, type WorkflowResolution } from "../../lib/comfy/node-resolve.ts";
import { modelDeps, type ModelDep } from "../../lib/comfy/model-deps.ts";
import { buildDepsReport, renderDepsText, DEPS_SCHEMA, type DepsReport } from "../../lib/comfy/deps-report.ts";
import { convertUiToApi } from "../../lib/comfy/convert.ts";
import { checkLock, lockWorkflow, serializeLock, LOCK_VERSION, type LockFacts, type LockFile } from "../../lib/comfy/lockfile.ts";
import { setOwn } from "../../lib/comfy/own-keys.ts";
import { comfyDataUrl, loadRefData, withObjectInfo, type RefData } from "./refdata.ts";
import { mapLimit, upstreamClient, upstreamUrls, UpstreamError } from "./upstream.ts";
import { LOCK_FILE, TEMPLATES_DIR, objectInfoTask, type ConvertOptions, type DepsOptions, type LockOptions, type ObjectInfoOptions } from "./index.ts";

const WORKFLOW_EXT = new Set([".json", ".png"]);

// ---------- shared helpers ----------

/** Workflow files to read: the given ones (relative to the working directory), else every JSON/PNG under workflow_templates/. */
export function workflowFiles(projectDir: string, given?: string[]): { abs: string; name: string }[] {
  const named = (abs: string) => {
    const rel = relative(projectDir, abs);
    return { abs, name: rel && !rel.startsWith("..") && !isAbsolute(rel) ? rel : abs };
  };
  if (given?.length) return given.map((f) => named(resolve(process.cwd(), f)));
  const root = join(projectDir, TEMPLATES_DIR);
  if (!existsSync(root)) throw new TaskError(`no ${TEMPLATES_DIR}/ folder in ${projectDir}: export workflows there, or name files with --file`);
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      if (e.name.startsWith(".")) continue;
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (WORKFLOW_EXT.has(extname(e.name).toLowerCase())) out.push(p);
    }
  };
  walk(root);
  return out.map(named);
}

async function readWorkflowFile(abs: string, name: string): Promise<{ wf: Workflow; json: unknown }> {
  let buf: Buffer;
  try {
    buf = await readFile(abs);
  } catch (e) {
    throw new TaskError(`${name}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const wf = readWorkflow(buf, name);
  // The JSON the lock hashes: the file's own JSON (every edit counts), or for a PNG the workflow it carries.
  const png = buf.subarray(0, 4).toString("latin1") === "\x89PNG";
  return { wf, json: png ? (wf.ui ?? wf.api) : JSON.parse(buf.toString("utf8").replace(/^\uFEFF/, "")) };
}

async function loadRef(ctx: TaskContext, offline: boolean): Promise<RefData> {
  let ref!: RefData;
  const baseUrl = comfyDataUrl(process.env, ctx.flow.settings.comfyDataUrl);
  await ctx.step("reference data", async () => {
    ref = await loadRefData({ baseUrl, offline });
    for (const w of ref.warnings) ctx.warn(w);
    return { status: "ok", note: `${baseUrl}${offline ? " (offline)" : ""}` };
  });
  return ref;
}

async function readObjectInfoFile(path: string): Promise<ObjectInfo> {
  const abs = resolve(process.cwd(), path);
  let text: string;
  try {
    text = await readFile(abs, "utf8");
  } catch (e) {
    throw new TaskError(`${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch (e) {
    throw new TaskError(`${path}: not JSON (${(e as Error).message}); expected ComfyUI's /object_info`);
  }
  return parseObjectInfo(j, path);
}

// ---------- workflow:object-info (host) ----------

export async function runObjectInfo(ctx: TaskContext, o: ObjectInfoOptions): Promise<void> {
    await ctx.step("GET /object_info", async () => {
      // Asked on the host itself: ComfyUI listens on loopback there, no tunnel or open port needed.
      const url = `${o.comfyUrl.replace(/\/+$/, "")}/object_info`;
      const r = await ctx.exec(`curl -fsS --max-time 60 ${shQuote(url)}`);
      if (r.code === 127) throw new TaskError("curl is not installed on the host");
      if (r.code !== 0) throw new TaskError(`curl ${url} exited ${r.code}: ${r.stderr.trim() || "no answer"} (is ComfyUI running?)`);
      let j: unknown;
      try {
        j = JSON.parse(r.stdout);
      } catch {
        throw new TaskError(`${url} did not answer JSON`);
      }
      const oi = parseObjectInfo(j, `${ctx.host.name} ${url}`);
      if (o.output) await writeFileAtomic(resolve(process.cwd(), o.output), JSON.stringify(oi, null, 1) + "\n");
      ctx.emit({ objectInfo: oi });
      return { status: "ok", note: `${Object.keys(oi).length} classes${o.output ? `, saved to ${o.output}` : ""}` };
    });
}

/**
 * /object_info of a named host, for a local task. The local task cannot reach hosts itself, so it
 * runs `workflow:object-info` on that one host through the ordinary runner (host selection,
 * inventory, known_hosts, redaction all apply) and takes the result from its recap.
 */
async function objectInfoFromHost(ctx: TaskContext, hostName: string, url: string): Promise<ObjectInfo> {
  const hosts = selectHosts(resolveHosts(ctx.flow, ctx.projectDir), { host: hostName });
  if (hosts.length !== 1) throw new TaskError(`--host ${hostName}: name exactly one host`);
  const forward: Reporter = {
    start() {},
    event(e: RunEvent) {
      if (e.type === "step-end") ctx.log(`${e.host}: ${e.step}: ${e.status}${e.note ? ` (${e.note})` : ""}`);
      else if (e.type === "log" && e.level !== "info") ctx.warn(`${e.host}: ${e.message}`);
    },
    finish() {},
  };
  const recaps: HostRecap[] = await runTask({
    flow: { config: ctx.flow, projectDir: ctx.projectDir, file: null, hosts },
    tasks: new Map([[objectInfoTask.name, objectInfoTask]]),
    task: objectInfoTask,
    options: { comfyUrl: url },
    rest: [],
    hosts,
    secrets: {},
    dryRun: false,
    concurrency: 1,
    lockWaitSeconds: 0,
    acceptNewHostKey: false,
    reporter: forward,
  });
  const r = recaps[0]!;
  if (r.outcome !== "ok" || !r.data.objectInfo) throw new TaskError(`cannot get /object_info from ${hostName}: ${r.error ?? r.outcome}`);
  return r.data.objectInfo as ObjectInfo;
}

// ---------- workflow:deps ----------

interface Analysed {
  name: string;
  json: unknown;
  wf: Workflow;
  nodes: WorkflowResolution;
  models: ReturnType<typeof modelDeps>;
}

function analyse(name: string, wf: Workflow, json: unknown, index: ResolveIndex, ref: RefData, userModels: Record<string, string>): Analysed {
  const nodes = resolveWorkflowNodes(wf, index);
  const models = modelDeps(wf, { modelList: ref.modelList, userModels });
  return { name, json, wf, nodes, models };
}

const addSourceHint = (names: string[]) =>
  `${names.length} model${names.length === 1 ? " has" : "s have"} no known source (${names.slice(0, 5).join(", ")}${names.length > 5 ? ", ..." : ""}). ` +
  `Add each to the flowfile's models map, e.g.\n  models: { ${JSON.stringify(names[0])}: "https://huggingface.co/<owner>/<repo>/resolve/main/<path>" }`;

export async function runDeps(ctx: TaskContext, o: DepsOptions): Promise<void> {
    const t0 = performance.now();
    const files = workflowFiles(ctx.projectDir, o.file);
    const ref = await loadRef(ctx, o.offline);
    const index = withObjectInfo(ref.index, o.objectInfo ? await readObjectInfoFile(o.objectInfo) : undefined);
    const tRef = performance.now();
    const reports: DepsReport[] = [];
    const errors: { file: string; error: string }[] = [];
    const noSource = new Set<string>();
    for (const f of files) {
      await ctx.step(f.name, async () => {
        try {
          const { wf, json } = await readWorkflowFile(f.abs, f.name);
          const a = analyse(f.name, wf, json, index, ref, ctx.flow.models);
          const report = buildDepsReport(wf, a.nodes, a.models);
          reports.push(report);
          if (!o.json) ctx.log(renderDepsText(report).trimEnd());
          const missing = report.models.filter((m) => !m.url);
          for (const m of missing) noSource.add(m.name);
          const req = report.packs.filter((p) => !p.optional).length;
          return {
            status: "ok",
            note: `${req} pack${req === 1 ? "" : "s"}, ${report.models.length} model${report.models.length === 1 ? "" : "s"}` +
              (missing.length ? `, ${missing.length} without source` : "") +
              (report.problems.length ? `, ${report.problems.length} unresolved node type${report.problems.length === 1 ? "" : "s"}` : ""),
          };
        } catch (e) {
          // One bad file must not hide the others: report it, carry on, fail the run at the end.
          const msg = (e as Error).message;
          errors.push({ file: f.name, error: msg });
          return { status: "failed", note: msg };
        }
      });
    }
    if (noSource.size && !o.json) ctx.log(addSourceHint([...noSource].sort()));
    const ms = (a: number, b: number) => Math.round(b - a);
    ctx.emit({
      deps: {
        schema: DEPS_SCHEMA,
        workflows: reports,
        errors,
        timings: { total: ms(t0, performance.now()), referenceData: ms(t0, tRef), workflows: ms(tRef, performance.now()) },
      },
    });
}

// ---------- workflow:convert ----------

export async function runConvert(ctx: TaskContext, o: ConvertOptions): Promise<void> {
    if (!!o.objectInfo === !!o.host) throw new TaskError("give exactly one of --object-info FILE or --host NAME");
    const abs = resolve(process.cwd(), o.file);
    let ui: unknown;
    await ctx.step(`read ${o.file}`, async () => {
      const buf = await readFile(abs).catch((e: NodeJS.ErrnoException) => {
        throw new TaskError(`${o.file}: cannot read (${e.code ?? e.message})`);
      });
      const wf = readWorkflow(buf, o.file); // refuses anything that is not a workflow, naming the file
      if (wf.format === "api") throw new TaskError(`${o.file} is already in API format`);
      ui = buf.subarray(0, 4).toString("latin1") === "\x89PNG" ? JSON.parse(pngTextChunks(buf, o.file).workflow!) : JSON.parse(buf.toString("utf8").replace(/^\uFEFF/, ""));
      if (!isUiFormat(ui)) throw new TaskError(`${o.file}: expected a UI-format workflow`);
      return { status: "ok", note: `${wf.nodes.length} nodes` };
    });
    const oi = o.objectInfo ? await readObjectInfoFile(o.objectInfo) : await objectInfoFromHost(ctx, o.host!, o.comfyUrl);
    const out = o.output ? resolve(process.cwd(), o.output) : abs.replace(/(\.json|\.png)?$/i, ".api.json");
    await ctx.step(`convert -> ${relative(process.cwd(), out) || out}`, async () => {
      const r = convertUiToApi(ui, oi, { file: o.file });
      for (const i of r.issues) ctx.warn(`node ${i.node}${i.classType ? ` (${i.classType})` : ""}: ${i.message}`);
      const text = JSON.stringify(r.prompt, null, 2) + "\n";
      ctx.emit({ convert: { output: out, nodes: Object.keys(r.prompt).length, issues: r.issues } });
      const note = `${Object.keys(r.prompt).length} nodes${r.issues.length ? `, ${r.issues.length} issue${r.issues.length === 1 ? "" : "s"}` : ""}`;
      const same = await readFile(out, "utf8").then((t) => t === text, () => false);
      if (same) return { status: "ok", note };
      if (ctx.dryRun) return { status: "changed", note: `would write: ${note}` };
      await writeFileAtomic(out, text);
      return { status: "changed", note };
    });
}

// ---------- workflow:lock ----------

async function readLock(path: string): Promise<LockFile | undefined> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch {
    return undefined;
  }
  const j = JSON.parse(text) as LockFile;
  if (j?.version !== LOCK_VERSION || typeof j.workflows !== "object") throw new TaskError(`${path}: not a version ${LOCK_VERSION} flow lock file; run flow run workflow:lock to rewrite it`);
  return j;
}

/** Ask GitHub, the registry and Hugging Face for what the workflows do not pin themselves. */
async function fetchLockFacts(ctx: TaskContext, all: Analysed[]): Promise<LockFacts> {
  const client = upstreamClient(upstreamUrls(process.env), { github: ctx.secrets.GITHUB_TOKEN, hf: ctx.secrets.HF_TOKEN });
  const facts: Required<LockFacts> = { commits: {}, models: {} };
  const latest = new Map<string, string>();
  const needLatest = new Set<string>();
  const needCommit = new Set<string>();
  const verify = new Map<string, string>();
  for (const a of all)
    for (const p of a.nodes.packs) {
      const { registryId, version, repo, commit } = p.pack;
      if (registryId && version) verify.set(`${registryId}@${version}`, registryId);
      else if (registryId) needLatest.add(registryId);
      else if (repo && !commit) needCommit.add(repo);
    }
  const hf = new Map<string, ModelDep>();
  for (const a of all) for (const m of a.models.models) if (m.url && m.source?.kind === "huggingface" && !hf.has(m.url)) hf.set(m.url, m);
  const fail = (what: string, e: unknown) => ctx.warn(`${what}: ${e instanceof UpstreamError ? e.message : (e as Error).message}`);
  await ctx.step("registry versions", async () => {
    await mapLimit([...needLatest], 8, async (id) => {
      try {
        latest.set(id, await client.registryLatest(id));
      } catch (e) {
        fail(`registry ${id}`, e);
      }
    });
    await mapLimit([...verify], 8, async ([key, id]) => {
      try {
        if (!(await client.registryHasVersion(id, key.slice(id.length + 1)))) ctx.warn(`registry pack ${key} is not published in the registry`);
      } catch (e) {
        fail(`registry ${id}`, e);
      }
    });
    return { status: "ok", note: `${latest.size}/${needLatest.size} latest, ${verify.size} checked` };
  });
  // Packs the registry could not pin are pinned to their default branch's head commit.
  for (const a of all) for (const p of a.nodes.packs) if (p.pack.registryId && !p.pack.version && !latest.has(p.pack.registryId) && p.pack.repo && !p.pack.commit) needCommit.add(p.pack.repo);
  await ctx.step("GitHub commits", async () => {
    await mapLimit([...needCommit], 8, async (repo) => {
      try {
        setOwn(facts.commits, repo, await client.githubCommit(repo));
      } catch (e) {
        fail(repo, e);
      }
    });
    return { status: "ok", note: `${Object.keys(facts.commits).length}/${needCommit.size}` };
  });
  await ctx.step("Hugging Face sizes and hashes", async () => {
    await mapLimit([...hf.values()], 8, async (m) => {
      try {
        setOwn(facts.models, m.url!, await client.hfFileFacts(m.source as Extract<ModelDep["source"], { kind: "huggingface" }>));
      } catch (e) {
        fail(m.name, e);
      }
    });
    return { status: "ok", note: `${Object.keys(facts.models).length}/${hf.size}` };
  });
  // Registry latest versions become the packs' versions, so lockWorkflow pins them as registry packs.
  for (const a of all)
    a.nodes = {
      ...a.nodes,
      packs: a.nodes.packs.map((p) => (p.pack.registryId && !p.pack.version && latest.has(p.pack.registryId) ? { ...p, pack: { ...p.pack, version: latest.get(p.pack.registryId) } } : p)),
    };
  return facts;
}

export async function runLock(ctx: TaskContext, o: LockOptions): Promise<void> {
    const lockPath = join(ctx.projectDir, LOCK_FILE);
    const files = workflowFiles(ctx.projectDir);
    if (o.check) {
      await ctx.step(`check ${LOCK_FILE}`, async () => {
        const lock = await readLock(lockPath);
        if (!lock) return { status: "failed", note: `no ${LOCK_FILE}: run flow run workflow:lock` };
        const current: Record<string, unknown> = {};
        const unreadable: string[] = [];
        for (const f of files) {
          try {
            setOwn(current, f.name, (await readWorkflowFile(f.abs, f.name)).json);
          } catch (e) {
            unreadable.push(f.name);
            ctx.warn((e as Error).message);
          }
        }
        const r = checkLock(lock, current);
        // An unreadable file cannot match its lock entry: count it as changed, not as removed.
        const removed = r.removed.filter((n) => !unreadable.includes(n));
        const changed = [...r.changed, ...unreadable];
        for (const n of changed) ctx.log(`changed since the lock: ${n}`);
        for (const n of r.added) ctx.log(`not in the lock: ${n}`);
        for (const n of removed) ctx.log(`in the lock but gone: ${n}`);
        ctx.emit({ lockCheck: { changed, added: r.added, removed } });
        const bad = [...changed, ...r.added, ...removed];
        if (!bad.length) return { status: "ok", note: `${files.length} workflows match` };
        return { status: "failed", note: `out of date: ${bad.join(", ")}; run flow run workflow:lock` };
      });
      return;
    }
    const ref = await loadRef(ctx, o.offline);
    const index = withObjectInfo(ref.index, o.objectInfo ? await readObjectInfoFile(o.objectInfo) : undefined);
    const analysed: Analysed[] = [];
    let bad = 0;
    await ctx.step(`read ${files.length} workflows`, async () => {
      for (const f of files) {
        try {
          const { wf, json } = await readWorkflowFile(f.abs, f.name);
          analysed.push(analyse(f.name, wf, json, index, ref, ctx.flow.models));
        } catch (e) {
          bad++;
          ctx.warn((e as Error).message);
        }
      }
      return bad ? { status: "failed", note: `${bad} unreadable (not locked)` } : { status: "ok", note: `${analysed.length} workflows` };
    });
    const facts = o.offline ? {} : await fetchLockFacts(ctx, analysed);
    if (o.offline) ctx.warn("offline: commits, registry versions, sizes and hashes are pinned only where workflows carry them");
    const lock: LockFile = { version: LOCK_VERSION, workflows: {} };
    for (const a of analysed) setOwn(lock.workflows, a.name, lockWorkflow(a.json, a.nodes, a.models.models, facts));
    const text = serializeLock(lock);
    await ctx.step(`write ${LOCK_FILE}`, async () => {
      const unresolved = Object.entries(lock.workflows).flatMap(([n, w]) => w.unresolved.map((u) => `${n}: ${u}`));
      for (const u of unresolved) ctx.log(`not pinned: ${u}`);
      ctx.emit({ lock: { path: lockPath, workflows: Object.keys(lock.workflows).length, unresolved } });
      const note = `${analysed.length} workflows${unresolved.length ? `, ${unresolved.length} items not pinned` : ""}`;
      if ((await readFile(lockPath, "utf8").catch(() => "")) === text) return { status: "ok", note };
      if (ctx.dryRun) return { status: "changed", note: `would write: ${note}` };
      await writeFileAtomic(lockPath, text);
      return { status: "changed", note };
    });
}

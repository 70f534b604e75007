// workflow:lock: every workflow's packs (commit or registry version) and models (url, size,
// sha256) pinned in flow.lock.json; --check says which workflows changed since. Facts from
// GitHub, the Comfy Registry and Hugging Face -> the lock (pure, lib/comfy/lockfile.ts) -> the file.
// Models the workflows give no URL are looked up by name in settings.modelRepos, and repositories
// nodes snapshot at run time are expanded into their files: the lock records what was found.
import { join } from "node:path";
import type { TaskContext } from "../../lib/index.ts";
import type { ModelDep } from "../../lib/comfy/model-deps.ts";
import { checkLock, lockWorkflow, serializeLock, LOCK_VERSION, type LockFacts, type LockFile } from "../../lib/comfy/lockfile.ts";
import { setOwn } from "../../lib/comfy/own-keys.ts";
import { mapLimit } from "../shared/map-limit.ts";
import { hfClient, hfHubUrl, verifyHfToken } from "../shared/hf.ts";
import { resolveEnv, sourcesByName } from "../models/resolve.ts";
import { readWorkflowFile, workflowFiles, type WorkflowFile } from "../shared/workflow-files.ts";
import { upstreamClient, upstreamUrls } from "./upstream.ts";
import { analyse, loadRef, resolveIndex, type Analysed } from "./analyse.ts";
import { writeIfChanged } from "./local-file.ts";
import { readLockFile } from "./lock-file.ts";
import { LOCK_FILE, type LockOptions } from "./index.ts";

type HfDep = ModelDep & { url: string; source: Extract<ModelDep["source"], { kind: "huggingface" }> };

/**
 * Ask GitHub, the registry and Hugging Face for what the workflows do not pin themselves; `listed`:
 * sizes and sha256s the repository listings already gave (not asked again).
 */
async function fetchLockFacts(
  ctx: TaskContext,
  all: Analysed[],
  listed: Record<string, { size: number; sha256?: string }> = {},
): Promise<LockFacts> {
  const allowHosts = ctx.flow.settings.allowHosts;
  const client = upstreamClient(upstreamUrls(process.env), { github: ctx.secrets.GITHUB_TOKEN, allowHosts });
  const facts: Required<LockFacts> = { commits: {}, models: {} };
  for (const [url, f] of Object.entries(listed)) setOwn(facts.models, url, f);
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
  const hf = new Map<string, HfDep>();
  for (const a of all)
    for (const m of a.models.models)
      if (m.url && m.source?.kind === "huggingface" && !hf.has(m.url) && !Object.hasOwn(listed, m.url)) hf.set(m.url, m as HfDep);
  const fail = (what: string, e: unknown) => ctx.warn(`${what}: ${(e as Error).message}`);
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
        const published = await client.registryHasVersion(id, key.slice(id.length + 1));
        if (!published) ctx.warn(`registry pack ${key} is not published in the registry`);
      } catch (e) {
        fail(`registry ${id}`, e);
      }
    });
    return { status: "ok", note: `${latest.size}/${needLatest.size} latest, ${verify.size} checked` };
  });
  // Packs the registry could not pin are pinned to their default branch's head commit.
  for (const a of all)
    for (const p of a.nodes.packs) {
      const { registryId, version, repo, commit } = p.pack;
      if (registryId && !version && !latest.has(registryId) && repo && !commit) needCommit.add(repo);
    }
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
  const hub = { hubUrl: hfHubUrl(process.env), token: ctx.secrets.HF_TOKEN, allowHosts };
  const token = hub.token;
  // a wrong token stops the run here, named, before any lookup carries it
  if (hf.size && token) {
    await ctx.step("HF_TOKEN", async () => ({ status: "ok", note: `accepted for ${await verifyHfToken({ ...hub, token })}` }));
  }
  await ctx.step("Hugging Face sizes and hashes", async () => {
    const hfc = hfClient(hub);
    await mapLimit([...hf.values()], 8, async (m) => {
      try {
        setOwn(facts.models, m.url, await hfc.fileFacts(m.source));
      } catch (e) {
        fail(m.name, e);
      }
    });
    return { status: "ok", note: `${Object.keys(facts.models).length}/${hf.size}` };
  });
  // Registry latest versions become the packs' versions, so lockWorkflow pins them as registry packs.
  for (const a of all) {
    const pinned = (p: (typeof a.nodes.packs)[number]) => {
      const v = p.pack.registryId && !p.pack.version ? latest.get(p.pack.registryId) : undefined;
      return v ? { ...p, pack: { ...p.pack, version: v } } : p;
    };
    a.nodes = { ...a.nodes, packs: a.nodes.packs.map(pinned) };
  }
  return facts;
}

/** --check: each workflow's JSON against its lock entry; an unreadable file counts as changed. */
async function checkLockStep(ctx: TaskContext, lockPath: string, files: WorkflowFile[]): Promise<void> {
  await ctx.step(`check ${LOCK_FILE}`, async () => {
    const lock = await readLockFile(lockPath);
    if (!lock) return { status: "failed", note: `no ${LOCK_FILE}: run flow run workflow:lock` };
    const current: Record<string, unknown> = {};
    const unreadable: string[] = [];
    for (const f of files) {
      try {
        setOwn(current, f.name, (await readWorkflowFile(f)).json);
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
}

export async function runLock(ctx: TaskContext, o: LockOptions): Promise<void> {
  const lockPath = join(ctx.projectDir, LOCK_FILE);
  const files = workflowFiles(ctx.projectDir);
  if (o.check) return checkLockStep(ctx, lockPath, files);
  const ref = await loadRef(ctx, o.offline);
  const index = await resolveIndex(ref, o.objectInfo);
  const analysed: Analysed[] = [];
  let bad = 0;
  await ctx.step(`read ${files.length} workflows`, async () => {
    for (const f of files) {
      try {
        const { wf, json } = await readWorkflowFile(f);
        analysed.push(analyse(f.name, wf, json, index, ref, ctx.flow.models));
      } catch (e) {
        bad++;
        ctx.warn((e as Error).message);
      }
    }
    return bad ? { status: "failed", note: `${bad} unreadable (not locked)` } : { status: "ok", note: `${analysed.length} workflows` };
  });
  // the old lock is what is being rewritten: names are looked up afresh, never taken from it
  const work = analysed.map((a) => ({ workflow: a.name, models: a.models.models, snapshots: a.models.snapshots }));
  let listed: Record<string, { size: number; sha256?: string }> = {};
  if (work.some((w) => w.snapshots.length || w.models.some((m) => !m.url))) {
    const env = resolveEnv(process.env, ctx.secrets, undefined, ctx.flow.settings.allowHosts);
    listed = (await sourcesByName(ctx, work, { offline: o.offline, env })).facts;
  }
  const facts = o.offline ? {} : await fetchLockFacts(ctx, analysed, listed);
  if (o.offline) ctx.warn("offline: commits, registry versions, sizes and hashes are pinned only where workflows carry them");
  const lock: LockFile = { version: LOCK_VERSION, workflows: {} };
  for (const a of analysed) {
    const locked = lockWorkflow(a.json, a.nodes, a.models.models, facts);
    // a repository a node snapshots, not expanded into files (offline, or not listed): named, not silently left out
    for (const s of a.models.snapshots)
      if (!locked.models.some((m) => m.folder === s.folder))
        locked.unresolved.push(`repository ${s.repo} (for ${s.folder}): its files not listed`);
    setOwn(lock.workflows, a.name, locked);
  }
  await ctx.step(`write ${LOCK_FILE}`, async () => {
    const unresolved = Object.entries(lock.workflows).flatMap(([n, w]) => w.unresolved.map((u) => `${n}: ${u}`));
    for (const u of unresolved) ctx.log(`not pinned: ${u}`);
    ctx.emit({ lock: { path: lockPath, workflows: Object.keys(lock.workflows).length, unresolved } });
    const note = `${analysed.length} workflows${unresolved.length ? `, ${unresolved.length} items not pinned` : ""}`;
    return writeIfChanged(lockPath, serializeLock(lock), ctx.dryRun, note);
  });
}

// Which node pack provides each node type of a workflow.
// Order of evidence (strongest first): the node's own properties.cnr_id (+ver), properties.aux_id,
// ComfyUI-Manager's extension-node-map exact class name (preemptions honoured), its
// nodename_pattern regexes. Several packs often claim one class (forks, bundles, copies); a tie
// is broken as a careful human would: the pack the workflow already uses, then the pack that
// claims most of the workflow's other classes, then GitHub stars. Runners-up are reported.
import type { CustomNodeList, ExtensionNodeMap, GithubStats, ObjectInfo } from "./data-schemas.ts";
import { getOwn } from "./own-keys.ts";
import { GROUP_NODE_RE, UUID_RE, type FlatNode, type NodeMode, type Workflow } from "./workflow-read.ts";

/** Types the frontend draws but ComfyUI never executes. */
export const FRONTEND_ONLY = new Set(["Note", "MarkdownNote", "Reroute", "PrimitiveNode"]);

/**
 * Frontend-only classes of custom packs: registered in the pack's JavaScript, so no Python
 * NODE_CLASS_MAPPINGS and no entry in extension-node-map. Facts from the packs' web/ sources.
 */
export const KNOWN_JS_ONLY_CLASSES: Record<string, string> = {
  SetNode: "https://github.com/kijai/ComfyUI-KJNodes",
  GetNode: "https://github.com/kijai/ComfyUI-KJNodes",
};

export const COMFYUI_REPO = "https://github.com/comfyanonymous/ComfyUI";

export type ResolveHow = "cnr_id" | "aux_id" | "extension-node-map" | "nodename_pattern" | "known-js-only" | "none";

export interface PackRef {
  /** Canonical GitHub URL when known. */
  repo?: string;
  /** Comfy Registry id (from cnr_id or custom-node-list's id). */
  registryId?: string;
  /** Version from the node's `ver`: a registry semver or a git commit. */
  version?: string;
  commit?: string;
}

export type NodeStatus = "core" | "frontend-only" | "subgraph" | "custom" | "comfyui-too-old" | "unknown";

export interface ClassResolution {
  classType: string;
  status: NodeStatus;
  /** Set when status is "custom". */
  pack?: PackRef;
  how: ResolveHow;
  /** Other packs that also claim the class, best first. */
  runnersUp: string[];
  /** Why this pack won a tie, or why none was found. */
  reason?: string;
  /** Number of nodes of this type in the workflow and where they sit. */
  instances: number;
  where: string[];
  /** True when every instance is muted or bypassed: the pack is optional. */
  optional: boolean;
}

export interface ResolveData {
  extensionNodeMap: ExtensionNodeMap;
  customNodeList?: CustomNodeList;
  githubStats?: GithubStats;
  /** Core classes; see coreClassesFrom(). */
  coreClasses: Set<string>;
  /** Classes of the host's live /object_info when known: enables the "ComfyUI too old" verdict. */
  hostClasses?: Set<string>;
}

/** Normalise a GitHub URL for comparison: lower case, no .git, no trailing slash. */
export function repoKey(url: string): string {
  return url
    .trim()
    .replace(/\.git$/i, "")
    .replace(/\/+$/, "")
    .replace(/^http:\/\//i, "https://")
    .toLowerCase();
}
const basename = (url: string) => repoKey(url).split("/").pop() ?? "";
/** Registry ids and repo names differ in case and - vs _; compare loosely. */
export const looseName = (s: string) => s.toLowerCase().replace(/[-_.\s]/g, "");

const AUX_RE = /^[A-Za-z0-9][A-Za-z0-9-]{0,38}\/[A-Za-z0-9._-]{1,100}$/;
const SEMVER_RE = /^v?\d+(\.\d+){0,3}([-+][\w.]+)?$/;
const COMMIT_RE = /^[0-9a-f]{7,40}$/i;

/** Core classes from ComfyUI-Manager's map (ComfyUI key) plus a live object_info's python_module. */
export function coreClassesFrom(map: ExtensionNodeMap, objectInfo?: ObjectInfo, extra: Iterable<string> = []): Set<string> {
  const s = new Set<string>(extra);
  for (const [url, entry] of Object.entries(map)) if (repoKey(url) === repoKey(COMFYUI_REPO)) for (const c of entry[0]) s.add(c);
  if (objectInfo) {
    for (const [name, def] of Object.entries(objectInfo)) {
      // Custom nodes report python_module "custom_nodes.<pack>"; everything else ships with ComfyUI.
      if (!String(def.python_module ?? "").startsWith("custom_nodes")) s.add(name);
    }
  }
  return s;
}

/** Indexes over the reference data; build once per data set, reuse for every workflow. */
export interface ResolveIndex {
  classToRepos: Map<string, string[]>;
  patterns: { repo: string; re: RegExp }[];
  preempt: Map<string, string[]>;
  registryToRepo: Map<string, string>;
  repoToRegistry: Map<string, string>;
  looseNameToRepos: Map<string, string[]>;
  stars: Map<string, number>;
  classCount: Map<string, number>;
  canonical: Map<string, string>;
  data: ResolveData;
}

export function buildIndex(data: ResolveData): ResolveIndex {
  const classToRepos = new Map<string, string[]>();
  const patterns: ResolveIndex["patterns"] = [];
  const preempt = new Map<string, string[]>();
  const registryToRepo = new Map<string, string>();
  const repoToRegistry = new Map<string, string>();
  const looseNameToRepos = new Map<string, string[]>();
  const stars = new Map<string, number>();
  const classCount = new Map<string, number>();
  const canonical = new Map<string, string>();
  const push = <K, V>(m: Map<K, V[]>, k: K, v: V) => {
    const a = m.get(k);
    if (!a) m.set(k, [v]);
    else if (!a.includes(v)) a.push(v);
  };
  const addRepo = (url: string) => {
    const k = repoKey(url);
    if (!canonical.has(k)) canonical.set(k, url.replace(/\.git$/i, "").replace(/\/+$/, ""));
    push(looseNameToRepos, looseName(basename(url)), k);
    return k;
  };
  for (const [url, entry] of Object.entries(data.extensionNodeMap)) {
    const k = addRepo(url);
    if (k === repoKey(COMFYUI_REPO)) continue;
    const [classes, meta] = entry;
    classCount.set(k, classes.length);
    for (const c of classes) push(classToRepos, c, k);
    if (meta?.nodename_pattern) {
      try {
        patterns.push({ repo: k, re: new RegExp(meta.nodename_pattern) });
      } catch {
        // An invalid upstream regex is ignored rather than breaking every resolution.
      }
    }
    for (const c of meta?.preemptions ?? []) push(preempt, c, k);
  }
  for (const e of data.customNodeList?.custom_nodes ?? []) {
    const k = addRepo(e.reference);
    for (const f of e.files) if (/^https:\/\/github\.com\/[^/]+\/[^/]+\/?$/i.test(f)) addRepo(f);
    if (e.id) {
      registryToRepo.set(e.id.toLowerCase(), k);
      repoToRegistry.set(k, e.id);
    }
    for (const c of e.preemptions ?? []) push(preempt, c, k);
  }
  for (const url of Object.values(KNOWN_JS_ONLY_CLASSES)) if (!canonical.has(repoKey(url))) canonical.set(repoKey(url), url);
  for (const [url, s] of Object.entries(data.githubStats ?? {})) stars.set(repoKey(url), s.stars ?? 0);
  return { classToRepos, patterns, preempt, registryToRepo, repoToRegistry, looseNameToRepos, stars, classCount, canonical, data };
}

function classify(type: string, nodes: FlatNode[], idx: ResolveIndex): NodeStatus | undefined {
  if (FRONTEND_ONLY.has(type)) return "frontend-only";
  if (UUID_RE.test(type) || GROUP_NODE_RE.test(type)) return "subgraph";
  const cnr = nodes.map((n) => n.properties.cnr_id).find((c) => typeof c === "string");
  const { coreClasses, hostClasses } = idx.data;
  if (cnr === "comfy-core") {
    // The node says it ships with ComfyUI: if the host lacks it, the host's ComfyUI predates it.
    if (hostClasses && !hostClasses.has(type)) return "comfyui-too-old";
    return "core";
  }
  if (hostClasses?.has(type) && coreClasses.has(type)) return "core";
  if (coreClasses.has(type)) return "core";
  return undefined;
}

/** A pack as a report shows it: the canonical URL when known. */
export function displayRepo(idx: ResolveIndex, key: string): string {
  return idx.canonical.get(key) ?? key;
}

export interface WorkflowResolution {
  classes: ClassResolution[];
  /** Chosen packs, by repo key (or registry:<id> when no repo is known). */
  packs: { key: string; pack: PackRef; classes: string[]; optional: boolean }[];
}

interface Pending {
  type: string;
  nodes: FlatNode[];
  candidates: string[];
  how: ResolveHow;
  /** Exact claimants, preferred over pattern matchers when nothing else decides. */
  exact?: string[];
}

/** Resolve every node type of a workflow. */
export function resolveWorkflowNodes(wf: Workflow, idx: ResolveIndex): WorkflowResolution {
  const byType = new Map<string, FlatNode[]>();
  for (const n of wf.nodes) {
    const a = byType.get(n.type);
    if (a) a.push(n);
    else byType.set(n.type, [n]);
  }
  const results = new Map<string, ClassResolution>();
  const chosen = new Set<string>(); // repo keys already chosen for this workflow
  const pending: Pending[] = [];
  const base = (type: string, nodes: FlatNode[]) => ({
    classType: type,
    instances: nodes.length,
    where: [...new Set(nodes.map((n) => n.where))],
    optional: nodes.every((n) => n.effectiveMode !== "active"),
    runnersUp: [] as string[],
  });
  // Packs the author's frontend recorded (extra.node_versions): as good as "already chosen".
  const hinted = new Set<string>();
  for (const name of Object.keys(wf.nodeVersions)) {
    const id = idx.registryToRepo.get(name.toLowerCase());
    if (id) hinted.add(id);
    for (const r of idx.looseNameToRepos.get(looseName(name)) ?? []) hinted.add(r);
  }

  // Pass 1: classification, and the unambiguous evidence carried by the nodes themselves.
  for (const [type, nodes] of byType) {
    const b = base(type, nodes);
    const st = classify(type, nodes, idx);
    if (st) {
      results.set(type, {
        ...b,
        status: st,
        how: "none",
        reason:
          st === "comfyui-too-old" ? `cnr_id comfy-core, but the host's ComfyUI has no ${type}: ComfyUI is too old, update it` : undefined,
      });
      continue;
    }
    const claimants = idx.classToRepos.get(type) ?? [];
    const cnrNode = nodes.find((n) => typeof n.properties.cnr_id === "string" && n.properties.cnr_id !== "");
    const auxNode = nodes.find((n) => typeof n.properties.aux_id === "string" && AUX_RE.test(n.properties.aux_id as string));
    const ver = (cnrNode ?? auxNode)?.properties.ver;
    const verS = typeof ver === "string" ? ver : undefined;
    const versionOf = (): Pick<PackRef, "version" | "commit"> =>
      verS && COMMIT_RE.test(verS) && !SEMVER_RE.test(verS) ? { commit: verS } : verS ? { version: verS } : {};
    if (cnrNode) {
      const cnr = cnrNode.properties.cnr_id as string;
      const aux = auxNode ? repoKey(`https://github.com/${auxNode.properties.aux_id}`) : undefined;
      // Registry id -> repo: ComfyUI-Manager's list, else the node's aux_id, else a repo named like the id
      // (preferring one that claims the class).
      let repo = idx.registryToRepo.get(cnr.toLowerCase()) ?? aux;
      if (!repo) {
        const named = idx.looseNameToRepos.get(looseName(cnr)) ?? [];
        const claiming = named.filter((r) => claimants.includes(r));
        repo = pickByStars(idx, claiming.length ? claiming : named)[0];
      }
      const pack: PackRef = { registryId: cnr, ...versionOf(), ...(repo ? { repo: displayRepo(idx, repo) } : {}) };
      if (repo) chosen.add(repo);
      results.set(type, {
        ...b,
        status: "custom",
        pack,
        how: "cnr_id",
        runnersUp: claimants.filter((r) => r !== repo).map((r) => displayRepo(idx, r)),
      });
      continue;
    }
    if (auxNode) {
      const repo = repoKey(`https://github.com/${auxNode.properties.aux_id}`);
      chosen.add(repo);
      const registryId = idx.repoToRegistry.get(repo);
      results.set(type, {
        ...b,
        status: "custom",
        pack: { repo: displayRepo(idx, repo), ...(registryId ? { registryId } : {}), ...versionOf() },
        how: "aux_id",
        runnersUp: claimants.filter((r) => r !== repo).map((r) => displayRepo(idx, r)),
      });
      continue;
    }
    const byPattern = [...new Set(idx.patterns.filter((p) => p.re.test(type)).map((p) => p.repo))];
    if (claimants.length) {
      // Preemption: a pack that declares it preempts the class wins over mere claimants.
      const pre = (idx.preempt.get(type) ?? []).filter((r) => idx.canonical.has(r));
      // Pattern matchers stay in the race: a class copied verbatim by one bundle but named after a
      // pack's own pattern ("Seed (rgthree)") belongs to that pack when the workflow already uses it.
      const cands = pre.length ? pre : [...new Set([...claimants, ...byPattern])];
      pending.push({ type, nodes, candidates: cands, how: "extension-node-map", exact: claimants });
      continue;
    }
    if (byPattern.length) {
      pending.push({ type, nodes, candidates: [...new Set(byPattern)], how: "nodename_pattern" });
      continue;
    }
    const js = getOwn(KNOWN_JS_ONLY_CLASSES, type); // a class named "constructor" is unknown, not Object's
    if (js) {
      pending.push({ type, nodes, candidates: [repoKey(js)], how: "known-js-only" });
      continue;
    }
    const declared = Object.keys(wf.nodeVersions).filter((k) => k !== "comfy-core");
    results.set(type, {
      ...b,
      status: "unknown",
      how: "none",
      reason:
        `no pack claims ${JSON.stringify(type)} in ComfyUI-Manager's extension-node-map (exact or pattern), ` +
        `and the node has no cnr_id/aux_id` +
        (declared.length ? `; the workflow's node_versions names: ${declared.join(", ")}` : ""),
    });
  }

  // Pass 2: ambiguous classes. Unique ones first, so that their packs count as "already chosen".
  // How many of the workflow's classes each pack claims exactly, less those another pack already
  // got: kept current as classes are assigned, so a tie-break never recounts the whole workflow.
  const claims = new Map<string, number>();
  for (const t of byType.keys()) for (const c of idx.classToRepos.get(t) ?? []) claims.set(c, (claims.get(c) ?? 0) + 1);
  const assign = (t: string, repo: string) => {
    for (const c of idx.classToRepos.get(t) ?? []) if (c !== repo) claims.set(c, claims.get(c)! - 1);
  };
  for (const [t, r] of results) if (r.pack?.repo) assign(t, repoKey(r.pack.repo));
  pending.sort((a, b) => a.candidates.length - b.candidates.length);
  for (const p of pending) {
    const b = base(p.type, p.nodes);
    let ordered: string[];
    let reason: string | undefined;
    if (p.candidates.length === 1) ordered = p.candidates;
    else {
      const r = tieBreak(p.candidates, idx, chosen, hinted, (c) => claims.get(c) ?? 0, p.exact);
      ordered = r.ordered;
      reason = r.reason;
    }
    const repo = ordered[0];
    chosen.add(repo);
    assign(p.type, repo);
    const registryId = idx.repoToRegistry.get(repo);
    results.set(p.type, {
      ...b,
      status: "custom",
      pack: { repo: displayRepo(idx, repo), ...(registryId ? { registryId } : {}) },
      how: p.how,
      runnersUp: ordered.slice(1).map((r) => displayRepo(idx, r)),
      reason,
    });
  }

  const classes = [...results.values()].sort((a, b) => a.classType.localeCompare(b.classType));
  const packs = new Map<string, WorkflowResolution["packs"][number]>();
  for (const c of classes) {
    if (c.status !== "custom" || !c.pack) continue;
    const key = c.pack.repo ? repoKey(c.pack.repo) : `registry:${c.pack.registryId}`;
    const p = packs.get(key);
    if (!p) packs.set(key, { key, pack: { ...c.pack }, classes: [c.classType], optional: c.optional });
    else {
      p.classes.push(c.classType);
      p.optional &&= c.optional;
      // Prefer a registry version over a commit, and keep the first one seen otherwise.
      p.pack.registryId ??= c.pack.registryId;
      p.pack.version ??= c.pack.version;
      p.pack.commit ??= c.pack.commit;
    }
  }
  return { classes, packs: [...packs.values()].sort((a, b) => a.key.localeCompare(b.key)) };
}

function pickByStars(idx: ResolveIndex, repos: string[]): string[] {
  return [...repos].sort((a, b) => (idx.stars.get(b) ?? 0) - (idx.stars.get(a) ?? 0) || a.localeCompare(b));
}

function tieBreak(
  candidates: string[],
  idx: ResolveIndex,
  chosen: Set<string>,
  hinted: Set<string>,
  /** classes of this workflow the pack claims that no other pack got */
  claimsOf: (repo: string) => number,
  exact: string[] = candidates,
): { ordered: string[]; reason: string } {
  const already = candidates.filter((c) => chosen.has(c));
  if (already.length === 1)
    return {
      ordered: [
        already[0],
        ...pickByStars(
          idx,
          candidates.filter((c) => c !== already[0]),
        ),
      ],
      reason: "pack already used by other nodes of this workflow",
    };
  const pool1 = already.length > 1 ? already : candidates;
  const hint = pool1.filter((c) => hinted.has(c));
  if (hint.length === 1)
    return {
      ordered: [
        hint[0],
        ...pickByStars(
          idx,
          candidates.filter((c) => c !== hint[0]),
        ),
      ],
      reason: "pack named in the workflow's node_versions",
    };
  const pool = hint.length > 1 ? hint : pool1;
  // How many of the workflow's classes each candidate claims. A bundle that copies hundreds of
  // classes from everywhere would win this count unfairly, so the share of the candidate's own
  // classes that the workflow uses breaks ties within equal counts.
  const score = new Map<string, number>();
  for (const c of pool) score.set(c, claimsOf(c));
  const best = Math.max(...score.values());
  const top = pool.filter((c) => score.get(c) === best);
  if (top.length === 1 && best > 1 && !isBundle(idx, top[0]))
    return {
      ordered: [
        top[0],
        ...pickByStars(
          idx,
          candidates.filter((c) => c !== top[0]),
        ),
      ],
      reason: `claims the most (${best}) of this workflow's classes`,
    };
  const exactInPool = pool.filter((c) => exact.includes(c));
  const ordered = [
    ...pickByStars(idx, exactInPool.length ? exactInPool : pool),
    ...pickByStars(
      idx,
      pool.filter((c) => exactInPool.length && !exact.includes(c)),
    ),
  ];
  const rest = pickByStars(
    idx,
    candidates.filter((c) => !ordered.includes(c)),
  );
  return { ordered: [...ordered, ...rest], reason: `most GitHub stars among ${candidates.length} packs claiming the class` };
}

/** Packs claiming a great many classes are usually bundles of copies; don't trust their overlap. */
function isBundle(idx: ResolveIndex, repo: string): boolean {
  return (idx.classCount.get(repo) ?? 0) > 400;
}

/** Map a node mode summary for reports. */
export function requiredness(modes: NodeMode[]): "required" | "optional" {
  return modes.some((m) => m === "active") ? "required" : "optional";
}

/**
 * A pack the user names bare (`ComfyUI-KJNodes`, `comfyui-kjnodes`): a registry id ComfyUI-Manager's
 * list knows, else the one repository whose name it is (case, '-', '_' and '.' aside). Several
 * repositories of that name are an answer too: the caller names them, it does not pick one.
 */
export function packByName(idx: ResolveIndex, name: string): { registryId: string; repo: string } | { repos: string[] } {
  // the index keys repositories lowercased; the answer spells them as the list does (the folder's name)
  const spelled = (k: string) => idx.canonical.get(k) ?? k;
  const viaRegistry = idx.registryToRepo.get(name.toLowerCase());
  if (viaRegistry) return { registryId: name.toLowerCase(), repo: spelled(viaRegistry) };
  return { repos: [...(idx.looseNameToRepos.get(looseName(name)) ?? [])].map(spelled).sort() };
}

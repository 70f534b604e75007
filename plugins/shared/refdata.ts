// ComfyUI-Manager's reference data (node map, node list, model list, GitHub stars), fetched from
// upstream through the on-disk cache, validated, and indexed for the resolvers. Shared: the
// workflow plugin resolves nodes with it, the models plugin fills in model sources from it.
// The validated, indexed form is itself cached on disk (v8 serialization, keyed by the raw files'
// hash): parsing + validating ~7 MB of JSON costs far more than the 41-template run it serves.
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { deserialize, serialize } from "node:v8";
import { defaultCacheDir, fetchCached, writeFileAtomic, DAY_MS } from "../../lib/cache.ts";
import {
  parseCustomNodeList,
  parseExtensionNodeMap,
  parseGithubStats,
  parseModelList,
  DataValidationError,
  type ModelList,
  type ObjectInfo,
} from "../../lib/comfy/data-schemas.ts";
import { buildIndex, coreClassesFrom, type ResolveIndex } from "../../lib/comfy/node-resolve.ts";

/** ComfyUI-Manager keeps these files at the root of its main branch. */
export const DEFAULT_COMFY_DATA_URL = "https://raw.githubusercontent.com/Comfy-Org/ComfyUI-Manager/main/";

export const DATA_FILES = ["extension-node-map.json", "custom-node-list.json", "model-list.json", "github-stats.json"] as const;

/** Env FLOW_COMFY_DATA_URL, then the flowfile's settings.comfyDataUrl, then upstream; always ending in "/". */
export function comfyDataUrl(env: NodeJS.ProcessEnv, setting?: string): string {
  const u = env.FLOW_COMFY_DATA_URL || setting || DEFAULT_COMFY_DATA_URL;
  return u.endsWith("/") ? u : `${u}/`;
}

export interface RefData {
  baseUrl: string;
  /** indexes for node resolution, without any object_info applied */
  index: ResolveIndex;
  modelList: ModelList;
  /** things to show the user (stale data, offline) */
  warnings: string[];
  /** where the time went, for the timing report */
  timings: Record<string, number>;
}

export interface LoadRefDataOptions {
  baseUrl: string;
  cacheDir?: string;
  offline?: boolean;
  maxAgeMs?: number;
}

// Bump when the indexed form's shape changes so that old snapshots are ignored.
const SNAPSHOT_VERSION = 1;

/** Fetch (or reuse) the four files and build the index. Errors name the bad file. */
export async function loadRefData(opts: LoadRefDataOptions): Promise<RefData> {
  const cacheDir = opts.cacheDir ?? defaultCacheDir();
  // One cache folder per base URL: a mirror and upstream never overwrite each other's copies.
  const slot = createHash("sha256").update(opts.baseUrl).digest("hex").slice(0, 12);
  const timings: Record<string, number> = {};
  let t = performance.now();
  const settled = await Promise.allSettled(
    DATA_FILES.map((f) =>
      fetchCached({
        url: new URL(f, opts.baseUrl).href,
        cacheDir,
        name: `comfy-data/${slot}/${f}`,
        offline: opts.offline,
        maxAgeMs: opts.maxAgeMs ?? DAY_MS,
      }),
    ),
  );
  // Report the first failure in file order, so the message does not depend on which request lost a race.
  const failed = settled.find((s) => s.status === "rejected");
  if (failed) throw failed.reason;
  const got = settled.map((s) => (s as PromiseFulfilledResult<Awaited<ReturnType<typeof fetchCached>>>).value);
  timings.fetch = performance.now() - t;
  const warnings = got.flatMap((g) => g.warnings);
  const key = createHash("sha256").update(`v${SNAPSHOT_VERSION}\0`);
  for (const g of got) key.update(g.body);
  const digest = key.digest("hex");
  const snapPath = join(cacheDir, "comfy-data", slot, "index.v8");

  t = performance.now();
  try {
    const snap = deserialize(await readFile(snapPath)) as { digest: string; index: ResolveIndex; modelList: ModelList };
    if (snap.digest === digest) {
      timings.snapshot = performance.now() - t;
      return { baseUrl: opts.baseUrl, index: snap.index, modelList: snap.modelList, warnings, timings };
    }
  } catch {
    // No snapshot or an unreadable one: rebuild below.
  }

  t = performance.now();
  const [enm, cnl, ml, gh] = got.map((g, i) => parseJson(g.body, DATA_FILES[i]!, g.path));
  const extensionNodeMap = parseExtensionNodeMap(enm, `${DATA_FILES[0]} (${got[0]!.path})`);
  const customNodeList = parseCustomNodeList(cnl, `${DATA_FILES[1]} (${got[1]!.path})`);
  const modelList = parseModelList(ml, `${DATA_FILES[2]} (${got[2]!.path})`);
  const githubStats = parseGithubStats(gh, `${DATA_FILES[3]} (${got[3]!.path})`);
  timings.parse = performance.now() - t;
  t = performance.now();
  const full = buildIndex({ extensionNodeMap, customNodeList, githubStats, coreClasses: coreClassesFrom(extensionNodeMap) });
  // Resolution reads only the core/host class sets from `data`; dropping the raw files (and the
  // model list's prose) shrinks the snapshot from ~10 MB to a fraction, and its load time with it.
  const index: ResolveIndex = { ...full, data: { extensionNodeMap: {}, coreClasses: full.data.coreClasses } };
  const slimModels: ModelList = {
    models: modelList.models.map(({ name, type, save_path, filename, url, size, base }) => ({
      name,
      type,
      save_path,
      filename,
      url,
      ...(size ? { size } : {}),
      ...(base ? { base } : {}),
    })),
  };
  timings.index = performance.now() - t;
  // A failed snapshot write only costs speed next time.
  await writeFileAtomic(snapPath, serialize({ digest, index, modelList: slimModels })).catch(() => undefined);
  return { baseUrl: opts.baseUrl, index, modelList: slimModels, warnings, timings };
}

function parseJson(body: Buffer, file: string, path: string): unknown {
  try {
    return JSON.parse(body.toString("utf8"));
  } catch (e) {
    throw new DataValidationError(`${file} (${path}): not JSON (${(e as Error).message})`);
  }
}

/**
 * The index with a live object_info applied: its non-custom classes join the core list, and its
 * class names become the host's classes (so `cnr_id: comfy-core` on a missing class reads as
 * "ComfyUI too old").
 */
export function withObjectInfo(index: ResolveIndex, objectInfo: ObjectInfo | undefined): ResolveIndex {
  if (!objectInfo) return index;
  const data = {
    ...index.data,
    // The map's own core classes are already in coreClasses, hence the empty map here.
    coreClasses: coreClassesFrom({}, objectInfo, index.data.coreClasses),
    hostClasses: new Set(Object.keys(objectInfo)),
  };
  // Only `data` changes; the maps built from the upstream files are shared.
  return { ...index, data };
}

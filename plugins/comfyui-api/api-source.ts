// comfyui-api's own src/types.ts, src/config.ts and package.json, which workflows are type-checked
// against (./typecheck.ts): of the version the host runs, fetched at run time from upstream (or a
// mirror) through flow's on-disk cache, so no copy of comfyui-api lives in flow. In this order:
//   1. a local checkout: env FLOW_COMFYUI_API_SRC, else the plugin's `source.dir` (the lab and CI
//      point it at ../shared/vendor/comfyui-api);
//   2. a base URL: env FLOW_COMFYUI_API_URL, else the plugin's `source.url`, else GitHub's raw files
//      at the version's tag; `{version}` in it is replaced. Files at a tag never change, so a copy
//      is kept 30 days; --offline uses the cached copy only.
// comfyui-api's own prompt for an LLM that writes an endpoint (workflow:generate --llm) is read
// from the same place, on demand only: api:workflows never needs it.
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { CacheError, DAY_MS, fetchCached } from "../../lib/cache.ts";
import { TaskError } from "../../lib/task.ts";
import type { ApiSources } from "./typecheck.ts";

export const DEFAULT_SOURCE_URL = "https://raw.githubusercontent.com/SaladTechnologies/comfyui-api/{version}/";
export const SOURCE_FILES = ["src/types.ts", "src/config.ts", "package.json"] as const;

export interface SourceSettings {
  /** a comfyui-api checkout (src/types.ts, src/config.ts, package.json) */
  dir?: string;
  /** base URL; "{version}" is replaced by the version */
  url?: string;
}

export interface LoadedSources extends ApiSources {
  /** the version the files say they are (their package.json) */
  version: string;
  /** where they came from, for messages: a folder or a URL */
  origin: string;
  warnings: string[];
}

export interface LoadSourceOptions {
  /** the comfyui-api version wanted (the host's) */
  version: string;
  settings?: SourceSettings;
  env?: NodeJS.ProcessEnv;
  offline?: boolean;
  cacheDir?: string;
  /** project folder: a relative `dir` is relative to it */
  projectDir?: string;
}

/** The base URL for a version: env, then settings, then upstream; always ending in "/". */
export function sourceUrl(version: string, setting?: string, env: NodeJS.ProcessEnv = process.env): string {
  const u = (env.FLOW_COMFYUI_API_URL || setting || DEFAULT_SOURCE_URL).replaceAll("{version}", encodeURIComponent(version));
  return u.endsWith("/") ? u : `${u}/`;
}

const loaded = new Map<string, Promise<LoadedSources>>();

/** comfyui-api's three files for `version` (memoized per process: every host of a run shares them). */
export function loadApiSources(o: LoadSourceOptions): Promise<LoadedSources> {
  const env = o.env ?? process.env;
  const dir = env.FLOW_COMFYUI_API_SRC || o.settings?.dir;
  const key = dir ? `dir:${resolve(o.projectDir ?? ".", dir)}` : `url:${sourceUrl(o.version, o.settings?.url, env)}:${o.offline ? 1 : 0}`;
  let p = loaded.get(key);
  if (!p) {
    p = dir ? fromDir(resolve(o.projectDir ?? ".", dir), o.version) : fromUrl(sourceUrl(o.version, o.settings?.url, env), o);
    loaded.set(key, p);
    p.catch(() => loaded.delete(key));
  }
  return p;
}

async function fromDir(dir: string, wanted: string): Promise<LoadedSources> {
  const texts: string[] = [];
  for (const f of SOURCE_FILES) {
    try {
      texts.push(await readFile(join(dir, f), "utf8"));
    } catch (e) {
      throw new TaskError(
        `comfyui-api source ${dir}: cannot read ${f} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); ` +
          `FLOW_COMFYUI_API_SRC / source.dir must be a comfyui-api checkout`,
      );
    }
  }
  return sources(texts, dir, wanted);
}

/** One file of comfyui-api at `base`, through the cache; `why` says what flow needs it for. */
async function fetchSourceFile(base: string, f: string, o: LoadSourceOptions, why: string): Promise<{ text: string; warnings: string[] }> {
  const slot = createHash("sha256").update(base).digest("hex").slice(0, 12);
  try {
    const r = await fetchCached({
      url: new URL(f, base).href,
      name: `comfyui-api/${slot}/${f}`,
      cacheDir: o.cacheDir,
      offline: o.offline,
      maxAgeMs: 30 * DAY_MS,
    });
    return { text: r.body.toString("utf8"), warnings: r.warnings };
  } catch (e) {
    if (e instanceof CacheError) {
      throw new TaskError(
        `comfyui-api ${o.version}'s ${f}, needed to ${why}: ${e.message} ` +
          `(set FLOW_COMFYUI_API_URL to a mirror, or FLOW_COMFYUI_API_SRC to a comfyui-api checkout)`,
      );
    }
    throw e;
  }
}

async function fromUrl(base: string, o: LoadSourceOptions): Promise<LoadedSources> {
  const texts: string[] = [];
  const warnings: string[] = [];
  for (const f of SOURCE_FILES) {
    const r = await fetchSourceFile(base, f, o, "type-check workflows");
    texts.push(r.text);
    warnings.push(...r.warnings);
  }
  const s = sources(texts, base, o.version);
  return { ...s, warnings: [...warnings, ...s.warnings] };
}

/** comfyui-api's prompt for an LLM that turns an API-format workflow into an endpoint; in its repository's root. */
export const ENDPOINT_PROMPT_FILE = "claude-endpoint-creation-prompt.md";

/** That prompt, from the same checkout or base URL as the sources (never a copy kept in flow). */
export async function loadEndpointPrompt(o: LoadSourceOptions): Promise<{ text: string; origin: string; warnings: string[] }> {
  const env = o.env ?? process.env;
  const dir = env.FLOW_COMFYUI_API_SRC || o.settings?.dir;
  if (dir) {
    const abs = resolve(o.projectDir ?? ".", dir);
    try {
      return { text: await readFile(join(abs, ENDPOINT_PROMPT_FILE), "utf8"), origin: abs, warnings: [] };
    } catch (e) {
      throw new TaskError(
        `comfyui-api source ${abs}: cannot read ${ENDPOINT_PROMPT_FILE} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); ` +
          `--llm sends comfyui-api's own prompt, so FLOW_COMFYUI_API_SRC / source.dir must be a comfyui-api checkout that has it`,
      );
    }
  }
  const base = sourceUrl(o.version, o.settings?.url, env);
  const r = await fetchSourceFile(base, ENDPOINT_PROMPT_FILE, o, "ask an LLM for an endpoint (--llm)");
  return { text: r.text, origin: base, warnings: r.warnings };
}

function sources([types, config, packageJson]: string[], origin: string, wanted: string): LoadedSources {
  let version = "";
  try {
    version = String((JSON.parse(packageJson!) as { version?: unknown }).version ?? "");
  } catch {
    throw new TaskError(`comfyui-api package.json from ${origin} is not JSON`);
  }
  if (!/\bexport\s+(interface|type)\s+Workflow\b/.test(types!)) {
    throw new TaskError(`${origin}: src/types.ts does not declare comfyui-api's Workflow type; is this comfyui-api's source?`);
  }
  const warnings =
    version && wanted && version !== wanted
      ? [`type-checking against comfyui-api ${version} from ${origin}, while the host runs ${wanted}`]
      : [];
  return { types: types!, config: config!, packageJson: packageJson!, version: version || wanted, origin, warnings };
}

/** Forget what was loaded (tests). */
export function resetApiSources(): void {
  loaded.clear();
}

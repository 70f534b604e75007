// The project's workflows (`workflows/` or the folder the flowfile names), read once per run: each
// file's bytes, sha256 and what its source says (lib/comfy/comfyui-api-workflow.ts), and the
// type-check against comfyui-api's own types (./typecheck.ts), shared by every host of the run.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { typescriptVersion } from "../../lib/lazy-typescript.ts";
import { defaultCacheDir } from "../../lib/cache.ts";
import { isAbsolute, join, relative, resolve } from "node:path";
import { TaskError } from "../../lib/task.ts";
import { endpointOf, isWorkflowFile, nameClashes, nameProblem, type RelPath } from "../../lib/comfy/comfyui-api-files.ts";
import { analyzeWorkflow, type WorkflowFacts } from "../../lib/comfy/comfyui-api-workflow.ts";
import { formatTypeProblem, typecheckWorkflows, type ApiSources } from "./typecheck.ts";

export const DEFAULT_WORKFLOWS_DIR = "workflows";

export interface LocalFile {
  rel: RelPath;
  data: Buffer;
  sha256: string;
}

export interface LocalWorkflows {
  /** the folder, absolute */
  dir: string;
  /** as messages show it */
  shown: string;
  files: LocalFile[];
  /** rel -> sha256 */
  shas: Map<RelPath, string>;
  /** every endpoint the folder should give: "/workflow/<dir>/<name>" */
  endpoints: string[];
  /** files elsewhere in the folder that are not workflows (not sent) */
  ignored: RelPath[];
}

/** The workflows folder: the task's option, else the plugin's, else `workflows/`, relative to the project. */
export function workflowsDirOf(projectDir: string, ...choices: (string | undefined)[]): string {
  const d = choices.find((c) => c) ?? DEFAULT_WORKFLOWS_DIR;
  return isAbsolute(d) ? d : resolve(projectDir, d);
}

/** Read the folder: every .ts / .js workflow under it (hidden names and node_modules skipped). */
export function readLocalWorkflows(projectDir: string, dir: string): LocalWorkflows {
  const rel0 = relative(projectDir, dir);
  const shown = rel0 && !rel0.startsWith("..") && !isAbsolute(rel0) ? `${rel0}/` : `${dir}/`;
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new TaskError(
      `no workflows folder ${shown} (in ${projectDir}): ` +
        `put comfyui-api workflows there (workflows/<dir>/<name>.ts), or name the folder with --dir`,
    );
  }
  const files: LocalFile[] = [];
  const ignored: RelPath[] = [];
  const walk = (abs: string, rel: string) => {
    for (const e of readdirSync(abs, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      if (e.name.startsWith(".") || e.name === "node_modules") continue;
      const r = rel ? `${rel}/${e.name}` : e.name;
      const p = join(abs, e.name);
      if (e.isDirectory()) walk(p, r);
      else if (e.isFile() && isWorkflowFile(r)) {
        const data = readFileSync(p);
        files.push({ rel: r, data, sha256: createHash("sha256").update(data).digest("hex") });
      } else ignored.push(r);
    }
  };
  walk(dir, "");
  return {
    dir,
    shown,
    files,
    ignored,
    shas: new Map(files.map((f) => [f.rel, f.sha256])),
    endpoints: files.map((f) => endpointOf(f.rel)).sort(),
  };
}

export interface LocalCheck {
  /** per file, the facts its source gives */
  facts: WorkflowFacts[];
  /** "<file>: <reason>" lines; empty when every file passed */
  problems: string[];
}

const checks = new Map<string, LocalCheck>();
// Bump when what the check finds changes, so that an old "passed" mark is not trusted.
const CHECK_VERSION = 1;

/**
 * Names, load rules and types of every workflow, against comfyui-api's sources. The same folder
 * against the same sources is checked once per process, however many hosts the run has, and a
 * folder that passed is remembered on disk (~/.cache/flow/comfyui-api-checks): compiling is the
 * slow part of a run that changes nothing.
 */
export function checkLocal(
  local: LocalWorkflows,
  api: ApiSources,
  cacheDir = defaultCacheDir(),
  typecheck = typecheckWorkflows,
): LocalCheck {
  const key = createHash("sha256")
    .update(`v${CHECK_VERSION}\0ts${typescriptVersion()}\0`)
    .update(api.types)
    .update("\0")
    .update(api.config)
    .update("\0")
    .update(api.packageJson)
    .update(JSON.stringify([...local.shas]))
    .digest("hex");
  const hit = checks.get(key);
  if (hit) return hit;
  const passedMark = join(cacheDir, "comfyui-api-checks", key.slice(0, 40));
  const passedBefore = existsSync(passedMark);
  const problems: string[] = [];
  for (const f of local.files) {
    const why = nameProblem(f.rel);
    if (why) problems.push(`${f.rel}: ${why}`);
  }
  for (const c of nameClashes(local.files.map((f) => f.rel))) problems.push(`${c.rel}: ${c.problem}`);
  const facts = local.files.map((f) => analyzeCached(f, cacheDir));
  for (const w of facts) for (const p of w.problems) problems.push(`${w.rel}: ${p}`);
  const sources = local.files.filter((f) => f.rel.endsWith(".ts"));
  if (!passedBefore) {
    for (const p of typecheck(
      sources.map((f) => ({ rel: f.rel, text: f.data.toString("utf8") })),
      api,
    ))
      problems.push(formatTypeProblem(p));
  }
  const result = { facts, problems: [...new Set(problems)] };
  checks.set(key, result);
  // only a pass is remembered: a failure is compiled again, to show its reasons
  if (!result.problems.length && !passedBefore) remember(passedMark);
  return result;
}

/** Write the mark (aside, then renamed); a cache that cannot be written only costs a compile next time. */
function remember(path: string): void {
  try {
    mkdirSync(join(path, ".."), { recursive: true });
    const tmp = `${path}.tmp-${process.pid}`;
    writeFileSync(tmp, `${new Date().toISOString()}\n`);
    renameSync(tmp, path);
  } catch {
    // read-only home, full disk: fine
  }
}

/** Forget the checks made in this process (tests). */
export function resetLocalChecks(): void {
  checks.clear();
}

const analysed = new Map<string, WorkflowFacts>();

/**
 * What a workflow's source says, remembered by its bytes (in the process and on disk): reading a
 * source needs the TypeScript parser, which a run that changes nothing should not load.
 */
export function analyzeCached(f: LocalFile, cacheDir = defaultCacheDir()): WorkflowFacts {
  const key = createHash("sha256")
    .update(`v${CHECK_VERSION}\0ts${typescriptVersion()}\0${f.rel}\0`)
    .update(f.data)
    .digest("hex")
    .slice(0, 40);
  const hit = analysed.get(key);
  if (hit) return hit;
  const file = join(cacheDir, "comfyui-api-facts", `${key}.json`);
  let facts: WorkflowFacts | undefined;
  try {
    facts = JSON.parse(readFileSync(file, "utf8")) as WorkflowFacts;
  } catch {
    facts = analyzeWorkflow(f.rel, f.data.toString("utf8"));
    try {
      mkdirSync(join(file, ".."), { recursive: true });
      writeFileSync(`${file}.tmp-${process.pid}`, JSON.stringify(facts));
      renameSync(`${file}.tmp-${process.pid}`, file);
    } catch {
      // a cache that cannot be written only costs a parse next time
    }
  }
  analysed.set(key, facts);
  return facts;
}

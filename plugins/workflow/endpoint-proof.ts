// The proof an endpoint file must pass before flow writes or accepts it (issue 14, item 4):
//   typecheck  it compiles against comfyui-api's own types.ts / config.ts (../comfyui-api/typecheck.ts);
//   roundTrip  loaded as comfyui-api loads it (./endpoint-eval.ts), generateWorkflow(RequestSchema.parse(
//              the exported values)) is the exported API prompt, input for input;
//   params     changing one parameter changes exactly the node inputs it names, nothing else.
// A file an LLM wrote has no parameter list: see judgeLlm for the rule it is held to instead.
// Every failure is a problem line (what, where); nothing in the file can make the proof throw.
//
// Only the generator's own files (params given) run in flow's process. Any other file is text flow did
// not write (an LLM's reply can be steered by what it reads): it runs in a child process (observeInChild)
// that holds none of flow's secrets and cannot read the project, and reports what the file did; the
// judging stays here.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { isDeepStrictEqual } from "node:util";
import { z } from "zod";
import type { ObjectInfo } from "../../lib/comfy/data-schemas.ts";
import type { EndpointParam } from "../../lib/comfy/endpoint-gen.ts";
import type { ApiPrompt } from "../../lib/comfy/workflow-read.ts";
import { comboOptions, CUSTOM_LOADER_INPUTS, folderListingsFromObjectInfo, mergeLoaderInputs } from "../../lib/comfy/custom-loaders.ts";
import {
  CORE_LOADER_INPUTS,
  FOLDER_ALIASES,
  INPUT_NAME_FOLDERS,
  MODEL_FOLDERS,
  canonicalFolder,
  hasModelExtension,
} from "../../lib/comfy/model-folders.ts";
import { getOwn } from "../../lib/comfy/own-keys.ts";
import { PACKAGE_ROOT } from "../../lib/package-root.ts";
import { formatTypeProblem, typecheckWorkflows, type ApiSources, type TypeProblem } from "../comfyui-api/typecheck.ts";
import {
  ALT_MODEL_FILE,
  MEDIA_URL,
  Runner,
  loadWorkflow,
  message,
  normalize,
  show,
  standInFromListing,
  transpileWorkflow,
  type ConfigStandIn,
  type LlmObservation,
  type Prompt,
  type StandInListing,
} from "./endpoint-eval.ts";

/** A parameter as the generator describes it. */
export type ProofParam = EndpointParam;

export interface ProofInput {
  /** path under workflows/, e.g. "qwen/qwen_base_txt2img.ts" */
  rel: string;
  /** the .ts text */
  source: string;
  /** the API prompt it was generated from */
  prompt: ApiPrompt;
  /** the generator's params; absent for an LLM-written file */
  params?: ProofParam[];
  /** for the config stand-in: sampler/scheduler lists, model folder files */
  objectInfo: ObjectInfo;
  /** comfyui-api's src/types.ts, src/config.ts, package.json */
  api: ApiSources;
  /** how long an LLM-written file may take to load and generate in the child process (CHILD_TIME_LIMIT_MS) */
  timeLimitMs?: number;
}

export interface ProofResult {
  ok: boolean;
  problems: string[];
  checks: { typecheck: boolean; roundTrip: boolean; params: boolean };
  /** what passed but is worth saying: values not varied, differences an LLM file is allowed */
  notes: string[];
}

/** How many differences one problem list shows before "... and N more". */
const MAX_DIFFS = 10;

export async function proveEndpoint(i: ProofInput): Promise<ProofResult> {
  return (await proveEndpoints([i]))[0]!;
}

/** Several files at once: one TypeScript program type-checks them all (most of the proof's time). */
export async function proveEndpoints(inputs: ProofInput[]): Promise<ProofResult[]> {
  const typeProblems = new Map<ProofInput, TypeProblem[]>();
  // one program per comfyui-api version; a repeated rel would collide inside a program
  const groups = new Map<ApiSources, ProofInput[]>();
  for (const i of inputs) {
    const g = groups.get(i.api) ?? [];
    if (g.some((o) => o.rel === i.rel)) typeProblems.set(i, typecheckWorkflows([{ rel: i.rel, text: i.source }], i.api));
    else groups.set(i.api, [...g, i]);
  }
  for (const [api, g] of groups) {
    let all: TypeProblem[];
    try {
      all = typecheckWorkflows(
        g.map((i) => ({ rel: i.rel, text: i.source })),
        api,
      );
    } catch (e) {
      all = g.map((i) => ({ rel: i.rel, message: `the type-check could not run: ${message(e)}` }));
    }
    for (const i of g)
      typeProblems.set(
        i,
        all.filter((p) => p.rel === i.rel),
      );
  }
  const out: ProofResult[] = [];
  for (const i of inputs) out.push(await proveLoaded(i, typeProblems.get(i) ?? []));
  return out;
}

async function proveLoaded(i: ProofInput, typeProblems: TypeProblem[]): Promise<ProofResult> {
  const r: ProofResult = {
    ok: false,
    problems: [],
    checks: { typecheck: !typeProblems.length, roundTrip: false, params: false },
    notes: [],
  };
  r.problems.push(...typeProblems.map((p) => `type-check: ${formatTypeProblem(p)}`));
  const exported = normalize(i.prompt);
  if (typeof exported === "string") {
    r.problems.push(`the export is not an API prompt: ${exported}`);
    return r;
  }
  const modelFiles = (i.params ?? []).flatMap((p) => {
    const v = p.kind === "model" && p.folder && p.targets[0] ? inputAt(exported, p.targets[0]) : undefined;
    return typeof v === "string" ? [{ folder: p.folder!, file: v }] : [];
  });
  const listing = standInListing(i.objectInfo, i.prompt, modelFiles);
  if (i.params) {
    const standIn = standInFromListing(listing);
    const loaded = loadWorkflow(i.rel, i.source, standIn);
    r.problems.push(...loaded.problems);
    if (loaded.workflow) await proveGenerated(new Runner(loaded.workflow), i.params, exported, standIn, r);
  } else {
    // transpiling runs nothing of the file: syntax errors are named here, the rest is the child's
    const t = transpileWorkflow(i.rel, i.source);
    const seen = "js" in t ? await observeInChild(i.rel, t.js, listing, i.timeLimitMs ?? CHILD_TIME_LIMIT_MS) : { load: t.problems };
    if (typeof seen === "string") r.problems.push(seen);
    else {
      r.problems.push(...seen.load);
      if (seen.run) judgeLlm(seen.run, exported, r);
    }
  }
  r.ok = !r.problems.length && r.checks.typecheck && r.checks.roundTrip && r.checks.params;
  return r;
}

// ---------- a file from the deterministic generator ----------

async function proveGenerated(run: Runner, params: ProofParam[], exported: Prompt, standIn: ConfigStandIn, r: ProofResult) {
  const before = r.problems.length;
  const shape = run.shape();
  // the exported values: each parameter's value where its first target is in the export
  const values: Record<string, unknown> = {};
  for (const p of params) {
    const t = p.targets[0];
    if (!t) {
      r.problems.push(`param "${p.name}" names no node input`);
      continue;
    }
    if (shape && !Object.hasOwn(shape, p.name)) r.problems.push(`param "${p.name}" is not a field of RequestSchema`);
    const v = inputAt(exported, t);
    if (v === undefined) r.problems.push(`param "${p.name}": its target ${t.node}.${t.input} is not in the export`);
    else if (isLink(v)) r.problems.push(`param "${p.name}": its target ${t.node}.${t.input} is a link in the export, not a value`);
    else values[p.name] = v;
  }
  const base = run.parse(values);
  if (!base.ok) {
    r.problems.push(`round trip: RequestSchema rejects the exported values: ${base.error}`);
    return;
  }
  const baseline = await run.generate(base.data);
  if (typeof baseline === "string") {
    r.problems.push(`round trip: ${baseline}`);
    return;
  }
  const diffs = diffPrompts(exported, baseline);
  r.problems.push(...capped(diffs.map((d) => `round trip: ${formatDiff(d)}`)));
  r.checks.roundTrip = r.problems.length === before;

  const beforeParams = r.problems.length;
  for (const p of params) {
    if (!Object.hasOwn(values, p.name)) continue; // already a problem above
    const current = (base.data as Record<string, unknown>)[p.name];
    const tried = candidates(p, current, standIn);
    const variant = run.vary(base.data, p.name, current, tried);
    if (!variant) {
      if (tried.length === 0) r.notes.push(`param "${p.name}": one valid value, not varied`);
      else r.problems.push(`param "${p.name}": RequestSchema accepts none of the other values tried (${tried.map(show).join(", ")})`);
      continue;
    }
    const changed = await run.generate(variant.data);
    if (typeof changed === "string") {
      r.problems.push(`param "${p.name}" = ${show(variant.value)}: ${changed}`);
      continue;
    }
    const got = [...new Set(diffPrompts(baseline, changed).map(diffKey))].sort();
    const want = [...new Set(p.targets.map((t) => `${t.node}.${t.input}`))].sort();
    if (isDeepStrictEqual(got, want)) continue;
    r.problems.push(
      got.length
        ? `param "${p.name}" (set to ${show(variant.value)}) changes ${got.join(", ")}; it names ${want.join(", ")}`
        : `param "${p.name}" (set to ${show(variant.value)}) changes nothing; it names ${want.join(", ")}`,
    );
  }
  r.checks.params = r.problems.length === beforeParams;
}

/** Other values to set a parameter to, by its kind; the schema decides which it accepts. */
function candidates(p: ProofParam, current: unknown, standIn: ConfigStandIn): unknown[] {
  const n = typeof current === "number" ? current : typeof p.default === "number" ? p.default : 0;
  const step = p.step && p.step > 0 ? p.step : undefined;
  let list: unknown[];
  switch (p.kind) {
    case "int":
    case "seed":
      list = [n + 1, n - 1, ...(step ? [n + step, n - step] : [])];
      break;
    case "float": {
      const mid = p.min !== undefined && p.max !== undefined ? (p.min + p.max) / 2 : undefined;
      list = [...(step ? [n + step, n - step] : []), n + 0.1, n - 0.1, n + 1, n - 1, ...(mid !== undefined ? [mid] : [])];
      break;
    }
    case "string":
      list = ["flow-proof", "flow-proof-2"];
      break;
    case "media":
      list = [MEDIA_URL, "https://example.com/y.png"];
      break;
    case "boolean":
      list = [!current];
      break;
    case "enum":
      list = p.options ?? [];
      break;
    case "sampler":
      list = [...(p.options ?? []), ...standIn.samplers];
      break;
    case "scheduler":
      list = [...(p.options ?? []), ...standIn.schedulers];
      break;
    case "model":
      // the stand-in folder always holds a second file besides the exported one
      list = [...(p.options ?? []), ...(p.folder ? standIn.folderFiles(p.folder) : [])];
      break;
    default:
      list = [];
  }
  const inRange = (v: unknown) => typeof v !== "number" || ((p.min === undefined || v >= p.min) && (p.max === undefined || v <= p.max));
  return [...new Set(list)].filter((v) => !isDeepStrictEqual(v, current) && inRange(v));
}

// ---------- a file an LLM wrote ----------

/**
 * An LLM-written file has no parameter list, so which inputs are parameters is not known up front.
 * The rule it is held to (the child process exercises the file: ./endpoint-eval-child.ts):
 *  - RequestSchema.parse accepts the required fields filled with placeholders (strings "flow-proof");
 *  - the prompt it generates has exactly the export's node ids and class_types;
 *  - every input that is a link (["id", slot]) on either side is identical: the graph is the export's;
 *  - a scalar input may differ from the export only where a request field reaches it (varying the
 *    field changes that input: it is a parameter whose default the LLM chose, or a placeholder);
 *    a differing scalar no field reaches is a fixed value the file got wrong. Instead of a bare
 *    "at most N scalars differ", each allowed difference is accounted for, and listed in `notes`.
 *  - params: every field with a value, when varied, changes at least one input.
 */
function judgeLlm(seen: NonNullable<LlmObservation["run"]>, exported: Prompt, r: ProofResult) {
  if (!seen.shape) {
    r.problems.push("RequestSchema is not a zod object (z.object({...}))");
    return;
  }
  for (const k of seen.unfilled) r.problems.push(`round trip: required field "${k}" accepts none of the placeholders tried`);
  if (seen.rejected !== undefined) {
    r.problems.push(`round trip: RequestSchema rejects the required fields filled with placeholders: ${seen.rejected}`);
    return;
  }
  const generated = reported(seen.generated);
  if (typeof generated === "string") {
    r.problems.push(`round trip: ${generated}`);
    return;
  }

  // what each field reaches: varied alone, which inputs moved
  const reach = new Map<string, string[]>();
  const beforeParams = r.problems.length;
  for (const f of seen.fields) {
    if (f.tried === undefined) {
      r.notes.push(`field "${f.key}": no other value accepted, not varied`);
      continue;
    }
    const changed = reported(f.changed);
    if (typeof changed === "string") {
      r.problems.push(`field "${f.key}" = ${f.tried}: ${changed}`);
      continue;
    }
    const keys = [...new Set(diffPrompts(generated, changed).map(diffKey))];
    reach.set(f.key, keys);
    if (!keys.length) r.problems.push(`field "${f.key}" (set to ${f.tried}) changes nothing in the prompt`);
  }
  r.checks.params = r.problems.length === beforeParams;

  const beforeRt = r.problems.length;
  const reachedBy = (key: string) => [...reach].filter(([, ks]) => ks.includes(key)).map(([k]) => k);
  const unexplained: string[] = [];
  for (const d of diffPrompts(exported, generated)) {
    const by = d.input !== undefined && !isLink(d.expected) && !isLink(d.got) ? reachedBy(diffKey(d)) : [];
    if (by.length) r.notes.push(`${formatDiff(d)}: set by ${by.map((b) => `"${b}"`).join(", ")}`);
    else
      unexplained.push(`round trip: ${formatDiff(d)}${d.input !== undefined && !isLink(d.expected) ? " (no request field sets it)" : ""}`);
  }
  r.problems.push(...capped(unexplained));
  r.checks.roundTrip = r.problems.length === beforeRt;
}

/** A prompt the child reported (normalized there, checked again here: it is the file's output), or its problem. */
function reported(v: unknown): Prompt | string {
  if (typeof v === "string") return v;
  const p = normalize(v);
  return typeof p === "string" ? `the child process reported no prompt: ${p}` : p;
}

// ---------- the config stand-in's data ----------

function ksamplerOptions(oi: ObjectInfo, input: string): string[] | undefined {
  const def = getOwn(oi, "KSampler");
  return comboOptions(getOwn(def?.input?.required, input) ?? getOwn(def?.input?.optional, input));
}

/** Model files the prompt names, by canonical folder: what the endpoint's defaults are. */
function promptModelFiles(prompt: ApiPrompt, extra: { folder: string; file: string }[]): Map<string, Set<string>> {
  const loaders = mergeLoaderInputs(CORE_LOADER_INPUTS, CUSTOM_LOADER_INPUTS);
  const out = new Map<string, Set<string>>();
  const add = (folder: string, file: unknown) => {
    if (typeof file !== "string" || !file) return;
    const f = canonicalFolder(folder) ?? folder;
    if (!out.has(f)) out.set(f, new Set());
    out.get(f)!.add(file);
  };
  for (const node of Object.values(prompt)) {
    const inputs = node?.inputs ?? {};
    const known = loaders.get(node?.class_type);
    for (const [name, value] of Object.entries(inputs)) {
      const l = known?.find((k) => k.input === name);
      if (l) add(l.folder, value);
      else if (typeof value === "string" && hasModelExtension(value) && getOwn(INPUT_NAME_FOLDERS, name))
        add(getOwn(INPUT_NAME_FOLDERS, name)!, value);
    }
  }
  for (const e of extra) add(e.folder, e.file);
  return out;
}

/**
 * What comfyui-api's config holds on a host with this object_info (./endpoint-eval.ts builds the
 * config from it): samplers / schedulers are the object_info's KSampler combos; each model folder
 * holds the object_info's listing plus the files the prompt names, plus ALT_MODEL_FILE. Every known
 * folder and alias is there, as on a host whose models folder ComfyUI created; a folder nothing names
 * holds only ALT_MODEL_FILE, so a default naming a file the host lacks fails to parse here as it would there.
 */
function standInListing(oi: ObjectInfo, prompt: ApiPrompt, modelFiles: { folder: string; file: string }[]): StandInListing {
  const named = promptModelFiles(prompt, modelFiles);
  const listed = folderListingsFromObjectInfo(oi);
  // without a KSampler definition the prompt's own choices are all that is known to be valid
  const fromPrompt = (input: string) =>
    [...new Set(Object.values(prompt).map((n) => n?.inputs?.[input]))].filter((v): v is string => typeof v === "string");
  const samplers = ksamplerOptions(oi, "sampler_name") ?? fromPrompt("sampler_name");
  const schedulers = ksamplerOptions(oi, "scheduler") ?? fromPrompt("scheduler");
  const folders: Record<string, string[]> = Object.create(null);
  for (const f of new Set([...Object.keys(MODEL_FOLDERS), ...Object.keys(FOLDER_ALIASES), ...named.keys(), ...Object.keys(listed)])) {
    const canon = canonicalFolder(f) ?? f;
    // comfyui-api sorts the folder's listing
    folders[f] = [...new Set([...(getOwn(listed, canon) ?? []), ...(named.get(canon) ?? []), ALT_MODEL_FILE])].sort();
  }
  return { samplers, schedulers, folders };
}

// ---------- the child process a file flow did not write runs in ----------

/** How long the child may take for the whole file: loading, then every parse and generateWorkflow call. */
export const CHILD_TIME_LIMIT_MS = 20_000;
/** V8's heap cap in the child (ArrayBuffers are outside it: the time limit bounds those). */
const CHILD_HEAP_MB = 256;
/** The most the child may answer (a large workflow's prompt once per field is a few MB). */
const MAX_ANSWER_BYTES = 64 * 1024 * 1024;

// what the child reports is the file's doing as much as the child's: read as data, never trusted as shaped
const Answer = z.object({
  load: z.array(z.string()),
  run: z
    .object({
      shape: z.boolean(),
      unfilled: z.array(z.string()),
      rejected: z.string().optional(),
      generated: z.unknown(),
      fields: z.array(z.object({ key: z.string(), tried: z.string().optional(), changed: z.unknown() })),
    })
    .optional(),
});

/**
 * Evaluate the transpiled file in a child process and return what it reports, or a problem. The child is
 * process.execPath with an empty environment (no OPENROUTER_API_KEY, HF_TOKEN, ...), an empty temporary
 * cwd removed afterwards, and Node's permission model: it may read flow's code and zod only (not the
 * project, not its .env), and write nothing, start no process, worker, addon or inspector (the child
 * also gives up process.kill: ./endpoint-eval-child.ts). Its heap is capped and a synchronous endless
 * loop is killed at the time limit. Node 20's permission model does not restrict the network: with no
 * environment and nothing of the user's readable, the file has nothing of theirs to send.
 * The answer is data the file could forge (it runs in the child's process); that buys it nothing a file
 * that behaves only while proven would not get: the proof catches mistakes, the child keeps secrets out of reach.
 */
async function observeInChild(rel: string, js: string, listing: StandInListing, limitMs: number): Promise<LlmObservation | string> {
  let child: ChildEntry;
  try {
    child = await childEntry();
  } catch (e) {
    return `load: ${rel}: the proof's child process cannot start: ${message(e)}`;
  }
  const cwd = mkdtempSync(join(tmpdir(), "flow-proof-"));
  try {
    // the bundle (from the sources) goes in the cwd: no other file of the child's to read
    const file = "code" in child ? join(cwd, "endpoint-eval-child.mjs") : child.file;
    if ("code" in child) writeFileSync(file, child.code);
    const read = "code" in child ? [file] : child.read;
    const args = [...permissionArgs(read), `--max-old-space-size=${CHILD_HEAP_MB}`, "--no-warnings", file];
    return await runChild(rel, args, cwd, JSON.stringify({ rel, js, listing }), limitMs);
  } finally {
    rmSync(cwd, { recursive: true, force: true });
  }
}

function runChild(rel: string, args: string[], cwd: string, job: string, limitMs: number): Promise<LlmObservation | string> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, args, { cwd, env: {}, stdio: ["pipe", "ignore", "pipe", "pipe"] });
    const answer: Buffer[] = [];
    let size = 0;
    let stderr = "";
    let stopped: string | undefined;
    const stop = (why: string) => {
      stopped ??= why;
      p.kill("SIGKILL");
    };
    const timer = setTimeout(() => stop(`did not finish loading and generating in ${limitMs / 1000} s: stopped`), limitMs);
    p.stdio[3]!.on("data", (c: Buffer) => {
      size += c.length;
      if (size > MAX_ANSWER_BYTES) stop(`the proof's child process answered more than ${MAX_ANSWER_BYTES / 2 ** 20} MB: stopped`);
      else answer.push(c);
    });
    p.stderr!.on("data", (c: Buffer) => (stderr = (stderr + c.toString("utf8")).slice(-4000)));
    p.stdin!.on("error", () => {}); // a child that dies before reading it all: its exit says why
    p.stdin!.end(job);
    p.on("error", (e) => {
      clearTimeout(timer);
      resolve(`load: ${rel}: the proof's child process cannot start: ${e.message}`);
    });
    p.on("close", (code, signal) => {
      clearTimeout(timer);
      if (stopped) return resolve(`load: ${rel} ${stopped}`);
      if (/heap out of memory/.test(stderr)) return resolve(`load: ${rel} ran out of memory (${CHILD_HEAP_MB} MB) loading and generating`);
      const text = Buffer.concat(answer).toString("utf8");
      const last = stderr.trim().split("\n").filter(Boolean).slice(-3).join(" / ");
      if (code !== 0 || !text)
        return resolve(
          `load: ${rel}: the file ended the proof's child process (${signal ?? `exit code ${code}`})${last ? `: ${last}` : ""}`,
        );
      let j: unknown;
      try {
        j = JSON.parse(text);
      } catch (e) {
        return resolve(`load: ${rel}: the proof's child process answered no JSON (${message(e)})`);
      }
      const a = Answer.safeParse(j);
      resolve(a.success ? a.data : `load: ${rel}: the proof's child process answered something else: ${a.error.issues[0]?.message}`);
    });
  });
}

type ChildEntry = { file: string; read: string[] } | { code: string };
let entry: Promise<ChildEntry> | undefined;

/**
 * The child's code and what it may read. Run from dist/: dist's own child entry, reading dist/ and
 * zod's folder (not flow's whole folder: a checkout may hold the project's .env). Run from the sources
 * (tsx, jiti): the entry bundled here by esbuild into one file, zod inlined, the one file the child may
 * read; loading .ts in the child would need tsx's module hooks (a worker thread) or esbuild (a child
 * process), and the child may start neither.
 */
function childEntry(): Promise<ChildEntry> {
  entry ??= (async (): Promise<ChildEntry> => {
    if (!import.meta.url.endsWith(".ts")) {
      const file = join(PACKAGE_ROOT, "dist/plugins/workflow/endpoint-eval-child.mjs");
      if (!existsSync(file)) throw new Error(`${file} is missing (npm run build makes it)`);
      const dist = join(PACKAGE_ROOT, "dist");
      const zod = dirname(createRequire(import.meta.url).resolve("zod/package.json"));
      // Node opens modules by their real path; a symlinked install (npm link) is read by both
      return { file, read: [...new Set([dist, realpathSync(dist), zod, realpathSync(zod)])] };
    }
    const { build } = await import("esbuild");
    const out = await build({
      entryPoints: [fileURLToPath(new URL("./endpoint-eval-child.ts", import.meta.url))],
      bundle: true,
      write: false,
      format: "esm",
      platform: "node",
      target: "node20",
      logLevel: "silent",
    });
    return { code: out.outputFiles[0]!.text };
  })().catch((e: unknown) => {
    entry = undefined; // a failure is retried by the next proof, not remembered
    throw e;
  });
  return entry;
}

/** The permission model's flags: reads only, of `read`; one flag per path (Node 20.20 does not split a list at commas). */
function permissionArgs(read: string[]): string[] {
  // later Nodes call the flag --permission; Node 20 has only the experimental one
  const flag = process.allowedNodeEnvironmentFlags.has("--permission") ? "--permission" : "--experimental-permission";
  return [flag, ...read.map((r) => `--allow-fs-read=${r}`)];
}

// ---------- prompts ----------

function inputAt(p: Prompt, t: { node: string; input: string }): unknown {
  const n = Object.hasOwn(p, t.node) ? p[t.node] : undefined;
  return n && Object.hasOwn(n.inputs, t.input) ? n.inputs[t.input] : undefined;
}

function isLink(v: unknown): boolean {
  return Array.isArray(v) && v.length === 2 && (typeof v[0] === "string" || typeof v[0] === "number") && typeof v[1] === "number";
}

interface Diff {
  node: string;
  classType: string;
  /** absent: the node itself (missing, extra, another class) */
  input?: string;
  expected?: unknown;
  got?: unknown;
}

/** Every node / input where `got` is not `expected`, in the export's node order. */
function diffPrompts(expected: Prompt, got: Prompt): Diff[] {
  const out: Diff[] = [];
  for (const [id, e] of Object.entries(expected)) {
    const g = Object.hasOwn(got, id) ? got[id] : undefined;
    if (!g || g.class_type !== e.class_type) {
      out.push({ node: id, classType: e.class_type, expected: e.class_type, got: g?.class_type });
      continue;
    }
    for (const k of new Set([...Object.keys(e.inputs), ...Object.keys(g.inputs)])) {
      const ev = Object.hasOwn(e.inputs, k) ? e.inputs[k] : undefined;
      const gv = Object.hasOwn(g.inputs, k) ? g.inputs[k] : undefined;
      if (!isDeepStrictEqual(ev, gv)) out.push({ node: id, classType: e.class_type, input: k, expected: ev, got: gv });
    }
  }
  for (const [id, g] of Object.entries(got))
    if (!Object.hasOwn(expected, id)) out.push({ node: id, classType: g.class_type, expected: undefined, got: g.class_type });
  return out;
}

const diffKey = (d: Diff) => (d.input === undefined ? d.node : `${d.node}.${d.input}`);

function formatDiff(d: Diff): string {
  if (d.input === undefined) {
    if (d.got === undefined) return `node ${d.node} (${d.classType}) is missing`;
    if (d.expected === undefined) return `node ${d.node} (${d.classType}) is not in the export`;
    return `node ${d.node} is ${show(d.got)}, the export's is ${show(d.expected)}`;
  }
  const at = `${d.node}.${d.input} (${d.classType})`;
  if (d.got === undefined) return `${at} is missing (the export has ${show(d.expected)})`;
  if (d.expected === undefined) return `${at} is not in the export (got ${show(d.got)})`;
  return `${at} is ${show(d.got)}, the export has ${show(d.expected)}`;
}

function capped(lines: string[]): string[] {
  return lines.length > MAX_DIFFS ? [...lines.slice(0, MAX_DIFFS), `... and ${lines.length - MAX_DIFFS} more differences`] : lines;
}

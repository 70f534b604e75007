// The proof an endpoint file must pass before flow writes or accepts it (issue 14, item 4):
//   typecheck  it compiles against comfyui-api's own types.ts / config.ts (../comfyui-api/typecheck.ts);
//   roundTrip  loaded as comfyui-api loads it (./endpoint-eval.ts), generateWorkflow(RequestSchema.parse(
//              the exported values)) is the exported API prompt, input for input;
//   params     changing one parameter changes exactly the node inputs it names, nothing else.
// A file an LLM wrote has no parameter list: see proveLlm for the rule it is held to instead.
// Every failure is a problem line (what, where); nothing in the file can make the proof throw.
import { isDeepStrictEqual } from "node:util";
import type { ObjectInfo } from "../../lib/comfy/data-schemas.ts";
import type { EndpointParam } from "../../lib/comfy/endpoint-gen.ts";
import type { ApiPrompt } from "../../lib/comfy/workflow-read.ts";
import { formatTypeProblem, typecheckWorkflows, type ApiSources, type TypeProblem } from "../comfyui-api/typecheck.ts";
import { configStandIn, loadWorkflow, type ConfigStandIn, type LoadedWorkflow, type ZodIssueLike } from "./endpoint-eval.ts";

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
/** A value every media input accepts in comfyui-api (it downloads URLs before ComfyUI sees them). */
const MEDIA_URL = "https://example.com/x.png";
const GENERATE_TIMEOUT_MS = 10_000;

type Node = { class_type: string; inputs: Record<string, unknown> };
type Prompt = Record<string, Node>;

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
  const standIn = configStandIn(i.objectInfo, i.prompt, modelFiles);
  const loaded = loadWorkflow(i.rel, i.source, standIn);
  r.problems.push(...loaded.problems);
  if (loaded.workflow) {
    const run = new Runner(loaded.workflow);
    if (i.params) await proveGenerated(run, i.params, exported, standIn, r);
    else await proveLlm(run, exported, r);
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
 * The rule it is held to:
 *  - RequestSchema.parse accepts the required fields filled with placeholders (strings "flow-proof");
 *  - the prompt it generates has exactly the export's node ids and class_types;
 *  - every input that is a link (["id", slot]) on either side is identical: the graph is the export's;
 *  - a scalar input may differ from the export only where a request field reaches it (varying the
 *    field changes that input: it is a parameter whose default the LLM chose, or a placeholder);
 *    a differing scalar no field reaches is a fixed value the file got wrong. Instead of a bare
 *    "at most N scalars differ", each allowed difference is accounted for, and listed in `notes`.
 *  - params: every field with a value, when varied, changes at least one input.
 */
async function proveLlm(run: Runner, exported: Prompt, r: ProofResult) {
  const shape = run.shape();
  if (!shape) {
    r.problems.push("RequestSchema is not a zod object (z.object({...}))");
    return;
  }
  const filled: Record<string, unknown> = {};
  for (const [k, field] of Object.entries(shape)) {
    if (fieldAccepts(field, undefined)) continue; // optional or defaulted
    const v = placeholders(field).find((c) => fieldAccepts(field, c));
    if (v === undefined) r.problems.push(`round trip: required field "${k}" accepts none of the placeholders tried`);
    else filled[k] = v;
  }
  const base = run.parse(filled);
  if (!base.ok) {
    r.problems.push(`round trip: RequestSchema rejects the required fields filled with placeholders: ${base.error}`);
    return;
  }
  const generated = await run.generate(base.data);
  if (typeof generated === "string") {
    r.problems.push(`round trip: ${generated}`);
    return;
  }
  const input = base.data as Record<string, unknown>;

  // what each field reaches: vary it alone and see which inputs move
  const reach = new Map<string, string[]>();
  const beforeParams = r.problems.length;
  for (const [k, field] of Object.entries(shape)) {
    if (input[k] === undefined) continue;
    const tried = alternatives(field, input[k]);
    const variant = run.vary(input, k, input[k], tried);
    if (!variant) {
      r.notes.push(`field "${k}": no other value accepted, not varied`);
      continue;
    }
    const changed = await run.generate(variant.data);
    if (typeof changed === "string") {
      r.problems.push(`field "${k}" = ${show(variant.value)}: ${changed}`);
      continue;
    }
    const keys = [...new Set(diffPrompts(generated, changed).map(diffKey))];
    reach.set(k, keys);
    if (!keys.length) r.problems.push(`field "${k}" (set to ${show(variant.value)}) changes nothing in the prompt`);
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

// ---------- zod 3 schemas, read without trusting them ----------

type ZodLike = { _def?: Record<string, unknown>; safeParse?: (v: unknown) => { success: boolean } };

function fieldAccepts(field: unknown, v: unknown): boolean {
  try {
    return (field as ZodLike).safeParse?.(v).success === true;
  } catch {
    return false;
  }
}

/** The schema under optional/default/nullable/effects wrappers. */
function unwrap(s: unknown): ZodLike | undefined {
  let cur = s as ZodLike | undefined;
  for (let depth = 0; depth < 20; depth++) {
    const d = cur?._def;
    if (!d) break;
    const t = d.typeName;
    const next = d.innerType ?? (t === "ZodEffects" ? d.schema : t === "ZodPipeline" ? d.in : t === "ZodBranded" ? d.type : undefined);
    if (!next) break;
    cur = next as ZodLike;
  }
  return cur;
}

function numberBounds(t: ZodLike): { min?: number; max?: number; int: boolean } {
  const checks = (t._def?.checks as { kind: string; value?: number }[] | undefined) ?? [];
  return {
    min: checks.find((c) => c.kind === "min")?.value,
    max: checks.find((c) => c.kind === "max")?.value,
    int: checks.some((c) => c.kind === "int"),
  };
}

function enumValues(t: ZodLike): unknown[] {
  const d = t._def ?? {};
  if (d.typeName === "ZodEnum" && Array.isArray(d.values)) return d.values;
  if (d.typeName === "ZodNativeEnum" && typeof d.values === "object" && d.values) return Object.values(d.values);
  if (d.typeName === "ZodLiteral") return [d.value];
  if (d.typeName === "ZodUnion" && Array.isArray(d.options)) return d.options.flatMap((o) => enumValues(unwrap(o) ?? {}));
  return [];
}

/** Values to fill a required field with when nothing says what it means. */
function placeholders(field: unknown): unknown[] {
  const t = unwrap(field) ?? {};
  const { min, max } = numberBounds(t);
  return ["flow-proof", MEDIA_URL, ...enumValues(t), 1, 0, min, max, true, false].filter((v) => v !== undefined);
}

/** Other values for a field currently `current`, by its schema's type. */
function alternatives(field: unknown, current: unknown): unknown[] {
  const t = unwrap(field) ?? {};
  const list: unknown[] = [...enumValues(t)];
  if (typeof current === "number") {
    const { min, max, int } = numberBounds(t);
    list.push(current + 1, current - 1, ...(int ? [] : [current + 0.1, current - 0.1]), min, max);
  } else if (typeof current === "boolean") list.push(!current);
  else if (typeof current === "string") list.push("flow-proof", "flow-proof-2", MEDIA_URL);
  return [...new Set(list)].filter((v) => v !== undefined && !isDeepStrictEqual(v, current));
}

// ---------- running the loaded file ----------

class Runner {
  constructor(private wf: LoadedWorkflow) {}

  shape(): Record<string, unknown> | undefined {
    try {
      const s = (this.wf.RequestSchema as { shape?: unknown }).shape;
      return typeof s === "object" && s !== null ? (s as Record<string, unknown>) : undefined;
    } catch {
      return undefined;
    }
  }

  parse(v: Record<string, unknown>): { ok: true; data: unknown } | { ok: false; error: string } {
    try {
      const r = this.wf.RequestSchema.safeParse(v);
      if (r.success) return { ok: true, data: r.data };
      return { ok: false, error: issues(r.error?.issues ?? []) };
    } catch (e) {
      return { ok: false, error: `RequestSchema.parse throws: ${message(e)}` };
    }
  }

  /**
   * The first candidate the schema accepts for `key` and that parses to another value; undefined if
   * none. `values` is the parsed base input: every other field keeps its value (a random seed default
   * drawn again would change the seed too).
   */
  vary(values: unknown, key: string, current: unknown, tried: unknown[]): { value: unknown; data: unknown } | undefined {
    for (const c of tried) {
      const r = this.parse({ ...(values as Record<string, unknown>), [key]: c });
      if (r.ok && !isDeepStrictEqual((r.data as Record<string, unknown>)[key], current)) return { value: c, data: r.data };
    }
    return undefined;
  }

  /** generateWorkflow's prompt as comfyui-api sends it to ComfyUI (JSON), or a problem. */
  async generate(input: unknown): Promise<Prompt | string> {
    let out: unknown;
    let timer: NodeJS.Timeout | undefined;
    try {
      // a promise that never settles must not hang the proof (a loop that never returns cannot be stopped in-process)
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`did not return within ${GENERATE_TIMEOUT_MS / 1000} s`)), GENERATE_TIMEOUT_MS);
      });
      out = await Promise.race([Promise.resolve().then(() => this.wf.generateWorkflow(input)), late]);
    } catch (e) {
      return `generateWorkflow throws: ${message(e)}`;
    } finally {
      clearTimeout(timer);
    }
    const n = normalize(out);
    return typeof n === "string" ? `generateWorkflow's result is not a ComfyUI prompt: ${n}` : n;
  }
}

function issues(list: ZodIssueLike[]): string {
  const shown = list.slice(0, 5).map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`);
  return shown.join("; ") + (list.length > 5 ? `; and ${list.length - 5} more` : "");
}

// ---------- prompts ----------

/** A prompt as JSON carries it (undefined inputs dropped), `_meta` left out; or why it is not one. */
function normalize(p: unknown): Prompt | string {
  let j: unknown;
  try {
    j = JSON.parse(JSON.stringify(p) ?? "null");
  } catch (e) {
    return `not JSON (${message(e)})`;
  }
  if (typeof j !== "object" || j === null || Array.isArray(j)) return `${show(j)} is not an object of nodes`;
  const out: Prompt = Object.create(null);
  for (const [id, n] of Object.entries(j)) {
    const node = n as Partial<Node> | null;
    if (typeof node !== "object" || node === null || typeof node.class_type !== "string") return `node ${id} has no class_type`;
    if (typeof node.inputs !== "object" || node.inputs === null || Array.isArray(node.inputs)) return `node ${id} has no inputs object`;
    out[id] = { class_type: node.class_type, inputs: node.inputs };
  }
  return out;
}

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

function show(v: unknown): string {
  const s = v === undefined ? "undefined" : JSON.stringify(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

// Which inputs of an API prompt become request fields of a comfyui-api endpoint, under which names.
// Pure. Node ids, class names, input names and titles come from the workflow: own-key lookups only,
// and every name that reaches generated code is a slug or a checked identifier.
//
// What becomes a parameter (everything else stays fixed as exported), input by input:
//   media   an input comfyui-api preprocesses (a URL or base64 string, required): `image` of any node
//           without a string filename_prefix, `video` / `file` of its video loaders, `audio` of LoadAudio
//   model   a loader's model file (core, pack and object_info-inferred loader tables) -> config.models.<folder>
//   float   LoRA strengths (strength* of a node that loads a LoRA), cfg, denoise
//   seed    seed / noise_seed, or an INT with control_after_generate
//   int     steps; width / height / batch_size of an Empty* latent node
//   sampler / scheduler  sampler_name / scheduler offering KSampler's very list (else an enum of its own)
//   text    a multiline STRING that is a prompt: it reaches a `positive` / `negative` input downstream,
//           is named like a prompt, or its node outputs CONDITIONING
//   Primitive* nodes (PrimitiveInt, ...): their `value`, classified by the first input they feed.
//
// Names:
// - prompt texts: `prompt` / `negative_prompt`, by the role the input's name says (positive_prompt,
//   negative_prompt), else by the input, `positive` or `negative`, they reach downstream (positive
//   wins when both), else `prompt` for an input named like one. Never by title: titles lie.
// - a value node (a Primitive*, a media or model loader, a text that is no prompt) with one parameter:
//   the title the user gave it (not its class or display name), unless another such node has it too;
// - else the generic name: the input's (steps, unet_name), or `image`, `lora_strength_model`, ...
// - equal names: the first node in id order (numeric by ":"-separated segment) keeps it, the next
//   ones get `_2`, `_3`, ...
// Overrides come last: hide, then rename (renaming onto another parameter of the same kind merges
// them: one field sets both inputs), then add.
import type { ObjectInfo, ObjectInfoNode } from "./data-schemas.ts";
import {
  comboOptions,
  CUSTOM_LOADER_INPUTS,
  folderListingsFromObjectInfo,
  inferLoaderInputs,
  mergeLoaderInputs,
} from "./custom-loaders.ts";
import { CORE_LOADER_INPUTS, canonicalFolder, type LoaderInput } from "./model-folders.ts";
import { getOwn } from "./own-keys.ts";
import type { ApiPrompt } from "./workflow-read.ts";

export type ParamKind = "string" | "int" | "float" | "boolean" | "enum" | "sampler" | "scheduler" | "model" | "media" | "seed";

export interface EndpointParam {
  /** the request field */
  name: string;
  /** node inputs it sets */
  targets: { node: string; input: string }[];
  kind: ParamKind;
  /** the exported value (absent for required media); for a seed the exported seed, though the schema's default is random */
  default?: unknown;
  required: boolean;
  /** kind "model": config.models.<folder> */
  folder?: string;
  /** kind "enum" */
  options?: string[];
  min?: number;
  max?: number;
  /** from object_info; recorded, not enforced (ComfyUI rounds, and exported values need not be multiples) */
  step?: number;
  description: string;
}

export interface ParamOverrides {
  /** generated name -> new name */
  rename?: Record<string, string>;
  /** generated names kept fixed as exported */
  hide?: string[];
  /** a node input made a parameter */
  add?: { name: string; node: string; input: string; description?: string }[];
}

export interface DetectInput {
  prompt: ApiPrompt;
  objectInfo: ObjectInfo;
  /** node id -> title the user gave; absent: the prompt's _meta.title */
  titles?: Record<string, string>;
  overrides?: ParamOverrides;
}

type Role = "positive" | "negative";
type Spec = [unknown, Record<string, unknown>];

/** A parameter before naming. */
interface Cand {
  node: string;
  input: string;
  kind: ParamKind;
  default?: unknown;
  folder?: string;
  options?: string[];
  min?: number;
  max?: number;
  step?: number;
  base: string;
  generic: string;
  /** prompt texts: named by role, never by title */
  role?: Role | "text";
}

const PRIMITIVES = new Set(["PrimitiveInt", "PrimitiveFloat", "PrimitiveString", "PrimitiveStringMultiline", "PrimitiveBoolean"]);
// comfyui-api's preprocessors (src/comfy-node-preprocessors.ts): these inputs get a URL or base64 downloaded to a file
const VIDEO_LOADERS = new Set(["LoadVideo", "VHS_LoadVideo", "VHS_LoadVideoPath", "VHS_LoadVideoFFmpegPath", "VHS_LoadVideoFFmpeg"]);
const AUDIO_LOADERS = new Set(["LoadAudio"]);
/** A request field named like these would read Object.prototype when the request omits it. */
const RESERVED = new Set(Object.getOwnPropertyNames(Object.prototype));
const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function isLink(v: unknown): v is [string | number, number] {
  return Array.isArray(v) && v.length === 2 && (typeof v[0] === "string" || typeof v[0] === "number") && Number.isInteger(v[1]);
}

/** Node ids in order: ":"-separated segments compared as numbers when both are digits. */
export function compareNodeIds(a: string, b: string): number {
  const as = a.split(":");
  const bs = b.split(":");
  for (let i = 0; i < Math.min(as.length, bs.length); i++) {
    const x = as[i]!;
    const y = bs[i]!;
    if (x === y) continue;
    const nx = /^\d+$/.test(x);
    const ny = /^\d+$/.test(y);
    if (nx && ny) {
      const tx = x.replace(/^0+(?=.)/, "");
      const ty = y.replace(/^0+(?=.)/, "");
      if (tx.length !== ty.length) return tx.length - ty.length;
      if (tx !== ty) return tx < ty ? -1 : 1;
    } else if (nx !== ny) return nx ? -1 : 1;
    return x < y ? -1 : 1;
  }
  return as.length - bs.length;
}

/** snake_case of a title or input name; undefined when nothing is left. */
export function slug(s: string): string | undefined {
  const x = s
    .normalize("NFKD")
    .replace(/[\u0300-\u036f]/g, "")
    .replace(/([a-z0-9])([A-Z])/g, "$1_$2")
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "_")
    .replace(/^_+|_+$/g, "")
    .slice(0, 60)
    .replace(/_+$/, "");
  if (!x) return undefined;
  const y = /^[0-9]/.test(x) ? `n_${x}` : x;
  return RESERVED.has(y) ? `${y}_value` : y;
}

/** A name the user chose (rename / add): an identifier that does not shadow Object.prototype. */
function checkName(name: unknown, what: string): string {
  if (typeof name !== "string" || !IDENT.test(name) || name.length > 100 || RESERVED.has(name))
    throw new Error(`${what}: ${JSON.stringify(name)} is not a usable parameter name (letters, digits and _, not starting with a digit)`);
  return name;
}

function specOf(def: ObjectInfoNode | undefined, input: string): Spec | undefined {
  const s = getOwn(def?.input?.required, input) ?? getOwn(def?.input?.optional, input);
  if (!Array.isArray(s)) return undefined;
  const opts = s[1];
  return [s[0], opts && typeof opts === "object" && !Array.isArray(opts) ? (opts as Record<string, unknown>) : {}];
}

const sameSet = (a: readonly string[], b: readonly string[]) => a.length === b.length && new Set([...a, ...b]).size === a.length;
const num = (v: unknown) => (typeof v === "number" && Number.isFinite(v) ? v : undefined);

/** min / max / step from a spec; bounds past 2^53 (ComfyUI's "unbounded") and bounds the default breaks are left out. */
function bounds(spec: Spec | undefined, value: number): Pick<Cand, "min" | "max" | "step"> {
  const o = spec?.[1] ?? {};
  const out: Pick<Cand, "min" | "max" | "step"> = {};
  const min = num(o.min);
  const max = num(o.max);
  const step = num(o.step);
  if (min !== undefined && Math.abs(min) <= Number.MAX_SAFE_INTEGER && min <= value) out.min = min;
  if (max !== undefined && Math.abs(max) <= Number.MAX_SAFE_INTEGER && max >= value) out.max = max;
  if (step !== undefined && step > 0) out.step = step;
  return out;
}

class Context {
  readonly ids: string[];
  readonly loaders: Map<string, LoaderInput[]>;
  readonly samplers?: string[];
  readonly schedulers?: string[];
  /** source node id -> the inputs that read it, in node order */
  readonly consumers = new Map<string, { node: string; input: string }[]>();
  private roles = new Map<string, Role | undefined>();

  constructor(
    readonly prompt: ApiPrompt,
    readonly objectInfo: ObjectInfo,
    private readonly titles: Record<string, string> | undefined,
  ) {
    this.ids = Object.keys(prompt).sort(compareNodeIds);
    const inferred = inferLoaderInputs(objectInfo, folderListingsFromObjectInfo(objectInfo));
    this.loaders = mergeLoaderInputs(CORE_LOADER_INPUTS, CUSTOM_LOADER_INPUTS, inferred);
    const ks = getOwn(objectInfo, "KSampler");
    this.samplers = comboOptions(specOf(ks, "sampler_name"));
    this.schedulers = comboOptions(specOf(ks, "scheduler"));
    for (const id of this.ids) {
      for (const [input, v] of Object.entries(this.inputs(id))) {
        if (!isLink(v)) continue;
        const src = String(v[0]);
        const list = this.consumers.get(src) ?? [];
        list.push({ node: id, input });
        this.consumers.set(src, list);
      }
    }
  }

  node(id: string) {
    return getOwn(this.prompt, id);
  }
  inputs(id: string): Record<string, unknown> {
    const i = this.node(id)?.inputs;
    return i && typeof i === "object" ? i : {};
  }
  cls(id: string): string {
    return String(this.node(id)?.class_type ?? "");
  }
  def(id: string): ObjectInfoNode | undefined {
    return getOwn(this.objectInfo, this.cls(id));
  }

  /** The title the user gave the node: not its class, not its display name. */
  title(id: string): string | undefined {
    const t = this.titles ? getOwn(this.titles, id) : this.node(id)?._meta?.title;
    if (typeof t !== "string" || !t.trim()) return undefined;
    const def = this.def(id);
    return t === this.cls(id) || t === def?.display_name ? undefined : t.trim();
  }

  /** Does the node's output reach a `positive` input, or (only) a `negative` one? Followed downstream. */
  role(start: string): Role | undefined {
    if (this.roles.has(start)) return this.roles.get(start);
    let found: Role | undefined;
    const seen = new Set([start]);
    const queue = [start];
    for (let at = 0; at < queue.length && found !== "positive"; at++) {
      for (const c of this.consumers.get(queue[at]!) ?? []) {
        if (c.input === "positive") found = "positive";
        else if (c.input === "negative") found ??= "negative";
        else if (!seen.has(c.node)) {
          seen.add(c.node);
          queue.push(c.node);
        }
      }
    }
    this.roles.set(start, found);
    return found;
  }
}

type Classified = Omit<Cand, "node" | "input">;

const BASES: Record<string, string> = {
  steps: "Number of sampling steps",
  cfg: "Classifier-free guidance scale",
  denoise: "Denoising strength",
  sampler_name: "Sampler",
  scheduler: "Scheduler",
  width: "Width in pixels",
  height: "Height in pixels",
  batch_size: "Number of outputs per run",
};

/** What the literal `value` of `input` on node `id` is, as a parameter; undefined: it stays fixed. */
function classify(ctx: Context, id: string, input: string, value: unknown, viaPrimitive: boolean): Classified | undefined {
  const cls = ctx.cls(id);
  const inputs = ctx.inputs(id);
  const spec = specOf(ctx.def(id), input);
  const type = spec?.[0];
  const isStr = typeof value === "string";
  const n = num(value);
  const inputSlug = slug(input) ?? "value";

  // comfyui-api's tests: a non-empty string, not a link (so never through a primitive); a node with a
  // filename_prefix saves, it does not load
  if (!viaPrimitive && isStr && value !== "") {
    if (input === "image" && !(typeof inputs.filename_prefix === "string" && inputs.filename_prefix !== "")) {
      const mask = cls === "LoadImageMask";
      const base = `${mask ? "Mask image" : "Input image"}: a URL or base64 data`;
      return { kind: "media", base, generic: mask ? "mask" : "image" };
    }
    if (VIDEO_LOADERS.has(cls) && (input === "video" || input === "file"))
      return { kind: "media", base: "Input video: a URL or base64 data", generic: "video" };
    if (AUDIO_LOADERS.has(cls) && input === "audio") return { kind: "media", base: "Input audio: a URL or base64 data", generic: "audio" };
  }
  const loader = ctx.loaders.get(cls);
  const li = loader?.find((l) => l.input === input);
  if (li && isStr) {
    const folder = canonicalFolder(li.folder) ?? li.folder;
    const generic = /^(model|model_name|name)$/.test(input) ? `${slug(folder) ?? "model"}_${inputSlug}` : inputSlug;
    return { kind: "model", default: value, folder, base: `Model file in the host's models/${folder} folder`, generic };
  }
  if (n !== undefined && loader?.some((l) => (canonicalFolder(l.folder) ?? l.folder) === "loras") && input.startsWith("strength")) {
    const on = input === "strength_model" ? " on the diffusion model" : input === "strength_clip" ? " on the text encoder" : "";
    return { kind: "float", default: value, ...bounds(spec, n), base: `LoRA strength${on}`, generic: `lora_${inputSlug}` };
  }
  if (n !== undefined && Number.isInteger(n) && (type === undefined || type === "INT")) {
    if (input === "seed" || input === "noise_seed" || (type === "INT" && spec?.[1].control_after_generate === true)) {
      return { kind: "seed", default: value, ...bounds(spec, n), base: "Random seed; a random one when omitted", generic: inputSlug };
    }
  }
  // integers by nature (steps, sizes) unless the definition says FLOAT; cfg / denoise floats unless it says INT
  const intOrFloat = (base: string): Classified => ({
    kind: Number.isInteger(n) && (type === "INT" || (type === undefined && input !== "cfg" && input !== "denoise")) ? "int" : "float",
    default: value,
    ...bounds(spec, n!),
    base,
    generic: inputSlug,
  });
  if (n !== undefined && ((input === "steps" && type !== "FLOAT") || ((input === "cfg" || input === "denoise") && type !== "INT")))
    return intOrFloat(BASES[input]!);
  if (isStr && (input === "sampler_name" || input === "scheduler")) {
    const ks = input === "sampler_name" ? ctx.samplers : ctx.schedulers;
    const own = comboOptions(spec);
    const base = BASES[input]!;
    if (ks && (own ? sameSet(own, ks) : ks.includes(value)))
      return { kind: input === "sampler_name" ? "sampler" : "scheduler", default: value, base, generic: inputSlug };
    if (own) return { kind: "enum", default: value, options: own.includes(value) ? own : [...own, value], base, generic: inputSlug };
    return undefined;
  }
  if (n !== undefined && cls.startsWith("Empty") && ["width", "height", "batch_size"].includes(input)) {
    const i = inputs;
    if ((num(i.width) !== undefined || isLink(i.width)) && (num(i.height) !== undefined || isLink(i.height)))
      return intOrFloat(BASES[input]!);
  }
  // without a definition only an input named like a text is one (a custom node's mode string is not);
  // a string input fed by a primitive (forceInput) is a text whatever its box looks like
  if (isStr && (spec ? type === "STRING" && (spec[1].multiline === true || viaPrimitive) : /text|prompt/i.test(input))) {
    // the input's name says its role (WanVideoTextEncode: positive_prompt / negative_prompt), else its links do;
    // a `prompt` that reaches no sampler is its node's own (the API nodes: Ideogram, Luma, ...)
    const named: Role | undefined = /negative/i.test(input) ? "negative" : /positive/i.test(input) ? "positive" : undefined;
    const role = named ?? ctx.role(id) ?? (/prompt/i.test(input) ? "positive" : undefined);
    const conditioning = ctx.def(id)?.output?.includes("CONDITIONING") === true;
    if (role || (spec && conditioning)) {
      const base =
        role === "positive"
          ? "Positive prompt: what the output should show"
          : role === "negative"
            ? "Negative prompt: what the output should avoid"
            : "Text to encode";
      return { kind: "string", default: value, base, generic: inputSlug, role: role ?? "text" };
    }
  }
  return undefined;
}

/** A Primitive* node's value, classified by the first input it feeds (else by its own type). */
function classifyPrimitive(ctx: Context, id: string): Classified | undefined {
  const value = ctx.inputs(id).value;
  if (value === undefined || isLink(value) || (value !== null && typeof value === "object")) return undefined;
  const consumers = ctx.consumers.get(id) ?? [];
  for (const c of consumers) {
    const got = classify(ctx, c.node, c.input, value, true);
    if (got) return got;
  }
  const first = consumers[0] ? (slug(consumers[0].input) ?? "value") : "value";
  const base = `Value of ${ctx.cls(id)}`;
  const spec = specOf(ctx.def(id), "value");
  if (typeof value === "boolean") return { kind: "boolean", default: value, base, generic: first };
  if (typeof value === "string") return { kind: "string", default: value, base, generic: first };
  const n = num(value);
  if (n === undefined) return undefined;
  return {
    kind: Number.isInteger(n) && ctx.cls(id) !== "PrimitiveFloat" ? "int" : "float",
    default: value,
    ...bounds(spec, n),
    base,
    generic: first,
  };
}

/** A node input the user asked for (`add`): classified like the detected ones, else by its object_info type. */
function classifyAdded(ctx: Context, id: string, input: string, value: unknown): Classified {
  const got = PRIMITIVES.has(ctx.cls(id)) && input === "value" ? classifyPrimitive(ctx, id) : classify(ctx, id, input, value, false);
  if (got) return got;
  const spec = specOf(ctx.def(id), input);
  const base = `${ctx.cls(id)} ${input}`;
  const generic = slug(input) ?? "value";
  const options = comboOptions(spec);
  if (typeof value === "string" && options)
    return { kind: "enum", default: value, options: options.includes(value) ? options : [...options, value], base, generic };
  if (typeof value === "string") return { kind: "string", default: value, base, generic };
  if (typeof value === "boolean") return { kind: "boolean", default: value, base, generic };
  const n = num(value);
  // no definition: a float, which takes integers too
  if (n !== undefined)
    return { kind: Number.isInteger(n) && spec?.[0] === "INT" ? "int" : "float", default: value, ...bounds(spec, n), base, generic };
  throw new Error(`add: node ${JSON.stringify(id)} input ${JSON.stringify(input)} holds no string, number or boolean to expose`);
}

function describe(ctx: Context, c: Cand): string {
  const title = ctx.title(c.node);
  return `${c.base} (node ${c.node}${title ? ` "${title}"` : ""}: ${ctx.cls(c.node)}.${c.input})`;
}

function toParam(ctx: Context, c: Cand, name: string, description?: string): EndpointParam {
  const p: EndpointParam = {
    name,
    targets: [{ node: c.node, input: c.input }],
    kind: c.kind,
    required: c.kind === "media",
    description: "",
  };
  if (c.kind !== "media") p.default = c.default;
  if (c.folder !== undefined) p.folder = c.folder;
  if (c.options !== undefined) p.options = c.options;
  if (c.min !== undefined) p.min = c.min;
  if (c.max !== undefined) p.max = c.max;
  if (c.step !== undefined) p.step = c.step;
  p.description = description ?? describe(ctx, c);
  return p;
}

/** Output order: prompts, then media, then the rest; each by node id, then input order. */
function rank(c: Cand): number {
  if (c.role === "positive") return 0;
  if (c.role === "negative") return 1;
  if (c.role === "text") return 2;
  return c.kind === "media" ? 3 : 4;
}

function candidates(ctx: Context): Cand[] {
  const out: Cand[] = [];
  for (const id of ctx.ids) {
    const mine: Cand[] = [];
    if (PRIMITIVES.has(ctx.cls(id))) {
      const got = classifyPrimitive(ctx, id);
      if (got) mine.push({ node: id, input: "value", ...got });
    } else {
      for (const [input, value] of Object.entries(ctx.inputs(id))) {
        if (isLink(value)) continue;
        const got = classify(ctx, id, input, value, false);
        if (got) mine.push({ node: id, input, ...got });
      }
    }
    // Two prompt texts of one role in one node (CLIPTextEncodeSDXL text_g / text_l): the input tells them apart.
    for (const role of ["positive", "negative", "text"] as const) {
      const same = mine.filter((c) => c.role === role);
      const roleName = role === "positive" ? "prompt" : role === "negative" ? "negative_prompt" : "text";
      for (const c of same) c.generic = same.length > 1 ? (role === "text" ? c.generic : `${roleName}_${c.generic}`) : roleName;
    }
    out.push(...mine);
  }
  return out;
}

/** Proposed names (titles where they decide), then equal names suffixed in node order. */
function names(ctx: Context, cands: Cand[]): string[] {
  const perNode = new Map<string, number>();
  for (const c of cands) perNode.set(c.node, (perNode.get(c.node) ?? 0) + 1);
  const titled = cands.map((c) => {
    // a KSampler titled "Base" whose only literal input is its seed names no seed "base"
    const valueNode = PRIMITIVES.has(ctx.cls(c.node)) || c.kind === "media" || c.kind === "model" || c.role === "text";
    if (!valueNode || perNode.get(c.node) !== 1) return undefined;
    const t = ctx.title(c.node);
    return t === undefined ? undefined : slug(t);
  });
  const titleUse = new Map<string, number>();
  for (const t of titled) if (t) titleUse.set(t, (titleUse.get(t) ?? 0) + 1);
  const proposed = cands.map((c, i) => (titled[i] && titleUse.get(titled[i]!) === 1 ? titled[i]! : c.generic));
  const all = new Set(proposed);
  const used = new Set<string>();
  return proposed.map((p) => {
    // a suffixed name another parameter proposes for itself is skipped
    let name = p;
    for (let k = 2; used.has(name) || (name !== p && all.has(name)); k++) name = `${p}_${k}`;
    used.add(name);
    return name;
  });
}

/** The parameters of an endpoint for this prompt, overrides applied. Throws on an override that names nothing. */
export function detectParams(i: DetectInput): EndpointParam[] {
  const ctx = new Context(i.prompt, i.objectInfo, i.titles);
  const cands = candidates(ctx);
  const named = names(ctx, cands);
  const order = cands.map((c, k) => k).sort((a, b) => rank(cands[a]!) - rank(cands[b]!) || a - b);
  const params = order.map((k) => toParam(ctx, cands[k]!, named[k]!));
  return applyOverrides(ctx, params, i.overrides);
}

function applyOverrides(ctx: Context, generated: EndpointParam[], o: ParamOverrides | undefined): EndpointParam[] {
  if (!o) return generated;
  const byName = new Map(generated.map((p) => [p.name, p]));
  const have = () => [...byName.keys()].join(", ") || "none";
  const hide = new Set(o.hide ?? []);
  for (const h of hide) if (!byName.has(h)) throw new Error(`hide: no generated parameter ${JSON.stringify(h)} (have: ${have()})`);
  const renames = Object.entries(o.rename ?? {});
  for (const [from, to] of renames) {
    if (!byName.has(from)) throw new Error(`rename: no generated parameter ${JSON.stringify(from)} (have: ${have()})`);
    if (hide.has(from)) throw new Error(`rename: ${JSON.stringify(from)} is also hidden`);
    checkName(to, `rename ${from}`);
  }
  const newName = new Map(renames);
  const params: EndpointParam[] = [];
  for (const p of generated) {
    if (hide.has(p.name)) continue;
    const name = newName.get(p.name) ?? p.name;
    const into = params.find((q) => q.name === name);
    if (!into) {
      params.push({ ...p, name, targets: [...p.targets] });
      continue;
    }
    // One request field for several inputs, as the user asked by giving them one name.
    if (into.kind !== p.kind || into.folder !== p.folder)
      throw new Error(`rename: ${JSON.stringify(name)} would stand for a ${into.kind} and a ${p.kind} parameter; they cannot be one field`);
    into.targets.push(...p.targets);
  }
  for (const a of o.add ?? []) {
    const name = checkName(a.name, "add");
    if (params.some((p) => p.name === name)) throw new Error(`add: a parameter named ${JSON.stringify(name)} exists already`);
    const node = ctx.node(a.node);
    if (!node) throw new Error(`add ${name}: no node ${JSON.stringify(a.node)} in the prompt`);
    const inputs = ctx.inputs(a.node);
    if (!Object.hasOwn(inputs, a.input)) throw new Error(`add ${name}: node ${a.node} has no input ${JSON.stringify(a.input)}`);
    const value = inputs[a.input];
    if (isLink(value)) throw new Error(`add ${name}: node ${a.node} input ${a.input} is a link, not a value`);
    const taken = params.find((p) => p.targets.some((t) => t.node === a.node && t.input === a.input));
    if (taken)
      throw new Error(`add ${name}: node ${a.node} input ${a.input} is parameter ${JSON.stringify(taken.name)} already (rename it)`);
    const c: Cand = { node: a.node, input: a.input, ...classifyAdded(ctx, a.node, a.input, value) };
    params.push(toParam(ctx, c, name, a.description));
  }
  return params;
}

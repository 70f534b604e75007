// Node definitions as the conversion reads them: one /object_info entry at a time, leniently, as
// ComfyUI and its frontend read what nodes declare. A bare type string ("IMAGE") is [type, {}];
// missing "required"/"optional"/"input_order" sections are empty or taken in key order; unknown keys
// are ignored. A definition that cannot be read (an input spec that is a number, a section that is
// a list) is reported by name and fails only the nodes that use it, never the whole object_info.
import { getOwn } from "./own-keys.ts";

/** The kinds of widget the frontend makes for an input; an input without one is a socket only. */
export type WidgetKind = "INT" | "FLOAT" | "STRING" | "BOOLEAN" | "COMBO" | "DYNAMIC_COMBO" | "CUSTOM";

export interface InputDef {
  name: string;
  type: string;
  opts: Record<string, unknown>;
  optional: boolean;
  widget?: WidgetKind;
  /** A combo's (or dynamic combo's) choices. */
  options?: unknown[];
  /** widgets_values slots right after this widget that hold UI state only (control_after_generate, control_filter_list). */
  controlSlots: number;
  /** A dynamic combo's sub-inputs per chosen key, with names relative to the combo. */
  dynamic?: Map<string, InputDef[]>;
}

export interface NodeDef {
  classType: string;
  displayName?: string;
  /** Required inputs first, then optional ones, each group in input_order. */
  inputs: InputDef[];
  /** A required input asks for an upload button: it takes a widgets_values slot after the required widgets. */
  uploadSlot: boolean;
}

export type DefLookup = { def: NodeDef } | { error: string } | undefined;

/** Input types the frontend draws a widget for, besides combos (a list of choices). */
const BASIC: Record<string, WidgetKind> = { INT: "INT", FLOAT: "FLOAT", STRING: "STRING", BOOLEAN: "BOOLEAN", COMBO: "COMBO" };
/** Core frontend widgets of other types: they hold a value in widgets_values and in the prompt. */
const CUSTOM_WIDGETS = new Set(["WEBCAM", "AUDIO_RECORD", "LOAD_3D", "LOAD_3D_ANIMATION", "MARKDOWN", "IMAGEUPLOAD"]);
const DYNAMIC_COMBO = "COMFY_DYNAMICCOMBO_V3";
const UPLOAD_KEYS = ["image_upload", "video_upload", "audio_upload", "file_upload", "animated_image_upload"];
/** Dynamic combos nest; real ones are two or three deep. */
const MAX_DYNAMIC_DEPTH = 8;

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

class DefError extends Error {}

/** One input spec: [type, opts], a bare type string, or [[choices], opts]. */
function readInput(name: string, spec: unknown, optional: boolean, depth: number): InputDef {
  const arr = typeof spec === "string" ? [spec] : spec;
  if (!Array.isArray(arr) || arr.length === 0) throw new DefError(`input ${name}: spec is ${JSON.stringify(spec) ?? typeof spec}`);
  const head = arr[0];
  const opts = isObj(arr[1]) ? arr[1] : {};
  const inp: InputDef = { name, type: "", opts, optional, controlSlots: 0 };
  if (Array.isArray(head)) {
    inp.type = "COMBO";
    inp.options = head;
  } else if (typeof head === "string") {
    inp.type = head;
    if (head === "COMBO") inp.options = Array.isArray(opts.options) ? opts.options : [];
  } else throw new DefError(`input ${name}: type is ${JSON.stringify(head) ?? typeof head}`);
  if (opts.forceInput === true) return inp;
  if (inp.type === DYNAMIC_COMBO) {
    if (depth >= MAX_DYNAMIC_DEPTH) throw new DefError(`input ${name}: dynamic combos nested too deep`);
    if (!Array.isArray(opts.options)) throw new DefError(`input ${name}: dynamic combo without options`);
    inp.widget = "DYNAMIC_COMBO";
    inp.dynamic = new Map();
    for (const o of opts.options) {
      if (!isObj(o) || typeof o.key !== "string") throw new DefError(`input ${name}: dynamic combo option without a key`);
      inp.dynamic.set(o.key, readSections(o.inputs, depth + 1).inputs);
    }
    inp.options = [...inp.dynamic.keys()];
    return inp;
  }
  inp.widget = BASIC[inp.type] ?? (CUSTOM_WIDGETS.has(inp.type) ? "CUSTOM" : undefined);
  const cag = opts.control_after_generate;
  if (inp.widget === "INT") inp.controlSlots = (cag ?? (name === "seed" || name === "noise_seed")) ? 1 : 0;
  else if (inp.widget === "FLOAT" && cag) inp.controlSlots = 1;
  else if (inp.widget === "COMBO" && cag) inp.controlSlots = 2; // the control, then its filter box
  return inp;
}

/** {required, optional} (and input_order when given) into one ordered list. */
function readSections(input: unknown, depth: number, order?: unknown): { inputs: InputDef[]; upload: boolean } {
  if (input === undefined || input === null) return { inputs: [], upload: false };
  if (!isObj(input)) throw new DefError(`"input" is not an object`);
  const inputs: InputDef[] = [];
  let upload = false;
  for (const group of ["required", "optional"] as const) {
    const specs = input[group];
    if (specs === undefined || specs === null) continue;
    if (!isObj(specs)) throw new DefError(`input.${group} is not an object`);
    const listed = isObj(order) && Array.isArray(order[group]) ? (order[group] as unknown[]).filter((n) => typeof n === "string") : [];
    // input_order first (what ComfyUI lists), then anything it left out, in key order
    const names = [...new Set([...(listed as string[]).filter((n) => Object.hasOwn(specs, n)), ...Object.keys(specs)])];
    for (const name of names) {
      const inp = readInput(name, specs[name], group === "optional", depth);
      if (group === "required" && UPLOAD_KEYS.some((k) => inp.opts[k] === true)) upload = true;
      inputs.push(inp);
    }
  }
  return { inputs, upload };
}

/** Reads definitions once each; the object_info may be anything, its entries are read on demand. */
export class DefinitionReader {
  private readonly cache = new Map<string, DefLookup>();
  constructor(private readonly objectInfo: unknown) {}

  get(classType: string): DefLookup {
    if (this.cache.has(classType)) return this.cache.get(classType);
    const raw = isObj(this.objectInfo) ? getOwn(this.objectInfo, classType) : undefined;
    let r: DefLookup;
    if (raw === undefined) r = undefined;
    else if (!isObj(raw)) r = { error: `its definition is ${Array.isArray(raw) ? "a list" : typeof raw}, not an object` };
    else {
      try {
        const { inputs, upload } = readSections(raw.input, 0, raw.input_order);
        const displayName = typeof raw.display_name === "string" ? raw.display_name : undefined;
        r = { def: { classType, displayName, inputs, uploadSlot: upload } };
      } catch (e) {
        if (!(e instanceof DefError)) throw e;
        r = { error: e.message };
      }
    }
    this.cache.set(classType, r);
    return r;
  }
}

/** The value a new widget starts with in the frontend; undefined when it has none to give. */
export function widgetDefault(inp: InputDef): unknown {
  const d = inp.opts.default;
  switch (inp.widget) {
    case "INT":
    case "FLOAT":
      return d ?? 0;
    case "STRING":
      return d ?? "";
    case "BOOLEAN":
      return d ?? false;
    case "COMBO":
      return d || inp.options?.[0];
    case "DYNAMIC_COMBO":
      return inp.options?.[0];
    default:
      return d;
  }
}

/** Could `v` be what this widget holds? Used to notice values that landed on the wrong widget. */
export function plausible(inp: InputDef, v: unknown): boolean {
  if (v === null || v === undefined) return true;
  switch (inp.widget) {
    case "INT":
    case "FLOAT":
      return typeof v === "number";
    case "BOOLEAN":
      return typeof v === "boolean";
    case "STRING":
      return typeof v === "string";
    case "COMBO":
      return typeof v === "string" || !!inp.options?.includes(v);
    case "DYNAMIC_COMBO":
      return !!inp.options?.includes(v);
    default:
      return true;
  }
}

/** A file name (a model, an input image): a host that lacks it needs the file, not another value. */
const FILE_RE = /[/\\]|\.[A-Za-z0-9]{2,12}$/;

/**
 * A combo value the definition does not list. Not judged: a remote combo (its list is fetched
 * later) and file names, which a host lists as it has them (the models tier fetches what is missing).
 */
export function outsideOptions(inp: InputDef, v: unknown): boolean {
  if ((inp.widget !== "COMBO" && inp.widget !== "DYNAMIC_COMBO") || inp.opts.remote !== undefined) return false;
  if (typeof v === "string" && FILE_RE.test(v)) return false;
  if (inp.opts.multiselect === true && Array.isArray(v)) return v.some((x) => !inp.options!.includes(x));
  return !!inp.options && inp.options.length > 0 && !inp.options.includes(v);
}

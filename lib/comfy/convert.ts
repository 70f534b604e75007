// UI format -> API format (what comfyui-api and POST /prompt take), given an object_info, the way
// ComfyUI's frontend exports a prompt. Widget values are named by the node's definition
// (convert-widgets.ts); links are followed back through Reroutes, Set/Get wires, bypassed nodes
// (each output passes the input of its type through) and subgraph boundaries (by the subgraph
// input's own slot and name) to the node that really produces the value; PrimitiveNode values and a
// subgraph instance's widget values are inlined; muted, frontend-only and unknown nodes are not
// exported, and an input linked to one of them is removed, as the frontend does. Subgraph interiors
// get ids "<instance>:<inner>" at every depth. Whenever the file had to be guessed at (a missing or
// unreadable definition, a widget default filled in, a value dropped or outside a combo's options),
// the result says so per node. Ids, class and input names come from the file: looked up and written
// as own keys only.
import type { ObjectInfoNode } from "./data-schemas.ts";
import { DefinitionReader, outsideOptions, type NodeDef } from "./convert-defs.ts";
import { nodeWidgets, staticWidgetNames, type WidgetValue } from "./convert-widgets.ts";
import { FRONTEND_ONLY } from "./node-resolve.ts";
import { setOwn } from "./own-keys.ts";
import { ExpansionBudget, MAX_NESTING, checkJsonDepth } from "./workflow-limits.ts";
import {
  modeOf,
  toUiGraph,
  type ApiPrompt,
  type UiGraph,
  type UiLink,
  type UiNode,
  type UiNodeInput,
  type UiSubgraph,
} from "./workflow-read.ts";

export type ConvertIssueKind =
  /** the object_info has no such class (a missing node pack): the node cannot be named or checked */
  | "missing-class"
  /** the class's definition cannot be read: its nodes are treated as missing */
  | "bad-definition"
  /** a widget the file has no value for got the definition's default */
  | "default-filled"
  /** a widget the file has no value for, and no default either: left out */
  | "no-default"
  /** a value for a widget the definition does not have */
  | "widget-dropped"
  /** the values did not fit the widgets in order and were aligned by type */
  | "realigned"
  /** a combo value the definition does not list */
  | "combo-value"
  /** an input linked to a node that is not exported (muted, unknown) was removed */
  | "dropped-link"
  /** a bypassed node has no input of the type asked for: the one at the output's slot passes, as the frontend does */
  | "bypass-type"
  /** a subgraph that nests itself, or too deep */
  | "not-expanded";

export interface ConvertIssue {
  node: string;
  classType?: string;
  kind: ConvertIssueKind;
  /** the input or widget concerned, when one is */
  input?: string;
  message: string;
}
export interface ConvertResult {
  prompt: ApiPrompt;
  issues: ConvertIssue[];
}

export interface ConvertOptions {
  /** The workflow's file, named in errors. */
  file?: string;
  /**
   * Leave out nodes whose class the object_info lacks (or cannot read), and inputs linked to them,
   * as the frontend does with a missing node type. Default: keep them, inputs from links only, so
   * that a caller can name what is missing from the prompt itself.
   */
  dropUnknown?: boolean;
}

/** Custom frontend-only nodes that only carry a wire (KJNodes). */
const VIRTUAL_WIRES = new Set(["SetNode", "GetNode"]);
/** JavaScript-only nodes of rgthree's pack: never exported; reroutes pass the input at the output's slot. */
const RGTHREE_VIRTUAL = new Set(
  [
    "Fast Muter",
    "Fast Bypasser",
    "Fast Groups Muter",
    "Fast Groups Bypasser",
    "Fast Actions Button",
    "Label",
    "Bookmark",
    "Mute / Bypass Relay",
    "Mute / Bypass Repeater",
    "Random Unmuter",
    "Node Collector",
    "Reroute",
  ].map((n) => `${n} (rgthree)`),
);
const PASS_THROUGH = new Set(["Reroute", "Reroute (rgthree)", "Node Collector (rgthree)"]);
const CONTROL_VALUES = new Set(["fixed", "increment", "decrement", "randomize", "increment-wrap"]);

/** Input names that the frontend shows as widgets, in object_info order (required, then optional). */
export function widgetInputs(def: ObjectInfoNode): { name: string; control: boolean }[] {
  const r = new DefinitionReader({ def }).get("def");
  return r && "def" in r ? staticWidgetNames(r.def) : [];
}

/** A resolved source for an input: a link into the prompt, a constant, or nothing. */
type Src = { link: [string, number] } | { value: unknown } | undefined;
interface Step {
  scope: Scope;
  id: string;
  slot: number;
  /** the type the final target input wants: decides which input a bypassed node passes */
  type: unknown;
}
/** One hop of link following: the answer, or where to look next (and, leaving a subgraph, the instance's own value for it). */
type Hop = { src: Src } | { next: Step; own?: { value: unknown }; note?: [string, string] };

interface Sub {
  def: UiSubgraph;
  /** links from the subgraph's input node, by its slot */
  fromInputs: Map<number, UiLink[]>;
  /** the link into the subgraph's output node, by its slot */
  toOutputs: Map<number, UiLink>;
  /** the inputs that reach a widget inside (an instance keeps a value for each), and whether it is a seed */
  widgetSlots: { slot: number; seed: boolean }[];
  /** per input slot: how many inputs of the same name come before it */
  nth: number[];
  /** input slot by name (the first of that name) */
  slotByName: Map<string, number>;
}
interface Scope {
  prefix: string;
  nodes: Map<string, UiNode>;
  linksById: Map<number, UiLink>;
  /** For a subgraph interior: the instance node (its inputs by name), the scope it lives in, and its widget values. */
  parent?: { scope: Scope; instance: UiNode; inputs: Map<string, UiNodeInput[]>; sub: Sub; promoted: Map<number, unknown> };
  depth: number;
  /** KJNodes SetNode by the name it carries; built on first use. */
  setNodes?: Map<unknown, UiNode>;
  /** inner node id -> widget -> value, set on the instance for this one instance (proxyWidgets) */
  overrides?: Map<string, Map<string, unknown>>;
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
/** The frontend boxes array values so that ComfyUI does not read them as links. */
const box = (v: unknown) => (Array.isArray(v) ? { __value__: v } : v);
const show = (v: unknown) => {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? s.slice(0, 57) + "..." : s;
};

/** LiteGraph's type compatibility: "*" or nothing fits all, comma lists fit when they share a type. */
function fitsType(a: unknown, b: unknown): boolean {
  if (a === "" || a === "*" || a == null || b === "" || b === "*" || b == null || a === b) return true;
  const [x, y] = [String(a).toLowerCase(), String(b).toLowerCase()];
  if (x === y) return true;
  if (!x.includes(",") && !y.includes(",")) return false;
  const ys = y.split(",");
  return x.split(",").some((t) => ys.includes(t));
}

/**
 * The input a bypassed node passes to its output `slot`, for a target wanting `type`: the input at
 * the same slot if its type fits, else the first input of exactly that type, else the first that
 * fits both, else (`typeless`) the input at the output's slot index; -1 when it has none.
 */
function bypassInput(n: UiNode, slot: number, type: unknown): { k: number; typeless?: true } {
  const ins = n.inputs ?? [];
  const atSlot = ins.length > slot ? slot : -1;
  if (type === "*" || type === "") return { k: atSlot >= 0 ? atSlot : ins.length ? 0 : -1 };
  const outType = n.outputs?.[slot]?.type;
  if (atSlot >= 0 && fitsType(ins[slot]?.type, outType) && fitsType(ins[slot]?.type, type)) return { k: slot };
  const exact = ins.findIndex((i) => i?.type === type);
  if (exact >= 0) return { k: exact };
  const fitting = ins.findIndex((i) => fitsType(i?.type, outType) && fitsType(i?.type, type));
  return fitting >= 0 ? { k: fitting } : { k: atSlot, typeless: true };
}

/**
 * Convert; a workflow whose subgraphs expand past MAX_EXPANDED_NODES, or whose JSON nests past
 * MAX_JSON_DEPTH, throws a WorkflowReadError naming `opts.file`. `objectInfo` may come from any
 * source: each definition is read on its own (convert-defs.ts).
 */
export function convertUiToApi(workflow: unknown, objectInfo: Readonly<Record<string, unknown>>, opts: ConvertOptions = {}): ConvertResult {
  const file = opts.file ?? "<workflow>";
  checkJsonDepth(workflow, file);
  const g: UiGraph = toUiGraph(workflow as Record<string, unknown>);
  const defs = new DefinitionReader(objectInfo);
  const budget = new ExpansionBudget(file);
  const prompt: ApiPrompt = {};
  const issues: ConvertIssue[] = [];

  const subs = new Map<string, Sub>();
  const subOf = (def: UiSubgraph): Sub => {
    let s = subs.get(def.id);
    if (!s) {
      s = { def, fromInputs: new Map(), toOutputs: new Map(), widgetSlots: [], nth: [], slotByName: new Map() };
      const seen = new Map<unknown, number>();
      def.inputs.forEach((inp, slot) => {
        const name = inp?.name;
        s!.nth.push(seen.get(name) ?? 0);
        seen.set(name, (seen.get(name) ?? 0) + 1);
        if (typeof name === "string" && !s!.slotByName.has(name)) s!.slotByName.set(name, slot);
      });
      for (const l of def.links) {
        if (String(l.origin_id) === "-10") {
          const list = s.fromInputs.get(l.origin_slot);
          if (list) list.push(l);
          else s.fromInputs.set(l.origin_slot, [l]);
        }
        if (String(l.target_id) === "-20" && !s.toOutputs.has(l.target_slot)) s.toOutputs.set(l.target_slot, l);
      }
      const byId = new Map(def.nodes.map((n) => [String(n.id), n]));
      for (let slot = 0; slot < def.inputs.length; slot++) {
        const targets = (s.fromInputs.get(slot) ?? []).map((l) => byId.get(String(l.target_id))?.inputs?.[l.target_slot]);
        const w = targets.find((t) => t?.widget)?.widget;
        if (w) s.widgetSlots.push({ slot, seed: w.name === "seed" || w.name === "noise_seed" });
      }
      subs.set(def.id, s);
    }
    return s;
  };

  const mkScope = (nodes: UiNode[], links: UiLink[], prefix: string, depth: number, parent?: Scope["parent"]): Scope => ({
    prefix,
    nodes: new Map(nodes.map((n) => [String(n.id), n])),
    linksById: new Map(links.map((l) => [l.id, l])),
    parent,
    depth,
  });

  /** The type an input wants: its own, else its link's. */
  const wants = (scope: Scope, inp: UiNodeInput | undefined): unknown =>
    inp?.type ?? (inp?.link != null ? scope.linksById.get(inp.link)?.type : undefined);
  const viaLink = (scope: Scope, linkId: number | null | undefined, type: unknown): Hop => {
    const l = linkId == null ? undefined : scope.linksById.get(linkId);
    return l ? { next: { scope, id: String(l.origin_id), slot: l.origin_slot, type } } : { src: undefined };
  };
  const setNodeOf = (scope: Scope, name: unknown): UiNode | undefined => {
    if (!scope.setNodes) {
      scope.setNodes = new Map();
      for (const m of scope.nodes.values()) {
        if (m.type !== "SetNode" || !Array.isArray(m.widgets_values)) continue;
        if (!scope.setNodes.has(m.widgets_values[0])) scope.setNodes.set(m.widgets_values[0], m);
      }
    }
    return scope.setNodes.get(name);
  };

  /** The instance's input that subgraph input `slot` stands for: same name (the n-th of that name), never merely the same position. */
  const instanceInput = (p: NonNullable<Scope["parent"]>, slot: number): UiNodeInput | undefined => {
    const name = p.sub.def.inputs[slot]?.name;
    return typeof name === "string" ? p.inputs.get(name)?.[p.sub.nth[slot]!] : undefined;
  };

  const bypassNotes = new Map<string, string>();
  /** One hop back from output `slot` of node `id`. */
  const hop = ({ scope, id, slot, type }: Step): Hop => {
    if (id === "-10") {
      // Subgraph input: continue outside at the instance's input of that name; unlinked there, the
      // instance's own widget value for it (if the file has one), else the inner widget's own value.
      const p = scope.parent;
      if (!p) return { src: undefined };
      const own = p.promoted.has(slot) ? { value: p.promoted.get(slot) } : undefined;
      const inp = instanceInput(p, slot);
      const h = viaLink(p.scope, inp?.link, wants(p.scope, inp) ?? type);
      return "next" in h ? { next: h.next, own } : { src: own };
    }
    const n = scope.nodes.get(id);
    if (!n) return { src: undefined };
    const mode = modeOf(n.mode);
    if (mode === "bypassed") {
      const { k, typeless } = bypassInput(n, slot, type);
      const inp = n.inputs?.[k];
      const h = viaLink(scope, inp?.link, wants(scope, inp));
      if (typeless && "next" in h) {
        const why = `its input ${inp!.name} (${String(inp!.type)}) passes through, as the frontend does`;
        h.note = [scope.prefix + id, `bypassed ${n.type} has no input of type ${String(type)} for its output ${slot}: ${why}`];
      }
      return h;
    }
    if (n.type === "PrimitiveNode")
      return { src: Array.isArray(n.widgets_values) && n.widgets_values.length ? { value: n.widgets_values[0] } : undefined };
    if (n.type === "GetNode") {
      // KJNodes' Set/Get pair is a virtual wire: Get reads what the Set of the same name receives.
      const name = Array.isArray(n.widgets_values) ? n.widgets_values[0] : undefined;
      return viaLink(scope, setNodeOf(scope, name)?.inputs?.[0]?.link, type);
    }
    if (PASS_THROUGH.has(n.type) || (n.type === "SetNode" && n.inputs?.[slot]?.link != null))
      return viaLink(scope, n.inputs?.[slot]?.link, type);
    if (FRONTEND_ONLY.has(n.type) || RGTHREE_VIRTUAL.has(n.type)) return { src: undefined };
    const sg = g.subgraphs.get(n.type);
    if (sg && mode === "active") {
      if (scope.depth >= MAX_NESTING) return { src: undefined };
      const inner = innerScope(scope, n, sg);
      const l = subOf(sg).toOutputs.get(slot);
      return l ? { next: { scope: inner, id: String(l.origin_id), slot: l.origin_slot, type } } : { src: undefined };
    }
    // A real node; if it is not exported (muted, unknown class) the link is removed at the end.
    return { src: { link: [scope.prefix + id, slot] } };
  };

  // Every step on a followed path resolves to the path's end: remembered, so that many inputs
  // reading one long chain cost the chain once.
  const resolved = new Map<string, Src>();
  const typeKey = (t: unknown) => (typeof t === "string" ? t : (JSON.stringify(t) ?? ""));
  /**
   * Where does this output really come from? Hops are followed in a loop, not by recursion: a file
   * can chain 10^5 Reroutes.
   */
  const resolveStep = (start: Step): Src => {
    const path: string[] = [];
    const owns: ({ value: unknown } | undefined)[] = [];
    const notes: [string, string][] = [];
    const onPath = new Set<string>();
    let step = start;
    let src: Src;
    for (;;) {
      const tag = `${step.scope.prefix}${step.id}#${step.slot}#${typeKey(step.type)}`;
      if (resolved.has(tag)) {
        src = resolved.get(tag);
        break;
      }
      if (onPath.has(tag)) {
        src = undefined; // a cycle through reroutes/bypasses
        break;
      }
      onPath.add(tag);
      path.push(tag);
      const h = hop(step);
      if ("src" in h) {
        owns.push(undefined);
        src = h.src;
        break;
      }
      owns.push(h.own);
      if (h.note) notes.push(h.note);
      step = h.next;
    }
    // Nothing at the far end: the outermost subgraph instance on the way that has a value of its own
    // for the input gives it (a nested instance's promoted widget shows its inner one's value).
    for (let k = path.length - 1; k >= 0; k--) {
      if (src === undefined && owns[k]) src = owns[k];
      resolved.set(path[k]!, src);
    }
    // said only when something did pass through
    if (src) for (const [key, message] of notes) bypassNotes.set(key, message);
    return src;
  };
  const resolveInput = (scope: Scope, inp: UiNodeInput): Src => {
    const h = viaLink(scope, inp.link, wants(scope, inp));
    return "src" in h ? h.src : resolveStep(h.next);
  };

  /** An instance's widget values, per subgraph input slot (and per inner widget, via proxyWidgets). */
  const promotedValues = (inst: UiNode, sub: Sub): { bySlot: Map<number, unknown>; inner: Map<string, Map<string, unknown>> } => {
    const bySlot = new Map<number, unknown>();
    const inner = new Map<string, Map<string, unknown>>();
    const wv = inst.widgets_values;
    const ins = sub.def.inputs;
    if (isObj(wv)) {
      ins.forEach((i, k) => {
        if (typeof i?.name === "string" && Object.hasOwn(wv, i.name)) bySlot.set(k, wv[i.name]);
      });
      return { bySlot, inner };
    }
    if (!Array.isArray(wv) || !wv.length) return { bySlot, inner };
    const proxy = inst.properties?.proxyWidgets;
    if (Array.isArray(proxy) && proxy.length === wv.length && proxy.every((p) => Array.isArray(p) && p.length >= 2)) {
      // [["-1", input], [innerId, widget], ...]: the instance's widgets, in the order of its values
      proxy.forEach(([id, w], k) => {
        if (String(id) === "-1") {
          const slot = sub.slotByName.get(String(w));
          if (slot !== undefined) bySlot.set(slot, wv[k]);
        } else {
          const m = inner.get(String(id)) ?? new Map<string, unknown>();
          m.set(String(w), wv[k]);
          inner.set(String(id), m);
        }
      });
      return { bySlot, inner };
    }
    // One value per subgraph input that reaches a widget inside, in the subgraph's input order;
    // older files also kept a seed's control value after it.
    const extra = wv.length > sub.widgetSlots.length;
    let i = 0;
    for (const { slot, seed } of sub.widgetSlots) {
      if (i >= wv.length) break;
      bySlot.set(slot, wv[i++]);
      if (extra && seed && typeof wv[i] === "string" && CONTROL_VALUES.has(wv[i] as string)) i++;
    }
    return { bySlot, inner };
  };

  const innerCache = new Map<string, Scope>();
  const innerScope = (scope: Scope, inst: UiNode, sg: UiSubgraph): Scope => {
    const prefix = `${scope.prefix}${inst.id}:`;
    let s = innerCache.get(prefix);
    if (!s) {
      budget.take(sg.nodes.length, `${scope.prefix}${inst.id}`);
      const sub = subOf(sg);
      const { bySlot, inner } = promotedValues(inst, sub);
      const inputs = new Map<string, UiNodeInput[]>();
      for (const i of inst.inputs ?? []) {
        if (typeof i?.name !== "string") continue;
        const same = inputs.get(i.name);
        if (same) same.push(i);
        else inputs.set(i.name, [i]);
      }
      s = mkScope(sg.nodes, sg.links, prefix, scope.depth + 1, { scope, instance: inst, inputs, sub, promoted: bySlot });
      if (inner.size) s.overrides = inner;
      innerCache.set(prefix, s);
    }
    return s;
  };

  const issue = (key: string, classType: string | undefined, kind: ConvertIssueKind, message: string, input?: string) =>
    issues.push({ node: key, ...(classType !== undefined && { classType }), kind, ...(input !== undefined && { input }), message });

  /** Widget values, then links over them; what had to be guessed is said per widget. */
  const nodeInputs = (scope: Scope, n: UiNode, key: string, def: NodeDef | undefined): Record<string, unknown> => {
    const inputs: Record<string, unknown> = {};
    let widgets: WidgetValue[] = [];
    if (def) {
      const w = nodeWidgets(def, n);
      widgets = w.values;
      for (const note of w.notes) issue(key, n.type, note.kind, note.message);
      const over = scope.overrides?.get(String(n.id));
      for (const v of widgets) {
        if (over?.has(v.name)) Object.assign(v, { value: over.get(v.name), source: "file" });
        if (v.source !== "none") setOwn(inputs, v.name, box(v.value));
      }
    }
    const linked = new Set<string>();
    for (const inp of n.inputs ?? []) {
      if (inp?.link == null) continue;
      const name = inp.name || inp.widget?.name;
      if (typeof name !== "string") continue;
      const src = resolveInput(scope, inp);
      if (!src) continue; // nothing at the other end: a widget keeps its own value
      setOwn(inputs, name, "link" in src ? src.link : box(src.value));
      linked.add(name);
    }
    for (const w of widgets) {
      if (linked.has(w.name)) continue; // the link decides, whatever the widget held
      if (w.source === "default")
        issue(key, n.type, "default-filled", `widget ${w.name} has no value in the file: default ${show(w.value)} used`, w.name);
      else if (w.source === "none")
        issue(key, n.type, "no-default", `widget ${w.name} has no value in the file and no default: left out`, w.name);
      else if (outsideOptions(w.inp, w.value))
        issue(
          key,
          n.type,
          "combo-value",
          `${w.name} = ${show(w.value)} is not among the definition's ${w.inp.options!.length} options`,
          w.name,
        );
    }
    return inputs;
  };

  const emit = (scope: Scope, stack: string[]) => {
    for (const n of scope.nodes.values()) {
      const key = scope.prefix + String(n.id);
      const mode = modeOf(n.mode);
      if (mode !== "active") continue; // muted: gone; bypassed: links pass through it
      const sg = g.subgraphs.get(n.type);
      if (sg) {
        const at = stack.indexOf(sg.id);
        if (at >= 0 || scope.depth >= MAX_NESTING) {
          const ring = [...stack.slice(at), sg.id].join(" > ");
          const why = at >= 0 ? `nests itself (cycle: ${ring})` : `is nested more than ${MAX_NESTING} deep`;
          issue(key, undefined, "not-expanded", `subgraph ${sg.id} ${why}; not expanded`);
          continue;
        }
        emit(innerScope(scope, n, sg), [...stack, sg.id]);
        continue;
      }
      if (FRONTEND_ONLY.has(n.type) || VIRTUAL_WIRES.has(n.type) || RGTHREE_VIRTUAL.has(n.type)) continue;
      const found = defs.get(n.type);
      let def: NodeDef | undefined;
      if (!found) {
        issue(
          key,
          n.type,
          "missing-class",
          `class ${n.type} is not in object_info: widget values cannot be named ` +
            `(missing custom node, or a subgraph the file does not define)` +
            (opts.dropUnknown ? "; left out" : ""),
        );
        if (opts.dropUnknown) continue;
      } else if ("error" in found) {
        issue(
          key,
          n.type,
          "bad-definition",
          `the object_info's definition of ${n.type} cannot be read (${found.error})` + (opts.dropUnknown ? "; left out" : ""),
        );
        if (opts.dropUnknown) continue;
      } else def = found.def;
      const inputs = nodeInputs(scope, n, key, def);
      const title = typeof n.title === "string" ? n.title : (def?.displayName ?? n.type);
      setOwn<ApiPrompt[string]>(prompt, key, { inputs, class_type: n.type, _meta: { title } });
    }
  };
  emit(mkScope(g.nodes, g.links, "", 0), []);
  for (const [key, message] of bypassNotes) issue(key, undefined, "bypass-type", message);
  // Links that point at nodes not exported (muted, unknown) would make ComfyUI refuse the prompt.
  for (const [key, node] of Object.entries(prompt)) {
    for (const [name, v] of Object.entries(node.inputs)) {
      if (Array.isArray(v) && v.length === 2 && typeof v[0] === "string" && typeof v[1] === "number" && !Object.hasOwn(prompt, v[0])) {
        delete node.inputs[name];
        issue(key, node.class_type, "dropped-link", `input ${name} linked to dropped node ${v[0]}`, name);
      }
    }
  }
  return { prompt, issues };
}

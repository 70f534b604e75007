// UI format -> API format (what comfyui-api and POST /prompt take), given an object_info.
// Widget values map to the object_info's widget inputs in input_order; the value the frontend
// stores after a seed (control_after_generate: fixed/increment/...) is skipped; links are
// followed through Reroutes, bypassed nodes and subgraph boundaries; PrimitiveNode values are
// inlined; muted and frontend-only nodes disappear. Subgraph interiors get ids "<instance>:<inner>".
// Ids, class and input names come from the file: looked up and written as own keys only.
import type { ObjectInfo, ObjectInfoNode } from "./data-schemas.ts";
import { FRONTEND_ONLY } from "./node-resolve.ts";
import { getOwn, setOwn } from "./own-keys.ts";
import { ExpansionBudget, MAX_NESTING, checkJsonDepth } from "./workflow-limits.ts";
import { modeOf, toUiGraph, type ApiPrompt, type UiGraph, type UiLink, type UiNode, type UiSubgraph } from "./workflow-read.ts";

export interface ConvertIssue {
  node: string;
  classType?: string;
  message: string;
}
export interface ConvertResult {
  prompt: ApiPrompt;
  issues: ConvertIssue[];
}

const SCALAR_WIDGETS = new Set(["INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"]);
const CONTROL_VALUES = new Set(["fixed", "increment", "decrement", "randomize"]);
/** Custom frontend-only nodes that only carry a wire (KJNodes). */
const VIRTUAL_WIRES = new Set(["SetNode", "GetNode"]);

/** Input names that the frontend shows as widgets, in object_info order (required, then optional). */
export function widgetInputs(def: ObjectInfoNode): { name: string; control: boolean }[] {
  const out: { name: string; control: boolean }[] = [];
  for (const group of ["required", "optional"] as const) {
    const specs = def.input?.[group] ?? {};
    const order = def.input_order?.[group] ?? Object.keys(specs);
    for (const name of order) {
      const spec = getOwn(specs, name);
      if (!Array.isArray(spec)) continue;
      const [type, opts] = spec as [unknown, Record<string, unknown> | undefined];
      const o = opts ?? {};
      const isWidget = Array.isArray(type) || (typeof type === "string" && SCALAR_WIDGETS.has(type) && !o.forceInput);
      if (!isWidget) continue;
      // Seeds get a companion "control after generate" widget whose value sits right after.
      const control =
        o.control_after_generate === true ||
        ((name === "seed" || name === "noise_seed") && type === "INT" && o.control_after_generate !== false);
      out.push({ name, control });
    }
  }
  return out;
}

/** A resolved source for an input: a link into the prompt, a constant, or nothing. */
type Src = { link: [string, number] } | { value: unknown } | undefined;

/** One hop of link following: the answer, or where to look next. */
type Hop = { src: Src } | { next: { scope: Scope; id: string; slot: number } };

interface Scope {
  prefix: string;
  nodes: Map<string, UiNode>;
  linksById: Map<number, UiLink>;
  /** For a subgraph interior: the instance node and the scope it lives in. */
  parent?: { scope: Scope; instance: UiNode; def: UiSubgraph };
  depth: number;
  /** KJNodes SetNode by the name it carries; built on first use. */
  setNodes?: Map<unknown, UiNode>;
}

export interface ConvertOptions {
  /** The workflow's file, named in errors. */
  file?: string;
}

/**
 * Convert; a workflow whose subgraphs expand past MAX_EXPANDED_NODES, or whose JSON nests past
 * MAX_JSON_DEPTH, throws a WorkflowReadError naming `opts.file`.
 */
export function convertUiToApi(workflow: unknown, objectInfo: ObjectInfo, opts: ConvertOptions = {}): ConvertResult {
  const file = opts.file ?? "<workflow>";
  checkJsonDepth(workflow, file);
  const g: UiGraph = toUiGraph(workflow as Record<string, unknown>);
  const budget = new ExpansionBudget(file);
  const prompt: ApiPrompt = {};
  const issues: ConvertIssue[] = [];

  const mkScope = (nodes: UiNode[], links: UiLink[], prefix: string, depth: number, parent?: Scope["parent"]): Scope => ({
    prefix,
    nodes: new Map(nodes.map((n) => [String(n.id), n])),
    linksById: new Map(links.map((l) => [l.id, l])),
    parent,
    depth,
  });

  const viaLink = (scope: Scope, linkId: number | null | undefined): Hop => {
    const l = linkId == null ? undefined : scope.linksById.get(linkId);
    return l ? { next: { scope, id: String(l.origin_id), slot: l.origin_slot } } : { src: undefined };
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
  /** One hop back from output `slot` of node `id` in `scope`. */
  const hop = (scope: Scope, id: string, slot: number): Hop => {
    if (id === "-10") {
      // Subgraph input: continue outside, at the instance's input of the same position.
      const p = scope.parent;
      if (!p) return { src: undefined };
      const name = p.def.inputs[slot]?.name;
      const inp = p.instance.inputs?.find((i) => i.name === name) ?? p.instance.inputs?.[slot];
      return viaLink(p.scope, inp?.link);
    }
    const n = scope.nodes.get(id);
    if (!n) return { src: undefined };
    const mode = modeOf(n.mode);
    if (mode === "muted") return { src: undefined };
    if (n.type === "GetNode") {
      // KJNodes' Set/Get pair is a virtual wire: Get reads what the Set of the same name receives.
      const name = Array.isArray(n.widgets_values) ? n.widgets_values[0] : undefined;
      return viaLink(scope, setNodeOf(scope, name)?.inputs?.[0]?.link);
    }
    if (n.type === "PrimitiveNode") return { src: Array.isArray(n.widgets_values) ? { value: n.widgets_values[0] } : undefined };
    if (n.type === "Reroute" || mode === "bypassed") {
      // A bypassed node passes through its first input whose type matches the output's type.
      const outType = n.outputs?.[slot]?.type;
      const ins = n.inputs ?? [];
      const pass =
        n.type === "Reroute"
          ? ins[0]
          : (ins.find((i, k) => k === slot && i.type === outType && i.link != null) ??
            ins.find((i) => i.type === outType && i.link != null));
      return viaLink(scope, pass?.link);
    }
    const sg = g.subgraphs.get(n.type);
    if (sg) {
      if (scope.depth >= MAX_NESTING) return { src: undefined };
      const inner = innerScope(scope, n, sg);
      const l = sg.links.find((k) => String(k.target_id) === "-20" && k.target_slot === slot);
      return l ? { next: { scope: inner, id: String(l.origin_id), slot: l.origin_slot } } : { src: undefined };
    }
    if (FRONTEND_ONLY.has(n.type)) return { src: undefined };
    return { src: { link: [scope.prefix + id, slot] } };
  };
  // Every node on a followed path resolves to the path's end: remembered, so that many inputs
  // reading one long chain cost the chain once.
  const resolved = new Map<string, Src>();
  /**
   * Where does output `slot` of node `id` in `scope` really come from? Hops are followed in a loop,
   * not by recursion: a file can chain 10^5 Reroutes.
   */
  const resolveOutput = (scope: Scope, id: string, slot: number): Src => {
    const path: string[] = [];
    const onPath = new Set<string>();
    let src: Src;
    for (;;) {
      const tag = `${scope.prefix}${id}#${slot}`;
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
      const h = hop(scope, id, slot);
      if ("src" in h) {
        src = h.src;
        break;
      }
      ({ scope, id, slot } = h.next);
    }
    for (const t of path) resolved.set(t, src);
    return src;
  };
  const resolveLink = (scope: Scope, linkId: number): Src => {
    const h = viaLink(scope, linkId);
    return "src" in h ? h.src : resolveOutput(h.next.scope, h.next.id, h.next.slot);
  };
  const innerCache = new Map<string, Scope>();
  const innerScope = (scope: Scope, inst: UiNode, sg: UiSubgraph): Scope => {
    const prefix = `${scope.prefix}${inst.id}:`;
    let s = innerCache.get(prefix);
    if (!s) {
      budget.take(sg.nodes.length, `${scope.prefix}${inst.id}`);
      s = mkScope(sg.nodes, sg.links, prefix, scope.depth + 1, { scope, instance: inst, def: sg });
      innerCache.set(prefix, s);
    }
    return s;
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
          issues.push({ node: key, message: `subgraph ${sg.id} ${why}; not expanded` });
          continue;
        }
        emit(innerScope(scope, n, sg), [...stack, sg.id]);
        continue;
      }
      if (FRONTEND_ONLY.has(n.type) || VIRTUAL_WIRES.has(n.type)) continue;
      const def = getOwn(objectInfo, n.type);
      const inputs: Record<string, unknown> = {};
      if (!def) {
        issues.push({
          node: key,
          classType: n.type,
          message:
            `class ${n.type} is not in object_info: widget values cannot be named ` +
            `(missing custom node, or a subgraph the file does not define)`,
        });
      } else {
        const wv = n.widgets_values;
        if (Array.isArray(wv)) {
          let i = 0;
          for (const w of widgetInputs(def)) {
            if (i >= wv.length) break;
            setOwn(inputs, w.name, wv[i++]);
            if (w.control && typeof wv[i] === "string" && CONTROL_VALUES.has(wv[i] as string)) i++;
          }
        } else if (wv && typeof wv === "object") {
          // Some packs store widgets by name.
          for (const w of widgetInputs(def)) if (Object.hasOwn(wv, w.name)) setOwn(inputs, w.name, (wv as Record<string, unknown>)[w.name]);
        }
      }
      for (const inp of n.inputs ?? []) {
        if (inp.link == null) continue;
        const src = resolveLink(scope, inp.link);
        const name = inp.widget?.name ?? inp.name;
        if (!src) {
          // Source muted or missing: a widget keeps its own value, a plain input is left out.
          if (!inp.widget) delete inputs[name];
          continue;
        }
        setOwn(inputs, name, "link" in src ? src.link : src.value);
      }
      setOwn<ApiPrompt[string]>(prompt, key, { inputs, class_type: n.type, _meta: { title: n.title ?? def?.display_name ?? n.type } });
    }
  };
  emit(mkScope(g.nodes, g.links, "", 0), []);
  // Links that point at nodes we dropped (muted, missing) would make ComfyUI refuse the prompt.
  for (const [key, node] of Object.entries(prompt)) {
    for (const [name, v] of Object.entries(node.inputs)) {
      if (Array.isArray(v) && v.length === 2 && typeof v[0] === "string" && typeof v[1] === "number" && !Object.hasOwn(prompt, v[0])) {
        delete node.inputs[name];
        issues.push({ node: key, classType: node.class_type, message: `input ${name} linked to dropped node ${v[0]}` });
      }
    }
  }
  return { prompt, issues };
}

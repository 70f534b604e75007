// UI format -> API format (what comfyui-api and POST /prompt take), given an object_info.
// Widget values map to the object_info's widget inputs in input_order; the value the frontend
// stores after a seed (control_after_generate: fixed/increment/...) is skipped; links are
// followed through Reroutes, bypassed nodes and subgraph boundaries; PrimitiveNode values are
// inlined; muted and frontend-only nodes disappear. Subgraph interiors get ids "<instance>:<inner>".
import type { ObjectInfo, ObjectInfoNode } from "./data-schemas.ts";
import { FRONTEND_ONLY } from "./node-resolve.ts";
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
const MAX_DEPTH = 32;
/** Custom frontend-only nodes that only carry a wire (KJNodes). */
const VIRTUAL_WIRES = new Set(["SetNode", "GetNode"]);

/** Input names that the frontend shows as widgets, in object_info order (required, then optional). */
export function widgetInputs(def: ObjectInfoNode): { name: string; control: boolean }[] {
  const out: { name: string; control: boolean }[] = [];
  for (const group of ["required", "optional"] as const) {
    const specs = def.input?.[group] ?? {};
    const order = def.input_order?.[group] ?? Object.keys(specs);
    for (const name of order) {
      const spec = specs[name];
      if (!Array.isArray(spec)) continue;
      const [type, opts] = spec as [unknown, Record<string, unknown> | undefined];
      const o = opts ?? {};
      const isWidget = Array.isArray(type) || (typeof type === "string" && SCALAR_WIDGETS.has(type) && !o.forceInput);
      if (!isWidget) continue;
      // Seeds get a companion "control after generate" widget whose value sits right after.
      const control = o.control_after_generate === true || ((name === "seed" || name === "noise_seed") && type === "INT" && o.control_after_generate !== false);
      out.push({ name, control });
    }
  }
  return out;
}

/** A resolved source for an input: a link into the prompt, a constant, or nothing. */
type Src = { link: [string, number] } | { value: unknown } | undefined;

interface Scope {
  prefix: string;
  nodes: Map<string, UiNode>;
  linksById: Map<number, UiLink>;
  /** For a subgraph interior: the instance node and the scope it lives in. */
  parent?: { scope: Scope; instance: UiNode; def: UiSubgraph };
  depth: number;
}

export function convertUiToApi(workflow: unknown, objectInfo: ObjectInfo): ConvertResult {
  const g: UiGraph = toUiGraph(workflow as Record<string, unknown>);
  const prompt: ApiPrompt = {};
  const issues: ConvertIssue[] = [];

  const mkScope = (nodes: UiNode[], links: UiLink[], prefix: string, depth: number, parent?: Scope["parent"]): Scope => ({
    prefix,
    nodes: new Map(nodes.map((n) => [String(n.id), n])),
    linksById: new Map(links.map((l) => [l.id, l])),
    parent,
    depth,
  });

  /** Where does output `slot` of node `id` in `scope` really come from? */
  const resolveOutput = (scope: Scope, id: string, slot: number, seen: Set<string>): Src => {
    const tag = `${scope.prefix}${id}#${slot}`;
    if (seen.has(tag)) return undefined; // cycle through reroutes/bypasses
    seen.add(tag);
    if (id === "-10") {
      // Subgraph input: continue outside, at the instance's input of the same position.
      const p = scope.parent;
      if (!p) return undefined;
      const name = p.def.inputs[slot]?.name;
      const inp = p.instance.inputs?.find((i) => i.name === name) ?? p.instance.inputs?.[slot];
      if (inp?.link == null) return undefined;
      return resolveLink(p.scope, inp.link, seen);
    }
    const n = scope.nodes.get(id);
    if (!n) return undefined;
    const mode = modeOf(n.mode);
    if (mode === "muted") return undefined;
    if (n.type === "GetNode") {
      // KJNodes' Set/Get pair is a virtual wire: Get reads what the Set of the same name receives.
      const name = Array.isArray(n.widgets_values) ? n.widgets_values[0] : undefined;
      const set = [...scope.nodes.values()].find((m) => m.type === "SetNode" && Array.isArray(m.widgets_values) && m.widgets_values[0] === name);
      const l = set?.inputs?.[0]?.link;
      return l == null ? undefined : resolveLink(scope, l, seen);
    }
    if (n.type === "PrimitiveNode") return Array.isArray(n.widgets_values) ? { value: n.widgets_values[0] } : undefined;
    if (n.type === "Reroute" || mode === "bypassed") {
      // A bypassed node passes through its first input whose type matches the output's type.
      const outType = n.outputs?.[slot]?.type;
      const ins = n.inputs ?? [];
      const pass =
        n.type === "Reroute"
          ? ins[0]
          : (ins.find((i, k) => k === slot && i.type === outType && i.link != null) ?? ins.find((i) => i.type === outType && i.link != null));
      if (pass?.link == null) return undefined;
      return resolveLink(scope, pass.link, seen);
    }
    const sg = g.subgraphs.get(n.type);
    if (sg) {
      if (scope.depth >= MAX_DEPTH) return undefined;
      const inner = innerScope(scope, n, sg);
      const l = sg.links.find((k) => String(k.target_id) === "-20" && k.target_slot === slot);
      if (!l) return undefined;
      return resolveOutput(inner, String(l.origin_id), l.origin_slot, seen);
    }
    if (FRONTEND_ONLY.has(n.type)) return undefined;
    return { link: [scope.prefix + id, slot] };
  };
  const resolveLink = (scope: Scope, linkId: number, seen: Set<string>): Src => {
    const l = scope.linksById.get(linkId);
    if (!l) return undefined;
    return resolveOutput(scope, String(l.origin_id), l.origin_slot, seen);
  };
  const innerCache = new Map<string, Scope>();
  const innerScope = (scope: Scope, inst: UiNode, sg: UiSubgraph): Scope => {
    const prefix = `${scope.prefix}${inst.id}:`;
    let s = innerCache.get(prefix);
    if (!s) {
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
        if (stack.includes(sg.id) || scope.depth >= MAX_DEPTH) {
          issues.push({ node: key, message: `subgraph ${sg.id} nests itself; not expanded` });
          continue;
        }
        emit(innerScope(scope, n, sg), [...stack, sg.id]);
        continue;
      }
      if (FRONTEND_ONLY.has(n.type) || VIRTUAL_WIRES.has(n.type)) continue;
      const def = objectInfo[n.type];
      const inputs: Record<string, unknown> = {};
      if (!def) {
        issues.push({ node: key, classType: n.type, message: `class ${n.type} is not in object_info: widget values cannot be named (missing custom node, or a subgraph the file does not define)` });
      } else {
        const wv = n.widgets_values;
        if (Array.isArray(wv)) {
          let i = 0;
          for (const w of widgetInputs(def)) {
            if (i >= wv.length) break;
            inputs[w.name] = wv[i++];
            if (w.control && typeof wv[i] === "string" && CONTROL_VALUES.has(wv[i] as string)) i++;
          }
        } else if (wv && typeof wv === "object") {
          // Some packs store widgets by name.
          for (const w of widgetInputs(def)) if (w.name in wv) inputs[w.name] = (wv as Record<string, unknown>)[w.name];
        }
      }
      for (const inp of n.inputs ?? []) {
        if (inp.link == null) continue;
        const src = resolveLink(scope, inp.link, new Set());
        const name = inp.widget?.name ?? inp.name;
        if (!src) {
          // Source muted or missing: a widget keeps its own value, a plain input is left out.
          if (!inp.widget) delete inputs[name];
          continue;
        }
        inputs[name] = "link" in src ? src.link : src.value;
      }
      prompt[key] = { inputs, class_type: n.type, _meta: { title: n.title ?? def?.display_name ?? n.type } };
    }
  };
  emit(mkScope(g.nodes, g.links, "", 0), []);
  // Links that point at nodes we dropped (muted, missing) would make ComfyUI refuse the prompt.
  for (const [key, node] of Object.entries(prompt)) {
    for (const [name, v] of Object.entries(node.inputs)) {
      if (Array.isArray(v) && v.length === 2 && typeof v[0] === "string" && typeof v[1] === "number" && !(v[0] in prompt)) {
        delete node.inputs[name];
        issues.push({ node: key, classType: node.class_type, message: `input ${name} linked to dropped node ${v[0]}` });
      }
    }
  }
  return { prompt, issues };
}

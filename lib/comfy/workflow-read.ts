// Read a ComfyUI workflow (UI format, API format, or a PNG carrying either) into one model:
// a flat list of every node that can run, subgraph and group-node interiors included,
// each with the mode it effectively runs in. Pure: the caller passes bytes or parsed JSON.
import { inflateSync } from "node:zlib";
import { getOwn, setOwn } from "./own-keys.ts";
import { WorkflowReadError } from "./workflow-error.ts";
import { ExpansionBudget, MAX_NESTING, checkJsonDepth } from "./workflow-limits.ts";

export { WorkflowReadError };

export type NodeMode = "active" | "muted" | "bypassed";

export interface UiLink {
  id: number;
  origin_id: number | string;
  origin_slot: number;
  target_id: number | string;
  target_slot: number;
  type?: unknown;
}

export interface UiNodeInput {
  name: string;
  type?: unknown;
  link?: number | null;
  widget?: { name: string } | null;
}
export interface UiNodeOutput {
  name?: string;
  type?: unknown;
  links?: number[] | null;
}
export interface UiNode {
  id: number | string;
  type: string;
  mode?: number;
  title?: string;
  properties?: Record<string, unknown>;
  widgets_values?: unknown[] | Record<string, unknown> | null;
  inputs?: UiNodeInput[];
  outputs?: UiNodeOutput[];
}
export interface UiSubgraph {
  id: string;
  name?: string;
  inputs: { name: string; type?: unknown; linkIds?: number[] }[];
  outputs: { name: string; type?: unknown; linkIds?: number[] }[];
  nodes: UiNode[];
  links: UiLink[];
}
export interface UiGraph {
  nodes: UiNode[];
  links: UiLink[];
  subgraphs: Map<string, UiSubgraph>;
  /** extra.groupNodes by name (a Map: names come from the file, "constructor" included). */
  groupNodes: Map<string, { nodes: UiNode[]; links?: unknown[] }>;
  extra: Record<string, unknown>;
}
export type ApiPrompt = Record<string, { class_type: string; inputs: Record<string, unknown>; _meta?: { title?: string } }>;

/** One node of the workflow, wherever it sits. */
export interface FlatNode {
  /** Unique path: "12", or "10:3" for node 3 inside subgraph instance 10 (ComfyUI's own convention). */
  key: string;
  type: string;
  /** The node's own mode. */
  mode: NodeMode;
  /** Muted or bypassed when the node or any container around it is. */
  effectiveMode: NodeMode;
  /** "top", "subgraph:<name>" or "group:<name>". */
  where: string;
  properties: Record<string, unknown>;
  /** UI format: widgets_values (array, or object for some packs). */
  widgets?: unknown[] | Record<string, unknown>;
  /** API format: the inputs object. */
  apiInputs?: Record<string, unknown>;
  title?: string;
}

export interface Workflow {
  file: string;
  format: "ui" | "api";
  nodes: FlatNode[];
  ui?: UiGraph;
  api?: ApiPrompt;
  /** extra.node_versions: pack name -> version, a hint of which packs the author had. */
  nodeVersions: Record<string, string>;
  /** Things that are odd but not fatal (unknown subgraph id, a container that contains itself). */
  warnings: string[];
}

const EXPECTED =
  'expected a ComfyUI workflow: UI format ({nodes, links}), API format ({"<id>": {class_type, inputs}}), ' +
  "or a PNG with a 'workflow' or 'prompt' text chunk";

export const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Group nodes (legacy) are typed "workflow>name" (older frontends: "workflow/name"). */
export const GROUP_NODE_RE = /^workflow[>/](.+)$/;

export function modeOf(mode: unknown): NodeMode {
  if (mode === 2) return "muted";
  if (mode === 4) return "bypassed";
  return "active";
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** Normalise a link: arrays at the top level, objects inside subgraphs (and newer top levels). */
export function normLink(l: unknown): UiLink | undefined {
  if (Array.isArray(l) && l.length >= 5) {
    return {
      id: Number(l[0]),
      origin_id: l[1] as number,
      origin_slot: Number(l[2]),
      target_id: l[3] as number,
      target_slot: Number(l[4]),
      type: l[5],
    };
  }
  if (isObj(l) && Object.hasOwn(l, "origin_id") && Object.hasOwn(l, "target_id")) {
    return {
      id: Number(l.id),
      origin_id: l.origin_id as number,
      origin_slot: Number(l.origin_slot),
      target_id: l.target_id as number,
      target_slot: Number(l.target_slot),
      type: l.type,
    };
  }
  return undefined;
}

function normNodes(v: unknown): UiNode[] {
  if (!Array.isArray(v)) return [];
  return v.filter((n): n is UiNode => isObj(n) && typeof n.type === "string" && (typeof n.id === "number" || typeof n.id === "string"));
}
function normLinks(v: unknown): UiLink[] {
  if (!Array.isArray(v)) return [];
  return v.map(normLink).filter((l): l is UiLink => !!l);
}

/** Collect subgraph definitions at any depth (definitions may themselves carry definitions). */
function collectSubgraphs(def: unknown, out: Map<string, UiSubgraph>, depth = 0): void {
  if (!isObj(def) || depth > MAX_NESTING) return;
  const list = (def as { subgraphs?: unknown }).subgraphs;
  if (!Array.isArray(list)) return;
  for (const sg of list) {
    if (!isObj(sg) || typeof sg.id !== "string") continue;
    out.set(sg.id, {
      id: sg.id,
      name: typeof sg.name === "string" ? sg.name : undefined,
      inputs: Array.isArray(sg.inputs) ? (sg.inputs as UiSubgraph["inputs"]) : [],
      outputs: Array.isArray(sg.outputs) ? (sg.outputs as UiSubgraph["outputs"]) : [],
      nodes: normNodes(sg.nodes),
      links: normLinks(sg.links),
    });
    collectSubgraphs(sg.definitions, out, depth + 1);
  }
}

export function isUiFormat(j: unknown): boolean {
  return isObj(j) && Array.isArray(j.nodes);
}
export function isApiFormat(j: unknown): boolean {
  if (!isObj(j)) return false;
  const vals = Object.values(j);
  return vals.length > 0 && vals.every((v) => isObj(v) && typeof v.class_type === "string");
}

/** Parse UI-format JSON into a UiGraph. */
export function toUiGraph(j: Record<string, unknown>): UiGraph {
  const subgraphs = new Map<string, UiSubgraph>();
  collectSubgraphs(j.definitions, subgraphs);
  const extra = isObj(j.extra) ? j.extra : {};
  const groupNodes: UiGraph["groupNodes"] = new Map();
  if (isObj(extra.groupNodes)) {
    for (const [name, g] of Object.entries(extra.groupNodes)) {
      if (isObj(g)) groupNodes.set(name, { nodes: normNodes(g.nodes), links: Array.isArray(g.links) ? g.links : [] });
    }
  }
  return { nodes: normNodes(j.nodes), links: normLinks(j.links), subgraphs, groupNodes, extra };
}

/**
 * Flatten a UI graph: every node, subgraph interiors expanded per instance, group nodes expanded.
 * Expanded nodes are counted against `budget`, which throws past its limit.
 */
export function flattenUi(g: UiGraph, warnings: string[] = [], budget = new ExpansionBudget("<workflow>")): FlatNode[] {
  const out: FlatNode[] = [];
  // `path`: the containers around the current level, as "sg:<id>" / "group:<name>" (kinds apart: names may clash).
  const walk = (nodes: UiNode[], prefix: string, where: string, outer: NodeMode, path: string[]) => {
    for (const n of nodes) {
      const own = modeOf(n.mode);
      const eff: NodeMode = outer !== "active" ? outer : own;
      const key = prefix + String(n.id);
      const props = isObj(n.properties) ? n.properties : {};
      const sg = g.subgraphs.get(n.type);
      const groupName = sg ? undefined : GROUP_NODE_RE.exec(n.type)?.[1];
      const grp = groupName === undefined ? undefined : g.groupNodes.get(groupName);
      if (sg || grp) {
        const kind = sg ? "subgraph" : "group node";
        const tag = sg ? `sg:${sg.id}` : `group:${groupName}`;
        const at = path.indexOf(tag);
        if (at >= 0) {
          const ring = [...path.slice(at), tag].map((t) => t.slice(t.indexOf(":") + 1));
          warnings.push(`${kind} ${ring[0]} nests itself (cycle: ${ring.join(" > ")}) at node ${key}; not expanded further`);
          continue;
        }
        if (path.length >= MAX_NESTING) {
          warnings.push(`subgraphs and group nodes nested more than ${MAX_NESTING} deep at node ${key}; not expanded further`);
          continue;
        }
        const inner = sg ? sg.nodes : grp!.nodes.map((gn, i) => ({ ...gn, id: i }));
        budget.take(inner.length, key);
        walk(inner, key + ":", sg ? `subgraph:${sg.name ?? sg.id}` : `group:${groupName}`, eff, [...path, tag]);
        continue;
      }
      if (UUID_RE.test(n.type)) warnings.push(`node ${key} is an instance of subgraph ${n.type}, which the file does not define`);
      out.push({
        key,
        type: n.type,
        mode: own,
        effectiveMode: eff,
        where,
        properties: props,
        widgets: Array.isArray(n.widgets_values) || isObj(n.widgets_values) ? n.widgets_values : undefined,
        title: typeof n.title === "string" ? n.title : undefined,
      });
    }
  };
  walk(g.nodes, "", "top", "active", []);
  return out;
}

function fromJson(j: unknown, file: string): Workflow {
  if (isUiFormat(j)) {
    const ui = toUiGraph(j as Record<string, unknown>);
    const warnings: string[] = [];
    const nodes = flattenUi(ui, warnings, new ExpansionBudget(file));
    const nv = ui.extra.node_versions;
    const nodeVersions: Record<string, string> = {};
    if (isObj(nv)) for (const [k, v] of Object.entries(nv)) if (typeof v === "string") setOwn(nodeVersions, k, v);
    return { file, format: "ui", nodes, ui, nodeVersions, warnings };
  }
  if (isApiFormat(j)) {
    const api = j as ApiPrompt;
    const nodes: FlatNode[] = Object.entries(api).map(([id, n]) => ({
      key: id,
      type: n.class_type,
      mode: "active",
      effectiveMode: "active",
      where: "top",
      properties: {},
      apiInputs: isObj(n.inputs) ? n.inputs : {},
      title: n._meta?.title,
    }));
    return { file, format: "api", nodes, api, nodeVersions: {}, warnings: [] };
  }
  // A few tools wrap the prompt: {prompt: {...}} or {workflow: {...}}.
  if (isObj(j) && (isApiFormat(j.prompt) || isUiFormat(j.workflow))) return fromJson(isUiFormat(j.workflow) ? j.workflow : j.prompt, file);
  throw new WorkflowReadError(file, EXPECTED);
}

const PNG_SIG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** Text chunks (tEXt, iTXt, zTXt) of a PNG: keyword -> text. */
export function pngTextChunks(buf: Buffer, file = "<png>"): Record<string, string> {
  if (buf.length < 8 || !buf.subarray(0, 8).equals(PNG_SIG)) throw new WorkflowReadError(file, "not a PNG file");
  const out: Record<string, string> = {};
  let p = 8;
  while (p + 8 <= buf.length) {
    const len = buf.readUInt32BE(p);
    const type = buf.toString("latin1", p + 4, p + 8);
    const start = p + 8;
    const end = start + len;
    if (end > buf.length) break; // truncated file: keep what we have
    const data = buf.subarray(start, end);
    try {
      if (type === "tEXt") {
        const z = data.indexOf(0);
        if (z > 0) setOwn(out, data.toString("latin1", 0, z), data.toString("latin1", z + 1));
      } else if (type === "zTXt") {
        const z = data.indexOf(0);
        if (z > 0) setOwn(out, data.toString("latin1", 0, z), inflateSync(data.subarray(z + 2)).toString("latin1"));
      } else if (type === "iTXt") {
        const z = data.indexOf(0);
        const compressed = data[z + 1] === 1;
        const langEnd = data.indexOf(0, z + 3);
        const transEnd = data.indexOf(0, langEnd + 1);
        if (z > 0 && langEnd > 0 && transEnd > 0) {
          const body = data.subarray(transEnd + 1);
          setOwn(out, data.toString("latin1", 0, z), (compressed ? inflateSync(body) : body).toString("utf8"));
        }
      }
    } catch {
      // A corrupt chunk is skipped; the caller reports if no workflow was found.
    }
    if (type === "IEND") break;
    p = end + 4; // skip CRC
  }
  return out;
}

/**
 * Read a workflow from bytes (JSON text or PNG), a string, or an already parsed object.
 * `file` is only used in error messages. JSON nested absurdly deep is refused here, once, so that
 * nothing downstream (nor the JSON.stringify that writes a conversion) meets it.
 */
export function readWorkflow(input: Buffer | string | unknown, file = "<workflow>"): Workflow {
  if (Buffer.isBuffer(input) && input.subarray(0, 8).equals(PNG_SIG)) {
    const chunks = pngTextChunks(input, file);
    // The UI workflow carries more (modes, properties.models) than the API prompt: prefer it.
    for (const key of ["workflow", "prompt"]) {
      const text = getOwn(chunks, key);
      if (text === undefined) continue;
      let j: unknown;
      try {
        j = JSON.parse(text);
      } catch {
        continue;
      }
      if (isUiFormat(j) || isApiFormat(j)) {
        checkJsonDepth(j, file);
        return fromJson(j, file);
      }
    }
    throw new WorkflowReadError(file, `PNG has no ComfyUI 'workflow' or 'prompt' text chunk; ${EXPECTED}`);
  }
  let j: unknown = input;
  if (Buffer.isBuffer(input) || typeof input === "string") {
    const text = Buffer.isBuffer(input) ? input.toString("utf8") : input;
    try {
      j = JSON.parse(text.replace(/^\uFEFF/, ""));
    } catch (e) {
      throw new WorkflowReadError(file, `not JSON (${(e as Error).message}); ${EXPECTED}`);
    }
  }
  checkJsonDepth(j, file);
  return fromJson(j, file);
}

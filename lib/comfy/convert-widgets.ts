// A node's widget values, as the frontend gives them to its widgets on load: by name where the file
// records names (dict-shaped widgets_values, widgets_values_named, or inputs[].widget.name covering
// every value), in order otherwise, skipping the slots that control widgets (control_after_generate,
// control_filter_list) and an upload button take. A widget the file has no value for starts at its
// default; a dynamic combo's chosen option adds its sub-widgets ("model.width") right after it.
// When values in order land on widgets of the wrong type (a widget added or removed in the middle),
// they are aligned by type instead, and that is said.
import { outsideOptions, plausible, widgetDefault, type InputDef, type NodeDef } from "./convert-defs.ts";
import type { UiNode } from "./workflow-read.ts";

export interface WidgetValue {
  name: string;
  inp: InputDef;
  value: unknown;
  /** file: read from the workflow; default: the file had none, the definition's default is used; none: no default either. */
  source: "file" | "default" | "none";
}
export interface WidgetNote {
  kind: "widget-dropped" | "realigned";
  message: string;
}
export interface NodeWidgets {
  values: WidgetValue[];
  notes: WidgetNote[];
}

const CONTROL_VALUES = new Set(["fixed", "increment", "decrement", "randomize", "increment-wrap"]);
/** Names of widgets that are UI only: never inputs, so never "dropped". */
const UI_WIDGETS = new Set(["upload", "control_after_generate", "control_filter_list"]);
/** Past this many value x widget pairs the type alignment is not tried (real nodes have a few dozen). */
const MAX_ALIGN_CELLS = 20_000;

type Slot = { inp: InputDef; name: string } | { upload: true };

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const show = (v: unknown) => {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 40 ? s.slice(0, 37) + "..." : s;
};

/** Values the frontend's UI-only widgets leave behind (an upload button's "image", an empty preview). */
const uiLeftover = (v: unknown) => v === null || v === "" || v === "image" || v === "video" || v === "audio" || v === "file";

/** The widgets in the order the frontend creates them: required, the upload button, optional. */
function staticSlots(def: NodeDef): Slot[] {
  const out: Slot[] = [];
  let uploadPlaced = !def.uploadSlot;
  for (const inp of def.inputs) {
    if (!uploadPlaced && inp.optional) {
      out.push({ upload: true });
      uploadPlaced = true;
    }
    if (inp.widget) out.push({ inp, name: inp.name });
  }
  if (!uploadPlaced) out.push({ upload: true });
  return out;
}

/** The sub-widgets a dynamic combo's value adds, named "<combo>.<sub>". */
function dynamicSlots(s: { inp: InputDef; name: string }, value: unknown): Slot[] {
  const subs = typeof value === "string" ? s.inp.dynamic?.get(value) : undefined;
  return (subs ?? []).filter((i) => i.widget).map((inp) => ({ inp, name: `${s.name}.${inp.name}` }));
}

/** A widget of the definition by its (possibly dotted) name, searching dynamic combos' options. */
function findWidget(def: NodeDef, name: string): InputDef | undefined {
  let level: InputDef[] = def.inputs;
  const parts = name.split(".");
  for (let k = 0; k < parts.length; k++) {
    const hit = level.find((i) => i.name === parts[k]);
    if (!hit) return undefined;
    if (k === parts.length - 1) return hit.widget ? hit : undefined;
    level = hit.dynamic ? [...hit.dynamic.values()].flat() : [];
  }
  return undefined;
}

/** After a widget's value at `i - 1`: how far its control widgets' slots reach (only when they hold control values). */
function skipControls(controlSlots: number, wv: readonly unknown[], i: number): number {
  if (controlSlots > 0 && i < wv.length && typeof wv[i] === "string" && CONTROL_VALUES.has(wv[i] as string)) {
    i++;
    if (controlSlots > 1 && i < wv.length && typeof wv[i] === "string") i++;
  }
  return i;
}

/** Walk the widgets (dynamic ones included as they appear) asking `take` for each value. */
function walk(
  def: NodeDef,
  take: (s: { inp: InputDef; name: string }) => { value: unknown; source: WidgetValue["source"] },
  onUpload = () => {},
) {
  const values: WidgetValue[] = [];
  const queue = staticSlots(def);
  for (let k = 0; k < queue.length; k++) {
    const s = queue[k]!;
    if ("upload" in s) {
      onUpload();
      continue;
    }
    const { value, source } = take(s);
    values.push({ name: s.name, inp: s.inp, value, source });
    if (s.inp.widget === "DYNAMIC_COMBO") queue.splice(k + 1, 0, ...dynamicSlots(s, value));
  }
  return values;
}

const fallback = (inp: InputDef): { value: unknown; source: WidgetValue["source"] } => {
  const d = widgetDefault(inp);
  return d === undefined ? { value: undefined, source: "none" } : { value: d, source: "default" };
};

/** By name: `named` holds the file's values; names the definition lacks are dropped, said so. */
function byName(def: NodeDef, named: Map<string, unknown>): NodeWidgets {
  const used = new Set<string>();
  const values = walk(def, (s) => {
    if (!named.has(s.name)) return fallback(s.inp);
    used.add(s.name);
    return { value: named.get(s.name), source: "file" };
  });
  const notes: WidgetNote[] = [];
  for (const [name, v] of named) {
    // UI state some packs keep beside their values (a video preview's settings) is an object, never a widget value
    if (used.has(name) || UI_WIDGETS.has(name) || isObj(v)) continue;
    notes.push({ kind: "widget-dropped", message: `widget ${name} (${show(v)}) is not in the definition: dropped` });
  }
  return { values, notes };
}

/** Names recorded in inputs[].widget.name, when they account for every value in order (else undefined). */
function recordedNames(def: NodeDef, node: UiNode, wv: readonly unknown[]): Map<string, unknown> | undefined {
  const names = (node.inputs ?? []).map((i) => i?.widget?.name).filter((n): n is string => typeof n === "string" && n !== "");
  if (!names.length) return undefined;
  // Older frontends record only the widgets converted to inputs, in the order converted: then the
  // names cover fewer values than the file has, or come in another order than the definition's.
  const order = new Map(staticSlots(def).flatMap((s, k) => ("upload" in s ? [] : [[s.name, k] as const])));
  const known = names.filter((n) => order.has(n)).map((n) => order.get(n)!);
  if (known.some((k, j) => j > 0 && k < known[j - 1]!)) return undefined;
  const named = new Map<string, unknown>();
  let i = 0;
  for (const name of names) {
    if (i >= wv.length) return undefined;
    named.set(name, wv[i++]);
    const w = findWidget(def, name);
    i = skipControls(w ? w.controlSlots : name === "seed" || name === "noise_seed" ? 1 : 0, wv, i);
  }
  return i === wv.length ? named : undefined;
}

/** In order, as the frontend assigns them; values past the last widget are returned too. */
function inOrder(def: NodeDef, wv: readonly unknown[]): { values: WidgetValue[]; rest: unknown[] } {
  let i = 0;
  const values = walk(
    def,
    (s) => {
      if (i >= wv.length) return fallback(s.inp);
      const value = wv[i++];
      i = skipControls(s.inp.controlSlots, wv, i);
      return { value, source: "file" };
    },
    () => {
      if (i < wv.length) i++;
    },
  );
  return { values, rest: wv.slice(i) };
}

const fits = (w: WidgetValue) => w.source !== "file" || plausible(w.inp, w.value);

/**
 * Align values to the static widgets by type: each widget takes the next value (free when it fits,
 * 2 when it does not), or its default (1); a value may be skipped (1). The cheapest alignment wins,
 * ties going to the frontend's own order.
 */
function byType(def: NodeDef, wv: readonly unknown[]): { values: WidgetValue[]; dropped: number[]; cost: number } | undefined {
  const slots = staticSlots(def);
  const m = slots.length;
  const n = wv.length;
  if ((m + 1) * (n + 1) > MAX_ALIGN_CELLS) return undefined;
  const W = n + 1;
  const cost = new Float64Array((m + 1) * W);
  const choice = new Uint8Array((m + 1) * W); // 0 take, 1 default / skip upload, 2 drop value
  for (let i = n; i >= 0; i--) cost[m * W + i] = i === n ? 0 : cost[m * W + i + 1]! + (uiLeftover(wv[i]) ? 0 : 1);
  for (let j = m - 1; j >= 0; j--) {
    const s = slots[j]!;
    for (let i = n; i >= 0; i--) {
      let best = Infinity;
      let pick = 1;
      if (i < n) {
        const next = "upload" in s ? i + 1 : skipControls(s.inp.controlSlots, wv, i + 1);
        const c = ("upload" in s ? 0 : plausible(s.inp, wv[i]) ? (outsideOptions(s.inp, wv[i]) ? 0.25 : 0) : 2) + cost[(j + 1) * W + next]!;
        if (c < best) [best, pick] = [c, 0];
      }
      const d = ("upload" in s ? 0.5 : 1) + cost[(j + 1) * W + i]!;
      if (d < best) [best, pick] = [d, 1];
      if (i < n) {
        const c = 1 + cost[j * W + i + 1]!;
        if (c < best) [best, pick] = [c, 2];
      }
      cost[j * W + i] = best;
      choice[j * W + i] = pick;
    }
  }
  const values: WidgetValue[] = [];
  const dropped: number[] = [];
  let [j, i] = [0, 0];
  while (j < m) {
    const s = slots[j]!;
    const pick = choice[j * W + i];
    if (pick === 2) {
      dropped.push(i++);
      continue;
    }
    if (pick === 0) {
      if (!("upload" in s)) values.push({ name: s.name, inp: s.inp, value: wv[i], source: "file" });
      i = "upload" in s ? i + 1 : skipControls(s.inp.controlSlots, wv, i + 1);
    } else if (!("upload" in s)) values.push({ name: s.name, inp: s.inp, ...fallback(s.inp) });
    j++;
  }
  for (; i < n; i++) if (!uiLeftover(wv[i])) dropped.push(i);
  return { values, dropped, cost: cost[0]! };
}

/** The node's widget values against its definition. */
export function nodeWidgets(def: NodeDef, node: UiNode): NodeWidgets {
  const wv = node.widgets_values;
  const namedField = (node as { widgets_values_named?: unknown }).widgets_values_named;
  if (isObj(wv)) return byName(def, new Map(Object.entries(wv)));
  if (isObj(namedField)) return byName(def, new Map(Object.entries(namedField)));
  if (!Array.isArray(wv)) return byName(def, new Map());
  const recorded = recordedNames(def, node, wv);
  if (recorded) return byName(def, recorded);

  const { values, rest } = inOrder(def, wv);
  const extra = rest.filter((v) => !uiLeftover(v));
  const misfits = values.filter((w) => !fits(w));
  if (misfits.length && !values.some((w) => w.inp.widget === "DYNAMIC_COMBO")) {
    const positional = 2 * misfits.length + values.filter((w) => w.source !== "file").length + extra.length;
    const typed = byType(def, wv);
    if (typed && typed.cost < positional) {
      const w = misfits[0]!;
      const notes: WidgetNote[] = [
        {
          kind: "realigned",
          message: `widgets_values do not fit the definition's widgets in order (${w.name} would get ${show(w.value)}): aligned by type`,
        },
        ...typed.dropped.map((k): WidgetNote => ({
          kind: "widget-dropped",
          message: `widgets_values[${k}] (${show(wv[k])}) fits no widget: dropped`,
        })),
      ];
      return { values: typed.values, notes };
    }
  }
  const notes: WidgetNote[] = extra.length
    ? [
        {
          kind: "widget-dropped",
          message: `${extra.length} value(s) past the definition's widgets (${extra.map(show).join(", ")}): dropped`,
        },
      ]
    : [];
  return { values, notes };
}

/** Widget inputs of a definition in widgets_values order, with whether a control value follows. */
export function staticWidgetNames(def: NodeDef): { name: string; control: boolean }[] {
  return def.inputs.filter((i) => i.widget).map((i) => ({ name: i.name, control: i.controlSlots > 0 }));
}

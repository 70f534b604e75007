// Crafted workflows from issue #10, generated rather than stored: each is small on disk and
// hostile in shape (exponential expansion, cycles, long chains, deep nesting, prototype names).

/** A subgraph id that is a valid UUID, one per level. */
export const sgId = (i: number) => `00000000-0000-4000-8000-${i.toString(16).padStart(12, "0")}`;

/**
 * `levels` subgraphs, each holding two instances of the next; the last holds one leaf node.
 * The top level has one instance of the first, so expanding it all yields 2^(levels-1) leaves.
 */
const LEAF = { type: "LoraLoader", widgets_values: ["leaf.safetensors", 1, 1] };
export function doublingSubgraphs(levels: number, leaf: Record<string, unknown> = LEAF) {
  const subgraphs = [];
  for (let i = 0; i < levels; i++) {
    const nodes =
      i < levels - 1
        ? [
            { id: 1, type: sgId(i + 1) },
            { id: 2, type: sgId(i + 1) },
          ]
        : [{ id: 1, ...leaf }];
    subgraphs.push({ id: sgId(i), name: `level${i}`, inputs: [], outputs: [], nodes, links: [] });
  }
  const nodes = [
    { id: 1, type: sgId(0) },
    { id: 2, type: "VAELoader", widgets_values: ["top.safetensors"] },
  ];
  return { nodes, links: [], definitions: { subgraphs } };
}

/**
 * The same bomb built from legacy group nodes ("workflow>gN" holding two "workflow>gN+1");
 * interior nodes carry id -1, as the frontend writes them.
 */
export function doublingGroupNodes(levels: number) {
  const groupNodes: Record<string, unknown> = {};
  for (let i = 0; i < levels; i++) {
    groupNodes[`g${i}`] = {
      nodes:
        i < levels - 1
          ? [
              { id: -1, index: 0, type: `workflow>g${i + 1}` },
              { id: -1, index: 1, type: `workflow/g${i + 1}` },
            ]
          : [{ id: -1, index: 0, type: "LoraLoader", widgets_values: ["leaf.safetensors", 1, 1] }],
      links: [],
    };
  }
  return { nodes: [{ id: 1, type: "workflow>g0" }], links: [], extra: { groupNodes } };
}

/** Group nodes that contain themselves through a ring of `ring` names (1: a group holding itself). */
export function groupNodeRing(ring: number) {
  const groupNodes: Record<string, unknown> = {};
  for (let i = 0; i < ring; i++) {
    // Both spellings of the type: "workflow>" (current) and "workflow/" (older frontends).
    const next = `workflow${i % 2 ? "/" : ">"}ring${(i + 1) % ring}`;
    const nodes = [
      { id: -1, index: 0, type: "LoraLoader", widgets_values: [`in-ring${i}.safetensors`, 1, 1] },
      { id: -1, index: 1, type: next },
    ];
    groupNodes[`ring${i}`] = { nodes, links: [] };
  }
  return {
    nodes: [
      { id: 1, type: "workflow>ring0" },
      { id: 2, type: "VAELoader", widgets_values: ["outside.safetensors"] },
    ],
    links: [],
    extra: { groupNodes },
  };
}

const link = (id: number, from: number, to: number, type = "IMAGE") => [id, from, 0, to, 0, type];

/**
 * A source (id 1), `n` Reroutes in a row (ids 2..n+1), an output (id n+2) reading the last one.
 * Converted, the output must read the source directly.
 */
export function rerouteChain(n: number) {
  const nodes: unknown[] = [{ id: 1, type: "Src", widgets_values: [7] }];
  const links: unknown[] = [];
  for (let i = 0; i < n; i++) {
    nodes.push({ id: i + 2, type: "Reroute", inputs: [{ name: "", type: "*", link: i + 1 }], outputs: [{ type: "*", links: [i + 2] }] });
    links.push(link(i + 1, i + 1, i + 2));
  }
  nodes.push({ id: n + 2, type: "Out", inputs: [{ name: "images", type: "IMAGE", link: n + 1 }] });
  links.push(link(n + 1, n + 1, n + 2));
  return { nodes, links };
}

/**
 * A chain of `n` hops that alternates a bypassed node and a KJNodes Set/Get pair (a virtual wire),
 * from a source (id 1) to an output; the other hop kinds than Reroute, same depth problem.
 */
export function bypassAndVirtualWireChain(n: number) {
  const nodes: unknown[] = [{ id: 1, type: "Src", widgets_values: [7] }];
  const links: unknown[] = [];
  let prev = 1;
  let id = 2;
  let linkId = 1;
  for (let i = 0; i < n; i++) {
    if (i % 2 === 0) {
      const l = linkId++;
      const inputs = [{ name: "image", type: "IMAGE", link: l }];
      nodes.push({ id, type: "Pass", mode: 4, widgets_values: ["x"], inputs, outputs: [{ type: "IMAGE" }] });
      links.push(link(l, prev, id));
      prev = id++;
    } else {
      const l = linkId++;
      nodes.push({ id, type: "SetNode", widgets_values: [`wire${i}`], inputs: [{ name: "IMAGE", type: "IMAGE", link: l }] });
      links.push(link(l, prev, id));
      id++;
      nodes.push({ id, type: "GetNode", widgets_values: [`wire${i}`], outputs: [{ type: "IMAGE" }] });
      prev = id++;
    }
  }
  const l = linkId++;
  nodes.push({ id, type: "Out", inputs: [{ name: "images", type: "IMAGE", link: l }] });
  links.push(link(l, prev, id));
  return { nodes, links, outId: String(id) };
}

/**
 * `n` top-level nodes of a loader the tables do not know, each naming a model file by extension
 * only (no folder): distinct files, or all the same file.
 */
export function manyModelNodes(n: number, distinct: boolean) {
  const file = (i: number) => (distinct ? `m${i}.safetensors` : "same.safetensors");
  const nodes = Array.from({ length: n }, (_, i) => ({ id: i + 1, type: "SomePackLoader", widgets_values: [file(i)] }));
  return { nodes, links: [] };
}

/** `[[[...]]]` nested `depth` levels, as canonical JSON text. */
export const deepArrayText = (depth: number) => "[".repeat(depth) + "]".repeat(depth);

/** `{"a":{"b":...}}`-style objects nested `depth` levels with keys written unsorted, and their canonical (sorted) text. */
export function deepObjectTexts(depth: number): { raw: string; canonical: string } {
  // Each level: {"z": <inner>, "a": 1}; canonical order puts "a" first.
  let raw = "null";
  let canonical = "null";
  for (let i = 0; i < depth; i++) {
    raw = `{"z":${raw},"a":${i}}`;
    canonical = `{"a":${i},"z":${canonical}}`;
  }
  return { raw, canonical };
}

/** A UI workflow (text) whose loader carries `deep` inside widgets_values. */
export const uiWithDeepWidget = (deep: string) =>
  `{"nodes":[{"id":1,"type":"LoraLoader","widgets_values":["a.safetensors",1,1,${deep}]},` +
  `{"id":2,"type":"Src","widgets_values":[${deep}]}],"links":[]}`;

/** An API workflow (text) whose node carries `deep` as an input. */
export const apiWithDeepInput = (deep: string) =>
  `{"1":{"class_type":"LoraLoader","inputs":{"lora_name":"a.safetensors","extra":${deep}}}}`;

/** Names that Object.prototype already has (or is): looked up in a plain `{}` they answer without being there. */
export const PROTO_NAMES = ["__proto__", "constructor", "toString", "hasOwnProperty"] as const;

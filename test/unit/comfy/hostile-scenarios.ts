// What bounded() runs in its worker: build a crafted workflow, push it through the pipeline the
// tasks use, answer a small summary (the worker must not send the monster back).
import { convertUiToApi } from "../../../lib/comfy/convert.ts";
import { parseExtensionNodeMap, parseObjectInfo } from "../../../lib/comfy/data-schemas.ts";
import { buildDepsReport, renderDepsText } from "../../../lib/comfy/deps-report.ts";
import { canonicalJson, lockWorkflow } from "../../../lib/comfy/lockfile.ts";
import { modelDeps } from "../../../lib/comfy/model-deps.ts";
import { buildIndex, resolveWorkflowNodes } from "../../../lib/comfy/node-resolve.ts";
import { readWorkflow } from "../../../lib/comfy/workflow-read.ts";
import { jsonShared } from "./shared-data.ts";
import {
  apiWithDeepInput,
  bypassAndVirtualWireChain,
  deepArrayText,
  deepObjectTexts,
  doublingGroupNodes,
  doublingSubgraphs,
  groupNodeRing,
  manyModelNodes,
  rerouteChain,
  uiWithDeepWidget,
} from "./hostile-workflows.ts";

const GEN: Record<string, (n: number) => string> = {
  doublingSubgraphs: (n) => JSON.stringify(doublingSubgraphs(n)),
  doublingSubgraphsConvertible: (n) => JSON.stringify(doublingSubgraphs(n, { type: "Src", widgets_values: [1] })),
  doublingGroupNodes: (n) => JSON.stringify(doublingGroupNodes(n)),
  groupNodeRing: (n) => JSON.stringify(groupNodeRing(n)),
  rerouteChain: (n) => JSON.stringify(rerouteChain(n)),
  bypassAndVirtualWireChain: (n) => JSON.stringify(bypassAndVirtualWireChain(n)),
  distinctModels: (n) => JSON.stringify(manyModelNodes(n, true)),
  sameModel: (n) => JSON.stringify(manyModelNodes(n, false)),
  deepUiArray: (n) => uiWithDeepWidget(deepArrayText(n)),
  deepUiObject: (n) => uiWithDeepWidget(deepObjectTexts(n).raw),
  deepApiArray: (n) => apiWithDeepInput(deepArrayText(n)),
};

export interface Args {
  gen: string;
  n: number;
  file: string;
}

const idx = buildIndex({
  extensionNodeMap: parseExtensionNodeMap({ "https://github.com/a/pack": [["Src", "Out", "Pass"], {}] }),
  coreClasses: new Set(["LoraLoader", "VAELoader"]),
});

/** workflow:deps' pipeline: read, resolve node types, model deps, the report (serialised, as --json does), the lock entry. */
export function deps({ gen, n, file }: Args) {
  const text = GEN[gen]!(n);
  const wf = readWorkflow(text, file);
  const nodes = resolveWorkflowNodes(wf, idx);
  const models = modelDeps(wf);
  const report = buildDepsReport(wf, nodes, models);
  const lock = lockWorkflow(JSON.parse(text), nodes, models.models);
  return {
    nodes: wf.nodes.length,
    warnings: wf.warnings,
    models: models.models.map((m) => `${m.folder ?? "?"}/${m.name}`),
    reportBytes: JSON.stringify(report).length,
    contentHash: lock.contentHash,
  };
}

/** workflow:deps' text output alone (no lock entry): read, resolve, model deps, the rendered tables. */
export function depsText({ gen, n, file }: Args) {
  const wf = readWorkflow(GEN[gen]!(n), file);
  const models = modelDeps(wf);
  const text = renderDepsText(buildDepsReport(wf, resolveWorkflowNodes(wf, idx), models));
  return { models: models.models.length, textLines: text.split("\n").length };
}

const oi = parseObjectInfo({
  Src: { input: { required: { n: ["INT", {}] } }, output: ["IMAGE"] },
  Pass: { input: { required: { image: ["IMAGE"], s: ["STRING", {}] } }, output: ["IMAGE"] },
  Out: { input: { required: { images: ["IMAGE"] } }, output: [], output_node: true },
  LoraLoader: {
    input: { required: { lora_name: [["a.safetensors"]], strength_model: ["FLOAT", {}], strength_clip: ["FLOAT", {}] } },
    output: ["MODEL"],
  },
  VAELoader: { input: { required: { vae_name: [["top.safetensors"]] } }, output: ["VAE"] },
});

/** workflow:convert's pipeline: convert, then the text the task writes. */
export function convert({ gen, n, file, out }: Args & { out?: string }) {
  const r = convertUiToApi(JSON.parse(GEN[gen]!(n)), oi, { file });
  const text = JSON.stringify(r.prompt, null, 2);
  return { nodes: Object.keys(r.prompt).length, bytes: text.length, issues: r.issues.slice(0, 5), out: out ? r.prompt[out] : undefined };
}

/** canonicalJson over deep data: the canonical text of what the generator wrote. */
export function canonical({ kind, n }: { kind: "array" | "object"; n: number }) {
  const { raw, canonical: want } = kind === "array" ? { raw: deepArrayText(n), canonical: deepArrayText(n) } : deepObjectTexts(n);
  const got = canonicalJson(JSON.parse(raw));
  return { equal: got === want, length: got.length };
}

/**
 * Node resolution against ComfyUI-Manager's real map: `n` distinct classes that two packs' name
 * patterns both claim (both end in "_jru"), with both packs already in use (aux_id), so that
 * "already used" cannot decide and every class goes through the tie-break's counting.
 */
export function resolveManyAmbiguous({ n }: { n: number }) {
  const map = parseExtensionNodeMap(jsonShared("comfyui-manager/extension-node-map.json"));
  const real = buildIndex({ extensionNodeMap: map, coreClasses: new Set() });
  const t = performance.now();
  const nodes: unknown[] = Array.from({ length: n }, (_, i) => ({ id: i + 1, type: `Crafted${i}_jru` }));
  nodes.push(
    { id: -1, type: "Mine1", properties: { aux_id: "jtrue/ComfyUI-JaRue" } },
    { id: -2, type: "Mine2", properties: { aux_id: "jtrue/ComfyUI-WordEmbeddings" } },
  );
  const res = resolveWorkflowNodes(readWorkflow({ nodes, links: [] }, "ambiguous.json"), real);
  const crafted = res.classes.filter((c) => c.classType.startsWith("Crafted"));
  return {
    ms: performance.now() - t,
    candidates: real.patterns.filter((p) => p.re.test("Crafted0_jru")).map((p) => p.repo),
    resolved: crafted.length,
    packs: [...new Set(crafted.map((c) => c.pack?.repo))],
    reasons: [...new Set(crafted.map((c) => c.reason))],
  };
}

/**
 * The deps of one workflow, as `workflow:deps --json` prints them and the models and nodes tiers
 * consume them. Shape (version 1; fields are only ever added):
 *
 * {
 *   "schema": "flow.workflow-deps/1",
 *   "file": "workflow_templates/x.json",
 *   "format": "ui" | "api",
 *   "packs": [{
 *     "repo": "https://github.com/owner/repo" | null,   // canonical GitHub URL
 *     "registryId": "comfyui-kjnodes" | null,           // Comfy Registry id
 *     "version": "1.0.5" | null,                        // registry version from the node's `ver`
 *     "commit": "<sha>" | null,                         // git commit from the node's `ver`
 *     "classes": ["SetNode", ...],                      // node types of the workflow it provides
 *     "how": "cnr_id" | "aux_id" | "extension-node-map" | "nodename_pattern" | "known-js-only",
 *     "runnersUp": ["https://github.com/..."],          // other packs claiming those classes
 *     "optional": false                                 // true: only muted/bypassed nodes use it
 *   }],
 *   "problems": [{ "classType": "X", "status": "unknown" | "comfyui-too-old", "reason": "..." }],
 *   "models": [{
 *     "name": "sub/file.safetensors",   // relative path inside the folder, already made safe
 *     "folder": "loras" | null,          // ComfyUI folder name; null when nothing says
 *     "url": "https://..." | null,
 *     "urlFrom": "workflow" | "user-map" | "model-list" | null,
 *     "source": {"kind":"huggingface","repo","revision","path"} | {"kind":"civitai","modelVersionId"} | {"kind":"url"} | null,
 *     "hash": {"type":"sha256","value":"..."} | null,
 *     "optional": false,
 *     "usedBy": [{"key":"10:3","type":"LoraLoader","input":"lora_name"}]
 *   }],
 *   "refused": [{ "node": "12", "value": "../../etc/passwd", "reason": "..." }],
 *   "warnings": ["..."]
 * }
 */
import { formatTable } from "../output/table.ts";
import type { ModelDep, RefusedName } from "./model-deps.ts";
import { missingSourceHint } from "./model-deps.ts";
import type { WorkflowResolution } from "./node-resolve.ts";
import type { Workflow } from "./workflow-read.ts";

export const DEPS_SCHEMA = "flow.workflow-deps/1";

export interface DepsReport {
  schema: typeof DEPS_SCHEMA;
  file: string;
  format: "ui" | "api";
  packs: {
    repo: string | null;
    registryId: string | null;
    version: string | null;
    commit: string | null;
    classes: string[];
    how: string;
    runnersUp: string[];
    optional: boolean;
  }[];
  problems: { classType: string; status: string; reason: string }[];
  models: {
    name: string;
    folder: string | null;
    url: string | null;
    urlFrom: string | null;
    source: ModelDep["source"] | null;
    hash: ModelDep["hash"] | null;
    optional: boolean;
    usedBy: ModelDep["usedBy"];
  }[];
  refused: RefusedName[];
  warnings: string[];
}

export function buildDepsReport(
  wf: Workflow,
  nodes: WorkflowResolution,
  models: { models: ModelDep[]; refused: RefusedName[] },
): DepsReport {
  const byClass = new Map(nodes.classes.map((c) => [c.classType, c]));
  return {
    schema: DEPS_SCHEMA,
    file: wf.file,
    format: wf.format,
    packs: nodes.packs.map((p) => {
      const cls = p.classes.map((c) => byClass.get(c)!);
      return {
        repo: p.pack.repo ?? null,
        registryId: p.pack.registryId ?? null,
        version: p.pack.version ?? null,
        commit: p.pack.commit ?? null,
        classes: [...p.classes].sort(),
        how: cls[0]?.how ?? "none",
        runnersUp: [...new Set(cls.flatMap((c) => c.runnersUp))].filter((r) => r !== p.pack.repo).sort(),
        optional: p.optional,
      };
    }),
    problems: nodes.classes
      .filter((c) => c.status === "unknown" || c.status === "comfyui-too-old")
      .map((c) => ({ classType: c.classType, status: c.status, reason: c.reason ?? c.status })),
    models: models.models.map((m) => ({
      name: m.name,
      folder: m.folder ?? null,
      url: m.url ?? null,
      urlFrom: m.urlFrom ?? null,
      source: m.source ?? null,
      hash: m.hash ?? null,
      optional: m.optional,
      usedBy: m.usedBy,
    })),
    refused: models.refused,
    warnings: wf.warnings,
  };
}

const table = (header: string[], rows: string[][]) => formatTable(header, rows, { rule: true });

const short = (s: string, n = 60) => (s.length > n ? s.slice(0, n - 1) + "…" : s);

/** Plain-text rendering: packs table, problems, models table, hints for models without a source. */
export function renderDepsText(r: DepsReport): string {
  const out: string[] = [`${r.file} (${r.format} format)`];
  if (r.packs.length)
    out.push(
      table(
        ["pack", "classes used", "source", "version"],
        r.packs.map((p) => [
          (p.repo ?? `registry:${p.registryId}`).replace(/^https:\/\/github\.com\//, "") + (p.optional ? " (optional)" : ""),
          short(p.classes.join(", "), 50),
          p.how,
          p.version ?? (p.commit ? p.commit.slice(0, 10) : "-"),
        ]),
      ),
    );
  else out.push("no custom node packs");
  for (const p of r.problems) out.push(`! ${p.classType}: ${p.reason}`);
  if (r.models.length)
    out.push(
      table(
        ["model", "folder", "source", "optional"],
        r.models.map((m) => [short(m.name, 50), m.folder ?? "?", m.url ? short(m.url, 70) : "(unknown)", m.optional ? "yes" : "no"]),
      ),
    );
  else out.push("no models");
  for (const m of r.models)
    if (!m.url)
      out.push(
        `! ${missingSourceHint({ name: m.name, folder: m.folder ?? undefined, optional: m.optional, usedBy: m.usedBy, found: [] })}`,
      );
  for (const f of r.refused) out.push(`! refused ${JSON.stringify(f.value)} (node ${f.node}): ${f.reason}`);
  for (const w of r.warnings) out.push(`warning: ${w}`);
  return out.join("\n") + "\n";
}

// workflow:deps: the node packs and model files each workflow needs, as text tables and as the
// flow.workflow-deps/1 data event. Local and read-only: one step per file, a bad file named and skipped.
import { resolve } from "node:path";
import type { TaskContext } from "../../lib/index.ts";
import { buildDepsReport, renderDepsText, DEPS_SCHEMA, type DepsReport } from "../../lib/comfy/deps-report.ts";
import { readWorkflowFile, workflowFiles } from "../shared/workflow-files.ts";
import { analyse, loadRef, resolveIndex } from "./analyse.ts";
import { staleWarnings } from "./stale.ts";
import type { DepsOptions } from "./index.ts";

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

const addSourceHint = (names: string[]) =>
  `${plural(names.length, "model has", "models have")} no known source ` +
  `(${names.slice(0, 5).join(", ")}${names.length > 5 ? ", ..." : ""}). ` +
  "Add each to the flowfile's models map, e.g.\n" +
  `  models: { ${JSON.stringify(names[0])}: "https://huggingface.co/<owner>/<repo>/resolve/main/<path>" }`;

export async function runDeps(ctx: TaskContext, o: DepsOptions, workflowsDir = "workflows"): Promise<void> {
  const t0 = performance.now();
  const files = workflowFiles(ctx.projectDir, o.file);
  // endpoints generated from these templates before they changed: what is deployed no longer matches them
  const named = o.file?.length ? files.map((f) => f.abs) : undefined;
  for (const w of staleWarnings(ctx.projectDir, resolve(ctx.projectDir, workflowsDir), named)) ctx.warn(w);
  const ref = await loadRef(ctx, o.offline);
  const index = await resolveIndex(ref, o.objectInfo);
  const tRef = performance.now();
  const reports: DepsReport[] = [];
  const errors: { file: string; error: string }[] = [];
  const noSource = new Set<string>();
  for (const f of files) {
    await ctx.step(f.name, async () => {
      try {
        const { wf, json } = await readWorkflowFile(f);
        const a = analyse(f.name, wf, json, index, ref, ctx.flow.models);
        const report = buildDepsReport(wf, a.nodes, a.models);
        reports.push(report);
        // plain lines for people; --json readers take the data event below and skip log lines
        ctx.log(renderDepsText(report).trimEnd());
        const missing = report.models.filter((m) => !m.url);
        for (const m of missing) noSource.add(m.name);
        const req = report.packs.filter((p) => !p.optional).length;
        return {
          status: "ok",
          note:
            `${plural(req, "pack")}, ${plural(report.models.length, "model")}` +
            (missing.length ? `, ${missing.length} without source` : "") +
            (report.problems.length ? `, ${plural(report.problems.length, "unresolved node type")}` : ""),
        };
      } catch (e) {
        // One bad file must not hide the others: report it, carry on, fail the run at the end.
        const msg = (e as Error).message;
        errors.push({ file: f.name, error: msg });
        return { status: "failed", note: msg };
      }
    });
  }
  if (noSource.size) ctx.log(addSourceHint([...noSource].sort()));
  const ms = (a: number, b: number) => Math.round(b - a);
  ctx.emit({
    deps: {
      schema: DEPS_SCHEMA,
      workflows: reports,
      errors,
      timings: { total: ms(t0, performance.now()), referenceData: ms(t0, tRef), workflows: ms(tRef, performance.now()) },
    },
  });
}

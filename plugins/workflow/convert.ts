// workflow:convert: a UI-format export to the API format comfyui-api needs. The node definitions
// come from the selected host's ComfyUI (a fact, asked there) or from a saved /object_info; the
// file is read, the conversion planned, and the API JSON written only when it differs.
import { readFile } from "node:fs/promises";
import { relative, resolve } from "node:path";
import { TaskError, type TaskContext } from "../../lib/index.ts";
import { readWorkflow, pngTextChunks, isUiFormat } from "../../lib/comfy/workflow-read.ts";
import { convertUiToApi } from "../../lib/comfy/convert.ts";
import { hostObjectInfo, readObjectInfoFile } from "./object-info.ts";
import { writeIfChanged } from "./local-file.ts";
import type { ConvertOptions } from "./index.ts";

/** The UI-format JSON of a workflow file (a PNG's embedded one too); refuses an API-format file. */
async function readUiWorkflow(ctx: TaskContext, file: string): Promise<unknown> {
  let ui: unknown;
  await ctx.step(`read ${file}`, async () => {
    const buf = await readFile(resolve(process.cwd(), file)).catch((e: NodeJS.ErrnoException) => {
      throw new TaskError(`${file}: cannot read (${e.code ?? e.message})`);
    });
    const wf = readWorkflow(buf, file); // refuses anything that is not a workflow, naming the file
    if (wf.format === "api") throw new TaskError(`${file} is already in API format`);
    const png = buf.subarray(0, 4).toString("latin1") === "\x89PNG";
    ui = png ? JSON.parse(pngTextChunks(buf, file).workflow!) : JSON.parse(buf.toString("utf8").replace(/^\uFEFF/, ""));
    if (!isUiFormat(ui)) throw new TaskError(`${file}: expected a UI-format workflow`);
    return { status: "ok", note: `${wf.nodes.length} nodes` };
  });
  return ui;
}

export async function runConvert(ctx: TaskContext, o: ConvertOptions): Promise<void> {
  const abs = resolve(process.cwd(), o.file);
  const ui = await readUiWorkflow(ctx, o.file);
  // the facts: node definitions from the saved file when given (the host is not asked), else the host's
  if (o.objectInfo && !ctx.host.local) ctx.log(`using ${o.objectInfo}; ${ctx.host.name}'s ComfyUI is not asked`);
  const oi = o.objectInfo ? await readObjectInfoFile(o.objectInfo) : await hostObjectInfo(ctx, o.comfyUrl);
  const out = o.output ? resolve(process.cwd(), o.output) : abs.replace(/(\.json|\.png)?$/i, ".api.json");
  await ctx.step(`convert -> ${relative(process.cwd(), out) || out}`, async () => {
    // the plan: the API prompt, and what could not be converted cleanly
    const r = convertUiToApi(ui, oi, { file: o.file });
    for (const i of r.issues) ctx.warn(`node ${i.node}${i.classType ? ` (${i.classType})` : ""}: ${i.message}`);
    const nodes = Object.keys(r.prompt).length;
    ctx.emit({ convert: { output: out, nodes, issues: r.issues } });
    const issues = r.issues.length ? `, ${r.issues.length} issue${r.issues.length === 1 ? "" : "s"}` : "";
    return writeIfChanged(out, JSON.stringify(r.prompt, null, 2) + "\n", ctx.dryRun, `${nodes} nodes${issues}`);
  });
}

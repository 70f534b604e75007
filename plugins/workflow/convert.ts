// workflow:convert: a UI-format export to the API format comfyui-api needs. The node definitions
// come from the selected host's ComfyUI (a fact, asked there) or from a saved /object_info; the
// file is read, the conversion planned, and the API JSON written only when it differs. Whatever the
// conversion had to guess is a warning per node (and in --json); --strict makes any guess fatal.
import { readFile } from "node:fs/promises";
import { relative, resolve } from "node:path";
import { TaskError, type TaskContext } from "../../lib/index.ts";
import { readWorkflow, pngTextChunks, isUiFormat } from "../../lib/comfy/workflow-read.ts";
import { convertUiToApi } from "../../lib/comfy/convert.ts";
import { objectInfoCommand, objectInfoUrl } from "./object-info.ts";
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

/**
 * /object_info as JSON, each definition left for the conversion to read on its own: one that other
 * tools (or old packs) wrote loosely fails only the nodes that use it, not the whole file.
 */
function objectInfoJson(text: string, from: string): Record<string, unknown> {
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch (e) {
    throw new TaskError(`${from}: not JSON (${(e as Error).message}); expected ComfyUI's /object_info`);
  }
  if (typeof j !== "object" || j === null || Array.isArray(j))
    throw new TaskError(`${from}: expected ComfyUI's /object_info (an object of node classes)`);
  return j as Record<string, unknown>;
}

async function objectInfoOf(ctx: TaskContext, o: ConvertOptions): Promise<Record<string, unknown>> {
  if (o.objectInfo) {
    const path = o.objectInfo;
    const text = await readFile(resolve(process.cwd(), path), "utf8").catch((e: NodeJS.ErrnoException) => {
      throw new TaskError(`${path}: cannot read (${e.code ?? e.message})`);
    });
    return objectInfoJson(text, path);
  }
  let oi!: Record<string, unknown>;
  await ctx.step("GET /object_info", async () => {
    const url = objectInfoUrl(o.comfyUrl);
    const r = await ctx.exec(objectInfoCommand(o.comfyUrl));
    if (r.code === 127) throw new TaskError("curl is not installed on the host");
    if (r.code !== 0) throw new TaskError(`curl ${url} exited ${r.code}: ${r.stderr.trim() || "no answer"} (is ComfyUI running?)`);
    oi = objectInfoJson(r.stdout, `${ctx.host.name} ${url}`);
    return { status: "ok", note: `${Object.keys(oi).length} classes` };
  });
  return oi;
}

export async function runConvert(ctx: TaskContext, o: ConvertOptions): Promise<void> {
  const abs = resolve(process.cwd(), o.file);
  const ui = await readUiWorkflow(ctx, o.file);
  // the facts: node definitions from the saved file when given (the host is not asked), else the host's
  if (o.objectInfo && !ctx.host.local) ctx.log(`using ${o.objectInfo}; ${ctx.host.name}'s ComfyUI is not asked`);
  const oi = await objectInfoOf(ctx, o);
  const out = o.output ? resolve(process.cwd(), o.output) : abs.replace(/(\.json|\.png)?$/i, ".api.json");
  await ctx.step(`convert -> ${relative(process.cwd(), out) || out}`, async () => {
    // the plan: the API prompt, as the frontend would export it, and what had to be guessed on the way
    const r = convertUiToApi(ui, oi, { file: o.file, dropUnknown: true });
    for (const i of r.issues) ctx.warn(`node ${i.node}${i.classType ? ` (${i.classType})` : ""}: ${i.message}`);
    const nodes = Object.keys(r.prompt).length;
    ctx.emit({ convert: { output: out, nodes, issues: r.issues } });
    const n = r.issues.length;
    if (o.strict && n) throw new TaskError(`${n} guess${n === 1 ? "" : "es"} (warnings above); --strict: nothing written`);
    const issues = n ? `, ${n} issue${n === 1 ? "" : "s"}` : "";
    return writeIfChanged(out, JSON.stringify(r.prompt, null, 2) + "\n", ctx.dryRun, `${nodes} nodes${issues}`);
  });
}

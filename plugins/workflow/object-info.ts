// ComfyUI's /object_info (the node definitions): a fact of a host, asked on the host itself where
// ComfyUI listens on loopback (no tunnel, no open port), or a file saved from one. The command and
// its parser are pure; `hostObjectInfo` runs them as one step and hands back the typed result.
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { shQuote, TaskError, type TaskContext } from "../../lib/index.ts";
import type { ExecResult } from "../../lib/transport/types.ts";
import { parseObjectInfo, type ObjectInfo } from "../../lib/comfy/data-schemas.ts";
import { writeIfChanged } from "./local-file.ts";
import type { ObjectInfoOptions } from "./index.ts";

export const objectInfoUrl = (comfyUrl: string) => `${comfyUrl.replace(/\/+$/, "")}/object_info`;

/** Shell text that prints ComfyUI's /object_info. */
export function objectInfoCommand(comfyUrl: string): string {
  return `curl -fsS --max-time 60 ${shQuote(objectInfoUrl(comfyUrl))}`;
}

/** The command's answer as ObjectInfo; a TaskError saying what went wrong (curl missing, ComfyUI down, not JSON). */
export function parseObjectInfoAnswer(r: ExecResult, comfyUrl: string, where: string): ObjectInfo {
  const url = objectInfoUrl(comfyUrl);
  if (r.code === 127) throw new TaskError("curl is not installed on the host");
  if (r.code !== 0) throw new TaskError(`curl ${url} exited ${r.code}: ${r.stderr.trim() || "no answer"} (is ComfyUI running?)`);
  let j: unknown;
  try {
    j = JSON.parse(r.stdout);
  } catch {
    throw new TaskError(`${url} did not answer JSON`);
  }
  return parseObjectInfo(j, `${where} ${url}`);
}

/** The host's /object_info, as one reported step. */
export async function hostObjectInfo(ctx: TaskContext, comfyUrl: string): Promise<ObjectInfo> {
  let oi!: ObjectInfo;
  await ctx.step("GET /object_info", async () => {
    oi = parseObjectInfoAnswer(await ctx.exec(objectInfoCommand(comfyUrl)), comfyUrl, ctx.host.name);
    return { status: "ok", note: `${Object.keys(oi).length} classes` };
  });
  return oi;
}

/** A saved /object_info (relative to the working directory). */
export async function readObjectInfoFile(path: string): Promise<ObjectInfo> {
  const abs = resolve(process.cwd(), path);
  let text: string;
  try {
    text = await readFile(abs, "utf8");
  } catch (e) {
    throw new TaskError(`${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch (e) {
    throw new TaskError(`${path}: not JSON (${(e as Error).message}); expected ComfyUI's /object_info`);
  }
  return parseObjectInfo(j, path);
}

// ---------- workflow:object-info ----------

export async function runObjectInfo(ctx: TaskContext, o: ObjectInfoOptions): Promise<void> {
  const oi = await hostObjectInfo(ctx, o.comfyUrl);
  if (o.output) {
    const out = o.output;
    const text = JSON.stringify(oi, null, 1) + "\n";
    await ctx.step(`save ${out}`, () => writeIfChanged(resolve(process.cwd(), out), text, ctx.dryRun, `${Object.keys(oi).length} classes`));
  }
  ctx.emit({ objectInfo: oi });
}

// The project's workflow files, found and read the same way by every plugin that needs them:
// the files the user names, else every JSON / PNG export under workflow_templates/.
import { existsSync, readdirSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { extname, isAbsolute, join, relative, resolve } from "node:path";
import { TaskError } from "../../lib/task.ts";
import { readWorkflow, type Workflow } from "../../lib/comfy/workflow-read.ts";

export const TEMPLATES_DIR = "workflow_templates";

const WORKFLOW_EXT = new Set([".json", ".png"]);

export interface WorkflowFile {
  abs: string;
  /** as messages and reports show it: relative to the project when inside it */
  name: string;
}

/** The given files (relative to the working directory), else every JSON/PNG under workflow_templates/, sorted. */
export function workflowFiles(projectDir: string, given?: string[]): WorkflowFile[] {
  const named = (abs: string) => {
    const rel = relative(projectDir, abs);
    return { abs, name: rel && !rel.startsWith("..") && !isAbsolute(rel) ? rel : abs };
  };
  if (given?.length) return given.map((f) => named(resolve(process.cwd(), f)));
  const root = join(projectDir, TEMPLATES_DIR);
  if (!existsSync(root)) {
    throw new TaskError(`no ${TEMPLATES_DIR}/ folder in ${projectDir}: export workflows there, or name files with --file`);
  }
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      if (e.name.startsWith(".")) continue;
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (WORKFLOW_EXT.has(extname(e.name).toLowerCase())) out.push(p);
    }
  };
  walk(root);
  return out.map(named);
}

/**
 * A workflow file, parsed (any refusal names the file), and the JSON a lock hashes: the file's own
 * JSON (every edit counts), or for a PNG the workflow it carries.
 */
export async function readWorkflowFile(f: WorkflowFile): Promise<{ wf: Workflow; json: unknown }> {
  let buf: Buffer;
  try {
    buf = await readFile(f.abs);
  } catch (e) {
    throw new TaskError(`${f.name}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const wf = readWorkflow(buf, f.name);
  const png = buf.subarray(0, 4).toString("latin1") === "\x89PNG";
  return { wf, json: png ? (wf.ui ?? wf.api) : JSON.parse(buf.toString("utf8").replace(/^\uFEFF/, "")) };
}

// api:verify: /health and /ready, the OpenAPI document against workflows/, and with --smoke a POST
// to each workflow. Names, options and the per-host table; the body is ./verify-run.ts.
import { z } from "zod";
import { defineTask, type TaskDef } from "../../lib/index.ts";
import type { HostRecap } from "../../lib/events.ts";
import { formatTable } from "../../lib/output/table.ts";
import type { ComfyuiApiOptions } from "./options.ts";

export const verifyOptions = z.object({
  dir: z.string().optional().describe("the workflows folder (default: the plugin's workflowsDir, else workflows/)"),
  smoke: z
    .boolean()
    .default(false)
    .describe("POST each workflow with its RequestSchema's defaults (or its exported `example`); the response must carry an output"),
  smokeTimeout: z.number().int().positive().default(600).describe("seconds one smoke request may take"),
});
export type VerifyTaskOptions = z.infer<typeof verifyOptions>;

/** One line of the verify table: what was asked, what came back, how long it took. */
export interface VerifyRow {
  endpoint: string;
  /** "200", "missing", "unexpected", "empty enum", "HTTP 500", "no output", ... */
  status: string;
  seconds?: number;
  ok: boolean;
  note?: string;
}

export function verifyTasks(plugin: ComfyuiApiOptions): TaskDef<any>[] {
  return [
    defineTask({
      name: "api:verify",
      description: "comfyui-api answers /health and /ready, serves exactly the workflows of workflows/; --smoke POSTs each",
      lock: false,
      options: verifyOptions,
      run: async (ctx, o) => (await import("./verify-run.ts")).runVerify(ctx, o, plugin),
      summarize: verifyTable,
    }),
  ];
}

/** The per-host table of endpoint, status and seconds (a host without rows: its outcome). */
export function verifyTable(recaps: HostRecap[]): string {
  const rows: string[][] = [];
  for (const r of recaps) {
    const got = (r.data.apiVerify as { rows?: VerifyRow[] } | undefined)?.rows;
    if (!got?.length) {
      rows.push([r.host, "-", r.outcome, "", (r.error ?? "").split("\n")[0]!.slice(0, 100)]);
      continue;
    }
    for (const v of got) {
      rows.push([
        r.host,
        v.endpoint,
        v.status,
        v.seconds === undefined ? "" : v.seconds.toFixed(2),
        (v.note ?? "").split("\n")[0]!.slice(0, 140),
      ]);
    }
  }
  return formatTable(["host", "endpoint", "status", "seconds", "note"], rows, { right: [3] });
}

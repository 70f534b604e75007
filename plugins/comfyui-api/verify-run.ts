// api:verify on one host: GET /health, /ready and /docs/json in one round trip; the OpenAPI
// document against the project's workflows (a missing one explained by comfyui-api's own log line
// about its file); with --smoke, one POST per workflow. Every outcome is a row of the table.
import type { TaskContext } from "../../lib/task.ts";
import { containerFileOf, endpointOf } from "../../lib/comfy/comfyui-api-files.ts";
import {
  checkOpenApi,
  inputFromSchema,
  loadFailureOf,
  outputsOf,
  parseApiLog,
  workflowEndpoints,
} from "../../lib/comfy/comfyui-api-openapi.ts";
import type { WorkflowFacts } from "../../lib/comfy/comfyui-api-workflow.ts";
import { getCommand, loadLogCommand, parseGets, parsePost, postCommand } from "./commands.ts";
import { analyzeCached, readLocalWorkflows, workflowsDirOf, type LocalWorkflows } from "./local.ts";
import { containerOf, type ComfyuiApiOptions } from "./options.ts";
import { readEndpoints } from "./health.ts";
import { checkProxy } from "../proxy/check.ts";
import type { VerifyRow, VerifyTaskOptions } from "./verify.ts";

const root = { sudo: true } as const;

export async function runVerify(
  ctx: TaskContext,
  o: Partial<VerifyTaskOptions>,
  plugin: ComfyuiApiOptions,
  given?: LocalWorkflows,
): Promise<void> {
  const container = containerOf(plugin);
  const rows: VerifyRow[] = [];
  const emit = () => ctx.emit({ apiVerify: { rows } });
  try {
    await verify(ctx, o, plugin, container, rows, given);
  } finally {
    emit();
  }
}

async function verify(
  ctx: TaskContext,
  o: Partial<VerifyTaskOptions>,
  plugin: ComfyuiApiOptions,
  container: string,
  rows: VerifyRow[],
  given?: LocalWorkflows,
): Promise<void> {
  // the front door first: what the user's backend calls (skipped when the flow has no proxy)
  if (ctx.hasTask("api:proxy")) {
    const ends = await readEndpoints(ctx, container);
    await checkProxy(ctx, [ends.api.host, ends.comfy.host], rows);
  }
  const local = given ?? readLocalWorkflows(ctx.projectDir, workflowsDirOf(ctx.projectDir, o.dir, plugin.workflowsDir));
  const facts = new Map<string, WorkflowFacts>(local.files.map((f) => [endpointOf(f.rel), analyzeCached(f)]));
  const relOf = new Map(local.files.map((f) => [endpointOf(f.rel), f.rel]));

  const answers = parseGets(await ctx.sh(getCommand(container, ["/health", "/ready", "/docs/json"]), root));
  await ctx.step("comfyui-api /health and /ready", async () => {
    const bad: string[] = [];
    for (const p of ["/health", "/ready"]) {
      const a = answers.get(p);
      const ok = a?.status === 200;
      rows.push({
        endpoint: p,
        status: a?.status ? String(a.status) : "no answer",
        seconds: a?.seconds,
        ok,
        note: ok ? undefined : a?.body.slice(0, 200),
      });
      if (!ok) bad.push(`${p}: ${a?.status ? `HTTP ${a.status}` : "no answer"}`);
    }
    if (bad.length) return { status: "failed", note: bad.join(", ") };
    let version = "";
    try {
      version = (JSON.parse(answers.get("/health")!.body) as { version?: string }).version ?? "";
    } catch {
      // not comfyui-api's JSON
    }
    return { status: "ok", note: `200, 200${version ? ` (comfyui-api ${version})` : ""}` };
  });

  let doc: unknown;
  await ctx.step(`OpenAPI lists exactly the workflows of ${local.shown}`, async () => {
    const a = answers.get("/docs/json");
    try {
      doc = a?.status === 200 ? JSON.parse(a.body) : undefined;
    } catch {
      doc = undefined;
    }
    if (!doc) {
      rows.push({ endpoint: "/docs/json", status: a?.status ? `HTTP ${a.status}` : "no answer", seconds: a?.seconds, ok: false });
      return { status: "failed", note: "no OpenAPI document from GET /docs/json" };
    }
    const check = checkOpenApi(doc, local.endpoints);
    const problems: string[] = [];
    if (check.missing.length) {
      const log = parseApiLog((await ctx.exec(loadLogCommand(container), root)).stdout);
      for (const e of check.missing) {
        const rel = relOf.get(e)!;
        const why =
          loadFailureOf(log, containerFileOf(rel)) ??
          "comfyui-api logged nothing about its file since it started: is the file on the host, " +
            "and was comfyui-api restarted after it came? (api:workflows does both)";
        rows.push({ endpoint: e, status: "missing", ok: false, note: why });
        problems.push(`${e} (${rel}) is not served: ${why}`);
      }
    }
    const empty = new Map<string, string[]>();
    for (const x of check.emptyEnums) empty.set(x.endpoint, [...(empty.get(x.endpoint) ?? []), x.field]);
    for (const e of check.served) {
      const fields = empty.get(e);
      if (!fields) {
        rows.push({ endpoint: e, status: "served", ok: true });
        continue;
      }
      const folders = facts.get(e)?.modelFolders ?? [];
      const hint = folders.length
        ? ` (it reads config.models.${folders.join(", config.models.")}: ` +
          `${folders.map((f) => `models/${f}`).join(", ")} had no files when comfyui-api started)`
        : "";
      const why = `${fields.join(", ")} accepts no value: an empty enum${hint}`;
      rows.push({ endpoint: e, status: "empty enum", ok: false, note: why });
      problems.push(`${e}: ${why}`);
    }
    for (const e of check.unexpected) {
      const why = `served, but not in ${local.shown}: the host has a workflow the project does not (api:workflows removes it)`;
      rows.push({ endpoint: e, status: "unexpected", ok: false, note: why });
      problems.push(`${e}: ${why}`);
    }
    for (const p of problems) ctx.log(p);
    const n = check.served.length - check.emptyEnums.length;
    if (problems.length)
      return { status: "failed", note: `${problems.length} problem${problems.length === 1 ? "" : "s"}: ${problems[0]!.slice(0, 160)}` };
    return { status: "ok", note: `${n} workflow${n === 1 ? "" : "s"}, as expected` };
  });

  if (!o.smoke || !doc) return;
  const schemas = workflowEndpoints(doc);
  for (const e of local.endpoints.filter((x) => schemas.has(x))) {
    await ctx.step(`POST ${e}`, async () => {
      const example = facts.get(e)?.example;
      const made = example ? { input: example, madeUp: [] } : inputFromSchema(schemas.get(e));
      const body = JSON.stringify({ input: made.input });
      const a = parsePost(await ctx.sh(postCommand(containerOf(plugin), e, o.smokeTimeout ?? 600), { ...root, stdin: body }));
      const from = example ? "its example" : `its defaults${made.madeUp.length ? `, made up: ${made.madeUp.join(", ")}` : ""}`;
      let json: unknown;
      try {
        json = JSON.parse(a.body);
      } catch {
        json = undefined;
      }
      const out = outputsOf(json);
      if (a.status === 200 && (out.images || out.filenames.length)) {
        const what = out.filenames.length ? out.filenames.join(", ") : `${out.images} image${out.images === 1 ? "" : "s"}`;
        rows.push({ endpoint: `POST ${e}`, status: "200", seconds: a.seconds, ok: true, note: `${what} (input: ${from})` });
        return { status: "ok", note: `${what} in ${a.seconds.toFixed(2)}s` };
      }
      const err = errorOf(json) ?? a.body.slice(0, 200);
      const status = a.status === 0 ? "no answer" : a.status === 200 ? "no output" : `HTTP ${a.status}`;
      rows.push({ endpoint: `POST ${e}`, status, seconds: a.seconds, ok: false, note: `${err} (input: ${from})` });
      return { status: "failed", note: `${status}: ${err}`.slice(0, 300) };
    });
  }
}

function errorOf(json: unknown): string | undefined {
  if (!json || typeof json !== "object") return undefined;
  const j = json as Record<string, unknown>;
  // fastify's 400: { error: "Bad Request", message: "<what zod said>" }; comfyui-api's own: { error, location }
  const e = j.message ?? j.error;
  return typeof e === "string" ? e : e !== undefined ? JSON.stringify(e).slice(0, 200) : undefined;
}

// workflow:generate: templates (ComfyUI exports) -> comfyui-api endpoints in workflows/, each one
// proven (./endpoint-proof.ts) before a byte is written; --check re-does it all and writes nothing.
//
// Per template: read it (JSON or PNG, UI or API), convert a UI export with the object_info, find
// its endpoint (the file whose header names the template, else workflows/<name>.ts), generate
// (lib/comfy/endpoint-gen.ts), prove, write only when the text differs. The facts every template
// shares are read once: the object_info (saved files, or the selected host's ComfyUI), comfyui-api's
// sources, flow.lock.json and the endpoints already in workflows/.
//
// The metadata an endpoint carries comes from the template itself, the flowfile's models and
// flow.lock.json, never from reference data fetched at run time: what upstream publishes tomorrow
// must not make `--check` fail on a file nobody touched.
import { readFile } from "node:fs/promises";
import { basename, join, relative, resolve } from "node:path";
import { z } from "zod";
import { TaskError, type TaskContext } from "../../lib/index.ts";
import type { FlowConfig } from "../../lib/flowfile/schema.ts";
import type { ObjectInfo } from "../../lib/comfy/data-schemas.ts";
import { convertUiToApi } from "../../lib/comfy/convert.ts";
import { prepareApiPrompt } from "../../lib/comfy/endpoint-prompt.ts";
import { generateEndpoint, type Generated, type GenerateInput, type ParamOverrides } from "../../lib/comfy/endpoint-gen.ts";
import { lockedModels, parseLock, type LockFile } from "../../lib/comfy/lockfile.ts";
import { modelDeps } from "../../lib/comfy/model-deps.ts";
import { getOwn } from "../../lib/comfy/own-keys.ts";
import { nameProblem } from "../../lib/comfy/comfyui-api-files.ts";
import { pngTextChunks, readWorkflow, type ApiPrompt, type Workflow } from "../../lib/comfy/workflow-read.ts";
import { stripUrlCredentials } from "../../lib/url-credentials.ts";
import { loadApiSources, loadEndpointPrompt, type LoadedSources } from "../comfyui-api/api-source.ts";
import { DEFAULT_API_VERSION } from "../comfyui-api/options.ts";
import { workflowFiles, type WorkflowFile } from "../shared/workflow-files.ts";
import { objectInfoLoaders } from "./analyse.ts";
import { proveEndpoint, type ProofResult } from "./endpoint-proof.ts";
import { writeIfChanged } from "./local-file.ts";
import { hostObjectInfo, readObjectInfoFile } from "./object-info.ts";
import { chatCompletion, DEFAULT_LLM_MODEL, extractTypeScript, KeyRefusedError, openRouterUrl } from "./openrouter.ts";
import { endpointFiles, endpointOrigin, llmHeader, projectPath, sha256Hex, templateState, type EndpointFile } from "./stale.ts";
import { LOCK_FILE, OPENROUTER_KEY, type GenerateOptions, type WorkflowPluginOptions } from "./index.ts";

const overridesSchema = z.strictObject({
  rename: z.record(z.string(), z.string()).optional(),
  hide: z.array(z.string()).optional(),
  add: z.array(z.strictObject({ name: z.string(), node: z.string(), input: z.string(), description: z.string().optional() })).optional(),
});

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;
const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

/** What every template of a run shares. */
interface RunFacts {
  projectDir: string;
  flow: FlowConfig;
  oi: ObjectInfo;
  /** where the object_info came from, for messages */
  oiFrom: string;
  api: LoadedSources;
  lock?: LockFile;
  /** the workflows folder, absolute */
  dir: string;
  endpoints: EndpointFile[];
}

interface Template {
  file: WorkflowFile;
  /** as the header records it: project-relative with "/" */
  path: string;
  sha256: string;
  wf: Workflow;
  /** the UI export to convert, or the API prompt as exported */
  ui?: unknown;
  api?: ApiPrompt;
}

interface Built {
  prompt: ApiPrompt;
  gen: Generated;
}

// a host-scoped run is for one host: several would write the same local files at once
let hostTaken: string | undefined;

export async function runGenerate(ctx: TaskContext, o: GenerateOptions, plugin: WorkflowPluginOptions): Promise<void> {
  if (!ctx.host.local) {
    if (hostTaken && hostTaken !== ctx.host.name)
      throw new TaskError(`workflow:generate writes local files once: it ran with ${hostTaken}'s object_info; select one host`);
    hostTaken = ctx.host.name;
  }
  const facts = await runFacts(ctx, o, plugin);
  if (o.check) return runCheck(ctx, o, plugin, facts);

  const templates = workflowFiles(ctx.projectDir, o.file);
  if (!templates.length) ctx.log("no templates in workflow_templates/: nothing to generate");
  const params = o.params ? await readParamsFile(o.params) : undefined;
  const results: Record<string, unknown>[] = [];
  for (const f of templates) {
    const targets = targetsOf(facts, f, o.output);
    for (const target of targets) {
      const shown = projectPath(ctx.projectDir, target.abs);
      const result: Record<string, unknown> = { template: f.name, endpoint: shown };
      results.push(result);
      await ctx.step(`${f.name} -> ${shown}`, async () => {
        try {
          const r = await generateOne(ctx, o, plugin, facts, f, target, params);
          Object.assign(result, r.data);
          return r.step;
        } catch (e) {
          // a refused key fails every later file the same way: stop here
          if (e instanceof KeyRefusedError) throw e;
          // one bad template must not hide the others: this one fails, the run goes on
          result.status = "failed";
          result.error = message(e);
          return { status: "failed", note: message(e) };
        }
      });
    }
  }
  ctx.emit({ generate: { endpoints: results, objectInfo: facts.oiFrom, comfyuiApi: facts.api.origin } });
}

// ---------- the facts of the run ----------

async function runFacts(ctx: TaskContext, o: GenerateOptions, plugin: WorkflowPluginOptions): Promise<RunFacts> {
  let oi!: ObjectInfo;
  let oiFrom = "";
  const saved = o.objectInfo?.length
    ? o.objectInfo.map((p) => resolve(process.cwd(), p))
    : [plugin.objectInfo ?? []].flat().map((p) => resolve(ctx.projectDir, p));
  if (saved.length) {
    await ctx.step("object_info", async () => {
      // several files: a host's core nodes and another's packs; a later file wins a class both define
      const all = await Promise.all(saved.map((p) => readObjectInfoFile(p)));
      oi = Object.assign({}, ...all) as ObjectInfo;
      oiFrom = saved.map((p) => projectPath(ctx.projectDir, p)).join(" + ");
      return { status: "ok", note: `${Object.keys(oi).length} classes from ${oiFrom}` };
    });
  } else {
    oi = await hostObjectInfo(ctx, o.comfyUrl);
    oiFrom = `${ctx.host.name}'s ComfyUI`;
  }

  let api!: LoadedSources;
  await ctx.step("comfyui-api's types, for the proof", async () => {
    api = await loadApiSources(apiSourceOptions(o, plugin, ctx.projectDir));
    for (const w of api.warnings) ctx.warn(w);
    return { status: "ok", note: `${api.version} from ${api.origin}` };
  });

  let lock: LockFile | undefined;
  const lockText = await readFile(join(ctx.projectDir, LOCK_FILE), "utf8").catch(() => undefined);
  if (lockText !== undefined) {
    lock = parseLock(lockText);
    if (!lock) ctx.warn(`${LOCK_FILE} is not a lock file this flow reads: model sources come from the templates and the flowfile only`);
  }
  const dir = resolve(ctx.projectDir, plugin.workflowsDir ?? "workflows");
  return { projectDir: ctx.projectDir, flow: ctx.flow, oi, oiFrom, api, lock, dir, endpoints: endpointFiles(ctx.projectDir, dir) };
}

/**
 * Where comfyui-api's sources come from. A checkout (source.dir, FLOW_COMFYUI_API_SRC) is the version
 * the user chose: no version is asked of it unless workflow({ apiVersion }) says one (no host runs
 * here to compare with); a URL needs a version to fetch.
 */
function apiSourceOptions(o: GenerateOptions, plugin: WorkflowPluginOptions, projectDir: string) {
  const checkout = !!(process.env.FLOW_COMFYUI_API_SRC || plugin.source?.dir);
  const version = plugin.apiVersion ?? (checkout ? "" : DEFAULT_API_VERSION);
  return { version, settings: plugin.source, offline: o.offline, projectDir };
}

async function readParamsFile(path: string): Promise<ParamOverrides> {
  let j: unknown;
  try {
    j = JSON.parse(await readFile(resolve(process.cwd(), path), "utf8"));
  } catch (e) {
    throw new TaskError(`--params ${path}: ${(e as NodeJS.ErrnoException).code ?? message(e)}; expected JSON { rename, hide, add }`);
  }
  return parseOverrides(j, `--params ${path}`);
}

function parseOverrides(j: unknown, where: string): ParamOverrides {
  const r = overridesSchema.safeParse(j);
  if (r.success) return r.data;
  const why = r.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ");
  throw new TaskError(`${where}: ${why} (expected { rename: { old: new }, hide: [name], add: [{ name, node, input, description? }] })`);
}

/** The parameter shaping for a template: --params, else the flowfile's, else what its endpoint recorded. */
function overridesFor(plugin: WorkflowPluginOptions, template: string, params?: ParamOverrides, recorded?: ParamOverrides) {
  if (params) return params;
  const fromFlow = getOwn(plugin.generate, template);
  if (fromFlow !== undefined) return parseOverrides(fromFlow, `workflow({ generate: { ${JSON.stringify(template)} } })`);
  return recorded;
}

// ---------- one template ----------

async function readTemplate(f: WorkflowFile, projectDir: string): Promise<Template> {
  let buf: Buffer;
  try {
    buf = await readFile(f.abs);
  } catch (e) {
    throw new TaskError(`${f.name}: cannot read (${(e as NodeJS.ErrnoException).code ?? message(e)})`);
  }
  const wf = readWorkflow(buf, f.name); // refuses what is not a workflow, naming the file
  const t: Template = { file: f, path: projectPath(projectDir, f.abs), sha256: sha256Hex(buf), wf };
  if (wf.format === "api") t.api = wf.api;
  else if (buf.subarray(0, 4).toString("latin1") === "\x89PNG") t.ui = JSON.parse(getOwn(pngTextChunks(buf, f.name), "workflow")!);
  else t.ui = JSON.parse(buf.toString("utf8").replace(/^\uFEFF/, ""));
  return t;
}

/** The API prompt: as exported, or converted; a class the object_info lacks stops the template. */
function promptOf(ctx: TaskContext, t: Template, facts: RunFacts): ApiPrompt {
  let prompt: ApiPrompt;
  if (t.api) prompt = t.api;
  else {
    const r = convertUiToApi(t.ui, facts.oi, { file: t.file.name });
    for (const i of r.issues) if (!i.classType || getOwn(facts.oi, i.classType)) ctx.warn(`${t.file.name}: node ${i.node}: ${i.message}`);
    prompt = r.prompt;
  }
  const missing = Object.entries(prompt).filter(([, n]) => !getOwn(facts.oi, n.class_type));
  if (missing.length) {
    const named = missing.map(([id, n]) => `${n.class_type} (node ${id})`).join(", ");
    throw new TaskError(
      `${t.file.name}: the object_info (${facts.oiFrom}) lacks ${named}; give one from a ComfyUI that has ` +
        `${missing.length === 1 ? "it" : "them"} (newer, or with the node pack installed): --object-info FILE, or --host`,
    );
  }
  // what comfyui-api needs different from the export (savers save, uploads it can fill); the proof compares with this
  const prepared = prepareApiPrompt(prompt, facts.oi);
  for (const c of prepared.changes) ctx.log(`${t.file.name}: node ${c}`);
  return prepared.prompt;
}

/** Titles the user gave nodes: a title that is only the class's own name says nothing. */
function userTitles(prompt: ApiPrompt, oi: ObjectInfo): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [id, n] of Object.entries(prompt)) {
    const title = n._meta?.title?.trim();
    if (title && title !== n.class_type && title !== getOwn(oi, n.class_type)?.display_name) out[id] = title;
  }
  return out;
}

/** requiredNodes: the custom classes (ComfyUI's own live in nodes / comfy_extras / comfy_api_nodes); models and their sources. */
function metadataOf(t: Template, prompt: ApiPrompt, facts: RunFacts): GenerateInput["metadata"] {
  const requiredNodes = [
    ...new Set(
      Object.values(prompt)
        .map((n) => n.class_type)
        .filter((c) => /^custom_nodes[./]/.test(String(getOwn(facts.oi, c)?.python_module ?? ""))),
    ),
  ].sort();
  const deps = modelDeps(t.wf, {
    userModels: facts.flow.models,
    userFolders: facts.flow.modelFolders,
    loaderInputs: objectInfoLoaders(facts.oi),
  });
  const models = new Map<string, { folder: string; name: string }>();
  const sources = new Map<string, string>();
  const add = (folder: string, name: string, url: string | undefined) => {
    models.set(`${folder}/${name}`, { folder, name });
    // a token in a flowfile URL (?token=) never goes into a file that is committed and deployed
    if (url && !sources.has(name)) sources.set(name, stripUrlCredentials(url));
  };
  for (const m of deps.models) if (!m.optional && m.folder) add(m.folder, m.name, m.url);
  // the lock fills in what the template does not say (a source found by name on Hugging Face)
  for (const m of facts.lock ? lockedModels(facts.lock, t.file.name) : []) if (!m.optional) add(m.folder, m.name, m.url);
  const requiredModels = [...models.values()].sort((a, b) => `${a.folder}/${a.name}`.localeCompare(`${b.folder}/${b.name}`));
  const modelSources = Object.fromEntries([...sources].sort(([a], [b]) => a.localeCompare(b)));
  return { requiredNodes, requiredModels, modelSources };
}

function build(ctx: TaskContext, t: Template, facts: RunFacts, overrides: ParamOverrides | undefined): Built {
  const prompt = promptOf(ctx, t, facts);
  const gen = generateEndpoint({
    prompt,
    objectInfo: facts.oi,
    titles: userTitles(prompt, facts.oi),
    template: { path: t.path, sha256: t.sha256 },
    metadata: metadataOf(t, prompt, facts),
    ...(overrides ? { overrides } : {}),
  });
  return { prompt, gen };
}

interface Target {
  abs: string;
  /** the endpoint there now, when workflow:generate wrote it */
  existing?: EndpointFile;
}

/** -o; else every endpoint whose header names the template; else workflows/<template name>.ts. */
function targetsOf(facts: RunFacts, f: WorkflowFile, output: string | undefined): Target[] {
  const find = (abs: string) => facts.endpoints.find((e) => e.abs === abs);
  if (output) {
    const abs = resolve(process.cwd(), output);
    return [{ abs, existing: find(abs) }];
  }
  const made = facts.endpoints.filter((e) => e.origin && resolve(facts.projectDir, e.origin.template) === f.abs);
  if (made.length) return made.map((e) => ({ abs: e.abs, existing: e }));
  const name = basename(f.abs)
    .replace(/(\.api)?\.(json|png)$/i, "")
    .replace(/[^A-Za-z0-9_-]+/g, "_");
  const abs = join(facts.dir, `${name}.ts`);
  return [{ abs, existing: find(abs) }];
}

/** Path under the workflows folder, as comfyui-api serves it (its file name only when it lies outside). */
function relOf(facts: RunFacts, abs: string): { rel: string; inside: boolean } {
  const rel = relative(facts.dir, abs).split("\\").join("/");
  const inside = !!rel && !rel.startsWith("../") && rel !== ".." && !rel.startsWith("/");
  return { rel: inside ? rel : basename(abs), inside };
}

const proofSummary = (p: ProofResult, max = 8) =>
  p.problems.slice(0, max).join("\n  ") + (p.problems.length > max ? `\n  ... and ${p.problems.length - max} more` : "");

async function generateOne(
  ctx: TaskContext,
  o: GenerateOptions,
  plugin: WorkflowPluginOptions,
  facts: RunFacts,
  f: WorkflowFile,
  target: Target,
  params: ParamOverrides | undefined,
): Promise<{ step: { status: "ok" | "changed" | "skipped" | "failed"; note: string }; data: Record<string, unknown> }> {
  const shown = projectPath(facts.projectDir, target.abs);
  const existingText = target.existing?.text ?? (await readFile(target.abs, "utf8").catch(() => undefined));
  const origin = existingText === undefined ? undefined : (target.existing?.origin ?? endpointOrigin(existingText));
  // a file of the user's own is never overwritten; -o naming one does not make it ours
  if (existingText !== undefined && !origin)
    throw new TaskError(`${shown} exists and was not written by workflow:generate (no generated header); move it away, or give another -o`);
  const t = await readTemplate(f, facts.projectDir);
  // an --llm endpoint is the user's choice: without --llm it is only refreshed when named with --file
  if (origin?.by === "llm" && !o.llm && !o.file?.length) {
    const state = templateState(facts.projectDir, origin).state;
    if (state === "current")
      return { step: { status: "ok", note: `written by ${origin.model}; template unchanged` }, data: { status: "ok", by: "llm" } };
    ctx.warn(`${shown} (written by ${origin.model}) is stale: regenerate it with --file ${t.path} [--llm]`);
    return {
      step: { status: "skipped", note: "stale --llm endpoint: name it with --file to regenerate" },
      data: { status: "stale", by: "llm" },
    };
  }
  const { rel, inside } = relOf(facts, target.abs);
  if (!inside) ctx.warn(`${shown} is outside ${projectPath(facts.projectDir, facts.dir)}/: api:workflows will not send it`);
  else {
    const bad = nameProblem(rel);
    if (bad) ctx.warn(`${shown}: ${bad}`);
  }

  const overrides = overridesFor(plugin, t.path, params, origin?.by === "generator" ? origin.overrides : undefined);
  const { prompt, gen } = build(ctx, t, facts, overrides);
  const proof = await proveEndpoint({ rel, source: gen.source, prompt, params: gen.params, objectInfo: facts.oi, api: facts.api });
  const data: Record<string, unknown> = { params: gen.params.map((p) => p.name), proof: proof.checks };
  if (!proof.ok) {
    ctx.log(`${t.path}: the generated endpoint fails its proof; nothing written:\n  ${proofSummary(proof)}`);
    return {
      step: { status: "failed", note: `proof failed (${plural(proof.problems.length, "problem")}); nothing written` },
      data: { ...data, status: "failed", problems: proof.problems },
    };
  }
  let text = gen.source;
  let note = `${plural(gen.params.length, "parameter")}, proven`;
  data.by = "generator";
  if (o.llm) {
    const model = o.model ?? plugin.llm?.model ?? DEFAULT_LLM_MODEL;
    const llm = await askLlm(ctx, o, plugin, facts, t, prompt, rel, model);
    if (llm.text) {
      text = llm.text;
      note = `written by ${model}, proven`;
      data.by = "llm";
      data.model = model;
    } else {
      ctx.warn(`${t.path}: ${model}'s endpoint is not used: ${llm.why}; the generator's is written instead`);
      data.llmRejected = llm.why;
    }
  }
  const step = await writeIfChanged(target.abs, text, ctx.dryRun, note);
  return {
    step: { status: step.status, note: step.note ?? note },
    data: { ...data, status: step.status === "ok" ? "unchanged" : ctx.dryRun ? "would write" : "written" },
  };
}

// ---------- --llm ----------

let endpointPrompt: Promise<{ text: string; origin: string; warnings: string[] }> | undefined;

/** The LLM's endpoint when it passes the proof (with its origin header), else why not. */
async function askLlm(
  ctx: TaskContext,
  o: GenerateOptions,
  plugin: WorkflowPluginOptions,
  facts: RunFacts,
  t: Template,
  prompt: ApiPrompt,
  rel: string,
  model: string,
): Promise<{ text?: string; why?: string }> {
  endpointPrompt ??= loadEndpointPrompt(apiSourceOptions(o, plugin, facts.projectDir));
  const system = await endpointPrompt.catch((e) => {
    endpointPrompt = undefined;
    throw e;
  });
  ctx.progress(`${t.path}: asking ${model} through OpenRouter`);
  const reply = await chatCompletion({
    baseUrl: openRouterUrl(),
    key: ctx.secrets[OPENROUTER_KEY] ?? "",
    model,
    system: system.text,
    user: JSON.stringify(prompt, null, 2),
    allowHosts: facts.flow.settings.allowHosts,
  });
  const ts = extractTypeScript(reply);
  if (!ts) return { why: "its reply holds no TypeScript" };
  const text = llmHeader({ template: t.path, sha256: t.sha256, model }) + ts;
  const proof = await proveEndpoint({ rel, source: text, prompt, objectInfo: facts.oi, api: facts.api });
  if (!proof.ok) {
    ctx.log(`${t.path}: ${model}'s endpoint fails the proof:\n  ${proofSummary(proof)}`);
    return {
      why: `it fails the proof (${proof.problems[0]}${proof.problems.length > 1 ? `, and ${proof.problems.length - 1} more` : ""})`,
    };
  }
  for (const n of proof.notes) ctx.log(`${t.path} (${model}): ${n}`);
  return { text };
}

// ---------- --check ----------

async function runCheck(ctx: TaskContext, o: GenerateOptions, plugin: WorkflowPluginOptions, facts: RunFacts): Promise<void> {
  let templates: WorkflowFile[] = [];
  try {
    templates = workflowFiles(ctx.projectDir, o.file);
  } catch (e) {
    if (o.file?.length) throw e; // no workflow_templates/ folder: then only the endpoints are checked
  }
  const named = o.file?.length ? new Set(templates.map((f) => f.abs)) : undefined;
  const endpoints = facts.endpoints.filter((e) => e.origin && (!named || named.has(resolve(ctx.projectDir, e.origin.template))));
  const results: Record<string, unknown>[] = [];
  for (const e of endpoints) {
    const origin = e.origin!;
    const result: Record<string, unknown> = { endpoint: e.shown, template: origin.template, by: origin.by };
    results.push(result);
    await ctx.step(`check ${e.shown}`, async () => {
      const problems = await checkOne(ctx, plugin, facts, e);
      result.problems = problems;
      if (!problems.length) return { status: "ok", note: `${origin.template}: up to date, proven` };
      for (const p of problems) ctx.log(`${e.shown}: ${p}`);
      return { status: "failed", note: problems[0]! + (problems.length > 1 ? ` (and ${problems.length - 1} more)` : "") };
    });
  }
  const covered = new Set(facts.endpoints.filter((e) => e.origin).map((e) => resolve(ctx.projectDir, e.origin!.template)));
  const orphans = templates.filter((f) => !covered.has(f.abs)).map((f) => f.name);
  for (const name of orphans) {
    const why = `no endpoint is generated from it (flow run workflow:generate --file ${name})`;
    if (o.strict) await ctx.step(`check ${name}`, async () => ({ status: "failed", note: why }));
    else ctx.warn(`${name}: ${why}; --strict makes this a failure`);
  }
  if (!endpoints.length && !orphans.length) ctx.log("no generated endpoints to check");
  ctx.emit({ generateCheck: { endpoints: results, withoutEndpoint: orphans } });
}

/** Everything wrong with one generated endpoint, each named; none when it is up to date and proven. */
async function checkOne(ctx: TaskContext, plugin: WorkflowPluginOptions, facts: RunFacts, e: EndpointFile): Promise<string[]> {
  const origin = e.origin!;
  const state = templateState(facts.projectDir, origin);
  if (state.state === "missing") return [`its template ${origin.template} is gone`];
  if (state.state === "changed")
    return [
      `stale: ${origin.template} changed since it was generated (sha256 ${origin.sha256.slice(0, 12)} in its header, ` +
        `${state.now.slice(0, 12)} now); regenerate: flow run workflow:generate --file ${origin.template}`,
    ];
  const problems: string[] = [];
  let built: Built;
  try {
    const abs = resolve(facts.projectDir, origin.template);
    const t = await readTemplate({ abs, name: projectPath(facts.projectDir, abs) }, facts.projectDir);
    built = build(ctx, t, facts, overridesFor(plugin, t.path, undefined, origin.overrides));
  } catch (err) {
    return [`cannot regenerate from ${origin.template}: ${message(err)}`];
  }
  if (origin.by === "generator" && built.gen.source !== e.text) {
    const a = e.text.split("\n");
    const b = built.gen.source.split("\n");
    let line = 0;
    while (line < a.length && a[line] === b[line]) line++;
    problems.push(
      `differs from what workflow:generate gives now, from line ${line + 1} (edited by hand? shape parameters with --params ` +
        `or workflow({ generate }), then regenerate: flow run workflow:generate --file ${origin.template})`,
    );
  }
  const proof = await proveEndpoint({
    rel: relOf(facts, e.abs).rel,
    source: e.text,
    prompt: built.prompt,
    ...(origin.by === "generator" ? { params: built.gen.params } : {}),
    objectInfo: facts.oi,
    api: facts.api,
  });
  problems.push(...proof.problems.map((p) => `proof: ${p}`));
  if (!proof.ok && !proof.problems.length) problems.push("proof: not passed");
  return problems;
}

// Which template each endpoint in workflows/ was made from, and whether that template changed since.
// A file workflow:generate wrote names its template and the template's sha256 in its header (the
// generator's, lib/comfy/endpoint-gen.ts; or the --llm one below); comparing that with the file now
// is all staleness is. workflow:generate, workflow:deps and api:workflows read it here.
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { isAbsolute, join, relative, resolve } from "node:path";
import { z } from "zod";
import { readGeneratedHeader, type ParamOverrides } from "../../lib/comfy/endpoint-gen.ts";

export const sha256Hex = (data: string | Uint8Array) => createHash("sha256").update(data).digest("hex");

/** The line an --llm endpoint carries instead of the generator's header (regeneration would not give its bytes). */
export const LLM_ORIGIN_MARK = "// flow-llm-origin: ";

const llmOriginSchema = z.object({ template: z.string().min(1), sha256: z.string().regex(/^[0-9a-f]{64}$/), model: z.string() });

export interface EndpointOrigin {
  /** "generator": regenerating must give the same bytes; "llm": only the template and the proof are checked */
  by: "generator" | "llm";
  /** project-relative, "/"-separated (absolute for a template outside the project) */
  template: string;
  sha256: string;
  overrides?: ParamOverrides;
  model?: string;
}

/** The header of an --llm endpoint: a sentence for people, then one JSON line for flow. */
export function llmHeader(o: { template: string; sha256: string; model: string }): string {
  return (
    `// Written by ${o.model} (through OpenRouter) from ${o.template}, and proven by flow workflow:generate --llm.\n` +
    `// workflow:generate --check does not regenerate it; it checks the template and proves the file again.\n` +
    `${LLM_ORIGIN_MARK}${JSON.stringify({ template: o.template, sha256: o.sha256, model: o.model })}\n`
  );
}

/** Where an endpoint's text says it came from; undefined for a file workflow:generate did not write. */
export function endpointOrigin(text: string): EndpointOrigin | undefined {
  const g = readGeneratedHeader(text);
  if (g) return { by: "generator", template: g.template, sha256: g.sha256, ...(g.overrides ? { overrides: g.overrides } : {}) };
  // only the head of the file: the mark quoted further down (in a string) is not a header
  const line = text
    .split("\n", 8)
    .find((l) => l.startsWith(LLM_ORIGIN_MARK))
    ?.slice(LLM_ORIGIN_MARK.length);
  if (!line) return undefined;
  try {
    const o = llmOriginSchema.safeParse(JSON.parse(line));
    return o.success ? { by: "llm", ...o.data } : undefined;
  } catch {
    return undefined;
  }
}

export interface EndpointFile {
  abs: string;
  /** under the workflows folder, "/"-separated: "qwen/txt2img.ts" */
  rel: string;
  /** as messages show it: relative to the project when inside it */
  shown: string;
  text: string;
  origin?: EndpointOrigin;
}

/** A path as messages and headers write it: project-relative with "/" when inside the project, else absolute. */
export function projectPath(projectDir: string, abs: string): string {
  const rel = relative(projectDir, abs);
  return rel && !rel.startsWith("..") && !isAbsolute(rel) ? rel.split("\\").join("/") : abs;
}

/** Every .ts file under `dir` (hidden names and node_modules skipped), with its origin; none when the folder is missing. */
export function endpointFiles(projectDir: string, dir: string): EndpointFile[] {
  const out: EndpointFile[] = [];
  if (!existsSync(dir) || !statSync(dir).isDirectory()) return out;
  const walk = (abs: string, rel: string) => {
    for (const e of readdirSync(abs, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      if (e.name.startsWith(".") || e.name === "node_modules") continue;
      const p = join(abs, e.name);
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(p, r);
      else if (e.isFile() && e.name.endsWith(".ts") && !e.name.endsWith(".d.ts")) {
        const text = readFileSync(p, "utf8");
        out.push({ abs: p, rel: r, shown: projectPath(projectDir, p), text, origin: endpointOrigin(text) });
      }
    }
  };
  walk(dir, "");
  return out;
}

export type TemplateState = { state: "current" } | { state: "changed"; now: string } | { state: "missing" };

/** The template an origin names, compared with what it was when the endpoint was made. */
export function templateState(projectDir: string, origin: Pick<EndpointOrigin, "template" | "sha256">): TemplateState {
  let data: Buffer;
  try {
    data = readFileSync(resolve(projectDir, origin.template));
  } catch {
    return { state: "missing" };
  }
  const now = sha256Hex(data);
  return now === origin.sha256 ? { state: "current" } : { state: "changed", now };
}

export interface StaleEndpoint {
  endpoint: string;
  template: string;
  state: "changed" | "missing";
}

/** The endpoints among `files` whose template changed or is gone since they were made. */
export function staleEndpoints(projectDir: string, files: { shown: string; text: string }[]): StaleEndpoint[] {
  const out: StaleEndpoint[] = [];
  for (const f of files) {
    const origin = endpointOrigin(f.text);
    if (!origin) continue;
    const s = templateState(projectDir, origin);
    if (s.state !== "current") out.push({ endpoint: f.shown, template: origin.template, state: s.state });
  }
  return out;
}

/** One warning line, with the command that fixes it. */
export function staleMessage(s: StaleEndpoint): string {
  return s.state === "changed"
    ? `${s.endpoint} is stale: ${s.template} changed since it was generated (flow run workflow:generate --file ${s.template})`
    : `${s.endpoint} was generated from ${s.template}, which is gone (generate it from another template, or remove it)`;
}

/**
 * The warnings for the endpoints under `dir` made from `templates` (absolute paths; all endpoints
 * when undefined) whose template changed or is gone. No folder, no warnings.
 */
export function staleWarnings(projectDir: string, dir: string, templates?: string[]): string[] {
  const wanted = templates && new Set(templates.map((t) => resolve(projectDir, t)));
  const files = endpointFiles(projectDir, dir).filter((f) => f.origin && (!wanted || wanted.has(resolve(projectDir, f.origin.template))));
  return staleEndpoints(projectDir, files).map(staleMessage);
}

// What comfyui-api serves, read from its own answers (pure): the workflow endpoints of its OpenAPI
// document (GET /docs/json) against the workflows the project has, a request body made from an
// endpoint's input schema, whether a response carries an output, and the log line comfyui-api
// wrote about a workflow it did not load.

type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

/** Every `POST /workflow/...` of the document -> the JSON schema of its `input` (undefined when absent). */
export function workflowEndpoints(doc: unknown): Map<string, Json | undefined> {
  const out = new Map<string, Json | undefined>();
  const paths = isObj(doc) && isObj(doc.paths) ? doc.paths : {};
  for (const [path, item] of Object.entries(paths)) {
    if (!path.startsWith("/workflow/") || !isObj(item) || !isObj(item.post)) continue;
    const post = item.post as Json;
    const body =
      isObj(post.requestBody) && isObj(post.requestBody.content) ? (post.requestBody.content as Json)["application/json"] : undefined;
    const schema = isObj(body) && isObj(body.schema) ? body.schema : undefined;
    const input = schema && isObj(schema.properties) ? (schema.properties as Json).input : undefined;
    out.set(path, isObj(input) ? input : undefined);
  }
  return out;
}

export interface EmptyEnum {
  endpoint: string;
  /** "input.model" */
  field: string;
}

export interface OpenApiCheck {
  /** expected and served */
  served: string[];
  /** expected, not served */
  missing: string[];
  /** served, not expected (a workflow the project no longer has) */
  unexpected: string[];
  /** fields that accept nothing: comfyui-api built their enum from an empty model folder */
  emptyEnums: EmptyEnum[];
}

/** The document's workflow endpoints against `expected` ("/workflow/<dir>/<name>"), exactly. */
export function checkOpenApi(doc: unknown, expected: string[]): OpenApiCheck {
  const have = workflowEndpoints(doc);
  const want = new Set(expected);
  const check: OpenApiCheck = {
    served: expected.filter((e) => have.has(e)).sort(),
    missing: expected.filter((e) => !have.has(e)).sort(),
    unexpected: [...have.keys()].filter((e) => !want.has(e)).sort(),
    emptyEnums: [],
  };
  for (const e of check.served) {
    for (const field of emptyEnumFields(have.get(e), "input")) check.emptyEnums.push({ endpoint: e, field });
  }
  return check;
}

function emptyEnumFields(schema: unknown, at: string, depth = 0): string[] {
  if (!isObj(schema) || depth > 8) return [];
  const out: string[] = [];
  if (Array.isArray(schema.enum) && schema.enum.length === 0) out.push(at);
  if (isObj(schema.properties)) {
    for (const [k, v] of Object.entries(schema.properties)) out.push(...emptyEnumFields(v, `${at}.${k}`, depth + 1));
  }
  if (isObj(schema.items)) out.push(...emptyEnumFields(schema.items, `${at}[]`, depth + 1));
  return out;
}

export interface RequestInput {
  input: Json;
  /** required fields without a default, given a made-up value */
  madeUp: string[];
}

/**
 * The `input` a smoke test posts: every default the schema states, and for a required field
 * without one a value that satisfies its type and bounds (the first enum value, the minimum, ...).
 */
export function inputFromSchema(schema: Json | undefined): RequestInput {
  const madeUp: string[] = [];
  const input: Json = {};
  const props = schema && isObj(schema.properties) ? schema.properties : {};
  const required = new Set(schema && Array.isArray(schema.required) ? schema.required.map(String) : []);
  for (const [k, s] of Object.entries(props)) {
    if (isObj(s) && "default" in s) setKey(input, k, s.default);
    else if (required.has(k)) {
      setKey(input, k, valueFor(s, 0));
      madeUp.push(k);
    }
  }
  return { input, madeUp };
}

function setKey(o: Json, k: string, v: unknown): void {
  Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
}

function valueFor(s: unknown, depth: number): unknown {
  if (!isObj(s) || depth > 6) return null;
  if ("default" in s) return s.default;
  if ("const" in s) return s.const;
  if (Array.isArray(s.enum) && s.enum.length) return s.enum[0];
  for (const k of ["anyOf", "oneOf", "allOf"]) {
    const alts = s[k];
    if (Array.isArray(alts) && alts.length) return valueFor(alts.find((a) => !(isObj(a) && a.type === "null")) ?? alts[0], depth + 1);
  }
  const type = Array.isArray(s.type) ? s.type.find((t) => t !== "null") : s.type;
  switch (type) {
    case "string": {
      if (s.format === "uri" || s.format === "url") return "https://example.com/";
      const min = typeof s.minLength === "number" ? s.minLength : 0;
      const text = "a photo of a cat";
      return text.length >= min ? text : text.padEnd(min, ".");
    }
    case "integer":
    case "number": {
      let v =
        typeof s.minimum === "number"
          ? s.minimum
          : typeof s.exclusiveMinimum === "number"
            ? s.exclusiveMinimum + 1
            : typeof s.maximum === "number"
              ? Math.min(0, s.maximum)
              : 0;
      if (type === "integer") v = Math.ceil(v);
      return v;
    }
    case "boolean":
      return false;
    case "array": {
      const n = typeof s.minItems === "number" ? s.minItems : 0;
      return Array.from({ length: n }, () => valueFor(s.items, depth + 1));
    }
    case "object": {
      const out: Json = {};
      const req = Array.isArray(s.required) ? s.required.map(String) : [];
      const props = isObj(s.properties) ? s.properties : {};
      for (const k of req) setKey(out, k, valueFor(props[k], depth + 1));
      return out;
    }
    default:
      return null;
  }
}

/** What a workflow response carries: images (base64 or URLs) and file names; none means no output. */
export function outputsOf(body: unknown): { images: number; filenames: string[] } {
  if (!isObj(body)) return { images: 0, filenames: [] };
  const images = Array.isArray(body.images) ? body.images.filter((x) => typeof x === "string" && x.length > 0).length : 0;
  const filenames = Array.isArray(body.filenames) ? body.filenames.filter((x): x is string => typeof x === "string") : [];
  return { images, filenames };
}

export interface ApiLogLine {
  level: number;
  msg: string;
  file?: string;
  error?: string;
  [k: string]: unknown;
}

/** comfyui-api's pino JSON lines from `docker logs` (other lines, ComfyUI's own, are skipped). */
export function parseApiLog(text: string): ApiLogLine[] {
  const out: ApiLogLine[] = [];
  for (const line of text.split("\n")) {
    const l = line.trim();
    if (!l.startsWith("{")) continue;
    try {
      const v = JSON.parse(l) as unknown;
      if (isObj(v) && typeof v.level === "number" && typeof v.msg === "string") out.push(v as ApiLogLine);
    } catch {
      // a line that only looks like JSON
    }
  }
  return out;
}

/** The line comfyui-api logged about not loading `containerFile` (the last one), shown as text. */
export function loadFailureOf(lines: ApiLogLine[], containerFile: string): string | undefined {
  const hit = [...lines].reverse().find((l) => l.file === containerFile && l.level >= 40);
  if (!hit) return undefined;
  return `comfyui-api: "${hit.msg}" (${hit.file})${hit.error ? `: ${String(hit.error)}` : ""}`;
}

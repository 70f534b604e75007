// What a comfyui-api workflow file says about itself, read from its source without running it
// (TypeScript's parser; pure): the model folders it reads from `config.models`, the model files
// and node classes its ComfyUI prompt names, an `example` input and `metadata` it exports, and
// whether comfyui-api will find its Workflow at all.
//
// comfyui-api loads a workflow with `eval(<the file transpiled to CommonJS>)`: the value is that
// of the file's LAST statement, which must be the `exports.default = ...` that `export default`
// becomes. An `export const example = ...` written after `export default` becomes the last
// statement, and the workflow is skipped ("File does not export a valid Workflow object").
import type ts from "typescript";
import { lazyTs } from "../lazy-typescript.ts";
import { CORE_LOADER_INPUTS, hasModelExtension, INPUT_NAME_FOLDERS } from "./model-folders.ts";
import { getOwn } from "./own-keys.ts";

export interface ModelFileRef {
  /** ComfyUI model folder (checkpoints, loras, ...) */
  folder: string;
  /** file name as the loader gets it; may contain sub-folders */
  name: string;
  /** where the file named it: "CheckpointLoaderSimple.ckpt_name", "metadata.models" */
  via: string;
}

export interface WorkflowFacts {
  rel: string;
  /** `config.models.<folder>` the file reads (comfyui-api builds those from MODEL_DIR at start-up) */
  modelFolders: string[];
  /** model files named literally: loader inputs of core nodes, and `metadata.models` */
  modelFiles: ModelFileRef[];
  /** node classes named literally (`class_type: "KSampler"`) */
  classTypes: string[];
  /** `export const example = {...}`: the input a smoke test posts */
  example?: Record<string, unknown>;
  /** problems that make comfyui-api skip the file, found without compiling it */
  problems: string[];
}

const CONFIG_MODULES = new Set(["../config", "../config.js", "../config.ts"]);

/** Read one workflow's source (.ts, or .js as comfyui-api evaluates it as is). */
export function analyzeWorkflow(rel: string, text: string): WorkflowFacts {
  const js = rel.endsWith(".js");
  const sf = lazyTs.createSourceFile(rel, text, lazyTs.ScriptTarget.ES2021, true, js ? lazyTs.ScriptKind.JS : lazyTs.ScriptKind.TS);
  const facts: WorkflowFacts = { rel, modelFolders: [], modelFiles: [], classTypes: [], problems: [] };
  const configNames = new Set<string>();
  for (const st of sf.statements) {
    if (lazyTs.isImportDeclaration(st) && lazyTs.isStringLiteral(st.moduleSpecifier) && CONFIG_MODULES.has(st.moduleSpecifier.text)) {
      const name = st.importClause?.name?.text;
      if (name) configNames.add(name);
    }
    // const config = require("../config").default  (a .js workflow)
    if (lazyTs.isVariableStatement(st)) {
      for (const d of st.declarationList.declarations) {
        if (lazyTs.isIdentifier(d.name) && d.initializer && requiresConfig(d.initializer)) configNames.add(d.name.text);
      }
    }
  }
  const folders = new Set<string>();
  const classes = new Set<string>();
  const files = new Map<string, ModelFileRef>();
  const visit = (n: ts.Node): void => {
    const folder = modelsMember(n, configNames);
    if (folder) folders.add(folder);
    if (lazyTs.isObjectLiteralExpression(n)) {
      const cls = stringProp(n, "class_type");
      if (cls !== undefined) {
        classes.add(cls);
        const inputs = propInit(n, "inputs");
        const loader = getOwn(CORE_LOADER_INPUTS, cls);
        if (inputs && lazyTs.isObjectLiteralExpression(inputs)) {
          // a core loader's inputs by its table; a custom loader's by the usual input names, for file names only
          const named = loader ?? Object.keys(INPUT_NAME_FOLDERS).map((input) => ({ input, folder: INPUT_NAME_FOLDERS[input]! }));
          for (const li of named) {
            const v = stringProp(inputs, li.input);
            if (v && (loader || hasModelExtension(v)))
              files.set(`${li.folder}/${v}`, { folder: li.folder, name: v, via: `${cls}.${li.input}` });
          }
        }
      }
    }
    lazyTs.forEachChild(n, visit);
  };
  visit(sf);
  facts.modelFolders = [...folders].sort();
  facts.classTypes = [...classes].sort();

  const example = exportedConst(sf, "example");
  if (example) {
    const v = literalValue(example);
    if (v === NOT_LITERAL || v === null || typeof v !== "object" || Array.isArray(v)) {
      facts.problems.push(
        '`example` must be a literal object (the input a smoke test posts), e.g. export const example = { prompt: "a cat" }',
      );
    } else facts.example = v as Record<string, unknown>;
  }
  const metadata = exportedConst(sf, "metadata");
  if (metadata) {
    const v = literalValue(metadata);
    const meta = v && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
    // `models` (hand-written files) and `requiredModels` (what workflow:generate writes) say the same
    for (const key of ["models", "requiredModels"] as const) {
      const models = meta[key];
      for (const ref of metadataModels(models, key)) files.set(`${ref.folder}/${ref.name}`, ref);
      if (models !== undefined && !metadataModels(models, key).length && !(Array.isArray(models) && models.length === 0)) {
        facts.problems.push(`\`metadata.${key}\` must list "folder/file" strings or { folder, name } objects`);
      }
    }
  }
  facts.modelFiles = [...files.values()].sort((a, b) => `${a.folder}/${a.name}`.localeCompare(`${b.folder}/${b.name}`));

  const load = loadProblem(rel, text);
  if (load) facts.problems.push(load);
  return facts;
}

function requiresConfig(e: ts.Expression): boolean {
  let x: ts.Expression = e;
  if (lazyTs.isPropertyAccessExpression(x) && x.name.text === "default") x = x.expression;
  return (
    lazyTs.isCallExpression(x) &&
    lazyTs.isIdentifier(x.expression) &&
    x.expression.text === "require" &&
    x.arguments.length === 1 &&
    lazyTs.isStringLiteral(x.arguments[0]!) &&
    CONFIG_MODULES.has((x.arguments[0] as ts.StringLiteral).text)
  );
}

/** `config.models.X` / `config.models["X"]` (optional chains too) -> "X". */
function modelsMember(n: ts.Node, configNames: Set<string>): string | undefined {
  if (!lazyTs.isPropertyAccessExpression(n) && !lazyTs.isElementAccessExpression(n)) return undefined;
  const inner = n.expression;
  if (!lazyTs.isPropertyAccessExpression(inner) || inner.name.text !== "models") return undefined;
  const base = inner.expression;
  if (!lazyTs.isIdentifier(base) || !configNames.has(base.text)) return undefined;
  if (lazyTs.isPropertyAccessExpression(n)) return n.name.text;
  const arg = n.argumentExpression;
  return lazyTs.isStringLiteralLike(arg) ? arg.text : undefined;
}

function propInit(o: ts.ObjectLiteralExpression, key: string): ts.Expression | undefined {
  for (const p of o.properties) {
    if (lazyTs.isPropertyAssignment(p) && propName(p.name) === key) return p.initializer;
  }
  return undefined;
}

function stringProp(o: ts.ObjectLiteralExpression, key: string): string | undefined {
  const init = propInit(o, key);
  return init && lazyTs.isStringLiteralLike(init) ? init.text : undefined;
}

function propName(n: ts.PropertyName): string | undefined {
  if (lazyTs.isIdentifier(n) || lazyTs.isStringLiteralLike(n) || lazyTs.isNumericLiteral(n)) return n.text;
  return undefined;
}

/** The initializer of `export const <name> = ...` at the top level. */
function exportedConst(sf: ts.SourceFile, name: string): ts.Expression | undefined {
  for (const st of sf.statements) {
    if (!lazyTs.isVariableStatement(st) || !st.modifiers?.some((m) => m.kind === lazyTs.SyntaxKind.ExportKeyword)) continue;
    for (const d of st.declarationList.declarations) {
      if (lazyTs.isIdentifier(d.name) && d.name.text === name && d.initializer) return d.initializer;
    }
  }
  return undefined;
}

export const NOT_LITERAL = Symbol("not a literal");

/** A JSON-like literal's value (`as const`, `satisfies`, parentheses, -1 and plain templates allowed). */
export function literalValue(e: ts.Expression): unknown {
  while (
    lazyTs.isAsExpression(e) ||
    lazyTs.isSatisfiesExpression(e) ||
    lazyTs.isParenthesizedExpression(e) ||
    lazyTs.isTypeAssertionExpression(e)
  )
    e = e.expression;
  if (lazyTs.isStringLiteralLike(e)) return e.text;
  if (lazyTs.isNumericLiteral(e)) return Number(e.text);
  if (lazyTs.isPrefixUnaryExpression(e) && e.operator === lazyTs.SyntaxKind.MinusToken && lazyTs.isNumericLiteral(e.operand))
    return -Number(e.operand.text);
  if (e.kind === lazyTs.SyntaxKind.TrueKeyword) return true;
  if (e.kind === lazyTs.SyntaxKind.FalseKeyword) return false;
  if (e.kind === lazyTs.SyntaxKind.NullKeyword) return null;
  if (lazyTs.isArrayLiteralExpression(e)) {
    const out: unknown[] = [];
    for (const x of e.elements) {
      const v = literalValue(x);
      if (v === NOT_LITERAL) return NOT_LITERAL;
      out.push(v);
    }
    return out;
  }
  if (lazyTs.isObjectLiteralExpression(e)) {
    const out: Record<string, unknown> = {};
    for (const p of e.properties) {
      if (!lazyTs.isPropertyAssignment(p)) return NOT_LITERAL;
      const k = propName(p.name);
      if (k === undefined) return NOT_LITERAL;
      const v = literalValue(p.initializer);
      if (v === NOT_LITERAL) return NOT_LITERAL;
      Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
    }
    return out;
  }
  return NOT_LITERAL;
}

/** `metadata.models`: ["checkpoints/x.safetensors", { folder: "loras", name: "y.safetensors" }, ...]. */
function metadataModels(v: unknown, key = "models"): ModelFileRef[] {
  if (!Array.isArray(v)) return [];
  const out: ModelFileRef[] = [];
  for (const m of v) {
    if (typeof m === "string") {
      const i = m.indexOf("/");
      if (i > 0 && i < m.length - 1) out.push({ folder: m.slice(0, i), name: m.slice(i + 1), via: `metadata.${key}` });
    } else if (m && typeof m === "object") {
      const r = m as Record<string, unknown>;
      const folder = r.folder ?? r.directory;
      const name = r.name ?? r.filename;
      if (typeof folder === "string" && typeof name === "string" && folder && name) out.push({ folder, name, via: `metadata.${key}` });
    }
  }
  return out;
}

/**
 * Whether comfyui-api's eval of the file ends on its Workflow: the last statement that has a value
 * must set `exports.default` (or `module.exports`). Declarations (function, class, const, type)
 * leave the value as it was, so they may follow. The .ts is transpiled first, exactly as
 * comfyui-api does (lazyTs.transpileModule, CommonJS).
 */
export function loadProblem(rel: string, text: string): string | undefined {
  const js = rel.endsWith(".js")
    ? text
    : lazyTs.transpileModule(text, { compilerOptions: { module: lazyTs.ModuleKind.CommonJS } }).outputText;
  const sf = lazyTs.createSourceFile("out.js", js, lazyTs.ScriptTarget.ES2021, true, lazyTs.ScriptKind.JS);
  if (
    rel.endsWith(".js") &&
    sf.statements.some(
      (st) =>
        lazyTs.isImportDeclaration(st) ||
        lazyTs.isExportDeclaration(st) ||
        lazyTs.isExportAssignment(st) ||
        (lazyTs.canHaveModifiers(st) && lazyTs.getModifiers(st)?.some((m) => m.kind === lazyTs.SyntaxKind.ExportKeyword)),
    )
  ) {
    return (
      "a .js workflow is evaluated as it is, as CommonJS: `import` / `export` fail there; " +
      "use require and module.exports, or name it .ts"
    );
  }
  for (let i = sf.statements.length - 1; i >= 0; i--) {
    const st = sf.statements[i]!;
    if (lazyTs.isFunctionDeclaration(st) || lazyTs.isClassDeclaration(st) || lazyTs.isVariableStatement(st) || lazyTs.isEmptyStatement(st))
      continue;
    if (lazyTs.isExpressionStatement(st) && setsExport(st.expression)) return undefined;
    const what = js.slice(st.getStart(sf), st.getEnd()).split("\n")[0]!.slice(0, 60);
    return (
      `comfyui-api takes the value of the file's last statement as the workflow, ` +
      `and here that is \`${what}\`: put \`export default <workflow>\` last`
    );
  }
  return "no default export: comfyui-api needs `export default` of a Workflow ({ RequestSchema, generateWorkflow })";
}

function setsExport(e: ts.Expression): boolean {
  if (!lazyTs.isBinaryExpression(e) || e.operatorToken.kind !== lazyTs.SyntaxKind.EqualsToken) return false;
  const l = e.left;
  if (!lazyTs.isPropertyAccessExpression(l)) return false;
  const obj = l.expression;
  if (lazyTs.isIdentifier(obj) && obj.text === "exports" && l.name.text === "default") return true;
  return lazyTs.isIdentifier(obj) && obj.text === "module" && l.name.text === "exports";
}

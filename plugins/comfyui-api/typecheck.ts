// Type-check the user's comfyui-api workflows on this machine, before anything reaches a host.
//
// One in-memory TypeScript program (the compiler API; nothing is written to disk) holds:
//   /comfyui-api/src/types.ts, /comfyui-api/src/config.ts, /comfyui-api/package.json
//                          comfyui-api's own files, of the version the host runs (./api-source.ts)
//   /comfyui-api/src/workflows/<rel>.ts   each workflow, where comfyui-api evaluates it
//   /flow-check/<rel>.ts   `const w: Workflow = <the workflow's default export>` for each
// Modules resolve as they do at run time on the host: comfyui-api transpiles each file and evals
// it inside its own dist/src/workflows/index.js, so EVERY relative import (whatever the file's
// sub-folder) is relative to src/workflows: `../types` and `../config` are comfyui-api's, and
// `./common` reaches nothing. `zod` is zod 3's API, as comfyui-api depends on zod ^3.25: flow's
// zod 4 ships that API as `zod/v3`, whose typings are used (and `zod/v4` is zod 4's, as in 3.25). Node's built-in modules get
// @types/node when it is installed beside flow, else permissive stubs; other packages that
// comfyui-api depends on (ws, yaml, ...) are typed `any`; a package comfyui-api lacks is an
// error (requiring it on the host throws, and comfyui-api skips the workflow).
// Compiler options are comfyui-api's own tsconfig's (strict, ES2021, esModuleInterop).
import { createRequire, builtinModules } from "node:module";
import { dirname, posix } from "node:path";
import type ts from "typescript";
import { lazyTs } from "../../lib/lazy-typescript.ts";

export interface ApiSources {
  /** comfyui-api's src/types.ts, src/config.ts and package.json, as text */
  types: string;
  config: string;
  packageJson: string;
}

export interface WorkflowSource {
  /** path under the workflows folder, "/"-separated: "qwen/txt2img.ts" */
  rel: string;
  text: string;
}

export interface TypeProblem {
  rel: string;
  /** 1-based; absent for a problem of the whole file */
  line?: number;
  col?: number;
  message: string;
}

const ROOT = "/comfyui-api";
const SRC = `${ROOT}/src`;
const WF = `${SRC}/workflows`;
const CHECK = "/flow-check";
const STUB = "/flow-stub/any.d.ts";
const GLOBALS = "/flow-stub/node-globals.d.ts";
const PACKAGES = "/flow-stub/packages.d.ts";

const req = createRequire(import.meta.url);

/** Where zod's typings are: flow's zod 4 carries zod 3's API as zod/v3 (comfyui-api's zod 3.25 carries zod 4's as zod/v4). */
function zodTypes(api: "v3" | "v4"): string {
  const pkg = dirname(req.resolve("zod/package.json"));
  return `${pkg}/${api}/index.d.cts`;
}

/** @types/node's folder when it is installed beside flow (a development install), else undefined. */
function nodeTypesRoot(): string | undefined {
  try {
    return dirname(dirname(req.resolve("@types/node/package.json")));
  } catch {
    return undefined;
  }
}

// Without @types/node: Node's modules and globals, typed `any`.
const NODE_STUBS =
  builtinModules
    .filter((m) => !m.startsWith("_"))
    .flatMap((m) => [m, `node:${m}`])
    .map((m) => `declare module ${JSON.stringify(m)};`)
    .join("\n") +
  `
declare var process: any;
declare var Buffer: any;
declare var require: any;
declare var module: any;
declare var exports: any;
declare var __dirname: string;
declare var __filename: string;
declare var global: any;
declare var console: any;
declare function setTimeout(handler: (...args: any[]) => void, ms?: number, ...args: any[]): any;
declare function clearTimeout(id: any): void;
declare function setInterval(handler: (...args: any[]) => void, ms?: number, ...args: any[]): any;
declare function clearInterval(id: any): void;
declare function setImmediate(handler: (...args: any[]) => void, ...args: any[]): any;
declare function fetch(input: any, init?: any): Promise<any>;
declare var URL: any;
declare var URLSearchParams: any;
declare var TextEncoder: any;
declare var TextDecoder: any;
declare var AbortController: any;
declare var AbortSignal: any;
declare function structuredClone<T>(value: T): T;
`;

// comfyui-api's tsconfig (strict, ES2021, esModuleInterop), without the DOM library its default
// would add: workflows run in Node, where `document` does not exist.
const OPTIONS: ts.CompilerOptions = {
  target: lazyTs.ScriptTarget.ES2021,
  lib: ["lib.es2021.d.ts"],
  module: lazyTs.ModuleKind.CommonJS,
  moduleResolution: lazyTs.ModuleResolutionKind.Node10,
  strict: true,
  esModuleInterop: true,
  resolveJsonModule: true,
  skipLibCheck: true,
  noEmit: true,
  allowJs: false,
  types: [],
};

const isBuiltin = (s: string) => s.startsWith("node:") || builtinModules.includes(s.split("/")[0]!);
const packageName = (s: string) => (s.startsWith("@") ? s.split("/").slice(0, 2).join("/") : s.split("/")[0]!);

/** The `dependencies` comfyui-api's package.json lists: what a workflow may require on the host. */
export function apiDependencies(packageJson: string): Set<string> {
  try {
    return new Set(Object.keys((JSON.parse(packageJson) as { dependencies?: Record<string, string> }).dependencies ?? {}));
  } catch {
    return new Set();
  }
}

/**
 * Type-check every .ts workflow against comfyui-api's types and config. Returns the problems, by
 * file (none: every file passed). .js workflows are not part of it (see the caller).
 */
export function typecheckWorkflows(files: WorkflowSource[], api: ApiSources, opts: { nodeTypes?: boolean } = {}): TypeProblem[] {
  // @types/node when installed (a development install of flow); a user's install has the stubs
  const nodeTypes = opts.nodeTypes === false ? undefined : nodeTypesRoot();
  const deps = apiDependencies(api.packageJson);
  const zodV3 = zodTypes("v3");
  const virtual = new Map<string, string>([
    [`${SRC}/types.ts`, api.types],
    [`${SRC}/config.ts`, api.config],
    [`${ROOT}/package.json`, api.packageJson],
    [STUB, "declare const anyModule: any;\nexport = anyModule;\n"],
    // comfyui-api's other dependencies (ws, yaml, ...): there on the host, typed `any` here
    [
      PACKAGES,
      [...deps]
        .filter((d) => d !== "zod")
        .map((d) => `declare module ${JSON.stringify(d)};\ndeclare module ${JSON.stringify(`${d}/*`)};`)
        .join("\n") + "\n",
    ],
  ]);
  if (!nodeTypes) virtual.set(GLOBALS, NODE_STUBS);
  const byVirtual = new Map<string, string>();
  /** file + specifier resolved to the `any` stub */
  const stubbed = new Set<string>();
  const checks: string[] = [];
  for (const f of files) {
    const path = `${WF}/${f.rel}`;
    virtual.set(path, f.text);
    byVirtual.set(path, f.rel);
    const check = `${CHECK}/${f.rel}`;
    const target = path.replace(/\.ts$/, "");
    virtual.set(
      check,
      `import type { Workflow } from ${JSON.stringify(`${SRC}/types`)};\n` +
        `import workflow from ${JSON.stringify(target)};\nconst flowCheck: Workflow = workflow;\nexport {};\n`,
    );
    byVirtual.set(check, f.rel);
    checks.push(check);
  }
  const options: ts.CompilerOptions = nodeTypes ? { ...OPTIONS, types: ["node"], typeRoots: [nodeTypes] } : OPTIONS;

  const real = lazyTs.createCompilerHost(options, true);
  const host: ts.CompilerHost = {
    ...real,
    fileExists: (f) => virtual.has(f) || (!f.startsWith(ROOT) && !f.startsWith(CHECK) && real.fileExists(f)),
    readFile: (f) => virtual.get(f) ?? (f.startsWith(ROOT) ? undefined : real.readFile(f)),
    getSourceFile: (f, lang, onError) => {
      const text = virtual.get(f);
      if (text !== undefined) return lazyTs.createSourceFile(f, text, lang, true);
      return libSourceFile(f, lang, () => real.getSourceFile(f, lang, onError));
    },
    writeFile: () => {},
    getCurrentDirectory: () => "/",
    resolveModuleNameLiterals: (literals, containingFile) => literals.map((lit) => ({ resolvedModule: resolve(lit.text, containingFile) })),
  };

  const resolved = (fileName: string, ext: ts.Extension, external = false): ts.ResolvedModuleFull => ({
    resolvedFileName: fileName,
    extension: ext,
    isExternalLibraryImport: external,
  });

  function resolve(spec: string, from: string): ts.ResolvedModuleFull | undefined {
    if (spec.startsWith("/")) {
      // the check files' own imports
      for (const ext of [".ts", ""]) if (virtual.has(spec + ext)) return resolved(spec + ext, lazyTs.Extension.Ts);
      return undefined;
    }
    const inApi = from.startsWith(ROOT);
    const realFile = !inApi && !from.startsWith(CHECK) && !from.startsWith("/flow-stub/");
    if (realFile) {
      // inside a real typings package (zod's own .d.cts files, @types/node): node's resolution from there
      return lazyTs.resolveModuleName(spec, from, options, real).resolvedModule as ts.ResolvedModuleFull | undefined;
    }
    if (spec.startsWith(".")) {
      // comfyui-api evals workflows in dist/src/workflows: relative to that folder, whatever the file's own
      const base = from.startsWith(WF) ? WF : posix.dirname(from);
      const target = posix.join(base, spec).replace(/\.(js|ts)$/, "");
      if (target === `${SRC}/types` || target === `${SRC}/config`) return resolved(`${target}.ts`, lazyTs.Extension.Ts);
      if (target === `${ROOT}/package.json` || target === `${SRC}/../package.json`)
        return resolved(`${ROOT}/package.json`, lazyTs.Extension.Json);
      // another of comfyui-api's own modules: there at run time, but flow has no types for it
      if (posix.dirname(target) === SRC) {
        stubbed.add(`${from}\0${spec}`);
        return resolved(STUB, lazyTs.Extension.Dts);
      }
      return undefined;
    }
    if (spec === "zod" || spec === "zod/v3") return resolved(zodV3, lazyTs.Extension.Dcts, true);
    if (spec === "zod/v4") return resolved(zodTypes("v4"), lazyTs.Extension.Dcts, true);
    if (isBuiltin(spec)) return undefined; // ambient: @types/node or the stubs
    return undefined; // a dependency of comfyui-api: its shorthand ambient module; anything else: not found
  }

  const roots = [...byVirtual.keys()].filter((p) => p.startsWith(WF)).concat(checks, [PACKAGES]);
  if (!nodeTypes) roots.push(GLOBALS);
  const program = lazyTs.createProgram({ rootNames: roots, options, host });
  const problems: TypeProblem[] = [];
  const diags = [
    ...program.getOptionsDiagnostics(),
    ...program.getGlobalDiagnostics(),
    ...roots.flatMap((r) => {
      const sf = program.getSourceFile(r);
      return sf ? [...program.getSyntacticDiagnostics(sf), ...program.getSemanticDiagnostics(sf)] : [];
    }),
  ];
  for (const d of diags) {
    const file = d.file?.fileName;
    const rel = file ? byVirtual.get(file) : undefined;
    if (!rel) continue; // problems inside comfyui-api's own files are not the workflow's
    const text = lazyTs.flattenDiagnosticMessageText(d.messageText, "\n");
    // a named import from one of comfyui-api's modules flow has no types for (../utils): not knowable here
    const member = /^Module '"([^"]+)"' has no exported member/.exec(text);
    if (member && stubbed.has(`${file}\0${member[1]}`)) continue;
    if (file!.startsWith(CHECK)) {
      problems.push({ rel, message: checkMessage(text) });
      continue;
    }
    const pos = d.start !== undefined ? d.file!.getLineAndCharacterOfPosition(d.start) : undefined;
    problems.push({ rel, line: pos && pos.line + 1, col: pos && pos.character + 1, message: explain(text, deps) });
  }
  return dedupe(problems);
}

/** The check file's complaint, said of the workflow. */
function checkMessage(text: string): string {
  if (/has no default export/.test(text))
    return "no default export: comfyui-api needs `export default` of a Workflow ({ RequestSchema, generateWorkflow })";
  return `its default export is not a comfyui-api Workflow: ${text}`;
}

/** TypeScript's words, plus what they mean on the host. */
function explain(text: string, deps: Set<string>): string {
  const m = /^Cannot find module '([^']+)'/.exec(text);
  if (!m) return text;
  const spec = m[1]!;
  if (spec.startsWith(".")) {
    return (
      `cannot import '${spec}': comfyui-api evaluates every workflow inside its own dist/src/workflows, ` +
      `so a relative import reaches only comfyui-api's modules (../types, ../config), not files beside the workflow`
    );
  }
  if (!deps.has(packageName(spec)))
    return (
      `cannot import '${spec}': comfyui-api does not depend on ${packageName(spec)}, ` +
      `so requiring it on the host fails and the workflow is skipped`
    );
  return text;
}

function dedupe(ps: TypeProblem[]): TypeProblem[] {
  const seen = new Set<string>();
  return ps.filter((p) => {
    const k = `${p.rel}:${p.line}:${p.col}:${p.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

// TypeScript's lib files and zod's typings are the same for every check in a process: parse once.
const libCache = new Map<string, ts.SourceFile | undefined>();
function libSourceFile(
  f: string,
  lang: ts.ScriptTarget | ts.CreateSourceFileOptions,
  make: () => ts.SourceFile | undefined,
): ts.SourceFile | undefined {
  const key = `${typeof lang === "object" ? lang.languageVersion : lang}:${f}`;
  if (!libCache.has(key)) libCache.set(key, make());
  return libCache.get(key);
}

/** One line per problem: `qwen/txt2img.ts:12:5: Type 'string' is not assignable ...`. */
export function formatTypeProblem(p: TypeProblem): string {
  return `${p.rel}${p.line ? `:${p.line}:${p.col}` : ""}: ${p.message}`;
}

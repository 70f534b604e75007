// Source repositories of ComfyUI custom-node packs for tests: small generated packs (real Python
// ComfyUI can import, a literal NODE_CLASS_MAPPINGS the lab's stand-in reads; a class takes
// placeholder inputs, or those of a definition such as pack-definitions.ts holds), packs for the
// classes ComfyUI-Manager's extension-node-map assigns to repositories, and the real InfiniteTalk
// fork of ComfyUI-WanVideoWrapper cloned from ../shared/vendor. Serve them with fake-git.ts.
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { dataPath, SHARED } from "../unit/comfy/shared-data.ts";
import { importNameOf, parseRequirement, stubsForRequirements, type StubVersion } from "./fake-pypi.ts";
import { REAL_DEFINITIONS } from "./pack-definitions.ts";

const run = promisify(execFile);

export interface PackSpec {
  /** the pack's name: its repository's and folder's */
  name: string;
  /** node class names, the keys of NODE_CLASS_MAPPINGS (any text: the Python identifiers are made up) */
  classes: string[];
  /** requirements.txt lines */
  requirements?: string[];
  /** commits to make (default 3); each one changes VERSION and pyproject.toml's version */
  commits?: number;
  /** an install.py, as ComfyUI-Manager runs after a clone: it appends a line to install-py-ran.txt beside itself */
  installPy?: boolean;
  /** __init__.py imports every requirement's module, so the pack fails to load until they are installed */
  importRequirements?: boolean;
  /** more files, path -> content */
  extraFiles?: Record<string, string>;
  /** the Comfy Registry publisher pyproject.toml names (default "flow-test") */
  publisher?: string;
  /** [project] name in pyproject.toml, the Registry's node id (default: the name lowercased) */
  registryId?: string;
  /** classes (of `classes`) declared with these inputs and outputs; the others take placeholder inputs `value`, `text` */
  definitions?: Record<string, NodeDefinition>;
}

/** A Python literal written as JSON (true, false, null become True, False, None). */
export type PyValue = null | boolean | number | string | readonly PyValue[] | { readonly [key: string]: PyValue };
/** One input as INPUT_TYPES returns it: its type ("INT", "IMAGE", ...) or a combo's options, then its options. */
export type PyInputSpec = readonly [type: string | readonly string[], options?: { readonly [key: string]: PyValue }];

/** A node class as its pack declares it, rendered into a Python class by packFiles. */
export interface NodeDefinition {
  required?: Record<string, PyInputSpec>;
  optional?: Record<string, PyInputSpec>;
  /** hidden inputs: name -> what ComfyUI fills in ("PROMPT", "UNIQUE_ID", ...) */
  hidden?: Record<string, string>;
  returnTypes: string[];
  /** RETURN_NAMES (default: none, ComfyUI then names outputs by their types) */
  returnNames?: string[];
  outputNode?: boolean;
  /** CATEGORY (default "flow-test/<pack>") */
  category?: string;
  /** FUNCTION (default "run") */
  function?: string;
  /** its NODE_DISPLAY_NAME_MAPPINGS entry (default: none, ComfyUI then shows the class name) */
  displayName?: string;
}

export interface Pack {
  dir: string;
  /** commit shas, oldest first */
  commits: string[];
  /** VERSION at each commit, same order */
  versions: string[];
}

const PY_KEYWORDS = new Set(
  (
    "False None True and as assert async await break class continue def del elif else except finally for from global if import in is " +
    "lambda nonlocal not or pass raise return try while with yield match case type"
  )
    .split(" ")
    .filter(Boolean),
);
const pyString = (s: string) => JSON.stringify(s); // a JSON string is a valid Python str literal
const tomlString = (s: string) => JSON.stringify(s); // and a valid TOML basic string
const pyTuple = (items: string[]) => (items.length === 1 ? `(${items[0]},)` : `(${items.join(", ")})`);

/** A value as a Python literal: lists, dicts, str, int/float, True/False/None. */
function pyLiteral(v: PyValue): string {
  if (v === null) return "None";
  if (typeof v === "boolean") return v ? "True" : "False";
  if (typeof v === "number") {
    if (!Number.isFinite(v)) throw new Error(`not a Python literal: ${v}`);
    return JSON.stringify(v);
  }
  if (typeof v === "string") return pyString(v);
  if (Array.isArray(v)) return `[${v.map(pyLiteral).join(", ")}]`;
  return `{${Object.entries(v as Record<string, PyValue>)
    .map(([k, x]) => `${pyString(k)}: ${pyLiteral(x)}`)
    .join(", ")}}`;
}

/** The Python class for a node with a definition: INPUT_TYPES in the definition's order, its outputs, a no-op FUNCTION. */
function definedClass(id: string, name: string, pack: string, d: NodeDefinition): string {
  const fn = d.function ?? "run";
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(fn) || PY_KEYWORDS.has(fn)) throw new Error(`${name}: FUNCTION ${fn} is not a Python identifier`);
  const pad = " ".repeat(12);
  const section = <T>(key: string, entries: Record<string, T> | undefined, render: (v: T) => string): string[] => {
    const rows = Object.entries(entries ?? {}).map(([k, v]) => `${pad}    ${pyString(k)}: ${render(v)},`);
    return rows.length ? [`${pad}${pyString(key)}: {`, ...rows, `${pad}},`] : [];
  };
  const spec = ([type, options]: PyInputSpec) => pyTuple([pyLiteral(type), ...(options ? [pyLiteral(options)] : [])]);
  const inputs = [
    ...section("required", d.required, spec),
    ...section("optional", d.optional, spec),
    ...section("hidden", d.hidden, pyString),
  ];
  const lines = [
    `class ${id}:`,
    `    ${pyString(`${name}: a node of ${pack} (flow's test pack), declared as the real pack declares it.`)}`,
    "",
    "    @classmethod",
    "    def INPUT_TYPES(cls):",
    "        return {",
    ...inputs,
    "        }",
    "",
    `    RETURN_TYPES = ${pyTuple(d.returnTypes.map(pyString))}`,
    ...(d.returnNames ? [`    RETURN_NAMES = ${pyTuple(d.returnNames.map(pyString))}`] : []),
    `    FUNCTION = ${pyString(fn)}`,
    `    CATEGORY = ${pyString(d.category ?? `flow-test/${pack}`)}`,
    ...(d.outputNode ? ["    OUTPUT_NODE = True"] : []),
    "",
    `    def ${fn}(self, **kwargs):`,
    "        return tuple(None for _ in self.RETURN_TYPES)",
    "",
  ];
  return lines.join("\n");
}

/** Every file of a pack at one version: __init__.py with one small node class per name, requirements.txt, pyproject.toml, VERSION. */
export function packFiles(spec: PackSpec, version: string): Record<string, string> {
  const used = new Set<string>();
  const ident = (name: string, i: number) => {
    let id = /^[A-Za-z_][A-Za-z0-9_]*$/.test(name) && !PY_KEYWORDS.has(name) ? name : `Node${i}_${name.replace(/[^A-Za-z0-9_]/g, "_")}`;
    while (used.has(id)) id += "_";
    used.add(id);
    return id;
  };
  const classes = spec.classes.map((name, i) => ({ name, id: ident(name, i) }));
  const requirements = spec.requirements ?? [];
  const imports = spec.importRequirements
    ? requirements.flatMap((r) => {
        const p = parseRequirement(r);
        return p ? [`import ${importNameOf(p.name)}  # noqa: F401 (the pack needs it)`] : [];
      })
    : [];
  const category = `flow-test/${spec.name}`;
  const definitions = spec.definitions ?? {};
  const defined = (name: string) => (Object.hasOwn(definitions, name) ? definitions[name] : undefined);
  const body = classes.map(({ name, id }) =>
    defined(name)
      ? definedClass(id, name, spec.name, defined(name)!)
      : `class ${id}:
    ${pyString(`${name}: a node of ${spec.name} (flow's test pack).`)}

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "value": ("INT", {"default": 1, "min": 0, "max": 100}),
                "text": ("STRING", {"default": "", "multiline": False}),
            }
        }

    RETURN_TYPES = ("INT", "STRING")
    RETURN_NAMES = ("value", "text")
    FUNCTION = "run"
    CATEGORY = ${pyString(category)}

    def run(self, value, text):
        return (value, text)
`,
  );
  const mapping = (value: (c: { name: string; id: string }) => string, of = classes) =>
    `{\n${of.map((c) => `    ${pyString(c.name)}: ${value(c)},\n`).join("")}}`;
  // a defined class has the display name its pack gives it, or none (ComfyUI then shows the class name)
  const named = classes.filter((c) => !defined(c.name) || defined(c.name)!.displayName !== undefined);
  const displayName = (c: { name: string }) => defined(c.name)?.displayName ?? `${c.name} (${spec.name})`;
  const init = [
    `# ${spec.name} ${version}: a custom-node pack generated for flow's tests.`,
    ...imports,
    "",
    "",
    ...body.flatMap((b) => [b, ""]),
    `NODE_CLASS_MAPPINGS = ${mapping((c) => c.id)}`,
    "",
    `NODE_DISPLAY_NAME_MAPPINGS = ${mapping((c) => pyString(displayName(c)), named)}`,
    "",
    `__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]`,
    "",
  ].join("\n");
  const publisher = spec.publisher ?? "flow-test";
  const deps = requirements.map((r) => tomlString(r.trim())).join(", ");
  const pyproject = `[project]
name = ${tomlString(spec.registryId ?? spec.name.toLowerCase())}
description = ${tomlString(`${spec.name}: generated for flow's tests`)}
version = ${tomlString(version)}
license = { text = "MIT" }
dependencies = [${deps}]

[project.urls]
Repository = ${tomlString(`https://github.com/${publisher}/${spec.name}`)}

[tool.comfy]
PublisherId = ${tomlString(publisher)}
DisplayName = ${tomlString(spec.name)}
Icon = ""
`;
  const files: Record<string, string> = {
    "__init__.py": init,
    "requirements.txt": requirements.map((r) => `${r}\n`).join(""),
    "pyproject.toml": pyproject,
    VERSION: `${version}\n`,
    ...spec.extraFiles,
  };
  if (spec.installPy) {
    files["install.py"] = `# Run by ComfyUI-Manager after a clone; the mark tells tests it ran.
import os

with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "install-py-ran.txt"), "a") as f:
    f.write("ran\\n")
`;
  }
  return files;
}

const GIT_ENV = { GIT_CONFIG_NOSYSTEM: "1", GIT_CONFIG_GLOBAL: "/dev/null", GIT_TERMINAL_PROMPT: "0" };

/** A git repository at `dir` (created) holding the pack, `commits` commits deep; VERSION is 1.0.0, 1.0.1, ... */
export async function makePack(dir: string, spec: PackSpec): Promise<Pack> {
  const n = spec.commits ?? 3;
  if (n < 1) throw new Error("a pack needs at least one commit");
  await mkdir(dir, { recursive: true });
  const git = async (args: string[], i = 0) => {
    // fixed identities and dates: the same pack gets the same shas
    const date = `${1735689600 + i * 3600} +0000`;
    const who = { GIT_AUTHOR_NAME: "Pack Author", GIT_AUTHOR_EMAIL: "author@example.com", GIT_AUTHOR_DATE: date };
    const env = { ...process.env, ...GIT_ENV, ...who, GIT_COMMITTER_NAME: "Pack Author", GIT_COMMITTER_EMAIL: "author@example.com" };
    return (await run("git", ["-C", dir, ...args], { env: { ...env, GIT_COMMITTER_DATE: date } })).stdout.trim();
  };
  await git(["init", "--quiet", "--initial-branch=main"]);
  const commits: string[] = [];
  const versions: string[] = [];
  for (let i = 0; i < n; i++) {
    const version = `1.0.${i}`;
    for (const [path, content] of Object.entries(packFiles(spec, version))) {
      await mkdir(dirname(join(dir, path)), { recursive: true });
      await writeFile(join(dir, path), content);
    }
    await git(["add", "--all"]);
    await git(["commit", "--quiet", "--no-gpg-sign", "-m", i ? `${spec.name} ${version}` : `${spec.name}: first version`], i);
    commits.push(await git(["rev-parse", "HEAD"]));
    versions.push(version);
  }
  return { dir, commits, versions };
}

// ---------- packs for the classes of ComfyUI-Manager's extension-node-map ----------

export interface MapPack extends Pack {
  /** the repository URL as the map names it */
  url: string;
  /** "owner/repo", fake-git's name for it */
  repo: string;
  /** the classes the generated pack declares */
  classes: string[];
}

export interface MapPacks {
  packs: MapPack[];
  /** "owner/repo" -> source folder: fake-git's `repos` */
  repos: Record<string, string>;
  /** each asked class -> the repository URLs whose pack declares it, the map's preemptors first */
  byClass: Record<string, string[]>;
  /** asked classes no GitHub repository of the map declares */
  unresolved: string[];
}

export interface MapPacksOptions {
  /** where the repositories go (default: a new temp folder) */
  dir?: string;
  /** every repository that declares a class gets a pack (default), or only this many, the map's preemptors first */
  reposPerClass?: number;
  /** each pack declares all of its classes in the map (the asked ones always), up to `maxClasses`; default only the asked ones */
  allClasses?: boolean;
  maxClasses?: number;
  /** commits per pack (default 2) */
  commits?: number;
}

type NodeMap = Record<string, [string[], { preemptions?: string[] }?]>;

/**
 * For each class, the GitHub repositories that ComfyUI-Manager's extension-node-map.json says
 * declare it, and for each such repository a generated pack declaring the asked classes it has.
 * Every claimant gets one: whichever the product picks, it finds its pack. A class REAL_DEFINITIONS
 * (pack-definitions.ts) has is declared as its upstream pack declares it, in every claimant's pack;
 * the others take placeholder inputs.
 */
export async function packsForClasses(extensionNodeMapPath: string, classNames: string[], o: MapPacksOptions = {}): Promise<MapPacks> {
  const map = JSON.parse(readFileSync(extensionNodeMapPath, "utf8")) as NodeMap;
  const github = /^https:\/\/github\.com\/([A-Za-z0-9][A-Za-z0-9-]*)\/([A-Za-z0-9._-]+?)(?:\.git)?\/?$/;
  const byClass: Record<string, string[]> = {};
  const unresolved: string[] = [];
  const wanted = new Map<string, Set<string>>();
  for (const cls of [...new Set(classNames)]) {
    const claim = Object.keys(map).filter((url) => github.test(url) && Array.isArray(map[url]?.[0]) && map[url]![0].includes(cls));
    const preempts = (url: string) => (map[url]?.[1]?.preemptions ?? []).includes(cls);
    const urls = [...claim.filter(preempts), ...claim.filter((u) => !preempts(u))].slice(0, o.reposPerClass ?? Infinity);
    if (!urls.length) unresolved.push(cls);
    byClass[cls] = urls;
    for (const url of urls) wanted.set(url, (wanted.get(url) ?? new Set()).add(cls));
  }
  const root = o.dir ?? mkdtempSync(join(tmpdir(), "flow-map-packs-"));
  const packs: MapPack[] = [];
  for (const [url, asked] of wanted) {
    const [, owner, name] = github.exec(url)!;
    const declared = map[url]![0];
    const classes = o.allClasses
      ? [...asked, ...declared.filter((c) => !asked.has(c))].slice(0, Math.max(asked.size, o.maxClasses ?? 50))
      : [...asked];
    const dir = join(root, owner!, name!);
    const definitions = Object.fromEntries(classes.filter((c) => Object.hasOwn(REAL_DEFINITIONS, c)).map((c) => [c, REAL_DEFINITIONS[c]!]));
    const pack = await makePack(dir, { name: name!, classes, commits: o.commits ?? 2, publisher: owner!.toLowerCase(), definitions });
    packs.push({ ...pack, url, repo: `${owner}/${name}`, classes });
  }
  return { packs, repos: Object.fromEntries(packs.map((p) => [p.repo, p.dir])), byClass, unresolved };
}

// ---------- the real InfiniteTalk pack and its requirements ----------

/** The vendored git bundle of the InfiniteTalk fork of ComfyUI-WanVideoWrapper (one commit); undefined when ../shared is absent. */
export const INFINITETALK_BUNDLE = (() => {
  // vendor/ sits beside data/ (FLOW_TEST_SHARED_DATA moves both)
  const p = join(SHARED, "..", "vendor", "packs", "InfiniteTalk-comfyui.bundle");
  return existsSync(p) ? p : undefined;
})();

/** A clone of the InfiniteTalk bundle in a new temp folder (a source for fake-git); its one commit's sha with it. */
export async function infiniteTalkPackSource(): Promise<{ dir: string; commit: string }> {
  if (!INFINITETALK_BUNDLE) throw new Error("the InfiniteTalk bundle is not beside this clone (../shared/vendor/packs)");
  const dir = join(mkdtempSync(join(tmpdir(), "flow-infinitetalk-")), "ComfyUI-WanVideoWrapper");
  const env = { ...process.env, ...GIT_ENV };
  await run("git", ["clone", "--quiet", INFINITETALK_BUNDLE, dir], { env });
  const commit = (await run("git", ["-C", dir, "rev-parse", "HEAD"], { env })).stdout.trim();
  return { dir, commit };
}

/** The InfiniteTalk pack's requirements.txt (../shared/data) and stub packages meeting each line, for startFakePypi. */
export function infiniteTalkRequirements(): { text: string; path: string; packages: Record<string, StubVersion[]> } {
  const path = dataPath("infinitetalk/requirements.txt");
  if (!path) throw new Error("reference data missing: infinitetalk/requirements.txt");
  const text = readFileSync(path, "utf8");
  return { text, path, packages: stubsForRequirements(text) };
}

// A PEP 503 simple index serving stub wheels built here, so `pip install` really runs (resolver,
// downloads, wheel install) without the real packages or the internet. Each wheel holds a module
// that accepts anything (attributes, submodules, calls, subclassing), enough for a node pack's
// imports to succeed. Also the tiny zip writer the wheels (and fake-registry's archives) need.
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { createHash } from "node:crypto";
import type { AddressInfo } from "node:net";
import { crc32, deflateRawSync } from "node:zlib";

// ---------- zip ----------

/** A zip archive of these files (path -> content), deflated where that is smaller; fixed 1980 dates, so the bytes are stable. */
export function zipFiles(files: Record<string, string | Buffer>): Buffer {
  const locals: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const [path, content] of Object.entries(files)) {
    const name = Buffer.from(path, "utf8");
    const data = Buffer.isBuffer(content) ? content : Buffer.from(content, "utf8");
    const deflated = deflateRawSync(data);
    const [method, body] = deflated.length < data.length ? [8, deflated] : [0, data];
    const crc = crc32(data);
    // shared head of the local and central records: version 2.0, UTF-8 names, method, time 0, date 1980-01-01
    const head = (b: Buffer, at: number) => {
      b.writeUInt16LE(20, at);
      b.writeUInt16LE(0x0800, at + 2);
      b.writeUInt16LE(method, at + 4);
      b.writeUInt16LE(0, at + 6);
      b.writeUInt16LE(0x21, at + 8);
      b.writeUInt32LE(crc, at + 10);
      b.writeUInt32LE(body.length, at + 14);
      b.writeUInt32LE(data.length, at + 18);
      b.writeUInt16LE(name.length, at + 22);
    };
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    head(local, 4);
    locals.push(local, name, body);
    const cd = Buffer.alloc(46);
    cd.writeUInt32LE(0x02014b50, 0);
    cd.writeUInt16LE((3 << 8) | 20, 4); // made by Unix, so the external attributes carry a file mode
    head(cd, 6);
    cd.writeUInt32LE((0o100644 << 16) >>> 0, 38);
    cd.writeUInt32LE(offset, 42);
    central.push(cd, name);
    offset += local.length + name.length + body.length;
  }
  const cdSize = central.reduce((n, b) => n + b.length, 0);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(central.length / 2, 8);
  end.writeUInt16LE(central.length / 2, 10);
  end.writeUInt32LE(cdSize, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, ...central, end]);
}

// ---------- names ----------

/** PEP 503 normalized project name. */
export const normalizeName = (name: string) => name.replace(/[-_.]+/g, "-").toLowerCase();
/** The name as wheel file names and .dist-info folders spell it. */
const wheelName = (name: string) => name.replace(/[-_.]+/g, "_");

/** Distributions whose import name is not their name lowercased with - turned into _. */
export const IMPORT_NAMES: Record<string, string> = {
  protobuf: "google.protobuf",
  "opencv-python": "cv2",
  "opencv-python-headless": "cv2",
  "opencv-contrib-python": "cv2",
  "opencv-contrib-python-headless": "cv2",
  pillow: "PIL",
  "scikit-image": "skimage",
  "scikit-learn": "sklearn",
  pyyaml: "yaml",
  beautifulsoup4: "bs4",
  "python-dateutil": "dateutil",
  "onnxruntime-gpu": "onnxruntime",
  gitpython: "git",
  "websocket-client": "websocket",
  pyopengl: "OpenGL",
  pyserial: "serial",
  "faiss-cpu": "faiss",
  "faiss-gpu": "faiss",
  "dlib-bin": "dlib",
  "python-ffmpeg": "ffmpeg",
  "ffmpeg-python": "ffmpeg",
  "pytorch-lightning": "pytorch_lightning",
  "lark-parser": "lark",
};

/** The module a distribution is imported as. */
export const importNameOf = (dist: string) => IMPORT_NAMES[normalizeName(dist)] ?? normalizeName(dist).replace(/-/g, "_");

// ---------- the stub module ----------

// Python source of a module that pretends to be anything: PEP 562 __getattr__ hands out stubs, a
// meta-path finder makes every `<module>.x.y` importable, and a stub works as a value, a callable,
// a decorator, a base class (PEP 560 __mro_entries__), a context manager and an empty iterable.
export function stubModuleSource(importName: string, version: string): string {
  return `# Stub of ${importName} ${version} for flow's tests: every attribute, submodule, call and base class works.
import sys as _sys
import types as _types

__version__ = ${JSON.stringify(version)}


def _make_kit():
    # one kit for every stub module in the process: classes deriving from stubs of two
    # distributions (torch.nn.Module and a diffusers mixin) then share one metaclass
    import abc
    import importlib.abc as iabc
    import importlib.machinery as machinery

    def dunder(name):
        return name.startswith("__") and name.endswith("__")

    class StubMeta(abc.ABCMeta):
        # ABCMeta as the base: a class mixing a stub with abc.ABC has no metaclass conflict
        def __getattr__(cls, name):
            if dunder(name):
                raise AttributeError(name)
            return Stub(cls.__qualname__ + "." + name)

    class StubBase(metaclass=StubMeta):
        def __init__(self, *args, **kwargs):
            pass

        def __init_subclass__(cls, **kwargs):
            pass

        def __getattr__(self, name):
            if dunder(name):
                raise AttributeError(name)
            return Stub(type(self).__qualname__ + "." + name)

    class Stub:
        def __init__(self, name):
            object.__setattr__(self, "_stub_name", name)

        def __getattr__(self, name):
            if dunder(name):
                raise AttributeError(name)
            # kept, so torch.float16 is torch.float16 (dict keys, comparisons)
            child = Stub(self._stub_name + "." + name)
            object.__setattr__(self, name, child)
            return child

        def __call__(self, *args, **kwargs):
            # a bare decorator (@stub) keeps the function or class it decorates
            if len(args) == 1 and not kwargs and (isinstance(args[0], type) or hasattr(args[0], "__code__")):
                return args[0]
            return Stub(self._stub_name + "()")

        def __mro_entries__(self, bases):
            # one real class per stub, so two stubs can be bases of the same class
            cls = self.__dict__.get("_stub_class")
            if cls is None:
                cls = StubMeta(self._stub_name.rsplit(".", 1)[-1], (StubBase,), {"__module__": self._stub_name.rsplit(".", 1)[0]})
                object.__setattr__(self, "_stub_class", cls)
            return (cls,)

        def __instancecheck__(self, obj):
            return False

        def __subclasscheck__(self, cls):
            return False

        def __iter__(self):
            return iter(())

        def __len__(self):
            return 0

        def __bool__(self):
            return True

        def __contains__(self, item):
            return False

        def __getitem__(self, key):
            return Stub(self._stub_name + "[]")

        def __setitem__(self, key, value):
            pass

        def __delitem__(self, key):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def __int__(self):
            return 0

        def __index__(self):
            return 0

        def __float__(self):
            return 0.0

        def __str__(self):
            return self._stub_name

        def __repr__(self):
            return "<stub " + self._stub_name + ">"

    def operator(name):
        def op(self, *other):
            return Stub(self._stub_name + "." + name)
        return op

    def false(self, other):
        return False

    for name in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "and", "or", "xor", "lshift", "rshift"):
        setattr(Stub, "__" + name + "__", operator(name))
        setattr(Stub, "__r" + name + "__", operator(name))
    for name in ("neg", "pos", "abs", "invert"):
        setattr(Stub, "__" + name + "__", operator(name))
    for name in ("lt", "le", "gt", "ge"):
        setattr(Stub, "__" + name + "__", false)

    def module_getattr(module_name):
        def __getattr__(name):
            if dunder(name):
                raise AttributeError(name)
            child = Stub(module_name + "." + name)
            setattr(_sys.modules[module_name], name, child)
            return child
        return __getattr__

    class Loader(iabc.Loader):
        def create_module(self, spec):
            return None

        def exec_module(self, module):
            module.__getattr__ = module_getattr(module.__name__)

    class Finder(iabc.MetaPathFinder):
        # last on sys.meta_path: a real submodule, if one is installed, is found first
        def __init__(self, prefix):
            self.stub_prefix = prefix

        def find_spec(self, fullname, path=None, target=None):
            if not fullname.startswith(self.stub_prefix):
                return None
            return machinery.ModuleSpec(fullname, Loader(), is_package=True)

    for cls in (StubMeta, StubBase, Stub):
        cls.__module__, cls.__qualname__ = "_flow_stub_kit", cls.__name__
    kit = _types.ModuleType("_flow_stub_kit")
    kit.Stub, kit.StubBase, kit.module_getattr, kit.Finder = Stub, StubBase, module_getattr, Finder
    _sys.modules[kit.__name__] = kit
    return kit


_kit = _sys.modules.get("_flow_stub_kit") or _make_kit()
__getattr__ = _kit.module_getattr(__name__)
if not any(getattr(f, "stub_prefix", None) == __name__ + "." for f in _sys.meta_path):
    _sys.meta_path.append(_kit.Finder(__name__ + "."))
`;
}

// ---------- wheels ----------

export interface StubVersion {
  version: string;
  /** Requires-Dist lines, e.g. "numpy>=1.24" */
  requires?: string[];
  /** the module the wheel installs (default: IMPORT_NAMES, else the name lowercased with - as _) */
  importName?: string;
  /** left out of the index: pip finds no such version (all versions broken: no such project) */
  broken?: true;
}

export interface Wheel {
  filename: string;
  content: Buffer;
  sha256: string;
}

const b64sha = (b: Buffer) => createHash("sha256").update(b).digest("base64url");

/**
 * A py3-none-any wheel of a stub distribution: the stub module (namespace folders above it left
 * without __init__.py), METADATA, WHEEL, RECORD.
 */
export function buildWheel(name: string, v: StubVersion): Wheel {
  const base = `${wheelName(name)}-${v.version}`;
  const info = `${base}.dist-info`;
  const mod = v.importName ?? importNameOf(name);
  const requires = (v.requires ?? []).map((r) => `Requires-Dist: ${r}\n`).join("");
  const files: Record<string, string> = {
    [`${mod.replace(/\./g, "/")}/__init__.py`]: stubModuleSource(mod, v.version),
    [`${info}/METADATA`]:
      `Metadata-Version: 2.1\nName: ${name}\nVersion: ${v.version}\n` + `Summary: stub of ${name} for flow's tests\n${requires}`,
    [`${info}/WHEEL`]: "Wheel-Version: 1.0\nGenerator: flow-fake-pypi\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
  };
  const record = Object.entries(files).map(([p, c]) => `${p},sha256=${b64sha(Buffer.from(c))},${Buffer.byteLength(c)}\n`);
  files[`${info}/RECORD`] = record.join("") + `${info}/RECORD,,\n`;
  const content = zipFiles(files);
  return { filename: `${base}-py3-none-any.whl`, content, sha256: createHash("sha256").update(content).digest("hex") };
}

// ---------- requirements -> stub versions ----------

const parseVersion = (v: string) => v.split(".").map((x) => Number.parseInt(x, 10) || 0);
function compareVersions(a: string, b: string): number {
  const [x, y] = [parseVersion(a), parseVersion(b)];
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0);
    if (d) return d;
  }
  return 0;
}

/** Whether a plain release version (digits and dots) meets one specifier clause like ">=1.2" or "==1.*". */
export function satisfies(version: string, clause: string): boolean {
  const m = /^\s*(===|==|!=|~=|>=|<=|>|<)\s*([0-9][0-9.]*)(\.\*)?\s*$/.exec(clause);
  if (!m) throw new Error(`unsupported version specifier: ${clause}`);
  const [, op, want, star] = m;
  if (star) {
    const same = version === want || version.startsWith(`${want}.`);
    return op === "!=" ? !same : same;
  }
  const c = compareVersions(version, want!);
  if (op === "~=") {
    const prefix = want!.split(".").slice(0, -1).join(".");
    return c >= 0 && (version === prefix || version.startsWith(`${prefix}.`));
  }
  return { "===": c === 0, "==": c === 0, "!=": c !== 0, ">=": c >= 0, "<=": c <= 0, ">": c > 0, "<": c < 0 }[op!]!;
}

/** One requirements.txt line as name and specifier clauses; undefined for blanks, comments, options and URLs. */
export function parseRequirement(line: string): { name: string; clauses: string[] } | undefined {
  const text = line
    .replace(/(^|\s)#.*$/, "")
    .split(";")[0]!
    .trim();
  if (!text || text.startsWith("-") || /^[a-z+]+:\/\//i.test(text) || text.includes(" @ ")) return undefined;
  const m = /^([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*(.*)$/.exec(text);
  if (!m) return undefined;
  const spec = m[3]!.replace(/^\(|\)$/g, "").trim();
  return { name: m[1]!, clauses: spec ? spec.split(",").map((s) => s.trim()) : [] };
}

/** A version meeting every clause: the highest lower bound (a ">" one bumped), else 1.0.0; throws when that misses an upper bound. */
export function versionFor(clauses: string[]): string {
  let v = "1.0.0";
  let bound: string | undefined;
  for (const c of clauses) {
    const m = /^(===|==|~=|>=|>)\s*([0-9][0-9.]*)(\.\*)?$/.exec(c);
    if (!m) continue;
    let candidate = m[3] ? `${m[2]}.0` : m[2]!;
    if (m[1] === ">") candidate = `${candidate}.1`;
    if (!bound || compareVersions(candidate, bound) > 0) bound = candidate;
  }
  if (bound) v = bound;
  else if (!clauses.every((c) => satisfies(v, c))) v = "0.0.1"; // only upper bounds, below 1.0.0
  const missed = clauses.find((c) => !satisfies(v, c));
  if (missed) throw new Error(`no stub version for ${clauses.join(",")}: ${v} misses ${missed}`);
  return v;
}

/** Stub packages for every requirement of a requirements.txt text, each at a version its specifiers accept. */
export function stubsForRequirements(text: string): Record<string, StubVersion[]> {
  const out: Record<string, StubVersion[]> = {};
  for (const line of text.split(/\r?\n/)) {
    const r = parseRequirement(line);
    if (r) out[r.name] = [{ version: versionFor(r.clauses) }];
  }
  return out;
}

// ---------- the index ----------

export interface FakePypiOptions {
  /** project name (any spelling) -> its versions */
  packages: Record<string, StubVersion[]>;
}

export interface FakePypi {
  /** http://127.0.0.1:<port>/simple/ (pip's --index-url) */
  url: string;
  port: number;
  /** every request, "METHOD /path" */
  requests: string[];
  /** wheel file names served, by normalized project name */
  wheels(project: string): string[];
  /** adds (or replaces) a project's versions while running */
  add(name: string, versions: StubVersion[]): void;
  close(): Promise<void>;
}

export async function startFakePypi(opts: FakePypiOptions): Promise<FakePypi> {
  const requests: string[] = [];
  const projects = new Map<string, { name: string; wheels: Wheel[] }>();
  const files = new Map<string, Wheel>();
  const add = (name: string, versions: StubVersion[]) => {
    const wheels = versions.filter((v) => !v.broken).map((v) => buildWheel(name, v));
    for (const w of wheels) files.set(w.filename, w);
    if (wheels.length) projects.set(normalizeName(name), { name, wheels });
    else projects.delete(normalizeName(name));
  };
  for (const [name, versions] of Object.entries(opts.packages)) add(name, versions);

  const send = (res: ServerResponse, status: number, type: string, body: string | Buffer, extra: Record<string, string> = {}) => {
    res.writeHead(status, { "content-type": type, "content-length": Buffer.byteLength(body), ...extra });
    res.end(body);
  };
  const page = (title: string, links: string[]) =>
    `<!DOCTYPE html>\n<html><head><meta name="pypi:repository-version" content="1.0"><title>${title}</title></head>\n` +
    `<body><h1>${title}</h1>\n${links.join("<br/>\n")}\n</body></html>\n`;

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const path = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname);
    requests.push(`${req.method} ${path}`);
    if (path === "/simple" || path === "/simple/") {
      const links = [...projects.keys()].sort().map((n) => `<a href="${n}/">${n}</a>`);
      return send(res, 200, "text/html", page("Simple index", links));
    }
    let m = /^\/simple\/([^/]+)(\/?)$/.exec(path);
    if (m) {
      const norm = normalizeName(m[1]!);
      // PyPI answers a non-normalized name or a missing slash with a redirect to the canonical page
      if (norm !== m[1] || !m[2]) return send(res, 301, "text/plain", "", { location: `/simple/${norm}/` });
      const p = projects.get(norm);
      if (!p) return send(res, 404, "text/plain", "404 Not Found");
      const links = p.wheels.map((w) => `<a href="../../files/${w.filename}#sha256=${w.sha256}">${w.filename}</a>`);
      return send(res, 200, "text/html", page(`Links for ${norm}`, links));
    }
    m = /^\/files\/([^/]+)$/.exec(path);
    const w = m && files.get(m[1]!);
    if (w && req.method === "HEAD") return void res.writeHead(200, { "content-length": w.content.length }).end();
    if (w) return send(res, 200, "application/octet-stream", w.content);
    send(res, 404, "text/plain", "404 Not Found");
  };

  const server = createServer(handle);
  await new Promise<void>((ok, fail) => server.once("error", fail).listen(0, "127.0.0.1", ok));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/simple/`,
    port,
    requests,
    wheels: (project) => projects.get(normalizeName(project))?.wheels.map((w) => w.filename) ?? [],
    add,
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}

// The local servers lab tests of custom-node installs stand on (test/support/fake-git.ts,
// fake-pypi.ts, fake-registry.ts, fake-packs.ts), checked against the real clients: git clones and
// shallow fetches over smart HTTP, pip resolves and installs stub wheels, the Registry answers per
// its OpenAPI spec and its archives unpack. Local and fast; no lab.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startFakeGit, type FakeGit } from "../support/fake-git.ts";
import {
  infiniteTalkPackSource,
  infiniteTalkRequirements,
  INFINITETALK_BUNDLE,
  makePack,
  packsForClasses,
  type Pack,
} from "../support/fake-packs.ts";
import { buildWheel, satisfies, parseRequirement, startFakePypi, type FakePypi } from "../support/fake-pypi.ts";
import { startFakeRegistry, type FakeRegistry } from "../support/fake-registry.ts";
import { upstreamClient, upstreamUrls } from "../../plugins/workflow/upstream.ts";
import { dataPath, needs } from "./comfy/shared-data.ts";

const haveGit = (() => {
  const r = spawnSync("git", ["--exec-path"], { encoding: "utf8" });
  return r.status === 0 && existsSync(join(r.stdout.trim(), "git-http-backend"));
})();
const havePython = spawnSync("python3", ["-c", "pass"]).status === 0;
const havePip = havePython && spawnSync("python3", ["-m", "pip", "--version"]).status === 0;
const NO_GIT = haveGit ? false : "git (with git-http-backend) is not installed";
const NO_PIP = havePip ? false : "python3 with pip is not installed (Debian: python3-pip)";
const NO_PYTHON = havePython ? false : "python3 is not installed";

// no user or system configuration of git or pip: a machine's pip.conf (find-links, extra indexes)
// would mix real packages into what the fake index serves
const GIT_ENV = { GIT_CONFIG_NOSYSTEM: "1", GIT_CONFIG_GLOBAL: "/dev/null", GIT_TERMINAL_PROMPT: "0" };
const cleanEnv = () => Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(PIP_|PYTHON)/.test(k)));
const PY_ENV = { PIP_CONFIG_FILE: "/dev/null", PYTHONNOUSERSITE: "1", PYTHONDONTWRITEBYTECODE: "1" };

interface Out {
  code: number;
  stdout: string;
  stderr: string;
}
/** A child process, never a blocking spawnSync: the servers it talks to run in this process. */
function sh(cmd: string, args: string[], o: { cwd?: string; env?: Record<string, string>; input?: string } = {}): Promise<Out> {
  return new Promise((ok) => {
    const env = { ...cleanEnv(), ...GIT_ENV, ...PY_ENV, ...o.env };
    const c = execFile(cmd, args, { cwd: o.cwd, env, maxBuffer: 64 << 20 }, (err, stdout, stderr) =>
      ok({ code: err ? (typeof err.code === "number" ? err.code : 1) : 0, stdout, stderr }),
    );
    if (o.input !== undefined) c.stdin!.end(o.input);
  });
}
async function must(cmd: string, args: string[], o: Parameters<typeof sh>[2] = {}): Promise<string> {
  const r = await sh(cmd, args, o);
  assert.equal(r.code, 0, `${cmd} ${args.join(" ")} failed:\n${r.stderr}${r.stdout}`);
  return r.stdout.trim();
}
const pip = (index: string, args: string[]) =>
  sh("python3", ["-m", "pip", "install", "--disable-pip-version-check", "--no-cache-dir", "--index-url", index, ...args]);
/** python3 without site-packages (-S): only what PYTHONPATH holds is importable beyond the standard library. */
const python = (script: string, path: string[] = [], args: string[] = []) =>
  sh("python3", ["-S", "-c", script, ...args], { env: { PYTHONPATH: path.join(":") } });

const tmp = mkdtempSync(join(tmpdir(), "flow-lab-servers-"));
after(() => rmSync(tmp, { recursive: true, force: true }));
let seq = 0;
const fresh = (name: string) => join(tmp, `${++seq}-${name}`);

describe("fake git: smart HTTP through git http-backend", { skip: NO_GIT }, () => {
  let pack: Pack;
  let gh: FakeGit;
  let refusing: FakeGit;
  const insteadOf = (g: FakeGit) => ["-c", `url.${g.url}/.insteadOf=https://github.com/`];

  before(async () => {
    pack = await makePack(fresh("r"), { name: "r", classes: ["Alpha"], commits: 3 });
    gh = await startFakeGit({ repos: { "o/r": pack.dir } });
    refusing = await startFakeGit({ repos: { "o/r": pack.dir }, allowShaWant: false });
  });
  after(async () => {
    await gh?.close();
    await refusing?.close();
  });

  test("makePack: commits oldest first, each with its own VERSION; the server has the same history", async () => {
    assert.equal(pack.commits.length, 3);
    assert.deepEqual(pack.versions, ["1.0.0", "1.0.1", "1.0.2"]);
    assert.deepEqual((await must("git", ["-C", pack.dir, "rev-list", "--reverse", "HEAD"])).split("\n"), pack.commits);
    for (const [i, c] of pack.commits.entries())
      assert.equal(await must("git", ["-C", pack.dir, "show", `${c}:VERSION`]), pack.versions[i]);
    assert.deepEqual(gh.commits("o/r"), pack.commits);
    assert.ok(existsSync(join(gh.repoPath("o/r"), "HEAD")), "a bare repository under <owner>/<repo>.git");
  });

  test("https://github.com/o/r and o/r.git clone from it through url.insteadOf", async () => {
    for (const [i, u] of ["https://github.com/o/r", "https://github.com/o/r.git"].entries()) {
      const dir = fresh(`clone${i}`);
      await must("git", [...insteadOf(gh), "clone", "--quiet", u, dir]);
      assert.equal(await must("git", ["-C", dir, "rev-parse", "HEAD"]), pack.commits[2]);
      assert.equal(readFileSync(join(dir, "VERSION"), "utf8"), "1.0.2\n");
    }
    assert.ok(gh.requests.includes("GET /o/r/info/refs?service=git-upload-pack"), gh.requests.join("\n"));
    assert.ok(gh.requests.includes("GET /o/r.git/info/refs?service=git-upload-pack"));
    assert.ok(gh.requests.includes("POST /o/r/git-upload-pack"));
  });

  test("a shallow fetch of an older commit by sha gets that commit alone", async () => {
    const dir = fresh("shallow");
    await must("git", ["init", "--quiet", dir]);
    await must("git", ["-C", dir, "remote", "add", "origin", "https://github.com/o/r"]);
    await must("git", ["-C", dir, ...insteadOf(gh), "fetch", "--quiet", "--depth", "1", "origin", pack.commits[0]!]);
    assert.equal(await must("git", ["-C", dir, "rev-parse", "FETCH_HEAD"]), pack.commits[0]);
    assert.equal(await must("git", ["-C", dir, "rev-list", "--count", "FETCH_HEAD"]), "1");
    assert.equal(await must("git", ["-C", dir, "rev-parse", "--is-shallow-repository"]), "true");
    assert.equal(await must("git", ["-C", dir, "show", "FETCH_HEAD:VERSION"]), "1.0.0");
  });

  test("allowShaWant: false refuses that fetch (protocol v2 asked or not) but serves the branch tip", async () => {
    const dir = fresh("refused");
    await must("git", ["init", "--quiet", dir]);
    await must("git", ["-C", dir, "remote", "add", "origin", "https://github.com/o/r"]);
    for (const v of ["2", "0"]) {
      const r = await sh("git", [
        "-C",
        dir,
        ...insteadOf(refusing),
        "-c",
        `protocol.version=${v}`,
        "fetch",
        "--depth",
        "1",
        "origin",
        pack.commits[0]!,
      ]);
      assert.notEqual(r.code, 0, `protocol ${v}: the fetch by sha went through`);
      assert.match(r.stderr, /unadvertised object|not our ref/);
    }
    await must("git", ["-C", dir, ...insteadOf(refusing), "fetch", "--quiet", "--depth", "1", "origin", "main"]);
    assert.equal(await must("git", ["-C", dir, "rev-parse", "FETCH_HEAD"]), pack.commits[2]);
  });

  test("addCommit: an upstream change reaches an existing clone", async () => {
    const dir = fresh("pull");
    await must("git", [...insteadOf(gh), "clone", "--quiet", "https://github.com/o/r", dir]);
    const sha = await gh.addCommit("o/r", { files: { VERSION: "2.0.0\n", "docs/NEW.md": "new\n" }, message: "2.0.0" });
    assert.deepEqual(gh.commits("o/r"), [...pack.commits, sha]);
    await must("git", ["-C", dir, ...insteadOf(gh), "pull", "--quiet", "--ff-only"]);
    assert.equal(await must("git", ["-C", dir, "rev-parse", "HEAD"]), sha);
    assert.equal(readFileSync(join(dir, "VERSION"), "utf8"), "2.0.0\n");
    assert.equal(readFileSync(join(dir, "docs/NEW.md"), "utf8"), "new\n");
    assert.equal(
      readFileSync(join(dir, "__init__.py"), "utf8"),
      readFileSync(join(pack.dir, "__init__.py"), "utf8"),
      "the rest of the tree kept",
    );
  });

  test("a large fetch request comes gzipped and is served", async () => {
    // 30 branches on 30 commits: the want lines pass 1 KiB, above which git gzips the request
    const many = await makePack(fresh("many"), { name: "many", classes: ["M"], commits: 30 });
    for (const [i, c] of many.commits.entries()) await must("git", ["-C", many.dir, "branch", `b${i}`, c]);
    await gh.addRepo("o/many", many.dir);
    const dir = fresh("many-clone");
    await must("git", [...insteadOf(gh), "clone", "--quiet", "--no-single-branch", "https://github.com/o/many", dir]);
    assert.equal(await must("git", ["-C", dir, "rev-parse", "origin/b0"]), many.commits[0]);
    assert.ok(
      gh.gzipped.some((r) => r.startsWith("POST /o/many/git-upload-pack")),
      `no gzipped request: ${gh.requests.join("\n")}`,
    );
  });

  test("an unknown repository is a 404 git reports as not found", async () => {
    const r = await sh("git", [...insteadOf(gh), "clone", "https://github.com/o/nope", fresh("nope")]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /not found/i);
    assert.ok(gh.requests.includes("GET /o/nope/info/refs?service=git-upload-pack"));
  });
});

describe("fake pypi: pip resolves and installs stub wheels", { skip: NO_PIP }, () => {
  let pypi: FakePypi;
  before(async () => {
    pypi = await startFakePypi({
      packages: {
        torch: [{ version: "2.8.0" }],
        diffusers: [{ version: "0.33.0" }],
        Stub_Parent: [{ version: "1.0.0", requires: ["stub-child>=2"] }],
        "stub-child": [{ version: "1.0.0" }, { version: "2.1.0" }],
        "needs-broken": [{ version: "1.0.0", requires: ["broken-dep"] }],
        "broken-dep": [{ version: "1.0.0", broken: true }],
        "opencv-python": [{ version: "4.10.0" }],
        protobuf: [{ version: "5.28.0" }],
      },
    });
  });
  after(() => pypi?.close());

  test("a wheel is a valid zip whose RECORD lists every file with its sha256 and size", async () => {
    const w = buildWheel("Stub.Thing", { version: "1.2.3", requires: ["numpy>=1.24"] });
    assert.equal(w.filename, "Stub_Thing-1.2.3-py3-none-any.whl");
    const file = join(fresh("wheel"), w.filename);
    mkdirSync(join(file, ".."), { recursive: true });
    writeFileSync(file, w.content);
    const check = `
import base64, hashlib, sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
assert z.testzip() is None
names = set(z.namelist())
info = "Stub_Thing-1.2.3.dist-info/"
rows = [l.split(",") for l in z.read(info + "RECORD").decode().splitlines()]
assert {r[0] for r in rows} == names, (names, rows)
for path, digest, size in rows:
    if path == info + "RECORD":
        assert digest == "" and size == ""
        continue
    data = z.read(path)
    want = "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    assert digest == want and int(size) == len(data), path
meta = z.read(info + "METADATA").decode()
assert "Metadata-Version: 2.1\\nName: Stub.Thing\\nVersion: 1.2.3\\n" in meta and "Requires-Dist: numpy>=1.24\\n" in meta, meta
wheel = z.read(info + "WHEEL").decode()
assert "Wheel-Version: 1.0" in wheel and "Root-Is-Purelib: true" in wheel and "Tag: py3-none-any" in wheel
assert "stub_thing/__init__.py" in names
print("ok")`;
    assert.equal(await must("python3", ["-c", check, file]), "ok");
  });

  test("the index: PEP 503 root and project pages, canonical-name redirects, sha256 fragments that match the files", async () => {
    const root = await (await fetch(pypi.url)).text();
    assert.match(root, /<a href="stub-parent\/">stub-parent<\/a>/);
    assert.doesNotMatch(root, /broken-dep/);
    const redirect = await fetch(`${pypi.url}Stub_Parent/`, { redirect: "manual" });
    assert.equal(redirect.status, 301);
    assert.equal(redirect.headers.get("location"), "/simple/stub-parent/");
    assert.equal((await fetch(`${pypi.url}broken-dep/`)).status, 404);
    const page = await (await fetch(`${pypi.url}stub-child/`)).text();
    const links = [...page.matchAll(/<a href="([^"#]+)#sha256=([0-9a-f]{64})">([^<]+)<\/a>/g)];
    assert.deepEqual(
      links.map((l) => l[3]),
      ["stub_child-1.0.0-py3-none-any.whl", "stub_child-2.1.0-py3-none-any.whl"],
    );
    assert.doesNotMatch(page, /data-requires-python/);
    for (const [, href, sha] of links) {
      const body = Buffer.from(await (await fetch(new URL(href!, `${pypi.url}stub-child/`))).arrayBuffer());
      assert.equal(createHash("sha256").update(body).digest("hex"), sha);
    }
  });

  test("pip follows Requires-Dist and picks the version the specifier asks for", async () => {
    const target = fresh("site");
    const r = await pip(pypi.url, ["--target", target, "stub-parent"]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(existsSync(join(target, "stub_child-2.1.0.dist-info")), readdirSync(target).join(" "));
    const out = await python("import stub_parent, stub_child; print(stub_parent.__version__, stub_child.__version__)", [target]);
    assert.equal(out.stdout.trim(), "1.0.0 2.1.0", out.stderr);
    assert.ok(pypi.requests.includes("GET /simple/stub-child/"));
  });

  test("the stubs take whatever a pack does with them at import time", async () => {
    const target = fresh("site");
    assert.equal((await pip(pypi.url, ["--target", target, "torch", "diffusers", "opencv-python", "protobuf"])).code, 0);
    const script = `
import abc, typing
import torch, cv2
import diffusers.models.attention_processor as ap
from diffusers.models import ModelMixin
from google.protobuf import message
import torch.nn.functional as F
assert torch.__version__ == "2.8.0" and cv2.__version__ == "4.10.0"
class Net(torch.nn.Module, ModelMixin, abc.ABC):
    def __init__(self, dim: int, dtype: typing.Optional[torch.Tensor] = None, other: torch.Tensor | None = None):
        super().__init__(dim, device="cuda")
        self.proj = torch.nn.Linear(dim, dim)
    @torch.no_grad()
    def forward(self, x):
        with torch.autocast("cuda"):
            return F.silu(self.proj(x) * 2 + 1)
@torch.compile
def plain():
    return 7
assert plain() == 7
net = Net(4)
assert isinstance(net, Net) and not isinstance(net, torch.Tensor)
net.forward(torch.zeros(3))
assert list(torch.zeros(2)) == [] and len(torch.zeros(2)) == 0
assert torch.float16 is torch.float16 and {torch.float16: 1}[torch.float16] == 1
assert Net.from_pretrained("x") is not None and ap.AttnProcessor2_0 is not None and message.Message is not None
import torch.deeply.nested.module as deep
assert deep.anything is not None
from torch import *  # noqa
print("ok")`;
    const r = await python(script, [target]);
    assert.equal(r.stdout.trim(), "ok", r.stderr);
  });

  test("a requirement missing from the index fails, naming it", async () => {
    const r = await pip(pypi.url, ["--target", fresh("site"), "needs-broken"]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /No matching distribution found for broken-dep/);
  });

  test("pip install --dry-run --report - lists what would be installed, installing nothing", async () => {
    const target = fresh("site");
    const r = await pip(pypi.url, ["--dry-run", "--report", "-", "--quiet", "--target", target, "stub-parent"]);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout) as {
      install: { metadata: { name: string; version: string }; requested: boolean; download_info: { url: string } }[];
    };
    const got = report.install.map((i) => [i.metadata.name, i.metadata.version, i.requested, i.download_info.url]);
    const files = pypi.url.replace(/simple\/$/, "files/");
    assert.deepEqual(
      got.sort((a, b) => (String(a[0]).toLowerCase() < String(b[0]).toLowerCase() ? -1 : 1)),
      [
        ["stub-child", "2.1.0", false, `${files}stub_child-2.1.0-py3-none-any.whl`],
        ["Stub_Parent", "1.0.0", true, `${files}Stub_Parent-1.0.0-py3-none-any.whl`],
      ],
    );
    assert.ok(!existsSync(join(target, "stub_parent")), "a dry run installed something");
  });

  test(
    "the InfiniteTalk pack's requirements install from the index and import",
    { skip: needs("infinitetalk/requirements.txt") },
    async () => {
      const reqs = infiniteTalkRequirements();
      const names = reqs.text.split("\n").flatMap((l) => parseRequirement(l)?.name ?? []);
      assert.ok(names.length >= 9 && names.includes("diffusers") && names.includes("protobuf"), names.join(" "));
      const index = await startFakePypi({ packages: reqs.packages });
      try {
        const target = fresh("site");
        const r = await pip(index.url, ["--target", target, "-r", reqs.path]);
        assert.equal(r.code, 0, r.stderr);
        const imports = "import ftfy, einops, google.protobuf; from diffusers.models import X; print(X)";
        const out = await python(imports, [target]);
        assert.equal(out.code, 0, out.stderr);
        // every specifier met by what pip installed
        const versions = await python(
          `import json, importlib.metadata as m; print(json.dumps({n: m.version(n) for n in ${JSON.stringify(names)}}))`,
          [target],
        );
        const got = JSON.parse(versions.stdout) as Record<string, string>;
        for (const line of reqs.text.split("\n")) {
          const p = parseRequirement(line);
          if (p) for (const c of p.clauses) assert.ok(satisfies(got[p.name]!, c), `${p.name} ${got[p.name]} misses ${c}`);
        }
      } finally {
        await index.close();
      }
    },
  );
});

describe("fake Comfy Registry", () => {
  let reg: FakeRegistry;
  const get = async (path: string) => {
    const r = await fetch(`${reg.url}${path}`);
    return { status: r.status, body: (await r.json()) as any };
  };
  before(async () => {
    reg = await startFakeRegistry({
      nodes: {
        "comfyui-foo": {
          name: "ComfyUI-Foo",
          publisher: "acme",
          classes: ["FooLoader", "Foo Sampler"],
          requirements: ["einops>=0.8"],
          versions: ["1.0.0", { version: "1.1.0", changelog: "faster" }, { version: "1.2.0", status: "NodeVersionStatusDeleted" }],
        },
        "banned-pack": { versions: ["0.1.0"], status: "NodeStatusBanned" },
      },
    });
  });
  after(() => reg?.close());

  /** The property names a schema of the registry's OpenAPI file declares (a plain reading of its YAML). */
  function specProps(schema: string): Set<string> {
    const text = readFileSync(dataPath("specs/registry-backend-openapi-2025-02.yml")!, "utf8");
    const block = text.split(`\n    ${schema}:\n`)[1]!.split(/\n {4}\S/)[0]!;
    return new Set([...block.matchAll(/^ {8}(\w+):$/gm)].map((m) => m[1]!));
  }

  test("/nodes/{id}, /versions, /versions/{v}, /install: latest, order, statuses, errors", async () => {
    const node = await get("/nodes/comfyui-foo");
    assert.equal(node.status, 200);
    assert.equal(node.body.latest_version.version, "1.1.0", "the newest active version");
    const versions = await get("/nodes/comfyui-foo/versions");
    assert.deepEqual(
      versions.body.map((v: { version: string }) => v.version),
      ["1.1.0", "1.0.0"],
      "newest first, the deleted one left out",
    );
    const deleted = await get("/nodes/comfyui-foo/versions?statuses=NodeVersionStatusDeleted");
    assert.deepEqual(
      deleted.body.map((v: { version: string }) => v.version),
      ["1.2.0"],
    );
    const one = await get("/nodes/comfyui-foo/versions/1.0.0");
    assert.equal(one.body.version, "1.0.0");
    assert.deepEqual(one.body.dependencies, ["einops>=0.8"]);
    assert.equal(one.body.node_id, "comfyui-foo");
    assert.equal(one.body.status, "NodeVersionStatusActive");
    const install = await get("/nodes/comfyui-foo/install?version=1.0.0");
    assert.equal(install.body.downloadUrl, `${reg.url}/files/comfyui-foo/1.0.0.zip`);
    assert.equal((await get("/nodes/comfyui-foo/install")).body.version, "1.1.0");
    // the link names the address the client used: a lab host (or its container) asks through a forward
    const viaName = (await (await fetch(`http://localhost:${reg.port}/nodes/comfyui-foo/install`)).json()) as { downloadUrl: string };
    assert.equal(viaName.downloadUrl, `http://localhost:${reg.port}/files/comfyui-foo/1.1.0.zip`);

    assert.equal((await get("/nodes/comfyui-foo/install?version=latest")).status, 400);
    assert.equal((await get("/nodes/nope")).status, 404);
    assert.equal((await get("/nodes/nope/versions")).status, 404);
    assert.equal((await get("/nodes/comfyui-foo/versions/9.9.9")).status, 404);
    assert.equal((await get("/nodes/comfyui-foo/install?version=1.2.0")).status, 404);
    assert.equal((await get("/nodes/banned-pack")).status, 403);
  });

  test(
    "every field and error body is one the OpenAPI spec names",
    { skip: needs("specs/registry-backend-openapi-2025-02.yml") },
    async () => {
      const nodeProps = specProps("Node");
      const versionProps = specProps("NodeVersion");
      assert.ok(nodeProps.has("latest_version") && versionProps.has("downloadUrl"), "the spec reading found the schemas");
      const node = (await get("/nodes/comfyui-foo")).body;
      for (const k of Object.keys(node)) assert.ok(nodeProps.has(k), `Node has no ${k} in the spec`);
      for (const k of Object.keys(node.publisher)) assert.ok(specProps("Publisher").has(k), `Publisher has no ${k} in the spec`);
      for (const path of ["/nodes/comfyui-foo/versions/1.0.0", "/nodes/comfyui-foo/install"]) {
        const v = (await get(path)).body;
        for (const k of Object.keys(v)) assert.ok(versionProps.has(k), `NodeVersion has no ${k} in the spec`);
      }
      for (const k of Object.keys((await get("/nodes/comfyui-foo/versions")).body[0])) assert.ok(versionProps.has(k));
      // ErrorResponse {error, message} on /nodes/{id} and /install, Error {message} on the versions routes
      for (const path of ["/nodes/nope", "/nodes/comfyui-foo/install?version=9.9.9", "/nodes/comfyui-foo/install?version=x"]) {
        assert.deepEqual(Object.keys((await get(path)).body).sort(), [...specProps("ErrorResponse")].sort(), path);
      }
      for (const path of ["/nodes/nope/versions", "/nodes/comfyui-foo/versions/9.9.9"]) {
        const body = (await get(path)).body;
        assert.ok(Object.keys(body).length && Object.keys(body).every((k) => specProps("Error").has(k)), path);
      }
    },
  );

  test("plugins/workflow/upstream.ts reads it at FLOW_REGISTRY_URL", async () => {
    const c = upstreamClient(upstreamUrls({ FLOW_REGISTRY_URL: reg.url }), { allowHosts: [new URL(reg.url).host] });
    assert.equal(await c.registryLatest("comfyui-foo"), "1.1.0");
    assert.equal(await c.registryHasVersion("comfyui-foo", "1.0.0"), true);
    assert.equal(await c.registryHasVersion("comfyui-foo", "1.2.0"), false);
  });

  test("a version's archive unpacks to a pack at the zip root that Python loads", { skip: NO_PYTHON }, async () => {
    const { body } = await get("/nodes/comfyui-foo/install?version=1.1.0");
    const zip = Buffer.from(await (await fetch(body.downloadUrl)).arrayBuffer());
    assert.deepEqual(zip, reg.archive("comfyui-foo", "1.1.0"));
    const dir = fresh("unzipped");
    const file = `${dir}.zip`;
    writeFileSync(file, zip);
    await must("python3", ["-m", "zipfile", "-e", file, dir]);
    assert.deepEqual(readdirSync(dir).sort(), ["VERSION", "__init__.py", "pyproject.toml", "requirements.txt"]);
    const pyproject = readFileSync(join(dir, "pyproject.toml"), "utf8");
    assert.match(pyproject, /^\[project\]\nname = "comfyui-foo"\n/);
    assert.match(pyproject, /^version = "1\.1\.0"$/m);
    assert.match(pyproject, /^\[tool\.comfy\]\nPublisherId = "acme"$/m);
    assert.equal(readFileSync(join(dir, "requirements.txt"), "utf8"), "einops>=0.8\n");
    const load = `
import importlib.util, json, sys, tomllib
spec = importlib.util.spec_from_file_location("pack", sys.argv[1] + "/__init__.py", submodule_search_locations=[sys.argv[1]])
m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
t = tomllib.load(open(sys.argv[1] + "/pyproject.toml", "rb"))
print(json.dumps([list(m.NODE_CLASS_MAPPINGS), t["project"]["dependencies"]]))`;
    const r = await sh("python3", ["-c", load, dir]);
    assert.deepEqual(JSON.parse(r.stdout || "null"), [["FooLoader", "Foo Sampler"], ["einops>=0.8"]], r.stderr);
  });
});

describe("generated and real node packs", { skip: NO_GIT }, () => {
  test(
    "a generated pack loads in Python: every class, its inputs, display names; install.py leaves its mark",
    { skip: NO_PYTHON },
    async () => {
      const classes = ["Plain", "With Space", "class", 'Quo"ted \\ back', "Ünïcode ✓", "Plain "];
      const pack = await makePack(fresh("odd"), {
        name: "Odd-Pack",
        classes,
        commits: 1,
        installPy: true,
        extraFiles: { "web/x.js": "//\n" },
      });
      const script = `
import importlib.util, json, sys
d = sys.argv[1]
spec = importlib.util.spec_from_file_location("odd_pack", d + "/__init__.py", submodule_search_locations=[d])
m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
out = []
for name, cls in m.NODE_CLASS_MAPPINGS.items():
    req = cls.INPUT_TYPES()["required"]
    node = cls()
    result = getattr(node, cls.FUNCTION)(**{k: v[1]["default"] for k, v in req.items()})
    out.append([name, m.NODE_DISPLAY_NAME_MAPPINGS[name], req["value"][0], req["value"][1]["max"], list(cls.RETURN_TYPES), list(result)])
print(json.dumps(out))`;
      const r = await sh("python3", ["-c", script, pack.dir]);
      const got = JSON.parse(r.stdout || "null") as unknown[][];
      assert.deepEqual(
        got?.map((g) => g[0]),
        classes,
        r.stderr,
      );
      assert.deepEqual(got[0], ["Plain", "Plain (Odd-Pack)", "INT", 100, ["INT", "STRING"], [1, ""]]);
      assert.ok(existsSync(join(pack.dir, "web/x.js")));
      await must("python3", [join(pack.dir, "install.py")]);
      assert.equal(readFileSync(join(pack.dir, "install-py-ran.txt"), "utf8"), "ran\n");
    },
  );

  test("importRequirements: the pack loads only once pip installed its requirements", { skip: NO_PIP }, async () => {
    const pack = await makePack(fresh("needy"), {
      name: "Needy",
      classes: ["NeedyNode"],
      requirements: ["einops>=0.8", "opencv-python"],
      importRequirements: true,
      commits: 1,
    });
    const pypi = await startFakePypi({ packages: { einops: [{ version: "0.8.1" }], "opencv-python": [{ version: "4.10.0" }] } });
    try {
      const load = (path: string[]) =>
        python(
          `import importlib.util as u, sys; s = u.spec_from_file_location("needy", sys.argv[1]); ` +
            `s.loader.exec_module(u.module_from_spec(s)); print("loaded")`,
          path,
          [join(pack.dir, "__init__.py")],
        );
      const without = await load([]);
      assert.match(without.stderr, /ModuleNotFoundError: No module named 'einops'/);
      const target = fresh("site");
      assert.equal((await pip(pypi.url, ["--target", target, "-r", join(pack.dir, "requirements.txt")])).code, 0);
      const afterInstall = await load([target]);
      assert.equal(afterInstall.stdout.trim(), "loaded", afterInstall.stderr);
    } finally {
      await pypi.close();
    }
  });

  test(
    "packsForClasses: a pack for every repository ComfyUI-Manager's map says declares a class",
    { skip: needs("comfyui-manager/extension-node-map.json") },
    async () => {
      const mapPath = dataPath("comfyui-manager/extension-node-map.json")!;
      const map = JSON.parse(readFileSync(mapPath, "utf8")) as Record<string, [string[], unknown]>;
      const asked = ["WanVideoSampler", "MultiTalkModelLoader", "VHS_VideoCombine", "NoSuchClass_flow_test"];
      const got = await packsForClasses(mapPath, asked, { dir: fresh("map") });
      assert.deepEqual(got.unresolved, ["NoSuchClass_flow_test"]);
      for (const cls of asked.slice(0, 3)) {
        const claimants = Object.keys(map).filter((u) => u.startsWith("https://github.com/") && map[u]![0].includes(cls));
        assert.deepEqual([...got.byClass[cls]!].sort(), claimants.sort(), cls);
      }
      const kijai = got.packs.find((p) => p.url === "https://github.com/kijai/ComfyUI-WanVideoWrapper")!;
      assert.deepEqual(kijai.classes, ["WanVideoSampler", "MultiTalkModelLoader"]);
      assert.equal(got.repos["kijai/ComfyUI-WanVideoWrapper"], kijai.dir);
      for (const p of got.packs) for (const c of p.classes) assert.ok(map[p.url]![0].includes(c), `${p.url} does not declare ${c}`);

      const gh = await startFakeGit({ repos: got.repos });
      try {
        const dir = fresh("kijai");
        await must("git", ["-c", `url.${gh.url}/.insteadOf=https://github.com/`, "clone", "--quiet", kijai.url, dir]);
        const init = readFileSync(join(dir, "__init__.py"), "utf8");
        assert.match(
          init,
          /NODE_CLASS_MAPPINGS = \{\n {4}"WanVideoSampler": WanVideoSampler,\n {4}"MultiTalkModelLoader": MultiTalkModelLoader,\n\}/,
        );
      } finally {
        await gh.close();
      }

      const all = await packsForClasses(mapPath, ["VHS_VideoCombine"], {
        dir: fresh("map-all"),
        allClasses: true,
        maxClasses: 5,
        reposPerClass: 1,
      });
      assert.equal(all.packs.length, 1);
      assert.equal(all.packs[0]!.classes.length, Math.min(5, map[all.packs[0]!.url]![0].length));
      assert.equal(all.packs[0]!.classes[0], "VHS_VideoCombine");
    },
  );

  test(
    "the real InfiniteTalk pack: cloned from the vendored bundle, fetched by sha as github.com/kijai/ComfyUI-WanVideoWrapper",
    { skip: INFINITETALK_BUNDLE ? false : "../shared/vendor/packs/InfiniteTalk-comfyui.bundle is absent" },
    async () => {
      const src = await infiniteTalkPackSource();
      const heads = await must("git", ["bundle", "list-heads", INFINITETALK_BUNDLE!]);
      assert.ok(heads.includes(`${src.commit} refs/heads/`), heads);
      const gh = await startFakeGit({ repos: { "kijai/ComfyUI-WanVideoWrapper": src.dir } });
      try {
        const dir = fresh("wan");
        await must("git", ["init", "--quiet", dir]);
        await must("git", ["-C", dir, "remote", "add", "origin", "https://github.com/kijai/ComfyUI-WanVideoWrapper"]);
        await must("git", [
          "-C",
          dir,
          "-c",
          `url.${gh.url}/.insteadOf=https://github.com/`,
          "fetch",
          "--quiet",
          "--depth",
          "1",
          "origin",
          src.commit,
        ]);
        await must("git", ["-C", dir, "checkout", "--quiet", "FETCH_HEAD"]);
        assert.match(readFileSync(join(dir, "nodes.py"), "utf8"), /"WanVideoSampler"/);
        const data = dataPath("infinitetalk/requirements.txt");
        if (data) assert.equal(readFileSync(join(dir, "requirements.txt"), "utf8"), readFileSync(data, "utf8"));
      } finally {
        await gh.close();
        rmSync(join(src.dir, ".."), { recursive: true, force: true });
      }
    },
  );
});

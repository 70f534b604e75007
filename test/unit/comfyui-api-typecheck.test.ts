// The type-check of workflows against comfyui-api's own types.ts / config.ts (the vendored 1.18.0
// source beside the repository), and how those files are had: a checkout, or a base URL through
// the cache (a local server here), offline from the cache.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { formatTypeProblem, typecheckWorkflows, type ApiSources } from "../../plugins/comfyui-api/typecheck.ts";
import { loadApiSources, resetApiSources, sourceUrl } from "../../plugins/comfyui-api/api-source.ts";
import { checkLocal, readLocalWorkflows, resetLocalChecks } from "../../plugins/comfyui-api/local.ts";

const VENDOR = resolve(fileURLToPath(new URL("../../", import.meta.url)), "../shared/vendor/comfyui-api");
const skip = existsSync(join(VENDOR, "src/types.ts")) ? false : `no comfyui-api source at ${VENDOR}`;
const read = (f: string) => readFileSync(join(VENDOR, f), "utf8");

describe("type-check against comfyui-api 1.18.0's types", { skip }, () => {
  let api: ApiSources;
  let example: string;
  before(() => {
    api = { types: read("src/types.ts"), config: read("src/config.ts"), packageJson: read("package.json") };
    example = read("example-workflows/sd1.5/txt2img.ts");
  });

  test(
    "comfyui-api's own example passes, at the top and in a sub-folder (../types means the same " + "there); problems name file and line",
    (t) => {
      const t0 = performance.now();
      const problems = typecheckWorkflows(
        [
          { rel: "txt2img.ts", text: example },
          { rel: "sd15/deep/txt2img.ts", text: example },
          { rel: "bad/typo.ts", text: example.replace("seed: input.seed,", "seed: input.sed,") },
          { rel: "bad/schema.ts", text: example.replace(".default(512)", '.default("512")') },
          { rel: "bad/no-default.ts", text: example.replace("export default workflow;", "") },
          {
            rel: "bad/not-workflow.ts",
            text: `import { z } from "zod";\nexport default { RequestSchema: z.string(), generateWorkflow: () => ({}) };\n`,
          },
          { rel: "bad/zod4.ts", text: example.replace(`.describe("Denoising strength")`, `.meta({ title: "zod 4 only" })`) },
        ],
        api,
      );
      const shown = problems.map(formatTypeProblem);
      const ms = performance.now() - t0;
      assert.equal(problems.filter((p) => !p.rel.startsWith("bad/")).length, 0, shown.join("\n"));
      assert.match(
        shown.find((s) => s.startsWith("bad/typo.ts"))!,
        /^bad\/typo\.ts:\d+:\d+: Property 'sed' does not exist .*Did you mean 'seed'\?/,
      );
      assert.match(
        shown.find((s) => s.startsWith("bad/schema.ts"))!,
        /^bad\/schema\.ts:\d+:\d+: .*'string'.*'number'/s,
      );
      assert.ok(
        shown.includes(
          "bad/no-default.ts: no default export: comfyui-api needs `export default` of a Workflow ({ RequestSchema, generateWorkflow })",
        ),
        shown.join("\n"),
      );
      assert.match(
        shown.find((s) => s.startsWith("bad/not-workflow.ts"))!,
        /its default export is not a comfyui-api Workflow: .*ZodString/s,
      );
      assert.match(
        shown.find((s) => s.startsWith("bad/zod4.ts"))!,
        /Property 'meta' does not exist/,
        "zod is zod 3's API, as comfyui-api's",
      );
      t.diagnostic(`type-check of 7 workflows: ${(ms / 1000).toFixed(1)}s`);
    },
  );

  test(
    "imports resolve as they do on the host: comfyui-api's modules and dependencies yes, files " +
      "beside the workflow and other packages no",
    () => {
      const withImports = (imports: string, use: string) =>
        example.replace(`import config from "../config";`, `import config from "../config";\n${imports}\nvoid (${use});`);
      const problems = typecheckWorkflows(
        [
          {
            rel: "ok/imports.ts",
            text: withImports(
              `import fs from "fs";\nimport { join } from "node:path";\nimport yaml from "yaml";\nimport { foo } from "../utils";`,
              "[fs.readFileSync, join, yaml.parse, foo, process.env.HOME]",
            ),
          },
          { rel: "bad/relative.ts", text: withImports(`import common from "./common";`, "common") },
          { rel: "bad/package.ts", text: withImports(`import _ from "lodash";`, "_") },
        ],
        api,
      ).map(formatTypeProblem);
      assert.deepEqual(
        problems.filter((p) => p.startsWith("ok/")),
        [],
      );
      assert.match(
        problems.find((p) => p.startsWith("bad/relative.ts"))!,
        /cannot import '\.\/common': comfyui-api evaluates every workflow inside its own dist\/src\/workflows/,
      );
      assert.match(
        problems.find((p) => p.startsWith("bad/package.ts"))!,
        /cannot import 'lodash': comfyui-api does not depend on lodash/,
      );
    },
  );

  test(
    "without @types/node (a user's install: it is a devDependency) Node's modules and globals " +
      "are stubs, and the same files pass or fail",
    () => {
      const uses = example.replace(
        `import config from "../config";`,
        `import config from "../config";\nimport fs from "node:fs";\nimport { join } from "path";\nvoid ` +
          `[fs.existsSync, join, process.env.HOME, Buffer.from, console.log, setTimeout];`,
      );
      const problems = typecheckWorkflows(
        [
          { rel: "node.ts", text: uses },
          { rel: "bad/typo.ts", text: example.replace("seed: input.seed,", "seed: input.sed,") },
        ],
        api,
        { nodeTypes: false },
      ).map(formatTypeProblem);
      assert.equal(problems.length, 1, problems.join("\n"));
      assert.match(problems[0]!, /^bad\/typo\.ts:\d+:\d+: Property 'sed'/);
    },
  );

  test(
    "checkLocal over a folder: names, load rule and types in one list; the same folder is " + "checked once; a pass is remembered on disk",
    () => {
      const dir = mkdtempSync(join(tmpdir(), "flow-wf-"));
      const cache = mkdtempSync(join(tmpdir(), "flow-wf-cache-"));
      try {
        mkdirSync(join(dir, "sd15"), { recursive: true });
        writeFileSync(join(dir, "sd15/txt2img.ts"), example);
        writeFileSync(
          join(dir, "late.ts"),
          example.replace("export default workflow;", 'export default workflow;\nexport const example = { prompt: "x" };'),
        );
        writeFileSync(join(dir, "my.tsfile.ts"), example);
        writeFileSync(join(dir, "README.md"), "notes");
        writeFileSync(join(dir, ".hidden.ts"), "nonsense(");
        const local = readLocalWorkflows(tmpdir(), dir);
        assert.deepEqual(
          local.files.map((f) => f.rel),
          ["late.ts", "my.tsfile.ts", "sd15/txt2img.ts"],
        );
        assert.deepEqual(local.ignored, ["README.md"]);
        assert.deepEqual(local.endpoints, ["/workflow/late", "/workflow/my.tsfile", "/workflow/sd15/txt2img"]);
        const c = checkLocal(local, api, cache);
        assert.equal(c.problems.length, 2, c.problems.join("\n"));
        assert.match(c.problems[0]!, /^my\.tsfile\.ts: file name "my\.tsfile\.ts"/);
        assert.match(c.problems[1]!, /^late\.ts: comfyui-api takes the value of the file's last statement/);
        assert.equal(checkLocal(readLocalWorkflows(tmpdir(), dir), api, cache), c, "memoized");
        // (what each source says is cached by its bytes in comfyui-api-facts; a check's verdict only when it passed)
        assert.deepEqual(
          readdirSync(cache).filter((d) => d !== "comfyui-api-facts"),
          [],
          "a failure is not remembered",
        );
        // fixed: passes, and the pass is remembered, so a new process does not compile it again
        rmSync(join(dir, "my.tsfile.ts"));
        writeFileSync(join(dir, "late.ts"), example);
        assert.deepEqual(checkLocal(readLocalWorkflows(tmpdir(), dir), api, cache).problems, []);
        assert.equal(readdirSync(join(cache, "comfyui-api-checks")).length, 1, "the pass is remembered");
        resetLocalChecks();
        let compiled = 0;
        const counting: typeof typecheckWorkflows = (...a) => (compiled++, typecheckWorkflows(...a));
        assert.deepEqual(checkLocal(readLocalWorkflows(tmpdir(), dir), api, cache, counting).problems, []);
        assert.equal(compiled, 0, "a remembered pass is not compiled again");
        assert.throws(() => readLocalWorkflows(tmpdir(), join(dir, "nope")), /no workflows folder/);
      } finally {
        rmSync(dir, { recursive: true, force: true });
        rmSync(cache, { recursive: true, force: true });
      }
    },
  );
});

describe("comfyui-api's sources for the type-check", { skip }, () => {
  let server: Server;
  let base: string;
  const hits: string[] = [];
  let cache: string;
  before(async () => {
    cache = mkdtempSync(join(tmpdir(), "flow-api-src-"));
    server = createServer((req, res) => {
      hits.push(req.url!);
      const m = /^\/mirror\/([^/]+)\/(src\/types\.ts|src\/config\.ts|package\.json)$/.exec(req.url!);
      if (!m) return void res.writeHead(404).end("no");
      const text = read(m[2]!);
      res.writeHead(200, { "content-type": "text/plain", etag: `"${m[1]}-${text.length}"` }).end(text);
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}/mirror/{version}`;
  });
  after(() => {
    server.close();
    rmSync(cache, { recursive: true, force: true });
  });

  test("a base URL with {version}: fetched once into the cache, then from it; offline uses it; a mismatch is said", async () => {
    const env = {};
    assert.equal(sourceUrl("1.18.0", base, env), base.replace("{version}", "1.18.0") + "/");
    assert.equal(sourceUrl("1.18.0", undefined, {}), "https://raw.githubusercontent.com/SaladTechnologies/comfyui-api/1.18.0/");
    assert.equal(sourceUrl("1.2.3", base, { FLOW_COMFYUI_API_URL: "http://mirror.lan/c/{version}" }), "http://mirror.lan/c/1.2.3/");
    resetApiSources();
    const a = await loadApiSources({ version: "1.18.0", settings: { url: base }, env, cacheDir: cache });
    assert.equal(a.version, "1.18.0");
    assert.deepEqual(a.warnings, []);
    assert.match(a.types, /export interface Workflow/);
    assert.deepEqual(hits.splice(0), ["/mirror/1.18.0/src/types.ts", "/mirror/1.18.0/src/config.ts", "/mirror/1.18.0/package.json"]);
    resetApiSources();
    const b = await loadApiSources({ version: "1.18.0", settings: { url: base }, env, cacheDir: cache });
    assert.equal(b.config, a.config);
    assert.deepEqual(hits.splice(0), [], "from the cache");
    resetApiSources();
    const off = await loadApiSources({ version: "1.18.0", settings: { url: base }, env, cacheDir: cache, offline: true });
    assert.equal(off.types, a.types);
    resetApiSources();
    await assert.rejects(
      loadApiSources({ version: "9.9.9", settings: { url: base }, env, cacheDir: cache, offline: true }),
      /comfyui-api 9\.9\.9's src\/types\.ts, needed to type-check workflows: .*--offline, and no cached copy.*FLOW_COMFYUI_API_URL/,
    );
    const other = await loadApiSources({ version: "1.17.0", settings: { url: base }, env, cacheDir: cache });
    assert.deepEqual(other.warnings, [
      `type-checking against comfyui-api 1.18.0 from ${base.replace("{version}", "1.17.0")}/, while the host runs 1.17.0`,
    ]);
    resetApiSources();
    await assert.rejects(
      loadApiSources({ version: "1.18.0", settings: { url: `${base}/nothing-here` }, env, cacheDir: cache }),
      /HTTP 404/,
    );
  });

  test("a checkout wins: FLOW_COMFYUI_API_SRC, else source.dir; a folder that is not comfyui-api is named", async () => {
    resetApiSources();
    hits.length = 0;
    const fromEnv = await loadApiSources({
      version: "1.18.0",
      settings: { url: base },
      env: { FLOW_COMFYUI_API_SRC: VENDOR },
      cacheDir: cache,
    });
    assert.equal(fromEnv.origin, VENDOR);
    assert.deepEqual(hits.splice(0), []);
    await assert.rejects(
      loadApiSources({ version: "1.18.0", settings: { dir: tmpdir() }, env: {} }),
      /cannot read src\/types\.ts .*must be a comfyui-api checkout/,
    );
  });
});

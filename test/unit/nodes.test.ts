// The custom-nodes tier's pure parts: pack specs (hostile input refused), the pack scan of a real
// folder, the plan rules, merging workflows with pins, pip's report, ComfyUI's import log; and the
// CLI refusing a hostile pack before any host is reached.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, execSync } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parsePackSpec, PackSpecError, canonicalRepo, repoKey } from "../../lib/comfy/pack-spec.ts";
import { parseImportReport } from "../../lib/comfy/import-log.ts";
import { gitInstallCommand, packScanCommand, parsePackScan, registryInstallCommand, type HostPack } from "../../plugins/nodes/commands.ts";
import { planPack } from "../../plugins/nodes/plan.ts";
import { mergeWanted, WantedError, type WantedPack } from "../../plugins/nodes/wanted.ts";
import { failedRequirement, parsePipReport, pipInstallCommand, pipReportCommand } from "../../plugins/nodes/pip.ts";
import { listPacks } from "../../plugins/nodes/list.ts";
import { flow, flowfileSource, REPO } from "../support/cli.ts";
import { buildIndex, packByName } from "../../lib/comfy/node-resolve.ts";
import { parseCustomNodeList, parseExtensionNodeMap } from "../../lib/comfy/data-schemas.ts";
import { jsonShared, needs } from "./comfy/shared-data.ts";

const C1 = "1".repeat(40);
const C2 = "2".repeat(40);

describe("pack specs", () => {
  test("URLs, registry ids and names parse to exact forms", () => {
    assert.deepEqual(parsePackSpec(`https://github.com/kijai/ComfyUI-KJNodes@${C1}`), {
      kind: "git",
      repo: "https://github.com/kijai/ComfyUI-KJNodes",
      dir: "ComfyUI-KJNodes",
      ref: C1,
      input: `https://github.com/kijai/ComfyUI-KJNodes@${C1}`,
    });
    const g = parsePackSpec("https://GitHub.com/kijai/ComfyUI-WanVideoWrapper.git/");
    assert.equal(g.kind === "git" && g.repo, "https://github.com/kijai/ComfyUI-WanVideoWrapper");
    assert.equal(g.kind === "git" && g.ref, undefined);
    assert.deepEqual(parsePackSpec("comfyui-kjnodes@1.1.7"), {
      kind: "registry",
      id: "comfyui-kjnodes",
      version: "1.1.7",
      input: "comfyui-kjnodes@1.1.7",
    });
    assert.deepEqual(parsePackSpec("ComfyUI-KJNodes"), { kind: "name", name: "ComfyUI-KJNodes", input: "ComfyUI-KJNodes" });
    assert.equal(repoKey("git@github.com:o/r.git".replace(":", "/")), "github.com/o/r");
    assert.equal(repoKey("https://github.com/O/R.git"), "github.com/o/r");
  });

  test("hostile names and URLs are refused, naming the input", () => {
    const cases: [string, RegExp][] = [
      ["../etc", /not a pack name|may not hold/],
      ["a/b", /may not hold '\/'/],
      ["my pack", /spaces/],
      ["-rf", /starts with '-'/],
      ["--upload-pack=touch", /starts with '-'/],
      ["file:///etc/passwd", /only https/],
      ["http://github.com/o/r", /only https/],
      ["ssh://github.com/o/r", /only https/],
      ["https://github.com/o/../r", /dot segments/],
      ["https://github.com/o/r/extra", /owner\/repository/],
      ["https://user:pw@github.com/o/r", /credentials/],
      ["https://github.com/o/-r", /unsafe|starts with/],
      ["https://github.com/o/r@--exec=x", /unsafe commit or ref/],
      ["https://github.com/o/r@a..b", /unsafe commit or ref/],
      ["pack@1.0;rm", /unsafe version/],
      ["pack\nx", /spaces or control/],
      ["", /empty/],
    ];
    for (const [input, why] of cases) {
      assert.throws(
        () => parsePackSpec(input),
        (e: Error) => e instanceof PackSpecError && why.test(e.message) && e.message.includes(JSON.stringify(input)),
        input,
      );
    }
    assert.ok("why" in canonicalRepo("https://github.com/o/.hidden"));
  });

  test("the CLI refuses a hostile pack before any host is reached (exit 2)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "flow-nodes-"));
    writeFileSync(
      join(dir, "flowfile.ts"),
      flowfileSource(`import { nodes } from ${JSON.stringify(REPO + "plugins/index.ts")};
export default defineFlow({ plugins: [nodes()] });`),
    );
    // port 9 on loopback: were anything dialled, the error would be a connection refusal, not the pack's name
    // (a word starting with '-' never gets this far: it is an unknown option, exit 2 as well)
    for (const bad of ["../x", "file:///etc/passwd", "a b", "https://github.com/o/r@$(id)"]) {
      const r = await flow(["run", "nodes:install", "--host", "127.0.0.1:9", bad], { cwd: dir });
      assert.equal(r.code, 2, `${bad}: ${r.stdout}${r.stderr}`);
      assert.match(r.stdout + r.stderr, new RegExp(`pack ${JSON.stringify(bad).replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}`));
      assert.doesNotMatch(r.stdout + r.stderr, /ECONNREFUSED|connect/i);
    }
    const r = await flow(["run", "nodes:remove", "--host", "127.0.0.1:9", "--yes", "../x"], { cwd: dir });
    assert.equal(r.code, 2);
    assert.match(r.stdout + r.stderr, /nodes:remove "\.\.\/x"/);
  });
});

describe("the pack scan reads a real custom_nodes folder", () => {
  test("git origin and commit, dirty tracked files, .disabled, single files, registry records", () => {
    const cn = mkdtempSync(join(tmpdir(), "flow-cn-"));
    const git = (cwd: string, ...a: string[]) => execFileSync("git", ["-c", "user.email=t@t", "-c", "user.name=t", ...a], { cwd });
    mkdirSync(join(cn, "clean"));
    git(join(cn, "clean"), "init", "-q");
    writeFileSync(join(cn, "clean", "__init__.py"), "NODE_CLASS_MAPPINGS = {}\n");
    git(join(cn, "clean"), "add", ".");
    git(join(cn, "clean"), "commit", "-qm", "one");
    git(join(cn, "clean"), "remote", "add", "origin", "https://github.com/o/clean");
    execSync(`cp -r ${cn}/clean ${cn}/edited && cp -r ${cn}/clean ${cn}/off.disabled`);
    writeFileSync(join(cn, "edited", "__init__.py"), "changed\n");
    // an untracked cache beside the code is not a local change
    mkdirSync(join(cn, "clean", "__pycache__"));
    writeFileSync(join(cn, "clean", "__pycache__", "x.pyc"), "");
    writeFileSync(join(cn, "clean", "config.json"), "{}");
    writeFileSync(join(cn, "single.py"), "x = 1\n");
    writeFileSync(join(cn, "README.txt"), "not a pack\n");
    mkdirSync(join(cn, "reg"));
    writeFileSync(join(cn, "reg", "n.py"), "x\n");
    execSync(`cd ${cn}/reg && sha256sum n.py > .flow-pack.sha256 && echo '{"registryId":"reg-id","version":"1.2.3"}' > .flow-pack.json`);
    const packs = parsePackScan(execSync(packScanCommand(cn), { shell: "/bin/sh" }).toString(), cn);
    const by = Object.fromEntries(packs.map((p) => [p.name, p]));
    assert.deepEqual(Object.keys(by).sort(), ["clean", "edited", "off", "reg", "single.py"]);
    const head = git(join(cn, "clean"), "rev-parse", "HEAD").toString().trim();
    assert.deepEqual(
      [by.clean!.kind, by.clean!.origin, by.clean!.commit, by.clean!.dirty],
      ["git", "https://github.com/o/clean", head, false],
    );
    assert.equal(by.edited!.dirty, true);
    assert.match(by.edited!.changes[0]!, /__init__\.py/);
    assert.equal(by.off!.disabled, true);
    assert.equal(by.off!.path, join(cn, "off.disabled"));
    assert.deepEqual([by.reg!.kind, by.reg!.registryId, by.reg!.version, by.reg!.dirty], ["registry", "reg-id", "1.2.3", false]);
    writeFileSync(join(cn, "reg", "n.py"), "edited\n");
    const again = parsePackScan(execSync(packScanCommand(cn), { shell: "/bin/sh" }).toString(), cn);
    assert.equal(again.find((p) => p.name === "reg")!.dirty, true);
    assert.equal(by["single.py"]!.kind, "file");
  });

  test("the git install command clones into place, moves to another commit, and never touches a dirty clone", () => {
    const base = mkdtempSync(join(tmpdir(), "flow-gitinst-"));
    const src = join(base, "src");
    const git = (cwd: string, ...a: string[]) =>
      execFileSync("git", ["-c", "user.email=t@t", "-c", "user.name=t", ...a], { cwd })
        .toString()
        .trim();
    mkdirSync(src);
    git(src, "init", "-q");
    const commits: string[] = [];
    for (const v of ["1", "2"]) {
      writeFileSync(join(src, "VERSION"), v);
      git(src, "add", ".");
      git(src, "commit", "-qm", v);
      commits.push(git(src, "rev-parse", "HEAD"));
    }
    const cn = join(base, "custom_nodes");
    mkdirSync(cn);
    // the command takes the origin as given; a file URL stands in for the server here (the lab uses a real git server)
    const run = (commit: string, force = false) =>
      execSync(gitInstallCommand({ customNodes: cn, dir: "pack", repo: `file://${src}`, commit, asideDir: join(base, "aside"), force }), {
        shell: "/bin/sh",
        stdio: ["ignore", "pipe", "pipe"],
      }).toString();
    assert.match(run(commits[0]!), /cloned/);
    assert.equal(git(join(cn, "pack"), "rev-parse", "HEAD"), commits[0]);
    assert.match(run(commits[1]!), /moved/);
    assert.equal(git(join(cn, "pack"), "rev-parse", "HEAD"), commits[1]);
    writeFileSync(join(cn, "pack", "VERSION"), "mine");
    assert.throws(() => run(commits[0]!), /local changes in pack/);
    assert.equal(git(join(cn, "pack"), "rev-parse", "HEAD"), commits[1]);
    run(commits[0]!, true);
    assert.equal(git(join(cn, "pack"), "rev-parse", "HEAD"), commits[0]);
    assert.match(execSync(`cat ${join(base, "aside", "pack.patch")}`).toString(), /\+mine/);
  });

  test("the registry command quotes a hostile URL as one word", () => {
    const cmd = registryInstallCommand({
      customNodes: "/d/custom_nodes",
      dir: "p",
      registryId: "p",
      version: "1.0.0",
      downloadUrl: "https://x.example/a.zip;touch /tmp/pwned",
      asideDir: "/d/aside",
    });
    assert.match(cmd, /-- 'https:\/\/x\.example\/a\.zip;touch \/tmp\/pwned'/);
  });
});

const host = (h: Partial<HostPack> & { name: string }): HostPack => ({
  path: `/cn/${h.name}`,
  disabled: false,
  kind: "git",
  dirty: false,
  changes: [],
  ...h,
});
const want = (w: Partial<WantedPack> & { dir: string }): WantedPack => ({
  kind: "git",
  repo: `https://github.com/o/${w.dir}`,
  commit: C1,
  classes: [],
  optional: false,
  from: ["a.json"],
  ...w,
});

describe("the plan", () => {
  test("absent -> clone; at it -> nothing; elsewhere -> checkout; dirty -> kept; a fork in its place -> kept unless --force", () => {
    const p = want({ dir: "P" });
    assert.equal(planPack(p, [], false).do, "clone");
    const at = host({ name: "P", origin: "https://github.com/o/P.git", commit: C1 });
    assert.equal(planPack(p, [at], false).do, "none");
    assert.equal(planPack(p, [{ ...at, commit: C2 }], false).do, "checkout");
    const dirty = planPack(p, [{ ...at, commit: C2, dirty: true, changes: ["M x.py"] }], false);
    assert.equal(dirty.do, "keep");
    assert.match(dirty.do === "keep" ? dirty.why : "", /local changes \(M x\.py\)/);
    assert.equal(planPack(p, [{ ...at, commit: C2, dirty: true }], true).do, "checkout");
    // dirty but already at the wanted commit: nothing to do, said so
    const same = planPack(p, [{ ...at, dirty: true }], false);
    assert.equal(same.do === "none" && same.note.includes("local changes"), true);
    const fork = host({ name: "P", origin: "https://github.com/someone/P", commit: C1 });
    assert.equal(planPack(p, [fork], false).do, "keep");
    assert.equal(planPack(p, [fork], true).do, "clone");
    // found under another folder name by its origin (ComfyUI-Manager lowercases some)
    const other = host({ name: "p-lower", origin: "https://github.com/o/P", commit: C2 });
    const a = planPack(p, [other], false);
    assert.equal(a.do === "checkout" && a.host.name, "p-lower");
    assert.equal(planPack(p, [{ ...at, disabled: true }], false).do, "enable");
    const reg = want({ dir: "R", kind: "registry", registryId: "r", version: "1.0.0", commit: undefined, repo: undefined });
    assert.equal(planPack(reg, [], false).do, "unpack");
    assert.equal(planPack(reg, [host({ name: "R", kind: "registry", registryId: "r", version: "1.0.0" })], false).do, "none");
    assert.equal(planPack(reg, [host({ name: "R", kind: "registry", registryId: "r", version: "0.9.0" })], false).do, "unpack");
  });

  test("merge: workflows that agree merge, that disagree fail naming both, a pin settles it", () => {
    const a = want({ dir: "P", classes: ["A"], from: ["a.json"] });
    const b = want({ dir: "P", classes: ["B"], from: ["b.json"] });
    const merged = mergeWanted([a, b], []);
    assert.deepEqual([merged.length, merged[0]!.classes, merged[0]!.from], [1, ["A", "B"], ["a.json", "b.json"]]);
    const c = want({ dir: "P", commit: C2, from: ["c.json"] });
    assert.throws(
      () => mergeWanted([a, c], []),
      (e: Error) => e instanceof WantedError && /a\.json wants 1111111111, c\.json wants 2222222222/.test(e.message),
    );
    const pin = want({ dir: "P", commit: C2, from: ["pin"], aliases: ["p-registry-id"] });
    const settled = mergeWanted([a, c], [pin]);
    assert.deepEqual([settled.length, settled[0]!.commit, settled[0]!.classes], [1, C2, ["A"]]);
  });
});

describe("pip and ComfyUI's log", () => {
  test("pip's report becomes exact pins; a bad name is refused; the failed requirement is named", () => {
    const report = JSON.stringify({
      install: [{ metadata: { name: "ftfy", version: "6.2.0" } }, { metadata: { name: "wcwidth", version: "0.2.13" } }],
    });
    assert.deepEqual(parsePipReport(report), ["ftfy==6.2.0", "wcwidth==0.2.13"]);
    assert.deepEqual(parsePipReport(JSON.stringify({ install: [] })), []);
    assert.throws(
      () => parsePipReport(JSON.stringify({ install: [{ metadata: { name: "x;rm -rf /", version: "1" } }] })),
      /unexpected distribution/,
    );
    assert.equal(
      failedRequirement(
        "ERROR: Could not find a version that satisfies the requirement nopkg>=1 (from versions: none)\n" +
          "ERROR: No matching distribution found for nopkg>=1",
      ),
      "nopkg>=1",
    );
    const w = { container: "comfyui", python: "python3", indexUrl: "http://10.0.0.1:8/simple/", trustedHost: "10.0.0.1" };
    const cmd = pipReportCommand(w, "/opt/ComfyUI/custom_nodes/p q");
    const head =
      "docker exec -w '/opt/ComfyUI/custom_nodes/p q' comfyui python3 -m pip install --dry-run --quiet --report - -r requirements.txt ";
    assert.ok(cmd.startsWith(head), cmd);
    assert.match(cmd, / --index-url http:\/\/10\.0\.0\.1:8\/simple\/ --trusted-host 10\.0\.0\.1$/);
    assert.match(
      pipInstallCommand(w, ["ftfy==6.2.0"]),
      /^docker exec comfyui python3 -m pip install --target \/opt\/flow\/python --no-deps --upgrade ftfy==6\.2\.0 /,
    );
  });

  test("the import report of the last start: loaded and failed packs, with the error", () => {
    const log = [
      "Import times for custom nodes:",
      "   0.0 seconds (IMPORT FAILED): /opt/ComfyUI/custom_nodes/Old",
      "Starting server",
      "Traceback (most recent call last):",
      "ModuleNotFoundError: No module named 'einops'",
      "",
      "Cannot import /opt/ComfyUI/custom_nodes/ComfyUI-WanVideoWrapper module for custom nodes: No module named 'einops'",
      "",
      "Import times for custom nodes:",
      "   0.0 seconds: /opt/ComfyUI/custom_nodes/ComfyUI-Manager",
      "   0.1 seconds (IMPORT FAILED): /opt/ComfyUI/custom_nodes/ComfyUI-WanVideoWrapper",
      "   0.0 seconds: /opt/ComfyUI/custom_nodes/single.py",
      "",
      "Starting server",
    ].join("\n");
    assert.deepEqual(parseImportReport(log), {
      loaded: ["ComfyUI-Manager", "single"],
      failed: [
        { pack: "ComfyUI-WanVideoWrapper", path: "/opt/ComfyUI/custom_nodes/ComfyUI-WanVideoWrapper", error: "No module named 'einops'" },
      ],
    });
    assert.deepEqual(parseImportReport("no report"), { loaded: [], failed: [] });
  });

  test("nodes:list joins the scan, /object_info's python_module and the import failures", () => {
    const listed = listPacks(
      [
        host({ name: "A", origin: "https://github.com/o/A", commit: C1 }),
        host({ name: "B", kind: "folder" }),
        host({ name: "C", disabled: true, kind: "folder" }),
      ],
      [
        { name: "A2", module: "custom_nodes.A" },
        { name: "A1", module: "custom_nodes.A" },
        { name: "KSampler", module: "nodes" },
      ],
      [{ pack: "B", path: "/opt/ComfyUI/custom_nodes/B", error: "No module named 'x'" }],
    );
    assert.deepEqual(
      listed.map((p) => [p.name, p.classes, p.importFailed, p.at ?? null]),
      [
        ["A", ["A1", "A2"], false, C1],
        ["B", [], true, null],
        ["C", [], false, null],
      ],
    );
  });
});

describe("a pack named bare", () => {
  test(
    "is ComfyUI-Manager's registry id, else the one repository of that name (spelled as the list does)",
    { skip: needs("comfyui-manager/custom-node-list.json", "comfyui-manager/extension-node-map.json") },
    () => {
      const idx = buildIndex({
        extensionNodeMap: parseExtensionNodeMap(jsonShared("comfyui-manager/extension-node-map.json")),
        customNodeList: parseCustomNodeList(jsonShared("comfyui-manager/custom-node-list.json")),
        coreClasses: new Set(),
      });
      assert.deepEqual(packByName(idx, "ComfyUI-KJNodes"), { repos: ["https://github.com/kijai/ComfyUI-KJNodes"] });
      assert.deepEqual(packByName(idx, "comfyui_kjnodes"), { repos: ["https://github.com/kijai/ComfyUI-KJNodes"] });
      assert.deepEqual(packByName(idx, "kjnodes"), { registryId: "kjnodes", repo: "https://github.com/kijai/ComfyUI-KJNodes" });
      assert.deepEqual(packByName(idx, "no-such-pack-anywhere"), { repos: [] });
    },
  );
});

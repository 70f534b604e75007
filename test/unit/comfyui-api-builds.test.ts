// comfyui-api builds on a host: names, manifests, which to prune, where a rollback goes, the
// host's facts; and the install / switch shell text run through a real sh in a temp folder.
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  buildIdFor,
  choosePrune,
  downloadName,
  folderManifest,
  IMAGE,
  isArchiveName,
  isBuildId,
  parseBuildsFact,
  pathProblem,
  pushHistory,
  releaseUrl,
  RELEASES_URL,
  rollbackTarget,
  runsCurrent,
  sha256Hex,
  versionProblem,
  type BuildInfo,
} from "../../plugins/comfyui-api/builds.ts";
import {
  buildsFactCommand,
  installDownloadCommand,
  installUploadCommand,
  pruneCommand,
  switchCommand,
  verifyBuildCommand,
  writeHistoryCommand,
} from "../../plugins/comfyui-api/build-commands.ts";
import { parseSource } from "../../plugins/comfyui-api/update.ts";
import { prepareLocalBuild } from "../../plugins/comfyui-api/local-build.ts";
import { CONTAINER_CURRENT_BINARY } from "../../lib/comfy/deploy.ts";

const tmp = mkdtempSync(join(tmpdir(), "flow-builds-"));
after(() => rmSync(tmp, { recursive: true, force: true }));
const sh = (script: string, input?: string) => spawnSync("sh", ["-c", script], { encoding: "utf8", input });

const build = (id: string, addedAt: string, failed = false): BuildInfo => ({
  id,
  marker: { id, source: `file ${id}`, sha256: "0".repeat(64), addedAt, ...(failed ? { failedAt: addedAt, failure: "exited" } : {}) },
});

describe("build names and sources", () => {
  test("a release is its version; anything else the first 12 hex of its sha256", () => {
    const sha = sha256Hex("x");
    assert.equal(buildIdFor({ kind: "release", version: "1.18.1" }, sha), "1.18.1");
    assert.equal(buildIdFor({ kind: "binary" }, sha.toUpperCase()), sha.slice(0, 12));
    assert.equal(buildIdFor({ kind: "url" }, sha), sha.slice(0, 12));
  });

  test("versions and build names are single safe path segments", () => {
    assert.equal(versionProblem("1.18.1"), undefined);
    assert.equal(versionProblem("1.18.1-rc.2+abc"), undefined);
    for (const bad of ["../x", "a/b", "", ".hidden", "current", IMAGE, "x y", "a".repeat(65)]) assert.ok(versionProblem(bad), bad);
    assert.ok(isBuildId("3f2a9c01b7de"));
    for (const bad of ["current", IMAGE, ".", "..", ".incoming", "a/b"]) assert.equal(isBuildId(bad), false, bad);
  });

  test("a release resolves to its GitHub asset; the base is configurable", () => {
    assert.equal(releaseUrl("1.18.1"), "https://github.com/SaladTechnologies/comfyui-api/releases/download/1.18.1/comfyui-api");
    assert.equal(releaseUrl("1.18.1", "https://mirror.example/rel/"), "https://mirror.example/rel/1.18.1/comfyui-api");
    assert.ok(RELEASES_URL.startsWith("https://github.com/"));
  });

  test("--from / --version: one of them; URLs under the address policy, before any host", () => {
    assert.deepEqual(parseSource({ version: "1.18.1" }, RELEASES_URL, []), {
      kind: "release",
      version: "1.18.1",
      url: releaseUrl("1.18.1"),
    });
    assert.deepEqual(parseSource({ from: "https://example.com/comfyui-api" }, RELEASES_URL, []), {
      kind: "url",
      url: "https://example.com/comfyui-api",
    });
    assert.deepEqual(parseSource({ from: "./build.tgz" }, RELEASES_URL, []), { kind: "archive", path: "./build.tgz" });
    assert.deepEqual(parseSource({ from: "./build" }, RELEASES_URL, []), { kind: "folder", path: "./build" });
    assert.throws(() => parseSource({}, RELEASES_URL, []), /one of --from/);
    assert.throws(() => parseSource({ from: "x", version: "1" }, RELEASES_URL, []), /one of --from/);
    assert.throws(() => parseSource({ from: "http://example.com/comfyui-api" }, RELEASES_URL, []), /refused .*plain http/);
    assert.throws(() => parseSource({ from: "https://169.254.169.254/x" }, RELEASES_URL, []), /link-local/);
    assert.throws(() => parseSource({ version: "1.0" }, "http://127.0.0.1:9/rel", []), /--version 1\.0: refused/);
    // a mirror the flowfile lists
    assert.equal(parseSource({ version: "1.0" }, "http://127.0.0.1:9/rel", ["127.0.0.1:9"]).kind, "release");
    assert.throws(() => parseSource({ version: "../x" }, RELEASES_URL, []), /not a version/);
  });

  test("archives by name; the download's file name from the URL, else the launcher's", () => {
    for (const n of ["b.tgz", "b.tar.gz", "B.TAR"]) assert.ok(isArchiveName(n), n);
    assert.equal(isArchiveName("comfyui-api"), false);
    assert.equal(downloadName("https://h/rel/1.18.1/comfyui-api"), "comfyui-api");
    assert.equal(downloadName("https://h/x/build.tgz?sig=1"), "build.tgz");
    assert.equal(downloadName("https://h/x/"), "comfyui-api");
    assert.equal(downloadName("https://h/x/..%2F..%2Fetc"), "comfyui-api");
  });

  test("a folder's manifest: sha256sum lines for files; its name covers links and executable bits too", () => {
    const files = [
      { path: "dist/src/index.js", type: "file" as const, sha256: "b".repeat(64) },
      { path: "comfyui-api", type: "file" as const, sha256: "a".repeat(64), executable: true },
      { path: "node_modules/.bin/x", type: "link" as const, target: "../x/cli.js" },
    ];
    const m = folderManifest(files);
    assert.equal(m.sums, `${"a".repeat(64)}  comfyui-api\n${"b".repeat(64)}  dist/src/index.js\n`);
    assert.equal(folderManifest([...files].reverse()).sha256, m.sha256, "order does not matter");
    assert.notEqual(folderManifest([{ ...files[0]!, executable: true }, files[1]!, files[2]!]).sha256, m.sha256, "a mode is content");
    assert.notEqual(folderManifest([files[0]!, files[1]!, { ...files[2]!, target: "../y" }]).sha256, m.sha256, "a link target is content");
    assert.ok(pathProblem("a\nb"));
    assert.ok(pathProblem("../a"));
    assert.throws(() => folderManifest([{ path: "x\\y", type: "file", sha256: "c".repeat(64) }]), /backslash/);
  });
});

describe("which builds stay, where a rollback goes", () => {
  const a = build("aaaaaaaaaaaa", "2026-01-01T00:00:00Z");
  const b = build("bbbbbbbbbbbb", "2026-01-02T00:00:00Z");
  const c = build("1.18.1", "2026-01-03T00:00:00Z");
  const d = build("dddddddddddd", "2026-01-04T00:00:00Z");

  test("the current build and the most recently used others stay; failed builds go first", () => {
    assert.deepEqual(
      choosePrune([a, b, c, d], { current: "dddddddddddd", history: ["aaaaaaaaaaaa", "bbbbbbbbbbbb", "1.18.1", "dddddddddddd"], keep: 3 }),
      ["aaaaaaaaaaaa"],
    );
    // rolled back to a: a is current, and recent use beats arrival
    assert.deepEqual(
      choosePrune([a, b, c, d], { current: "aaaaaaaaaaaa", history: ["aaaaaaaaaaaa", "1.18.1", "dddddddddddd", "aaaaaaaaaaaa"], keep: 3 }),
      ["bbbbbbbbbbbb"],
    );
    const failed = build("ffffffffffff", "2026-01-05T00:00:00Z", true);
    assert.deepEqual(
      choosePrune([a, c, d, failed], { current: "dddddddddddd", history: ["aaaaaaaaaaaa", "1.18.1", "dddddddddddd"], keep: 3 }),
      ["ffffffffffff"],
    );
    assert.deepEqual(choosePrune([a, b], { current: "aaaaaaaaaaaa", history: [], keep: 3 }), []);
    assert.deepEqual(
      choosePrune([a, b, c], { current: "aaaaaaaaaaaa", history: [], keep: 1 }),
      ["1.18.1", "bbbbbbbbbbbb"],
      "keep 1: only the current one",
    );
    assert.deepEqual(
      choosePrune([a, b], { current: null, history: [], keep: 1 }),
      ["aaaaaaaaaaaa"],
      "on the image's own: the newest stays",
    );
  });

  test("rollback walks the history down, skipping gone and failed builds; past the bottom, the image's own", () => {
    const builds = [a, b, c];
    assert.deepEqual(rollbackTarget(["aaaaaaaaaaaa", "bbbbbbbbbbbb", "1.18.1"], "1.18.1", builds), {
      target: "bbbbbbbbbbbb",
      history: ["aaaaaaaaaaaa", "bbbbbbbbbbbb"],
    });
    assert.deepEqual(rollbackTarget(["aaaaaaaaaaaa", "bbbbbbbbbbbb"], "bbbbbbbbbbbb", builds), {
      target: "aaaaaaaaaaaa",
      history: ["aaaaaaaaaaaa"],
    });
    assert.deepEqual(rollbackTarget(["aaaaaaaaaaaa"], "aaaaaaaaaaaa", builds), { target: IMAGE, history: [] });
    assert.equal(rollbackTarget([], null, builds), null, "on the image's own with no history: nothing to go back to");
    // b pruned, c failed
    assert.deepEqual(
      rollbackTarget(["aaaaaaaaaaaa", "zzzzzzzzzzzz", "1.18.1", "dddddddddddd"], "dddddddddddd", [
        a,
        { ...c, marker: { ...c.marker, failedAt: "x" } },
        d,
      ]),
      { target: "aaaaaaaaaaaa", history: ["aaaaaaaaaaaa"] },
    );
    // a switch that was never recorded (flow interrupted): the top of the stack is not the current build
    assert.deepEqual(rollbackTarget(["aaaaaaaaaaaa"], "bbbbbbbbbbbb", builds), { target: "aaaaaaaaaaaa", history: ["aaaaaaaaaaaa"] });
  });

  test("history: pushed once, bounded", () => {
    assert.deepEqual(pushHistory(["a1"], "a1"), ["a1"]);
    assert.deepEqual(pushHistory(["a1"], "b1"), ["a1", "b1"]);
    assert.equal(
      pushHistory(
        Array.from({ length: 60 }, (_, i) => `b${i}`),
        "x",
      ).length,
      50,
    );
  });
});

describe("the host's facts", () => {
  test("parsed from one round trip: current, the container's command, history, markers, ports", () => {
    const out = [
      "#current",
      "1.18.1",
      "#command",
      JSON.stringify([CONTAINER_CURRENT_BINARY]),
      "#history",
      "aaaaaaaaaaaa",
      "1.18.1",
      "../evil",
      "#builds",
      `1.18.1\t${JSON.stringify({ source: "release 1.18.1", sha256: "1".repeat(64), addedAt: "2026-01-01T00:00:00Z" })}`,
      `aaaaaaaaaaaa\t{"broken`,
      `current\t{}`,
      "#ports",
      "8188/tcp -> 127.0.0.1:8188",
      "3000/tcp -> 0.0.0.0:3000",
      "3000/tcp -> [::]:3000",
    ].join("\n");
    const f = parseBuildsFact(out);
    assert.equal(f.current, "1.18.1");
    assert.ok(runsCurrent(f.command, CONTAINER_CURRENT_BINARY));
    assert.deepEqual(f.history, ["aaaaaaaaaaaa", "1.18.1"]);
    assert.deepEqual(
      f.builds.map((b) => [b.id, b.marker.id, b.marker.source]),
      [["1.18.1", "1.18.1", "release 1.18.1"]],
    );
    assert.deepEqual(f.unreadable, ["aaaaaaaaaaaa"]);
    assert.equal(f.ports.length, 3);
    const none = parseBuildsFact("#current\n#command\n#history\n#builds\n#ports\n");
    assert.equal(none.current, null);
    assert.equal(none.command, null);
    assert.equal(runsCurrent(["/opt/comfyui-api/comfyui-api"], CONTAINER_CURRENT_BINARY), false);
  });

  test("the fact command runs where docker is absent and reads a real bin folder", () => {
    const bin = join(tmp, "fact-bin");
    mkdirSync(join(bin, "1.18.1"), { recursive: true });
    writeFileSync(
      join(bin, "1.18.1", ".flow-build.json"),
      JSON.stringify({ source: "release 1.18.1", sha256: "1".repeat(64), addedAt: "x" }, null, 2),
    );
    mkdirSync(join(bin, "nomarker"));
    symlinkSync("1.18.1", join(bin, "current"));
    writeFileSync(join(bin, ".flow-history"), "1.18.1\n");
    const r = sh(`PATH=/usr/bin:/bin; docker() { return 1; }; ${buildsFactCommand(bin, "comfyui")}`);
    assert.equal(r.status, 0, r.stderr);
    const f = parseBuildsFact(r.stdout);
    assert.equal(f.current, "1.18.1");
    assert.deepEqual(
      f.builds.map((b) => b.id),
      ["1.18.1"],
      "the current link and folders without a marker are not builds",
    );
    assert.deepEqual(f.history, ["1.18.1"]);
  });
});

describe("install, verify, switch, prune: the shell text in a temp folder", () => {
  const bin = join(tmp, "bin");
  mkdirSync(join(bin, ".incoming"), { recursive: true });
  const marker = (id: string) => JSON.stringify({ id, source: "test", sha256: "x", addedAt: "2026-01-01T00:00:00Z" }) + "\n";

  test("a binary: checked against its sha256, placed with a manifest and marker; a wrong sha256 places nothing", () => {
    const body = "#!/bin/sh\necho hi\n";
    const sha = sha256Hex(body);
    const id = sha.slice(0, 12);
    writeFileSync(join(bin, ".incoming", `${id}.bin`), body);
    const bad = sh(installUploadCommand(bin, id, "binary", "f".repeat(64)), marker(id));
    assert.notEqual(bad.status, 0);
    assert.equal(existsSync(join(bin, id)), false);
    const ok = sh(installUploadCommand(bin, id, "binary", sha), marker(id));
    assert.equal(ok.status, 0, ok.stderr);
    assert.equal(sh(verifyBuildCommand(bin, id)).status, 0);
    assert.equal(JSON.parse(readFileSync(join(bin, id, ".flow-build.json"), "utf8")).id, id);
    assert.equal(sh(`${join(bin, id, "comfyui-api")}`).stdout, "hi\n");
    // a changed file is caught before the next switch
    writeFileSync(join(bin, id, "comfyui-api"), "#!/bin/sh\necho evil\n");
    assert.notEqual(sh(verifyBuildCommand(bin, id)).status, 0);
  });

  test(
    "a folder (sent as a tarball) from prepareLocalBuild: same name from the folder and from " + "its .tgz, unpacked and checked",
    async () => {
      const src = join(tmp, "src-build");
      mkdirSync(join(src, "dist/src"), { recursive: true });
      writeFileSync(join(src, "comfyui-api"), '#!/bin/sh\nhere=${0%/*}\nexec cat "$here/dist/src/index.js"\n');
      chmodSync(join(src, "comfyui-api"), 0o755);
      writeFileSync(join(src, "dist/src/index.js"), "console.log('api')\n");
      writeFileSync(join(src, "flow-build.json"), JSON.stringify({ version: "1.18.0" }));
      symlinkSync("dist/src/index.js", join(src, "main.js"));
      const local = await prepareLocalBuild(src);
      assert.equal(local.kind, "folder");
      assert.equal(local.version, "1.18.0");
      assert.equal(local.files, 3);
      // the same folder as a tarball with one top folder
      const tgz = join(tmp, "b.tgz");
      assert.equal(sh(`tar -czf ${tgz} -C ${tmp} src-build`).status, 0);
      const fromTgz = await prepareLocalBuild(tgz);
      assert.equal(fromTgz.sha256, local.sha256);
      await fromTgz.cleanup();
      const id = local.sha256.slice(0, 12);
      sh(`cp ${local.upload} ${join(bin, ".incoming", `${id}.tgz`)}`);
      writeFileSync(join(bin, ".incoming", `${id}.sha256`), local.sums!);
      const r = sh(installUploadCommand(bin, id, "tgz"), marker(id));
      assert.equal(r.status, 0, r.stderr);
      assert.equal(sh(join(bin, id, "comfyui-api")).stdout, "console.log('api')\n");
      assert.equal(readlinkSync(join(bin, id, "main.js")), "dist/src/index.js");
      assert.equal(existsSync(join(bin, ".incoming", `${id}.tgz`)), false, "the upload is cleaned away");
      await local.cleanup();
      // no launcher: refused before anything is sent
      const nolauncher = join(tmp, "nolauncher");
      mkdirSync(nolauncher);
      writeFileSync(join(nolauncher, "x"), "x");
      await assert.rejects(prepareLocalBuild(nolauncher), /launcher comfyui-api at the top/);
      await assert.rejects(prepareLocalBuild(join(tmp, "absent")), /no such file or folder/);
    },
  );

  test("a download: named by its sha256 (or the release), an archive's top folder stepped into, the marker filled in", () => {
    const dl = join(bin, ".incoming", "dl-1");
    mkdirSync(join(dl, "x/pkg"), { recursive: true });
    writeFileSync(join(dl, "x/pkg/comfyui-api"), "#!/bin/sh\necho tgz\n");
    chmodSync(join(dl, "x/pkg/comfyui-api"), 0o755);
    assert.equal(sh(`tar -czf ${join(dl, "b.tgz")} -C ${join(dl, "x")} pkg && rm -rf ${join(dl, "x")}`).status, 0);
    const m = JSON.stringify({ id: "@ID@", source: "https://h/b.tgz", sha256: "@SHA256@", bytes: "@BYTES@", addedAt: "t" }).replace(
      '"@BYTES@"',
      "@BYTES@",
    );
    const r = sh(installDownloadCommand(bin, join(dl, "b.tgz"), { archive: true }), m);
    assert.equal(r.status, 0, r.stderr);
    const [, id, sha] = /^build (\S+) (\S+) (\d+)$/m.exec(r.stdout)!;
    assert.equal(sha!.slice(0, 12), id);
    assert.equal(sh(join(bin, id!, "comfyui-api")).stdout, "tgz\n");
    const placed = JSON.parse(readFileSync(join(bin, id!, ".flow-build.json"), "utf8"));
    assert.equal(placed.id, id);
    assert.equal(placed.sha256, sha);
    assert.equal(typeof placed.bytes, "number");
    assert.equal(existsSync(dl), false);
    assert.equal(sh(verifyBuildCommand(bin, id!)).status, 0);
    // a release binary with the wrong expected sha256 is refused
    const dl2 = join(bin, ".incoming", "dl-2");
    mkdirSync(dl2);
    writeFileSync(join(dl2, "comfyui-api"), "#!/bin/sh\n");
    const bad = sh(installDownloadCommand(bin, join(dl2, "comfyui-api"), { version: "9.9.9", expect: "a".repeat(64), archive: false }), m);
    assert.equal(bad.status, 5);
    assert.match(bad.stderr, /sha256 of the download is/);
    assert.equal(existsSync(join(bin, "9.9.9")), false);
    const good = sh(installDownloadCommand(bin, join(dl2, "comfyui-api"), { version: "9.9.9", archive: false }), m);
    assert.equal(good.status, 0, good.stderr);
    assert.match(good.stdout, /^build 9\.9\.9 /m);
  });

  test("switch: bin/current replaced atomically, or removed; history and prune", () => {
    assert.equal(sh(switchCommand(bin, "9.9.9")).status, 0);
    assert.equal(readlinkSync(join(bin, "current")), "9.9.9");
    assert.equal(sh(switchCommand(bin, "1.2.3")).status, 0);
    assert.equal(readlinkSync(join(bin, "current")), "1.2.3");
    assert.equal(sh(switchCommand(bin, null)).status, 0);
    assert.equal(existsSync(join(bin, "current")), false);
    assert.throws(() => switchCommand(bin, "../x"));
    assert.equal(sh(writeHistoryCommand(bin), "a\nb\n").status, 0);
    assert.equal(readFileSync(join(bin, ".flow-history"), "utf8"), "a\nb\n");
    assert.equal(sh(pruneCommand(bin, ["9.9.9"])).status, 0);
    assert.equal(existsSync(join(bin, "9.9.9")), false);
    assert.throws(() => pruneCommand(bin, ["current"]));
    assert.throws(() => pruneCommand(bin, [".."]));
  });
});

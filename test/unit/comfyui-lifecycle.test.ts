// The pure parts of comfyui:restart, comfyui:snapshot and comfyui:update: the image tag rewrite,
// the snapshot id, file and list, restore plans, the image choice comfyui:up keeps, the queue
// parse and the drain that goes ahead when its time is up; the snapshot shell text runs for real
// in a temporary folder.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { withComfyVersion } from "../../lib/comfy/deploy.ts";
import { ensureImageCommand, parseContainerImage, stopContainer } from "../../lib/commands/docker.ts";
import type { TaskContext } from "../../lib/task.ts";
import { drainQueue, parseQueue } from "../../plugins/comfyui-api/restart.ts";
import { chosenImage, DEFAULT_IMAGE } from "../../plugins/comfyui/container.ts";
import { listSnapshotsCommand, moveAsideCommand, pipInstallCommand, saveSnapshotCommand } from "../../plugins/comfyui/commands.ts";
import {
  isSnapshotId,
  packRestorePlan,
  packSpec,
  parseComfyVersion,
  parseSnapshot,
  parseSnapshotList,
  pipRestorePlan,
  snapshotId,
  snapshotText,
  type ComfySnapshot,
} from "../../plugins/comfyui/snapshot-data.ts";
import { snapshotTable } from "../../plugins/comfyui/snapshot.ts";
import { optionsProblem, targetImage } from "../../plugins/comfyui/update.ts";
import type { HostPack } from "../../plugins/nodes/host-packs.ts";

const sh = (script: string, input?: string) => execFileSync("sh", ["-c", script], { input, encoding: "utf8" });
const COMMIT = "a".repeat(40);
const OTHER = "b".repeat(40);

describe("comfyui:update --version: the tag's comfy<version> part", () => {
  test("replaces ComfyUI's version and keeps the rest of the tag", () => {
    assert.equal(
      withComfyVersion(DEFAULT_IMAGE, "0.3.60"),
      "ghcr.io/saladtechnologies/comfyui-api:comfy0.3.60-api1.18.1-torch2.8.0-cuda12.8-runtime",
    );
    assert.equal(withComfyVersion(DEFAULT_IMAGE, "v0.4.0"), DEFAULT_IMAGE.replace("comfy0.19.3", "comfy0.4.0"));
    // a registry with a port: its colon is not the tag's
    assert.equal(
      withComfyVersion("localhost:5000/comfyui-api:comfy0.1.0-api1.0.0", "0.2.0"),
      "localhost:5000/comfyui-api:comfy0.2.0-api1.0.0",
    );
    assert.equal(withComfyVersion("comfyui-api:runtime-comfy0.1.0", "0.2.0"), "comfyui-api:runtime-comfy0.2.0");
  });

  test("refuses a tag without that part, naming the image", () => {
    assert.throws(
      () => withComfyVersion("flow-comfy-standin:latest", "0.3.60"),
      /the image flow-comfy-standin:latest has no comfy<version> part in its tag latest: give the whole image with --image/,
    );
    assert.throws(
      () => withComfyVersion("localhost:5000/comfyui-api", "0.3.60"),
      /localhost:5000\/comfyui-api has no comfy<version> part \(no tag\)/,
    );
    assert.throws(() => withComfyVersion("x/comfyui-api@sha256:" + "0".repeat(64), "0.3.60"), /pinned by digest/);
    assert.throws(() => withComfyVersion("x:comfy1-comfy2", "0.3.60"), /more than one comfy<version> part/);
    // a dash would split the tag's parts
    assert.throws(() => withComfyVersion(DEFAULT_IMAGE, "0.3-60"), /--version "0\.3-60": not a ComfyUI version/);
  });

  test("exactly one of --version and --image", () => {
    assert.match(optionsProblem({})!, /needs one of --version/);
    assert.match(optionsProblem({ version: "1", image: "x" })!, /needs one of --version/);
    assert.match(optionsProblem({ version: "latest" })!, /not a ComfyUI version/);
    assert.equal(optionsProblem({ image: "x:y" }), undefined);
    assert.equal(targetImage({ image: "other:tag" }, DEFAULT_IMAGE), "other:tag");
    assert.throws(() => targetImage({ version: "0.3.60" }, "flow-comfy-standin:latest"), /flow-comfy-standin:latest has no comfy<version>/);
  });
});

describe("the image comfyui:up runs", () => {
  const choice = { image: "comfy:new", flowfileImage: "comfy:old" };
  test("comfyui:update's choice, while the flowfile still names the image it was chosen over", () => {
    assert.deepEqual(chosenImage("comfy:old", { comfyImage: choice }), { image: "comfy:new", choice });
    assert.deepEqual(chosenImage("comfy:old", { dataRoot: "/x" }), { image: "comfy:old" });
  });
  test("a flowfile edit wins, and the choice is stale", () => {
    assert.deepEqual(chosenImage("comfy:edited", { comfyImage: choice }), { image: "comfy:edited", choice, stale: true });
  });
  test("a record someone broke is no choice", () => {
    assert.deepEqual(chosenImage("comfy:old", { comfyImage: { image: 3 } }), { image: "comfy:old" });
    assert.deepEqual(chosenImage("comfy:old", { comfyImage: "comfy:new" }), { image: "comfy:old" });
  });
});

describe("snapshot ids", () => {
  test("UTC time and four hex digits", () => {
    assert.equal(snapshotId(new Date("2026-11-30T04:15:00.123Z"), "ab12"), "20261130T041500Z-ab12");
    assert.equal(snapshotId(new Date("2026-01-02T03:04:05Z"), "7"), "20260102T030405Z-0007");
    const id = snapshotId();
    assert.ok(isSnapshotId(id), id);
    assert.ok(!isSnapshotId("../etc"));
    assert.ok(!isSnapshotId("20261130T041500Z-ab12/.."));
  });
});

const pack = (p: Partial<HostPack> & { name: string }): HostPack => ({
  path: `/data/comfyui/custom_nodes/${p.name}`,
  disabled: false,
  kind: "folder",
  dirty: false,
  changes: [],
  ...p,
});

const snap = (over: Partial<ComfySnapshot> = {}): ComfySnapshot => ({
  format: 1,
  id: "20261130T041500Z-ab12",
  createdAt: "2026-11-30T04:15:00.000Z",
  container: "comfyui",
  image: DEFAULT_IMAGE,
  imageId: "sha256:" + "1".repeat(64),
  comfyuiVersion: "0.19.3",
  packs: [
    {
      name: "ComfyUI-Manager",
      kind: "git",
      disabled: false,
      origin: "https://github.com/Comfy-Org/ComfyUI-Manager",
      commit: COMMIT,
      dirty: false,
    },
    { name: "comfyui-kjnodes", kind: "registry", disabled: false, registryId: "comfyui-kjnodes", version: "1.1.0", dirty: false },
    { name: "handmade", kind: "folder", disabled: false, dirty: false },
  ],
  pip: { available: true, freeze: ["onnx==1.16.0", "Pillow==10.0.0"] },
  ...over,
});

describe("the snapshot file", () => {
  test("written and read back the same; one field per line", () => {
    const s = snap({ reason: "before comfyui:update to x" });
    const text = snapshotText(s);
    assert.deepEqual(parseSnapshot(text, "f"), s);
    assert.match(text, /^ {2}"image": "ghcr\.io\/.*",$/m);
    assert.deepEqual(parseSnapshot(snapshotText(snap({ pip: { available: false, reason: "no python3" } })), "f").pip, {
      available: false,
      reason: "no python3",
    });
  });

  test("a file that is not a snapshot is refused, naming it", () => {
    assert.throws(() => parseSnapshot("{", "snapshot X"), /^Error: snapshot X: not JSON/);
    assert.throws(() => parseSnapshot("[]", "snapshot X"), /snapshot X: not a comfyui snapshot \(not an object\)/);
    assert.throws(() => parseSnapshot(JSON.stringify({ ...snap(), format: 2 }), "f"), /format 2, expected 1/);
    assert.throws(() => parseSnapshot(JSON.stringify({ ...snap(), id: "../x" }), "f"), /id "\.\.\/x"/);
    assert.throws(() => parseSnapshot(JSON.stringify({ ...snap(), image: "" }), "f"), /no image/);
    assert.throws(() => parseSnapshot(JSON.stringify({ ...snap(), pip: { available: true } }), "f"), /pip is neither/);
  });

  test("the list: a marker line, then the file on one line; unreadable ones are listed with why", () => {
    const a = snap();
    const b = snap({ id: "20261201T000000Z-0001", comfyuiVersion: null, pip: { available: false, reason: "no pip" } });
    const line = (x: ComfySnapshot) => snapshotText(x).replace(/\n/g, "");
    const out = `##flow-snapshot\t${b.id}\n${line(b)}\n##flow-snapshot\t${a.id}\n${line(a)}\n##flow-snapshot\tbroken\n{\n`;
    const list = parseSnapshotList(out);
    assert.deepEqual(
      list.map((l) => l.id),
      ["20261130T041500Z-ab12", "20261201T000000Z-0001", "broken"],
    );
    assert.deepEqual(list[1]!.snapshot, b);
    assert.match(list[2]!.problem!, /snapshot broken: not JSON/);
    const table = snapshotTable(list);
    assert.match(table, /^ID\s+IMAGE\s+COMFYUI\s+PACKS\s+PIP\s+WHY$/m);
    assert.match(table, /^20261201T000000Z-0001\s+ghcr\.io\S+\s+\?\s+3\s+-$/m);
    assert.match(table, /^20261130T041500Z-ab12\s+ghcr\.io\S+\s+0\.19\.3\s+3\s+2$/m);
  });
});

describe("what a restore changes", () => {
  test("packs: nodes:install specs for what is gone or moved, extras moved aside, hand-made folders reported", () => {
    const s = snap();
    assert.deepEqual(packSpec(s.packs[0]!), `https://github.com/Comfy-Org/ComfyUI-Manager@${COMMIT}`);
    assert.deepEqual(packSpec(s.packs[1]!), "comfyui-kjnodes@1.1.0");
    assert.equal(packSpec(s.packs[2]!), undefined);
    const same = packRestorePlan(s.packs, [
      pack({ name: "ComfyUI-Manager", kind: "git", origin: "https://github.com/Comfy-Org/ComfyUI-Manager", commit: COMMIT }),
      pack({ name: "comfyui-kjnodes", kind: "registry", registryId: "comfyui-kjnodes", version: "1.1.0" }),
      pack({ name: "handmade" }),
    ]);
    assert.deepEqual(same, { install: [], moveAside: [], unrestorable: [], same: 3 });
    const extra = pack({ name: "new-pack", kind: "git", origin: "https://github.com/x/new-pack", commit: OTHER });
    const moved = packRestorePlan(s.packs, [
      pack({ name: "ComfyUI-Manager", kind: "git", origin: "https://github.com/Comfy-Org/ComfyUI-Manager", commit: OTHER }),
      pack({ name: "comfyui-kjnodes", kind: "registry", registryId: "comfyui-kjnodes", version: "1.2.0" }),
      extra,
    ]);
    assert.deepEqual(moved.install, [`https://github.com/Comfy-Org/ComfyUI-Manager@${COMMIT}`, "comfyui-kjnodes@1.1.0"]);
    assert.deepEqual(moved.moveAside, [extra]);
    assert.deepEqual(moved.unrestorable, ["handmade (gone; a folder with no git origin or registry record)"]);
  });

  test("pip: pins that differ are installed; packages added since stay; unpinned lines are reported", () => {
    const plan = pipRestorePlan(
      ["onnx==1.16.0", "pillow==10.0.0", "tqdm==4.66.0", "mypkg @ file:///tmp/mypkg"],
      ["onnx==1.17.0", "Pillow==10.0.0", "rich==13.0.0"],
    );
    assert.deepEqual(plan, { install: ["onnx==1.16.0", "tqdm==4.66.0"], unrestorable: ["mypkg @ file:///tmp/mypkg"], extra: ["rich"] });
    assert.deepEqual(pipRestorePlan(["a_b==1"], ["A-B==1"]), { install: [], unrestorable: [], extra: [] });
  });

  test("ComfyUI's version from /system_stats", () => {
    assert.equal(parseComfyVersion(JSON.stringify({ system: { comfyui_version: "0.3.60" } })), "0.3.60");
    assert.equal(parseComfyVersion(JSON.stringify({ system: {} })), null);
    assert.equal(parseComfyVersion("<html>"), null);
  });
});

describe("the snapshot's shell text, run", () => {
  test("save is atomic and list reads it back; move aside keeps what it moves, a second one beside the first", () => {
    const dir = mkdtempSync(join(tmpdir(), "flow-snap-"));
    try {
      const snaps = join(dir, "it's snapshots");
      const s = snap();
      sh(saveSnapshotCommand(snaps, s.id), snapshotText(s));
      assert.deepEqual(readdirSync(snaps), [s.id], "no temporary folder left");
      assert.equal(readFileSync(join(snaps, s.id, "snapshot.json"), "utf8"), snapshotText(s));
      assert.throws(() => sh(saveSnapshotCommand(snaps, s.id), "{}"), "an id is never overwritten");
      assert.deepEqual(readdirSync(snaps), [s.id]);
      mkdirSync(join(snaps, "not-one"));
      assert.deepEqual(parseSnapshotList(sh(listSnapshotsCommand(snaps))), [{ id: s.id, snapshot: s }]);
      assert.equal(sh(listSnapshotsCommand(join(dir, "none"))), "");

      const nodes = join(dir, "custom_nodes");
      mkdirSync(join(nodes, "odd 'pack'"), { recursive: true });
      writeFileSync(join(nodes, "odd 'pack'", "__init__.py"), "x = 1\n");
      const out = sh(moveAsideCommand([join(nodes, "odd 'pack'")], join(snaps, s.id)));
      assert.equal(out.trim(), join(snaps, s.id, "removed", "odd 'pack'"));
      assert.equal(readFileSync(join(snaps, s.id, "removed", "odd 'pack'", "__init__.py"), "utf8"), "x = 1\n");
      mkdirSync(join(nodes, "odd 'pack'"));
      sh(moveAsideCommand([join(nodes, "odd 'pack'")], join(snaps, s.id)));
      assert.equal(readdirSync(join(snaps, s.id, "removed")).length, 2);
      assert.deepEqual(readdirSync(nodes), []);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("pip and docker commands quote their values", () => {
    const pip = pipInstallCommand("comfyui", "/opt/flow/py thon");
    assert.ok(pip.startsWith("docker exec -i comfyui python3 -c 'import csv, os"), pip);
    assert.ok(pip.endsWith("' '/opt/flow/py thon'"), pip);
    assert.match(ensureImageCommand("a'b"), /docker image inspect 'a'\\''b' .* docker pull -q 'a'\\''b'/);
    assert.equal(stopContainer("comfyui", 12.7), "docker stop -t 12 comfyui >/dev/null 2>&1 || true");
    assert.deepEqual(parseContainerImage("running||sha256:abc|flow-comfy-standin:latest\n"), {
      state: "running",
      hash: "",
      imageId: "sha256:abc",
      image: "flow-comfy-standin:latest",
    });
    assert.equal(parseContainerImage(""), null);
  });
});

describe("the queue before a restart", () => {
  test("GET /queue: running and pending", () => {
    assert.deepEqual(
      parseQueue(
        JSON.stringify({
          queue_running: [[0, "a"]],
          queue_pending: [
            [1, "b"],
            [2, "c"],
          ],
        }),
      ),
      { running: 1, pending: 2 },
    );
    assert.deepEqual(parseQueue(JSON.stringify({ queue_running: [], queue_pending: [] })), { running: 0, pending: 0 });
    assert.equal(parseQueue(JSON.stringify({ queue_running: [] })), null);
  });

  // a host whose queue never drains: comfyui:restart goes ahead with a warning, `restart` (the API tier's) refuses
  const busyHost = () => {
    const said: string[] = [];
    const steps: string[] = [];
    const ctx = {
      dryRun: false,
      exec: async () => ({ code: 0, stdout: JSON.stringify({ queue_running: [[0, "a"]], queue_pending: [] }), stderr: "" }),
      warn: (m: string) => said.push(m),
      progress: () => {},
      step: async (title: string, body: () => Promise<{ status: string; note?: string }>) => {
        const r = await body();
        steps.push(`${title}: ${r.status} (${r.note})`);
        return r.status;
      },
    } as unknown as TaskContext;
    return { ctx, said, steps };
  };
  const comfy = { container: 8188, address: "127.0.0.1", host: 8188 };

  test("its time up, the drain goes ahead with a warning when asked to", async () => {
    const h = busyHost();
    await drainQueue(h.ctx, comfy, 0, { onTimeout: "proceed", hint: "--no-wait restarts at once" });
    assert.deepEqual(h.steps, ["queue drained (GET :8188/queue): ok (gave up after 0s with 1 running, 0 pending)"]);
    assert.deepEqual(h.said, ["the queue did not drain within 0s (1 running, 0 pending): restarting anyway; --no-wait restarts at once"]);
  });

  test("by default it fails and nothing restarts", async () => {
    const h = busyHost();
    await assert.rejects(drainQueue(h.ctx, comfy, 0), /the queue did not drain within 0s \(1 running, 0 pending\): nothing was restarted/);
  });
});

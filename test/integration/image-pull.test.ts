// The image pull step against this machine's real dockerd and a real registry (Debian's
// docker-registry on 127.0.0.1), through the CLI on `--host local` with --json: progress with bytes
// streams while the pull runs, the image is there after, a second run says present, and a registry
// nobody listens on fails naming it with the network hint. A small relay paces the registry's
// answers so the pull lasts a few seconds (over loopback it would end between two progress reports).
import { after, before, describe, test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer, connect, type AddressInfo, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { flow, flowfileSource, REPO } from "../support/cli.ts";
import { ensureEngine } from "../lab/engine.ts";

const REGISTRY_BIN = "/usr/bin/docker-registry";
const staticWhy =
  process.platform !== "linux"
    ? "needs Linux (dockerd)"
    : process.getuid?.() !== 0
      ? "needs root (the docker socket, and dockerd if none runs)"
      : spawnSync("docker", ["--version"]).status !== 0
        ? "the docker CLI is missing"
        : !existsSync(REGISTRY_BIN)
          ? `${REGISTRY_BIN} is missing (apt-get install docker-registry)`
          : spawnSync("curl", ["--version"]).status !== 0
            ? "curl is missing"
            : null;

const docker = (args: string[], env: Record<string, string> = {}) =>
  spawnSync("docker", args, { encoding: "utf8", env: { ...process.env, ...env }, timeout: 120_000 });

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** A TCP relay to `target` that sends the answers at `bytesPerSec`. */
function pacedRelay(target: number, bytesPerSec: number): Promise<{ port: number; server: Server }> {
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(target, "127.0.0.1");
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => (s === client ? upstream : client).destroy());
    }
    client.pipe(upstream);
    upstream.on("data", (chunk: Buffer) => {
      upstream.pause();
      client.write(chunk);
      setTimeout(() => upstream.resume(), (chunk.length / bytesPerSec) * 1000);
    });
    upstream.on("end", () => client.end());
  });
  server.on("close", () => sockets.forEach((s) => s.destroy()));
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve({ port: (server.address() as AddressInfo).port, server })));
}

async function waitFor(url: string, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      /* not up yet */
    }
    if (Date.now() > deadline) throw new Error(`${url} did not answer within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

type JsonEvent = { type: string; [k: string]: any };
const events = (stdout: string): JsonEvent[] =>
  stdout
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l));

describe("image pull step on the real dockerd and a real registry", { skip: staticWhy ?? false, timeout: 240_000 }, () => {
  let why: string | null = null;
  const work = mkdtempSync(join(tmpdir(), "flow-pull-"));
  const dir = join(work, "project");
  const tag = `t${randomBytes(4).toString("hex")}`;
  let registry: ChildProcess | undefined;
  let relay: Server | undefined;
  let pushed = "";
  let image = "";

  before(async () => {
    try {
      await ensureEngine();
    } catch (err) {
      why = `no Docker engine: ${(err as Error).message}`;
      return;
    }
    const regPort = await freePort();
    mkdirSync(join(work, "storage"));
    writeFileSync(
      join(work, "config.yml"),
      `version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: ${join(work, "storage")}\n` +
        `http:\n  addr: 127.0.0.1:${regPort}\n`,
    );
    registry = spawn(REGISTRY_BIN, ["serve", join(work, "config.yml")], { stdio: "ignore" });
    await waitFor(`http://127.0.0.1:${regPort}/v2/`, 20_000);

    // three layers of random bytes (they do not compress): 12 MB + 6 MB + a few bytes
    const ctx = join(work, "ctx");
    mkdirSync(ctx);
    writeFileSync(join(ctx, "a.bin"), randomBytes(12_000_000));
    writeFileSync(join(ctx, "b.bin"), randomBytes(6_000_000));
    writeFileSync(join(ctx, "c.txt"), "flow\n");
    writeFileSync(join(ctx, "Dockerfile"), "FROM scratch\nCOPY a.bin /a.bin\nCOPY b.bin /b.bin\nCOPY c.txt /c.txt\n");
    pushed = `127.0.0.1:${regPort}/flow-test/pull:${tag}`;
    const build = docker(["build", "-q", "-t", pushed, ctx], { DOCKER_BUILDKIT: "0" });
    assert.equal(build.status, 0, build.stderr);
    const push = docker(["push", pushed]);
    assert.equal(push.status, 0, push.stderr);
    assert.equal(docker(["rmi", pushed]).status, 0);

    // the same registry behind a relay at 8 MB/s: the pull takes a couple of seconds
    const paced = await pacedRelay(regPort, 8_000_000);
    relay = paced.server;
    image = `127.0.0.1:${paced.port}/flow-test/pull:${tag}`;

    mkdirSync(dir);
    writeFileSync(
      join(dir, "flowfile.ts"),
      flowfileSource(`
import { ensureImage } from ${JSON.stringify(join(REPO, "lib/steps/image-pull.ts"))};
export default defineFlow({ plugins: [definePlugin({ name: "p", tasks: [defineTask({
  name: "pull", description: "the image pull step",
  options: z.object({ image: z.string() }),
  async run(ctx, o) { await ensureImage(ctx, o.image); },
})] })] });`),
    );
    symlinkSync(join(REPO, "node_modules"), join(dir, "node_modules"));
  });

  after(() => {
    for (const name of [image, pushed]) if (name) docker(["rmi", "-f", name]);
    registry?.kill();
    relay?.close();
    rmSync(work, { recursive: true, force: true }); // node_modules there is a symlink: rm does not follow it
  });

  /** `flow run pull --json`, with the time each stdout line arrived */
  async function run(img: string) {
    const started = Date.now();
    const arrived: { at: number; line: string }[] = [];
    let rest = "";
    const r = await flow(["run", "pull", "--host", "local", "--image", img, "--json"], {
      cwd: dir,
      onStdout: (s) => {
        const parts = (rest + s).split("\n");
        rest = parts.pop()!;
        for (const line of parts) arrived.push({ at: Date.now() - started, line });
      },
    });
    return { ...r, events: events(r.stdout), arrived };
  }

  const skipIfNoEngine = (t: TestContext) => (why ? (t.skip(why), true) : false);

  test("a missing image is pulled with progress events (bytes, speed, ETA) while it runs, then is present", async (t) => {
    if (skipIfNoEngine(t)) return;
    assert.notEqual(docker(["image", "inspect", image]).status, 0, "the image is not there before");
    const r = await run(image);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const title = `image ${image}`;
    const end = r.events.find((e) => e.type === "step-end" && e.step === title)!;
    assert.equal(end.status, "changed", JSON.stringify(end));
    assert.match(end.note, /^pulled 18\.0 MB in [\d.]+s \([\d.]+ [kM]B\/s\)$/);

    const progress = r.events.filter((e) => e.type === "progress");
    assert.ok(
      progress.some((e) => /^pull pull: [\d.]+ [kM]?B \/ [\d.]+ MB\+? (\d+% )?at [\d.]+ [kM]?B\/s, ETA /.test(e.message)),
      progress.map((e) => e.message).join("\n"),
    );
    const pulls = r.events.filter((e) => e.type === "data" && e.data.pull).map((e) => e.data.pull);
    const moving = pulls.filter((p) => p.phase === "downloading" && p.bytesDone > 0 && p.bytesDone < p.bytesTotal);
    assert.ok(moving.length >= 2, JSON.stringify(pulls));
    assert.ok(moving.every((p) => p.image === image && p.registry === image.split("/")[0] && p.speed > 0 && p.eta !== null));
    const last = pulls[pulls.length - 1];
    assert.equal(last.phase, "done");
    assert.ok(last.bytesDone >= 18_000_000 && last.bytesDone < 18_100_000, String(last.bytesDone));
    assert.equal(last.layers, 3);

    // streamed as the pull ran, not printed at its end
    const firstMoving = r.arrived.find((a) => a.line.includes('"pull":{') && a.line.includes('"phase":"downloading"'))!;
    const stepEnd = r.arrived.find((a) => a.line.includes('"type":"step-end"') && a.line.includes(title))!;
    assert.ok(stepEnd.at - firstMoving.at >= 1000, `first progress at ${firstMoving.at} ms, step end at ${stepEnd.at} ms`);

    const recap = r.events.find((e) => e.type === "recap")!;
    assert.equal(recap.hosts[0].data.images[image].status, "pulled");
    assert.equal(docker(["image", "inspect", image]).status, 0, "the image is there after");
  });

  test("a second run finds it present and pulls nothing", async (t) => {
    if (skipIfNoEngine(t)) return;
    const r = await run(image);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const end = r.events.find((e) => e.type === "step-end")!;
    assert.deepEqual([end.status, end.note], ["ok", "present"]);
    assert.equal(r.events.filter((e) => e.type === "data" && e.data.pull).length, 0);
  });

  test("a registry nobody listens on fails the step naming it, with the network hint", async (t) => {
    if (skipIfNoEngine(t)) return;
    const closed = await freePort();
    const missing = `127.0.0.1:${closed}/flow-test/pull:${tag}`;
    const r = await run(missing);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    const end = r.events.find((e) => e.type === "step-end")!;
    assert.equal(end.status, "failed");
    assert.match(
      end.note,
      new RegExp(`^pull of ${missing.replace(/\./g, "\\.")} from 127\\.0\\.0\\.1:${closed} failed: .*connection refused`),
    );
    assert.match(end.note, new RegExp(`; check the box's network / DNS / firewall to 127\\.0\\.0\\.1:${closed}$`));
  });
});

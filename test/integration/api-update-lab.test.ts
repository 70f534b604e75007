// api:update / api:rollback, restart, tunnel and the ports ComfyUI is published on, against a real
// lab host (lab8) running the lab image (the real comfyui-api 1.18.0 in front of the stand-in
// ComfyUI). Builds: the real comfyui-api build folder from the lab cache, small launchers that
// exec the image's own comfyui-api (distinct builds that start in a second), and one that exits 1.
// A release is served from this machine and reached by the host through an SSH remote forward.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { flow, FLOW_BIN, flowfileSource, REPO, type CliResult } from "../support/cli.ts";
import { ensureLab, labUnavailableReason, resetHost, sshTarget, type LabInventory } from "../lab/lab.ts";
import { COMFYUI_API, ensureComfyuiApiBuild } from "../lab/standin/comfyui-api.ts";
import { ensureStandinImage, IMAGE_PATHS, STANDIN_TAG } from "../lab/standin/image.ts";

const why = await labUnavailableReason();
const HOST = "lab8";
const BIN = "/home/ubuntu/comfyui-api/bin";
const RELEASE = "1.18.9";

/** A build that runs the image's own comfyui-api: distinct content (so a distinct build), starts like the real one. */
const wrapper = (tag: string) => `#!/bin/sh\n# flow test build ${tag}\nexec ${IMAGE_PATHS.launcher} "$@"\n`;
const BROKEN = `#!/bin/sh\necho "comfyui-api: this build is broken on purpose" >&2\nexit 1\n`;

function recap(stdout: string): { ok: number; changed: number; failed: number; seconds: number } {
  const m = new RegExp(`^${HOST}\\s+\\S+\\s+(\\d+)\\s+(\\d+)\\s+\\d+\\s+(\\d+)\\s+([\\d.]+)s`, "m").exec(stdout);
  assert.ok(m, `no recap line in:\n${stdout}`);
  return { ok: +m[1]!, changed: +m[2]!, failed: +m[3]!, seconds: +m[4]! };
}

describe("comfyui-api builds, restart, tunnel on a lab host", { skip: why ?? false, timeout: 600_000 }, () => {
  let inv: LabInventory;
  let dir: string;
  let realBuild: string;
  let release: Server;
  let releasePort: number;
  let forward: ChildProcess | undefined;
  const seen: string[] = [];

  const sshArgs = () => sshTarget(inv.hosts[HOST]!.port, inv.hosts[HOST]!.user);
  // async: the release server lives in this process
  const onHost = (command: string) =>
    new Promise<{ code: number | null; out: string }>((resolve) => {
      const c = spawn("ssh", [...sshArgs(), command], { stdio: ["ignore", "pipe", "pipe"] });
      let out = "";
      c.stdout.on("data", (d: Buffer) => (out += d));
      c.stderr.on("data", (d: Buffer) => (out += d));
      const t = setTimeout(() => c.kill(), 60_000);
      c.on("close", (code) => (clearTimeout(t), resolve({ code, out })));
    });
  const hostOut = async (command: string) => (await onHost(command)).out.trim();
  const run = (args: string[]): Promise<CliResult> => flow(["run", ...args, "--hosts", HOST], { cwd: dir });
  const timed = async (args: string[]) => {
    const t0 = Date.now();
    const r = await run(args);
    return { ...r, ms: Date.now() - t0 };
  };
  const health = () => hostOut("curl -s -w ' %{http_code}' http://127.0.0.1:3000/health");
  const current = () => hostOut(`readlink ${BIN}/current`);
  const builds = async () =>
    (await hostOut(`cd ${BIN} && for d in */; do [ "$d" != current/ ] && [ -f "$d.flow-build.json" ] && echo "\${d%/}"; done`))
      .split("\n")
      .filter(Boolean)
      .sort();
  const buildFile = (name: string, text: string) => {
    const p = join(dir, "builds", name);
    writeFileSync(p, text);
    chmodSync(p, 0o755);
    return p;
  };

  before(async () => {
    await ensureLab({ hosts: 8, docker: true });
    inv = await resetHost(HOST);
    await ensureStandinImage(inv, HOST, (m) => process.stderr.write(`[standin] ${m}\n`));
    realBuild = (await ensureComfyuiApiBuild()).dir;

    // the release server: GET /releases/download/<version>/comfyui-api (with Range, as GitHub's CDN)
    const asset = Buffer.from(wrapper(`release ${RELEASE}`));
    release = createServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      if (req.url !== `/releases/download/${RELEASE}/comfyui-api`) return res.writeHead(404).end("Not Found");
      const m = /^bytes=(\d+)-(\d*)$/.exec(String(req.headers.range ?? ""));
      if (m) {
        const from = Number(m[1]);
        const to = Math.min(m[2] ? Number(m[2]) : asset.length - 1, asset.length - 1);
        res.writeHead(206, {
          "content-range": `bytes ${from}-${to}/${asset.length}`,
          "content-length": to - from + 1,
          "accept-ranges": "bytes",
          "content-type": "application/octet-stream",
        });
        return res.end(req.method === "HEAD" ? undefined : asset.subarray(from, to + 1));
      }
      res.writeHead(200, { "content-length": asset.length, "accept-ranges": "bytes", "content-type": "application/octet-stream" });
      res.end(req.method === "HEAD" ? undefined : asset);
    });
    await new Promise<void>((r) => release.listen(0, "127.0.0.1", () => r()));
    releasePort = (release.address() as AddressInfo).port;
    forward = spawn("ssh", ["-N", "-o", "ExitOnForwardFailure=yes", "-R", `${releasePort}:127.0.0.1:${releasePort}`, ...sshArgs()], {
      stdio: "ignore",
    });
    for (let i = 0; ; i++) {
      if ((await hostOut(`curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:${releasePort}/x`)) === "404") break;
      if (i > 100) throw new Error("the SSH remote forward to the release server never answered");
      await new Promise((r) => setTimeout(r, 200));
    }

    dir = mkdtempSync(join(tmpdir(), "flow-api-update-"));
    mkdirSync(join(dir, "builds"));
    writeFileSync(
      join(dir, "flowfile.ts"),
      flowfileSource(`
import { lambda } from ${JSON.stringify(join(REPO, "providers/index.ts"))};
import { comfyui, comfyuiApi } from ${JSON.stringify(join(REPO, "plugins/index.ts"))};
export default defineFlow({
  inventory: [${JSON.stringify(join(REPO, ".lab/inventory.json"))}],
  providers: [lambda()],
  // the release server is on this machine, reached by the host on its loopback: listed, or refused
  settings: { allowHosts: ["127.0.0.1:${releasePort}"] },
  plugins: [
    ops(),
    comfyui({ image: ${JSON.stringify(STANDIN_TAG)}, healthTimeoutSeconds: 60, env: { PROMPT_DURATION_MS: "3000" } }),
    comfyuiApi(),
  ],
});`),
    );
    symlinkSync(join(REPO, "node_modules"), join(dir, "node_modules"));
    const setup = await run(["setup:lambda"]);
    assert.equal(setup.code, 0, setup.stdout + setup.stderr);
  });

  after(async () => {
    forward?.kill();
    release?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test("ports: ComfyUI's 8188 and comfyui-api's 3000 are published on 127.0.0.1 only (the proxy is the way in)", async () => {
    const ports = await hostOut("sudo -n docker port comfyui");
    assert.match(ports, /^8188\/tcp -> 127\.0\.0\.1:8188$/m, ports);
    assert.match(ports, /^3000\/tcp -> 127\.0\.0\.1:3000$/m, ports);
    assert.doesNotMatch(ports, /-> (0\.0\.0\.0|\[::\]|::):/m, ports);
    // and so the host's own address reaches neither, while its loopback reaches comfyui-api
    const ip = await hostOut("hostname -I | cut -d' ' -f1");
    assert.equal(await hostOut(`curl -s -o /dev/null -w '%{http_code}' --max-time 3 http://${ip}:8188/ || true`), "000");
    assert.equal(await hostOut(`curl -s -o /dev/null -w '%{http_code}' --max-time 3 http://${ip}:3000/health || true`), "000");
    assert.equal(await hostOut(`curl -s -o /dev/null -w '%{http_code}' --max-time 3 http://127.0.0.1:3000/health`), "200");
  });

  test(
    "api:update to the real build folder, then to a build that fails to start: it switches " + "back by itself and the old build serves",
    async (t) => {
      const good = await timed(["api:update", "--from", realBuild, "--health-timeout", "60"]);
      assert.equal(good.code, 0, good.stdout + good.stderr);
      const id = /comfyui-api from \S+ on the host: changed \(([0-9a-f]{12}): sent /.exec(good.stdout)?.[1];
      assert.ok(id, good.stdout);
      assert.match(
        good.stdout,
        new RegExp(
          String.raw`switch to build [0-9a-f]{12}, check GET \/health and \/ready: changed \(re-created; serves` +
            String.raw` comfyui-api 1\.18\.0; was the image's own comfyui-api\)`,
        ),
      );
      assert.equal(await current(), id);
      assert.equal(await hostOut("sudo -n docker inspect -f '{{json .Config.Cmd}}' comfyui"), '["/app/bin/current/comfyui-api"]');
      assert.match(await hostOut("sudo -n docker top comfyui -o pid,args"), /node \/app\/bin\/current\/dist\/src\/index\.js/);
      assert.equal(await health(), `{"version":"${COMFYUI_API.version}","status":"healthy"} 200`);
      t.diagnostic(`api:update --from the real build folder (62 MB, 6000+ files): ${good.ms} ms`);

      const again = await timed(["api:update", "--from", realBuild]);
      assert.equal(again.code, 0, again.stdout);
      assert.match(again.stdout, /already on the host \(not sent\), sha256 checked/);
      assert.equal(recap(again.stdout).changed, 0, again.stdout);

      const broken = await timed(["api:update", "--from", buildFile("broken", BROKEN), "--health-timeout", "60"]);
      assert.equal(broken.code, 1, broken.stdout);
      const bad = /comfyui-api from broken on the host: changed \(([0-9a-f]{12}):/.exec(broken.stdout)?.[1];
      assert.ok(bad, broken.stdout);
      assert.match(
        broken.stdout,
        new RegExp(`switch to build ${bad}, check GET /health and /ready: failed \\(comfyui-api exited after \\d+s`),
      );
      assert.match(broken.stdout, new RegExp(`switch back to build ${id}: changed \\(serves comfyui-api 1\\.18\\.0 again\\)`));
      assert.match(
        broken.stdout,
        new RegExp(
          `build ${bad} failed its check \\(comfyui-api exited after \\d+s[^)]*\\)\\): switched back to build ${id}, which serves`,
        ),
      );
      assert.match(
        broken.stdout,
        /last 30 lines of the comfyui container's log \(build [0-9a-f]{12}\):\n(.*\n)*.*this build is broken on purpose/,
      );
      assert.ok(broken.ms < 30_000, `a start-up failure is seen at once, not at the timeout (${broken.ms} ms)`);
      assert.equal(await current(), id);
      assert.equal(await health(), `{"version":"${COMFYUI_API.version}","status":"healthy"} 200`);
      assert.match(await hostOut(`cat ${BIN}/${bad}/.flow-build.json`), /"failedAt"/);
      t.diagnostic(`a failed api:update, switched back: ${broken.ms} ms`);
    },
  );

  test("a release downloaded by the host, api:rollback on request, the last 3 builds kept", async (t) => {
    const dry = await run(["api:update", "--from", buildFile("dry", wrapper("dry")), "--dry-run"]);
    assert.equal(dry.code, 0, dry.stdout);
    assert.match(dry.stdout, /would send \d+ B/);
    const before = await builds();
    assert.equal(before.length, 2, before.join(" "));

    const rel = await timed([
      "api:update",
      "--version",
      RELEASE,
      "--release-url",
      `http://127.0.0.1:${releasePort}/releases/download`,
      "--health-timeout",
      "60",
    ]);
    assert.equal(rel.code, 0, rel.stdout + rel.stderr);
    assert.match(
      rel.stdout,
      new RegExp(`comfyui-api release ${RELEASE} on the host: changed \\(${RELEASE.replace(/\./g, "\\.")}: downloaded on the host`),
    );
    assert.ok(
      seen.some((s) => s.startsWith(`GET /releases/download/${RELEASE}/comfyui-api`)),
      seen.join("\n"),
    );
    assert.equal(await current(), RELEASE);
    assert.match(await hostOut(`cat ${BIN}/${RELEASE}/comfyui-api`), /flow test build release/);
    t.diagnostic(`api:update --version (downloaded by the host): ${rel.ms} ms`);

    // a fourth build: the failed one goes first
    const next = await run(["api:update", "--from", buildFile("good2", wrapper("2")), "--health-timeout", "60"]);
    assert.equal(next.code, 0, next.stdout);
    const good2 = /comfyui-api from good2 on the host: changed \(([0-9a-f]{12}):/.exec(next.stdout)?.[1]!;
    assert.match(next.stdout, /keep the last 3 builds: changed \(removed [0-9a-f]{12}\)/);
    const kept = await builds();
    assert.equal(kept.length, 3, kept.join(" "));
    assert.ok(kept.includes(RELEASE) && kept.includes(good2), kept.join(" "));
    assert.equal(await hostOut(`grep -l failedAt ${BIN}/*/.flow-build.json | wc -l`), "0", "the failed build was pruned first");

    // back, on request: to the release, then to the real build folder
    const rb = await timed(["api:rollback", "--health-timeout", "60"]);
    assert.equal(rb.code, 0, rb.stdout);
    assert.match(
      rb.stdout,
      new RegExp(
        `roll back to build ${RELEASE.replace(/\./g, "\\.")}, check GET /health and /ready: changed ` +
          `\\(restarted; serves comfyui-api 1\\.18\\.0; was build ${good2}\\)`,
      ),
    );
    assert.equal(await current(), RELEASE);
    const rb2 = await run(["api:rollback"]);
    assert.equal(rb2.code, 0, rb2.stdout);
    const real = kept.find((k) => k !== RELEASE && k !== good2)!;
    assert.equal(await current(), real);
    assert.equal(await health(), `{"version":"${COMFYUI_API.version}","status":"healthy"} 200`);
    const list = await run(["api:builds"]);
    assert.match(list.stdout, new RegExp(`\\* ${real}`));
    t.diagnostic(`api:rollback: ${rb.ms} ms`);
  });

  test("restart waits for the queue to drain, says what restarts, and for GET /health and /ready", async (t) => {
    // a prompt ComfyUI accepts: an image to save, and the saver
    const prompt = JSON.stringify({
      prompt: {
        1: { class_type: "EmptyImage", inputs: { width: 64, height: 64, batch_size: 1, color: 0 } },
        9: { class_type: "SaveImage", inputs: { images: ["1", 0], filename_prefix: "drain" } },
      },
    });
    const queued = await hostOut(`curl -s -H 'content-type: application/json' -d '${prompt}' http://127.0.0.1:8188/prompt`);
    assert.match(queued, /prompt_id/);
    const before = await hostOut("sudo -n docker inspect -f '{{.State.StartedAt}}' comfyui");
    const r = await timed(["restart", "--what", "api", "--health-timeout", "60"]);
    assert.equal(r.code, 0, r.stdout);
    assert.match(
      r.stdout,
      new RegExp(
        String.raw`comfyui-api is the container's PID 1 \(\/app\/bin\/current\/comfyui-api\) and starts Comfy` +
          String.raw`UI as its child \(CMD=node \/opt\/ComfyUI\/main\.mjs[^)]*\): the API cannot restart alone,` +
          String.raw` so both restart`,
      ),
    );
    assert.match(r.stdout, /queue drained \(GET :8188\/queue\): ok \(waited \d+s for 1 running, 0 pending\)/);
    assert.match(r.stdout, /comfyui-api healthy \(GET :3000\/health and \/ready\): ok \(after \d+s, serves comfyui-api 1\.18\.0\)/);
    assert.notEqual(await hostOut("sudo -n docker inspect -f '{{.State.StartedAt}}' comfyui"), before, "the container restarted");
    assert.equal(await health(), `{"version":"${COMFYUI_API.version}","status":"healthy"} 200`);
    assert.ok(r.ms >= 1500, `it waited for the prompt (${r.ms} ms)`);
    t.diagnostic(`restart with one 3 s prompt in the queue: ${r.ms} ms`);
  });

  test("a build that starts but does not serve the workflows the running one serves is switched back too", async () => {
    const wf = `import { z } from "zod";
import { ComfyPrompt, Workflow } from "../types";
const RequestSchema = z.object({ prompt: z.string().describe("a file name prefix") });
type Input = z.infer<typeof RequestSchema>;
function generateWorkflow(input: Input): ComfyPrompt {
  return { save: { class_type: "SaveImage", inputs: { filename_prefix: input.prompt } } } as ComfyPrompt;
}
const workflow: Workflow = { RequestSchema, generateWorkflow, summary: "echo (lab)" };
export default workflow;
`;
    await hostOut(
      `mkdir -p /home/ubuntu/comfyui-api/workflows/lab && cat > /home/ubuntu/comfyui-api/workflows/lab/echo.ts <<'EOF'\n${wf}EOF`,
    );
    const r = await run(["restart", "--force", "--health-timeout", "60"]);
    assert.equal(r.code, 0, r.stdout);
    assert.match(await hostOut("curl -s http://127.0.0.1:3000/docs/json"), /"\/workflow\/lab\/echo"/);
    const was = await current();
    // comfyui-api starts and is healthy, but reads an empty workflow folder
    const blind = buildFile(
      "blind",
      `#!/bin/sh\nmkdir -p /tmp/no-workflows\nWORKFLOW_DIR=/tmp/no-workflows exec ${IMAGE_PATHS.launcher} "$@"\n`,
    );
    const u = await run(["api:update", "--from", blind, "--health-timeout", "60"]);
    assert.equal(u.code, 1, u.stdout);
    assert.match(
      u.stdout,
      new RegExp(
        String.raw`check GET \/health, \/ready and its 1 workflow: failed \(it does not serve 1 of the 1 work` +
          String.raw`flow the build before served: \/workflow\/lab\/echo\)`,
      ),
    );
    assert.match(u.stdout, new RegExp(`switched back to build ${was}, which serves`));
    assert.equal(await current(), was);
    assert.match(await hostOut("curl -s http://127.0.0.1:3000/docs/json"), /"\/workflow\/lab\/echo"/);
  });

  test("tunnel: this machine reaches the host's 3000 and 8188 over SSH; SIGINT ends it cleanly", async () => {
    const child = spawn(process.execPath, [FLOW_BIN, "run", "tunnel", "--hosts", HOST, "--local-comfyui", "0", "--local-api", "0"], {
      cwd: dir,
      env: { ...process.env, CI: "true" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (c: Buffer) => (out += c));
    child.stderr.on("data", (c: Buffer) => (out += c));
    const exited = new Promise<number | null>((r) => child.on("close", (code) => r(code)));
    try {
      const deadline = Date.now() + 30_000;
      while (!/Ctrl-C ends it/.test(out)) {
        if (Date.now() > deadline) assert.fail(`no URLs printed:\n${out}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      const comfy = /ComfyUI\s+(http:\/\/127\.0\.0\.1:\d+\/)/.exec(out)?.[1];
      const api = /comfyui-api\s+(http:\/\/127\.0\.0\.1:\d+\/)/.exec(out)?.[1];
      assert.ok(comfy && api, out);
      const h = await fetch(`${api}health`);
      assert.deepEqual(await h.json(), { version: COMFYUI_API.version, status: "healthy" });
      const stats = (await (await fetch(`${comfy}system_stats`)).json()) as { system: { comfyui_version: string } };
      assert.equal(stats.system.comfyui_version, "0.19.3-standin");
      const doc = (await (await fetch(`${api}docs/json`)).json()) as { info: { version: string } };
      assert.equal(doc.info.version, COMFYUI_API.version);
    } finally {
      child.kill("SIGINT");
    }
    const code = await exited;
    assert.equal(code, 0, out);
    assert.match(
      out,
      /tunnel ComfyUI 127\.0\.0\.1:8188, comfyui-api 127\.0\.0\.1:3000: ok \(closed on SIGINT after \d+s, [1-9] connections? carried\)/,
    );
    assert.doesNotMatch(out, /Error|at .*\(.*:\d+:\d+\)/);
  });
});

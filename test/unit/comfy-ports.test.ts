// Ports secure by default, the container's published ports as docker prints them, the health
// wait's shell loop (against a local HTTP server and a fake docker), restart's and tunnel's pure parts.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { comfyContainerSpec, containerCommand, CONTAINER_BINARY, CONTAINER_CURRENT_BINARY, portBindings } from "../../lib/comfy/deploy.ts";
import {
  dialAddress,
  healthWaitCommand,
  parseContainerRun,
  parseDockerPort,
  parseHealthWait,
  publishedUrl,
  runArgv,
  specHash,
} from "../../lib/commands/docker.ts";
import { endpointsOf } from "../../plugins/comfyui-api/health.ts";
import { parseLayout, parseQueue, restartPlan } from "../../plugins/comfyui-api/restart.ts";
import { tunnelPlan } from "../../plugins/comfyui-api/tunnel.ts";

describe("ports: ComfyUI and comfyui-api on loopback unless exposed (the proxy on 443 is the way in)", () => {
  test("defaults: 8188 and 3000 on 127.0.0.1 only", () => {
    assert.deepEqual(portBindings({}), [
      { host: 8188, container: 8188, bind: "127.0.0.1" },
      { host: 3000, container: 3000, bind: "127.0.0.1" },
    ]);
    const argv = runArgv(comfyContainerSpec({ image: "i", dataRoot: "/d", gpu: false }));
    assert.ok(argv.includes("127.0.0.1:8188:8188"), argv.join(" "));
    assert.ok(argv.includes("127.0.0.1:3000:3000"), argv.join(" "));
    assert.ok(!argv.includes("3000:3000"));
  });

  test("expose: true follows bind (default all interfaces), false keeps loopback, a string is an address", () => {
    assert.deepEqual(portBindings({ expose: { comfyui: true } })[0], { host: 8188, container: 8188 });
    assert.deepEqual(portBindings({ expose: { comfyui: true }, bind: "10.0.0.5" })[0], { host: 8188, container: 8188, bind: "10.0.0.5" });
    assert.deepEqual(portBindings({ bind: "10.0.0.5" }), [
      { host: 8188, container: 8188, bind: "127.0.0.1" },
      { host: 3000, container: 3000, bind: "127.0.0.1" },
    ]);
    assert.deepEqual(portBindings({ expose: { api: true } })[1], { host: 3000, container: 3000 });
    assert.deepEqual(portBindings({ expose: { api: true }, bind: "10.0.0.5" })[1], { host: 3000, container: 3000, bind: "10.0.0.5" });
    assert.deepEqual(portBindings({ expose: { comfyui: "100.64.0.2", api: "100.64.0.2" }, comfyPort: 18188, apiPort: 13000 }), [
      { host: 18188, container: 8188, bind: "100.64.0.2" },
      { host: 13000, container: 3000, bind: "100.64.0.2" },
    ]);
  });

  test("exposing ComfyUI changes the spec hash (the container is re-created); the stop signal is SIGINT", () => {
    const base = { image: "i", dataRoot: "/d", gpu: false };
    assert.notEqual(specHash(comfyContainerSpec(base)), specHash(comfyContainerSpec({ ...base, expose: { comfyui: true } })));
    const argv = runArgv(comfyContainerSpec(base));
    assert.equal(argv[argv.indexOf("--stop-signal") + 1], "SIGINT");
  });

  test("the command: the image's own, bin/comfyui-api, or the build bin/current points at", () => {
    assert.equal(containerCommand(undefined), undefined);
    assert.equal(containerCommand(false), undefined);
    assert.deepEqual(containerCommand(true), [CONTAINER_BINARY]);
    assert.deepEqual(containerCommand("current"), [CONTAINER_CURRENT_BINARY]);
    const spec = comfyContainerSpec({ image: "i", dataRoot: "/d", gpu: false, customBinary: "current" });
    assert.ok(spec.volumes.some((v) => v.host === "/d/comfyui-api/bin" && v.container === "/app/bin" && v.readOnly));
  });
});

describe("docker's answers", () => {
  test("docker port: v4, v6 (both spellings), loopback", () => {
    const ports = parseDockerPort(
      "8188/tcp -> 127.0.0.1:8188\n3000/tcp -> 0.0.0.0:3000\n3000/tcp -> [::]:3000\n3000/tcp -> :::3000\nnoise\n",
    );
    assert.deepEqual(ports, [
      { container: 8188, address: "127.0.0.1", host: 8188 },
      { container: 3000, address: "0.0.0.0", host: 3000 },
      { container: 3000, address: "::", host: 3000 },
      { container: 3000, address: "::", host: 3000 },
    ]);
    assert.equal(dialAddress(ports[1]!), "127.0.0.1");
    assert.equal(dialAddress({ address: "10.0.0.5" }), "10.0.0.5");
    assert.equal(publishedUrl({ address: "::1", host: 3000 }, "/health"), "http://[::1]:3000/health");
    assert.equal(publishedUrl({ address: "0.0.0.0", host: 13000 }, "/ready"), "http://127.0.0.1:13000/ready");
  });

  test("endpoints: the loopback / IPv4 entry first; the defaults when nothing is published", () => {
    const e = endpointsOf(parseDockerPort("3000/tcp -> [::]:13000\n3000/tcp -> 0.0.0.0:13000\n8188/tcp -> 127.0.0.1:18188"));
    assert.deepEqual(e.api, { container: 3000, address: "0.0.0.0", host: 13000 });
    assert.deepEqual(e.comfy, { container: 8188, address: "127.0.0.1", host: 18188 });
    assert.equal(e.published, true);
    const none = endpointsOf([]);
    assert.equal(none.published, false);
    assert.equal(none.api.host, 3000);
  });

  test("container run fact", () => {
    assert.deepEqual(parseContainerRun("running 2 2026-01-01T00:00:00Z 4242\n"), {
      state: "running",
      restarts: 2,
      startedAt: "2026-01-01T00:00:00Z",
      pid: 4242,
    });
    assert.equal(parseContainerRun(""), null);
  });
});

describe("the health wait's loop (real sh and curl, a fake docker)", () => {
  const serve = (status: () => number): Promise<Server> =>
    new Promise((ok) => {
      const s = createServer((req, res) => {
        res.writeHead(status(), { "content-type": "application/json" });
        res.end(JSON.stringify({ version: "1.18.0", status: req.url }));
      });
      s.listen(0, "127.0.0.1", () => ok(s));
    });
  const runLoop = (script: string): Promise<{ code: number | null; out: string; ms: number }> =>
    new Promise((ok) => {
      const t0 = Date.now();
      const p = spawn("sh", ["-c", script]);
      let out = "";
      p.stdout.on("data", (c: Buffer) => (out += c));
      p.on("close", (code) => ok({ code, out, ms: Date.now() - t0 }));
    });
  // docker inspect prints "<state> <restart count>"; the count comes from a file the test bumps
  const fakeDocker = (countFile: string, state = "running") => `docker() { echo "${state} $(cat ${countFile} 2>/dev/null || echo 0)"; }\n`;

  test("ok once every URL answers 200, with the first URL's body", async () => {
    let n = 0;
    const s = await serve(() => (++n > 3 ? 200 : 503));
    const base = `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
    const r = await runLoop(fakeDocker("/nonexistent") + healthWaitCommand("c", [`${base}/health`, `${base}/ready`], 20));
    s.close();
    const w = parseHealthWait(r.out);
    assert.equal(w.outcome, "ok", r.out);
    assert.match((w as { body: string }).body, /"version":"1.18.0"/);
  });

  test("gives up at once when the process exits (the restart count grows), not at the timeout", async () => {
    const s = await serve(() => 500);
    const base = `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
    const count = `/tmp/flow-hw-${process.pid}`;
    const wait = healthWaitCommand("c", [`${base}/health`], 60);
    const script = `echo 0 > ${count}; (sleep 1; echo 1 > ${count}) &\n${fakeDocker(count)}${wait}`;
    const r = await runLoop(script);
    s.close();
    const w = parseHealthWait(r.out);
    assert.equal(w.outcome, "exited", r.out);
    assert.equal((w as { restarts: number }).restarts, 1);
    assert.ok(r.ms < 10_000, `took ${r.ms} ms`);
    const stopped = parseHealthWait(
      (await runLoop(fakeDocker("/nonexistent", "exited") + healthWaitCommand("c", [`${base}/health`], 60))).out,
    );
    assert.equal(stopped.outcome, "exited");
  });

  test("times out, naming the URL and its last status", async () => {
    const r = await runLoop(fakeDocker("/nonexistent") + healthWaitCommand("c", ["http://127.0.0.1:9/health"], 1));
    const w = parseHealthWait(r.out);
    assert.equal(w.outcome, "timeout", r.out);
    assert.equal((w as { url: string }).url, "http://127.0.0.1:9/health");
  });
});

describe("restart and tunnel, the pure parts", () => {
  test("ComfyUI's queue", () => {
    assert.deepEqual(
      parseQueue(
        JSON.stringify({
          queue_running: [[1, "a"]],
          queue_pending: [
            [2, "b"],
            [3, "c"],
          ],
        }),
      ),
      { running: 1, pending: 2 },
    );
    assert.equal(parseQueue("<html>"), null);
    assert.equal(parseQueue("{}"), null);
  });

  test("--what: in comfyui-api's image the API is PID 1 and ComfyUI its child", () => {
    const l = parseLayout("/app/bin/current/comfyui-api \nPATH=/usr/bin\nCMD=node /opt/ComfyUI/main.mjs --listen 0.0.0.0 --port 8188\n");
    assert.equal(l.apiIsPid1, true);
    assert.equal(l.cmd, "node /opt/ComfyUI/main.mjs --listen 0.0.0.0 --port 8188");
    const api = restartPlan("api", l);
    assert.equal(api.comfyuiAlone, false);
    assert.match(
      api.note!,
      new RegExp(
        String.raw`comfyui-api is the container's PID 1 \(\/app\/bin\/current\/comfyui-api\) and starts Comfy` +
          String.raw`UI as its child .*cannot restart alone, so both restart`,
      ),
    );
    assert.match(restartPlan("comfyui", l).note!, /exits when it does \(ALWAYS_RESTART_COMFYUI is not true\): both restart/);
    const relaunching = parseLayout("/opt/comfyui-api/comfyui-api \nALWAYS_RESTART_COMFYUI=True\n");
    assert.equal(restartPlan("comfyui", relaunching).comfyuiAlone, true);
    assert.equal(restartPlan("both", l).note, undefined);
  });

  test("tunnel: each wanted local port to where the host publishes the service", () => {
    const ends = endpointsOf(parseDockerPort("8188/tcp -> 127.0.0.1:18188\n3000/tcp -> 0.0.0.0:3000"));
    assert.deepEqual(tunnelPlan(ends, { comfyui: 8188, api: 0 }), [
      { name: "ComfyUI", localPort: 8188, remoteHost: "127.0.0.1", remotePort: 18188, path: "/" },
      { name: "comfyui-api", localPort: 0, remoteHost: "127.0.0.1", remotePort: 3000, path: "/docs" },
    ]);
    assert.deepEqual(
      tunnelPlan(ends, { comfyui: -1, api: 3000 }).map((p) => p.name),
      ["comfyui-api"],
    );
  });
});

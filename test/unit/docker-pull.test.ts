// The image pull as data: references, the Engine API command, the tracker over real captured
// streams (test/fixtures/docker, see PROVENANCE.md) with a synthetic clock, and the failure messages.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { spawnSync } from "node:child_process";
import {
  classifyPullError,
  ImageRefError,
  parseImageRef,
  pullCommand,
  pulledNote,
  pullExitMessage,
  pullFailureMessage,
  PullTracker,
  registryOf,
} from "../../lib/commands/docker-pull.ts";
import { ensureImage } from "../../lib/steps/image-pull.ts";
import type { EnsureSpec, StepResult, StepStatus, TaskContext } from "../../lib/task.ts";
import type { ExecOptions, ExecResult } from "../../lib/transport/types.ts";

const fixture = (name: string) => readFileSync(new URL(`../fixtures/docker/${name}`, import.meta.url), "utf8");
const lines = (text: string) => text.split("\n").filter((l) => l.trim());
/** pullCommand's last line, as curl -w writes it after the engine's body */
const httpLine = (code: number) => `{"flowPullHttp":"${code}"}`;
const DIGEST = "sha256:ee01c85706efb73f527a5c548a4ecdf448157c0362a6f1806792aaed0c418dd7";

test("image references: registry, repository, tag or digest, as docker reads them", () => {
  const cases: [string, ReturnType<typeof parseImageRef>][] = [
    ["ghcr.io/a/b:tag", { registry: "ghcr.io", repository: "a/b", name: "ghcr.io/a/b", tag: "tag", digest: undefined }],
    ["b", { registry: "docker.io", repository: "library/b", name: "b", tag: undefined, digest: undefined }],
    ["caddy:2.8", { registry: "docker.io", repository: "library/caddy", name: "caddy", tag: "2.8", digest: undefined }],
    ["host:5000/a/b:tag", { registry: "host:5000", repository: "a/b", name: "host:5000/a/b", tag: "tag", digest: undefined }],
    ["host:5000/a/b", { registry: "host:5000", repository: "a/b", name: "host:5000/a/b", tag: undefined, digest: undefined }],
    [`a/b@${DIGEST}`, { registry: "docker.io", repository: "a/b", name: "a/b", tag: undefined, digest: DIGEST }],
    [`ghcr.io/a/b:t@${DIGEST}`, { registry: "ghcr.io", repository: "a/b", name: "ghcr.io/a/b", tag: "t", digest: DIGEST }],
    ["localhost/a", { registry: "localhost", repository: "a", name: "localhost/a", tag: undefined, digest: undefined }],
    ["index.docker.io/library/b:1", { registry: "docker.io", repository: "library/b", name: "index.docker.io/library/b", tag: "1" }],
    [
      "127.0.0.1:5055/flow-test/app:1",
      { registry: "127.0.0.1:5055", repository: "flow-test/app", name: "127.0.0.1:5055/flow-test/app", tag: "1" },
    ],
  ];
  for (const [image, want] of cases)
    assert.deepEqual({ digest: undefined, ...parseImageRef(image) }, { digest: undefined, ...want }, image);
  const comfy = "ghcr.io/saladtechnologies/comfyui-api:comfy0.19.3-api1.18.1-torch2.8.0-cuda12.8-runtime";
  assert.equal(registryOf(comfy), "ghcr.io");
  assert.equal(registryOf("caddy:2"), "docker.io");
  assert.equal(registryOf("docker.io/library/caddy"), "docker.io");
});

test("a hostile or malformed image name is refused before it reaches a shell or a URL", () => {
  const hostile = [
    "x'; rm -rf / #",
    "$(reboot)",
    "a/b:tag;ls",
    "a b",
    "a/b\nrm -rf /",
    "-v/etc:/x",
    "a/b:tag&fromImage=evil",
    "a/b?x=1",
    "Upper/../x",
    "a//b",
    "a/b:",
    "a/b@sha256:zz",
    "",
    `a/b:${"t".repeat(200)}`,
  ];
  for (const image of hostile) {
    assert.throws(() => pullCommand(image), ImageRefError, JSON.stringify(image));
    assert.throws(() => registryOf(image), ImageRefError, JSON.stringify(image));
  }
});

test("pullCommand: the Engine API on the docker socket, query encoded and quoted, the tag always given", () => {
  const cmd = pullCommand("host:5000/a/b:tag");
  assert.match(cmd, /curl -sSN --unix-socket \/var\/run\/docker\.sock -X POST /);
  assert.ok(cmd.includes(`'http://localhost/images/create?fromImage=host%3A5000%2Fa%2Fb&tag=tag'`), cmd);
  // no tag: latest (the API would otherwise pull every tag of the repository)
  assert.ok(pullCommand("caddy").includes("fromImage=caddy&tag=latest'"));
  // a digest goes where the tag would
  assert.ok(pullCommand(`ghcr.io/a/b:t@${DIGEST}`).includes(`fromImage=ghcr.io%2Fa%2Fb&tag=sha256%3A${DIGEST.slice(7)}'`));
  assert.equal(spawnSync("sh", ["-n", "-c", cmd]).status, 0, "valid sh");
  // no curl on the box: a clear exit, not a pull that seems to hang
  const r = spawnSync("/bin/sh", ["-c", cmd], { env: { PATH: "/nonexistent" }, encoding: "utf8" });
  assert.equal(r.status, 127);
  assert.match(pullExitMessage(r.status, r.stderr), /curl is not installed on the host/);
});

test("tracker on a real pull: layers, bytes, digest; speed and ETA from a synthetic clock", () => {
  let now = 0;
  const t = new PullTracker({ now: () => now });
  const snaps = [];
  for (const line of [...lines(fixture("pull-stream.jsonl")), httpLine(200)]) {
    now += 100;
    t.feed(line);
    snaps.push(t.snapshot());
  }
  const end = snaps[snaps.length - 1]!;
  assert.equal(t.httpStatus, 200);
  assert.equal(t.finished, true);
  assert.equal(end.phase, "done");
  assert.equal(end.layers, 4);
  assert.equal(end.layersExisting, 1);
  assert.equal(end.layersDone, 4);
  // 60 MB + 20 MB + the 109-byte layer whose size only its extraction told
  assert.equal(end.bytesDone, 60018519 + 20006295 + 109);
  assert.equal(end.bytesTotal, end.bytesDone);
  assert.equal(end.sizesKnown, true);
  assert.equal(end.digest, DIGEST);
  assert.equal(end.text, "pulled 80.0 MB, layers 4/4 (1 present)");

  // before any layer said its size: totals are lower bounds and say so
  const early = snaps[4]!; // after the three "Pulling fs layer"
  assert.equal(early.phase, "downloading");
  assert.equal(early.sizesKnown, false);
  assert.equal(early.layersDone, 1);

  // the line "2e703220f5b6 Downloading 21680128/60018519" is the 21st: now = 2.1 s, nothing fetched before t=0
  const mid = snaps[20]!;
  assert.equal(mid.bytesDone, 21680128 + 20006295); // the 20 MB layer is complete by then
  assert.equal(mid.bytesTotal, 60018519 + 20006295);
  assert.equal(mid.sizesKnown, true);
  assert.equal(mid.speedBytesPerSec, Math.round((21680128 + 20006295) / 2.1));
  assert.ok(Math.abs(mid.etaSeconds! - (60018519 - 21680128) / ((21680128 + 20006295) / 2.1)) < 1e-6);
  assert.equal(mid.text, "41.7 MB / 80.0 MB 52% at 19.9 MB/s, ETA 2s, layers 1/4 (1 present)");

  const extracting = snaps.find((s) => s.phase === "extracting")!;
  assert.match(extracting.text, /^extracting [\d.]+ [kMG]?B \/ 80\.0 MB, layers \d\/4/);
});

test("speed is over a sliding window: a change of pace shows within the window, a stall falls to 0", () => {
  let now = 0;
  const t = new PullTracker({ now: () => now, windowMs: 10_000 });
  const at = (ms: number, current: number) => {
    now = ms;
    t.feed(JSON.stringify({ status: "Downloading", progressDetail: { current, total: 100_000_000 }, id: "aaaaaaaaaaaa" }));
  };
  for (let s = 0; s <= 10; s++) at(s * 1000, s * 1_000_000); // 1 MB/s for 10 s
  assert.equal(t.snapshot().speedBytesPerSec, 1_000_000);
  for (let s = 1; s <= 10; s++) at(10_000 + s * 1000, 10_000_000 + s * 3_000_000); // then 3 MB/s
  const s = t.snapshot();
  assert.equal(s.speedBytesPerSec, 3_000_000);
  assert.equal(s.bytesDone, 40_000_000);
  assert.equal(s.etaSeconds, 20);
  assert.match(s.text, /^40\.0 MB \/ 100\.0 MB 40% at 3\.00 MB\/s, ETA 20s, layers 0\/1$/);
  now += 5_000; // nothing for 5 s: half the window moved
  assert.equal(t.snapshot().speedBytesPerSec, 1_500_000);
  now += 6_000;
  assert.equal(t.snapshot().speedBytesPerSec, 0);
  assert.equal(t.snapshot().etaSeconds, null);
  assert.match(t.snapshot().text, /ETA \?/);
});

test("a layer without a known size makes the total and the ETA lower bounds", () => {
  let now = 0;
  const t = new PullTracker({ now: () => now });
  t.feed(`{"status":"Pulling fs layer","progressDetail":{},"id":"aaaaaaaaaaaa"}`);
  t.feed(`{"status":"Waiting","progressDetail":{},"id":"bbbbbbbbbbbb"}`);
  now = 2000;
  t.feed(`{"status":"Downloading","progressDetail":{"current":2000000,"total":10000000},"id":"aaaaaaaaaaaa"}`);
  const s = t.snapshot();
  assert.equal(s.sizesKnown, false);
  assert.equal(s.text, "2.00 MB / 10.0 MB+ at 1.00 MB/s, ETA 8s+, layers 0/2");
});

test("a mid-stream error (HTTP 200) fails the pull naming the registry", () => {
  const t = new PullTracker();
  for (const line of [...lines(fixture("pull-missing-blob.jsonl")), httpLine(200)]) t.feed(line);
  assert.equal(t.error, "unknown blob");
  assert.equal(t.snapshot().phase, "failed");
  assert.equal(classifyPullError(t.error!), "missing");
  assert.equal(
    pullFailureMessage("127.0.0.1:5057/flow-test/app:1", t.error!),
    "pull of 127.0.0.1:5057/flow-test/app:1 from 127.0.0.1:5057 failed: unknown blob; " +
      "check the image name and tag: 127.0.0.1:5057 does not have it",
  );
});

test("a registry that drops away: layers retrying show in the text, then the network hint", () => {
  const t = new PullTracker();
  const retrying = new Set<string>();
  for (const line of lines(fixture("pull-retry-error.jsonl"))) {
    t.feed(line);
    const s = t.snapshot();
    if (!t.error && s.layersRetrying) retrying.add(s.text.replace(/.*layers/, "layers"));
  }
  // both downloading layers wait on the registry (the engine tries again for a while, then gives up)
  assert.ok(retrying.has("layers 1/4 (1 present), 2 retrying (registry unreachable?)"), [...retrying].join("\n"));
  assert.equal(t.error, "dial tcp 127.0.0.1:5058: connect: connection refused");
  assert.equal(
    pullFailureMessage("127.0.0.1:5058/flow-test/app:1", t.error!),
    "pull of 127.0.0.1:5058/flow-test/app:1 from 127.0.0.1:5058 failed: dial tcp 127.0.0.1:5058: connect: connection refused; " +
      "check the box's network / DNS / firewall to 127.0.0.1:5058",
  );
});

test("an engine that refuses before streaming (HTTP 500 and a message) fails with the registry and the hint", () => {
  const t = new PullTracker();
  for (const line of lines(fixture("pull-refused.out"))) t.feed(line);
  assert.equal(t.httpStatus, 500);
  assert.match(t.error!, /^Get "http:\/\/127\.0\.0\.1:5056\/v2\/": dial tcp 127\.0\.0\.1:5056: connect: connection refused$/);
  assert.match(
    pullFailureMessage("127.0.0.1:5056/flow-test/app:1", t.error!),
    /from 127\.0\.0\.1:5056 failed: .*; check the box's network \/ DNS \/ firewall to 127\.0\.0\.1:5056$/,
  );
});

test("failure kinds and their hints, from dockerd's own texts", () => {
  const dns = `Get "https://ghcr.io/v2/": dial tcp: lookup ghcr.io on 10.0.0.53:53: no such host`;
  assert.equal(classifyPullError(dns), "network");
  assert.match(pullFailureMessage("ghcr.io/a/b:1", dns), /from ghcr\.io failed: .*check the box's network \/ DNS \/ firewall to ghcr\.io$/);
  assert.equal(classifyPullError(`Get "https://registry-1.docker.io/v2/": net/http: TLS handshake timeout`), "network");
  assert.equal(
    classifyPullError('Get "https://ghcr.io/v2/": context deadline exceeded (Client.Timeout exceeded while awaiting headers)'),
    "network",
  );
  const denied = "pull access denied for nosuch/image, repository does not exist or may require 'docker login': denied: requested access";
  assert.equal(classifyPullError(denied), "auth");
  assert.match(pullFailureMessage("nosuch/image", denied), /from docker\.io failed: .*`docker login docker\.io` as root on the box/);
  assert.equal(classifyPullError("manifest for ghcr.io/a/b:nope not found: manifest unknown: manifest unknown"), "missing");
  assert.equal(classifyPullError("toomanyrequests: You have reached your pull rate limit."), "rate-limit");
  // curl's own failures: a stopped engine is named as such
  assert.match(
    pullExitMessage(69, "no docker socket at /var/run/docker.sock"),
    /cannot reach the Docker engine at \/var\/run\/docker\.sock \(is dockerd running\?\)/,
  );
  assert.match(pullExitMessage(7, "curl: (7) Couldn't connect to server"), /cannot reach the Docker engine/);
  assert.match(pullExitMessage(56, ""), /closed the pull's stream/);
});

test("pulledNote: size, time and rate", () => {
  assert.equal(pulledNote(12_000_000_000, 340), "pulled 12.0 GB in 340s (35.3 MB/s)");
  assert.equal(pulledNote(80_024_923, 2.3), "pulled 80.0 MB in 2.3s (34.8 MB/s)");
});

/** Just enough of a TaskContext to run ensureImage: exec answers from a script, events are recorded. */
function fakeCtx(script: (cmd: string, opts: ExecOptions) => Promise<Partial<ExecResult>>, dryRun = false) {
  const events: { type: string; [k: string]: unknown }[] = [];
  const ctx = {
    dryRun,
    async step(title: string, body: () => Promise<StepResult | StepStatus | void>) {
      try {
        const r = (await body()) as StepResult;
        events.push({ type: "step-end", title, ...r });
        return r.status;
      } catch (err) {
        events.push({ type: "step-end", title, status: "failed", note: (err as Error).message });
        throw err;
      }
    },
    ensure(spec: EnsureSpec) {
      return ctx.step(spec.title, async () => {
        const f = await spec.check();
        const ok = typeof f === "boolean" ? f : f.ok;
        const note = typeof f === "boolean" ? undefined : f.note;
        if (ok) return { status: "ok", note };
        if (dryRun) return { status: "changed", note: `would change: ${note}` };
        return { status: "changed", note: (await spec.apply()) || note };
      });
    },
    async exec(command: string, opts: ExecOptions = {}) {
      return { code: 0, stdout: "", stderr: "", ...(await script(command, opts)) };
    },
    progress: (message: string) => events.push({ type: "progress", message }),
    emit: (data: Record<string, unknown>) => events.push({ type: "data", data }),
  };
  return { ctx: ctx as unknown as TaskContext, events };
}

test("ensureImage: the stream in 7-byte chunks gives throttled progress and data events", async () => {
  const stream = Buffer.from([...lines(fixture("pull-stream.jsonl")), httpLine(200)].join("\n") + "\n");
  let now = 0;
  const { ctx, events } = fakeCtx(async (cmd, opts) => {
    if (cmd.startsWith("docker image inspect")) return { code: 1 };
    assert.ok(opts.sudo, "the docker socket is root's");
    assert.match(cmd, /images\/create\?fromImage=127\.0\.0\.1%3A5057%2Fflow-test%2Fapp&tag=1/);
    for (let i = 0; i < stream.length; i += 7) {
      now += 10; // 7 bytes every 10 ms
      opts.onStdout!(stream.subarray(i, i + 7));
    }
    return { code: 0 };
  });
  const status = await ensureImage(ctx, "127.0.0.1:5057/flow-test/app:1", { now: () => now });
  assert.equal(status, "changed");
  const end = events.find((e) => e.type === "step-end")!;
  assert.equal(end.title, "image 127.0.0.1:5057/flow-test/app:1");
  assert.match(String(end.note), /^pulled 80\.0 MB in \d+\.\ds \([\d.]+ [kM]B\/s\)$/);
  const progress = events.filter((e) => e.type === "progress").map((e) => String(e.message));
  assert.ok(
    progress.some((m) => /^pull app: [\d.]+ [kM]?B \/ [\d.]+ MB.* at [\d.]+ [kM]?B\/s, ETA /.test(m)),
    progress.join("\n"),
  );
  const pulls = events.filter((e) => e.type === "data" && (e.data as any).pull).map((e) => (e.data as any).pull);
  // at most one per 500 ms of the synthetic clock, plus the last
  assert.ok(pulls.length >= 5 && pulls.length <= Math.ceil(now / 500) + 2, String(pulls.length));
  assert.ok(pulls.some((p) => p.phase === "downloading" && p.bytesDone > 0 && p.bytesTotal > p.bytesDone && p.speed > 0 && p.eta !== null));
  assert.deepEqual(
    { ...pulls[pulls.length - 1], elapsed: 0 },
    {
      image: "127.0.0.1:5057/flow-test/app:1",
      registry: "127.0.0.1:5057",
      phase: "done",
      layers: 4,
      layersDone: 4,
      layersExisting: 1,
      bytesDone: 80024923,
      bytesTotal: 80024923,
      sizesKnown: true,
      speed: pulls[pulls.length - 1].speed,
      eta: 0,
      elapsed: 0,
    },
  );
  const images = events.filter((e) => e.type === "data" && (e.data as any).images).pop()!.data as any;
  assert.equal(images.images["127.0.0.1:5057/flow-test/app:1"].status, "pulled");
});

test("ensureImage: present is ok without a pull; a dry run pulls nothing; a failure names the registry", async () => {
  const present = fakeCtx(async (cmd) => (cmd.startsWith("docker image inspect") ? { code: 0 } : assert.fail(`ran ${cmd}`)));
  assert.equal(await ensureImage(present.ctx, "caddy:2"), "ok");
  assert.equal(present.events.find((e) => e.type === "step-end")!.note, "present");

  const dry = fakeCtx(async (cmd) => (cmd.startsWith("docker image inspect") ? { code: 1 } : assert.fail(`ran ${cmd}`)), true);
  assert.equal(await ensureImage(dry.ctx, "caddy:2"), "changed");
  assert.equal(dry.events.find((e) => e.type === "step-end")!.note, "would change: not present: pull from docker.io");

  const refused = fakeCtx(async (cmd, opts) => {
    if (cmd.startsWith("docker image inspect")) return { code: 1 };
    opts.onStdout!(Buffer.from(fixture("pull-refused.out").replace(/5056/g, "5099")));
    return { code: 0 };
  });
  await assert.rejects(
    ensureImage(refused.ctx, "127.0.0.1:5099/flow-test/app:1"),
    (err: Error) =>
      err.message.startsWith("pull of 127.0.0.1:5099/flow-test/app:1 from 127.0.0.1:5099 failed: ") &&
      err.message.endsWith("connection refused; check the box's network / DNS / firewall to 127.0.0.1:5099"),
  );

  const noEngine = fakeCtx(async (cmd) =>
    cmd.startsWith("docker image inspect") ? { code: 1 } : { code: 69, stderr: "no docker socket" },
  );
  await assert.rejects(ensureImage(noEngine.ctx, "caddy:2"), /cannot reach the Docker engine at \/var\/run\/docker\.sock/);

  const hostile = fakeCtx(async (cmd) => assert.fail(`ran ${cmd}`));
  await assert.rejects(ensureImage(hostile.ctx, "x'; reboot #"), ImageRefError);
});

test("ensureImage: a private image the API may not pull falls back to the docker CLI and root's docker login", async () => {
  const denied = `{"message":"Head \\"https://ghcr.io/v2/team/private/manifests/1\\": unauthorized"}\n${httpLine(500)}\n`;
  const ran: string[] = [];
  const script = (cliWorks: boolean) => async (cmd: string, opts: ExecOptions) => {
    ran.push(cmd);
    if (cmd.startsWith("docker image inspect")) return { code: 1 };
    if (cmd.startsWith("docker pull -q")) return { code: cliWorks ? 0 : 1 };
    opts.onStdout!(Buffer.from(denied));
    return { code: 0 };
  };
  const ok = fakeCtx(script(true));
  assert.equal(await ensureImage(ok.ctx, "ghcr.io/team/private:1"), "changed");
  assert.match(String(ok.events.find((e) => e.type === "step-end")!.note), /^pulled with the box's docker login/);
  assert.ok(ran.includes("docker pull -q ghcr.io/team/private:1 >/dev/null"));
  const no = fakeCtx(script(false));
  await assert.rejects(
    ensureImage(no.ctx, "ghcr.io/team/private:1"),
    /from ghcr\.io failed: .*unauthorized; a private image needs `docker login ghcr\.io`/,
  );
});

test("ensureImage: a stream that goes quiet is given up, naming the registry", async () => {
  const { ctx } = fakeCtx(async (cmd, opts) => {
    if (cmd.startsWith("docker image inspect")) return { code: 1 };
    opts.onStdout!(Buffer.from(`{"status":"Pulling from a/b","id":"1"}\n`));
    // like a transport: the command ends when the signal aborts it
    await new Promise((resolve) => opts.signal!.addEventListener("abort", resolve, { once: true }));
    return { code: null, signal: "SIGTERM" };
  });
  await assert.rejects(
    ensureImage(ctx, "registry.example:5000/a/b:1", { stallSeconds: 0.05 }),
    (err: Error) =>
      err.message.startsWith("pull of registry.example:5000/a/b:1 from registry.example:5000 stalled: the engine said nothing for 0.05s") &&
      err.message.endsWith("; check the box's network / DNS / firewall to registry.example:5000"),
  );
});

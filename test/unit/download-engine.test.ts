import { after, afterEach, before, beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
  writeSync,
  closeSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startFakeHub, seeded, sha256, type FakeHub } from "../support/fake-hub.ts";
import { downloadAll, verifiedPath, type DownloadEvent, type DownloadFile, type DownloadJob } from "../../tasks/lib/download/index.ts";
import { SLOT, StateFile, readState, statePath } from "../../tasks/lib/download/state.ts";
import { sniff } from "../../tasks/lib/download/sniff.ts";

const REPO = new URL("../../", import.meta.url).pathname;
const TOKEN = "hf_test_token_123";
const MiB = 1 << 20;
const big = seeded("flux-dev", 8 * MiB);
const small = seeded("lora", 3 * MiB + 1234);
const resumable = seeded("resumable", 16 * MiB);

/**
 * A .safetensors file as written: an 8-byte little-endian header length, then the JSON header.
 * A length of 0x227B makes the file's first two bytes `{"`, as a JSON error body's are.
 */
function safetensorsLike(): Buffer {
  const n = 0x227b;
  const header = Buffer.alloc(n, 0x20);
  header.write('{"__metadata__":{"format":"pt"},"w":{"dtype":"F16","shape":[2048],"data_offsets":[0,4096]}}');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(n));
  return Buffer.concat([len, header, seeded("tensor", 4096)]);
}
const stLike = safetensorsLike();
// error bodies some origins send with status 200 and no Content-Type
const BARE: Record<string, string | Buffer> = {
  "page.html": "\uFEFF\r\n  <!DOCTYPE html>\n<html><head><title>Oops</title></head><body>Not here</body></html>",
  "upper.html": "<HTML><HEAD><TITLE>502 Bad Gateway</TITLE></HEAD><BODY>nginx</BODY></HTML>",
  "body.html": '\n\n<body onload="go()">redirecting</body>',
  "error.json": '{"error":"Repository not found"}',
  "spaced.json": '  \n{ "message" : "Forbidden" }',
  "list.json": '[{"id":1,"name":"x"}]',
  "s3.xml":
    '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>',
  "s3bare.xml": "<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>",
  "model.safetensors": stLike,
  "config.json": '{"model_type":"flux","hidden_size":3072}',
};

let hub: FakeHub;
let root: string;

before(async () => {
  hub = await startFakeHub({
    token: TOKEN,
    cdnHost: "localhost", // the API is 127.0.0.1: the CDN is really another host
    hf: {
      "black-forest-labs/FLUX.1-dev": { gated: true, files: { "flux1-dev.safetensors": big, "ae.safetensors": resumable } },
      "comfy/open": { files: { "lora.safetensors": small } },
    },
    civitai: [
      { id: 101, files: [{ name: "style.safetensors", content: small }], needsToken: true },
      { id: 102, files: [{ name: "free.safetensors", content: small }] },
    ],
    files: { "plain.bin": small },
    bare: Object.fromEntries(Object.entries(BARE).map(([k, v]) => [k, Buffer.from(v)])),
  });
});
after(() => hub.close());
beforeEach(async () => {
  for (const k of Object.keys(hub.faults)) delete (hub.faults as Record<string, unknown>)[k];
  // responses a failed download left behind may still be pacing out their last slice: let them
  // end before counting bytes for the next test
  for (const until = Date.now() + 2000; hub.stats.active > 0 && Date.now() < until;) await new Promise((r) => setTimeout(r, 10));
  await new Promise((r) => setTimeout(r, 30));
  hub.resetStats();
  root = mkdtempSync(join(tmpdir(), "flow-dl-"));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

const auth = { authorization: `Bearer ${TOKEN}` };
const flux = (over: Partial<DownloadFile> = {}): DownloadFile => ({
  url: hub.hfUrl("black-forest-labs/FLUX.1-dev", "flux1-dev.safetensors"),
  target: join(root, "diffusion_models", "flux1-dev.safetensors"),
  size: big.length,
  sha256: sha256(big),
  headers: auth,
  ...over,
});

/** The fake hub's two ports (the API on 127.0.0.1, the CDN on localhost), as a flowfile lists them in settings.allowHosts. */
const hubHosts = () => [new URL(hub.url).host, new URL(hub.cdnUrl).host];

function job(files: DownloadFile[], over: Partial<DownloadJob> = {}): DownloadJob {
  return {
    modelsRoot: root,
    files,
    connections: 16,
    retryBaseMs: 20,
    retryMaxMs: 2000,
    timeoutMs: 5000,
    progressMs: 50,
    allowHosts: hubHosts(),
    ...over,
  };
}

async function run(j: DownloadJob, events: DownloadEvent[] = []) {
  return downloadAll(j, { onProgress: (e) => events.push(e) });
}

const leftovers = (dir: string): string[] =>
  readdirSync(dir, { recursive: true })
    .map(String)
    .filter((n) => n.endsWith(".part") || n.endsWith(".state") || n.endsWith(".tmp"));

// every test bounded: a hang fails that test, not the whole file
const T = { timeout: 30_000 };

describe("download engine", () => {
  test("fresh download over 16 connections: bytes, sha256, no sidecars left, progress", T, async () => {
    hub.faults.rate = 4 * MiB; // per connection: 16 of them make the file take ~0.15 s, enough for progress
    const events: DownloadEvent[] = [];
    const s = await run(job([flux()], { chunkSize: 256 * 1024 }), events);
    assert.deepEqual(s.failed, []);
    assert.equal(s.downloaded.length, 1);
    const target = flux().target;
    assert.equal(sha256(readFileSync(target)), sha256(big));
    assert.equal(hub.stats.bytes, big.length, "each byte fetched once");
    assert.ok(hub.stats.ranges.filter(Boolean).length >= 16, "ranged requests");
    assert.deepEqual(leftovers(root), []);
    assert.ok(existsSync(verifiedPath(target)), "verified hash remembered");
    const progress = events.filter((e) => e.type === "progress");
    assert.ok(progress.length >= 1, "progress reported");
    const last = progress.at(-1)!;
    assert.equal(last.type === "progress" && last.total, big.length);
    assert.ok(events.some((e) => e.type === "file" && e.status === "downloaded"));
  });

  test("a re-run skips what is present: 0 bytes, no request", T, async () => {
    const files = [flux(), { url: hub.url + "/files/plain.bin", target: join(root, "loras", "plain.bin"), size: small.length }];
    await run(job(files));
    hub.resetStats();
    const s = await run(job(files));
    assert.equal(s.skipped.length, 2);
    assert.equal(hub.stats.requests, 0);
    assert.equal(hub.stats.bytes, 0);
    assert.match(s.skipped[0]!.reason!, /verified earlier/);
  });

  test("a file present without the hash sidecar is hashed once, then trusted", T, async () => {
    const target = flux().target;
    mkdirSync(join(root, "diffusion_models"));
    writeFileSync(target, big);
    const s = await run(job([flux()]));
    assert.equal(s.skipped.length, 1);
    assert.match(s.skipped[0]!.reason!, /sha256 verified/);
    assert.equal(hub.stats.requests, 0);
  });

  test("SIGKILL of the running script at about half, then a re-run resumes (<= 1.05x bytes)", T, async () => {
    const size = resumable.length;
    const file: DownloadFile = {
      url: hub.hfUrl("black-forest-labs/FLUX.1-dev", "ae.safetensors"),
      target: join(root, "vae", "ae.safetensors"),
      size,
      sha256: sha256(resumable),
      headers: auth,
    };
    hub.faults.rate = 1.5 * MiB; // 4 connections: ~6 MiB/s, so "about half" is easy to hit
    const runDir = mkdtempSync(join(tmpdir(), "flow-dl-run-"));
    writeFileSync(join(runDir, "job.json"), JSON.stringify(job([file], { connections: 4 })));
    const child = spawn(process.execPath, ["--import", "tsx", join(REPO, "tasks/models-download.ts"), runDir], {
      cwd: REPO,
      stdio: "ignore",
    });
    const exited = new Promise((r) => child.once("exit", r));
    const deadline = Date.now() + 30_000;
    while (hub.stats.bytes < size / 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    child.kill("SIGKILL");
    await exited;
    const atKill = hub.stats.bytes;
    assert.ok(atKill >= size / 2 && atKill < size, `killed at ${atKill} of ${size}`);
    assert.ok(existsSync(file.target + ".part") && existsSync(file.target + ".part.state"), "partial state on disk");
    assert.ok(!existsSync(join(runDir, "job.json")), "the job (with its token) was deleted");
    rmSync(runDir, { recursive: true, force: true });
    const savedAtKill = readState(file.target)!.ranges.reduce((n, [a, b]) => n + b - a, 0);

    delete hub.faults.rate;
    const events: DownloadEvent[] = [];
    const s = await run(job([file], { connections: 4 }), events);
    assert.deepEqual(s.failed, []);
    assert.equal(sha256(readFileSync(file.target)), sha256(resumable));
    assert.ok(events.some((e) => e.type === "log" && /resuming/.test(e.message)));
    const ratio = hub.stats.bytes / size;
    assert.ok(ratio <= 1.05, `fetched ${ratio.toFixed(3)}x the file size (${atKill} before the kill, ${savedAtKill} of them saved)`);
    assert.deepEqual(leftovers(root), []);
  });

  test("a .part with corrupted bytes fails its sha256, is not placed, and is fetched again", T, async () => {
    const f = flux();
    mkdirSync(join(root, "diffusion_models"));
    const half = big.length / 2;
    const bad = Buffer.from(big.subarray(0, half));
    bad[1000] ^= 0xff;
    const fd = openSync(f.target + ".part", "w");
    writeSync(fd, bad, 0, half, 0);
    writeSync(fd, Buffer.alloc(1), 0, 1, big.length - 1);
    closeSync(fd);
    const state = new StateFile(f.target);
    state.save({ v: 1, url: f.url, size: big.length, sha256: f.sha256, ranges: [[0, half]] });
    state.close();
    const events: DownloadEvent[] = [];
    const s = await run(job([f]), events);
    assert.deepEqual(s.failed, []);
    assert.ok(
      events.some((e) => e.type === "log" && /sha256 mismatch/.test(e.message)),
      "mismatch reported",
    );
    assert.equal(sha256(readFileSync(f.target)), sha256(big));
    assert.equal(hub.stats.bytes, half + big.length, "the missing half, then all of it again");
  });

  test("a wrong sha256 is never placed", T, async () => {
    const f = flux({ sha256: "0".repeat(64) });
    const s = await run(job([f], { retries: 1 }));
    assert.equal(s.failed.length, 1);
    assert.match(s.failed[0]!.reason!, /sha256 mismatch/);
    assert.ok(!existsSync(f.target));
    assert.deepEqual(leftovers(root), []);
  });

  test("a wrong or missing token fails with the file and the reason, nothing saved", T, async () => {
    const wrong = flux({ headers: { authorization: "Bearer nope" } });
    const civitai: DownloadFile = {
      url: hub.civitaiDownloadUrl(101),
      target: join(root, "loras", "style.safetensors"),
      size: small.length,
    };
    const s = await run(job([wrong, civitai]));
    assert.equal(s.failed.length, 2);
    assert.match(
      s.failed[0]!.reason!,
      new RegExp(
        String.raw`^token missing or wrong for http:\/\/127\.0\.0\.1:\d+\/black-forest-labs\/FLUX\.1-dev\/res` +
          String.raw`olve\/main\/flux1-dev\.safetensors \(HTTP 401`,
      ),
    );
    assert.equal(s.failed[0]!.name, "flux1-dev.safetensors");
    assert.match(s.failed[1]!.reason!, /token missing or wrong for .*\/api\/download\/models\/101/);
    assert.ok(!existsSync(wrong.target) && !existsSync(civitai.target));
    assert.deepEqual(leftovers(root), []);
    assert.equal(hub.stats.bytes, 0);
  });

  test("an HTML page is refused, not saved", T, async () => {
    const f: DownloadFile = { url: hub.url + "/html/login", target: join(root, "checkpoints", "x.safetensors"), size: 5000 };
    const unknownSize: DownloadFile = { url: hub.url + "/html/login", target: join(root, "checkpoints", "y.safetensors") };
    const s = await run(job([f, unknownSize]));
    assert.equal(s.failed.length, 2);
    for (const r of s.failed) assert.match(r.reason!, /HTML page .*Sign in to continue/);
    assert.ok(!existsSync(f.target) && !existsSync(unknownSize.target));
    assert.deepEqual(leftovers(root), []);
  });

  test("Authorization goes to the API host, never across the redirect to the CDN host", T, async () => {
    const civitai: DownloadFile = { url: hub.civitaiDownloadUrl(101), target: join(root, "loras", "style.safetensors"), headers: auth };
    const s = await run(job([flux(), civitai]));
    assert.deepEqual(s.failed, []);
    assert.ok(hub.stats.cdnAuth.length >= 2);
    assert.deepEqual([...new Set(hub.stats.cdnAuth)], [undefined]);
    assert.equal(sha256(readFileSync(civitai.target)), sha256(small));
  });

  test("429 with Retry-After is honoured, then the download succeeds", T, async () => {
    hub.faults.fail = { count: 1, status: 429, retryAfter: 1 };
    const t0 = Date.now();
    const s = await run(job([flux()]));
    assert.deepEqual(s.failed, []);
    assert.ok(Date.now() - t0 >= 950, "waited for Retry-After");
    assert.equal(sha256(readFileSync(flux().target)), sha256(big));
  });

  test("5xx bursts are retried with backoff", T, async () => {
    hub.faults.fail = { count: 5, status: 503 };
    const s = await run(job([flux()]));
    assert.deepEqual(s.failed, []);
    assert.equal(hub.faults.fail.count, 0);
  });

  test("too many failures give up with the last reason", T, async () => {
    hub.faults.fail = { count: 1000, status: 502 };
    const s = await run(job([flux()], { connections: 2, retries: 2 }));
    assert.equal(s.failed.length, 1);
    assert.match(s.failed[0]!.reason!, /gave up after 2 retries: HTTP 502/);
  });

  test("a connection reset mid-stream is resumed from where it broke", T, async () => {
    hub.faults.reset = { count: 3, bytes: 200_000 };
    const s = await run(job([flux()], { connections: 4, chunkSize: MiB }));
    assert.deepEqual(s.failed, []);
    assert.equal(sha256(readFileSync(flux().target)), sha256(big));
    // the server counts what it wrote before each cut; the client may not have read all of it
    assert.ok(hub.stats.bytes <= big.length + 3 * 200_000, `fetched ${hub.stats.bytes}`);
  });

  test("ranges after the first go over kept-alive connections, one per worker", T, async () => {
    const f: DownloadFile = {
      ...flux(),
      url: hub.hfUrl("black-forest-labs/FLUX.1-dev", "ae.safetensors"),
      target: join(root, "vae", "ae.safetensors"),
      size: resumable.length,
      sha256: sha256(resumable),
    };
    const s = await run(job([f], { connections: 4, chunkSize: 512 * 1024 }));
    assert.deepEqual(s.failed, []);
    assert.equal(sha256(readFileSync(f.target)), sha256(resumable));
    assert.ok(hub.stats.requests >= 32, `${hub.stats.requests} range requests`);
    // the resolve and the first range (undici), then 4 range connections
    assert.ok(hub.stats.connections <= 6, `${hub.stats.connections} TCP connections for ${hub.stats.requests} requests`);
  });

  test("errors met mid-file on the range connections: 503 retried, expired signed links resolved again", T, async () => {
    hub.faults.rate = 8 * MiB; // 4 connections: ~0.5 s for the file, time to inject faults mid-way
    const f: DownloadFile = {
      ...flux(),
      url: hub.hfUrl("black-forest-labs/FLUX.1-dev", "ae.safetensors"),
      target: join(root, "vae", "ae.safetensors"),
      size: resumable.length,
      sha256: sha256(resumable),
    };
    const events: DownloadEvent[] = [];
    let injected = 0;
    const s = await downloadAll(job([f], { connections: 4, chunkSize: MiB, retryBaseMs: 10 }), {
      onProgress: (e) => {
        events.push(e);
        if (e.type !== "progress") return;
        if (injected === 0 && e.done > resumable.length / 4) {
          injected = 1;
          hub.faults.fail = { count: 3, status: 503 };
        } else if (injected === 1 && e.done > resumable.length / 2) {
          injected = 2;
          hub.faults.revokeLinks = Date.now() + 3_600_000; // every link handed out so far now answers 403
        }
      },
    });
    assert.equal(injected, 2, "both faults were injected mid-download");
    assert.deepEqual(s.failed, []);
    assert.equal(sha256(readFileSync(f.target)), sha256(resumable));
    assert.ok(
      events.some((e) => e.type === "log" && /HTTP 503/.test(e.message)),
      "503 reported and retried",
    );
    assert.ok(hub.stats.resolves >= 2, `resolved ${hub.stats.resolves} times`);
    assert.ok(hub.stats.bytes <= resumable.length * 1.1, `fetched ${hub.stats.bytes}`);
  });

  test("when the fresh link is refused too, the file fails with the 403", T, async () => {
    hub.faults.rate = 8 * MiB;
    let revoked = false;
    const s = await downloadAll(job([flux()], { connections: 4, chunkSize: MiB }), {
      onProgress: (e) => {
        if (!revoked && e.type === "progress" && e.done > 0) {
          revoked = true;
          hub.faults.revokeLinks = Number.MAX_SAFE_INTEGER; // the CDN refuses every link, old and new
        }
      },
    });
    assert.ok(revoked);
    assert.equal(s.failed.length, 1);
    assert.match(s.failed[0]!.reason!, /access denied .*HTTP 403/);
    assert.ok(hub.stats.resolves >= 2, "resolved again before giving up");
  });

  test("a server that ignores Range gets one connection", T, async () => {
    hub.faults.noRange = true;
    const f: DownloadFile = { url: hub.url + "/files/plain.bin", target: join(root, "loras", "plain.bin"), sha256: sha256(small) };
    const events: DownloadEvent[] = [];
    const s = await run(job([f]), events);
    assert.deepEqual(s.failed, []);
    assert.equal(sha256(readFileSync(f.target)), sha256(small));
    assert.ok(events.some((e) => e.type === "log" && /does not support Range/.test(e.message)));
    assert.ok(
      hub.stats.bytes <= 2 * small.length,
      `fetched ${hub.stats.bytes} in ${hub.stats.requests} requests: ${hub.stats.ranges.join(" ")}`,
    );
  });

  test("size unknown: learnt from the server (CivitAI without a size)", T, async () => {
    const f: DownloadFile = { url: hub.civitaiDownloadUrl(102), target: join(root, "loras", "free.safetensors") };
    const s = await run(job([f]));
    assert.deepEqual(s.failed, []);
    assert.equal(s.downloaded[0]!.size, small.length);
    assert.equal(sha256(readFileSync(f.target)), sha256(small));
  });

  test("a size that differs from the server's fails, nothing placed", T, async () => {
    const s = await run(job([flux({ size: big.length + 1, sha256: undefined })]));
    assert.match(s.failed[0]!.reason!, /size mismatch/);
    assert.deepEqual(leftovers(root), []);
  });

  test("404 names the file", T, async () => {
    const f = flux({ url: hub.hfUrl("comfy/open", "missing.safetensors") });
    const s = await run(job([f]));
    assert.match(s.failed[0]!.reason!, /^not found: .*missing\.safetensors \(HTTP 404/);
  });

  test("targets outside modelsRoot are refused before any request", T, async () => {
    const outside = mkdtempSync(join(tmpdir(), "flow-dl-outside-"));
    symlinkSync(outside, join(root, "escape"));
    const files = [
      flux({ target: join(root, "..", "evil.safetensors") }),
      flux({ target: "/etc/evil.safetensors" }),
      flux({ target: "relative/evil.safetensors" }),
      flux({ target: join(root, "escape", "evil.safetensors") }),
    ];
    const s = await run(job(files));
    assert.equal(s.failed.length, 4);
    for (const r of s.failed) assert.match(r.reason!, /outside the models root|refused/);
    assert.equal(hub.stats.requests, 0);
    assert.deepEqual(readdirSync(outside), []);
    rmSync(outside, { recursive: true });
  });

  test("planted symlinks at .part, .part.state and .sha256(.tmp) are replaced, never written through", T, async () => {
    const outside = mkdtempSync(join(tmpdir(), "flow-dl-outside-"));
    const target = flux().target;
    mkdirSync(join(root, "diffusion_models"));
    const planted = [`${target}.part`, `${target}.part.state`, `${verifiedPath(target)}`, `${verifiedPath(target)}.tmp`];
    const victims = planted.map((p, i) => {
      const v = join(outside, `bashrc-${i}`);
      writeFileSync(v, `# precious ${i}\n`);
      symlinkSync(v, p);
      return v;
    });
    const s = await run(job([flux()]));
    assert.deepEqual(s.failed, []);
    assert.equal(sha256(readFileSync(target)), sha256(big));
    victims.forEach((v, i) => assert.equal(readFileSync(v, "utf8"), `# precious ${i}\n`, `${planted[i]} was written through`));
    assert.deepEqual(
      readdirSync(outside).sort(),
      victims.map((_, i) => `bashrc-${i}`),
    );
    assert.deepEqual(leftovers(root), []);
    rmSync(outside, { recursive: true });
  });

  test("several files at once, each reported", T, async () => {
    const files: DownloadFile[] = [
      flux(),
      {
        url: hub.hfUrl("comfy/open", "lora.safetensors"),
        target: join(root, "loras", "a.safetensors"),
        size: small.length,
        sha256: sha256(small),
      },
      { url: hub.url + "/files/plain.bin", target: join(root, "loras", "b.safetensors"), size: small.length },
    ];
    const events: DownloadEvent[] = [];
    const s = await run(job(files, { parallelFiles: 3, connections: 4 }), events);
    assert.equal(s.downloaded.length, 3);
    assert.equal(s.fetched, big.length + 2 * small.length);
    const done = events.filter((e) => e.type === "file" && e.status === "downloaded").map((e) => (e as { name: string }).name);
    assert.deepEqual(done.sort(), ["a.safetensors", "b.safetensors", "flux1-dev.safetensors"]);
  });

  test("hosts not in allowHosts: loopback by IP literal (any notation) or by name is refused before any request", T, async () => {
    const port = new URL(hub.url).port;
    const urls = [
      `${hub.url}/files/plain.bin`,
      `https://127.0.0.1:${port}/files/plain.bin`,
      `https://2130706433:${port}/files/plain.bin`,
      `https://0x7f000001:${port}/files/plain.bin`,
      `https://[::ffff:127.0.0.1]:${port}/files/plain.bin`,
      `https://169.254.169.254/latest/meta-data/iam/security-credentials/`,
      `https://localhost:${port}/files/plain.bin`, // a name: refused once it resolves to loopback
    ];
    const files = urls.map((url, i): DownloadFile => ({ url, target: join(root, "loras", `m${i}.safetensors`) }));
    const s = await run(job(files, { allowHosts: undefined }));
    assert.equal(s.failed.length, urls.length, JSON.stringify(s.downloaded.concat(s.skipped)));
    for (const r of s.failed) assert.match(r.reason!, /refused .*(loopback|link-local|plain http)/);
    assert.match(s.failed[0]!.reason!, /^refused http:\/\/127\.0\.0\.1:\d+\/files\/plain\.bin: 127\.0\.0\.1 is a loopback address/);
    assert.match(s.failed.at(-1)!.reason!, /localhost resolves to (127\.0\.0\.1|::1), a loopback address/);
    assert.deepEqual(hub.stats.seen, [], "a request reached the server");
    assert.equal(hub.stats.connections, 0, "a connection reached the server");
    assert.deepEqual(leftovers(root), []);
  });

  test(
    "redirects: to plain http, to a private address, to a loopback alias or port not in allowHosts are refused; allowed ones go",
    T,
    async () => {
      const mainPort = new URL(hub.url).port;
      const cdnPort = new URL(hub.cdnUrl).port;
      const go = (to: string) => `${hub.url}/go?to=${encodeURIComponent(to)}`;
      const refused = [
        go("http://models.example.com/a.safetensors"), // plain http to a public name
        go("https://169.254.169.254/latest/meta-data/"), // the cloud's metadata service
        go("https://[fd00::1]/x"), // unique local IPv6
        go(`https://100.64.0.1/x`), // CGNAT
        go(`http://localhost:${mainPort}/files/plain.bin`), // another name for an allowed address: not allowed
        go(`https://localhost:${mainPort}/files/plain.bin`), // same, over https: refused once resolved
        go(`http://127.0.0.1:${cdnPort}/files/plain.bin`), // an allowed address on a port not allowed
      ];
      const files = refused.map((url, i): DownloadFile => ({ url, target: join(root, "loras", `r${i}.safetensors`), headers: auth }));
      const ok: DownloadFile = { url: go(`${hub.url}/files/plain.bin`), target: join(root, "loras", "ok.safetensors") };
      const s = await run(job([...files, ok], { parallelFiles: 1 }));
      assert.equal(s.failed.length, refused.length);
      for (const r of s.failed) assert.match(r.reason!, /refused redirect .* to /, r.reason);
      assert.match(s.failed[0]!.reason!, /plain http/);
      assert.match(s.failed[1]!.reason!, /169\.254\.169\.254 is a link-local address/);
      assert.match(s.failed[5]!.reason!, /localhost resolves to .*loopback/);
      assert.deepEqual(
        s.downloaded.map((d) => d.name),
        ["ok.safetensors"],
      );
      assert.equal(sha256(readFileSync(ok.target)), sha256(small));
      // the server saw the redirects and the one allowed file, nothing the refused redirects named
      assert.deepEqual([...new Set(hub.stats.seen)].sort(), ["GET /files/plain.bin", "GET /go"]);
      assert.equal(hub.stats.seen.filter((x) => x === "GET /go").length, refused.length + 1);
    },
  );

  test("a body that is an HTML page, JSON or XML (no Content-Type, no size, no sha256) is never placed as a model", T, async () => {
    const bad: [string, string, RegExp][] = [
      ["page.html", "checkpoints/a.safetensors", /server sent an HTML page, not a model/],
      ["upper.html", "diffusion_models/b.gguf", /server sent an HTML page, not a model/],
      ["body.html", "loras/c.pt", /server sent an HTML page, not a model/],
      ["error.json", "vae/d.ckpt", /server sent a JSON document, not a model/],
      ["spaced.json", "loras/e.safetensors", /server sent a JSON document, not a model/],
      ["list.json", "upscale_models/f.pth", /server sent a JSON document, not a model/],
      ["s3.xml", "clip_vision/g.bin", /server sent an XML document, not a model/],
      ["s3bare.xml", "text_encoders/h.sft", /server sent an XML document, not a model/],
    ];
    const files = bad.map(([body, target]): DownloadFile => ({ url: `${hub.url}/bare/${body}`, target: join(root, target) }));
    const s = await run(job(files, { parallelFiles: 4 }));
    assert.equal(s.failed.length, bad.length, JSON.stringify(s.downloaded.map((d) => d.name)));
    for (const [body, target, why] of bad) {
      const r = s.failed.find((f) => f.target === join(root, target))!;
      assert.match(r.reason!, why, body);
      assert.match(r.reason!, new RegExp(`/bare/${body.replace(".", "\\.")}`), "names the URL");
      assert.ok(!existsSync(join(root, target)), `${target} was placed`);
    }
    assert.deepEqual(leftovers(root), []);
  });

  test('a safetensors file whose header length begins with `{"`, and a .json a workflow needs, are placed', T, async () => {
    const st: DownloadFile = { url: `${hub.url}/bare/model.safetensors`, target: join(root, "loras", "st.safetensors") };
    const cfg: DownloadFile = { url: `${hub.url}/bare/config.json`, target: join(root, "configs", "config.json") };
    assert.equal(stLike.subarray(0, 2).toString(), '{"');
    const s = await run(job([st, cfg]));
    assert.deepEqual(s.failed, []);
    assert.equal(sha256(readFileSync(st.target)), sha256(stLike));
    assert.equal(readFileSync(cfg.target, "utf8"), BARE["config.json"]);
  });

  test("two entries for one target: one writer; a different source for it fails, the same one is skipped", T, async () => {
    const a: DownloadFile = {
      url: hub.hfUrl("comfy/open", "lora.safetensors"),
      target: join(root, "loras", "x.safetensors"),
      sha256: sha256(small),
    };
    const other: DownloadFile = { url: `${hub.url}/files/plain.bin`, target: join(root, "loras", "..", "loras", "x.safetensors") };
    const again: DownloadFile = { ...a, name: "again" };
    const s = await run(job([a, other, again], { parallelFiles: 3, connections: 4 }));
    assert.deepEqual(
      s.downloaded.map((d) => d.url),
      [new URL(a.url).origin + new URL(a.url).pathname],
    );
    assert.equal(s.failed.length, 1);
    assert.match(s.failed[0]!.reason!, /listed twice in the job.*another source/);
    assert.deepEqual(
      s.skipped.map((d) => d.name),
      ["again"],
    );
    assert.equal(sha256(readFileSync(a.target)), sha256(small));
  });

  test("state files are 0600 and hold no credential from the URL; events and reasons show none either", T, async () => {
    const SECRET = "civ_secret_0123456789";
    hub.faults.rate = 2 * MiB;
    const f: DownloadFile = {
      url: `${hub.url}/files/plain.bin?token=${SECRET}&type=Model`,
      target: join(root, "loras", "tok.safetensors"),
      size: small.length,
    };
    const refusedUrl = `https://169.254.169.254/latest/?X-Amz-Signature=${SECRET}`;
    const r: DownloadFile = { url: `${hub.url}/go?to=${encodeURIComponent(refusedUrl)}`, target: join(root, "loras", "r.safetensors") };
    const events: DownloadEvent[] = [];
    // stopped part-way (as a kill would): the .part and its state stay for a resume
    const stop = new AbortController();
    const s = await downloadAll(job([r, f], { connections: 2, chunkSize: 256 * 1024, parallelFiles: 1 }), {
      signal: stop.signal,
      onProgress: (e) => {
        events.push(e);
        if (e.type === "progress" && e.files.some((x) => x.name === "tok.safetensors" && x.done >= MiB)) stop.abort();
      },
    });
    hub.faults.rate = undefined;
    assert.equal(s.failed.length, 2);
    assert.ok(existsSync(statePath(f.target)), "the state was kept for a resume");
    assert.equal(statSync(statePath(f.target)).mode & 0o777, 0o600);
    assert.ok(!readFileSync(statePath(f.target)).includes(SECRET), "the token is in the state file");
    const text = JSON.stringify(events) + JSON.stringify(s);
    assert.ok(!text.includes(SECRET), "the token is in an event or the summary");
    assert.match(s.failed.find((x) => x.target === r.target)!.reason!, /169\.254\.169\.254\/latest\/\?X-Amz-Signature=\*\*\*/);
    // the resume still matches the state written without the token
    hub.faults.reset = undefined;
    const again: DownloadEvent[] = [];
    const s2 = await run(job([f], { connections: 1 }), again);
    assert.deepEqual(s2.failed, []);
    assert.ok(
      again.some((e) => e.type === "log" && /resuming/.test(e.message)),
      "resumed from the state",
    );
    assert.equal(sha256(readFileSync(f.target)), sha256(small));
  });

  test("the run's files (events, result, log) and the verified-hash sidecar are 0600", T, async () => {
    const runDir = mkdtempSync(join(tmpdir(), "flow-dl-run-"));
    // as the launcher and a follower leave them under a 022 umask
    for (const n of ["log", "events.jsonl"]) {
      writeFileSync(join(runDir, n), "");
      chmodSync(join(runDir, n), 0o644);
    }
    writeFileSync(join(runDir, "job.json"), JSON.stringify(job([flux()])), { mode: 0o600 });
    const child = spawn(process.execPath, ["--import", "tsx", join(REPO, "tasks/models-download.ts"), runDir], {
      cwd: REPO,
      stdio: "ignore",
    });
    assert.equal(await new Promise((r) => child.once("exit", r)), 0);
    for (const n of ["log", "events.jsonl", "result.json"]) assert.equal(statSync(join(runDir, n)).mode & 0o777, 0o600, n);
    assert.equal(statSync(verifiedPath(flux().target)).mode & 0o777, 0o600, "sidecar");
    assert.equal(statSync(flux().target).mode & 0o044, 0o044, "the model itself stays readable");
    rmSync(runDir, { recursive: true, force: true });
  });
});

describe("download state file", () => {
  const dir = () => mkdtempSync(join(tmpdir(), "flow-dl-state-"));
  const st = (ranges: [number, number][]) => ({ v: 1 as const, url: "http://h/f", size: 1 << 30, ranges });

  test("the newest save wins; a torn newest slot falls back to the one before", () => {
    const d = dir();
    const target = join(d, "m.bin");
    const f = new StateFile(target);
    f.save(st([[0, 100]]));
    f.save(st([[0, 200]]));
    f.close();
    assert.deepEqual(readState(target)?.ranges, [[0, 200]]);
    // a kill in the middle of the next save: its slot holds half a record
    const g = new StateFile(target);
    g.save(st([[0, 300]]));
    g.close();
    assert.deepEqual(readState(target)?.ranges, [[0, 300]], "a new run's saves outrank the old run's");
    const fd = openSync(statePath(target), "r+");
    const text = readFileSync(statePath(target));
    // find the slot holding 300 and tear it
    const slot = text.subarray(0, SLOT).includes("300") ? 0 : 1;
    writeSync(fd, Buffer.from('{"seq":99999999,"sum":"x","state":{"v":1,"ur'), 0, 40, slot * SLOT);
    closeSync(fd);
    assert.deepEqual(readState(target)?.ranges, [[0, 200]]);
    // a slot whose checksum does not match its state is not believed either
    const fd2 = openSync(statePath(target), "r+");
    const other = readFileSync(statePath(target)).subarray((1 - slot) * SLOT, (1 - slot) * SLOT + SLOT);
    const forged = Buffer.from(other.subarray(0, other.indexOf(10)).toString().replace("[[0,200]]", "[[0,900]]"));
    writeSync(fd2, forged, 0, forged.length, (1 - slot) * SLOT);
    closeSync(fd2);
    assert.equal(readState(target), undefined);
    rmSync(d, { recursive: true });
  });

  test("a state too fragmented for its slot keeps its largest ranges", () => {
    const d = dir();
    const target = join(d, "m.bin");
    const ranges: [number, number][] = Array.from({ length: 8000 }, (_, i) => [i * 1000, i * 1000 + 1 + (i % 7)]);
    ranges.push([9_000_000, 9_500_000]);
    const f = new StateFile(target);
    f.save(st(ranges));
    f.close();
    const got = readState(target)!;
    assert.ok(got.ranges.length > 0 && got.ranges.length < ranges.length, `${got.ranges.length} ranges kept`);
    assert.deepEqual(got.ranges.at(-1), [9_000_000, 9_500_000], "the largest range is kept");
    for (const r of got.ranges)
      assert.ok(
        ranges.some(([a, b]) => a === r[0] && b === r[1]),
        "only ranges that were written",
      );
    rmSync(d, { recursive: true });
  });
});

describe("sniffing the first bytes", () => {
  test("markup and JSON text are never a weight file; binary heads, safetensors headers and non-weight files pass", () => {
    const t = (text: string | Buffer, target = "m.safetensors", size?: number) => sniff(Buffer.from(text), target, size);
    for (const html of [
      "<!doctype html><html>",
      "\uFEFF<!DOCTYPE HTML PUBLIC>",
      " \r\n\t<html lang=en>",
      "<HEAD><TITLE>x",
      "<body>",
      "<!-- cdn error -->",
      "<title>Just a moment...</title>",
    ]) {
      assert.match(t(html) ?? "", /^server sent an HTML page, not a model/, html);
    }
    for (const xml of ['<?xml version="1.0"?><Error>', "<Error><Code>AccessDenied</Code>", "<ListBucketResult xmlns=", "<!DOCTYPE foo>"]) {
      assert.match(t(xml, "m.ckpt") ?? "", /^server sent an XML document, not a model/, xml);
    }
    for (const json of ['{"error":"x"}', "{ }", '[{"a":1}]', " [1,2]", '["x"]', "[]", "[true]", '\n{\n  "detail": "Not Found"\n}']) {
      assert.match(t(json, "m.gguf") ?? "", /^server sent a JSON document, not a model/, json);
    }
    // what weights really begin with: a pickle, a zip (torch.save), GGUF, ONNX protobuf, random bytes
    for (const head of [
      Buffer.from([0x80, 0x02, 0x7d, 0x71]),
      Buffer.from("PK\x03\x04"),
      Buffer.from("GGUF\x03\x00"),
      Buffer.from([0x08, 0x07, 0x12, 0x07]),
      seeded("w", 512),
    ]) {
      assert.equal(sniff(head, "m.safetensors"), undefined, head.subarray(0, 8).toString("hex"));
    }
    assert.equal(
      sniff(stLike.subarray(0, 512), "m.safetensors", stLike.length),
      undefined,
      'a safetensors header that starts with {" is a safetensors header',
    );
    assert.equal(sniff(stLike.subarray(0, 512), "m.safetensors"), undefined, "with the size unknown too");
    assert.match(
      sniff(stLike.subarray(0, 512), "m.safetensors", 100) ?? "",
      /JSON/,
      "a header length beyond the file is no safetensors header",
    );
    for (const target of ["config.json", "m.yaml", "notes.txt", "model.JSON", "x"]) assert.equal(t('{"a":1}', target), undefined, target);
    assert.match(t("<html>", "M.SafeTensors") ?? "", /HTML/, "extensions in any case");
    assert.match(t("<html><head><title>Oops</title>") ?? "", /it begins "<html><head><title>Oops<\/title>"/, "names what came");
  });
});

import { after, afterEach, before, beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync, writeSync, closeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startFakeHub, seeded, sha256, type FakeHub } from "../support/fake-hub.ts";
import { downloadAll, verifiedPath, type DownloadEvent, type DownloadFile, type DownloadJob } from "../../tasks/lib/download/index.ts";
import { SLOT, StateFile, readState, statePath } from "../../tasks/lib/download/state.ts";

const REPO = new URL("../../", import.meta.url).pathname;
const TOKEN = "hf_test_token_123";
const MiB = 1 << 20;
const big = seeded("flux-dev", 8 * MiB);
const small = seeded("lora", 3 * MiB + 1234);
const resumable = seeded("resumable", 16 * MiB);

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
  });
});
after(() => hub.close());
beforeEach(async () => {
  for (const k of Object.keys(hub.faults)) delete (hub.faults as Record<string, unknown>)[k];
  // responses a failed download left behind may still be pacing out their last slice: let them
  // end before counting bytes for the next test
  for (const until = Date.now() + 2000; hub.stats.active > 0 && Date.now() < until; ) await new Promise((r) => setTimeout(r, 10));
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

function job(files: DownloadFile[], over: Partial<DownloadJob> = {}): DownloadJob {
  return { modelsRoot: root, files, connections: 16, retryBaseMs: 20, retryMaxMs: 2000, timeoutMs: 5000, progressMs: 50, ...over };
}

async function run(j: DownloadJob, events: DownloadEvent[] = []) {
  return downloadAll(j, { onProgress: (e) => events.push(e) });
}

const leftovers = (dir: string): string[] =>
  readdirSync(dir, { recursive: true }).map(String).filter((n) => n.endsWith(".part") || n.endsWith(".state") || n.endsWith(".tmp"));

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
    const child = spawn(process.execPath, ["--import", "tsx", join(REPO, "tasks/models-download.ts"), runDir], { cwd: REPO, stdio: "ignore" });
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
    assert.ok(events.some((e) => e.type === "log" && /sha256 mismatch/.test(e.message)), "mismatch reported");
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
    const civitai: DownloadFile = { url: hub.civitaiDownloadUrl(101), target: join(root, "loras", "style.safetensors"), size: small.length };
    const s = await run(job([wrong, civitai]));
    assert.equal(s.failed.length, 2);
    assert.match(s.failed[0]!.reason!, /^token missing or wrong for http:\/\/127\.0\.0\.1:\d+\/black-forest-labs\/FLUX\.1-dev\/resolve\/main\/flux1-dev\.safetensors \(HTTP 401/);
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
    const f: DownloadFile = { ...flux(), url: hub.hfUrl("black-forest-labs/FLUX.1-dev", "ae.safetensors"), target: join(root, "vae", "ae.safetensors"), size: resumable.length, sha256: sha256(resumable) };
    const s = await run(job([f], { connections: 4, chunkSize: 512 * 1024 }));
    assert.deepEqual(s.failed, []);
    assert.equal(sha256(readFileSync(f.target)), sha256(resumable));
    assert.ok(hub.stats.requests >= 32, `${hub.stats.requests} range requests`);
    // the resolve and the first range (undici), then 4 range connections
    assert.ok(hub.stats.connections <= 6, `${hub.stats.connections} TCP connections for ${hub.stats.requests} requests`);
  });

  test("errors met mid-file on the range connections: 503 retried, expired signed links resolved again", T, async () => {
    hub.faults.rate = 8 * MiB; // 4 connections: ~0.5 s for the file, time to inject faults mid-way
    const f: DownloadFile = { ...flux(), url: hub.hfUrl("black-forest-labs/FLUX.1-dev", "ae.safetensors"), target: join(root, "vae", "ae.safetensors"), size: resumable.length, sha256: sha256(resumable) };
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
    assert.ok(events.some((e) => e.type === "log" && /HTTP 503/.test(e.message)), "503 reported and retried");
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
    assert.ok(hub.stats.bytes <= 2 * small.length, `fetched ${hub.stats.bytes} in ${hub.stats.requests} requests: ${hub.stats.ranges.join(" ")}`);
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
    assert.deepEqual(readdirSync(outside).sort(), victims.map((_, i) => `bashrc-${i}`));
    assert.deepEqual(leftovers(root), []);
    rmSync(outside, { recursive: true });
  });

  test("several files at once, each reported", T, async () => {
    const files: DownloadFile[] = [
      flux(),
      { url: hub.hfUrl("comfy/open", "lora.safetensors"), target: join(root, "loras", "a.safetensors"), size: small.length, sha256: sha256(small) },
      { url: hub.url + "/files/plain.bin", target: join(root, "loras", "b.safetensors"), size: small.length },
    ];
    const events: DownloadEvent[] = [];
    const s = await run(job(files, { parallelFiles: 3, connections: 4 }), events);
    assert.equal(s.downloaded.length, 3);
    assert.equal(s.fetched, big.length + 2 * small.length);
    const done = events.filter((e) => e.type === "file" && e.status === "downloaded").map((e) => (e as { name: string }).name);
    assert.deepEqual(done.sort(), ["a.safetensors", "b.safetensors", "flux1-dev.safetensors"]);
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
    for (const r of got.ranges) assert.ok(ranges.some(([a, b]) => a === r[0] && b === r[1]), "only ranges that were written");
    rmSync(d, { recursive: true });
  });
});

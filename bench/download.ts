// npm run bench:download — flow's download engine against curl and aria2c -x16 -s16 on one local
// server that caps each connection at 40 MB/s (as a CDN does), with a 1 GiB random file.
// Not a test: it prints a table (and writes bench/out/download.json) for bench/README.md.
// Runs: interleaved rounds (flow, flow without sha256, aria2c, curl), median of each; sha256 of
// the output checked after every run; SIGKILL at ~50% then resume, for flow and aria2c.
import { fork, spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import {
  closeSync,
  fsyncSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readSync,
  rmSync,
  write,
  writeFileSync,
  writeSync,
} from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { readState } from "../tasks/lib/download/state.ts";

const REPO = fileURLToPath(new URL("..", import.meta.url));
const SIZE = Number(process.env.BENCH_SIZE ?? 1024 ** 3);
const RATE = 40e6; // bytes per second per connection
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
// curl runs at the cap of one connection (27 s a run): its figure does not move, 3 runs tell it
const CURL_ROUNDS = Math.min(ROUNDS, Number(process.env.BENCH_CURL_ROUNDS ?? 3));
const CONNECTIONS = 16;
// BENCH_ONLY=resume (or capped,uncapped,...) runs some phases only, when working on one of them
const PHASES = new Set((process.env.BENCH_ONLY ?? "disk,uncapped,capped,resume").split(","));
// BENCH_BASELINE=<another checkout>: its tasks/models-download.ts runs too, as "baseline", in the
// same rounds right beside this tree's (A/B under the same load: the machine may be shared)
const BASELINE = process.env.BENCH_BASELINE;

const dir = mkdtempSync(join(tmpdir(), "flow-bench-dl-"));
const log = (...a: unknown[]) => console.error("[bench]", ...a);
const load1 = () => loadavg()[0]!.toFixed(2);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

function hashOfFile(path: string): string {
  const h = createHash("sha256");
  const fd = openSync(path, "r");
  const buf = Buffer.allocUnsafe(8 << 20);
  try {
    for (let pos = 0; ;) {
      const n = readSync(fd, buf, 0, buf.length, pos);
      if (!n) break;
      h.update(buf.subarray(0, n));
      pos += n;
    }
  } finally {
    closeSync(fd);
  }
  return h.digest("hex");
}

/** Wall time of a child process, from spawn to exit. */
function timed(cmd: string, args: string[], onStart?: (c: ChildProcess) => void): Promise<{ seconds: number; code: number | null }> {
  const t0 = performance.now();
  const c = spawn(cmd, args, { stdio: ["ignore", "ignore", "pipe"] });
  let err = "";
  c.stderr!.on("data", (d) => (err += d));
  onStart?.(c);
  return new Promise((ok) =>
    c.once("exit", (code, signal) => {
      if (code && !signal) log(`${cmd} exited ${code}: ${err.slice(-500)}`);
      ok({ seconds: (performance.now() - t0) / 1000, code });
    }),
  );
}

interface Server {
  url: string;
  /** One request, its reply (messages are answered in order; killAt's when it has killed). */
  ask(m: Record<string, unknown>): Promise<{ ok?: boolean; bytes?: number }>;
  close(): Promise<void>;
  kill(): void;
}

let server: Server | undefined;

async function startServer(file: string): Promise<Server> {
  const child = fork(fileURLToPath(new URL("./download-server.ts", import.meta.url)), [file], {
    execArgv: process.execArgv,
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const waiting: ((m: { ok?: boolean; bytes?: number }) => void)[] = [];
  const ready = new Promise<string>((resolve, reject) => {
    child.once("exit", (code) => reject(new Error(`the bench server exited (${code})`)));
    child.on("message", (m: { url?: string; ok?: boolean; bytes?: number }) => {
      if (m.url) resolve(m.url);
      else waiting.shift()?.(m);
    });
  });
  const url = await ready;
  return {
    url,
    ask: (m) => new Promise((r) => (waiting.push(r), child.send(m))),
    close: () => new Promise<void>((r) => (child.once("exit", () => r()), child.send({ cmd: "close" }))),
    kill: () => void child.kill(),
  };
}

async function main() {
  for (const tool of ["curl", "aria2c"]) {
    if (spawnSync(tool, ["--version"]).status !== 0) {
      throw new Error(`${tool} is not installed (Debian package ${tool === "aria2c" ? "aria2" : "curl"})`);
    }
  }
  log(
    `load before: ${loadavg()
      .map((x) => x.toFixed(2))
      .join(" ")}; temp dir ${dir}`,
  );

  // the file: random bytes written to disk, then served from memory (the server must stay cheap)
  log(`generating ${SIZE} random bytes`);
  const src = join(dir, "model.bin");
  const fd = openSync(src, "w");
  const h = createHash("sha256");
  for (let pos = 0; pos < SIZE;) {
    const b = randomBytes(Math.min(64 << 20, SIZE - pos));
    h.update(b);
    writeSync(fd, b, 0, b.length, pos);
    pos += b.length;
  }
  fsyncSync(fd);
  closeSync(fd);
  const sha = h.digest("hex");
  // the server in a process of its own (bench/download-server.ts says why), serving from memory
  const hub = (server = await startServer(src));
  const url = hub.url;
  rmSync(src); // the copy in memory is what is served; keep the disk for the downloads

  // flow as it runs on a host: tasks/models-download.ts bundled by esbuild into one file, run by node
  const bundle = async (repo: string, outfile: string) => {
    await build({
      entryPoints: [join(repo, "tasks/models-download.ts")],
      bundle: true,
      platform: "node",
      format: "esm",
      target: "node20",
      outfile,
      logLevel: "silent",
      banner: {
        js: "import { createRequire as __flowCreateRequire } from 'node:module'; const require = __flowCreateRequire(import.meta.url);",
      },
    });
    return outfile;
  };
  const script = await bundle(REPO, join(dir, "models-download.mjs"));
  const baseline = BASELINE ? await bundle(BASELINE, join(dir, "baseline.mjs")) : undefined;
  const out = join(dir, "models");
  mkdirSync(out, { recursive: true });
  const target = join(out, "checkpoints", "model.bin");

  const clean = () => {
    rmSync(join(out, "checkpoints"), { recursive: true, force: true });
    mkdirSync(join(out, "checkpoints"), { recursive: true });
  };
  const check = (name: string) => {
    const got = hashOfFile(target);
    if (got !== sha) throw new Error(`${name}: sha256 mismatch (${got})`);
  };
  let lastRun = "";
  const flowArgs = (withSha: boolean, bundled = script) => {
    const runDir = (lastRun = mkdtempSync(join(dir, "run-")));
    // the server is on loopback, which the download's address policy refuses unless the job allows its host
    const job = {
      modelsRoot: out,
      connections: CONNECTIONS,
      allowHosts: [new URL(url).host],
      files: [{ url, target, size: SIZE, ...(withSha ? { sha256: sha } : {}) }],
    };
    writeFileSync(join(runDir, "job.json"), JSON.stringify(job));
    return [bundled, runDir];
  };
  const tools: Record<string, () => [string, string[]]> = {
    flow: () => [process.execPath, flowArgs(true)],
    ...(baseline ? { baseline: () => [process.execPath, flowArgs(true, baseline)] as [string, string[]] } : {}),
    "flow (no sha256)": () => [process.execPath, flowArgs(false)],
    ...(baseline ? { "baseline (no sha256)": () => [process.execPath, flowArgs(false, baseline)] as [string, string[]] } : {}),
    "aria2c -x16 -s16": () => [
      "aria2c",
      [
        "-x16",
        "-s16",
        "--file-allocation=none",
        "--allow-overwrite=true",
        "--auto-file-renaming=false",
        "--console-log-level=error",
        "--summary-interval=0",
        "-d",
        join(out, "checkpoints"),
        "-o",
        "model.bin",
        url,
      ],
    ],
    curl: () => ["curl", ["-sS", "-o", target, url]],
  };
  const times: Record<string, number[]> = Object.fromEntries(Object.keys(tools).map((k) => [k, []]));
  const fetched: Record<string, number[]> = Object.fromEntries(Object.keys(tools).map((k) => [k, []]));
  // flow's rate once all connections run, from its own progress events (done bytes, time) between
  // 10% and 90% of the file: what the engine does apart from Node's start (~0.13 s here) and the ramp
  const flows = Object.keys(tools).filter((k) => /^(flow|baseline)/.test(k));
  const steady: Record<string, number[]> = Object.fromEntries(flows.map((k) => [k, []]));
  const steadyRate = (runDir: string): number | undefined => {
    const ev = readFileSync(join(runDir, "events.jsonl"), "utf8")
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { type: string; t: number; done: number })
      .filter((e) => e.type === "progress");
    const a = ev.find((e) => e.done >= SIZE * 0.1);
    const b = [...ev].reverse().find((e) => e.done <= SIZE * 0.9);
    return a && b && b.t > a.t ? (b.done - a.done) / ((b.t - a.t) / 1000) : undefined;
  };

  // the disk ceiling: the file written from memory by 4 writers in 8 MiB positional writes (what
  // the downloaders do, minus the network), page cache included as for them; no fsync
  const ceiling: number[] = [];
  const pool = PHASES.has("disk") ? randomBytes(64 << 20) : Buffer.alloc(0); // written over and over
  for (let i = 0; i < (PHASES.has("disk") ? ROUNDS : 0); i++) {
    clean();
    const fdw = openSync(target, "w");
    const t0 = performance.now();
    let next = 0;
    const block = 8 << 20;
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        for (let pos; (pos = next) < SIZE;) {
          next += block;
          const n = Math.min(block, SIZE - pos);
          await new Promise<void>((ok, ko) => write(fdw, pool, pos % pool.length, n, pos, (e) => (e ? ko(e) : ok())));
        }
      }),
    );
    closeSync(fdw);
    ceiling.push(SIZE / ((performance.now() - t0) / 1000));
  }
  // the machine's uncapped ceiling to disk: the same server without its cap, the fastest tools;
  // on a small box the server, the client and the kernel's loopback share the cores
  const uncappedTools = ["flow (no sha256)", "aria2c -x16 -s16"];
  const uncapped: Record<string, number[]> = Object.fromEntries(uncappedTools.map((k) => [k, []]));
  for (let round = 1; round <= (PHASES.has("uncapped") ? ROUNDS : 0); round++) {
    for (const name of uncappedTools) {
      clean();
      const [cmd, args] = tools[name]!();
      const r = await timed(cmd, args);
      check(`${name} uncapped`);
      uncapped[name]!.push(r.seconds);
      log(`uncapped ${round} ${name}: ${r.seconds.toFixed(2)} s, ${(SIZE / r.seconds / 1e6).toFixed(0)} MB/s (load ${load1()})`);
    }
  }
  await hub.ask({ cmd: "rate", rate: RATE });

  // with a baseline, which of the pair goes first alternates from round to round
  const swap = (n: string) => (/^flow/.test(n) ? n.replace(/^flow/, "baseline") : n.replace(/^baseline/, "flow"));
  const inOrder = (names: string[], round: number) => (round % 2 || !baseline ? names : names.map(swap));
  for (let round = 1; round <= (PHASES.has("capped") ? ROUNDS : 0); round++) {
    for (const name of inOrder(Object.keys(tools), round)) {
      const make = tools[name]!;
      if (name === "curl" && round > CURL_ROUNDS) continue;
      clean();
      await hub.ask({ cmd: "reset" });
      const [cmd, args] = make();
      const r = await timed(cmd, args);
      check(name);
      times[name]!.push(r.seconds);
      fetched[name]!.push((await hub.ask({ cmd: "stats" })).bytes!);
      const rate = name in steady ? steadyRate(lastRun) : undefined;
      if (rate) steady[name]!.push(rate);
      log(`round ${round} ${name}: ${r.seconds.toFixed(2)} s, ${(SIZE / r.seconds / 1e6).toFixed(0)} MB/s (load ${load1()})`);
    }
  }

  // resume after SIGKILL at about half: total bytes served / file size
  const resume: Record<string, number[]> = { flow: [], ...(baseline ? { baseline: [] } : {}), "aria2c -x16 -s16": [] };
  for (let round = 1; round <= (PHASES.has("resume") ? ROUNDS : 0); round++) {
    for (const name of inOrder(Object.keys(resume), round)) {
      clean();
      await hub.ask({ cmd: "reset" });
      const make = tools[name]!;
      const ours = name === "flow" || name === "baseline";
      const [cmd, args] = ours ? make() : ([make()[0], ["-c", ...make()[1]]] as [string, string[]]);
      // the server kills the process once it has sent half the file: no polling across processes
      let killed: Promise<{ bytes?: number }> | undefined;
      const first = await timed(cmd, args, (c) => void (killed = hub.ask({ cmd: "killAt", bytes: SIZE / 2, pid: c.pid! })));
      if (first.code !== null) throw new Error(`${name} ended (exit ${first.code}) before the server had sent half the file`);
      const atKill = (await killed!).bytes!;
      // what flow's state file had recorded at the kill: the rest of what was sent is fetched again
      const st = ours ? readState(target) : undefined; // none for aria2c, or none saved yet
      const recorded = st ? `, state had ${((st.ranges.reduce((n, [a, b]) => n + b - a, 0) / SIZE) * 100).toFixed(1)}%` : "";
      const [cmd2, args2] = ours ? make() : [cmd, args];
      await timed(cmd2, args2);
      check(`${name} resume`);
      const total = (await hub.ask({ cmd: "stats" })).bytes!;
      resume[name]!.push(total / SIZE);
      log(`resume ${round} ${name}: killed at ${((atKill / SIZE) * 100).toFixed(1)}%${recorded}, total ${(total / SIZE).toFixed(3)}x`);
    }
  }
  await hub.close();

  const mbps = (name: string) => SIZE / median(times[name]!) / 1e6;
  const ceil = ceiling.length ? median(ceiling) / 1e6 : NaN;
  const uncappedMBps = Object.fromEntries(
    Object.entries(uncapped)
      .filter(([, v]) => v.length)
      .map(([k, v]) => [k, SIZE / median(v) / 1e6]),
  );
  const machineCeiling = Math.max(...Object.values(uncappedMBps), 0) || NaN;
  const cap = (CONNECTIONS * RATE) / 1e6;
  const bound = Math.min(machineCeiling, cap);
  const rows = Object.keys(tools).map((name) => ({
    tool: name,
    median_s: median(times[name]!),
    MBps: mbps(name),
    runs: times[name]!.map((t) => +t.toFixed(2)),
    fetched_x: median(fetched[name]!) / SIZE,
    steady_MBps: steady[name]?.length ? median(steady[name]!) / 1e6 : undefined,
  }));
  const result = {
    date: new Date().toISOString(),
    size: SIZE,
    rate_per_connection: RATE,
    connections: CONNECTIONS,
    load_after: loadavg(),
    disk_write_MBps: ceil,
    uncapped_MBps: uncappedMBps,
    uncapped_runs: uncapped,
    bound_MBps: bound,
    rows,
    flow_vs_aria2c: mbps("flow") / mbps("aria2c -x16 -s16"),
    flow_vs_bound: mbps("flow") / bound,
    flow_vs_cap: mbps("flow") / cap,
    hash_cost: median(times.flow!) / median(times["flow (no sha256)"]!) - 1,
    // the runs of a round are next to each other in time: their ratio is less noisy than medians'
    hash_cost_paired: median(times.flow!.map((t, i) => t / times["flow (no sha256)"]![i]! - 1)),
    resume_x: Object.fromEntries(Object.entries(resume).map(([k, v]) => [k, { median: median(v), runs: v.map((x) => +x.toFixed(3)) }])),
    // this tree's time / the baseline's, run by run within the rounds (< 1: this tree is faster)
    vs_baseline:
      baseline && times.baseline!.length
        ? {
            sha256: median(times.flow!.map((t, i) => t / times.baseline![i]!)),
            no_sha256: median(times["flow (no sha256)"]!.map((t, i) => t / times["baseline (no sha256)"]![i]!)),
            baseline_vs_aria2c: mbps("baseline") / mbps("aria2c -x16 -s16"),
            baseline_vs_cap: mbps("baseline") / cap,
          }
        : undefined,
  };
  mkdirSync(join(REPO, "bench/out"), { recursive: true });
  writeFileSync(join(REPO, "bench/out/download.json"), JSON.stringify(result, null, 2));

  const f = (x: number, d = 2) => x.toFixed(d);
  console.log(`| tool | median s | MB/s | runs (s) | bytes fetched / size | steady MB/s (10-90%) |`);
  console.log(`|---|---:|---:|---|---:|---:|`);
  for (const r of rows) {
    const steadyCell = r.steady_MBps ? f(r.steady_MBps, 0) : "";
    console.log(`| ${r.tool} | ${f(r.median_s)} | ${f(r.MBps, 0)} | ${r.runs.join(", ")} | ${f(r.fetched_x, 3)} | ${steadyCell} |`);
  }
  console.log();
  console.log(`- disk alone (1 GiB written from memory, 4 writers, 8 MiB writes): ${f(ceil, 0)} MB/s`);
  for (const [k, v] of Object.entries(uncappedMBps)) {
    console.log(`- uncapped (same server, no cap), ${k}: ${f(v, 0)} MB/s (runs ${uncapped[k]!.map((t) => t.toFixed(2)).join(", ")} s)`);
  }
  console.log(`- bound min(machine's uncapped ceiling ${f(machineCeiling, 0)}, ${CONNECTIONS} x 40 = ${f(cap, 0)}) = ${f(bound, 0)} MB/s`);
  const pct = (x: number, d = 0) => f(x * 100, d);
  console.log(
    `- flow / aria2c -x16: ${f(result.flow_vs_aria2c)}x (target >= 1.10); flow / bound: ${pct(result.flow_vs_bound)}% (target >= 85%); ` +
      `flow / ${f(cap, 0)}: ${pct(result.flow_vs_cap)}%`,
  );
  console.log(
    `- sha256 verification cost: ${pct(result.hash_cost_paired, 1)}% of wall time, median of the rounds' paired runs ` +
      `(${pct(result.hash_cost, 1)}% between the medians; target <= 10%)`,
  );
  const vb = result.vs_baseline;
  if (vb) {
    console.log(
      `- against the baseline (${BASELINE}), time / its time, median of paired runs: ${f(vb.sha256, 3)} with sha256, ` +
        `${f(vb.no_sha256, 3)} without; baseline / aria2c ${f(vb.baseline_vs_aria2c)}x, ` +
        `baseline / ${f(cap, 0)} ${pct(vb.baseline_vs_cap)}%`,
    );
  }
  for (const [k, v] of Object.entries(result.resume_x)) {
    console.log(`- resume after SIGKILL at ~50%, ${k}: ${f(v.median, 3)}x the file size fetched in total (runs ${v.runs.join(", ")})`);
  }
  console.log(
    `- load average after: ${loadavg()
      .map((x) => x.toFixed(2))
      .join(" ")}`,
  );
}

try {
  await main();
} finally {
  server?.kill(); // after a failure: the server's IPC channel would keep this process alive
  rmSync(dir, { recursive: true, force: true });
}

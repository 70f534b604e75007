import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { flow, flowfileSource, REPO } from "../support/cli.ts";
import { shQuote } from "../../lib/quote.ts";

function project(body: string): string {
  const dir = mkdtempSync(join(tmpdir(), "flow-cli-"));
  writeFileSync(join(dir, "flowfile.ts"), flowfileSource(body));
  symlinkSync(join(REPO, "node_modules"), join(dir, "node_modules"));
  return dir;
}

const SAMPLE =
  `
const remote = (d: string) => d;
export default defineFlow({
  settings: { remoteDir: process.env.FLOW_TEST_REMOTE_DIR ` +
  `?? "/tmp/flow-cli-test" },
  plugins: [ops(), definePlugin({ name: "demo", description: "test ` +
  `tasks", tasks: [
    defineTask({
      name: "demo:touch",
      description: "create a file ` +
  `when missing",
      options: z.object({ path: z.string().describe("file to create"), count: ` +
  `z.number().int().default(1), mode: z.enum(["a", "b"]).default("a") }),
      async run(ctx, ` +
  `o) {
        await ctx.ensure({
          title: "file " + o.path,
          check: async ` +
  `() => (await ctx.exec("test -f " + shQuote(o.path))).code === 0,
          apply: async () ` +
  `=> void (await ctx.sh("echo " + o.count + " > " + shQuote(o.path))),
        });
      },
 ` +
  `   }),
    defineTask({
      name: "demo:secret",
      description: "needs a secret",
  ` +
  `    secrets: ["FLOW_TEST_TOKEN"],
      lock: false,
      options: z.object({}),
      async ` +
  `run(ctx) {
        await ctx.step("use it", async () => {
          const seen = await ctx.sh("cat", ` +
  `{ stdin: ctx.secrets.FLOW_TEST_TOKEN });
          ctx.log("the token is " + seen);
      ` +
  `    return { status: "ok", note: "token " + ctx.secrets.FLOW_TEST_TOKEN };
        });
   ` +
  `   },
    }),
    defineTask({
      name: "demo:hold",
      description: "hold the host ` +
  `lock a while",
      options: z.object({ ms: z.number().default(1500) }),
      async run(ctx, ` +
  `o) {
        await ctx.step("hold", async () => { await new Promise((r) => setTimeout(r, o.ms)); ` +
  `return "changed"; });
      },
    }),
    defineTask({
      name: "demo:wipe",
      description: ` +
  `"destroys something",
      destructive: "wipe the demo",
      lock: false,
      options: ` +
  `z.object({}),
      async run(ctx) {
        await ctx.step("wipe", async () => ({ status: ` +
  `"ok", note: ctx.confirmed ? "wiped" : "listed only" }));
      },
    }),
    defineTask({
 ` +
  `     name: "demo:both",
      description: "runs other tasks",
      options: z.object({ path: ` +
  `z.string() }),
      async run(ctx, o) {
        await ctx.runTask("demo:touch", { path: o.path, ` +
  `count: 7 });
        await ctx.runTask("status");
      },
    }),
  ] })],
});`;

test("flow list works with no flowfile, and lists plugin tasks with options", async () => {
  const empty = mkdtempSync(join(tmpdir(), "flow-empty-"));
  const r = await flow(["list"], { cwd: empty });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /built-in default/);
  assert.match(r.stdout, /status\s+OS, uptime/);
  assert.match(r.stdout, /lock:release/);
  const dir = project(SAMPLE);
  const j = await flow(["list", "--json"], { cwd: dir });
  const parsed = JSON.parse(j.stdout);
  const demo = parsed.groups.find((g: { group: string }) => g.group === "demo");
  const touch = demo.tasks.find((t: { name: string }) => t.name === "demo:touch");
  assert.deepEqual(
    touch.options.map((o: { flag: string }) => o.flag),
    ["--path", "--count", "--mode"],
  );
});

test("flow run: options validated by the task schema; --help shows them", async () => {
  const dir = project(SAMPLE);
  const help = await flow(["run", "demo:touch", "--help"], { cwd: dir });
  assert.equal(help.code, 0);
  assert.match(help.stdout, /--path=<path>\s+file to create \(Required\)/);
  assert.match(help.stdout, /--mode=<a\|b>\s+\(default: "a"\)/);
  assert.match(help.stdout, /--concurrency=<number>\s+hosts at once/);
  const bad = await flow(["run", "demo:touch", "--host", "local", "--path", "/tmp/x", "--count", "two"], { cwd: dir });
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--count: expected a number, got "two"/);
  const unknown = await flow(["run", "demo:touch", "--host", "local", "--bogus"], { cwd: dir });
  assert.match(unknown.stderr, /unknown option --bogus/);
  const noTask = await flow(["run", "stat", "--host", "local"], { cwd: dir });
  assert.match(noTask.stderr, /no task named stat \(did you mean status/);
  const noHost = await flow(["run", "status"], { cwd: dir });
  assert.match(noHost.stderr, /give --host/);
});

test("idempotent steps: changed, then ok; --dry-run changes nothing; tasks run tasks", async () => {
  const dir = project(SAMPLE);
  const remote = mkdtempSync(join(tmpdir(), "flow-remote-"));
  const env = { FLOW_TEST_REMOTE_DIR: remote };
  const target = join(remote, "made");
  const dry = await flow(["run", "demo:touch", "--host", "local", "--path", target, "--dry-run"], { cwd: dir, env });
  assert.equal(dry.code, 0, dry.stdout + dry.stderr);
  assert.match(dry.stdout, /file .*made: would change/);
  const first = await flow(["run", "demo:touch", "--host", "local", "--path", target], { cwd: dir, env });
  assert.match(first.stdout, /file .*made: changed/);
  const second = await flow(["run", "demo:touch", "--host", "local", "--path", target, "--json"], { cwd: dir, env });
  const recap = JSON.parse(second.stdout.trim().split("\n").pop()!);
  assert.equal(recap.type, "recap");
  assert.deepEqual([recap.hosts[0].ok, recap.hosts[0].changed], [1, 0]);
  const both = await flow(["run", "demo:both", "--host", "local", "--path", join(remote, "b")], { cwd: dir, env });
  assert.equal(both.code, 0, both.stdout);
  assert.match(both.stdout, /file .*b: changed/);
  assert.match(both.stdout, /\] status: ok/);
});

test("a missing secret fails before any host; a present one is redacted everywhere and sent over stdin", async () => {
  const dir = project(SAMPLE);
  const missing = await flow(["run", "demo:secret", "--host", "local"], { cwd: dir, env: { FLOW_TEST_TOKEN: undefined } });
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /demo:secret needs FLOW_TEST_TOKEN: set it in the environment or in \.env/);
  const token = "hf_sEcReT_" + Math.random().toString(36).slice(2);
  writeFileSync(join(dir, ".env"), `FLOW_TEST_TOKEN="${token}"\n`);
  for (const extra of [[], ["--json"]]) {
    const r = await flow(["run", "demo:secret", "--host", "local", ...extra], { cwd: dir, env: { FLOW_TEST_TOKEN: undefined } });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(!r.stdout.includes(token) && !r.stderr.includes(token), "token leaked");
    assert.match(r.stdout, /the token is \*\*\*/);
  }
  // a task that declares no secret still never prints one another task declares
  const leak = await flow(["run", "exec", "--host", "local", "--", "printenv", "FLOW_TEST_TOKEN"], {
    cwd: dir,
    env: { FLOW_TEST_TOKEN: token },
  });
  assert.equal(leak.code, 0, leak.stdout + leak.stderr);
  assert.ok(!leak.stdout.includes(token), "exec printed a declared secret");
  assert.equal(leak.stdout, "***\n", "one host: the command's output as is, the secret masked");
});

test("lock contention between two flow processes; lock:status and lock:release", async () => {
  const dir = project(SAMPLE);
  const remote = mkdtempSync(join(tmpdir(), "flow-remote-"));
  const env = { FLOW_TEST_REMOTE_DIR: remote };
  let signalled!: () => void;
  const holding = new Promise<void>((r) => (signalled = r));
  const first = flow(["run", "demo:hold", "--host", "local", "--ms", "8000"], {
    cwd: dir,
    env,
    onStdout: (s) => s.includes("hold") && signalled(),
  });
  // wait until the first holds the lock (its step started means the lock is taken)
  for (let i = 0; i < 100; i++) {
    const st = await flow(["run", "lock:status", "--host", "local"], { cwd: dir, env });
    if (/held by/.test(st.stdout)) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const blocked = await flow(["run", "demo:hold", "--host", "local", "--ms", "10"], { cwd: dir, env });
  assert.equal(blocked.code, 1);
  assert.match(blocked.stdout, /locked by .* \(task demo:hold, pid \d+/);
  const waited = await flow(["run", "demo:hold", "--host", "local", "--ms", "10", "--lock-wait", "20"], { cwd: dir, env });
  assert.equal(waited.code, 0, waited.stdout);
  assert.match(waited.stdout, /waiting for the lock held by/);
  assert.equal((await first).code, 0);
  void holding;
  const free = await flow(["run", "lock:status", "--host", "local"], { cwd: dir, env });
  assert.match(free.stdout, /lock: ok \(free\)/);
  // a stale lock (a run that died) is released by hand
  const { mkdirSync } = await import("node:fs");
  mkdirSync(join(remote, "lock"));
  writeFileSync(join(remote, "lock/details"), JSON.stringify({ holder: "ghost@box", task: "x", since: "then", pid: 1 }));
  const rel = await flow(["run", "lock:release", "--host", "local"], { cwd: dir, env });
  assert.match(rel.stdout, /released the lock of ghost@box/);
});

test("a dead holder's lock is taken over only when it was this machine's; same user@host elsewhere is not enough", async () => {
  const { mkdirSync, rmSync } = await import("node:fs");
  const { hostname, userInfo } = await import("node:os");
  const dir = project(SAMPLE);
  const remote = mkdtempSync(join(tmpdir(), "flow-remote-"));
  const cache = mkdtempSync(join(tmpdir(), "flow-cache-"));
  mkdirSync(join(cache, "flow"));
  writeFileSync(join(cache, "flow/machine-id"), "this-machine\n");
  const env = { FLOW_TEST_REMOTE_DIR: remote, XDG_CACHE_HOME: cache };
  const holder = `${userInfo().username}@${hostname()}`;
  const dead = 2 ** 22 + 12345; // above pid_max on most systems: never alive
  const plant = (machine: string) => {
    rmSync(join(remote, "lock"), { recursive: true, force: true });
    mkdirSync(join(remote, "lock"));
    writeFileSync(join(remote, "lock/details"), JSON.stringify({ holder, machine, task: "demo:hold", since: "then", pid: dead }));
  };
  plant("another-machine");
  const blocked = await flow(["run", "demo:hold", "--host", "local", "--ms", "10"], { cwd: dir, env });
  assert.equal(blocked.code, 1, blocked.stdout);
  assert.match(blocked.stdout, /is locked by/);
  plant("this-machine");
  const taken = await flow(["run", "demo:hold", "--host", "local", "--ms", "10"], { cwd: dir, env });
  assert.equal(taken.code, 0, taken.stdout);
  assert.match(taken.stdout, /removing a stale lock/);
});

test("global flags are validated like task options: exit 2 naming the flag, nothing run", async () => {
  const dir = project(SAMPLE);
  const remote = mkdtempSync(join(tmpdir(), "flow-remote-"));
  const env = { FLOW_TEST_REMOTE_DIR: remote };
  const cases: [string[], RegExp][] = [
    [["--concurrency", "abc"], /--concurrency: expected a number, got "abc"/],
    [["--concurrency", "0"], /--concurrency: .*(>|greater|positive)/i],
    [["--concurrency", "2.5"], /--concurrency: expected an int/i],
    [["--lock-wait", "abc"], /--lock-wait: expected a number, got "abc"/],
    [["--lock-wait", "-1"], /--lock-wait: .*(>=|greater|non-?negative)/i],
    [["--host", ""], /--host needs a value/],
    [["--hosts"], /--hosts needs a value/],
  ];
  for (const [flags, why] of cases) {
    const started = Date.now();
    const r = await flow(["run", "demo:touch", "--host", "local", "--path", join(remote, "x"), ...flags], { cwd: dir, env });
    assert.equal(r.code, 2, `${flags.join(" ")}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, why, flags.join(" "));
    assert.equal(r.stdout, "", `${flags.join(" ")} ran something: ${r.stdout}`);
    assert.ok(Date.now() - started < 10_000, `${flags.join(" ")} took ${Date.now() - started} ms`);
  }
  const { existsSync } = await import("node:fs");
  assert.ok(!existsSync(join(remote, "x")), "a run with a bad global flag changed the host");
  const list = await flow(["list", "--concurrency", "3"], { cwd: dir });
  assert.equal(list.code, 2, list.stdout + list.stderr);
  assert.match(list.stderr, /unknown option --concurrency/);
});

test("exec on one host prints the command's stdout byte for byte and its stderr apart, with its exit code", async () => {
  const dir = project(SAMPLE);
  const remote = mkdtempSync(join(tmpdir(), "flow-remote-"));
  const data = Buffer.concat([
    Buffer.from('{"a": [1, 2]}\n\n  indented\ttab\r\nno newline at end'),
    Buffer.from([0, 1, 2, 255, 254, 10, 0xe2, 0x82]),
  ]);
  writeFileSync(join(remote, "a.bin"), data);
  const { spawnSync } = await import("node:child_process");
  const { FLOW_BIN } = await import("../support/cli.ts");
  const r = spawnSync(
    process.execPath,
    [FLOW_BIN, "run", "exec", "--host", "local", "--", "cat", join(remote, "a.bin"), ";", "echo", "oops", ">&2"],
    {
      cwd: dir,
      env: { ...process.env, CI: "true", FLOW_TEST_REMOTE_DIR: remote },
    },
  );
  assert.equal(r.status, 0, r.stderr.toString());
  assert.ok(r.stdout.equals(data), `stdout differs: ${JSON.stringify(r.stdout.toString())}`);
  assert.equal(r.stderr.toString(), "oops\n");
  const failing = spawnSync(process.execPath, [FLOW_BIN, "run", "exec", "--host", "local", "--", "printf", "part", ";", "exit", "7"], {
    cwd: dir,
    env: { ...process.env, CI: "true", FLOW_TEST_REMOTE_DIR: remote },
  });
  assert.equal(failing.status, 7, "the command's exit code, as ssh gives it");
  assert.equal(failing.stdout.toString(), "part");
  const unreachable = await flow(["run", "exec", "--host", "nobody@127.0.0.1:1", "--", "true"], {
    cwd: dir,
    env: { FLOW_TEST_REMOTE_DIR: remote },
  });
  assert.equal(unreachable.code, 255, "as ssh: 255 when the host cannot be reached");
  assert.equal(unreachable.stdout, "");
  assert.match(unreachable.stderr, /UNREACHABLE.*127\.0\.0\.1/);
});

test("secrets are redacted in step titles and in JSON events, whatever characters they hold", async () => {
  const dir = project(SAMPLE);
  const remote = mkdtempSync(join(tmpdir(), "flow-remote-"));
  const tokens = ['tok"en\\with\\quotes_' + Math.random().toString(36).slice(2), "plain_" + Math.random().toString(36).slice(2)];
  for (const token of tokens) {
    const env = { FLOW_TEST_REMOTE_DIR: remote, FLOW_TEST_TOKEN: token };
    const leaks = (out: string) => out.includes(token) || out.includes(JSON.stringify(token).slice(1, -1));
    // a token the user's shell expanded into an option reaches a step title ("file <path>")
    for (const extra of [[], ["--json"]]) {
      const r = await flow(["run", "demo:touch", "--host", "local", "--path", join(remote, token), ...extra], { cwd: dir, env });
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.ok(!leaks(r.stdout + r.stderr), `step title leaked the token (${extra.join(" ") || "plain"}): ${r.stdout}`);
      assert.match(r.stdout, /\*\*\*/);
    }
    // exec's title is the command itself
    const e = await flow(["run", "exec", "--host", "local", "--json", "--", `echo ${shQuote(token)} >/dev/null`], { cwd: dir, env });
    assert.equal(e.code, 0, e.stdout + e.stderr);
    assert.ok(!leaks(e.stdout + e.stderr), `exec title leaked in JSON: ${e.stdout}`);
    for (const line of e.stdout.trim().split("\n")) JSON.parse(line);
  }
});

test("flow init writes a starter project and refuses to overwrite", async () => {
  const { existsSync, readFileSync } = await import("node:fs");
  const dir = mkdtempSync(join(tmpdir(), "flow-init-"));
  const r = await flow(["init"], { cwd: dir });
  assert.equal(r.code, 0, r.stderr);
  for (const f of ["flowfile.ts", ".env.example", "workflow_templates", "workflows"]) assert.ok(existsSync(join(dir, f)), f);
  assert.match(readFileSync(join(dir, ".env.example"), "utf8"), /^HF_TOKEN=$/m);
  assert.match(readFileSync(join(dir, "flowfile.ts"), "utf8"), /from "flow"/);
  assert.match(readFileSync(join(dir, "flowfile.ts"), "utf8"), /apiProxy\(\)/);
  // the boxes' tokens go into .env: a new project ignores it
  assert.match(readFileSync(join(dir, ".gitignore"), "utf8"), /^\.env$/m);
  writeFileSync(join(dir, "flowfile.ts"), "// mine\n");
  const again = await flow(["init"], { cwd: dir });
  assert.equal(again.code, 2);
  assert.match(
    again.stderr,
    /flowfile\.ts, \.env\.example, workflow_templates\/\.gitkeep, workflows\/\.gitkeep already exist.*nothing was written/,
  );
  assert.equal(readFileSync(join(dir, "flowfile.ts"), "utf8"), "// mine\n");
});

test("--verbose prints each command run on the host; --quiet only failures and the recap", async () => {
  const dir = project(SAMPLE);
  const remote = mkdtempSync(join(tmpdir(), "flow-remote-"));
  const env = { FLOW_TEST_REMOTE_DIR: remote };
  const target = join(remote, "v");
  const loud = await flow(["run", "demo:touch", "--host", "local", "--path", target, "--verbose"], { cwd: dir, env });
  assert.equal(loud.code, 0, loud.stderr);
  assert.match(loud.stdout, /\[local\] debug: \$ test -f .*v\n\[local\] debug: exit 1 in \d+ ms/);
  const quiet = await flow(["run", "demo:touch", "--host", "local", "--path", target, "--quiet"], { cwd: dir, env });
  assert.equal(quiet.code, 0, quiet.stderr);
  assert.doesNotMatch(quiet.stdout, /demo:touch on|: ok|debug/);
  assert.match(quiet.stdout, /^local\s+ok\s+1/m);
  const plain = await flow(["run", "demo:touch", "--host", "local", "--path", target], { cwd: dir, env });
  assert.doesNotMatch(plain.stdout, /debug/);
});

test("a destructive task: off a terminal only --yes confirms; on a terminal flow asks", async () => {
  const dir = project(SAMPLE);
  const off = await flow(["run", "demo:wipe", "--host", "local"], { cwd: dir });
  assert.equal(off.code, 0, off.stderr);
  assert.match(off.stdout, /wipe: ok \(listed only\)/);
  assert.match(off.stderr, /not confirmed, so it will not wipe the demo \(give --yes/);
  const yes = await flow(["run", "demo:wipe", "--host", "local", "--yes"], { cwd: dir });
  assert.match(yes.stdout, /wipe: ok \(wiped\)/);
  const dry = await flow(["run", "demo:wipe", "--host", "local", "--dry-run"], { cwd: dir });
  assert.doesNotMatch(dry.stderr, /not confirmed/, "a dry run asks nothing");
  // a terminal: script(1) gives flow a pty; the answer is typed once the question is up
  const { spawn, spawnSync } = await import("node:child_process");
  if (spawnSync("script", ["--version"]).status !== 0) return;
  const { FLOW_BIN } = await import("../support/cli.ts");
  for (const [keys, note] of [
    ["y\r", "wiped"],
    ["\r", "listed only"],
  ] as const) {
    // the pty has no size without a terminal around it: give it one, or the question wraps per character
    const cmd = `stty cols 120 rows 30; ${shQuote(process.execPath)} ${shQuote(FLOW_BIN)} run demo:wipe --host local`;
    const child = spawn("script", ["-qec", cmd, "/dev/null"], { cwd: dir, env: { ...process.env, CI: "", NO_COLOR: "1" } });
    const closed = new Promise((r) => child.on("close", r));
    let out = "";
    child.stdout.on("data", (c: Buffer) => (out += c.toString()));
    try {
      for (let i = 0; i < 100 && !out.includes("Go ahead?"); i++) await new Promise((r) => setTimeout(r, 100));
      assert.match(out, /demo:wipe will wipe the demo on local\. Go ahead\?/);
      for (const k of keys) {
        child.stdin.write(k);
        await new Promise((r) => setTimeout(r, 200));
      }
      assert.equal(await closed, 0, out);
      assert.match(out, new RegExp(`wipe: ok \\(${note}\\)`), out);
    } finally {
      child.kill("SIGKILL");
    }
  }
});

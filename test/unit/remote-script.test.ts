import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync, symlinkSync, readFileSync, existsSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { flow, flowfileSource, REPO } from "../support/cli.ts";

const SCRIPT = join(REPO, "test/fixtures/tasks/count.ts");

async function waitForEvents(remote: string, n: number, total: number): Promise<void> {
  const file = join(remote, "runs/count/events.jsonl");
  for (let i = 0; i < 300; i++) {
    const text = existsSync(file) ? readFileSync(file, "utf8") : "";
    if (text.includes(`"total":${total}`) && text.split("\n").length > n) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error("the script never reported progress");
}

function project(): { dir: string; remote: string; env: Record<string, string> } {
  const dir = mkdtempSync(join(tmpdir(), "flow-rs-"));
  const remote = mkdtempSync(join(tmpdir(), "flow-rs-remote-"));
  writeFileSync(
    join(dir, "flowfile.ts"),
    flowfileSource(
      `
export default defineFlow({
  settings: { remoteDir: ${JSON.stringify(remote)} },
  plugins: ` +
        `[definePlugin({ name: "t", tasks: [defineTask({
    name: "count",
    description: "run the ` +
        `counting script detached",
    optionalSecrets: ["FLOW_TEST_TOKEN"],
    options: z.object({ ` +
        `steps: z.number().default(5), delay: z.number().default(50), fail: z.boolean().default(false) ` +
        `}),
    async run(ctx, o) {
      let last = 0;
      let first = 0;
      const r = await ` +
        `ctx.remoteScript(${JSON.stringify(SCRIPT)}, {
        key: "count",
        job: { steps: ` +
        `o.steps, delayMs: o.delay, secret: ctx.secrets.FLOW_TEST_TOKEN, fail: o.fail },
        onProgress: ` +
        `(e) => { if (e.type === "progress") { last = e.done as number; first ||= last; } },
      ` +
        `});
      await ctx.step("count", async () => ({ status: "changed", note: r.how + " " + JSON.stringify(r.result) ` +
        `+ " last=" + last + " first=" + first }));
    },
  })] })],
});`,
    ),
  );
  symlinkSync(join(REPO, "node_modules"), join(dir, "node_modules"));
  return { dir, remote, env: { FLOW_TEST_TOKEN: "" } };
}

test("a pushed script runs detached, streams progress, returns its result", async () => {
  const { dir, remote } = project();
  const token = "tok_" + Math.random().toString(36).slice(2, 12);
  const r = await flow(["run", "count", "--host", "local", "--steps", "4", "--delay", "20"], { cwd: dir, env: { FLOW_TEST_TOKEN: token } });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /count: changed \(started \{"counted":4,"sawSecret":true\} last=4 first=1\)/);
  assert.match(r.stdout, /counted to 4/);
  // the job file (which held the token) is gone; nothing on disk holds the token
  const run = join(remote, "runs/count");
  assert.ok(!existsSync(join(run, "job.json")));
  for (const f of readdirSync(run)) assert.ok(!readFileSync(join(run, f), "utf8").includes(token), `${f} holds the token`);
  // the run's folder and every file in it are the login user's alone (the log may quote a URL or a path)
  const { statSync } = await import("node:fs");
  assert.equal(statSync(run).mode & 0o777, 0o700);
  for (const f of readdirSync(run)) assert.equal(statSync(join(run, f)).mode & 0o077, 0, `${f} is readable by others`);
});

test("flow killed while following: the script finishes; a re-run re-attaches or reports the unwatched result", async () => {
  const { dir, remote } = project();
  const ac = new AbortController();
  let seen = 0;
  const first = flow(["run", "count", "--host", "local", "--steps", "30", "--delay", "100"], {
    cwd: dir,
    signal: ac.signal,
    onStdout: () => {},
  });
  // once the script reports progress, kill flow (SIGTERM via abort) mid-run
  await waitForEvents(remote, 3, 30);
  ac.abort();
  await first;
  const again = await flow(["run", "count", "--host", "local", "--steps", "30", "--delay", "100"], { cwd: dir });
  assert.equal(again.code, 0, again.stdout + again.stderr);
  assert.match(again.stdout, /re-attached to .*count.* already running/);
  const m = /count: changed \(attached \{"counted":30,"sawSecret":false\} last=30 first=(\d+)\)/.exec(again.stdout);
  assert.ok(m, again.stdout);
  // the re-attached run starts from where the script was, not from its first progress line
  assert.ok(Number(m[1]) >= 3, `first progress seen after re-attaching: ${m[1]}`);
  void seen;

  // now one that finishes while nobody watches
  const ac2 = new AbortController();
  const third = flow(["run", "count", "--host", "local", "--steps", "10", "--delay", "100"], { cwd: dir, signal: ac2.signal });
  await waitForEvents(remote, 2, 10);
  ac2.abort();
  await third;
  for (let i = 0; i < 100 && !readFileSync(join(remote, "runs/count/events.jsonl"), "utf8").includes(`"done":10`); i++)
    await new Promise((r) => setTimeout(r, 100));
  const fourth = await flow(["run", "count", "--host", "local", "--steps", "10", "--delay", "100"], { cwd: dir });
  assert.match(fourth.stdout, /finished while nobody watched/);
  assert.match(fourth.stdout, /count: changed \(finished-unwatched \{"counted":10,"sawSecret":false\}/);
});

test("a failing script fails the step with the script's own error", async () => {
  const { dir } = project();
  const r = await flow(["run", "count", "--host", "local", "--steps", "1", "--delay", "1", "--fail"], { cwd: dir });
  assert.equal(r.code, 1);
  assert.match(r.stdout, /failed on the host \(status 1\)/);
  assert.match(r.stdout, /asked to fail/);
});

test("after a reboot a recorded pid that now belongs to another process is not mistaken for the run", async () => {
  const { dir, remote } = project();
  const { mkdirSync } = await import("node:fs");
  const run = join(remote, "runs/count");
  mkdirSync(run, { recursive: true });
  // pid 1 is alive, but the boot id recorded with it is not this boot's
  writeFileSync(join(run, "pid"), "1\n");
  writeFileSync(join(run, "boot"), "00000000-0000-0000-0000-000000000000\n");
  writeFileSync(join(run, "events.jsonl"), "");
  const r = await flow(["run", "count", "--host", "local", "--steps", "2", "--delay", "10"], { cwd: dir });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /died without an exit status/);
  assert.match(r.stdout, /count: changed \(started \{"counted":2/);
});

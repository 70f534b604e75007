// The runner against real SSH hosts of the lab: fan-out, refusal, unreachable hosts, secrets,
// detached scripts across a dropped connection, the Node runtime step, locks.
import { before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, symlinkSync, writeFileSync, copyFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { flow, flowfileSource, REPO } from "../support/cli.ts";
import { ensureLab, labUnavailableReason, resetHost, sshArgv, type LabInventory } from "../lab/lab.ts";
import { hostileStrings } from "../support/fuzz.ts";
import { shQuote } from "../../lib/quote.ts";
import { SshTransport } from "../../lib/transport/ssh.ts";

const why = await labUnavailableReason();
const COUNT = join(REPO, "test/fixtures/tasks/count.ts");

function sshOn(inv: LabInventory, name: string, command: string): string {
  const h = inv.hosts[name]!;
  const r = spawnSync("ssh", sshArgv(h.port, h.user, command));
  return r.stdout.toString();
}

/** A project whose flowfile reads the lab inventory (or a copy with edits) and has test tasks. */
function project(inventoryFile: string, extraHosts = ""): string {
  const dir = mkdtempSync(join(tmpdir(), "flow-lab-proj-"));
  writeFileSync(
    join(dir, "flowfile.ts"),
    flowfileSource(
      `
export default defineFlow({
  hosts: { ${extraHosts} },
  inventory: [${JSON.stringify(inventoryFile)}],
 ` +
        ` settings: { connectTimeoutMs: 4000 },
  plugins: [ops(), definePlugin({ name: "t", tasks: ` +
        `[
    defineTask({
      name: "t:count",
      description: "detached counting script",
 ` +
        `     optionalSecrets: ["FLOW_TEST_TOKEN"],
      options: z.object({ steps: z.number().default(5), ` +
        `delay: z.number().default(50) }),
      async run(ctx, o) {
        const r = await ctx.remoteScript(${JSON.stringify(COUNT)}, ` +
        `{ key: "count", job: { steps: o.steps, delayMs: o.delay, secret: ctx.secrets.FLOW_TEST_TOKEN ` +
        `} });
        await ctx.step("count", async () => ({ status: "changed", note: r.how + " " ` +
        `+ JSON.stringify(r.result) }));
      },
    }),
    defineTask({
      name: "t:secret",
 ` +
        `     description: "hands a secret to a slow remote command over stdin",
      secrets: ["FLOW_TEST_TOKEN"],
 ` +
        `     options: z.object({}),
      async run(ctx) {
        await ctx.step("use secret", async ` +
        `() => {
          const out = await ctx.sh("read -r t; sleep 3; printf %s \\"$t\\" | sha256sum", ` +
        `{ stdin: ctx.secrets.FLOW_TEST_TOKEN + "\\n" });
          ctx.log("token " + ctx.secrets.FLOW_TEST_TOKEN ` +
        `+ " hashed to " + out.slice(0, 12));
        });
      },
    }),
  ] })],
});`,
    ),
  );
  symlinkSync(join(REPO, "node_modules"), join(dir, "node_modules"));
  return dir;
}

describe("runner on lab hosts", { skip: why ?? false, timeout: 600_000 }, () => {
  let inv: LabInventory;
  let dir: string;
  before(async () => {
    inv = await ensureLab({ hosts: 3 });
    dir = project(join(REPO, ".lab/inventory.json"));
  });

  test("status and exec fan out over the lab; recap per host; exit 0", async () => {
    const r = await flow(["run", "status", "--hosts", "lab1,lab2,lab3"], { cwd: dir });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    for (const h of ["lab1", "lab2", "lab3"]) assert.match(r.stdout, new RegExp(`^${h}\\s+ok\\s+1`, "m"));
    assert.match(r.stdout, /Debian GNU\/Linux 12/);
    const e = await flow(["run", "exec", "--hosts", "lab1,lab2", "--", "hostname;", "echo", "to-stderr", ">&2;", "exit", "0"], {
      cwd: dir,
    });
    assert.equal(e.code, 0, e.stdout);
    assert.match(e.stdout, /\[lab1\] lab1\n\[lab1\] stderr:\n\[lab1\] to-stderr/);
    assert.match(e.stdout, /\[lab2\] lab2/);
    // one host: as `ssh host cmd`, the command's own output and exit code
    const fail = await flow(["run", "exec", "--hosts", "lab1", "--", "echo out; echo err >&2; exit 7"], { cwd: dir });
    assert.equal(fail.code, 7);
    assert.equal(fail.stdout, "out\n");
    assert.equal(fail.stderr, "err\n");
    const two = await flow(["run", "exec", "--hosts", "lab1,lab2", "--", "exit 7"], { cwd: dir });
    assert.equal(two.code, 1);
    assert.match(two.stdout, /failed \(exit 7\)/);
  });

  test("exec: the words after -- reach the remote shell byte for byte, sudo wrapping included", async () => {
    const words = hostileStrings(40, 3).filter((s) => !s.includes("\0"));
    for (const sudo of [[], ["--sudo"]]) {
      const cmd = `printf '%s\\n' ${words.map(shQuote).join(" ")}; id -u`;
      const r = await flow(["run", "exec", "--hosts", "lab1", "--json", ...sudo, "--", cmd], { cwd: dir });
      assert.equal(r.code, 0, r.stdout);
      const data = r.stdout
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l))
        .find((e) => e.type === "data");
      const lines = data.data.exec.stdout.split("\n");
      assert.equal(lines.at(-2), sudo.length ? "0" : "1000");
      assert.deepEqual(lines.slice(0, -2).join("\n"), words.join("\n"));
    }
  });

  test("10,000 hostile strings come back unchanged through a remote printf over SSH (as ubuntu and via sudo)", async () => {
    const h = inv.hosts.lab1!;
    const t = new SshTransport(
      { label: "lab1", address: h.address, port: h.port, user: h.user, identityFile: h.identityFile },
      {
        knownHostsFile: inv.knownHostsFile,
        acceptNewHostKey: false,
        connectTimeoutMs: 10_000,
        keepaliveIntervalMs: 15_000,
        sshConfigFile: null,
        maxChannels: 8,
      },
    );
    await t.connect();
    try {
      const strings = hostileStrings(10_000, 11);
      for (const sudo of [false, true]) {
        const r = await t.exec(`printf '%s\\0' ${strings.map(shQuote).join(" ")}`, { sudo });
        assert.equal(r.code, 0, r.stderr);
        const back = Buffer.from(r.stdout, "utf8").toString().split("\0").slice(0, -1);
        assert.equal(back.length, strings.length);
        strings.forEach((s, i) => assert.equal(back[i], s, `#${i}`));
      }
    } finally {
      await t.close();
    }
  });

  test("one unreachable host among healthy ones: the others finish, recap shows it, exit 1", async () => {
    const d = project(join(REPO, ".lab/inventory.json"), `dead: { host: "ubuntu@127.0.0.1:1", groups: ["lab"] },`);
    // lock:status (status itself reports an unreachable host as a row and exits 0)
    const r = await flow(["run", "lock:status", "--hosts", "lab1,dead,lab2"], { cwd: d });
    assert.equal(r.code, 1);
    assert.match(r.stdout, /^lab1\s+ok/m);
    assert.match(r.stdout, /^lab2\s+ok/m);
    assert.match(r.stdout, /^dead\s+unreachable/m);
    assert.match(r.stdout, /dead: .*127\.0\.0\.1.*1/);
  });

  test("unknown host key: refused, zero commands run, the others go on; --accept-new-host-key records it", async () => {
    const work = mkdtempSync(join(tmpdir(), "flow-kh-"));
    const known = join(work, "known_hosts");
    const lab2Port = inv.hosts.lab2!.port;
    const lines = readFileSync(inv.knownHostsFile, "utf8")
      .split("\n")
      .filter((l) => l && !l.startsWith(`[127.0.0.1]:${lab2Port} `));
    writeFileSync(known, lines.join("\n") + "\n");
    const invCopy = JSON.parse(readFileSync(join(REPO, ".lab/inventory.json"), "utf8"));
    invCopy.knownHostsFile = known;
    for (const h of Object.values(invCopy.hosts) as { identityFile: string }[])
      h.identityFile = join(REPO, ".lab", h.identityFile.replace(/^.*\//, ""));
    writeFileSync(join(work, "inventory.json"), JSON.stringify(invCopy));
    const d = project(join(work, "inventory.json"));
    const marker = `/tmp/flow-marker-${process.pid}-${Date.now()}`;
    const r = await flow(["run", "exec", "--hosts", "lab1,lab2", "--", "touch", marker], { cwd: d });
    assert.equal(r.code, 1);
    assert.match(r.stdout, /^lab2\s+unreachable/m);
    assert.match(r.stdout, /--accept-new-host-key/);
    assert.match(r.stdout, /^lab1\s+ok/m);
    assert.equal(sshOn(inv, "lab2", `test -e ${marker} && echo yes || echo no`).trim(), "no");
    assert.equal(sshOn(inv, "lab1", `test -e ${marker} && echo yes || echo no`).trim(), "yes");

    const ok = await flow(["run", "exec", "--hosts", "lab2", "--accept-new-host-key", "--", "touch", marker], { cwd: d });
    assert.equal(ok.code, 0, ok.stdout);
    assert.match(readFileSync(known, "utf8"), new RegExp(`\\[127\\.0\\.0\\.1\\]:${lab2Port} ssh-ed25519 `));
    assert.equal(sshOn(inv, "lab2", `test -e ${marker} && echo yes || echo no`).trim(), "yes");

    // changed key: lab2's line now carries lab3's key
    const lab3Key = readFileSync(inv.knownHostsFile, "utf8")
      .split("\n")
      .find((l) => l.startsWith(`[127.0.0.1]:${inv.hosts.lab3!.port} `))!
      .split(" ")
      .slice(1)
      .join(" ");
    const edited = readFileSync(known, "utf8")
      .split("\n")
      .map((l) => (l.startsWith(`[127.0.0.1]:${lab2Port} `) ? `[127.0.0.1]:${lab2Port} ${lab3Key}` : l));
    writeFileSync(known, edited.join("\n"));
    const marker2 = marker + "-changed";
    const bad = await flow(["run", "exec", "--hosts", "lab1,lab2", "--accept-new-host-key", "--", "touch", marker2], { cwd: d });
    assert.equal(bad.code, 1);
    assert.match(bad.stdout, /^lab2\s+unreachable/m);
    assert.match(bad.stdout, /CHANGED|changed/);
    assert.equal(sshOn(inv, "lab2", `test -e ${marker2} && echo yes || echo no`).trim(), "no");
    assert.equal(sshOn(inv, "lab1", `test -e ${marker2} && echo yes || echo no`).trim(), "yes");
    copyFileSync(inv.knownHostsFile, known);
  });

  test("a secret never appears in output nor in ps on the host during the run", async () => {
    const token = "hf_" + Math.random().toString(36).slice(2) + Math.random().toString(36).slice(2);
    const running = flow(["run", "t:secret", "--hosts", "lab1", "--json"], { cwd: dir, env: { FLOW_TEST_TOKEN: token } });
    const seen: string[] = [];
    for (let i = 0; i < 20; i++) {
      seen.push(sshOn(inv, "lab1", "sudo -n ps -eo args; sudo -n cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n'"));
      await new Promise((r) => setTimeout(r, 150));
    }
    const r = await running;
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.ok(
      seen.some((s) => s.includes("sleep 3")),
      "the probe never saw the remote command running",
    );
    assert.ok(!seen.some((s) => s.includes(token)), "the token showed in ps or a process environment on the host");
    assert.ok(!r.stdout.includes(token) && !r.stderr.includes(token), "the token leaked into flow's output");
    assert.match(r.stdout, /token \*\*\* hashed to/);
  });

  test("Node runtime: installed into flow's own folder from the configured URL when too old, then ok", async () => {
    await resetHost("lab3");
    const first = await flow(["run", "t:count", "--hosts", "lab3", "--steps", "2", "--delay", "10"], { cwd: dir });
    assert.equal(first.code, 0, first.stdout + first.stderr);
    assert.match(first.stdout, /node runtime: changed \(installed node 2\d\.\d+\.\d+ \(had 18\.[\d.]+, need >= 20\.18\.0\)\)/);
    const second = await flow(["run", "t:count", "--hosts", "lab3", "--steps", "2", "--delay", "10"], { cwd: dir });
    assert.match(second.stdout, /node runtime: ok \(node 2\d\.[\d.]+ \(flow's own\)\)/);
  });

  test("dropped connection during a detached script: it finishes; a re-run re-attaches and reports the result", async () => {
    const token = "tok_" + Math.random().toString(36).slice(2);
    // an earlier run's events must not be mistaken for this one's
    sshOn(inv, "lab2", "rm -rf ~/.flow/runs/count");
    let out = "";
    const ac = new AbortController();
    const first = flow(["run", "t:count", "--hosts", "lab2", "--steps", "40", "--delay", "100"], {
      cwd: dir,
      env: { FLOW_TEST_TOKEN: token },
      onStdout: (s) => (out += s),
    });
    // once the script runs on the host, cut the SSH session from the host side (as a network drop would)
    for (let i = 0; i < 200 && !/"done":3,"total":40/.test(sshOn(inv, "lab2", "cat ~/.flow/runs/count/events.jsonl 2>/dev/null")); i++)
      await new Promise((r) => setTimeout(r, 100));
    spawnSync("docker", ["exec", inv.hosts.lab2!.data.container, "pkill", "-KILL", "-f", "sshd: ubuntu"]);
    const dropped = await first;
    void ac;
    assert.equal(dropped.code, 1, dropped.stdout);
    assert.match(dropped.stdout, /keeps running on the host: run the same command again to re-attach|lost|closed|reset/i);
    const again = await flow(["run", "t:count", "--hosts", "lab2", "--steps", "40", "--delay", "100"], {
      cwd: dir,
      env: { FLOW_TEST_TOKEN: token },
    });
    assert.equal(again.code, 0, again.stdout + again.stderr);
    assert.match(again.stdout, /re-attached|finished while nobody watched/);
    assert.match(again.stdout, /\{"counted":40,"sawSecret":true\}/);
  });

  test("lock contention between two flow processes on a lab host", async () => {
    const a = flow(["run", "t:count", "--hosts", "lab1", "--steps", "80", "--delay", "100"], { cwd: dir });
    for (let i = 0; i < 100 && !/held by/.test((await flow(["run", "lock:status", "--hosts", "lab1"], { cwd: dir })).stdout); i++)
      await new Promise((r) => setTimeout(r, 100));
    const b = await flow(["run", "t:count", "--hosts", "lab1", "--steps", "1"], { cwd: dir });
    assert.equal(b.code, 1);
    assert.match(b.stdout, /lab1 is locked by .*\(task t:count, pid \d+/);
    assert.equal((await a).code, 0);
  });
});

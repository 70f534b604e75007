// SshTransport against real OpenSSH servers started by the test on 127.0.0.1.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { after, before, describe, test } from "node:test";
import type { SshOptions, SshTarget } from "../../lib/hosts.ts";
import { SshTransport, type SshTransportTuning } from "../../lib/transport/ssh.ts";
import { UnreachableError } from "../../lib/transport/types.ts";
import { freePort, haveSshd, isRoot, keyFingerprint, keygen, startSshd, type Sshd } from "../support/sshd.ts";

const skip = haveSshd ? false : "no /usr/sbin/sshd (apt-get install openssh-server) — SSH integration tests skipped";

function transport(d: Sshd, over: Partial<SshTarget> = {}, opts: Partial<SshOptions> = {}, tuning: SshTransportTuning = {}): SshTransport {
  return new SshTransport(
    { label: "lab", address: d.host, port: d.port, user: d.user, identityFile: d.identityFile, ...over },
    {
      knownHostsFile: d.knownHostsFile,
      acceptNewHostKey: false,
      connectTimeoutMs: 20_000,
      keepaliveIntervalMs: 5_000,
      sshConfigFile: null,
      maxChannels: 8,
      ...opts,
    },
    tuning,
  );
}

async function refused(p: Promise<unknown>, reason: UnreachableError["reason"]): Promise<UnreachableError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof UnreachableError, `expected UnreachableError, got ${e}`);
    assert.equal(e.reason, reason, e.message);
    return e;
  }
  assert.fail(`expected refusal (${reason})`);
}

describe("SshTransport", { skip }, () => {
  let d: Sshd;
  let work: string;
  before(async () => {
    d = await startSshd();
    work = mkdtempSync(join(tmpdir(), "flow-ssh-test-"));
  });
  after(async () => {
    await d?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  // The same exec contract holds on both paths: persistent shell and one channel per command.
  for (const persistentShell of [true, false]) {
    describe(`exec (persistentShell=${persistentShell})`, () => {
      let t: SshTransport;
      before(async () => {
        t = transport(d, {}, {}, { persistentShell });
        await t.connect();
      });
      after(() => t.close());

      test("exit codes 0, 3, 255 and separate streams", async () => {
        for (const code of [0, 3, 255]) {
          const out: Buffer[] = [];
          const err: Buffer[] = [];
          const r = await t.exec(`echo out; echo err >&2; exit ${code}`, { onStdout: (b) => out.push(b), onStderr: (b) => err.push(b) });
          assert.equal(r.code, code);
          assert.equal(r.stdout, "out\n");
          assert.equal(r.stderr, "err\n");
          assert.equal(Buffer.concat(out).toString(), "out\n");
          assert.equal(Buffer.concat(err).toString(), "err\n");
        }
      });

      test("byte-exact output: no added newline, UTF-8, binary bytes", async () => {
        assert.equal((await t.exec("printf 'no newline'")).stdout, "no newline");
        assert.equal((await t.exec("printf ''")).stdout, "");
        assert.equal((await t.exec("printf 'h\\303\\251llo \\342\\234\\223\\n\\n'")).stdout, "héllo ✓\n\n");
        const chunks: Buffer[] = [];
        await t.exec("printf '\\001\\377\\000x\\r\\n\\033[1m'", { onStdout: (b) => chunks.push(b) });
        assert.deepEqual(Buffer.concat(chunks), Buffer.from([1, 255, 0, 0x78, 13, 10, 27, 0x5b, 0x31, 0x6d]));
        const big = await t.exec("head -c 300000 /dev/zero | tr '\\0' 'a'");
        assert.equal(big.stdout.length, 300000);
      });

      test("state does not leak between commands; syntax errors are contained", async () => {
        await t.exec("cd /tmp; FOO=1; export BAR=2; set -e");
        const r = await t.exec('pwd; echo "${FOO:-unset} ${BAR:-unset}"');
        assert.notEqual(r.stdout.split("\n")[0], "/tmp");
        assert.match(r.stdout, /unset unset/);
        const bad = await t.exec("if then fi (");
        assert.notEqual(bad.code, 0);
        assert.equal((await t.exec("echo still")).stdout, "still\n");
      });

      test("stdin is delivered (string, Buffer, Readable); no stdin never hangs", async () => {
        assert.equal((await t.exec("cat", { stdin: "from string" })).stdout, "from string");
        assert.equal((await t.exec("wc -c", { stdin: Buffer.alloc(70000, 1) })).stdout.trim(), "70000");
        assert.equal((await t.exec("cat", { stdin: Readable.from(["a", "b", "c"]) })).stdout, "abc");
        assert.equal((await t.exec("cat; echo done")).stdout, "done\n");
      });

      test("timeoutMs stops the command, the connection stays usable", async () => {
        const t0 = Date.now();
        const r = await t.exec("sleep 10", { timeoutMs: 300 });
        assert.equal(r.code, null);
        assert.equal(r.signal, "timeout");
        assert.ok(Date.now() - t0 < 5000);
        assert.equal((await t.exec("echo ok")).stdout, "ok\n");
      });
    });
  }

  test("20 concurrent execs on one connection; channels capped at 8", async () => {
    const t = transport(d);
    try {
      await t.connect();
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => t.exec(`sleep 0.3; echo ${i}`, i % 2 ? { stdin: "" } : {})));
      results.forEach((r, i) => {
        assert.equal(r.code, 0);
        assert.equal(r.stdout, `${i}\n`);
      });
      assert.ok(t.channels.peak <= 8, `peak ${t.channels.peak}`);
      assert.ok(t.channels.peak >= 4, `expected real concurrency, peak ${t.channels.peak}`);
    } finally {
      await t.close();
    }
  });

  test("unknown host key: refused, nothing runs; accepted and recorded with acceptNewHostKey", async () => {
    const kh = join(work, "kh-unknown", "known_hosts");
    const marker = join(work, "ran-marker");
    const t = transport(d, {}, { knownHostsFile: kh });
    const before = d.log().split("Accepted publickey").length;
    const e = await refused(t.exec(`touch ${marker}`), "hostkey-unknown");
    assert.match(e.message, /--accept-new-host-key/);
    assert.match(e.message, /127\.0\.0\.1/);
    assert.ok(!existsSync(marker), "no command may run on a refused host");
    assert.equal(d.log().split("Accepted publickey").length, before, "no login happened");
    assert.ok(!existsSync(kh));

    const t2 = transport(d, {}, { knownHostsFile: kh, acceptNewHostKey: true });
    try {
      assert.equal((await t2.exec("echo hi")).stdout, "hi\n");
    } finally {
      await t2.close();
    }
    assert.equal(readFileSync(kh, "utf8"), d.hostKeyLine + "\n");
    assert.equal(statSync(kh).mode & 0o777, 0o600);
    // now known: a plain connection works
    const t3 = transport(d, {}, { knownHostsFile: kh });
    await t3.connect();
    await t3.close();
  });

  test("changed host key: refused loudly with fingerprint, file and line", async () => {
    const other = join(work, "other_host_key");
    keygen(other);
    const pub = readFileSync(other + ".pub", "utf8").split(" ");
    const kh = join(work, "kh-changed");
    writeFileSync(kh, `# first line\n[127.0.0.1]:${d.port} ${pub[0]} ${pub[1]}\n`);
    const marker = join(work, "ran-marker-2");
    const e = await refused(transport(d, {}, { knownHostsFile: kh, acceptNewHostKey: true }).exec(`touch ${marker}`), "hostkey-changed");
    assert.match(e.message, /HOST KEY CHANGED/);
    assert.match(e.message, /SHA256:[A-Za-z0-9+/]{43}/);
    assert.ok(e.message.includes(`${kh}:2`), e.message);
    assert.match(e.message, /re-provisioned|intercept/);
    assert.ok(!existsSync(marker));
    assert.equal(readFileSync(kh, "utf8").split("\n").length, 3, "accept-new never overwrites a changed key");
  });

  test("a known host presenting a key of another type: refused even with acceptNewHostKey, known_hosts untouched", async () => {
    // this sshd offers only its ed25519 key; known_hosts has only an ecdsa key for it
    assert.match(d.hostKeyLine, / ssh-ed25519 /);
    const old = join(work, "old_ecdsa_host_key");
    keygen(old, "old-host", "ecdsa");
    const pub = readFileSync(old + ".pub", "utf8").split(" ");
    const kh = join(work, "kh-other-type");
    const text = `# the box as it was\n[127.0.0.1]:${d.port} ${pub[0]} ${pub[1]}\n`;
    writeFileSync(kh, text);
    const marker = join(work, "ran-marker-3");
    const logins = d.log().split("Accepted publickey").length;
    const first = transport(d, {}, { knownHostsFile: kh, acceptNewHostKey: true });
    const e = await refused(first.exec(`touch ${marker}`), "hostkey-changed").finally(() => first.close());
    assert.match(e.message, /HOST KEY CHANGED/);
    assert.ok(e.message.includes(`presents ssh-ed25519 ${keyFingerprint(d.hostKeyFile + ".pub")}`), e.message);
    assert.ok(e.message.includes(`${kh}:2 holds ecdsa-sha2-nistp256 ${keyFingerprint(old + ".pub")}`), e.message);
    const forget = `ssh-keygen -R '[127.0.0.1]:${d.port}' -f ${kh}`;
    assert.ok(e.message.includes(forget), e.message);
    assert.ok(!existsSync(marker), "no command may run on a refused host");
    assert.equal(d.log().split("Accepted publickey").length, logins, "no login happened");
    assert.equal(readFileSync(kh, "utf8"), text, "known_hosts must not change");

    // the advice works: once the old key is forgotten the host is new, and accept-new records it
    execFileSync("sh", ["-c", forget], { stdio: "ignore" });
    const t = transport(d, {}, { knownHostsFile: kh, acceptNewHostKey: true });
    try {
      assert.equal((await t.exec("echo hi")).stdout, "hi\n");
    } finally {
      await t.close();
    }
    assert.ok(readFileSync(kh, "utf8").includes(d.hostKeyLine), "the new key is recorded");
  });

  test("auth failure names host and port", async () => {
    const stranger = join(work, "stranger");
    keygen(stranger);
    const e = await refused(transport(d, { identityFile: stranger }).connect(), "auth");
    assert.ok(e.message.includes(`127.0.0.1:${d.port}`), e.message);
  });

  test("connect timeout against a socket that never speaks", async () => {
    const socks: Socket[] = [];
    const silent: Server = createServer((s) => socks.push(s));
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
    const port = (silent.address() as { port: number }).port;
    try {
      const t0 = Date.now();
      const e = await refused(transport(d, { port }, { connectTimeoutMs: 700 }).connect(), "timeout");
      const took = Date.now() - t0;
      assert.ok(took >= 600 && took < 3000, `took ${took} ms`);
      assert.ok(e.message.includes(`:${port}`), e.message);
    } finally {
      socks.forEach((s) => s.destroy());
      silent.close();
    }
  });

  test("connection refused is a network error naming host and port", async () => {
    const port = await freePort();
    const e = await refused(transport(d, { port }).connect(), "network");
    assert.match(e.message, /ECONNREFUSED/);
    assert.ok(e.message.includes(`127.0.0.1:${port}`), e.message);
  });

  test("~/.ssh/config alias and ProxyJump through a second sshd", async () => {
    const jump = await startSshd();
    try {
      const kh = join(work, "kh-jump");
      writeFileSync(kh, `${d.hostKeyLine}\n${jump.hostKeyLine}\n`);
      const cfg = join(work, "ssh_config");
      writeFileSync(
        cfg,
        [
          "Host jumpbox",
          `  HostName 127.0.0.1`,
          `  Port ${jump.port}`,
          `  User ${jump.user}`,
          `  IdentityFile ${jump.identityFile}`,
          "Host gpu-*",
          "  HostName 127.0.0.1",
          `  Port=${d.port}`,
          `  User ${d.user}`,
          `  IdentityFile ${d.identityFile}`,
          "Host gpu-behind",
          "  ProxyJump jumpbox",
          "",
        ].join("\n"),
      );
      const opts = { knownHostsFile: kh, sshConfigFile: cfg };
      const mk = (address: string) =>
        new SshTransport(
          { label: address, address },
          { ...opts, acceptNewHostKey: false, connectTimeoutMs: 20_000, keepaliveIntervalMs: 5_000, maxChannels: 8 },
        );

      const direct = mk("gpu-direct");
      assert.equal((await direct.exec("echo direct")).stdout, "direct\n");
      assert.equal(direct.user, d.user);
      await direct.close();

      const jumpLogins = jump.log().split("Accepted publickey").length;
      const behind = mk("gpu-behind");
      assert.equal((await behind.exec("echo behind; exit 4")).code, 4);
      await behind.close();
      assert.equal(jump.log().split("Accepted publickey").length, jumpLogins + 1, "went through the jump host");

      // a jump host with an unknown key stops the chain before the target
      writeFileSync(kh, `${d.hostKeyLine}\n`);
      const e = await refused(mk("gpu-behind").connect(), "hostkey-unknown");
      assert.ok(e.message.includes(String(jump.port)), e.message);
    } finally {
      await jump.stop();
    }
  });

  test("login user: ~/.ssh/config's User beats the provider's default, the host's own user beats ~/.ssh/config", async () => {
    const cfg = join(work, "ssh_config_user");
    const alias = (name: string, user: string) => [
      `Host ${name}`,
      "  HostName 127.0.0.1",
      `  Port ${d.port}`,
      `  User ${user}`,
      `  IdentityFile ${d.identityFile}`,
    ];
    writeFileSync(cfg, [...alias("cfg-user", d.user), ...alias("cfg-wrong-user", "flow-no-such-user"), ""].join("\n"));
    const mk = (target: Partial<SshTarget> & { address: string }) =>
      new SshTransport(
        { label: target.address, ...target },
        {
          knownHostsFile: d.knownHostsFile,
          sshConfigFile: cfg,
          acceptNewHostKey: false,
          connectTimeoutMs: 20_000,
          keepaliveIntervalMs: 5_000,
          maxChannels: 8,
        },
      );

    const byConfig = mk({ address: "cfg-user", defaultUser: "flow-no-such-user" });
    try {
      assert.equal(byConfig.user, d.user, "before connecting, too");
      assert.equal((await byConfig.exec("id -un")).stdout, `${d.user}\n`);
      assert.equal(byConfig.user, d.user);
    } finally {
      await byConfig.close();
    }
    const explicit = mk({ address: "cfg-wrong-user", user: d.user, defaultUser: "flow-no-such-user" });
    try {
      assert.equal((await explicit.exec("id -un")).stdout, `${d.user}\n`);
    } finally {
      await explicit.close();
    }
    // and the one ssh_config names is really who logs in: an unknown user is refused
    const e = await refused(mk({ address: "cfg-wrong-user", defaultUser: d.user }).connect(), "auth");
    assert.ok(e.message.includes("flow-no-such-user@127.0.0.1"), e.message);
  });

  describe("files", () => {
    let t: SshTransport;
    before(async () => {
      t = transport(d);
      await t.connect();
    });
    after(() => t.close());

    test("upload is atomic, applies mode, second upload sends nothing", async () => {
      const target = join(work, "up", "sub", "file.bin");
      const data = Buffer.from("hello upload\n");
      const r1 = await t.upload(data, target, { mode: 0o640 });
      assert.deepEqual(r1, { changed: true, bytesSent: data.length });
      assert.deepEqual(readFileSync(target), data);
      assert.equal(statSync(target).mode & 0o777, 0o640);
      assert.deepEqual(await t.upload(data, target, { mode: 0o640 }), { changed: false, bytesSent: 0 });
      const local = join(work, "local-src");
      writeFileSync(local, "from a local path");
      assert.deepEqual(await t.upload(local, target), { changed: true, bytesSent: 17 });
      assert.equal(readFileSync(target, "utf8"), "from a local path");
      assert.deepEqual(readdirSync(join(work, "up", "sub")), ["file.bin"], "no temp left behind");
    });

    test("upload interrupted half-way leaves the old file intact", async () => {
      const dir = join(work, "interrupt");
      mkdirSync(dir);
      const target = join(dir, "model.bin");
      writeFileSync(target, "old content");
      const big = Buffer.alloc(20 * 1024 * 1024, 7);
      const t2 = transport(d);
      await t2.connect();
      const up = t2.upload(big, target);
      // wait until the temp file is growing on the (local) host, then cut the TCP connection
      for (let i = 0; ; i++) {
        const tmp = readdirSync(dir).find((n) => n.includes(".flow-tmp-"));
        if (tmp && statSync(join(dir, tmp)).size > 1024 * 1024) break;
        if (i > 2000) assert.fail("upload never started");
        await new Promise((r) => setTimeout(r, 5));
      }
      (t2 as unknown as { conn: { clients: { _sock: Socket }[] } }).conn.clients.at(-1)!._sock.destroy();
      await assert.rejects(up);
      assert.equal(readFileSync(target, "utf8"), "old content");
      // the same transport reconnects and finishes the job
      assert.deepEqual(await t2.upload(big, target), { changed: true, bytesSent: big.length });
      assert.deepEqual(readFileSync(target), big);
      await t2.close();
    });

    test("download round-trip", async () => {
      const remote = join(work, "dl-src.bin");
      const data = Buffer.from(Array.from({ length: 100_000 }, (_, i) => (i * 31) % 256));
      await t.upload(data, remote);
      const local = join(work, "dl-out", "copy.bin");
      mkdirSync(join(work, "dl-out"));
      await t.download(remote, local);
      assert.deepEqual(readFileSync(local), data);
      assert.deepEqual(readdirSync(join(work, "dl-out")), ["copy.bin"]);
      await assert.rejects(t.download(join(work, "missing"), local));
      assert.deepEqual(readFileSync(local), data, "failed download keeps the previous file");
    });
  });

  describe("non-root user with sudo", () => {
    const sudoOk = isRoot && existsSync("/usr/bin/sudo");
    let u: Sshd | undefined;
    let t: SshTransport;
    before(async () => {
      if (!sudoOk) return;
      ensureFlowtestUser();
      u = await startSshd({ users: ["flowtest"] });
      t = transport(u);
      await t.connect();
    });
    after(async () => {
      await t?.close();
      await u?.stop();
    });

    const skipSudo = !sudoOk && "needs root and /usr/bin/sudo to create a NOPASSWD user";
    test("sudo wraps commands; plain runs as the login user", { skip: skipSudo }, async () => {
      assert.equal(t.user, "flowtest");
      assert.equal((await t.exec("id -un")).stdout, "flowtest\n");
      assert.equal((await t.exec("id -un", { sudo: true })).stdout, "root\n");
      assert.equal((await t.exec("id -un; cat", { sudo: true, stdin: "x" })).stdout, "root\nx");
      assert.equal((await t.exec('echo "it\'s $(id -u)"', { sudo: true })).stdout, "it's 0\n");
    });

    test("upload into a root-only folder goes through sudo", { skip: !sudoOk && "needs root and /usr/bin/sudo" }, async () => {
      const dir = mkdtempSync(join(tmpdir(), "flow-rootonly-"));
      try {
        const target = join(dir, "app.conf");
        const r = await t.upload(Buffer.from("secret=1\n"), target, { mode: 0o600, sudo: true });
        assert.deepEqual(r, { changed: true, bytesSent: 9 });
        assert.equal(readFileSync(target, "utf8"), "secret=1\n");
        const st = statSync(target);
        assert.equal(st.uid, 0);
        assert.equal(st.mode & 0o777, 0o600);
        assert.deepEqual(await t.upload(Buffer.from("secret=1\n"), target, { mode: 0o600, sudo: true }), { changed: false, bytesSent: 0 });
        assert.deepEqual(readdirSync(dir), ["app.conf"]);
        const home = (await t.exec('printf %s "$HOME"')).stdout;
        assert.ok(!readdirSync(home).some((n) => n.includes("flow-tmp")), "staged copy removed");
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});

/** `flowtest`: NOPASSWD sudo, unlocked (sshd without PAM refuses locked accounts). */
function ensureFlowtestUser(): void {
  try {
    execFileSync("id", ["flowtest"], { stdio: "ignore" });
  } catch {
    execFileSync("useradd", ["-m", "-s", "/bin/bash", "flowtest"]);
  }
  execFileSync("usermod", ["-p", "*", "flowtest"]);
  if (!existsSync("/etc/sudoers.d/flowtest")) {
    writeFileSync("/etc/sudoers.d/flowtest", "flowtest ALL=(ALL) NOPASSWD:ALL\n", { mode: 0o440 });
  }
}

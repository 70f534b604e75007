import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import {
  expandGlob,
  hostPatternsMatch,
  loadSshConfig,
  parseHostSpec,
  parseLine,
  resolveSshConfig,
} from "../../lib/transport/ssh-config.ts";

const opts = { home: "/home/me", localUser: "me" };

test("parseLine: Key value, Key=value, quotes, comments, case", () => {
  assert.deepEqual(parseLine("  HostName example.com"), { key: "hostname", args: ["example.com"] });
  assert.deepEqual(parseLine("Port=2222"), { key: "port", args: ["2222"] });
  assert.deepEqual(parseLine("Port = 2222"), { key: "port", args: ["2222"] });
  assert.deepEqual(parseLine('IdentityFile "~/my keys/id" # mine'), { key: "identityfile", args: ["~/my keys/id"] });
  assert.equal(parseLine("# comment"), null);
  assert.equal(parseLine("   "), null);
});

test("host patterns: *, ?, negation, several per line", () => {
  assert.ok(hostPatternsMatch(["gpu*"], "gpu1"));
  assert.ok(hostPatternsMatch(["gpu?"], "GPU1"));
  assert.ok(!hostPatternsMatch(["gpu?"], "gpu12"));
  assert.ok(hostPatternsMatch(["web", "gpu*"], "gpu1"));
  assert.ok(!hostPatternsMatch(["gpu*", "!gpu2"], "gpu2"));
  assert.ok(hostPatternsMatch(["gpu*", "!gpu2"], "gpu3"));
  assert.ok(!hostPatternsMatch(["!gpu2"], "gpu3"), "a negation alone matches nothing");
});

test("first value wins, IdentityFile accumulates, %h and ~ expand", () => {
  const text = `
# global defaults come last, as in a real config
Host gpu*
  HostName %h.example.com
  User ubuntu
  IdentityFile ~/.ssh/gpu_key

Host gpu1 gpu2
  Port 2201

Host *
  User nobody
  Port 22
  IdentityFile ~/.ssh/id_ed25519
  ProxyJump none
`;
  const r = resolveSshConfig(text, "gpu1", opts);
  assert.equal(r.hostName, "gpu1.example.com");
  assert.equal(r.user, "ubuntu");
  assert.equal(r.port, 2201);
  assert.deepEqual(r.identityFiles, ["/home/me/.ssh/gpu_key", "/home/me/.ssh/id_ed25519"]);
  assert.deepEqual(r.proxyJump, []);

  const other = resolveSshConfig(text, "db", opts);
  assert.equal(other.hostName, "db");
  assert.equal(other.user, "nobody");
  assert.equal(other.port, 22);
});

test("keywords are case-insensitive; Key=value form", () => {
  const r = resolveSshConfig("HOST box\n  hostname=10.0.0.5\n  USER=root\n  port=2022\n", "box", opts);
  assert.deepEqual([r.hostName, r.user, r.port], ["10.0.0.5", "root", 2022]);
});

test("ProxyJump comma list, none, and unset", () => {
  const text = "Host a\n  ProxyJump j1,user@j2:2222\nHost b\n  ProxyJump none\n";
  assert.deepEqual(resolveSshConfig(text, "a", opts).proxyJump, ["j1", "user@j2:2222"]);
  assert.deepEqual(resolveSshConfig(text, "b", opts).proxyJump, []);
  assert.equal(resolveSshConfig(text, "c", opts).proxyJump, undefined);
});

test("unknown Match blocks do not apply; Match all does", () => {
  const text = 'Match exec "true"\n  User wrong\nMatch all\n  Port 2000\n';
  const r = resolveSshConfig(text, "x", opts);
  assert.equal(r.user, undefined);
  assert.equal(r.port, 2000);
});

test("Include through a callback, only inside matching blocks", () => {
  const files: Record<string, string> = { "conf.d/*": "Host x\n  User included\n", other: "Port 9999\n" };
  const include = (p: string) => (files[p] ? [files[p]] : []);
  const text = "Include conf.d/*\nHost y\n  Include other\nHost *\n  User fallback\n";
  assert.equal(resolveSshConfig(text, "x", { ...opts, include }).user, "included");
  assert.equal(resolveSshConfig(text, "x", { ...opts, include }).port, undefined);
  assert.equal(resolveSshConfig(text, "y", { ...opts, include }).port, 9999);
});

test("loader: file, relative Include with glob from ~/.ssh, missing file", () => {
  const home = mkdtempSync(join(tmpdir(), "flow-sshcfg-"));
  try {
    mkdirSync(join(home, ".ssh", "conf.d"), { recursive: true });
    writeFileSync(join(home, ".ssh", "conf.d", "10-gpu.conf"), "Host gpu1\n  HostName 1.2.3.4\n  User ubuntu\n");
    writeFileSync(join(home, ".ssh", "conf.d", "20-other.conf"), "Host gpu1\n  User second\n  Port 2222\n");
    writeFileSync(join(home, ".ssh", "config"), "Include conf.d/*.conf\nHost *\n  IdentityFile ~/.ssh/k\n");
    const r = loadSshConfig("gpu1", join(home, ".ssh", "config"), home);
    assert.equal(r.hostName, "1.2.3.4");
    assert.equal(r.user, "ubuntu");
    assert.equal(r.port, 2222);
    assert.deepEqual(r.identityFiles, [join(home, ".ssh", "k")]);
    assert.equal(expandGlob(join(home, ".ssh", "conf.d", "*.conf")).length, 2);
    assert.equal(loadSshConfig("gpu1", join(home, "nope"), home).hostName, "gpu1");
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});

test("parseHostSpec", () => {
  assert.deepEqual(parseHostSpec("root@1.2.3.4:2222"), { user: "root", host: "1.2.3.4", port: 2222 });
  assert.deepEqual(parseHostSpec("gpu1"), { user: undefined, host: "gpu1", port: undefined });
  assert.deepEqual(parseHostSpec("ssh://u@[::1]:22"), { user: "u", host: "::1", port: 22 });
  assert.deepEqual(parseHostSpec("fe80::1"), { user: undefined, host: "fe80::1", port: undefined });
});

// Who logs in: the flowfile's user, then ~/.ssh/config's User, then the provider's default.
test("login user: ssh_config User beats the provider's default; the flowfile's user beats ssh_config", async () => {
  const { validateFlow, resolveHosts } = await import("../../lib/flowfile/load.ts");
  const { sshOptionsFor } = await import("../../lib/runner.ts");
  const { SshTransport } = await import("../../lib/transport/ssh.ts");
  const { datacrunch } = await import("../../providers/index.ts");
  const dir = mkdtempSync(join(tmpdir(), "flow-login-user-"));
  try {
    const cfg = join(dir, "ssh_config");
    writeFileSync(cfg, "Host 5.6.7.8 gpu-alias\n  User alice\nHost *\n  Port 2222\n");
    const config = validateFlow(
      {
        providers: [datacrunch()],
        settings: { sshConfigFile: cfg, knownHostsFile: join(dir, "known_hosts") },
        hosts: {
          dc: { host: "5.6.7.8", provider: "datacrunch" },
          alias: { host: "gpu-alias", provider: "datacrunch" },
          explicit: { host: "bob@5.6.7.8", provider: "datacrunch" },
          field: { host: "5.6.7.8", user: "carol", provider: "datacrunch" },
          plain: { host: "9.9.9.9", provider: "datacrunch" },
        },
      },
      "flowfile.ts",
    );
    const flow = { config, projectDir: dir, file: null, hosts: resolveHosts(config, dir) };
    const userOf = (name: string) => {
      const host = flow.hosts.find((h) => h.name === name)!;
      return new SshTransport({ ...host, label: host.name }, sshOptionsFor({ flow, acceptNewHostKey: false }, host)).user;
    };
    assert.equal(userOf("dc"), "alice", "ssh_config's User wins over the provider's default (root)");
    assert.equal(userOf("alias"), "alice");
    assert.equal(userOf("explicit"), "bob", "user@ in the flowfile's host wins over ssh_config");
    assert.equal(userOf("field"), "carol", "the flowfile's user wins over ssh_config");
    assert.equal(userOf("plain"), "root", "no User in ssh_config: the provider's default");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("loginUser: one order (host's user, ssh_config's User, provider's default, local user); %r follows it", async () => {
  const { loginUser } = await import("../../lib/hosts.ts");
  const local = () => "me";
  assert.equal(loginUser({ user: "bob", defaultUser: "root" }, { user: "alice" }, local), "bob");
  assert.equal(loginUser({ defaultUser: "root" }, { user: "alice" }, local), "alice");
  assert.equal(loginUser({ defaultUser: "root" }, {}, local), "root");
  assert.equal(loginUser({ defaultUser: "root" }, undefined, local), "root");
  assert.equal(loginUser({}, undefined, local), "me");
  const text = "Host a\n  IdentityFile ~/.ssh/%r_key\nHost b\n  User alice\n  IdentityFile ~/.ssh/%r_key\n";
  const key = (alias: string, login?: { user?: string; defaultUser?: string }) =>
    resolveSshConfig(text, alias, { ...opts, login }).identityFiles[0];
  assert.equal(key("a"), "/home/me/.ssh/me_key");
  assert.equal(key("a", { defaultUser: "root" }), "/home/me/.ssh/root_key");
  assert.equal(key("b", { defaultUser: "root" }), "/home/me/.ssh/alice_key");
  assert.equal(key("b", { user: "bob", defaultUser: "root" }), "/home/me/.ssh/bob_key");
});

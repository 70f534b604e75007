import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadFlow, validateFlow, FlowfileError } from "../../lib/flowfile/load.ts";
import { selectHosts, parseHostString, SelectError } from "../../lib/select.ts";
import { loginUser } from "../../lib/hosts.ts";

const root = new URL("../..", import.meta.url).pathname;

test("a malformed flowfile names the key path and what was expected", () => {
  assert.throws(
    () => validateFlow({ hosts: { gpu1: { host: "1.2.3.4", port: "22a" } } }, "flowfile.ts"),
    (e: Error) => e instanceof FlowfileError && e.message.includes(`hosts.gpu1.port: expected a number, got "22a"`),
  );
  assert.throws(() => validateFlow({ hostz: {} }, "f"), /unknown key "hostz"/);
  assert.throws(
    () => validateFlow({ hosts: { gpu1: { host: "x", groups: "gpus" } } }, "f"),
    /hosts\.gpu1\.groups: expected an array, got "gpus"/,
  );
  assert.throws(() => validateFlow({ plugins: [{}] }, "f"), /plugins\.0: expected a plugin/);
});

test("flowfile.ts is loaded with jiti; inventories add hosts; missing flowfile falls back", async () => {
  const dir = mkdtempSync(join(tmpdir(), "flow-ff-"));
  writeFileSync(
    join(dir, "flowfile.ts"),
    `import { defineFlow } from ${JSON.stringify(join(root, "lib/index.ts"))};
     const port: number = 2222;
     export default defineFlow({
       hosts: {
         gpu1: { host: "ubuntu@10.0.0.5:" + port, groups: ["gpus"] },
         gpu2: { host: "root@10.0.0.6", port: 22, groups: ["gpus", "eu"] },
       },
       inventory: ["inv/lab.json", "missing.json"],
     });`,
  );
  mkdirSync(join(dir, "inv"));
  const lab1Entry = { address: "127.0.0.1", port: 22201, user: "ubuntu", identityFile: "id", groups: ["lab"] };
  writeFileSync(join(dir, "inv/lab.json"), JSON.stringify({ knownHostsFile: "kh", hosts: { lab1: lab1Entry } }));
  const flow = await loadFlow({ cwd: dir, fallback: () => ({}) });
  assert.equal(flow.file, join(dir, "flowfile.ts"));
  const gpu1 = flow.hosts.find((h) => h.name === "gpu1")!;
  assert.deepEqual([gpu1.user, gpu1.address, gpu1.port], ["ubuntu", "10.0.0.5", 2222]);
  const lab1 = flow.hosts.find((h) => h.name === "lab1")!;
  const { datacrunch } = await import("../../providers/index.ts");
  const withProvider = validateFlow(
    {
      providers: [datacrunch()],
      hosts: { dc: { host: "5.6.7.8", provider: "datacrunch" }, mine: { host: "me@5.6.7.9", provider: "datacrunch" } },
    },
    "f",
  );
  const { resolveHosts } = await import("../../lib/flowfile/load.ts");
  const resolved = resolveHosts(withProvider, dir);
  const users = resolved.map((h) => [h.user, h.defaultUser]);
  assert.deepEqual(
    users,
    [
      [undefined, "root"],
      ["me", "root"],
    ],
    "the host's own user and its provider's are kept apart",
  );
  assert.deepEqual(
    resolved.map((h) => loginUser(h)),
    ["root", "me"],
    "the provider's login user fills in, an explicit one wins",
  );
  assert.equal(lab1.identityFile, join(dir, "inv/id"));
  assert.equal(lab1.knownHostsFile, join(dir, "inv/kh"));
  assert.deepEqual(
    selectHosts(flow.hosts, { hosts: "gpus" }).map((h) => h.name),
    ["gpu1", "gpu2"],
  );
  assert.deepEqual(
    selectHosts(flow.hosts, { hosts: "all" }).map((h) => h.name),
    ["gpu1", "gpu2", "lab1"],
  );
  assert.deepEqual(
    selectHosts(flow.hosts, { hosts: "eu,lab1,gpu2" }).map((h) => h.name),
    ["gpu2", "lab1"],
  );
  assert.throws(() => selectHosts(flow.hosts, { hosts: "nope" }), /--hosts nope: no host or group of that name \(known: /);

  const empty = mkdtempSync(join(tmpdir(), "flow-ff-"));
  const fallback = await loadFlow({ cwd: empty, fallback: () => ({ hosts: { a: { host: "x" } } }) });
  assert.equal(fallback.file, null);
  assert.equal(fallback.hosts[0]!.name, "a");
});

test("a flowfile that throws or is not valid names the file", async () => {
  const dir = mkdtempSync(join(tmpdir(), "flow-ff-"));
  writeFileSync(join(dir, "flowfile.ts"), `export default { hosts: { gpu1: { host: "h", port: "22a" } } };`);
  await assert.rejects(
    loadFlow({ cwd: dir, fallback: () => ({}) }),
    /flowfile\.ts is not valid:\nhosts\.gpu1\.port: expected a number, got "22a"/,
  );
  writeFileSync(join(dir, "flowfile.ts"), `throw new Error("boom")`);
  await assert.rejects(loadFlow({ cwd: dir, fallback: () => ({}) }), /flowfile\.ts: cannot load: boom/);
});

test("ad-hoc --host strings", () => {
  assert.deepEqual(parseHostString("ubuntu@10.0.0.5"), { user: "ubuntu", address: "10.0.0.5", port: undefined });
  assert.deepEqual(parseHostString("10.0.0.5:2222"), { user: undefined, address: "10.0.0.5", port: 2222 });
  assert.deepEqual(parseHostString("root@[::1]:22"), { user: "root", address: "::1", port: 22 });
  assert.throws(() => parseHostString("h:22a"), SelectError);
  assert.throws(() => parseHostString("a;rm -rf /"), SelectError);
  assert.equal(selectHosts([], { host: "ubuntu@10.0.0.5:2200" })[0]!.port, 2200);
  assert.equal(selectHosts([], { host: "local" })[0]!.local, true);
});

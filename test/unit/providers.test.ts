// Providers as one definition each: the profile gives the loader's and dataRootOf's defaults and the
// setup task; provider:* works over whichever registered providers have a cloud API; the launch and
// terminate decisions are pure functions of what the provider said.
import { test } from "node:test";
import assert from "node:assert/strict";
import { validateFlow } from "../../lib/flowfile/load.ts";
import type { TaskContext } from "../../lib/task.ts";
import { builtinProviders, datacrunch, defineProvider, lambda, type CloudApi, type CloudInstance } from "../../providers/index.ts";
import { cloudProviders, openCloud } from "../../providers/cloud/clouds.ts";
import { planLaunch } from "../../providers/cloud/up.ts";
import { planTerminate } from "../../providers/cloud/down.ts";

test("a provider's profile is its one source: defaults for the loader and dataRootOf, the setup task", () => {
  const l = lambda();
  assert.deepEqual(l.defaults, { user: "ubuntu", dataRoot: "/home/ubuntu" });
  assert.deepEqual(
    l.tasks.map((t) => t.name),
    ["setup:lambda"],
  );
  assert.equal(l.setup, l.tasks[0]);
  const d = datacrunch({ volume: "/dev/vdc", dataRoot: "/data" });
  assert.deepEqual(d.defaults, { user: "root", dataRoot: "/data", volume: "/dev/vdc" });
  assert.deepEqual(d.profile, { name: "datacrunch", title: "DataCrunch", user: "root", dataRoot: "/data", volume: { device: "/dev/vdc" } });
  const opts = d.setup.options!.parse({});
  assert.equal(opts.volume, "/dev/vdc");
  assert.deepEqual(
    builtinProviders.map((p) => p().name),
    ["lambda", "datacrunch"],
  );
});

const box = (over: Partial<CloudInstance> = {}): CloudInstance => ({
  id: "i-1",
  name: "gpu-a",
  status: "running",
  ip: "10.0.0.1",
  type: "t1",
  region: "r1",
  ...over,
});

function fakeCloud(log: string[]): CloudApi {
  return {
    title: "Acme",
    secrets: ["ACME_TOKEN"],
    ending: { verb: "release", done: "released" },
    help: { type: "a1", region: "zone (Acme)", sshKey: "name (Acme)", image: "image (Acme)" },
    ready: (i) => i.status === "running",
    gone: (i) => i.status === "gone",
    deleted: (i) => i.status === "gone",
    connect(secrets) {
      log.push(`connect ${secrets.ACME_TOKEN}`);
      return {
        types: async () => [],
        instances: async () => [box()],
        instance: async () => box(),
        launch: async () => "i-2",
        terminate: async () => undefined,
      };
    },
  };
}

test("provider:* works over the flowfile's providers that have a cloud API, a new one included; none: the built-ins", async () => {
  const log: string[] = [];
  const acme = defineProvider({
    name: "acme",
    description: "Acme GPUs",
    profile: { title: "Acme", user: "admin", dataRoot: "/srv/acme" },
    cloud: fakeCloud(log),
  });
  const flow = validateFlow({ providers: [acme(), lambda()] }, "f");
  assert.deepEqual(
    cloudProviders(flow).map((p) => p.name),
    ["acme", "lambda"],
  );
  assert.deepEqual(
    cloudProviders(validateFlow({}, "f")).map((p) => p.name),
    ["lambda", "datacrunch"],
  );

  const ctx = (secrets: Record<string, string>) => ({ flow, secrets, log: () => undefined }) as unknown as TaskContext;
  assert.throws(() => openCloud(ctx({}), "acme", "provider:up"), /provider:up --provider acme needs ACME_TOKEN: set it in the environment/);
  assert.throws(() => openCloud(ctx({}), "datacrunch", "provider:up"), /no provider with a cloud API is named so \(acme, lambda\)/);
  const { provider, session } = openCloud(ctx({ ACME_TOKEN: "t0k" }), "acme", "provider:up");
  assert.equal(provider.profile.user, "admin");
  assert.deepEqual(await session.instances(), [box()]);
  assert.deepEqual(log, ["connect t0k"]);
});

test("planLaunch: pick a running box of that name up, else launch; a dry run says where the type has capacity", () => {
  const want = { provider: "acme", name: "gpu-a", type: "t1", region: "r1" };
  assert.deepEqual(planLaunch(want, { running: box() }), { action: "reuse", id: "i-1", note: "already running as i-1" });
  const moved = planLaunch(want, { running: box({ region: "r2" }) });
  assert.equal(moved.action === "reuse" && moved.warning, "gpu-a already runs as t1 in r2, not t1 in r1");
  assert.deepEqual(planLaunch(want, {}), { action: "launch", note: "" });
  const types = [{ name: "t1", description: "", usdPerHour: 1.5, regions: ["r2", "r3"] }];
  assert.equal(planLaunch(want, { types }).note, "would launch t1 in r1 at $1.50/h; but r1 has no capacity now (capacity in r2, r3)");
  assert.equal(planLaunch({ ...want, region: "r2" }, { types }).note, "would launch t1 in r2 at $1.50/h; r2 has capacity now");
  assert.equal(planLaunch({ ...want, type: "t9" }, { types }).note, "would launch t9 in r1; but acme has no type t9");
});

test("planTerminate: nothing found, already ended, or end it", () => {
  const api = fakeCloud([]);
  const want = { provider: "acme", name: "gpu-a" };
  assert.deepEqual(planTerminate(api, want, undefined, null), { action: "none", note: "acme runs no instance named gpu-a" });
  assert.deepEqual(planTerminate(api, want, "i-1", null), { action: "none", note: "i-1 already gone" });
  assert.deepEqual(planTerminate(api, want, "i-1", box({ status: "gone" })), { action: "none", note: "i-1 already gone" });
  const end = planTerminate(api, want, "i-1", box());
  assert.deepEqual(end, { action: "terminate", id: "i-1", note: "would terminate i-1 (t1 in r1, running)" });
});

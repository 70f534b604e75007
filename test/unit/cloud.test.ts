// provider:list / up / down through the real CLI against local fakes of the Lambda and DataCrunch APIs.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { flow, flowfileSource, REPO } from "../support/cli.ts";
import { startBannerServer, startFakeDataCrunch, startFakeLambda, type BannerServer, type FakeCloud } from "../support/fake-clouds.ts";

const LAMBDA_KEY = "secret_lambda_" + Math.random().toString(36).slice(2);
const DC_ID = "dc-client-" + Math.random().toString(36).slice(2, 8);
const DC_SECRET = "dc_secret_" + Math.random().toString(36).slice(2);

let lambda: FakeCloud;
let dc: Awaited<ReturnType<typeof startFakeDataCrunch>>;
let sshd: BannerServer;
let dir: string;
let env: Record<string, string | undefined>;

function project(): string {
  const d = mkdtempSync(join(tmpdir(), "flow-cloud-"));
  writeFileSync(
    join(d, "flowfile.ts"),
    flowfileSource(`import { cloudTasks } from ${JSON.stringify(REPO + "providers/index.ts")};
export default defineFlow({
  inventory: [".flow/inventory.json"],
  settings: { connectTimeoutMs: 2000, sshConfigFile: null },
  plugins: [ops(), definePlugin({ name: "cloud", description: "cloud boxes", tasks: cloudTasks })],
});`),
  );
  symlinkSync(join(REPO, "node_modules"), join(d, "node_modules"));
  return d;
}

const inventory = () => {
  const p = join(dir, ".flow/inventory.json");
  return existsSync(p) ? (JSON.parse(readFileSync(p, "utf8")) as { hosts: Record<string, any> }) : { hosts: {} };
};

before(async () => {
  lambda = await startFakeLambda({ apiKey: LAMBDA_KEY });
  dc = await startFakeDataCrunch({ clientId: DC_ID, clientSecret: DC_SECRET });
  sshd = await startBannerServer(true);
  dir = project();
  env = {
    FLOW_LAMBDA_API_URL: lambda.url,
    FLOW_DATACRUNCH_API_URL: dc.url,
    LAMBDA_API_KEY: LAMBDA_KEY,
    DATACRUNCH_CLIENT_ID: DC_ID,
    DATACRUNCH_CLIENT_SECRET: DC_SECRET,
    FLOW_CLOUD_POLL_MS: "50",
    FLOW_CLOUD_RETRY_BASE_MS: "50",
  };
});

after(async () => {
  await Promise.all([lambda.close(), dc.close(), sshd.close()]);
});

test("provider:list shows types with price and regions with capacity, for both providers", async () => {
  const r = await flow(["run", "provider:list"], { cwd: dir, env });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /gpu_1x_a10\s+0\.75\s+us-east-1,us-west-1/);
  assert.match(r.stdout, /gpu_8x_h100_sxm5\s+23\.92\s+-/);
  assert.match(r.stdout, /1H100\.80S\.30V\s+2\.65\s+FIN-02,ICE-01/);
  const j = await flow(["run", "provider:list", "--provider", "datacrunch", "--json"], { cwd: dir, env });
  const recap = JSON.parse(j.stdout.trim().split("\n").pop()!);
  const types = recap.hosts[0].data.types as { name: string; provider: string; regions: string[] }[];
  assert.deepEqual(types.find((t) => t.name === "1A100.22V")?.regions, ["FIN-01", "ICE-01"]);
  assert.ok(types.every((t) => t.provider === "datacrunch"));
});

test("provider:up (lambda): joins the inventory only once SSH answers; the host is then selectable", async () => {
  sshd.up = false;
  lambda.bootPolls = 3;
  const before = sshd.connections;
  const run = flow(
    [
      "run",
      "provider:up",
      "--provider",
      "lambda",
      "--type",
      "gpu_1x_a10",
      "--region",
      "us-east-1",
      "--name",
      "gpu-a",
      "--ssh-port",
      String(sshd.port),
    ],
    { cwd: dir, env },
  );
  // the box is active and SSH is being knocked on, but has not answered: not in the inventory yet
  for (let i = 0; i < 200 && sshd.connections < before + 2; i++) await new Promise((r) => setTimeout(r, 25));
  assert.ok(sshd.connections >= before + 2, "flow never knocked on SSH");
  assert.equal(inventory().hosts["gpu-a"], undefined);
  sshd.up = true;
  const r = await run;
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /launch gpu-a .*: changed \(launched [0-9a-f]+\)/);
  assert.match(r.stdout, /wait for SSH on 127\.0\.0\.1:\d+: ok \(SSH-2\.0-OpenSSH/);
  const host = inventory().hosts["gpu-a"];
  assert.deepEqual(
    {
      address: host.address,
      port: host.port,
      user: host.user,
      provider: host.provider,
      groups: host.groups,
      type: host.data.type,
      region: host.data.region,
    },
    {
      address: "127.0.0.1",
      port: sshd.port,
      user: "ubuntu",
      provider: "lambda",
      groups: ["lambda", "cloud"],
      type: "gpu_1x_a10",
      region: "us-east-1",
    },
  );
  assert.equal(host.data.instanceId, [...lambda.instances.keys()][0]);
  assert.equal(lambda.launches, 1);

  // the flowfile now has the host: selectable by name and by group (the banner server is no sshd, so unreachable)
  const sel = await flow(["run", "lock:status", "--hosts", "cloud"], { cwd: dir, env });
  assert.match(sel.stdout, /lock:status on 1 host: gpu-a/);
  const byName = await flow(["run", "lock:status", "--hosts", "gpu-a"], { cwd: dir, env });
  assert.match(byName.stdout, /lock:status on 1 host: gpu-a/);

  // a second up with the same name picks the running box up instead of renting another
  const again = await flow(
    [
      "run",
      "provider:up",
      "--provider",
      "lambda",
      "--type",
      "gpu_1x_a10",
      "--region",
      "us-east-1",
      "--name",
      "gpu-a",
      "--ssh-port",
      String(sshd.port),
    ],
    { cwd: dir, env },
  );
  assert.equal(again.code, 0, again.stdout);
  assert.match(again.stdout, /launch gpu-a .*: ok \(already running/);
  assert.match(again.stdout, /inventory: gpu-a in .*: ok/);
  assert.equal(lambda.launches, 1);
});

test("429 with Retry-After: backs off, retries and succeeds", async () => {
  const beforeCount = lambda.count("GET /instance-types");
  lambda.fault = { count: 2, status: 429, retryAfter: 1 };
  const started = Date.now();
  const r = await flow(["run", "provider:list", "--provider", "lambda"], { cwd: dir, env });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.equal(lambda.count("GET /instance-types") - beforeCount, 3);
  assert.ok(Date.now() - started >= 2000, "Retry-After: 1 was not honoured");
  assert.match(r.stdout, /GET \/instance-types: HTTP 429, retrying in 1\.0s \(try 2 of 6\)/);
  // a burst longer than the tries fails clearly
  lambda.fault = { count: 50, status: 503 };
  const env2 = { ...env, FLOW_CLOUD_RETRY_TRIES: "3" };
  const gave = await flow(["run", "provider:list", "--provider", "lambda"], { cwd: dir, env: env2 });
  assert.equal(gave.code, 1);
  assert.match(gave.stdout, /Lambda API GET \/instance-types: still 503 \(unavailable\) after 3 tries/);
  lambda.fault = undefined;
});

test("no capacity: the message names the regions / locations that have the type", async () => {
  const launches = lambda.launches;
  const r = await flow(
    ["run", "provider:up", "--provider", "lambda", "--type", "gpu_1x_h100_pcie", "--region", "us-east-1", "--name", "gpu-h"],
    { cwd: dir, env },
  );
  assert.equal(r.code, 1);
  assert.match(
    r.stdout,
    /no capacity for gpu_1x_h100_pcie in us-east-1; regions with capacity now: us-west-3 \(Utah, USA\), europe-central-1 \(Germany\)/,
  );
  assert.equal(lambda.launches, launches);
  const none = await flow(
    ["run", "provider:up", "--provider", "lambda", "--type", "gpu_8x_h100_sxm5", "--region", "us-east-1", "--name", "gpu-8"],
    { cwd: dir, env },
  );
  assert.match(none.stdout, /no region has capacity for it right now/);

  const posts = dc.count("POST /instances");
  const d = await flow(
    ["run", "provider:up", "--provider", "datacrunch", "--type", "1H100.80S.30V", "--region", "FIN-01", "--name", "dc-h"],
    { cwd: dir, env },
  );
  assert.equal(d.code, 1);
  assert.match(d.stdout, /DataCrunch has no capacity for 1H100\.80S\.30V in FIN-01; locations with capacity now: FIN-02, ICE-01/);
  // a capacity 503 is an answer, not a hiccup: not retried
  assert.equal(dc.count("POST /instances") - posts, 1);
});

test("bad or missing credentials: clear errors that never show the secret", async () => {
  const wrongKey = "wrong_key_" + Math.random().toString(36).slice(2);
  const r = await flow(["run", "provider:list", "--provider", "lambda"], { cwd: dir, env: { ...env, LAMBDA_API_KEY: wrongKey } });
  assert.equal(r.code, 1);
  assert.match(r.stdout, /Lambda API GET \/instance-types: 401 global\/invalid-api-key: API key was invalid.*check LAMBDA_API_KEY/);
  assert.ok(!(r.stdout + r.stderr).includes(wrongKey), "key leaked");
  const wrongSecret = "wrong_secret_" + Math.random().toString(36).slice(2);
  const d = await flow(["run", "provider:list", "--provider", "datacrunch"], {
    cwd: dir,
    env: { ...env, DATACRUNCH_CLIENT_SECRET: wrongSecret },
  });
  assert.equal(d.code, 1);
  assert.match(
    d.stdout,
    new RegExp(
      String.raw`DataCrunch API POST \/oauth2\/token: 401 unauthorized_request: Invalid client id or client` +
        String.raw` secret \(check DATACRUNCH_CLIENT_ID and DATACRUNCH_CLIENT_SECRET\)`,
    ),
  );
  assert.ok(!(d.stdout + d.stderr).includes(wrongSecret), "secret leaked");
  const missing = await flow(["run", "provider:up", "--provider", "datacrunch", "--type", "1A100.22V", "--region", "FIN-01"], {
    cwd: dir,
    env: { ...env, DATACRUNCH_CLIENT_SECRET: undefined },
  });
  assert.equal(missing.code, 1);
  assert.match(missing.stdout, /provider:up --provider datacrunch needs DATACRUNCH_CLIENT_SECRET: set it in the environment or in \.env/);
  const none = await flow(["run", "provider:list"], {
    cwd: dir,
    env: { ...env, LAMBDA_API_KEY: undefined, DATACRUNCH_CLIENT_ID: undefined, DATACRUNCH_CLIENT_SECRET: undefined },
  });
  assert.match(
    none.stdout,
    /provider:list needs credentials: LAMBDA_API_KEY for Lambda, or DATACRUNCH_CLIENT_ID and DATACRUNCH_CLIENT_SECRET/,
  );
});

test("--dry-run launches nothing and says what it would do", async () => {
  const posts = lambda.count("POST /instance-operations/launch");
  const r = await flow(
    ["run", "provider:up", "--provider", "lambda", "--type", "gpu_1x_a10", "--region", "us-west-1", "--name", "gpu-dry", "--dry-run"],
    { cwd: dir, env },
  );
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(
    r.stdout,
    /launch gpu-dry .*: would change \(would launch gpu_1x_a10 in us-west-1 at \$0\.75\/h; us-west-1 has capacity now\)/,
  );
  assert.equal(lambda.count("POST /instance-operations/launch"), posts);
  assert.equal(inventory().hosts["gpu-dry"], undefined);
  const d = await flow(["run", "provider:up", "--provider", "datacrunch", "--type", "1A100.22V", "--region", "FIN-02", "--dry-run"], {
    cwd: dir,
    env,
  });
  assert.match(d.stdout, /but FIN-02 has no capacity now \(capacity in FIN-01, ICE-01\)/);
  assert.equal(dc.count("POST /instances"), dc.launches + 1 /* the no-capacity attempt of the previous test */);
});

test("provider:up (datacrunch): OAuth token reused, renewed after a 401; root login; SSH timeout keeps it out", async () => {
  dc.bootPolls = 2;
  const tokenCalls = dc.count("POST /oauth2/token");
  const apiCalls = dc.requests.length - tokenCalls;
  const r = await flow(
    [
      "run",
      "provider:up",
      "--provider",
      "datacrunch",
      "--type",
      "1A100.22V",
      "--region",
      "FIN-01",
      "--name",
      "dc-a",
      "--ssh-port",
      String(sshd.port),
    ],
    { cwd: dir, env },
  );
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const host = inventory().hosts["dc-a"];
  assert.equal(host.user, "root");
  assert.deepEqual(host.groups, ["datacrunch", "cloud"]);
  // one token for the whole run, reused by every call
  assert.equal(dc.count("POST /oauth2/token") - tokenCalls, 1);
  assert.ok(dc.requests.length - dc.count("POST /oauth2/token") - apiCalls > 4);

  // tokens revoked mid-life: the next call gets a 401, fetches a new token and carries on
  dc.revokeTokens();
  const issued = dc.tokensIssued;
  const { DataCrunchApi } = await import("../../providers/api/datacrunch.ts");
  const api = new DataCrunchApi({ clientId: DC_ID, clientSecret: DC_SECRET, baseUrl: dc.url });
  assert.equal((await api.instances()).length, 1);
  dc.revokeTokens();
  assert.equal((await api.volumes()).length, 0);
  assert.equal(dc.tokensIssued, issued + 2);

  // a box whose SSH never answers is not added, and the message says how to get rid of it
  sshd.up = false;
  const slow = await flow(
    [
      "run",
      "provider:up",
      "--provider",
      "datacrunch",
      "--type",
      "1A100.22V",
      "--region",
      "ICE-01",
      "--name",
      "dc-mute",
      "--ssh-port",
      String(sshd.port),
      "--wait-ssh-timeout",
      "1",
    ],
    { cwd: dir, env },
  );
  sshd.up = true;
  assert.equal(slow.code, 1);
  assert.match(
    slow.stdout,
    new RegExp(
      String.raw`gave no SSH banner within 1s; dc-mute not added to the inventory; instance \S+ is still ru` +
        String.raw`nning \(and billed\).*provider:down --provider datacrunch --id`,
    ),
  );
  assert.equal(inventory().hosts["dc-mute"], undefined);
  // down by name finds it at the provider even though it never joined the inventory
  const down = await flow(["run", "provider:down", "--provider", "datacrunch", "--name", "dc-mute"], { cwd: dir, env });
  assert.equal(down.code, 0, down.stdout);
  assert.match(down.stdout, /terminate dc-mute: changed \(deleted /);
});

test("provider:down terminates and removes from the inventory; a second run changes nothing", async () => {
  const id = inventory().hosts["gpu-a"].data.instanceId;
  const dry = await flow(["run", "provider:down", "--provider", "lambda", "--name", "gpu-a", "--dry-run"], { cwd: dir, env });
  assert.match(dry.stdout, /terminate gpu-a: would change \(would terminate/);
  assert.ok(inventory().hosts["gpu-a"]);
  assert.equal(lambda.terminations.length, 0);
  const r = await flow(["run", "provider:down", "--provider", "lambda", "--name", "gpu-a"], { cwd: dir, env });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /terminate gpu-a: changed \(terminated /);
  assert.deepEqual(lambda.terminations, [id]);
  assert.equal(inventory().hosts["gpu-a"], undefined);
  assert.ok(inventory().hosts["dc-a"], "the other box stays");
  const again = await flow(["run", "provider:down", "--provider", "lambda", "--name", "gpu-a", "--json"], { cwd: dir, env });
  const recap = JSON.parse(again.stdout.trim().split("\n").pop()!);
  assert.deepEqual([recap.hosts[0].outcome, recap.hosts[0].changed], ["ok", 0]);
  const byId = await flow(["run", "provider:down", "--provider", "datacrunch", "--id", inventory().hosts["dc-a"].data.instanceId], {
    cwd: dir,
    env,
  });
  assert.equal(byId.code, 0, byId.stdout);
  assert.deepEqual(Object.keys(inventory().hosts), []);
});

test("provider:up without --name: a deterministic name, so a re-run after an SSH timeout picks the box up", async () => {
  const { defaultName } = await import("../../providers/cloud/names.ts");
  assert.equal(defaultName("datacrunch", "1A100.22V", "FIN-01"), "flow-datacrunch-1a100-22v-fin-01");
  assert.equal(defaultName("lambda", "gpu_1x_a10", "us-east-1"), "flow-lambda-gpu-1x-a10-us-east-1");
  assert.ok(defaultName("lambda", "x".repeat(80), "us-east-1").length <= 63);
  const launches = dc.launches;
  sshd.up = false;
  const args = [
    "run",
    "provider:up",
    "--provider",
    "datacrunch",
    "--type",
    "1A100.22V",
    "--region",
    "FIN-01",
    "--ssh-port",
    String(sshd.port),
  ];
  const first = await flow([...args, "--wait-ssh-timeout", "1"], { cwd: dir, env });
  sshd.up = true;
  assert.equal(first.code, 1, first.stdout);
  assert.match(first.stdout, /launch flow-datacrunch-1a100-22v-fin-01 .*: changed \(launched /);
  assert.equal(dc.launches, launches + 1);
  const again = await flow(args, { cwd: dir, env });
  assert.equal(again.code, 0, again.stdout + again.stderr);
  assert.match(again.stdout, /launch flow-datacrunch-1a100-22v-fin-01 .*: ok \(already running/);
  assert.equal(dc.launches, launches + 1, "a second box was rented");
  assert.ok(inventory().hosts["flow-datacrunch-1a100-22v-fin-01"]);
  // --name still wins
  const named = await flow([...args, "--name", "dc-named", "--dry-run"], { cwd: dir, env });
  assert.match(named.stdout, /launch dc-named /);
});

test("provider:down deletes a DataCrunch box that is offline or errored (it still bills)", async () => {
  const name = "flow-datacrunch-1a100-22v-fin-01";
  const id = inventory().hosts[name].data.instanceId as string;
  dc.instances.get(id)!.status = "offline";
  const r = await flow(["run", "provider:down", "--provider", "datacrunch", "--name", name], { cwd: dir, env });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, new RegExp(`terminate ${name}: changed \\(deleted ${id}`));
  assert.ok(dc.terminations.includes(id));
  assert.equal(inventory().hosts[name], undefined);
  // not in the inventory, status error: found by name at the provider and deleted
  sshd.up = false;
  const up = await flow(
    [
      "run",
      "provider:up",
      "--provider",
      "datacrunch",
      "--type",
      "1A100.22V",
      "--region",
      "ICE-01",
      "--name",
      "dc-err",
      "--ssh-port",
      String(sshd.port),
      "--wait-ssh-timeout",
      "1",
    ],
    { cwd: dir, env },
  );
  sshd.up = true;
  assert.equal(up.code, 1, up.stdout);
  const errId = [...dc.instances.values()].find((i) => i.name === "dc-err")!.id;
  dc.instances.get(errId)!.status = "error";
  const down = await flow(["run", "provider:down", "--provider", "datacrunch", "--name", "dc-err"], { cwd: dir, env });
  assert.equal(down.code, 0, down.stdout);
  assert.match(down.stdout, /terminate dc-err: changed \(deleted /);
  assert.ok(dc.terminations.includes(errId));
  // a deleting box needs nothing more
  dc.instances.get(errId)!.status = "deleting";
  const byId = await flow(["run", "provider:down", "--provider", "datacrunch", "--id", errId], { cwd: dir, env });
  assert.match(byId.stdout, /terminate \S+: ok \(\S+ already deleting\)/);
});

test("back-off: Retry-After (seconds or date) wins; otherwise jittered exponential, capped", async () => {
  const { backoffMs, parseRetryAfter } = await import("../../lib/retry.ts");
  const policy = { tries: 5, baseMs: 1000, maxMs: 8000 };
  assert.equal(parseRetryAfter("3"), 3000);
  assert.equal(parseRetryAfter(new Date(10_000).toUTCString(), 4_000), 6000);
  assert.equal(parseRetryAfter("soon"), null);
  assert.equal(backoffMs(1, policy, "2"), 2000);
  assert.equal(
    backoffMs(1, policy, null, 0, () => 0),
    500,
  );
  assert.equal(
    backoffMs(3, policy, null, 0, () => 1),
    4000,
  );
  assert.equal(
    backoffMs(10, policy, null, 0, () => 1),
    8000,
  );
});

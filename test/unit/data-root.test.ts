// One order for a host's data root, whoever asks: status, comfyui / setup (dataRootOf with
// --data-root) and the models tasks (dataRootOf alone) reach the same folder for the same host.
import { test } from "node:test";
import assert from "node:assert/strict";
import { dataRootOf } from "../../lib/host-data.ts";
import { validateFlow } from "../../lib/flowfile/load.ts";
import type { HostSpec } from "../../lib/hosts.ts";
import type { TaskContext } from "../../lib/task.ts";
import { status } from "../../plugins/ops.ts";
import { datacrunch, lambda } from "../../providers/index.ts";

const flow = validateFlow({ providers: [lambda(), datacrunch({ dataRoot: "/home/user" })] }, "test flowfile");

/** Just enough of a TaskContext for status: `sh` answers a df line for whatever path it is asked about. */
function hostCtx(host: Partial<HostSpec>, user = "root") {
  const spec: HostSpec = { name: "gpu1", address: "5.6.7.8", groups: [], data: {}, ...host };
  const emitted: Record<string, unknown>[] = [];
  const ctx = {
    host: spec,
    flow,
    transport: { user },
    dryRun: false,
    projectDir: "/nonexistent",
    hasTask: () => false,
    async exec(command: string) {
      const mark = /echo (@@flow-section[^@\s]*@@)os/.exec(command)![1];
      const path = /df -Pk '([^']+)'/.exec(command)?.[1] ?? "/";
      return { code: 0, stdout: `${mark}os\nLinux\n\nh\n${mark}disk\n/dev/vdb 104857600 1048576 103809024 1% ${path}\n`, stderr: "" };
    },
    warn() {},
    async step(_title: string, body: () => Promise<unknown>) {
      await body();
      return "ok";
    },
    emit(data: Record<string, unknown>) {
      emitted.push(data);
    },
  } as unknown as TaskContext;
  const statusPath = async (options: { path?: string } = {}) => {
    emitted.length = 0;
    await status.run(ctx, options);
    return (emitted[0]?.status as { disk: { path: string } }).disk.path;
  };
  return { ctx, statusPath };
}

test("a DataCrunch host with nothing recorded: status and dataRootOf both say the provider's /home/user", async () => {
  const { ctx, statusPath } = hostCtx({ provider: "datacrunch" });
  assert.equal(dataRootOf(ctx), "/home/user");
  assert.equal(await statusPath(), "/home/user");
});

test("--data-root wins over everything; a recorded root wins over the provider's default", async () => {
  const dc = hostCtx({ provider: "datacrunch" });
  assert.equal(dataRootOf(dc.ctx, "/mnt/elsewhere"), "/mnt/elsewhere");
  // what setup recorded on the host reaches tasks as the host's data.dataRoot (lib/run/host-run.ts)
  const recorded = hostCtx({ provider: "datacrunch", data: { dataRoot: "/mnt/recorded" } });
  assert.equal(dataRootOf(recorded.ctx), "/mnt/recorded");
  assert.equal(await recorded.statusPath(), "/mnt/recorded");
  assert.equal(dataRootOf(recorded.ctx, "/mnt/elsewhere"), "/mnt/elsewhere");
  // status's own --path still names any other folder to report
  assert.equal(await recorded.statusPath({ path: "/" }), "/");
});

test("the same order for Lambda and for a host without a provider (the login user's home)", async () => {
  const lam = hostCtx({ provider: "lambda" }, "ubuntu");
  assert.equal(dataRootOf(lam.ctx), "/home/ubuntu");
  assert.equal(await lam.statusPath(), "/home/ubuntu");
  const plain = hostCtx({}, "alice");
  assert.equal(dataRootOf(plain.ctx), "/home/alice");
  assert.equal(await plain.statusPath(), "/home/alice");
  const root = hostCtx({}, "root");
  assert.equal(await root.statusPath(), dataRootOf(root.ctx));
});

test("what setup recorded on the host wins over the flowfile's data.dataRoot, other keys kept", async () => {
  const { withRecord } = await import("../../lib/run/host-run.ts");
  const host: HostSpec = {
    name: "gpu1",
    address: "5.6.7.8",
    groups: [],
    provider: "datacrunch",
    data: { dataRoot: "/from/flowfile", gpu: "h100" },
  };
  const merged = withRecord(host, { dataRoot: "/mnt/recorded" });
  assert.deepEqual(merged.data, { dataRoot: "/mnt/recorded", gpu: "h100" });
  assert.equal(dataRootOf({ ...hostCtx({}).ctx, host: merged }), "/mnt/recorded");
  assert.equal(dataRootOf({ ...hostCtx({}).ctx, host: withRecord(host, {}) }), "/from/flowfile");
});

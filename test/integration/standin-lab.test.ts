// The comfyui-api stand-in image in a real lab host: loaded into lab1's inner
// Docker engine, run with the host's folders mounted, reached over ssh from
// inside the host and through the ports the lab publishes on 127.0.0.1.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { ensureLab, labUnavailableReason, sshArgv, type LabInventory } from "../lab/lab.ts";
import { ensureStandinImage, STANDIN_TAG, type StandinLoad } from "../lab/standin/image.ts";
import { run } from "../lab/util.ts";

const reason = await labUnavailableReason();
const NAME = "flow-standin-it";
const DIR = "/tmp/flow-standin-it";

describe("stand-in image in a lab host", { skip: reason ?? false, timeout: 15 * 60_000 }, () => {
  let inv: LabInventory;
  let first: StandinLoad;
  const sh = (script: string) =>
    run("ssh", sshArgv(inv.hosts.lab1.port, "ubuntu", "sudo sh -s"), { input: `set -eu\n${script}\n`, allowFail: true, timeoutMs: 120_000 });

  before(async () => {
    inv = await ensureLab({ hosts: 1, docker: true });
    first = await ensureStandinImage(inv, "lab1", (m) => process.stderr.write(`[standin] ${m}\n`));
    const wf = `const RequestSchema = z.object({}); function generateWorkflow() { return {}; }\\nexport default { RequestSchema, generateWorkflow, summary: "hello" };`;
    const r = await sh(`
docker rm -f ${NAME} >/dev/null 2>&1 || true
rm -rf ${DIR}
mkdir -p ${DIR}/models/checkpoints ${DIR}/custom_nodes/MyPack ${DIR}/workflows/demo ${DIR}/output
echo x > ${DIR}/models/checkpoints/on-the-host.safetensors
echo '["MyPackNode"]' > ${DIR}/custom_nodes/MyPack/flow-standin-nodes.json
printf '${wf}\\n' > ${DIR}/workflows/demo/hello.ts
docker run -d --name ${NAME} -p 8188:8188 -p 3000:3000 \\
  -v ${DIR}/models:/opt/ComfyUI/models -v ${DIR}/custom_nodes:/opt/ComfyUI/custom_nodes \\
  -v ${DIR}/output:/opt/ComfyUI/output -v ${DIR}/workflows:/workflows ${STANDIN_TAG} >/dev/null
# docker-proxy accepts and then resets until the server listens, so poll by hand
for i in $(seq 60); do curl -fsS -o /dev/null http://127.0.0.1:3000/health 2>/dev/null && exit 0; sleep 1; done
docker logs ${NAME}; exit 1`);
    assert.equal(r.code, 0, r.stdout + r.stderr);
  });

  after(async () => {
    if (inv && !reason) await sh(`docker rm -f ${NAME} >/dev/null 2>&1 || true; rm -rf ${DIR}`);
  });

  test("the image is small and loading it again is skipped (same content hash)", async (t) => {
    t.diagnostic(`first ensure: loaded=${first.loaded} in ${first.ms} ms; image ${(first.bytes / 1e6).toFixed(1)} MB`);
    assert.ok(first.bytes < 150e6, `image is ${first.bytes} bytes`);
    const again = await ensureStandinImage(inv, "lab1");
    t.diagnostic(`second ensure: loaded=${again.loaded} in ${again.ms} ms`);
    assert.equal(again.loaded, false);
    assert.equal(again.hash, first.hash);
  });

  test("inside the host: 8188 and 3000 answer, /object_info and /models reflect the mounted folders", async () => {
    const r = await sh(`
curl -fsS http://127.0.0.1:8188/ >/dev/null
curl -fsS http://127.0.0.1:3000/ready
echo
curl -fsS http://127.0.0.1:8188/object_info
echo
echo x > ${DIR}/models/checkpoints/added-later.safetensors
curl -fsS http://127.0.0.1:8188/models/checkpoints`);
    assert.equal(r.code, 0, r.stderr);
    const [ready, info, models] = r.stdout.trim().split("\n");
    assert.equal(JSON.parse(ready).status, "ready");
    const objectInfo = JSON.parse(info);
    assert.ok(objectInfo.MyPackNode, "a pack under the mounted custom_nodes shows up");
    assert.deepEqual(objectInfo.CheckpointLoaderSimple.input.required.ckpt_name[0], ["on-the-host.safetensors"]);
    assert.deepEqual(JSON.parse(models), ["added-later.safetensors", "on-the-host.safetensors"]);
  });

  test("from this machine through the published loopback ports", async () => {
    const { comfyPort, apiPort } = inv.hosts.lab1.data;
    const stats = (await (await fetch(`http://127.0.0.1:${comfyPort}/system_stats`)).json()) as { system: object };
    assert.ok(stats.system);
    const doc = (await (await fetch(`http://127.0.0.1:${apiPort}/docs/json`)).json()) as { paths: Record<string, unknown> };
    assert.ok(doc.paths["/workflow/demo/hello"], Object.keys(doc.paths).join(" "));
    const res = await fetch(`http://127.0.0.1:${apiPort}/workflow/demo/hello`, {
      method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ input: {} }),
    });
    assert.equal(res.status, 200);
    const body = (await res.json()) as { images: string[] };
    assert.equal(Buffer.from(body.images[0], "base64").subarray(1, 4).toString(), "PNG");
  });
});

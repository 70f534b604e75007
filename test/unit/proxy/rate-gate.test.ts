// The per-token rate: the buckets with a clock of our own, then the gate as the box runs it (its
// script, a real HTTP server on loopback) answering what Caddy's forward_auth asks.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { TokenBuckets } from "../../../tasks/lib/token-buckets.ts";

test("buckets: the burst at once, then perMinute on average; keys apart; Retry-After in whole seconds", () => {
  let now = 0;
  const b = new TokenBuckets(60, 3, () => now);
  assert.deepEqual(
    [1, 2, 3].map(() => b.take("a").ok),
    [true, true, true],
  );
  assert.deepEqual(b.take("a"), { ok: false, retryAfter: 1 });
  assert.equal(b.take("b").ok, true, "another token has its own bucket");
  now += 999;
  assert.equal(b.take("a").ok, false);
  now += 1;
  assert.equal(b.take("a").ok, true, "one a second at 60 a minute");
  now += 60_000;
  assert.deepEqual(
    [1, 2, 3, 4].map(() => b.take("a").ok),
    [true, true, true, false],
    "refills to the burst, not beyond",
  );
  const slow = new TokenBuckets(6, 1, () => now);
  slow.take("x");
  assert.deepEqual(slow.take("x"), { ok: false, retryAfter: 10 });
  assert.throws(() => new TokenBuckets(0, 1), /perMinute > 0/);
});

test("buckets: past maxKeys, idle (full) buckets are dropped, busy ones kept", () => {
  let now = 0;
  const b = new TokenBuckets(60, 2, () => now, 3);
  b.take("busy");
  b.take("busy");
  b.take("k1");
  b.take("k2");
  now += 1_000; // k1 and k2 full again (2), busy at 1 of 2
  b.take("k3");
  assert.equal(b.size, 2, "k1 and k2 refilled and went; busy stays with k3");
  assert.equal(b.take("busy").ok, true);
});

test("the gate: 200 while the token's bucket has room, then 429 with Retry-After and a JSON reason", async () => {
  const script = fileURLToPath(new URL("../../../tasks/rate-gate.ts", import.meta.url));
  const gate = spawn(process.execPath, ["--import", "tsx", script, "--listen", "127.0.0.1:0", "--per-minute", "60", "--burst", "2"], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  try {
    const [line] = (await once(gate.stdout!, "data")) as [Buffer];
    const port = Number(/127\.0\.0\.1:(\d+)/.exec(line.toString())![1]);
    const ask = (who?: string) => fetch(`http://127.0.0.1:${port}/check`, { headers: who ? { "x-flow-token": who } : {} });
    assert.equal((await ask("flow")).status, 200);
    assert.equal((await ask("flow")).status, 200);
    const r = await ask("flow");
    assert.equal(r.status, 429);
    assert.equal(r.headers.get("retry-after"), "1");
    assert.match(((await r.json()) as { error: string }).error, /60 requests a minute for this token/);
    assert.equal((await ask("other")).status, 200);
  } finally {
    gate.kill();
  }
});

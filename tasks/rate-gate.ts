// Pushed to the box and run in its own container: the proxy's per-token request rate. Caddy's core
// has no rate limiter, so its forward_auth asks this gate before every authenticated request, with
// the token's user (never the token) in X-Flow-Token: 200 lets the request through, 429 (with
// Retry-After) is what the client gets. Listens on the box's loopback only.
//
//   node rate-gate.mjs --listen 127.0.0.1:3090 --per-minute 600 --burst 60
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { parseArgs } from "node:util";
import { TokenBuckets } from "./lib/token-buckets.ts";

const { values } = parseArgs({
  options: {
    listen: { type: "string", default: "127.0.0.1:3090" },
    "per-minute": { type: "string", default: "600" },
    burst: { type: "string", default: "60" },
  },
});
const perMinute = Number(values["per-minute"]);
const buckets = new TokenBuckets(perMinute, Number(values.burst));
const at = values.listen!.lastIndexOf(":");
const host = values.listen!.slice(0, at).replace(/^\[|\]$/g, "");
const port = Number(values.listen!.slice(at + 1));

const server = createServer((req, res) => {
  const key = String(req.headers["x-flow-token"] ?? "") || "anonymous";
  const r = buckets.take(key);
  if (r.ok) {
    res.writeHead(200, { "content-length": "0" }).end();
    return;
  }
  const body = JSON.stringify({ error: `rate limit: ${perMinute} requests a minute for this token; retry in ${r.retryAfter}s` });
  res.writeHead(429, {
    "content-type": "application/json",
    "retry-after": String(r.retryAfter),
    "content-length": Buffer.byteLength(body),
  });
  res.end(body);
});
// longer than Caddy keeps an idle connection to it (2 min), so Caddy is the one that closes it
server.keepAliveTimeout = 130_000;
server.listen(port, host, () => {
  const bound = server.address() as AddressInfo;
  console.log(`rate gate on ${host}:${bound.port}: ${perMinute}/min, burst ${values.burst}`);
});
for (const sig of ["SIGTERM", "SIGINT"] as const) process.on(sig, () => server.close(() => process.exit(0)));

// How fast `flow` starts: `flow --help` and `flow list` in a folder without a flowfile, against
// `node -e 0`, interleaved rounds, medians. Needs a fresh build (`npm run build`). Target: < 300 ms.
import { spawnSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const bin = fileURLToPath(new URL("../bin/flow.mjs", import.meta.url));
const rounds = Number(process.env.BENCH_ROUNDS ?? 15);
const cwd = mkdtempSync(join(tmpdir(), "flow-start-"));
const cases: Record<string, string[]> = {
  "node -e 0": ["-e", "0"],
  "flow --help": [bin, "--help"],
  "flow list": [bin, "list"],
  "flow list (from sources, jiti)": [bin, "list"],
};
const times: Record<string, number[]> = Object.fromEntries(Object.keys(cases).map((k) => [k, []]));
for (let i = 0; i < rounds; i++) {
  for (const [name, args] of Object.entries(cases)) {
    const env = { ...process.env, CI: "true", ...(name.includes("sources") ? { FLOW_FROM_SOURCE: "1" } : {}) };
    const t = process.hrtime.bigint();
    const r = spawnSync(process.execPath, args, { cwd, env, stdio: "ignore" });
    if (r.status !== 0 && !name.includes("help")) throw new Error(`${name} exited ${r.status}`);
    times[name]!.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
for (const [name, xs] of Object.entries(times)) {
  console.log(
    `${name.padEnd(32)} median ${median(xs).toFixed(0).padStart(4)} ms  ` +
      `(min ${Math.min(...xs).toFixed(0)}, max ${Math.max(...xs).toFixed(0)}, ${xs.length} runs)`,
  );
}

#!/usr/bin/env node
// Launcher. flow's own code runs from dist/ (built by `npm run build`, which `npm ci` runs), so a
// start costs no compiling; jiti then loads only the user's flowfile. In a checkout whose sources
// are newer than dist/ (or with no dist/), flow runs from its sources through jiti instead.
import { existsSync, readdirSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

// `flow ... | head` closes our stdout early: that is not an error worth a stack trace
process.stdout.on("error", (err) => {
  if (err.code === "EPIPE") process.exit(process.exitCode ?? 0);
  throw err;
});

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const built = join(root, "dist/lib/cli/main.mjs");

/** true when some source file is newer than the build (a few ms: one stat per file) */
function stale(since) {
  const walk = (dir) =>
    readdirSync(dir, { withFileTypes: true }).some((e) =>
      e.isDirectory() ? walk(join(dir, e.name)) : e.name.endsWith(".ts") && statSync(join(dir, e.name)).mtimeMs > since,
    );
  return ["lib", "plugins", "providers"].some((d) => existsSync(join(root, d)) && walk(join(root, d)));
}

let main, defaultFlow, jiti;
if (existsSync(built) && !process.env.FLOW_FROM_SOURCE && !stale(statSync(built).mtimeMs)) {
  ({ main } = await import(built));
  ({ defaultFlow } = await import(join(root, "dist/plugins/defaults.mjs")));
} else {
  const { createJiti } = await import("jiti");
  jiti = createJiti(import.meta.url);
  ({ main } = await jiti.import("../lib/cli/main.ts"));
  ({ defaultFlow } = await jiti.import("../plugins/defaults.ts"));
}
process.exitCode = await main(process.argv.slice(2), { defaultFlow, jiti });

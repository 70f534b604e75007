#!/usr/bin/env node
// Launcher: flow is TypeScript loaded through jiti (transforms cached on disk), so a checkout
// runs without a build step; jiti also loads the flowfile, so both share one module graph.
import { createJiti } from "jiti";

// `flow ... | head` closes our stdout early: that is not an error worth a stack trace
process.stdout.on("error", (err) => {
  if (err.code === "EPIPE") process.exit(process.exitCode ?? 0);
  throw err;
});

const jiti = createJiti(import.meta.url);
const { main } = await jiti.import("../lib/cli/main.ts");
const { defaultFlow } = await jiti.import("../plugins/defaults.ts");
process.exitCode = await main(process.argv.slice(2), { defaultFlow, jiti });

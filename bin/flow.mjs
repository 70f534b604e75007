#!/usr/bin/env node
// Launcher: flow is TypeScript run through tsx, so a checkout works without a build step.
import { register } from "tsx/esm/api";

register();
const { main } = await import("../lib/cli/main.ts");
const { defaultFlow } = await import("../plugins/defaults.ts");
process.exitCode = await main(process.argv.slice(2), { defaultFlow });

// `flow init`: a new project folder as a user starts it, written only where nothing is yet.
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export class InitError extends Error {}

const FLOWFILE = `// This project's flow: hosts, providers, plugins and settings. \`npx flow list\` shows every task.
import { defineFlow } from "flow";
import { cloudBoxes, datacrunch, lambda } from "flow/providers";
import { comfyui, comfyuiApi, models, ops, workflow } from "flow/plugins";

export default defineFlow({
  hosts: {
    // gpu1: { host: "root@1.2.3.4", provider: "datacrunch", groups: ["gpus"] },
  },
  inventory: [".flow/inventory.json"],
  providers: [lambda(), datacrunch()],
  // cloudBoxes(): provider:list|up|down over the providers above that have a cloud API
  plugins: [ops(), workflow(), models(), comfyui(), comfyuiApi(), cloudBoxes()],
});
`;

/** Writes the starter files into `dir`; refuses when any of them exists. Returns what it made. */
export function initProject(dir: string, secrets: string[]): string[] {
  const files: [string, string][] = [
    ["flowfile.ts", FLOWFILE],
    [
      ".env.example",
      `# Secrets flow reads from the environment or from .env (copy this file to .env; never commit .env)\n` +
        `${secrets.map((s) => `${s}=\n`).join("")}`,
    ],
    ["workflow_templates/.gitkeep", ""],
    ["workflows/.gitkeep", ""],
  ];
  const there = files.map(([f]) => f).filter((f) => existsSync(join(dir, f)));
  if (there.length)
    throw new InitError(`flow init: ${there.join(", ")} already exist${there.length === 1 ? "s" : ""} in ${dir}; nothing was written`);
  for (const [f, text] of files) {
    mkdirSync(join(dir, f, ".."), { recursive: true });
    writeFileSync(join(dir, f), text, { flag: "wx" });
  }
  return files.map(([f]) => `created ${f.replace(/\/\.gitkeep$/, "/")}`);
}

// `flow init`: a new project folder as a user starts it, written only where nothing is yet.
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export class InitError extends Error {}

const FLOWFILE = `// This project's flow: hosts, providers, plugins and settings. \`npx flow list\` shows every task.
import { defineFlow } from "flow";
import { cloudBoxes, datacrunch, lambda } from "flow/providers";
import { apiProxy, comfyui, comfyuiApi, models, nodes, ops, workflow } from "flow/plugins";

export default defineFlow({
  hosts: {
    // gpu1: { host: "root@1.2.3.4", provider: "datacrunch", groups: ["gpus"] },
    // gpu2: { host: "ubuntu@5.6.7.8", provider: "lambda", api: { domain: "gpu2.example.com", email: "ops@example.com" } },
  },
  inventory: [".flow/inventory.json"],
  providers: [lambda(), datacrunch()],
  // cloudBoxes(): provider:list|up|down over the providers above that have a cloud API
  // apiProxy(): comfyui-api stays on the box's loopback; Caddy on 443 asks for the token (api:token) and serves TLS
  plugins: [ops(), workflow(), models(), nodes(), comfyui(), comfyuiApi(), apiProxy(), cloudBoxes()],
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
  // .env holds the boxes' API tokens (api:proxy writes them there): never committed
  if (!existsSync(join(dir, ".gitignore"))) files.push([".gitignore", ".env\n.flow/\nnode_modules/\n"]);
  for (const [f, text] of files) {
    mkdirSync(join(dir, f, ".."), { recursive: true });
    writeFileSync(join(dir, f), text, { flag: "wx" });
  }
  return files.map(([f]) => `created ${f.replace(/\/\.gitkeep$/, "/")}`);
}

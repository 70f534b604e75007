// npm run lab -- up [--hosts N] [--no-docker] | down | status
import { defineCommand, runMain } from "citty";
import { existsSync } from "node:fs";
import { engineAnswers } from "./engine.ts";
import { describeRecipe, imageExists } from "./image.ts";
import { listContainers, readInventory, sshArgv, type LabInventory } from "./hosts.ts";
import { ensureLab, inventoryPath, labDown } from "./lab.ts";
import { run } from "./util.ts";

function table(inv: LabInventory, extra: Record<string, string> = {}): string {
  const rows = [["host", "ssh", "comfy", "api", "container", ...(Object.keys(extra).length ? ["state"] : [])]];
  for (const [name, h] of Object.entries(inv.hosts)) {
    rows.push([
      name,
      `127.0.0.1:${h.port}`,
      String(h.data.comfyPort),
      String(h.data.apiPort),
      h.data.container,
      ...(name in extra ? [extra[name]] : []),
    ]);
  }
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => (r[c] ?? "").length)));
  return rows
    .map((r) =>
      r
        .map((cell, c) => cell.padEnd(widths[c]))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

const up = defineCommand({
  meta: { name: "up", description: "start N lab hosts (adds or removes hosts to reach N)" },
  args: {
    hosts: { type: "string", default: "2", description: "number of hosts" },
    docker: {
      type: "boolean",
      default: true,
      description: "run an inner Docker engine in each host",
      negativeDescription: "skip the inner Docker engine (lighter, for big fan-outs)",
    },
  },
  async run({ args }) {
    const hosts = Number(args.hosts);
    if (!Number.isInteger(hosts) || hosts < 1 || hosts > 99) throw new Error(`--hosts must be 1..99, got ${args.hosts}`);
    const started = Date.now();
    const inv = await ensureLab({ hosts, docker: args.docker, exact: true });
    console.log(table(inv));
    console.log(
      `\n${Object.keys(inv.hosts).length} hosts ready in ${((Date.now() - started) / 1000).toFixed(1)}s; inventory: ${inventoryPath}`,
    );
  },
});

const down = defineCommand({
  meta: { name: "down", description: "remove every lab host and the inventory" },
  async run() {
    await labDown();
    console.log("lab is down");
  },
});

const status = defineCommand({
  meta: { name: "status", description: "image, containers and ssh reachability" },
  async run() {
    if (!(await engineAnswers())) return console.log("no Docker engine answers (`npm run lab -- up` starts one)");
    console.log(`image: ${describeRecipe()} ${(await imageExists()) ? "built" : "not built"}`);
    const containers = await listContainers();
    if (!existsSync(inventoryPath)) {
      console.log(`no inventory; ${containers.length} lab containers`);
      return;
    }
    const inv = await readInventory();
    const state: Record<string, string> = {};
    await Promise.all(
      Object.entries(inv.hosts).map(async ([name, h]) => {
        const c = containers.find((x) => `flow-lab-${x.index}` === h.data.container);
        const ssh = await run("ssh", sshArgv(h.port, "ubuntu", "true"), { allowFail: true, timeoutMs: 10_000 });
        state[name] = !c ? "missing" : !c.running ? "stopped" : ssh.code === 0 ? `ssh ok${c.docker ? "" : " (no docker)"}` : "ssh failing";
      }),
    );
    console.log(table(inv, state));
  },
});

const standin = defineCommand({
  meta: {
    name: "standin",
    description:
      "build (once) and load the lab's comfyui-api image (real comfyui-api + stand-in ComfyUI) and its Caddy image " +
      "into lab hosts' Docker engines",
  },
  args: { hosts: { type: "string", default: "", description: "host names, comma separated (default: all)" } },
  async run({ args }) {
    const { ensureStandinImage } = await import("./standin/image.ts");
    const { ensureCaddyImage } = await import("./caddy/image.ts");
    const inv = await readInventory();
    const names = args.hosts ? args.hosts.split(",").filter(Boolean) : Object.keys(inv.hosts);
    for (const name of names) {
      if (!inv.hosts[name]) throw new Error(`no lab host ${name} (have: ${Object.keys(inv.hosts).join(", ")})`);
      const r = await ensureStandinImage(inv, name, (m) => console.log(`  ${m}`));
      console.log(
        `${name}: ${r.tag} (${r.hash}, ${(r.bytes / 1e6).toFixed(0)} MB) ` +
          (r.loaded ? `loaded in ${(r.ms / 1000).toFixed(1)}s` : "already there"),
      );
      const c = await ensureCaddyImage(inv, name, (m) => console.log(`  ${m}`));
      console.log(`${name}: ${c.tag} (${c.hash}) ` + (c.loaded ? `loaded in ${(c.ms / 1000).toFixed(1)}s` : "already there"));
    }
  },
});

runMain(
  defineCommand({
    meta: { name: "lab", description: "the flow test lab: SSH hosts in Docker on 127.0.0.1" },
    subCommands: { up, down, status, standin },
  }),
);

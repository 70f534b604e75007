// provider:up: rent a box and add it to the inventory of launched boxes that the flowfile reads.
// A box joins the inventory only once its SSH port answers with an SSH banner, so every host in it
// is usable. The launch reads the fact (a box of that name already running?), decides purely
// (planLaunch), then acts; a re-run with the same name picks the running box up.
import { z } from "zod";
import { defineTask, TaskError } from "../../lib/task.ts";
import type { CloudApi, CloudInstance, CloudSession, CloudType } from "../shared/cloud-api.ts";
import { CLOUD_SECRETS, HELP, openCloud } from "./clouds.ts";
import { addHost, DEFAULT_INVENTORY, findHost, flowReads, hostEntry, inventoryPath, type LaunchedHost } from "./inventory.ts";
import { defaultName, NAME } from "./names.ts";
import { pollMs, sleep } from "./poll.ts";
import { sshBanner } from "./ssh-banner.ts";

export interface LaunchWanted {
  provider: string;
  name: string;
  type: string;
  region: string;
}

/** What the provider says before anything is rented. */
export interface LaunchFact {
  /** a box of the wanted name that is running or on its way */
  running?: CloudInstance;
  /** the provider's types, read only for a dry run's capacity note */
  types?: CloudType[];
}

export type LaunchPlan = { action: "reuse"; id: string; note: string; warning?: string } | { action: "launch"; note: string };

export async function readLaunchFact(session: CloudSession, api: CloudApi, want: LaunchWanted, dryRun: boolean): Promise<LaunchFact> {
  const running = (await session.instances()).find((i) => i.name === want.name && !api.gone(i));
  return { running, types: !running && dryRun ? await session.types() : undefined };
}

/** Pure: pick the running box up, or launch one (with, for a dry run, where the type has capacity now). */
export function planLaunch(want: LaunchWanted, fact: LaunchFact): LaunchPlan {
  const { running } = fact;
  if (running) {
    const elsewhere = running.type !== want.type || running.region !== want.region;
    const warning = `${want.name} already runs as ${running.type} in ${running.region}, not ${want.type} in ${want.region}`;
    return { action: "reuse", id: running.id, note: `already running as ${running.id}`, ...(elsewhere ? { warning } : {}) };
  }
  if (!fact.types) return { action: "launch", note: "" };
  const t = fact.types.find((x) => x.name === want.type);
  const capacity = !t
    ? `but ${want.provider} has no type ${want.type}`
    : t.regions.includes(want.region)
      ? `${want.region} has capacity now`
      : `but ${want.region} has no capacity now${t.regions.length ? ` (capacity in ${t.regions.join(", ")})` : ""}`;
  const price = t ? ` at $${t.usdPerHour.toFixed(2)}/h` : "";
  return { action: "launch", note: `would launch ${want.type} in ${want.region}${price}; ${capacity}` };
}

export const providerUp = defineTask({
  name: "provider:up",
  description: `launch a box on ${HELP.titles.join(" or ")}, wait until SSH answers, add it to the inventory`,
  scope: "local",
  lock: false,
  optionalSecrets: CLOUD_SECRETS,
  options: z.object({
    provider: z.string().min(1).describe(HELP.names),
    type: z
      .string()
      .min(1)
      .describe(`instance type, e.g. ${HELP.of("type")}`),
    region: z.string().min(1).describe(HELP.of("region")),
    name: z
      .string()
      .regex(NAME, "expected letters, digits, '.', '_' or '-'")
      .optional()
      .describe("instance and host name (default flow-<provider>-<type>-<region>, so a re-run finds the box)"),
    sshKey: z
      .string()
      .optional()
      .describe(`SSH key ${HELP.of("sshKey")} registered with the provider`),
    image: z.string().optional().describe(HELP.of("image")),
    sshPort: z.number().int().min(1).max(65535).default(22).describe("port to wait on for the SSH banner"),
    identityFile: z.string().optional().describe("private key to record for the host in the inventory"),
    waitSshTimeout: z.number().positive().default(900).describe("seconds to wait for the box to run and answer on SSH"),
    inventory: z.string().default(DEFAULT_INVENTORY).describe("inventory file of launched boxes, relative to the project"),
  }),
  async run(ctx, o) {
    const { provider, api, session } = openCloud(ctx, o.provider, "provider:up");
    const name = o.name ?? defaultName(o.provider, o.type, o.region);
    const want: LaunchWanted = { provider: o.provider, name, type: o.type, region: o.region };
    const invFile = inventoryPath(ctx.projectDir, o.inventory);
    if (!flowReads(ctx.flow, ctx.projectDir, o.inventory)) {
      const add = `inventory: [${JSON.stringify(o.inventory)}]`;
      ctx.warn(`the flowfile does not read ${o.inventory}: add ${add} to it so launched boxes become hosts`);
    }
    const downHint = (id: string) =>
      `instance ${id} is still running (and billed): look at it, or terminate it with ` +
      `flow run provider:down --provider ${o.provider} --id ${id}`;

    let id = "";
    let launched = false;
    await ctx.step(`launch ${name} (${o.type} in ${o.region})`, async () => {
      const plan = planLaunch(want, await readLaunchFact(session, api, want, ctx.dryRun));
      if (plan.action === "reuse") {
        id = plan.id;
        if (plan.warning) ctx.warn(plan.warning);
        return { status: "ok", note: plan.note };
      }
      if (ctx.dryRun) return { status: "changed", note: plan.note };
      id = await session.launch({ name, type: o.type, region: o.region, sshKey: o.sshKey, image: o.image });
      launched = true;
      return { status: "changed", note: `launched ${id}` };
    });
    if (ctx.dryRun && !id) {
      await ctx.step(`wait for SSH, add ${name} to ${o.inventory}`, async () => ({ status: "skipped", note: "dry run: nothing launched" }));
      return;
    }

    const deadline = Date.now() + o.waitSshTimeout * 1000;
    let box: CloudInstance | null = null;
    await ctx.step(`wait until ${name} runs with an address`, async () => {
      const started = Date.now();
      for (;;) {
        box = await session.instance(id);
        if (!box) throw new TaskError(`${o.provider} no longer knows instance ${id}`);
        if (api.gone(box)) throw new TaskError(`instance ${id} is ${box.status}; it will not come up`);
        if (api.ready(box)) {
          const after = Math.round((Date.now() - started) / 1000);
          return { status: launched ? "changed" : "ok", note: `${box.status} at ${box.ip} after ${after}s` };
        }
        if (Date.now() > deadline) throw new TaskError(`${name} is still ${box.status} after ${o.waitSshTimeout}s; ${downHint(id)}`);
        await sleep(pollMs());
      }
    });
    const ip = (box as CloudInstance | null)!.ip!;

    await ctx.step(`wait for SSH on ${ip}:${o.sshPort}`, async () => {
      let tries = 0;
      for (;;) {
        tries++;
        const banner = await sshBanner(ip, o.sshPort, Math.min(5000, Math.max(1000, deadline - Date.now())));
        if (banner) return { status: "ok", note: `${banner} (try ${tries})` };
        if (Date.now() > deadline) {
          const what = `${ip}:${o.sshPort} gave no SSH banner within ${o.waitSshTimeout}s`;
          throw new TaskError(`${what}; ${name} not added to the inventory; ${downHint(id)}`);
        }
        await sleep(Math.min(2000, pollMs()));
      }
    });

    const host: LaunchedHost = {
      name,
      provider: o.provider,
      user: provider.profile.user,
      address: ip,
      port: o.sshPort,
      instanceId: id,
      type: o.type,
      region: o.region,
      identityFile: o.identityFile,
    };
    await ctx.ensure({
      title: `inventory: ${name} in ${o.inventory}`,
      check: async () => JSON.stringify(findHost(invFile, { name })?.[1]) === JSON.stringify(hostEntry(host)),
      apply: async () => void addHost(invFile, host),
    });
    ctx.emit({ instance: { provider: o.provider, id, name, ip, port: o.sshPort, type: o.type, region: o.region, user: host.user } });
  },
});

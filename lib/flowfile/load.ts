// Find, load (jiti) and validate the flowfile; fall back to the built-in default.
import { existsSync, readFileSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import { createJiti, type Jiti } from "jiti";
import { flowSchema, formatZodError, inventorySchema, type FlowConfig, type FlowInput } from "./schema.ts";
import type { HostSpec } from "../hosts.ts";
import { parseHostString } from "../select.ts";

export class FlowfileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "FlowfileError";
  }
}

export interface LoadedFlow {
  config: FlowConfig;
  /** folder of the flowfile (or the working directory for the built-in default) */
  projectDir: string;
  /** path of the flowfile, or null when the built-in default is used */
  file: string | null;
  hosts: HostSpec[];
}

export function defineFlow(flow: FlowInput): FlowInput {
  return flow;
}

export async function loadFlow(opts: { cwd: string; file?: string; fallback: () => FlowInput; jiti?: Jiti }): Promise<LoadedFlow> {
  const file = opts.file ? resolve(opts.cwd, opts.file) : findFlowfile(opts.cwd);
  if (opts.file && !existsSync(file!)) throw new FlowfileError(`${opts.file}: no such flowfile`);
  let input: unknown;
  if (file) {
    try {
      const jiti = opts.jiti ?? createJiti(import.meta.url, { moduleCache: false });
      input = await jiti.import(file, { default: true });
    } catch (err) {
      throw new FlowfileError(`${file}: cannot load: ${(err as Error).message}`);
    }
  } else {
    input = opts.fallback();
  }
  const projectDir = file ? dirname(file) : opts.cwd;
  const config = validateFlow(input, file ?? "built-in flowfile");
  return { config, projectDir, file, hosts: resolveHosts(config, projectDir) };
}

export function validateFlow(input: unknown, where: string): FlowConfig {
  const parsed = flowSchema.safeParse(input, { reportInput: true });
  if (!parsed.success) throw new FlowfileError(`${where} is not valid:\n${formatZodError(parsed.error)}`);
  return parsed.data;
}

function findFlowfile(cwd: string): string | null {
  for (const name of ["flowfile.ts", "flowfile.mts", "flowfile.js", "flowfile.mjs"]) {
    const p = resolve(cwd, name);
    if (existsSync(p)) return p;
  }
  return null;
}

/** Hosts of the flowfile, then of each inventory file (a missing inventory file adds nothing). */
export function resolveHosts(config: FlowConfig, projectDir: string): HostSpec[] {
  const hosts: HostSpec[] = [];
  // A provider says who logs in on its boxes (ubuntu on Lambda, root on DataCrunch): kept apart from the
  // host's own user, as ~/.ssh/config's User comes between them (loginUser in lib/hosts.ts decides).
  const providerUser = (name?: string) => {
    const u = config.providers.find((p) => p.name === name)?.defaults?.user;
    return typeof u === "string" ? u : undefined;
  };
  for (const [name, entry] of Object.entries(config.hosts)) {
    const parsed = parseHostString(entry.host);
    hosts.push({
      name,
      address: parsed.address,
      user: entry.user ?? parsed.user,
      defaultUser: providerUser(entry.provider),
      port: entry.port ?? parsed.port,
      identityFile: entry.identityFile && absolute(projectDir, entry.identityFile),
      proxyJump: entry.proxyJump,
      knownHostsFile: entry.knownHostsFile && absolute(projectDir, entry.knownHostsFile),
      provider: entry.provider,
      groups: entry.groups,
      data: entry.data,
      ...(entry.api ? { api: entry.api } : {}),
    });
  }
  for (const inv of config.inventory) {
    const path = absolute(projectDir, inv);
    if (!existsSync(path)) continue;
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(path, "utf8"));
    } catch (err) {
      throw new FlowfileError(`${inv}: not valid JSON: ${(err as Error).message}`);
    }
    const parsed = inventorySchema.safeParse(raw, { reportInput: true });
    if (!parsed.success) throw new FlowfileError(`${inv} is not a valid inventory:\n${formatZodError(parsed.error)}`);
    const dir = dirname(path);
    for (const [name, h] of Object.entries(parsed.data.hosts)) {
      if (hosts.some((x) => x.name === name)) throw new FlowfileError(`${inv}: host "${name}" is already defined`);
      hosts.push({
        name,
        address: h.address,
        port: h.port,
        user: h.user,
        defaultUser: providerUser(h.provider),
        identityFile: h.identityFile && absolute(dir, h.identityFile),
        knownHostsFile: parsed.data.knownHostsFile && absolute(dir, parsed.data.knownHostsFile),
        provider: h.provider,
        groups: h.groups,
        data: h.data,
        ...(h.api ? { api: h.api } : {}),
      });
    }
  }
  return hosts;
}

function absolute(base: string, p: string): string {
  if (p.startsWith("~/")) return resolve(process.env.HOME ?? "/", p.slice(2));
  return isAbsolute(p) ? p : resolve(base, p);
}

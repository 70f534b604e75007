// The flowfile's shape, validated with zod; errors name the key path.
import { z } from "zod";
import type { PluginDef, ProviderDef } from "../task.ts";
import { allowEntryProblem } from "../net-policy.ts";

const plugin = z.custom<PluginDef>(
  (v) => typeof v === "object" && v !== null && typeof (v as PluginDef).name === "string" && Array.isArray((v as PluginDef).tasks),
  { message: "expected a plugin (definePlugin({ name, tasks }))" },
);
const provider = z.custom<ProviderDef>(
  (v) => typeof v === "object" && v !== null && typeof (v as ProviderDef).name === "string" && Array.isArray((v as ProviderDef).tasks),
  { message: "expected a provider (defineProvider({ name, tasks }))" },
);

const name = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, "expected letters, digits, '.', '_' or '-'");

const HF_REPO = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,95}\/[A-Za-z0-9_][A-Za-z0-9_.-]{0,95}$/;

/** A models folder as the flowfile names it: relative, "/"-separated plain segments (no "." or ".."). */
const modelFolder = z
  .string()
  .regex(/^(?!.*(^|\/)\.{1,2}(\/|$))[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*$/, 'expected a models folder like "diffusion_models" or "LLM/x"');

const userModelSchema = z
  .strictObject({ url: z.string().min(1).optional(), folder: modelFolder.optional() })
  .refine((m) => m.url !== undefined || m.folder !== undefined, { message: "give url, folder or both" });

/**
 * How the box's served API is reached (the proxy in front of it): `auth: false` serves it without
 * a token (status flags such a host), `domain` gets a public certificate for that name, `email`
 * is given to the certificate authority.
 */
export const hostApiSchema = z.strictObject({
  auth: z.boolean().default(true),
  domain: z
    .string()
    .regex(/^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]$/i, "a DNS name such as gpu1.example.com")
    .optional(),
  email: z
    .string()
    .regex(/^[^\s@]+@[^\s@]+$/, "an email address")
    .optional(),
});
export type HostApi = z.output<typeof hostApiSchema>;

export const hostEntrySchema = z.strictObject({
  /** [user@]address[:port] or an ~/.ssh/config alias */
  host: z.string().min(1),
  user: z.string().min(1).optional(),
  port: z.number().int().min(1).max(65535).optional(),
  identityFile: z.string().optional(),
  proxyJump: z.string().optional(),
  knownHostsFile: z.string().optional(),
  provider: z.string().optional(),
  groups: z.array(name).default([]),
  data: z.record(z.string(), z.unknown()).default({}),
  api: hostApiSchema.optional(),
});

export const settingsSchema = z.strictObject({
  knownHostsFile: z.string().optional(),
  sshConfigFile: z.string().nullable().optional(),
  connectTimeoutMs: z.number().int().positive().default(15_000),
  keepaliveIntervalMs: z.number().int().positive().default(15_000),
  concurrency: z.number().int().positive().default(20),
  lockWaitSeconds: z.number().nonnegative().default(0),
  /** base URL of ComfyUI-Manager's reference data (a mirror or local server); env FLOW_COMFY_DATA_URL wins */
  comfyDataUrl: z.url().optional(),
  /** where flow keeps its own files on a host (Node runtime, scripts, runs, lock) */
  remoteDir: z.string().default(".flow"),
  /**
   * Hosts model downloads may reach although they are not public https hosts: a mirror on the LAN,
   * a local test server ("host" or "host:port", matched by name as URLs write it). Everything else
   * at a loopback, private, link-local or other non-public address, or over plain http, is refused.
   */
  allowHosts: z
    .array(
      z.string().superRefine((v, ctx) => {
        const why = allowEntryProblem(v);
        if (why) ctx.addIssue({ code: "custom", message: why });
      }),
    )
    .default([]),
  /**
   * Hugging Face repositories ("owner/name") searched, in order, for a model file a workflow names
   * without a URL (workflow:lock records what is found). Unset: Comfy-Org's repackaged repositories
   * and Kijai/WanVideo_comfy (lib/comfy/custom-loaders.ts DEFAULT_MODEL_REPOS); [] searches none.
   */
  modelRepos: z.array(z.string().regex(HF_REPO, 'expected a Hugging Face repository "owner/name"')).optional(),
  /** Node runtime that pushed scripts need */
  node: z
    .strictObject({
      version: z.string().default("22.21.1"),
      /** tarball URL; {version} and {arch} are substituted. */
      url: z.string().default("https://nodejs.org/dist/v{version}/node-v{version}-linux-{arch}.tar.gz"),
      minVersion: z.string().default("20.18.0"),
    })
    .prefault({}),
});

const flowShape = z.strictObject({
  hosts: z.record(name, hostEntrySchema).default({}),
  /** JSON inventory files (paths relative to the flowfile), e.g. the lab's or launched cloud boxes */
  inventory: z.array(z.string()).default([]),
  providers: z.array(provider).default([]),
  plugins: z.array(plugin).default([]),
  settings: settingsSchema.prefault({}),
  /**
   * file name (or "folder/file") -> URL for models no workflow says where to get, or
   * { url?, folder? }: folder is where the file goes (under the models root), over any loader's
   */
  models: z.record(z.string(), z.union([z.string(), userModelSchema])).default({}),
});

/**
 * The flowfile as the runner holds it: `models` keeps only URLs (file -> URL, what every reader
 * of it and the secret redactor expect), the folders of { folder } entries go to `modelFolders`.
 */
export const flowSchema = flowShape.transform(({ models, ...rest }) => {
  const urls: Record<string, string> = {};
  const folders: Record<string, string> = {};
  // keys are file names from the user: written as own keys ("__proto__" is a name like any other)
  const put = (o: Record<string, string>, k: string, v: string) =>
    Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
  for (const [k, v] of Object.entries(models)) {
    if (typeof v === "string") put(urls, k, v);
    else {
      if (v.url !== undefined) put(urls, k, v.url);
      if (v.folder !== undefined) put(folders, k, v.folder);
    }
  }
  return { ...rest, models: urls, modelFolders: folders };
});

export type FlowInput = z.input<typeof flowSchema>;
export type FlowConfig = z.output<typeof flowSchema>;
export type HostEntry = z.output<typeof hostEntrySchema>;

export const inventorySchema = z.strictObject({
  knownHostsFile: z.string().optional(),
  hosts: z.record(
    name,
    z.strictObject({
      address: z.string().min(1),
      port: z.number().int().min(1).max(65535).optional(),
      user: z.string().optional(),
      identityFile: z.string().optional(),
      provider: z.string().optional(),
      groups: z.array(name).default([]),
      data: z.record(z.string(), z.unknown()).default({}),
      api: hostApiSchema.optional(),
    }),
  ),
});
export type Inventory = z.output<typeof inventorySchema>;

/** One line per problem: `hosts.gpu1.port: expected a number, got "22a"`. */
export function formatZodError(error: z.ZodError, prefix = ""): string {
  return error.issues
    .map((issue) => {
      const path = [prefix, ...issue.path.map(String)].filter(Boolean).join(".") || "(root)";
      return `${path}: ${describeIssue(issue)}`;
    })
    .join("\n");
}

function describeIssue(issue: z.core.$ZodIssue): string {
  const got = "input" in issue && issue.input !== undefined ? `, got ${show(issue.input)}` : "";
  switch (issue.code) {
    case "invalid_type":
      return `expected ${article(issue.expected)}${got}`;
    case "unrecognized_keys":
      return `unknown key${issue.keys.length > 1 ? "s" : ""} ${issue.keys.map((k) => JSON.stringify(k)).join(", ")}`;
    default:
      return `${issue.message}${issue.code === "custom" ? "" : got}`;
  }
}

function article(type: string): string {
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`;
}

function show(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(v);
  if (typeof v === "object" && v !== null) return Array.isArray(v) ? "an array" : "an object";
  return String(v);
}

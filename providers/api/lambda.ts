// Lambda Cloud API v1, the few calls flow needs. Shapes follow Lambda's published OpenAPI document
// (responses wrapped in {data}, errors in {error:{code,message,suggestion}}; insufficient capacity
// is a 400 with code instance-operations/launch/insufficient-capacity). Unknown fields are ignored
// so additions on Lambda's side do not break us; a missing field we rely on is a clear error.
import { z } from "zod";
import {
  baseUrlFrom,
  CloudApiError,
  describeBody,
  endpointLabel,
  expectShape,
  NoCapacityError,
  request,
  retryFromEnv,
  type HttpResponse,
  type RetryInfo,
  type RetryPolicy,
} from "./http.ts";

export const LAMBDA_DEFAULT_URL = "https://cloud.lambdalabs.com/api/v1";
const API = "Lambda API";

const region = z.object({ name: z.string(), description: z.string().default("") });
const instanceType = z.object({
  name: z.string(),
  description: z.string().default(""),
  gpu_description: z.string().optional(),
  price_cents_per_hour: z.number(),
  specs: z.object({ vcpus: z.number(), memory_gib: z.number(), storage_gib: z.number(), gpus: z.number() }).partial().optional(),
});
const instanceTypes = z.object({
  data: z.record(z.string(), z.object({ instance_type: instanceType, regions_with_capacity_available: z.array(region) })),
});
const instance = z.object({
  id: z.string(),
  name: z.string().nullish(),
  // absent while booting
  ip: z.string().nullish(),
  status: z.string(),
  region: region.optional(),
  instance_type: instanceType.partial().optional(),
  hostname: z.string().nullish(),
});
const sshKey = z.object({ id: z.string(), name: z.string() });
const errorBody = z.object({ error: z.object({ code: z.string(), message: z.string(), suggestion: z.string().optional() }) });

export type LambdaInstanceType = z.output<typeof instanceType> & { regions: { name: string; description: string }[] };
export type LambdaInstance = z.output<typeof instance>;

export interface LambdaOptions {
  apiKey: string;
  /** default: env FLOW_LAMBDA_API_URL, else the real API */
  baseUrl?: string;
  retry?: RetryPolicy;
  onRetry?: (info: RetryInfo) => void;
}

export class LambdaApi {
  readonly baseUrl: string;
  constructor(private readonly opts: LambdaOptions) {
    this.baseUrl = baseUrlFrom(opts.baseUrl, "FLOW_LAMBDA_API_URL", LAMBDA_DEFAULT_URL);
  }

  async instanceTypes(): Promise<LambdaInstanceType[]> {
    const body = await this.call("GET", "/instance-types", undefined, instanceTypes);
    return Object.values(body.data).map((t) => ({ ...t.instance_type, regions: t.regions_with_capacity_available }));
  }

  async instances(): Promise<LambdaInstance[]> {
    return (await this.call("GET", "/instances", undefined, z.object({ data: z.array(instance) }))).data;
  }

  /** null when Lambda no longer knows the instance */
  async instance(id: string): Promise<LambdaInstance | null> {
    const res = await this.raw("GET", `/instances/${encodeURIComponent(id)}`);
    if (res.status === 404) return null;
    return this.check(res, "GET", "/instances/{id}", z.object({ data: instance })).data;
  }

  async sshKeys(): Promise<{ id: string; name: string }[]> {
    return (await this.call("GET", "/ssh-keys", undefined, z.object({ data: z.array(sshKey) }))).data;
  }

  /** Launch one instance; no capacity becomes a NoCapacityError naming the regions that have the type. */
  async launch(req: { region: string; type: string; sshKeyName: string; name: string; image?: string }): Promise<string> {
    const body = {
      region_name: req.region,
      instance_type_name: req.type,
      ssh_key_names: [req.sshKeyName],
      quantity: 1,
      name: req.name,
      // The OpenAPI document offers {id} or {family}; a family name is what users know.
      ...(req.image ? { image: { family: req.image } } : {}),
    };
    const res = await this.raw("POST", "/instance-operations/launch", body);
    const err = errorBody.safeParse(res.json);
    if (res.status >= 400 && err.success && /insufficient-capacity/.test(err.data.error.code)) {
      throw await this.noCapacity(req.type, req.region);
    }
    const launched = z.object({ data: z.object({ instance_ids: z.array(z.string()).min(1) }) });
    return this.check(res, "POST", "/instance-operations/launch", launched).data.instance_ids[0]!;
  }

  async terminate(ids: string[]): Promise<void> {
    const terminated = z.object({ data: z.object({ terminated_instances: z.array(z.unknown()) }) });
    await this.call("POST", "/instance-operations/terminate", { instance_ids: ids }, terminated);
  }

  /** Why a launch failed for capacity, with where the type can be had right now. */
  async noCapacity(type: string, where: string): Promise<NoCapacityError> {
    const types = await this.instanceTypes();
    const t = types.find((x) => x.name === type);
    if (!t) return new NoCapacityError(`Lambda has no instance type ${type}; types: ${types.map((x) => x.name).join(", ")}`, []);
    const others = t.regions.filter((r) => r.name !== where);
    const list = others.map((r) => `${r.name}${r.description ? ` (${r.description})` : ""}`).join(", ");
    return new NoCapacityError(
      `Lambda has no capacity for ${type} in ${where}; ` +
        (others.length ? `regions with capacity now: ${list}` : "no region has capacity for it right now; try another type or later"),
      others.map((r) => r.name),
    );
  }

  private async raw(method: "GET" | "POST", path: string, body?: unknown): Promise<HttpResponse> {
    // The key goes in a header only: URLs end up in logs and proxies.
    return request({
      api: API,
      method,
      baseUrl: this.baseUrl,
      path,
      body,
      headers: { authorization: `Bearer ${this.opts.apiKey}` },
      retry: this.opts.retry ?? retryFromEnv(),
      onRetry: this.opts.onRetry,
    });
  }

  private async call<S extends z.ZodType>(method: "GET" | "POST", path: string, body: unknown, schema: S): Promise<z.output<S>> {
    return this.check(await this.raw(method, path, body), method, path, schema);
  }

  private check<S extends z.ZodType>(res: HttpResponse, method: string, path: string, schema: S): z.output<S> {
    const label = endpointLabel({ api: API, method: method as "GET", path });
    if (res.status >= 400) {
      const err = errorBody.safeParse(res.json);
      if (err.success) {
        const e = err.data.error;
        const hint = res.status === 401 ? " (check LAMBDA_API_KEY)" : "";
        const suggestion = e.suggestion ? ` ${e.suggestion}` : "";
        throw new CloudApiError(`${label}: ${res.status} ${e.code}: ${e.message}${suggestion}${hint}`, res.status, e.code);
      }
      throw new CloudApiError(`${label}: HTTP ${res.status}: ${describeBody(res.text)}`, res.status);
    }
    return expectShape(schema, res, label);
  }
}

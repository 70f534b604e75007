// DataCrunch (now Verda) API v1, the few calls flow needs. Shapes follow DataCrunch's Python and Go
// SDKs: OAuth2 client credentials at /oauth2/token (JSON body), bare JSON bodies (no {data}
// wrapper), errors as {code, message}, POST /instances answering the new id as plain text, and
// PUT /instances {action, id} for delete/shutdown/... Not confirmed from a primary source: the
// exact error code of a 401 and of "not enough resources" (observed as a 503 whose message says
// so), hence the message match in isCapacityAnswer.
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

export const DATACRUNCH_DEFAULT_URL = "https://api.datacrunch.io/v1";
const API = "DataCrunch API";

const token = z.object({
  access_token: z.string().min(1),
  refresh_token: z.string().optional(),
  expires_in: z.number().positive(),
  token_type: z.string().optional(),
});
// Prices arrive as numbers in the SDK's fixtures but have been strings in places; accept both.
const price = z.union([
  z.number(),
  z
    .string()
    .regex(/^\d+(\.\d+)?$/)
    .transform(Number),
]);
const instanceType = z.object({
  id: z.string().optional(),
  instance_type: z.string(),
  price_per_hour: price,
  description: z.string().default(""),
});
const availability = z.array(z.object({ location_code: z.string(), availabilities: z.array(z.string()) }));
const instance = z.object({
  id: z.string(),
  instance_type: z.string(),
  hostname: z.string().nullish(),
  description: z.string().nullish(),
  // null until the box has an address
  ip: z.string().nullish(),
  status: z.string(),
  location: z.string().nullish(),
  price_per_hour: price.nullish(),
});
const sshKey = z.object({ id: z.string(), name: z.string() });
const volume = z.object({
  id: z.string(),
  name: z.string().nullish(),
  size: z.number().optional(),
  status: z.string().optional(),
  location: z.string().nullish(),
});
const errorBody = z.object({ code: z.string().optional(), message: z.string() });

export type DataCrunchInstanceType = z.output<typeof instanceType>;
export type DataCrunchInstance = z.output<typeof instance>;
export type DataCrunchVolume = z.output<typeof volume>;

export interface DataCrunchOptions {
  clientId: string;
  clientSecret: string;
  /** default: env FLOW_DATACRUNCH_API_URL, else the real API */
  baseUrl?: string;
  retry?: RetryPolicy;
  onRetry?: (info: RetryInfo) => void;
}

type Method = "GET" | "POST" | "PUT";

export class DataCrunchApi {
  readonly baseUrl: string;
  private token?: { access: string; refresh?: string; expiresAt: number };

  constructor(private readonly opts: DataCrunchOptions) {
    this.baseUrl = baseUrlFrom(opts.baseUrl, "FLOW_DATACRUNCH_API_URL", DATACRUNCH_DEFAULT_URL);
  }

  async instanceTypes(): Promise<DataCrunchInstanceType[]> {
    return this.call("GET", "/instance-types", undefined, z.array(instanceType));
  }

  /** Locations and the types each can launch now. */
  async availability(): Promise<{ location_code: string; availabilities: string[] }[]> {
    return this.call("GET", "/instance-availability", undefined, availability);
  }

  async instances(): Promise<DataCrunchInstance[]> {
    return this.call("GET", "/instances", undefined, z.array(instance));
  }

  /** null when DataCrunch no longer knows the instance */
  async instance(id: string): Promise<DataCrunchInstance | null> {
    const res = await this.authed("GET", `/instances/${encodeURIComponent(id)}`);
    if (res.status === 404) return null;
    return this.check(res, "GET", "/instances/{id}", instance);
  }

  async sshKeys(): Promise<{ id: string; name: string }[]> {
    return this.call("GET", "/ssh-keys", undefined, z.array(sshKey));
  }

  async volumes(): Promise<DataCrunchVolume[]> {
    return this.call("GET", "/volumes", undefined, z.array(volume));
  }

  /** Deploy one instance; answers its id. No capacity becomes a NoCapacityError naming the locations that have the type. */
  async launch(req: {
    type: string;
    image: string;
    sshKeyIds: string[];
    location: string;
    hostname: string;
    description: string;
    isSpot?: boolean;
    existingVolumes?: string[];
  }): Promise<string> {
    const body = {
      instance_type: req.type,
      image: req.image,
      ssh_key_ids: req.sshKeyIds,
      location_code: req.location,
      hostname: req.hostname,
      description: req.description,
      ...(req.isSpot ? { is_spot: true } : {}),
      ...(req.existingVolumes?.length ? { existing_volumes: req.existingVolumes } : {}),
    };
    const res = await this.authed("POST", "/instances", body, isCapacityAnswer);
    if (res.status >= 400 && isCapacityAnswer(res)) throw await this.noCapacity(req.type, req.location);
    const label = endpointLabel({ api: API, method: "POST", path: "/instances" });
    if (res.status >= 400) this.check(res, "POST", "/instances", z.unknown());
    // The id comes back as text; some gateways quote it as a JSON string.
    const id = typeof res.json === "string" ? res.json : res.text.trim();
    if (!/^[A-Za-z0-9-]{6,}$/.test(id)) {
      throw new CloudApiError(`${label}: expected the new instance id, got ${describeBody(res.text)}`, res.status);
    }
    return id;
  }

  /** delete, shutdown, start, hibernate, ... on one instance */
  async action(id: string, action: "delete" | "shutdown" | "start" | "hibernate" | "restore"): Promise<void> {
    const res = await this.authed("PUT", "/instances", { action, id });
    if (res.status >= 400) this.check(res, "PUT", "/instances", z.unknown());
  }

  async noCapacity(type: string, where: string): Promise<NoCapacityError> {
    const [avail, types] = await Promise.all([this.availability(), this.instanceTypes()]);
    if (!types.some((t) => t.instance_type === type)) {
      return new NoCapacityError(`DataCrunch has no instance type ${type}; types: ${types.map((t) => t.instance_type).join(", ")}`, []);
    }
    const others = avail.filter((l) => l.availabilities.includes(type) && l.location_code !== where).map((l) => l.location_code);
    return new NoCapacityError(
      `DataCrunch has no capacity for ${type} in ${where}; ` +
        (others.length
          ? `locations with capacity now: ${others.join(", ")}`
          : "no location has capacity for it right now; try another type or later"),
      others,
    );
  }

  private async call<S extends z.ZodType>(method: Method, path: string, body: unknown, schema: S): Promise<z.output<S>> {
    return this.check(await this.authed(method, path, body), method, path, schema);
  }

  /** A request with the bearer token; a 401 gets one fresh token and one more try. */
  private async authed(method: Method, path: string, body?: unknown, final503?: (r: HttpResponse) => boolean): Promise<HttpResponse> {
    const send = async () =>
      request({
        api: API,
        method,
        baseUrl: this.baseUrl,
        path,
        body,
        final503,
        headers: { authorization: `Bearer ${await this.accessToken()}` },
        retry: this.opts.retry ?? retryFromEnv(),
        onRetry: this.opts.onRetry,
      });
    const res = await send();
    if (res.status !== 401) return res;
    this.token = undefined;
    return send();
  }

  /** Cached in memory; refreshed shortly before it expires (refresh grant first, then client credentials). */
  private async accessToken(): Promise<string> {
    const now = Date.now();
    if (this.token && now < this.token.expiresAt - 30_000) return this.token.access;
    if (this.token?.refresh) {
      const res = await this.tokenRequest({ grant_type: "refresh_token", refresh_token: this.token.refresh });
      if (res.status < 400) return this.keep(res);
    }
    const res = await this.tokenRequest({
      grant_type: "client_credentials",
      client_id: this.opts.clientId,
      client_secret: this.opts.clientSecret,
    });
    if (res.status >= 400) {
      const e = errorBody.safeParse(res.json);
      const what = e.success ? `${e.data.code ? `${e.data.code}: ` : ""}${e.data.message}` : `HTTP ${res.status}`;
      const message = `${API} POST /oauth2/token: ${res.status} ${what} (check DATACRUNCH_CLIENT_ID and DATACRUNCH_CLIENT_SECRET)`;
      throw new CloudApiError(message, res.status, e.success ? e.data.code : undefined);
    }
    return this.keep(res);
  }

  private tokenRequest(body: Record<string, string>): Promise<HttpResponse> {
    // Credentials travel in the JSON body, as the SDKs send them; never in the URL.
    return request({
      api: API,
      method: "POST",
      baseUrl: this.baseUrl,
      path: "/oauth2/token",
      body,
      retry: this.opts.retry ?? retryFromEnv(),
      onRetry: this.opts.onRetry,
    });
  }

  private keep(res: HttpResponse): string {
    const t = expectShape(token, res, `${API} POST /oauth2/token`);
    this.token = { access: t.access_token, refresh: t.refresh_token, expiresAt: Date.now() + t.expires_in * 1000 };
    return t.access_token;
  }

  private check<S extends z.ZodType>(res: HttpResponse, method: string, path: string, schema: S): z.output<S> {
    const label = endpointLabel({ api: API, method: method as Method, path });
    if (res.status >= 400) {
      const e = errorBody.safeParse(res.json);
      const hint = res.status === 401 ? " (check DATACRUNCH_CLIENT_ID and DATACRUNCH_CLIENT_SECRET)" : "";
      if (e.success) {
        const code = e.data.code ? `${e.data.code}: ` : "";
        throw new CloudApiError(`${label}: ${res.status} ${code}${e.data.message}${hint}`, res.status, e.data.code);
      }
      throw new CloudApiError(`${label}: HTTP ${res.status}: ${describeBody(res.text)}${hint}`, res.status);
    }
    return expectShape(schema, res, label);
  }
}

/** DataCrunch answers "Not enough resources to deploy ..." (seen as a 503) when a location is out of a type. */
export function isCapacityAnswer(res: HttpResponse): boolean {
  const e = errorBody.safeParse(res.json);
  return e.success && /not enough resources|insufficient (capacity|resources)|no capacity|out of stock/i.test(e.data.message);
}

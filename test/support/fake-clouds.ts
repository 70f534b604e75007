// Local stand-ins for the Lambda Cloud and DataCrunch APIs, following their documented shapes
// (see providers/api/*.ts), with the faults flow must survive: 429/503 bursts with
// Retry-After, no capacity for a type in a region, bad credentials (401 in the real error shape),
// instances that boot for N polls before they run. Their "ip" is 127.0.0.1; a banner server on a
// local port stands in for the box's sshd (tests pass its port as --ssh-port). Loopback only.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createTcpServer, type AddressInfo, type Server as TcpServer } from "node:net";
import { randomBytes, randomUUID } from "node:crypto";

export interface Fault {
  /** the next `count` requests (token requests included) get this status */
  count: number;
  status: 429 | 503;
  retryAfter?: number;
}

interface FakeInstance {
  id: string;
  name: string;
  type: string;
  region: string;
  status: string;
  polls: number;
}

export interface FakeCloud {
  url: string;
  /** every request seen: "GET /instances" ... */
  requests: string[];
  launches: number;
  terminations: string[];
  fault?: Fault;
  /** polls of GET /instances/{id} before a booting instance runs */
  bootPolls: number;
  instances: Map<string, FakeInstance>;
  count(prefix: string): number;
  close(): Promise<void>;
}

function listen(server: Server | TcpServer): Promise<number> {
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port)));
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = typeof body === "string" ? body : JSON.stringify(body);
  res.writeHead(status, { "content-type": typeof body === "string" ? "text/plain" : "application/json", ...headers });
  res.end(text);
}

async function readBody(req: IncomingMessage): Promise<any> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const text = Buffer.concat(chunks).toString();
  try {
    return text ? JSON.parse(text) : undefined;
  } catch {
    return undefined;
  }
}

function base(): Omit<FakeCloud, "url" | "close"> {
  const state = {
    requests: [] as string[],
    launches: 0,
    terminations: [] as string[],
    fault: undefined as Fault | undefined,
    bootPolls: 2,
    instances: new Map<string, FakeInstance>(),
    count(prefix: string) {
      return state.requests.filter((r) => r.startsWith(prefix)).length;
    },
  };
  return state;
}

/** Answers the injected 429/503 burst; true when it did. */
function faulted(cloud: Omit<FakeCloud, "url" | "close">, res: ServerResponse, body: unknown): boolean {
  const f = cloud.fault;
  if (!f || f.count <= 0) return false;
  f.count--;
  send(res, f.status, body, f.retryAfter !== undefined ? { "retry-after": String(f.retryAfter) } : {});
  return true;
}

/** Poll by poll, a booting box comes up. */
function advance(i: FakeInstance, bootPolls: number, running: string): void {
  if (i.status === "booting" || i.status === "provisioning") {
    i.polls++;
    if (i.polls >= bootPolls) i.status = running;
  }
}

// ---------------------------------------------------------------- Lambda

export const LAMBDA_TYPES = {
  gpu_1x_a10: { price: 75, description: "1x A10 (24 GB PCIe)", regions: ["us-east-1", "us-west-1"] },
  gpu_1x_h100_pcie: { price: 249, description: "1x H100 (80 GB PCIe)", regions: ["us-west-3", "europe-central-1"] },
  gpu_8x_h100_sxm5: { price: 2392, description: "8x H100 (80 GB SXM5)", regions: [] as string[] },
} as const;
const REGION_NAMES: Record<string, string> = {
  "us-east-1": "Virginia, USA",
  "us-west-1": "California, USA",
  "us-west-3": "Utah, USA",
  "europe-central-1": "Germany",
};

export async function startFakeLambda(opts: { apiKey: string }): Promise<FakeCloud> {
  const cloud = base();
  const region = (name: string) => ({ name, description: REGION_NAMES[name] ?? name });
  const typeInfo = (name: string) => {
    const t = LAMBDA_TYPES[name as keyof typeof LAMBDA_TYPES];
    return {
      name,
      description: t.description,
      gpu_description: t.description.replace(/^\d+x /, ""),
      price_cents_per_hour: t.price,
      specs: { vcpus: 30, memory_gib: 200, storage_gib: 1400, gpus: 1 },
    };
  };
  const view = (i: FakeInstance) => ({
    id: i.id,
    name: i.name,
    status: i.status,
    ssh_key_names: ["laptop"],
    file_system_names: [],
    region: region(i.region),
    instance_type: typeInfo(i.type),
    hostname: `${i.id.slice(0, 8)}.cloud.lambdalabs.com`,
    ...(i.status === "active" ? { ip: "127.0.0.1", private_ip: "10.0.0.2" } : {}),
  });
  const error = (code: string, message: string, suggestion?: string) => ({
    error: { code, message, ...(suggestion ? { suggestion } : {}) },
  });

  const server = createServer(async (req, res) => {
    const path = (req.url ?? "/").replace(/^\/api\/v1/, "").replace(/\?.*$/, "");
    cloud.requests.push(`${req.method} ${path}`);
    const body = await readBody(req);
    if (faulted(cloud, res, error("global/rate-limited", "Too many requests"))) return;
    if (req.headers.authorization !== `Bearer ${opts.apiKey}`) {
      return send(
        res,
        401,
        error(
          "global/invalid-api-key",
          "API key was invalid, expired, or deleted.",
          "Check your API key or create a new one, then try again.",
        ),
      );
    }
    const m = /^\/instances\/([^/]+)$/.exec(path);
    if (req.method === "GET" && path === "/instance-types") {
      const data = Object.fromEntries(
        Object.keys(LAMBDA_TYPES).map((n) => [
          n,
          {
            instance_type: typeInfo(n),
            regions_with_capacity_available: LAMBDA_TYPES[n as keyof typeof LAMBDA_TYPES].regions.map(region),
          },
        ]),
      );
      return send(res, 200, { data });
    }
    if (req.method === "GET" && path === "/ssh-keys") {
      return send(res, 200, { data: [{ id: "k1", name: "laptop", public_key: "ssh-ed25519 AAAA laptop" }] });
    }
    if (req.method === "GET" && path === "/instances") {
      return send(res, 200, { data: [...cloud.instances.values()].filter((i) => i.status !== "terminated").map(view) });
    }
    if (req.method === "GET" && m) {
      const i = cloud.instances.get(m[1]!);
      if (!i) return send(res, 404, error("global/object-does-not-exist", "Specified instance does not exist."));
      advance(i, cloud.bootPolls, "active");
      return send(res, 200, { data: view(i) });
    }
    if (req.method === "POST" && path === "/instance-operations/launch") {
      const t = LAMBDA_TYPES[body?.instance_type_name as keyof typeof LAMBDA_TYPES];
      if (!t || !Array.isArray(body?.ssh_key_names) || body.ssh_key_names.length !== 1 || typeof body.region_name !== "string") {
        return send(res, 400, error("global/invalid-parameters", "Invalid request data."));
      }
      if (!(t.regions as readonly string[]).includes(body.region_name)) {
        return send(
          res,
          400,
          error(
            "instance-operations/launch/insufficient-capacity",
            "Not enough capacity to fulfill launch request.",
            "Choose an instance type with more availability, or try again later.",
          ),
        );
      }
      cloud.launches++;
      const id = randomBytes(16).toString("hex");
      cloud.instances.set(id, {
        id,
        name: body.name ?? "",
        type: body.instance_type_name,
        region: body.region_name,
        status: "booting",
        polls: 0,
      });
      return send(res, 200, { data: { instance_ids: [id] } });
    }
    if (req.method === "POST" && path === "/instance-operations/terminate") {
      const ids: string[] = body?.instance_ids ?? [];
      const found = ids.map((id) => cloud.instances.get(id));
      if (!ids.length || found.some((i) => !i)) {
        return send(res, 404, error("global/object-does-not-exist", "Specified instance does not exist."));
      }
      for (const i of found) {
        i!.status = "terminated";
        cloud.terminations.push(i!.id);
      }
      return send(res, 200, { data: { terminated_instances: found.map((i) => view(i!)) } });
    }
    send(res, 404, error("global/object-does-not-exist", `no route ${req.method} ${path}`));
  });
  const port = await listen(server);
  return {
    ...cloud,
    get fault() {
      return cloud.fault;
    },
    set fault(f) {
      cloud.fault = f;
    },
    get launches() {
      return cloud.launches;
    },
    get bootPolls() {
      return cloud.bootPolls;
    },
    set bootPolls(n) {
      cloud.bootPolls = n;
    },
    url: `http://127.0.0.1:${port}/api/v1`,
    close: () => new Promise((r) => server.close(() => r())),
  } as FakeCloud;
}

// ---------------------------------------------------------------- DataCrunch

export const DATACRUNCH_TYPES = {
  "1A100.22V": { price: 1.29, description: "Dedicated Hardware Instance" },
  "1H100.80S.30V": { price: 2.65, description: "Dedicated Hardware Instance" },
  "CPU.4V.16G": { price: 0.04, description: "CPU Node" },
} as const;

export async function startFakeDataCrunch(opts: {
  clientId: string;
  clientSecret: string;
  tokenTtl?: number;
}): Promise<FakeCloud & { tokensIssued: number; revokeTokens(): void; availability: Record<string, string[]> }> {
  const cloud = base();
  const availability: Record<string, string[]> = {
    "FIN-01": ["1A100.22V", "CPU.4V.16G"],
    "FIN-02": ["1H100.80S.30V"],
    "ICE-01": ["1H100.80S.30V", "1A100.22V"],
  };
  const tokens = new Set<string>();
  const refreshTokens = new Set<string>();
  let tokensIssued = 0;
  const issue = () => {
    const access = randomBytes(24).toString("base64url");
    const refresh = randomBytes(24).toString("base64url");
    tokens.add(access);
    refreshTokens.add(refresh);
    tokensIssued++;
    return { access_token: access, refresh_token: refresh, scope: "cloud-api-v1", token_type: "Bearer", expires_in: opts.tokenTtl ?? 3600 };
  };
  const view = (i: FakeInstance) => ({
    id: i.id,
    instance_type: i.type,
    image: "ubuntu-24.04-cuda-12.8-open-docker",
    price_per_hour: DATACRUNCH_TYPES[i.type as keyof typeof DATACRUNCH_TYPES].price,
    hostname: i.name,
    description: `flow: ${i.name}`,
    ip: i.status === "running" ? "127.0.0.1" : null,
    status: i.status,
    created_at: new Date().toISOString(),
    ssh_key_ids: ["key-1"],
    cpu: {},
    gpu: {},
    memory: {},
    storage: {},
    gpu_memory: {},
    location: i.region,
    is_spot: false,
  });

  const server = createServer(async (req, res) => {
    const path = (req.url ?? "/").replace(/^\/v1/, "").replace(/\?.*$/, "");
    cloud.requests.push(`${req.method} ${path}`);
    const body = await readBody(req);
    if (faulted(cloud, res, { code: "too_many_requests", message: "Too many requests" })) return;
    if (req.method === "POST" && path === "/oauth2/token") {
      if (body?.grant_type === "client_credentials" && body.client_id === opts.clientId && body.client_secret === opts.clientSecret) {
        return send(res, 200, issue());
      }
      if (body?.grant_type === "refresh_token" && refreshTokens.delete(body.refresh_token)) return send(res, 200, issue());
      const status = body?.grant_type === "refresh_token" ? 400 : 401;
      return send(res, status, { code: "unauthorized_request", message: "Invalid client id or client secret" });
    }
    const auth = /^Bearer (.+)$/.exec(req.headers.authorization ?? "");
    if (!auth || !tokens.has(auth[1]!)) {
      return send(res, 401, { code: "unauthorized_request", message: "Access token is missing, invalid or expired" });
    }
    const m = /^\/instances\/([^/]+)$/.exec(path);
    if (req.method === "GET" && path === "/instance-types") {
      return send(
        res,
        200,
        Object.entries(DATACRUNCH_TYPES).map(([name, t]) => ({
          id: randomUUID(),
          instance_type: name,
          price_per_hour: t.price,
          description: t.description,
          cpu: {},
          gpu: {},
          memory: {},
          gpu_memory: {},
          storage: {},
        })),
      );
    }
    if (req.method === "GET" && path === "/instance-availability") {
      return send(
        res,
        200,
        Object.entries(availability).map(([location_code, availabilities]) => ({ location_code, availabilities })),
      );
    }
    if (req.method === "GET" && path === "/ssh-keys") {
      return send(res, 200, [{ id: "key-1", name: "laptop", key: "ssh-ed25519 AAAA laptop" }]);
    }
    if (req.method === "GET" && path === "/volumes") return send(res, 200, []);
    if (req.method === "GET" && path === "/instances") {
      return send(res, 200, [...cloud.instances.values()].filter((i) => i.status !== "deleted").map(view));
    }
    if (req.method === "GET" && m) {
      const i = cloud.instances.get(m[1]!);
      if (!i || i.status === "deleted") return send(res, 404, { code: "not_found", message: "Instance not found" });
      advance(i, cloud.bootPolls, "running");
      return send(res, 200, view(i));
    }
    if (req.method === "POST" && path === "/instances") {
      if (
        !(body?.instance_type in DATACRUNCH_TYPES) ||
        typeof body.location_code !== "string" ||
        typeof body.image !== "string" ||
        !Array.isArray(body.ssh_key_ids)
      ) {
        return send(res, 400, { code: "invalid_request", message: "Invalid request" });
      }
      if (!(availability[body.location_code] ?? []).includes(body.instance_type)) {
        return send(res, 503, {
          code: "service_unavailable",
          message: `Not enough resources to deploy a 1 GPU instance type ${body.instance_type} in ${body.location_code}`,
        });
      }
      cloud.launches++;
      const id = randomUUID();
      cloud.instances.set(id, {
        id,
        name: body.hostname,
        type: body.instance_type,
        region: body.location_code,
        status: "provisioning",
        polls: 0,
      });
      return send(res, 202, id);
    }
    if (req.method === "PUT" && path === "/instances") {
      const ids: string[] = Array.isArray(body?.id) ? body.id : [body?.id];
      const found = ids.map((id) => cloud.instances.get(id));
      if (found.some((i) => !i)) return send(res, 404, { code: "not_found", message: "Instance not found" });
      if (body.action !== "delete") {
        return send(res, 400, { code: "invalid_request", message: `unsupported action in the fake: ${body.action}` });
      }
      for (const i of found) {
        i!.status = "deleted";
        cloud.terminations.push(i!.id);
      }
      return send(res, 202, "");
    }
    send(res, 404, { code: "not_found", message: `no route ${req.method} ${path}` });
  });
  const port = await listen(server);
  return {
    ...cloud,
    get fault() {
      return cloud.fault;
    },
    set fault(f) {
      cloud.fault = f;
    },
    get launches() {
      return cloud.launches;
    },
    get bootPolls() {
      return cloud.bootPolls;
    },
    set bootPolls(n) {
      cloud.bootPolls = n;
    },
    get tokensIssued() {
      return tokensIssued;
    },
    revokeTokens: () => tokens.clear(),
    availability,
    url: `http://127.0.0.1:${port}/v1`,
    close: () => new Promise((r) => server.close(() => r())),
  } as FakeCloud & { tokensIssued: number; revokeTokens(): void; availability: Record<string, string[]> };
}

// ---------------------------------------------------------------- the box's sshd

export interface BannerServer {
  port: number;
  /** false: accept and hang up without a banner, as a box whose sshd is not up yet */
  up: boolean;
  connections: number;
  close(): Promise<void>;
}

export async function startBannerServer(up = true): Promise<BannerServer> {
  const state = { up, connections: 0 };
  const server = createTcpServer((socket) => {
    state.connections++;
    socket.on("error", () => undefined);
    if (state.up) socket.end("SSH-2.0-OpenSSH_9.6p1 Ubuntu-3ubuntu13\r\n");
    else socket.destroy();
  });
  const port = await listen(server);
  return {
    port,
    get up() {
      return state.up;
    },
    set up(v) {
      state.up = v;
    },
    get connections() {
      return state.connections;
    },
    close: () => new Promise((r) => server.close(() => r())),
  };
}

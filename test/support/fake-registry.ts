// A Comfy Registry stand-in (api.comfy.org) for what a pack install asks, after the registry's
// OpenAPI spec (registry-backend-openapi-2025-02.yml): GET /nodes/{nodeId}, /nodes/{nodeId}/versions,
// /nodes/{nodeId}/versions/{version}, /nodes/{nodeId}/install[?version=]. A NodeVersion's downloadUrl
// is a zip on this server (/files/<id>/<version>.zip) with the pack's files at its root, as the
// registry's archives have them. Its url is what FLOW_REGISTRY_URL takes (plugins/workflow/upstream.ts).
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { createHash } from "node:crypto";
import type { AddressInfo } from "node:net";
import { packFiles } from "./fake-packs.ts";
import { zipFiles } from "./fake-pypi.ts";

export type NodeVersionStatus =
  | "NodeVersionStatusActive"
  | "NodeVersionStatusDeleted"
  | "NodeVersionStatusBanned"
  | "NodeVersionStatusPending"
  | "NodeVersionStatusFlagged";

export interface RegistryVersion {
  version: string;
  /** node classes of this version (default: the node's) */
  classes?: string[];
  /** pip dependencies: requirements.txt and NodeVersion.dependencies (default: the node's) */
  requirements?: string[];
  status?: NodeVersionStatus;
  deprecated?: boolean;
  changelog?: string;
}

export interface RegistryNode {
  /** published versions, oldest first; the newest active one is latest_version */
  versions: (string | RegistryVersion)[];
  /** display name and the pack's folder name (default: the id) */
  name?: string;
  publisher?: string;
  repository?: string;
  classes?: string[];
  requirements?: string[];
  status?: "NodeStatusActive" | "NodeStatusDeleted" | "NodeStatusBanned";
}

export interface FakeRegistryOptions {
  /** node id -> node */
  nodes: Record<string, RegistryNode>;
}

export interface FakeRegistry {
  /** http://127.0.0.1:<port>: FLOW_REGISTRY_URL */
  url: string;
  port: number;
  /** every request, "METHOD /path?query" */
  requests: string[];
  /** the archive /files/<id>/<version>.zip serves */
  archive(id: string, version: string): Buffer;
  close(): Promise<void>;
}

const SEMVER = /^\d+\.\d+\.\d+$/;
const STATUS_TEXT: Record<number, string> = { 400: "Bad Request", 403: "Forbidden", 404: "Not Found" };
// a stable UUID-shaped id per node version, as the registry's ids are UUIDs
const uuid = (s: string) =>
  createHash("sha1")
    .update(s)
    .digest("hex")
    .replace(/^(.{8})(.{4})(.{4})(.{4})(.{12}).*$/, "$1-$2-$3-$4-$5");

export async function startFakeRegistry(opts: FakeRegistryOptions): Promise<FakeRegistry> {
  const requests: string[] = [];
  const versionsOf = (n: RegistryNode): RegistryVersion[] => n.versions.map((v) => (typeof v === "string" ? { version: v } : v));
  const active = (v: RegistryVersion) => (v.status ?? "NodeVersionStatusActive") === "NodeVersionStatusActive";
  const archives = new Map<string, Buffer>();

  function archive(id: string, version: string): Buffer {
    const key = `${id}@${version}`;
    let zip = archives.get(key);
    if (!zip) {
      const node = opts.nodes[id];
      const v = node && versionsOf(node).find((x) => x.version === version);
      if (!node || !v) throw new Error(`no version ${version} of ${id}`);
      const classes = v.classes ?? node.classes ?? [`${(node.name ?? id).replace(/[^A-Za-z0-9]/g, "")}Node`];
      const requirements = v.requirements ?? node.requirements;
      const spec = { name: node.name ?? id, classes, requirements, publisher: node.publisher ?? "flow-test", registryId: id };
      archives.set(key, (zip = zipFiles(packFiles(spec, version))));
    }
    return zip;
  }

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    requests.push(`${req.method} ${req.url}`);
    const u = new URL(req.url ?? "/", "http://x");
    // absolute download links on the address the client used (a lab host reaches us through a forward)
    const base = `http://${req.headers.host ?? "127.0.0.1"}`;
    const json = (status: number, body: unknown) => {
      const text = JSON.stringify(body);
      res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) }).end(text);
    };
    // the spec's two error shapes: ErrorResponse {error, message} and, on the versions routes, Error {message}
    const errorResponse = (status: number, message: string) => json(status, { error: STATUS_TEXT[status] ?? "Error", message });
    const path = u.pathname.split("/").map((s) => decodeURIComponent(s));

    if (path[1] === "files" && path.length === 4 && path[3]!.endsWith(".zip")) {
      const [id, version] = [path[2]!, path[3]!.slice(0, -4)];
      const node = opts.nodes[id];
      if (!node || !versionsOf(node).some((v) => v.version === version)) return json(404, { message: "No such object" });
      const zip = archive(id, version);
      return void res.writeHead(200, { "content-type": "application/zip", "content-length": zip.length }).end(zip);
    }
    if (path[1] !== "nodes" || !path[2] || req.method !== "GET") return errorResponse(404, "Not Found");
    const id = path[2];
    const node = opts.nodes[id];
    const versionRoute = path[3] === "versions";
    if (!node || node.status === "NodeStatusDeleted") {
      return versionRoute ? json(404, { message: "Node not found" }) : errorResponse(404, "Node not found");
    }
    if (node.status === "NodeStatusBanned") return errorResponse(403, "Node banned");
    const all = versionsOf(node);
    const nodeVersion = (v: RegistryVersion) => ({
      id: uuid(`${id}@${v.version}`),
      version: v.version,
      createdAt: new Date(Date.UTC(2025, 0, 1 + all.indexOf(v))).toISOString(),
      changelog: v.changelog ?? `${v.version}`,
      dependencies: v.requirements ?? node.requirements ?? [],
      downloadUrl: `${base}/files/${encodeURIComponent(id)}/${encodeURIComponent(v.version)}.zip`,
      deprecated: v.deprecated ?? false,
      status: v.status ?? "NodeVersionStatusActive",
      node_id: id,
    });
    const latest = [...all].reverse().find(active);
    const rest = path.slice(3);

    if (!rest.length) {
      const publisher = node.publisher ?? "flow-test";
      return json(200, {
        id,
        name: node.name ?? id,
        description: `${node.name ?? id}: a pack for flow's tests`,
        author: publisher,
        license: "LICENSE",
        repository: node.repository ?? `https://github.com/${publisher}/${node.name ?? id}`,
        tags: [],
        ...(latest ? { latest_version: nodeVersion(latest) } : {}),
        downloads: 0,
        rating: 0,
        publisher: { id: publisher, name: publisher, status: "PublisherStatusActive" },
        status: node.status ?? "NodeStatusActive",
      });
    }
    if (rest[0] === "versions" && rest.length === 1) {
      // newest first; without `statuses`, deleted versions are left out
      const statuses = u.searchParams.getAll("statuses").flatMap((s) => s.split(","));
      const shown = all.filter((v) =>
        statuses.length ? statuses.includes(v.status ?? "NodeVersionStatusActive") : v.status !== "NodeVersionStatusDeleted",
      );
      return json(200, [...shown].reverse().map(nodeVersion));
    }
    if (rest[0] === "versions" && rest.length === 2) {
      const v = all.find((x) => x.version === rest[1]);
      if (!v || v.status === "NodeVersionStatusDeleted") return json(404, { message: "Node version not found" });
      return json(200, nodeVersion(v));
    }
    if (rest[0] === "install" && rest.length === 1) {
      const wanted = u.searchParams.get("version");
      if (wanted !== null && !SEMVER.test(wanted)) return errorResponse(400, `invalid version: ${wanted}`);
      const v = wanted === null ? latest : all.find((x) => x.version === wanted);
      if (!v || v.status === "NodeVersionStatusDeleted") return errorResponse(404, "Node version not found");
      if (v.status === "NodeVersionStatusBanned") return errorResponse(403, "Node version banned");
      return json(200, nodeVersion(v));
    }
    errorResponse(404, "Not Found");
  };

  const server = createServer((req, res) => {
    try {
      handle(req, res);
    } catch (e) {
      if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" }).end(String(e));
    }
  });
  await new Promise<void>((ok, fail) => server.once("error", fail).listen(0, "127.0.0.1", ok));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    archive,
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}

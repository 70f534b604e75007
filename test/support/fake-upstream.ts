// Local stand-ins for the services `workflow:*` tasks talk to, speaking their real protocols:
// a static file server (ComfyUI-Manager's raw files, with ETag / 304), GitHub's commits API,
// the Comfy Registry's /nodes API, and Hugging Face (under /hf): the API's POST paths-info (what
// @huggingface/hub asks for a file's size and LFS sha256) and HEAD /resolve (302 + X-Linked-*).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createHash } from "node:crypto";
import { readFile, stat } from "node:fs/promises";
import { resolve, sep } from "node:path";

export interface FakeUpstream {
  url: string;
  /** every request seen, "METHOD /path" */
  log: string[];
  close(): Promise<void>;
}

export interface FakeOptions {
  /** serve files of this folder under /data/ */
  staticDir?: string;
  /** GitHub: "owner/repo" -> branch/HEAD -> sha */
  commits?: Record<string, string>;
  /** Registry: id -> published versions, newest last */
  registry?: Record<string, string[]>;
  /** Hugging Face: "repo/path" -> LFS file facts; anything else under /resolve/ is a 404 */
  hfFiles?: Record<string, { size: number; sha256: string }>;
  /** Hugging Face: the tokens GET /api/whoami-v2 accepts */
  hfTokens?: string[];
  /** ComfyUI: GET /object_info answers this file */
  objectInfoFile?: string;
  /** answer every request with this status (outage) */
  failWith?: number;
}

const sha1 = (s: string) => createHash("sha1").update(s).digest("hex");

export async function startFakeUpstream(opts: FakeOptions): Promise<FakeUpstream> {
  const log: string[] = [];
  const json = (res: ServerResponse, status: number, body: unknown) =>
    res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const u = new URL(req.url ?? "/", "http://x");
    const path = decodeURIComponent(u.pathname);
    log.push(`${req.method} ${u.pathname}`);
    if (opts.failWith) return json(res, opts.failWith, { message: "outage" });

    if (path.startsWith("/data/") && opts.staticDir) {
      const root = resolve(opts.staticDir);
      const file = resolve(root, path.slice("/data/".length));
      if (!file.startsWith(root + sep)) return json(res, 403, { message: "no" });
      try {
        const s = await stat(file);
        const etag = `"${s.size}-${s.mtimeMs}"`;
        if (req.headers["if-none-match"] === etag) return res.writeHead(304, { etag }).end();
        const headers = { "content-type": "application/json", etag, "last-modified": s.mtime.toUTCString() };
        return res.writeHead(200, headers).end(await readFile(file));
      } catch {
        return json(res, 404, { message: "Not Found" });
      }
    }

    if (path === "/object_info" && opts.objectInfoFile)
      return res.writeHead(200, { "content-type": "application/json" }).end(await readFile(opts.objectInfoFile));

    // GitHub REST: GET /repos/{owner}/{repo}/commits/{ref} -> a commit object with `sha`.
    const gh = /^\/github\/repos\/([^/]+)\/([^/]+)\/commits\/(.+)$/.exec(path);
    if (gh) {
      const sha = opts.commits?.[`${gh[1]}/${gh[2]}`.toLowerCase()];
      if (!sha) return json(res, 404, { message: "Not Found", documentation_url: "https://docs.github.com/rest" });
      const html_url = `https://github.com/${gh[1]}/${gh[2]}/commit/${sha}`;
      return json(res, 200, { sha, commit: { message: `head of ${gh[3]}` }, html_url });
    }

    // Comfy Registry: GET /nodes/{id} (latest_version) and /nodes/{id}/versions.
    const reg = /^\/registry\/nodes\/([^/]+)(\/versions)?$/.exec(path);
    if (reg) {
      const versions = opts.registry?.[reg[1]!];
      if (!versions) return json(res, 404, { message: "Node not found" });
      const nv = (v: string) => ({
        id: sha1(v),
        version: v,
        downloadUrl: `https://cdn.comfy.org/${reg[1]}/${v}/node.zip`,
        status: "NodeVersionStatusActive",
      });
      if (reg[2]) return json(res, 200, [...versions].reverse().map(nv));
      const latest_version = nv(versions[versions.length - 1]!);
      return json(res, 200, { id: reg[1], name: reg[1], repository: `https://github.com/x/${reg[1]}`, latest_version });
    }

    // Hugging Face: GET /api/whoami-v2 answers the account of a token it knows, else 401.
    if (path === "/hf/api/whoami-v2") {
      const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? "")?.[1];
      if (!token || !opts.hfTokens?.includes(token)) return json(res, 401, { error: "Invalid credentials in Authorization header" });
      const auth = { type: "access_token", accessToken: { displayName: "t", role: "read" } };
      return json(res, 200, { type: "user", name: "flow-tester", auth });
    }

    // Hugging Face: POST /api/models/{repo}/paths-info/{rev} {paths}: the LFS files among them, with
    // their sha256 as the LFS oid; a path that is no file is left out, as the Hub does.
    const info = /^\/hf\/api\/models\/([^/]+\/[^/]+)\/paths-info\/([^/]+)$/.exec(path);
    if (info && req.method === "POST") {
      let body = "";
      for await (const c of req) body += c;
      const paths = (JSON.parse(body || "{}") as { paths?: unknown }).paths;
      const out = (Array.isArray(paths) ? paths : []).flatMap((p) => {
        const f = typeof p === "string" ? opts.hfFiles?.[`${info[1]}/${p}`] : undefined;
        if (!f) return [];
        const lfs = { oid: f.sha256, size: f.size, pointerSize: 134 };
        return [{ type: "file", path: p, size: f.size, oid: sha1(`${info[1]}/${p}`), lfs }];
      });
      return json(res, 200, out);
    }

    // Hugging Face: HEAD /{repo}/resolve/{rev}/{path}: LFS files answer 302 to the CDN with X-Linked-*.
    const hf = /^\/hf\/(.+?\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(path);
    if (hf) {
      const f = opts.hfFiles?.[`${hf[1]}/${hf[3]}`];
      if (!f) return res.writeHead(404, { "x-error-code": "EntryNotFound" }).end();
      return res
        .writeHead(302, {
          location: `https://cdn-lfs.hf.co/repos/${f.sha256}?download=true`,
          "x-linked-size": String(f.size),
          "x-linked-etag": `"${f.sha256}"`,
          etag: `"${sha1(hf[3]!)}"`,
          "x-repo-commit": sha1(hf[1]!),
        })
        .end();
    }
    json(res, 404, { message: "Not Found" });
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((e) => res.writeHead(500).end(String(e)));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    log,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** Environment pointing every workflow:* upstream at a fake. */
export function fakeEnv(f: FakeUpstream, cacheHome: string): Record<string, string> {
  return {
    FLOW_COMFY_DATA_URL: `${f.url}/data/`,
    FLOW_GITHUB_API_URL: `${f.url}/github`,
    FLOW_REGISTRY_URL: `${f.url}/registry`,
    FLOW_HF_URL: `${f.url}/hf`,
    XDG_CACHE_HOME: cacheHome,
  };
}

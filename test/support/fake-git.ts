// A Git smart-HTTP server for tests: a Node http server running git's own `git http-backend` as
// CGI over bare repositories named <owner>/<repo>.git in a temp folder. With
// `git config url.<url>/.insteadOf https://github.com/` a client (a lab host included, through an
// SSH remote forward) clones https://github.com/owner/repo from here. Read-only, loopback only.
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { execFile, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { gunzipSync } from "node:zlib";

const run = promisify(execFile);

export interface FakeGitOptions {
  /** "owner/repo" -> a non-bare source repository or a bundle file; its branches and tags are served */
  repos?: Record<string, string>;
  /**
   * false: the server refuses a want of a commit that no ref points at (a fetch by sha of an older
   * commit fails), as a server without uploadpack.allow*SHA1InWant does. Default true, as GitHub.
   */
  allowShaWant?: boolean;
}

export interface AddCommit {
  /** path -> content written on top of the current tree (default: one file that changes every time) */
  files?: Record<string, string>;
  message?: string;
}

export interface FakeGit {
  /** http://127.0.0.1:<port> (no trailing slash): `url.<url>/.insteadOf https://github.com/` */
  url: string;
  port: number;
  /** every request, "METHOD /path?query" as the client sent it */
  requests: string[];
  /** the requests whose body came gzipped (git compresses a large fetch request) */
  gzipped: string[];
  /** the bare repository of "owner/repo" */
  repoPath(name: string): string;
  /** the commits of the default branch, oldest first (first-parent) */
  commits(name: string): string[];
  /** serves another repository (same sources as `repos`) */
  addRepo(name: string, source: string): Promise<void>;
  /** a new commit on the default branch, as an upstream push would add; answers its sha */
  addCommit(name: string, c?: AddCommit): Promise<string>;
  close(): Promise<void>;
}

// no user or system git configuration: what the tests see must not depend on the machine's
const GIT_ENV = { GIT_CONFIG_NOSYSTEM: "1", GIT_CONFIG_GLOBAL: "/dev/null", GIT_TERMINAL_PROMPT: "0" };
const IDENT = { GIT_AUTHOR_NAME: "Upstream", GIT_AUTHOR_EMAIL: "upstream@example.com" };

export async function startFakeGit(opts: FakeGitOptions = {}): Promise<FakeGit> {
  const root = mkdtempSync(join(tmpdir(), "flow-fake-git-"));
  const allowShaWant = opts.allowShaWant ?? true;
  const requests: string[] = [];
  const gzipped: string[] = [];
  const names = new Set<string>();
  const repoPath = (name: string) => join(root, `${name}.git`);
  const git = (name: string, args: string[], env: Record<string, string> = {}, input?: string) => {
    const p = run("git", ["--git-dir", repoPath(name), ...args], { env: { ...process.env, ...GIT_ENV, ...env } });
    if (input !== undefined) p.child.stdin!.end(input);
    return p.then((r) => r.stdout.trim());
  };

  async function addRepo(name: string, source: string): Promise<void> {
    if (!/^[A-Za-z0-9][\w.-]*\/[\w.-]+$/.test(name) || name.endsWith(".git"))
      throw new Error(`repository name must be owner/repo: ${name}`);
    statSync(source); // a clear error for a missing source, before git's
    await mkdir(dirname(repoPath(name)), { recursive: true });
    await run("git", ["clone", "--quiet", "--bare", source, repoPath(name)], { env: { ...process.env, ...GIT_ENV } });
    await git(name, ["remote", "remove", "origin"]).catch(() => undefined);
    const allow = String(allowShaWant);
    for (const key of ["uploadpack.allowReachableSHA1InWant", "uploadpack.allowAnySHA1InWant", "uploadpack.allowTipSHA1InWant"]) {
      await git(name, ["config", key, allow]);
    }
    await git(name, ["config", "uploadpack.allowFilter", "true"]);
    names.add(name);
  }

  let changes = 0;
  async function addCommit(name: string, c: AddCommit = {}): Promise<string> {
    if (!names.has(name)) throw new Error(`no repository ${name}`);
    changes++;
    const files = c.files ?? { "UPSTREAM_CHANGES.txt": `${Array.from({ length: changes }, (_, i) => `change ${i + 1}`).join("\n")}\n` };
    // plumbing on the bare repository: a temporary index from HEAD's tree, the files on top
    const index = { GIT_INDEX_FILE: join(root, `index-${process.pid}-${changes}`) };
    await git(name, ["read-tree", "HEAD"], index);
    for (const [path, content] of Object.entries(files)) {
      const blob = await git(name, ["hash-object", "-w", "--stdin"], {}, content);
      await git(name, ["update-index", "--add", "--cacheinfo", `100644,${blob},${path}`], index);
    }
    const tree = await git(name, ["write-tree"], index);
    rmSync(index.GIT_INDEX_FILE, { force: true });
    const ident = { ...IDENT, GIT_COMMITTER_NAME: IDENT.GIT_AUTHOR_NAME, GIT_COMMITTER_EMAIL: IDENT.GIT_AUTHOR_EMAIL };
    const sha = await git(name, ["commit-tree", tree, "-p", "HEAD", "-m", c.message ?? `upstream change ${changes}`], ident);
    await git(name, ["update-ref", "HEAD", sha]);
    return sha;
  }

  for (const [name, source] of Object.entries(opts.repos ?? {})) await addRepo(name, source);

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    requests.push(`${req.method} ${req.url}`);
    const u = new URL(req.url ?? "/", "http://x");
    // GitHub serves /owner/repo and /owner/repo.git alike
    const m = /^\/([^/]+)\/([^/]+?)(?:\.git)?(\/.*)$/.exec(decodeURIComponent(u.pathname));
    const name = m && `${m[1]}/${m[2]}`;
    if (!m || !name || !names.has(name)) return void res.writeHead(404, { "content-type": "text/plain" }).end("Repository not found.\n");
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    let body = Buffer.concat(chunks);
    // git gzips large request bodies; the CGI gets them plain, with their real length
    if (/gzip/i.test(req.headers["content-encoding"] ?? "")) {
      body = gunzipSync(body);
      gzipped.push(`${req.method} ${req.url}`);
    }
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      HOME: root,
      ...GIT_ENV,
      GIT_PROJECT_ROOT: root,
      GIT_HTTP_EXPORT_ALL: "1",
      PATH_INFO: `/${name}.git${m[3]}`,
      QUERY_STRING: u.search.slice(1),
      REQUEST_METHOD: req.method ?? "GET",
      CONTENT_TYPE: req.headers["content-type"] ?? "",
      CONTENT_LENGTH: String(body.length),
      REMOTE_ADDR: req.socket.remoteAddress ?? "127.0.0.1",
      SERVER_PROTOCOL: `HTTP/${req.httpVersion}`,
    };
    // protocol v2 lets a client want any commit whatever the config says; a server refusing
    // sha wants speaks v0 only, where upload-pack checks them
    const proto = req.headers["git-protocol"];
    if (allowShaWant && typeof proto === "string") env.HTTP_GIT_PROTOCOL = proto;
    await cgi(env, body, res);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((e) => {
      if (res.headersSent) res.destroy();
      else res.writeHead(500, { "content-type": "text/plain" }).end(String(e));
    });
  });
  await new Promise<void>((ok, fail) => server.once("error", fail).listen(0, "127.0.0.1", ok));
  const port = (server.address() as AddressInfo).port;

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    gzipped,
    repoPath,
    commits: (name) => {
      const out = execFileSync("git", ["--git-dir", repoPath(name), "rev-list", "--first-parent", "--reverse", "HEAD"], {
        env: { ...process.env, ...GIT_ENV },
      });
      return out.toString().split("\n").filter(Boolean);
    },
    addRepo,
    addCommit,
    async close() {
      server.closeAllConnections();
      await new Promise((ok) => server.close(ok));
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/** Runs `git http-backend` with a CGI environment and relays its answer: headers (Status: included) up to the blank line, then the body. */
function cgi(env: Record<string, string>, body: Buffer, res: ServerResponse): Promise<void> {
  return new Promise((ok) => {
    const child = spawn("git", ["http-backend"], { env, stdio: ["pipe", "pipe", "pipe"] });
    let head: Buffer | undefined = Buffer.alloc(0);
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d));
    child.stdout.on("data", (d: Buffer) => {
      if (!head) return void res.write(d);
      head = Buffer.concat([head, d]);
      const end = /\r?\n\r?\n/.exec(head.toString("latin1"));
      if (!end) return;
      const lines = head.subarray(0, end.index).toString("latin1").split(/\r?\n/);
      const rest = head.subarray(end.index + end[0].length);
      head = undefined;
      let status = 200;
      const headers: Record<string, string> = {};
      for (const line of lines) {
        const i = line.indexOf(":");
        const [k, v] = [line.slice(0, i).trim(), line.slice(i + 1).trim()];
        if (k.toLowerCase() === "status") status = Number.parseInt(v, 10);
        else if (k) headers[k] = v;
      }
      res.writeHead(status, headers);
      if (rest.length) res.write(rest);
    });
    child.on("error", (e) => (stderr += String(e)));
    child.on("close", () => {
      if (head) {
        // no complete header from the CGI: a broken backend, said plainly
        if (!res.headersSent) res.writeHead(502, { "content-type": "text/plain" });
        res.end(`git http-backend failed: ${stderr}\n`);
      } else res.end();
      ok();
    });
    child.stdin.on("error", () => undefined); // the backend may answer (404, 403) without reading the body
    child.stdin.end(body);
  });
}

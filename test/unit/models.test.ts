// The models plugin's pure parts: scan parsing, command builders, organize/cleanup/report plans.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync, writeFileSync, readdirSync, statSync, existsSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { hashCommand, linkCommand, moveCommand, removeCommand, scanCommand, SCAN_FILES_MARK } from "../../plugins/models/commands.ts";
import {
  candidatePaths,
  folderUsage,
  indexFiles,
  neededModels,
  parseScan,
  planCleanup,
  planLinks,
  planMoves,
  progressLine,
  sameSizeGroups,
  workflowStatus,
  type ScanFile,
} from "../../plugins/models/plan.ts";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { applyMirror, resolveModel } from "../../plugins/models/resolve.ts";
import { parseModelUrl, type ModelDep } from "../../lib/comfy/model-deps.ts";
import { flow, REPO } from "../support/cli.ts";
import { seeded, sha256, startFakeHub } from "../support/fake-hub.ts";
import { PROTO_NAMES, deepArrayText, doublingSubgraphs, uiWithDeepWidget } from "./comfy/hostile-workflows.ts";

const dep = (folder: string, name: string, optional = false): ModelDep => ({
  name,
  folder,
  optional,
  usedBy: [],
  found: ["properties.models"],
});
const f = (path: string, size = 10, ino = Math.floor(Math.random() * 1e9), links = 1): ScanFile => ({ path, size, ino, links });

test("parseScan: state, df, NUL records with odd names", () => {
  const out =
    `running\n/dev/sda1 1000000 400000 600000 40% /\n${SCAN_FILES_MARK}\n` +
    `12\t5\t1\tloras/a.safetensors\x0034\t6\t2\tweird\nname .pt\x00`;
  const s = parseScan(out);
  assert.equal(s.downloadRunning, true);
  assert.deepEqual(s.disk, { size: 1000000, free: 600000 });
  assert.deepEqual(s.files, [
    { size: 12, ino: 5, links: 1, path: "loras/a.safetensors" },
    { size: 34, ino: 6, links: 2, path: "weird\nname .pt" },
  ]);
});

test("command builders run for real against a temp tree and quote hostile names", () => {
  const root = join(mkdtempSync(join(tmpdir(), "models-cmd-")), "models root");
  mkdirSync(join(root, "unet"), { recursive: true });
  const odd = "unet/it's $(touch pwned) a.safetensors";
  writeFileSync(join(root, odd), "abc");
  writeFileSync(join(root, "unet", "b.safetensors"), "abc");
  const sh = (c: string) => execFileSync("sh", ["-c", c], { cwd: tmpdir() }).toString();
  const s = parseScan(sh(scanCommand(root, "/nonexistent/.flow")));
  assert.equal(s.downloadRunning, false);
  assert.equal(s.files.length, 2);
  assert.ok(s.files.some((x) => x.path === odd));
  const hashes = sh(hashCommand(root, [odd, "unet/b.safetensors", "missing.pt"]))
    .trim()
    .split("\n");
  assert.equal(hashes[0], hashes[1]);
  assert.equal(hashes[2], "-");
  sh(moveCommand(root, [{ from: odd, to: "diffusion_models/x y.safetensors" }]));
  assert.ok(existsSync(join(root, "diffusion_models/x y.safetensors")));
  assert.throws(() => sh(moveCommand(root, [{ from: "unet/b.safetensors", to: "diffusion_models/x y.safetensors" }])));
  sh(linkCommand(root, [{ keep: "diffusion_models/x y.safetensors", replace: "unet/b.safetensors" }]));
  assert.equal(statSync(join(root, "unet/b.safetensors")).ino, statSync(join(root, "diffusion_models/x y.safetensors")).ino);
  sh(removeCommand(root, ["unet/b.safetensors"]));
  assert.deepEqual(readdirSync(join(root, "unet")), []);
  assert.ok(!existsSync(join(tmpdir(), "pwned")));
});

test("a missing root stops every builder that cds: nothing is removed, hashed, moved or linked in the working directory", () => {
  const home = mkdtempSync(join(tmpdir(), "models-home-"));
  mkdirSync(join(home, "loras"));
  writeFileSync(join(home, "loras", "a.safetensors"), "keep me");
  writeFileSync(join(home, "loras", "b.safetensors"), "keep me");
  const gone = join(home, "no such root");
  const sh = (c: string) => execFileSync("sh", ["-c", c], { cwd: home, stdio: ["ignore", "pipe", "ignore"] }).toString();
  assert.throws(() => sh(removeCommand(gone, ["loras/a.safetensors"])));
  assert.throws(() => sh(hashCommand(gone, ["loras/a.safetensors"])));
  assert.throws(() => sh(moveCommand(gone, [{ from: "loras/a.safetensors", to: "vae/a.safetensors" }])));
  assert.throws(() => sh(linkCommand(gone, [{ keep: "loras/a.safetensors", replace: "loras/b.safetensors" }])));
  assert.deepEqual(readdirSync(join(home, "loras")).sort(), ["a.safetensors", "b.safetensors"]);
  assert.notEqual(statSync(join(home, "loras", "a.safetensors")).ino, statSync(join(home, "loras", "b.safetensors")).ino);
  assert.ok(!existsSync(join(home, "vae")));
});

test("aliases: diffusion_models is found in unet, text_encoders in clip", () => {
  const m = { folder: "diffusion_models", name: "m.safetensors" };
  assert.deepEqual(candidatePaths(m), ["diffusion_models/m.safetensors", "unet/m.safetensors"]);
  const t5 = { folder: "text_encoders", name: "t5.safetensors" };
  assert.deepEqual(candidatePaths(t5), ["text_encoders/t5.safetensors", "clip/t5.safetensors"]);
});

test("neededModels merges workflows; required wins over optional", () => {
  const { needed, noFolder } = neededModels([
    { workflow: "a", models: [dep("loras", "x.safetensors", true), { name: "y.pt", optional: false, usedBy: [], found: [] }] },
    { workflow: "b", models: [dep("loras", "x.safetensors", false)] },
  ]);
  assert.equal(needed.length, 1);
  assert.equal(needed[0]!.optional, false);
  assert.deepEqual(needed[0]!.workflows, ["a", "b"]);
  assert.deepEqual(noFolder, [{ workflow: "a", name: "y.pt" }]);
});

test("planMoves: wrong folder moved; alias folder left alone; a source needed in place is linked", () => {
  const files = [f("checkpoints/flux.safetensors"), f("clip/t5.safetensors"), f("loras/shared.safetensors")];
  const { needed } = neededModels([
    {
      workflow: "w",
      models: [
        dep("diffusion_models", "flux.safetensors"),
        dep("text_encoders", "t5.safetensors"),
        dep("loras", "shared.safetensors"),
        dep("controlnet", "shared.safetensors"),
      ],
    },
  ]);
  const moves = planMoves(files, needed);
  assert.deepEqual(moves, [
    { from: "checkpoints/flux.safetensors", to: "diffusion_models/flux.safetensors", link: false },
    { from: "loras/shared.safetensors", to: "controlnet/shared.safetensors", link: true },
  ]);
});

test("planLinks: only equal-size model files on different inodes are hashed; equal hashes become links", () => {
  const files = [
    f("a/x.safetensors", 5, 1),
    f("b/y.safetensors", 5, 2),
    f("c/z.safetensors", 5, 3),
    f("d/w.safetensors", 6, 4),
    f("e/x.safetensors.part", 5, 7),
    f("h/l.safetensors", 9, 8, 2),
    f("h/m.safetensors", 9, 8, 2),
  ];
  const groups = sameSizeGroups(files);
  assert.equal(groups.length, 1);
  assert.deepEqual(
    groups[0]!.map((g) => g.path),
    ["a/x.safetensors", "b/y.safetensors", "c/z.safetensors"],
  );
  const links = planLinks(
    groups,
    new Map([
      ["a/x.safetensors", "h1"],
      ["b/y.safetensors", "h2"],
      ["c/z.safetensors", "h1"],
    ]),
  );
  assert.deepEqual(links, [{ keep: "a/x.safetensors", replace: "c/z.safetensors" }]);
});

test("planCleanup: unused models and sidecars; needed, optional, aliases and non-models kept; .part safe while a download runs", () => {
  const files = [
    f("loras/used.safetensors"),
    f("unet/flux.safetensors"),
    f("loras/old.safetensors", 100),
    f("loras/.old.safetensors.sha256", 1),
    f("checkpoints/put_checkpoints_here", 0),
    f("loras/gone.safetensors.part", 50),
    f("loras/gone.safetensors.part.state", 1),
    f("loras/used2.safetensors.part", 30),
  ];
  const needed = [
    { folder: "loras", name: "used.safetensors" },
    { folder: "diffusion_models", name: "flux.safetensors" },
    { folder: "loras", name: "used2.safetensors" },
  ];
  const idle = planCleanup(files, needed, false);
  assert.deepEqual(idle.remove.map((x) => x.path).sort(), [
    "loras/.old.safetensors.sha256",
    "loras/gone.safetensors.part",
    "loras/gone.safetensors.part.state",
    "loras/old.safetensors",
  ]);
  const busy = planCleanup(files, needed, true);
  assert.deepEqual(busy.remove.map((x) => x.path).sort(), ["loras/.old.safetensors.sha256", "loras/old.safetensors"]);
  assert.equal(busy.protectedParts.length, 3);
});

test("report: folder usage counts hardlinks once; a workflow is missing bytes until the file has the right size", () => {
  const files = [f("loras/a.safetensors", 10, 1, 2), f("loras/b.safetensors", 10, 1, 2), f("vae/v.safetensors", 7)];
  assert.deepEqual(folderUsage(files), [
    { folder: "loras", files: 2, bytes: 10 },
    { folder: "vae", files: 1, bytes: 7 },
  ]);
  const models = [
    dep("loras", "a.safetensors"),
    dep("vae", "v.safetensors"),
    dep("loras", "c.safetensors"),
    dep("loras", "opt.safetensors", true),
  ];
  const w = { workflow: "w", models };
  const st = workflowStatus(w, indexFiles(files), (d) => ({ "v.safetensors": 8, "c.safetensors": 100 })[d.name]);
  assert.equal(st.ready, false);
  assert.deepEqual(
    st.missing.map((m) => m.path),
    ["vae/v.safetensors", "loras/c.safetensors"],
  );
  assert.equal(st.bytesToDownload, 108);
});

test("progress line and mirrors", () => {
  const files = [{ name: "loras/a", done: 1, total: 2, speed: 1000, eta: 1 }];
  const line = progressLine({ done: 5_000_000, total: 10_000_000, speed: 2_500_000, eta: 2, files });
  assert.equal(line, "5.00 MB / 10.0 MB 50% at 2.50 MB/s, ETA 2s | loras/a 50% 1.00 KB/s ETA 1s");
  const mirrors = { "https://x.example/": "http://127.0.0.1:9/" };
  assert.equal(applyMirror("https://x.example/files/a.pt", mirrors), "http://127.0.0.1:9/files/a.pt");
});

test("CivitAI: the token goes only to the configured origin; a downloadUrl elsewhere is replaced by one on that origin", async () => {
  const serve = async (handler: (req: IncomingMessage, res: ServerResponse) => void) => {
    const srv = createServer(handler);
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", () => r()));
    return { srv, port: (srv.address() as AddressInfo).port };
  };
  const elsewhere: { url?: string; auth?: string }[] = [];
  const other = await serve((req, res) => {
    elsewhere.push({ url: req.url, auth: req.headers.authorization });
    res.writeHead(200, { "content-length": 3 }).end();
  });
  // "localhost" vs "127.0.0.1": another origin, like a plain-http or foreign downloadUrl
  const foreign = `http://localhost:${other.port}/api/download/models/7`;
  let downloadUrl = foreign;
  const heads: { url?: string; auth?: string }[] = [];
  const civitai = await serve((req, res) => {
    if (req.url?.startsWith("/api/v1/model-versions/7")) {
      const file = { name: "m.safetensors", sizeKB: 1, primary: true, downloadUrl, hashes: { SHA256: "A".repeat(64) } };
      const body = JSON.stringify({ files: [file] });
      return void res.writeHead(200, { "content-type": "application/json" }).end(body);
    }
    heads.push({ url: req.url, auth: req.headers.authorization });
    res.writeHead(200, { "content-length": 1024 }).end();
  });
  try {
    const origin = `http://127.0.0.1:${civitai.port}`;
    const env = { hfUrl: "http://127.0.0.1:9", civitaiUrl: origin, civitaiToken: "civ-secret", allowHosts: [`127.0.0.1:${civitai.port}`] };
    const source = { kind: "civitai" as const, modelVersionId: "7" };
    const d: ModelDep = { ...dep("loras", "m.safetensors"), url: `https://civitai.com/api/download/models/7`, source };
    const r = await resolveModel(d, env);
    assert.ok(r.ok, JSON.stringify(r));
    assert.equal(r.file.url, `${origin}/api/download/models/7`);
    assert.deepEqual(r.file.headers, { authorization: "Bearer civ-secret" });
    assert.deepEqual(elsewhere, [], "a request (and the token) went to another origin");
    assert.deepEqual(heads, [{ url: "/api/download/models/7", auth: "Bearer civ-secret" }]);
    // a downloadUrl on the configured origin is kept as given
    downloadUrl = `${origin}/api/download/models/7?type=Model&format=SafeTensor`;
    const same = await resolveModel(d, env);
    assert.ok(same.ok);
    assert.equal(same.file.url, downloadUrl);
    assert.deepEqual(elsewhere, []);
  } finally {
    other.srv.close();
    civitai.srv.close();
  }
});

// ---------- one writer per final path ----------

const withUrl = (d: ModelDep, url: string, urlFrom: ModelDep["urlFrom"] = "workflow"): ModelDep => ({
  ...d,
  url,
  urlFrom,
  source: { kind: "url" },
});
const pathOf = (n: { folder: string; name: string }) => `${n.folder}/${n.name}`;

test("neededModels: one entry per final path: folder aliases, a sub-path on either side, repeated slashes; case is kept", () => {
  const { needed } = neededModels([
    {
      workflow: "a.json",
      models: [
        dep("unet", "flux.safetensors"),
        dep("clip", "t5.safetensors"),
        dep("loras/sdxl", "style.safetensors"),
        dep("controlnet", "Canny.safetensors"),
        dep("unet/sub", "q.gguf"),
      ],
    },
    {
      workflow: "b.json",
      models: [
        dep("diffusion_models", "flux.safetensors"),
        dep("text_encoders", "t5.safetensors"),
        dep("loras", "sdxl/style.safetensors"),
        dep("t2i_adapter", "Canny.safetensors"),
        dep("controlnet", "canny.safetensors"),
        dep("diffusion_models", "sub//q.gguf"),
      ],
    },
  ]);
  const paths = needed.map(pathOf).sort();
  assert.deepEqual(paths, [
    "controlnet/Canny.safetensors",
    "controlnet/canny.safetensors",
    "diffusion_models/flux.safetensors",
    "diffusion_models/sub/q.gguf",
    "loras/sdxl/style.safetensors",
    "text_encoders/t5.safetensors",
  ]);
  for (const n of needed) assert.deepEqual(n.workflows, n.name === "canny.safetensors" ? ["b.json"] : ["a.json", "b.json"], pathOf(n));
});

test("neededModels: the flowfile's entry wins; workflows that disagree fail that file only, naming both; model-list fills in", () => {
  const x = dep("loras", "x.safetensors");
  const v = dep("vae", "v.safetensors");
  const all = [
    { workflow: "a.json", models: [withUrl(x, "https://a.example/x.safetensors"), withUrl(v, "https://a.example/v.safetensors")] },
    {
      workflow: "b.json",
      models: [
        withUrl({ ...x, folder: "loras" }, "https://b.example/x.safetensors?token=sekrit"),
        withUrl(v, "https://a.example/v.safetensors"),
      ],
    },
    { workflow: "c.json", models: [withUrl(dep("vae", "v.safetensors"), "https://list.example/v.safetensors", "model-list")] },
  ];
  for (const order of [all, [...all].reverse()]) {
    const { needed } = neededModels(order);
    const nx = needed.find((n) => n.name === "x.safetensors")!;
    assert.ok(nx.conflict, "a conflict settled by file order");
    assert.match(nx.conflict, /loras\/x\.safetensors/);
    assert.match(nx.conflict, /a\.json: https:\/\/a\.example\/x\.safetensors/);
    assert.match(nx.conflict, /b\.json: https:\/\/b\.example\/x\.safetensors\?token=\*\*\*/);
    assert.match(nx.conflict, /flowfile's models/);
    assert.doesNotMatch(nx.conflict, /sekrit/);
    const nv = needed.find((n) => n.name === "v.safetensors")!;
    assert.equal(nv.conflict, undefined, "the same URL twice, and a model-list guess, are no conflict");
    assert.equal(nv.dep.url, "https://a.example/v.safetensors");
  }
  const userModels = { "x.safetensors": "https://hub.example/x.safetensors", "loras/v.safetensors": "https://no.example/" };
  const settled = neededModels(all, { userModels });
  const sx = settled.needed.find((n) => n.name === "x.safetensors")!;
  assert.equal(sx.conflict, undefined);
  assert.equal(sx.dep.url, "https://hub.example/x.safetensors");
  assert.equal(sx.dep.urlFrom, "user-map");
  // a flowfile entry for one workflow's URL wins over that workflow too
  const one = neededModels([all[0]!], { userModels: { "vae/v.safetensors": "https://mine.example/v.safetensors" } });
  assert.equal(one.needed.find((n) => n.name === "v.safetensors")!.dep.url, "https://mine.example/v.safetensors");
});

// ---------- where the user's machine may connect ----------

async function serveCounting(handler: (req: IncomingMessage, res: ServerResponse) => void) {
  const seen: string[] = [];
  let connections = 0;
  const srv = createServer((req, res) => {
    seen.push(`${req.method} ${req.url} ${req.headers.authorization ?? "-"}`);
    handler(req, res);
  });
  srv.on("connection", () => connections++);
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", () => r()));
  const port = (srv.address() as AddressInfo).port;
  const close = () => new Promise<void>((r) => (srv.closeAllConnections(), srv.close(() => r())));
  return { seen, port, connections: () => connections, close };
}

test("resolve: a host outside allowHosts is refused before any request: IP literals in any notation, inside names, redirects", async () => {
  const s = await serveCounting((req, res) => {
    const to = new URL(req.url!, "http://x").searchParams.get("to");
    if (to) return void res.writeHead(302, { location: to }).end();
    res.writeHead(200, { "content-length": 1234, "content-type": "application/octet-stream" }).end();
  });
  try {
    const base = { hfUrl: `http://127.0.0.1:${s.port}`, civitaiUrl: `http://127.0.0.1:${s.port}`, hfToken: "hf_x", timeoutMs: 2000 };
    const p = s.port;
    const urls = [
      `https://127.0.0.1:${p}/m.safetensors`,
      `https://2130706433:${p}/m.safetensors`,
      `https://0x7f000001:${p}/m.safetensors`,
      `https://0177.0.0.1:${p}/m.safetensors`,
      `https://127.1:${p}/m.safetensors`,
      `https://[::1]:${p}/m.safetensors`,
      `https://[::ffff:127.0.0.1]:${p}/m.safetensors`,
      `https://0.0.0.0:${p}/m.safetensors`,
      `https://localhost:${p}/m.safetensors`,
      "https://169.254.169.254/latest/meta-data/",
      "https://10.1.2.3/m.safetensors",
      "https://[fe80::1]/m.safetensors",
    ];
    for (const url of urls) {
      const r = await resolveModel({ ...dep("loras", "m.safetensors"), url, source: { kind: "url" } }, base);
      assert.ok(!r.ok, url);
      assert.match(r.reason, /refused/, url);
      assert.ok(r.reason.includes(new URL(url).hostname), `${url}: ${r.reason}`);
    }
    const hf = await resolveModel({ ...dep("loras", "m.safetensors"), url: "https://huggingface.co/o/r/resolve/main/m.safetensors" }, base);
    assert.ok(!hf.ok && /refused .*127\.0\.0\.1.*allowHosts/.test(hf.reason), JSON.stringify(hf));
    const mirrors = { "https://files.example.com/": `http://127.0.0.1:${p}/` };
    const mirrored = await resolveModel(
      { ...dep("loras", "m.safetensors"), url: "https://files.example.com/m.safetensors" },
      {
        ...base,
        mirrors,
      },
    );
    assert.ok(!mirrored.ok, "plain http to 127.0.0.1 without allowHosts");
    assert.equal(s.connections(), 0, `the server saw ${s.connections()} connections: ${s.seen.join(", ")}`);

    // listed in allowHosts: through; redirects from there to elsewhere are refused
    const allowed = { ...base, allowHosts: [`127.0.0.1:${p}`], mirrors: { "https://files.example.com/": `http://127.0.0.1:${p}/` } };
    const ok = await resolveModel({ ...dep("loras", "m.safetensors"), url: "https://files.example.com/m.safetensors" }, allowed);
    assert.ok(ok.ok, JSON.stringify(ok));
    assert.equal(ok.file.size, 1234);
    s.seen.length = 0;
    const elsewhere = [
      `http://localhost:${p}/m.safetensors`,
      `https://localhost:${p}/m.safetensors`,
      "https://169.254.169.254/latest/",
      `http://127.0.0.1:${p + 1}/m.safetensors`,
    ];
    for (const to of elsewhere) {
      const url = `https://files.example.com/go?to=${encodeURIComponent(to)}`;
      const r = await resolveModel({ ...dep("loras", "m.safetensors"), url }, allowed);
      assert.ok(!r.ok && /refused redirect/.test(r.reason), `${to}: ${JSON.stringify(r)}`);
    }
    assert.deepEqual(
      s.seen.map((x) => x.replace(/\?\S*/, "")),
      ["HEAD /go -", "HEAD /go -", "HEAD /go -", "HEAD /go -"],
    );
  } finally {
    await s.close();
  }
});

test("Hugging Face URLs: parsed once; the token goes only to the repo's paths-info and resolve paths; a bad URL fails alone", async () => {
  const X = seeded("x", 4242);
  const hub = await startFakeHub({
    token: "hf_secret",
    hf: {
      "org/repo": { files: { "sub/x y.safetensors": X } },
      "datasets/org/data": { files: { "x.safetensors": X } },
      "Org-1/Repo.v2_x": { files: { "a/b/c.gguf": X } },
    },
  });
  try {
    const env = { hfUrl: hub.url, civitaiUrl: hub.url, hfToken: "hf_secret", allowHosts: [new URL(hub.url).host], timeoutMs: 2000 };
    const sourceOf = (u: string): ModelDep["source"] => {
      try {
        return parseModelUrl(u);
      } catch {
        return { kind: "url" };
      }
    };
    const bad = [
      "https://huggingface.co/org/repo/resolve/main/..%2F..%2Fapi%2Fwhoami-v2",
      "https://huggingface.co/org/repo/resolve/main/x%E0%A4%A.safetensors",
      "https://huggingface.co/org%2Fother/repo/resolve/main/x.safetensors",
      "https://huggingface.co/org/repo/resolve/refs%2Fpr%2F1/x.safetensors",
      "https://huggingface.co/org/repo/resolve/main/sub%5C..%5Cx.safetensors",
      "https://huggingface.co/org/repo/resolve/main//x.safetensors",
      "https://huggingface.co/org/repo/resolve/main/%2e%2e/%2e%2e/api/whoami-v2",
      "https://huggingface.co/org/repo/resolve/main/",
      "https://huggingface.co/org/repo/tree/main/x.safetensors",
    ];
    const results = await Promise.all(
      bad.map((url) => resolveModel({ ...dep("loras", "x.safetensors"), url, source: sourceOf(url) }, env)),
    );
    results.forEach((r, i) => {
      assert.ok(!r.ok, `${bad[i]} was accepted: ${JSON.stringify(r)}`);
      assert.ok(!r.auth, "a bad URL is that model's problem, not a token problem");
      assert.match(r.reason, /not a (clean )?Hugging Face file URL/, bad[i]);
      assert.ok(r.reason.includes(new URL(bad[i]!).pathname.split("/").slice(0, 3).join("/")), `${r.reason} names the URL`);
    });
    assert.deepEqual(hub.stats.seen, [], "a request (with the token) went out for a bad URL");

    const good = [
      [
        "https://huggingface.co/org/repo/resolve/main/sub/x%20y.safetensors?download=true",
        "/org/repo/resolve/main/sub/x%20y.safetensors",
        "/api/models/org/repo/paths-info/main",
      ],
      [
        "https://huggingface.co/datasets/org/data/blob/v1.0/x.safetensors",
        "/datasets/org/data/resolve/v1.0/x.safetensors",
        "/api/datasets/org/data/paths-info/v1.0",
      ],
      [
        "https://hf.co/Org-1/Repo.v2_x/resolve/0123abc/a/b/c.gguf#frag",
        "/Org-1/Repo.v2_x/resolve/0123abc/a/b/c.gguf",
        "/api/models/Org-1/Repo.v2_x/paths-info/0123abc",
      ],
    ];
    for (const [url, path, api] of good) {
      hub.resetStats();
      const r = await resolveModel({ ...dep("loras", "x.safetensors"), url: url!, source: sourceOf(url!) }, env);
      assert.ok(r.ok, `${url}: ${JSON.stringify(r)}`);
      assert.equal(r.file.url, hub.url + path);
      assert.equal(r.file.size, X.length);
      assert.equal(r.file.sha256, sha256(X), "the LFS oid is the expected sha256");
      assert.deepEqual(r.file.headers, { authorization: "Bearer hf_secret" });
      assert.deepEqual(hub.stats.withAuth.sort(), [`HEAD ${path}`, `POST ${api}`].sort());
      assert.equal(hub.stats.requests, 0, "no byte moved on the user's machine");
    }
  } finally {
    await hub.close();
  }
});

test("Hugging Face gated or private: no token: set HF_TOKEN; a token not granted is named; a 429 is waited out", async () => {
  const G = seeded("g", 1000);
  const hub = await startFakeHub({
    token: "hf_granted",
    tokens: ["hf_stranger"],
    hf: {
      "org/gated": { gated: true, grantedTo: ["hf_granted"], files: { "g.safetensors": G } },
      "org/private": { private: true, files: { "p.safetensors": G } },
    },
  });
  try {
    const env = (hfToken?: string) => ({
      hfUrl: hub.url,
      civitaiUrl: hub.url,
      hfToken,
      allowHosts: [new URL(hub.url).host],
      retry: { tries: 3, baseMs: 1, maxMs: 5 },
    });
    const gated = { ...dep("loras", "g.safetensors"), url: "https://huggingface.co/org/gated/resolve/main/g.safetensors" };
    const priv = { ...dep("loras", "p.safetensors"), url: "https://huggingface.co/org/private/resolve/main/p.safetensors" };
    for (const d of [gated, priv]) {
      const r = await resolveModel(d, env());
      assert.ok(!r.ok && r.auth, JSON.stringify(r));
      assert.match(r.reason, /is in the gated or private repository org\/(gated|private): set HF_TOKEN/);
    }
    const stranger = await resolveModel(gated, env("hf_stranger"));
    assert.ok(!stranger.ok && stranger.auth, JSON.stringify(stranger));
    assert.match(stranger.reason, /Hugging Face refused HF_TOKEN for g\.safetensors in org\/gated \(HTTP 403\)/);
    assert.ok(!stranger.reason.includes("hf_stranger"));
    hub.faults.hubFail = { count: 2, status: 429, retryAfter: 0 };
    const ok = await resolveModel(gated, env("hf_granted"));
    assert.ok(ok.ok, JSON.stringify(ok));
    assert.equal(ok.file.sha256, sha256(G));
    assert.equal(hub.stats.requests, 0);
  } finally {
    await hub.close();
  }
});

test("models tasks: cleanup is destructive (the global --yes confirms it), and no option is named like a run option", async () => {
  const { models } = await import("../../plugins/models/index.ts");
  const { workflow } = await import("../../plugins/workflow/index.ts");
  const { globalsSchema } = await import("../../lib/cli/globals.ts");
  const globals = new Set(Object.keys(globalsSchema.shape));
  const tasks = [...models().tasks, ...workflow().tasks];
  for (const t of tasks) {
    const clash = Object.keys(t.options?.shape ?? {}).filter((k) => globals.has(k));
    assert.deepEqual(clash, [], `${t.name} has options named like run options`);
  }
  const cleanup = tasks.find((t) => t.name === "models:cleanup")!;
  assert.match(cleanup.destructive ?? "", /delete/);
  for (const t of tasks) if (t.name !== "models:cleanup") assert.equal(t.destructive, undefined, t.name);
});

test("folders named like Object.prototype members are plain folders: constructor/x, not a crash", () => {
  for (const name of PROTO_NAMES) assert.deepEqual(candidatePaths({ folder: name, name: "m.safetensors" }), [`${name}/m.safetensors`]);
  assert.deepEqual(candidatePaths({ folder: "toString/sub", name: "m.safetensors" }), ["toString/sub/m.safetensors"]);
});

/**
 * A project with the models plugin and these workflow_templates/ files; a models task run against this machine (`--host local`).
 * No repositories to look names up in (settings.modelRepos: []): nothing leaves this machine.
 */
async function modelsTask(files: Record<string, string>, args: string[] = ["models:report"]) {
  const dir = mkdtempSync(join(tmpdir(), "flow-models-"));
  writeFileSync(
    join(dir, "flowfile.ts"),
    `import { defineFlow } from ${JSON.stringify(REPO + "lib/index.ts")};
import { models } from ${JSON.stringify(REPO + "plugins/index.ts")};
export default defineFlow({ plugins: [models()], settings: { modelRepos: [] } });
`,
  );
  symlinkSync(join(REPO, "node_modules"), join(dir, "node_modules"));
  mkdirSync(join(dir, "workflow_templates"));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, "workflow_templates", name), text);
  const env = {
    // no reference data (nothing listens there): the task goes on with the workflows' own facts
    FLOW_COMFY_DATA_URL: "http://127.0.0.1:9/",
    XDG_CACHE_HOME: mkdtempSync(join(tmpdir(), "flow-models-cache-")),
    // a regression must fail the test, not take the machine's memory
    NODE_OPTIONS: "--max-old-space-size=1024",
  };
  const r = await flow(["run", ...args, "--host", "local", "--json"], { cwd: dir, env, signal: AbortSignal.timeout(120_000) });
  assert.notEqual(r.code, null, `no exit code: killed (120 s limit or out of memory): ${r.stderr.slice(-300)}`);
  const lines = r.stdout
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));
  const data = Object.assign({}, ...lines.filter((l) => l.type === "data").map((l) => l.data));
  return { ...r, report: data.modelsReport as { workflows: { workflow: string; missing: { path: string }[] }[] } | undefined };
}

const GOOD = JSON.stringify({ nodes: [{ id: 1, type: "LoraLoader", widgets_values: ["good.safetensors", 1, 1] }], links: [] });

test("models:report: nodes typed constructor, toString, __proto__, hasOwnProperty are reported (was 'known is not iterable')", async () => {
  const proto = {
    nodes: PROTO_NAMES.map((t, i) => ({
      id: t,
      type: t,
      widgets_values: [`m${i}.safetensors`],
      properties: { models: [{ name: `p${i}.safetensors`, directory: t }] },
    })),
    links: [],
  };
  const r = await modelsTask({ "good.json": GOOD, "proto.json": JSON.stringify(proto) });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const missing = Object.fromEntries(r.report!.workflows.map((w) => [w.workflow, w.missing.map((m) => m.path).sort()]));
  assert.deepEqual(missing["workflow_templates/good.json"], ["loras/good.safetensors"]);
  const want = PROTO_NAMES.flatMap((t, i) => [`${t}/p${i}.safetensors`, `?/m${i}.safetensors`]).sort();
  assert.deepEqual(missing["workflow_templates/proto.json"], want);
});

test("models:report: a subgraph bomb and a deeply nested file are named; the other workflows are still reported", async () => {
  const bomb = JSON.stringify(doublingSubgraphs(31));
  const r = await modelsTask({ "bomb.json": bomb, "deep.json": uiWithDeepWidget(deepArrayText(100_000)), "good.json": GOOD });
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stdout, /workflow_templates\/bomb\.json: .*more than 50,000 nodes/);
  assert.match(r.stdout, /workflow_templates\/deep\.json: .*nested more than 500 levels deep/);
  assert.deepEqual(
    r.report?.workflows.map((w) => w.workflow),
    ["workflow_templates/good.json"],
  );
  assert.deepEqual(
    r.report?.workflows[0]!.missing.map((m) => m.path),
    ["loras/good.safetensors"],
  );
});

test("models:cleanup: with a workflow it cannot read, nothing is planned for removal (its models would look unused)", async () => {
  const r = await modelsTask({ "bomb.json": JSON.stringify(doublingSubgraphs(31)), "good.json": GOOD }, ["models:cleanup", "--dry-run"]);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stdout, /workflow_templates\/bomb\.json: .*more than 50,000 nodes/);
  assert.match(r.stdout, /cannot tell which models workflow_templates\/bomb\.json need: nothing is removed/);
  assert.doesNotMatch(r.stdout, /models no workflow needs/);
});

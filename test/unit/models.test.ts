// The models plugin's pure parts: scan parsing, command builders, organize/cleanup/report plans.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync, writeFileSync, readdirSync, statSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { hashCommand, linkCommand, moveCommand, removeCommand, scanCommand, SCAN_FILES_MARK } from "../../plugins/models/commands.ts";
import { candidatePaths, folderUsage, indexFiles, neededModels, parseScan, planCleanup, planLinks, planMoves, progressLine, sameSizeGroups, workflowStatus, type ScanFile } from "../../plugins/models/plan.ts";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { applyMirror, resolveModel } from "../../plugins/models/resolve.ts";
import type { ModelDep } from "../../lib/comfy/model-deps.ts";

const dep = (folder: string, name: string, optional = false): ModelDep => ({ name, folder, optional, usedBy: [], found: ["properties.models"] });
const f = (path: string, size = 10, ino = Math.floor(Math.random() * 1e9), links = 1): ScanFile => ({ path, size, ino, links });

test("parseScan: state, df, NUL records with odd names", () => {
  const out = `running\n/dev/sda1 1000000 400000 600000 40% /\n${SCAN_FILES_MARK}\n12\t5\t1\tloras/a.safetensors\x0034\t6\t2\tweird\nname .pt\x00`;
  const s = parseScan(out);
  assert.equal(s.downloadRunning, true);
  assert.deepEqual(s.disk, { size: 1000000, free: 600000 });
  assert.deepEqual(s.files, [{ size: 12, ino: 5, links: 1, path: "loras/a.safetensors" }, { size: 34, ino: 6, links: 2, path: "weird\nname .pt" }]);
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
  const hashes = sh(hashCommand(root, [odd, "unet/b.safetensors", "missing.pt"])).trim().split("\n");
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
  assert.deepEqual(candidatePaths({ folder: "diffusion_models", name: "m.safetensors" }), ["diffusion_models/m.safetensors", "unet/m.safetensors"]);
  assert.deepEqual(candidatePaths({ folder: "text_encoders", name: "t5.safetensors" }), ["text_encoders/t5.safetensors", "clip/t5.safetensors"]);
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
    { workflow: "w", models: [dep("diffusion_models", "flux.safetensors"), dep("text_encoders", "t5.safetensors"), dep("loras", "shared.safetensors"), dep("controlnet", "shared.safetensors")] },
  ]);
  const moves = planMoves(files, needed);
  assert.deepEqual(moves, [
    { from: "checkpoints/flux.safetensors", to: "diffusion_models/flux.safetensors", link: false },
    { from: "loras/shared.safetensors", to: "controlnet/shared.safetensors", link: true },
  ]);
});

test("planLinks: only equal-size model files on different inodes are hashed; equal hashes become links", () => {
  const files = [f("a/x.safetensors", 5, 1), f("b/y.safetensors", 5, 2), f("c/z.safetensors", 5, 3), f("d/w.safetensors", 6, 4), f("e/x.safetensors.part", 5, 7), f("h/l.safetensors", 9, 8, 2), f("h/m.safetensors", 9, 8, 2)];
  const groups = sameSizeGroups(files);
  assert.equal(groups.length, 1);
  assert.deepEqual(groups[0]!.map((g) => g.path), ["a/x.safetensors", "b/y.safetensors", "c/z.safetensors"]);
  const links = planLinks(groups, new Map([["a/x.safetensors", "h1"], ["b/y.safetensors", "h2"], ["c/z.safetensors", "h1"]]));
  assert.deepEqual(links, [{ keep: "a/x.safetensors", replace: "c/z.safetensors" }]);
});

test("planCleanup: unused models and their sidecars; needed, optional, aliases and non-models kept; .part safe while a download runs", () => {
  const files = [
    f("loras/used.safetensors"), f("unet/flux.safetensors"), f("loras/old.safetensors", 100), f("loras/.old.safetensors.sha256", 1),
    f("checkpoints/put_checkpoints_here", 0), f("loras/gone.safetensors.part", 50), f("loras/gone.safetensors.part.state", 1), f("loras/used2.safetensors.part", 30),
  ];
  const needed = [{ folder: "loras", name: "used.safetensors" }, { folder: "diffusion_models", name: "flux.safetensors" }, { folder: "loras", name: "used2.safetensors" }];
  const idle = planCleanup(files, needed, false);
  assert.deepEqual(idle.remove.map((x) => x.path).sort(), ["loras/.old.safetensors.sha256", "loras/gone.safetensors.part", "loras/gone.safetensors.part.state", "loras/old.safetensors"]);
  const busy = planCleanup(files, needed, true);
  assert.deepEqual(busy.remove.map((x) => x.path).sort(), ["loras/.old.safetensors.sha256", "loras/old.safetensors"]);
  assert.equal(busy.protectedParts.length, 3);
});

test("report: folder usage counts hardlinks once; a workflow is missing bytes until the file has the right size", () => {
  const files = [f("loras/a.safetensors", 10, 1, 2), f("loras/b.safetensors", 10, 1, 2), f("vae/v.safetensors", 7)];
  assert.deepEqual(folderUsage(files), [{ folder: "loras", files: 2, bytes: 10 }, { folder: "vae", files: 1, bytes: 7 }]);
  const w = { workflow: "w", models: [dep("loras", "a.safetensors"), dep("vae", "v.safetensors"), dep("loras", "c.safetensors"), dep("loras", "opt.safetensors", true)] };
  const st = workflowStatus(w, indexFiles(files), (d) => ({ "v.safetensors": 8, "c.safetensors": 100 })[d.name]);
  assert.equal(st.ready, false);
  assert.deepEqual(st.missing.map((m) => m.path), ["vae/v.safetensors", "loras/c.safetensors"]);
  assert.equal(st.bytesToDownload, 108);
});

test("progress line and mirrors", () => {
  const line = progressLine({ done: 5_000_000, total: 10_000_000, speed: 2_500_000, eta: 2, files: [{ name: "loras/a", done: 1, total: 2, speed: 1000, eta: 1 }] });
  assert.equal(line, "5.00 MB / 10.0 MB 50% at 2.50 MB/s, ETA 2s | loras/a 50% 1.00 KB/s ETA 1s");
  assert.equal(applyMirror("https://x.example/files/a.pt", { "https://x.example/": "http://127.0.0.1:9/" }), "http://127.0.0.1:9/files/a.pt");
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
      const body = JSON.stringify({ files: [{ name: "m.safetensors", sizeKB: 1, primary: true, downloadUrl, hashes: { SHA256: "A".repeat(64) } }] });
      return void res.writeHead(200, { "content-type": "application/json" }).end(body);
    }
    heads.push({ url: req.url, auth: req.headers.authorization });
    res.writeHead(200, { "content-length": 1024 }).end();
  });
  try {
    const origin = `http://127.0.0.1:${civitai.port}`;
    const env = { hfUrl: "http://127.0.0.1:9", civitaiUrl: origin, civitaiToken: "civ-secret" };
    const d: ModelDep = { ...dep("loras", "m.safetensors"), url: `https://civitai.com/api/download/models/7`, source: { kind: "civitai", modelVersionId: "7" } };
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

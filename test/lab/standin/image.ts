// The stand-in for the comfyui-api image (`flow-comfy-standin:latest`), built
// here and loaded into a lab host's own Docker engine; the flowfile swaps this
// tag in for `ghcr.io/saladtechnologies/comfyui-api:...`.
//
// The inner engines use the vfs driver (every container is a full copy of its
// image), so the image is only what node needs: Debian's node 18 from the lab's
// debootstrap rootfs and the shared libraries it links (found with ld.so
// --list, not guessed), dash as /bin/sh for `docker exec`, and the stand-in
// script. No docs, man pages, locales or apt lists: ~95 MB instead of ~650.
//
//   const r = await ensureStandinImage(inv, "lab1");  // { loaded, hash, ms, bytes }
import { createHash } from "node:crypto";
import { spawn } from "node:child_process";
import { existsSync, openSync, closeSync } from "node:fs";
import { chmod, copyFile, mkdir, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { ensureImage, recipeHash } from "../image.ts";
import type { LabInventory } from "../hosts.ts";
import { cacheDir, run, sleep } from "../util.ts";

export const STANDIN_TAG = "flow-comfy-standin:latest";
export const HASH_LABEL = "flow.standin.hash";
export const serverScript = join(dirname(fileURLToPath(import.meta.url)), "server.mjs");

// Files copied besides node's libraries (paths inside the lab rootfs). Debian's
// libnode loads a few of its built-ins from /usr/share/nodejs at start-up
// (`strings libnode.so.108 | grep /usr/share`); without them node aborts.
const EXTRA_FILES = [
  "/usr/bin/node", "/usr/bin/dash", "/etc/passwd", "/etc/group", "/etc/nsswitch.conf",
  "/usr/share/nodejs/acorn/dist/acorn.js", "/usr/share/nodejs/acorn-walk/dist/walk.js",
  "/usr/share/nodejs/cjs-module-lexer/lexer.js", "/usr/share/nodejs/cjs-module-lexer/dist/lexer.js",
  "/usr/share/nodejs/undici/undici-fetch.js",
];
// What the real image has where the flowfile mounts things: ComfyUI's model
// folders, ComfyUI-Manager inside custom_nodes (a mount over custom_nodes must
// not hide it), input/output, /workflows.
const MODEL_FOLDERS = ["checkpoints", "loras", "vae", "text_encoders", "diffusion_models", "clip_vision", "controlnet",
  "upscale_models", "embeddings", "configs"];
const MANAGER_INIT = `# stand-in for ComfyUI-Manager as baked into the comfyui-api image (it registers no nodes)
NODE_CLASS_MAPPINGS = {}
`;
const IMPORT_CHANGES = [
  "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
  "ENV COMFY_HOME=/opt/ComfyUI",
  "WORKDIR /app",
  "EXPOSE 8188 3000",
  'CMD ["node", "/app/standin.mjs"]',
];

/** Content hash: the base rootfs, this recipe and the server script. */
export async function standinHash(): Promise<string> {
  const script = await readFile(serverScript);
  return createHash("sha256")
    .update(JSON.stringify({ base: recipeHash, EXTRA_FILES, MODEL_FOLDERS, MANAGER_INIT, IMPORT_CHANGES, v: 1 }))
    .update(script)
    .digest("hex")
    .slice(0, 16);
}

const tarballFor = (hash: string) => join(cacheDir, `standin-${hash}.tar`);

/** The image's root filesystem as a tarball in the lab cache; built once per content hash. */
export async function buildStandinTarball(log: (msg: string) => void = () => {}): Promise<{ path: string; hash: string }> {
  const hash = await standinHash();
  const path = tarballFor(hash);
  if (existsSync(path)) return { path, hash };
  if (process.getuid?.() !== 0) throw new Error("building the stand-in image needs root (chroot into the lab rootfs)");
  await mkdir(cacheDir, { recursive: true });
  const base = join(cacheDir, `rootfs-${recipeHash}.tar`);
  if (!existsSync(base)) await ensureImage(log); // builds the debootstrap rootfs tarball
  if (!existsSync(base)) throw new Error(`${base} missing (the lab image exists but its rootfs tarball is gone: rm the flow-lab image and retry)`);
  const work = await mkdtemp(join(cacheDir, "standin-build-"));
  try {
    const started = Date.now();
    const full = join(work, "full");
    const out = join(work, "out");
    await mkdir(full);
    await run("tar", ["-C", full, "-xf", base, "./usr", "./etc", "./lib", "./lib64"]);
    // node's libraries, resolved by the rootfs's own loader
    const listed = await run("chroot", [full, "/lib64/ld-linux-x86-64.so.2", "--list", "/usr/bin/node"]);
    const libs = [...listed.stdout.matchAll(/(?:=>\s*)?(\/\S+)\s+\(0x/g)].map((m) => m[1]);
    if (!libs.some((l) => l.includes("libnode"))) throw new Error(`ld.so --list /usr/bin/node: unexpected output\n${listed.stdout}`);
    await mkdir(out);
    for (const p of ["/tmp", "/app", "/workflows", "/proc", "/sys", "/dev", "/etc", "/usr/bin", "/usr/lib64"]) await mkdir(join(out, p), { recursive: true });
    await chmod(join(out, "tmp"), 0o1777);
    // merged /usr, as Debian has it: /bin, /lib, /lib64 are links into /usr
    for (const l of ["bin", "lib", "lib64", "sbin"]) await run("ln", ["-s", `usr/${l}`, join(out, l)]);
    await mkdir(join(out, "usr/lib/x86_64-linux-gnu"), { recursive: true });
    await mkdir(join(out, "usr/sbin"), { recursive: true });
    for (const file of [...EXTRA_FILES, ...libs]) {
      // copy what a link points at, under the name the loader asks for
      const src = await realInRoot(full, file);
      const dest = join(out, file.replace(/^\/(lib|lib64|bin)\//, "/usr/$1/"));
      await mkdir(dirname(dest), { recursive: true });
      await copyFile(src, dest);
      await chmod(dest, (await stat(src)).mode & 0o7777);
    }
    await run("ln", ["-s", "dash", join(out, "usr/bin/sh")]);
    await writeFile(join(out, "etc/hosts"), "127.0.0.1 localhost\n");
    const comfy = join(out, "opt/ComfyUI");
    for (const d of [...MODEL_FOLDERS.map((f) => `models/${f}`), "custom_nodes/ComfyUI-Manager", "input", "output", "user"]) {
      await mkdir(join(comfy, d), { recursive: true });
    }
    await writeFile(join(comfy, "custom_nodes/ComfyUI-Manager/__init__.py"), MANAGER_INIT);
    await copyFile(serverScript, join(out, "app/standin.mjs"));
    // does it run? (inside its own tiny root, so a missing library shows here, not in a lab host)
    const check = await run("chroot", [out, "/usr/bin/node", "-e", "process.stdout.write(process.version)"]);
    log(`stand-in rootfs: node ${check.stdout}, ${libs.length} libraries, built in ${Date.now() - started} ms`);
    const partial = `${path}.partial`;
    await run("tar", ["--numeric-owner", "--owner=0", "--group=0", "-C", out, "-cf", partial, "."]);
    await rename(partial, path);
    // older versions of the stand-in are never wanted again
    for (const f of await readdir(cacheDir)) {
      if (/^standin-[0-9a-f]+\.tar$/.test(f) && join(cacheDir, f) !== path) await rm(join(cacheDir, f), { force: true });
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  return { path, hash };
}

/** `file` inside `root` with every symlink resolved within that root. */
async function realInRoot(root: string, file: string): Promise<string> {
  const r = await run("chroot", [root, "/usr/bin/readlink", "-f", file]);
  return join(root, r.stdout.trim());
}

export interface StandinLoad {
  tag: string;
  hash: string;
  /** false when the host already had this exact image */
  loaded: boolean;
  ms: number;
  /** the image's size as the inner engine reports it */
  bytes: number;
}

/** Make sure `hostName`'s inner Docker engine has the stand-in image with this content hash. */
export async function ensureStandinImage(inv: LabInventory, hostName: string, log: (msg: string) => void = () => {}): Promise<StandinLoad> {
  const host = inv.hosts[hostName];
  if (!host) throw new Error(`no lab host ${hostName} in the inventory`);
  const container = host.data.container;
  const started = Date.now();
  const { path, hash } = await buildStandinTarball(log);
  await waitForInnerEngine(container);
  const have = await inspect(container);
  let loaded = false;
  if (have?.hash !== hash) {
    log(`${hostName}: loading ${STANDIN_TAG} (${hash}) into the inner engine`);
    const changes = [...IMPORT_CHANGES, `LABEL ${HASH_LABEL}=${hash}`].flatMap((c) => ["--change", c]);
    await runWithFileInput("docker", ["exec", "-i", container, "docker", "import", ...changes, "-", STANDIN_TAG], path);
    loaded = true;
  }
  const now = await inspect(container);
  if (now?.hash !== hash) throw new Error(`${hostName}: ${STANDIN_TAG} has hash ${now?.hash ?? "(none)"} after loading ${hash}`);
  return { tag: STANDIN_TAG, hash, loaded, ms: Date.now() - started, bytes: now.bytes };
}

async function inspect(container: string): Promise<{ hash: string; bytes: number } | null> {
  const r = await run("docker", ["exec", container, "docker", "image", "inspect", "--format",
    `{{index .Config.Labels "${HASH_LABEL}"}} {{.Size}}`, STANDIN_TAG], { allowFail: true });
  if (r.code !== 0) return null;
  const [hash, size] = r.stdout.trim().split(" ");
  return { hash, bytes: Number(size) };
}

/** dockerd starts in the background with a lab host; give it a minute. */
async function waitForInnerEngine(container: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await run("docker", ["exec", container, "docker", "info", "--format", "{{.Driver}}"], { allowFail: true, timeoutMs: 20_000 });
    if (r.code === 0) return;
    if (Date.now() > deadline) throw new Error(`${container}: inner Docker engine does not answer (was the host started with docker: false?)\n${r.stderr.trim()}`);
    await sleep(500);
  }
}

/** Like util's run, with a file as stdin (a 100 MB tarball is not a string). */
function runWithFileInput(cmd: string, args: string[], file: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const fd = openSync(file, "r");
    const child = spawn(cmd, args, { stdio: [fd, "ignore", "pipe"] });
    closeSync(fd);
    let stderr = "";
    child.stderr!.on("data", (d: Buffer) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(" ")}: exit ${code}\n${stderr.trim()}`))));
  });
}

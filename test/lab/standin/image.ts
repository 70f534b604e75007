// The lab's comfyui-api image (`flow-comfy-standin:latest`), built here and loaded into a lab
// host's own Docker engine; the flowfile swaps this tag in for
// `ghcr.io/saladtechnologies/comfyui-api:...` when FLOW_LAB=1.
//
// It runs the REAL comfyui-api (1.18.0, built from source by ./comfyui-api.ts) on the official
// Node 20 binary, configured by environment exactly as the real image is (see ENV below: the
// real image's comfyui.dockerfile + api.dockerfile), and comfyui-api starts the stand-in
// ComfyUI (./server.mjs, at /opt/ComfyUI/main.mjs) through `CMD`, as it starts `comfy launch`
// in the real one. Ports 8188 (ComfyUI) and 3000 (comfyui-api).
//
// In the image:
//   /opt/comfyui-api/            the comfyui-api build folder: launcher `comfyui-api`, dist/,
//                                production node_modules/ (see comfyui-api.ts); the default
//                                command is its launcher, as the real image runs ./comfyui-api
//   /usr/local/bin/node          the official Node 20 binary (NODE_VERSION; stripped when `strip` is here)
//   /opt/ComfyUI/                main.mjs (the stand-in), introspect.py (its pack loader),
//                                core_object_info.json (a real ComfyUI's /object_info: the core
//                                classes the stand-in serves), comfyui_version.py, models/<folders>,
//                                custom_nodes/ComfyUI-Manager, input/, output/, user/
//   /usr/bin/python3, python     Debian's python 3.11 (python -> python3, as the real image's conda
//                                has both), its standard library, /usr/lib/python3/dist-packages
//                                (pip, setuptools, wheel) and the CA bundle pip verifies with
//   /workflows                   WORKFLOW_DIR (flow mounts the host's folder over it)
//   dash as /bin/sh (the launcher; comfyui-api's execSync), glibc and the shared libraries that
//   node and sharp's native module link (found with ld.so --list, not guessed), /etc/passwd.
// python runs the stand-in's pack loader and `python3 -m pip install --target /opt/flow/python`
// (flow's requirements folder, on PYTHONPATH) as in the real image: Debian's EXTERNALLY-MANAGED
// marker is left out, so pip installs without --break-system-packages. No torch; of ComfyUI's own
// modules only comfy/samplers.py, with KSampler's SAMPLERS and SCHEDULERS as the real /object_info
// lists them: comfyui-api imports it at start-up for config.samplers / config.schedulers, so
// endpoints see the lists a real host serves (its fallback lacks "simple" and most samplers).
// No docs, locales, apt lists or python bytecode (python compiles what it imports).
//
// flow's custom binary (comfyui({ customBinary: true })): the container command becomes
// /app/bin/comfyui-api with <data root>/comfyui-api/bin mounted read-only at /app/bin. For the lab
// that folder holds a copy of a build folder (what /opt/comfyui-api holds: launcher + dist +
// node_modules); its launcher runs this image's node.
//
// The inner engines use the vfs driver (every container is a full copy of its image), so the
// image holds only what is run. Built once per content hash (base rootfs recipe, this recipe,
// server.mjs and its core object_info, the comfyui-api build's hash, the Node version) into the
// lab cache as a tarball, and loaded into a host only when the host's image carries another hash
// (HASH_LABEL).
//
//   const r = await ensureStandinImage(inv, "lab1");  // { loaded, hash, ms, bytes, build }
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { chmod, copyFile, cp, mkdir, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { ensureImage, recipeHash } from "../image.ts";
import type { LabInventory } from "../hosts.ts";
import { cacheDir, ensureInnerImage, have, run, withDirLock } from "../util.ts";
import { COMFYUI_API, ensureComfyuiApiBuild, ensureNodeRuntime, LAUNCHER, NODE_VERSION } from "./comfyui-api.ts";

export const STANDIN_TAG = "flow-comfy-standin:latest";
export const HASH_LABEL = "flow.standin.hash";
export const serverScript = join(dirname(fileURLToPath(import.meta.url)), "server.mjs");
export const introspectScript = join(dirname(fileURLToPath(import.meta.url)), "introspect.py");
/** The core node definitions server.mjs serves: the committed fixture of a real ComfyUI's /object_info. */
export const coreObjectInfo = join(dirname(fileURLToPath(import.meta.url)), "../../fixtures/data/comfyui/object_info.json");

/** Where things are inside the image. */
export const IMAGE_PATHS = {
  api: "/opt/comfyui-api",
  launcher: `/opt/comfyui-api/${LAUNCHER}`,
  node: "/usr/local/bin/node",
  comfyHome: "/opt/ComfyUI",
  comfyMain: "/opt/ComfyUI/main.mjs",
  // server.mjs looks for it beside itself
  introspect: "/opt/ComfyUI/introspect.py",
  coreObjectInfo: "/opt/ComfyUI/core_object_info.json",
  python: "/usr/bin/python3.11",
  workflows: "/workflows",
} as const;
export const COMFY_STANDIN_VERSION = "0.19.3-standin";

// Files copied from the lab rootfs besides the libraries found by ld.so --list.
const EXTRA_FILES = ["/usr/bin/dash", "/etc/passwd", "/etc/group", "/etc/nsswitch.conf"];
// python: these trees copied whole (symlinks kept), less PYTHON_DROP; pip's launchers and the
// CA bundle (Debian's pip reads /etc/ssl/certs; OpenSSL's default is /usr/lib/ssl/cert.pem).
const PYTHON_TREES = ["/usr/lib/python3.11", "/usr/lib/python3/dist-packages", "/etc/python3.11"];
const PYTHON_FILES = ["/usr/bin/pip", "/usr/bin/pip3", "/etc/ssl/certs/ca-certificates.crt"];
const PYTHON_LINKS: [string, string][] = [
  ["/usr/bin/python3", "python3.11"],
  ["/usr/bin/python", "python3"],
  ["/usr/lib/ssl/cert.pem", "/etc/ssl/certs/ca-certificates.crt"],
];
// Left out (find -path "*/<entry>"): bytecode, the test suite and C test modules, GUI and terminal
// modules, NIS and dbm (with the Kerberos and Berkeley DB libraries they would pull in), python's
// own build configuration, and the marker that makes Debian's pip refuse to install (PEP 668):
// the real image's conda python has none.
const PYTHON_DROP = [
  "__pycache__",
  "python3.11/test",
  "python3.11/idlelib",
  "python3.11/tkinter",
  "python3.11/turtledemo",
  "python3.11/pydoc_data",
  "python3.11/config-3.11-*",
  "python3.11/EXTERNALLY-MANAGED",
  "lib-dynload/_test*",
  "lib-dynload/_ctypes_test*",
  "lib-dynload/*xx*",
  "lib-dynload/nis.*",
  "lib-dynload/_dbm.*",
  "lib-dynload/_gdbm.*",
  "lib-dynload/_curses*",
  "lib-dynload/readline.*",
];
// What the real image has where the flowfile mounts things: ComfyUI's model folders,
// ComfyUI-Manager inside custom_nodes (a mount over custom_nodes must not hide it),
// input/output, /workflows.
const MODEL_FOLDERS = [
  "checkpoints",
  "loras",
  "vae",
  "text_encoders",
  "diffusion_models",
  "clip_vision",
  "controlnet",
  "upscale_models",
  "embeddings",
  "configs",
];
const MANAGER_INIT = `# stand-in for ComfyUI-Manager as baked into the comfyui-api image (it registers no nodes)
NODE_CLASS_MAPPINGS = {}
`;
const COMFY_VERSION_PY = `# ComfyUI's version file; comfyui-api reads it when python cannot import ComfyUI (the lab has no python)
__version__ = "${COMFY_STANDIN_VERSION}"
`;
// The real image's environment (docker/comfyui.dockerfile, docker/api.dockerfile), with CMD
// starting the stand-in instead of `comfy --workspace /opt/ComfyUI launch -- --listen *`.
// comfyui-api splits CMD on spaces and runs it without a shell.
export const IMAGE_ENV: Record<string, string> = {
  PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
  COMFY_HOME: IMAGE_PATHS.comfyHome,
  MODEL_DIR: `${IMAGE_PATHS.comfyHome}/models`,
  OUTPUT_DIR: `${IMAGE_PATHS.comfyHome}/output`,
  INPUT_DIR: `${IMAGE_PATHS.comfyHome}/input`,
  CMD: `node ${IMAGE_PATHS.comfyMain} --listen 0.0.0.0 --port 8188`,
  BASE: "",
  WORKFLOW_DIR: IMAGE_PATHS.workflows,
  STARTUP_CHECK_MAX_TRIES: "30",
};
const IMPORT_CHANGES = [
  ...Object.entries(IMAGE_ENV).map(([k, v]) => `ENV ${k}=${JSON.stringify(v)}`),
  `WORKDIR ${IMAGE_PATHS.comfyHome}`,
  "EXPOSE 8188 3000",
  `CMD ["${IMAGE_PATHS.launcher}"]`,
];

/** comfy/samplers.py as comfyui-api reads it: KSampler's lists, from the core /object_info's KSampler. */
export function samplersPy(objectInfo: { KSampler?: { input?: { required?: Record<string, unknown[]> } } }): string {
  const req = objectInfo.KSampler?.input?.required ?? {};
  const list = (name: string) => (Array.isArray(req[name]?.[0]) ? (req[name]![0] as string[]) : []);
  return [
    "# the stand-in's ComfyUI module comfyui-api imports for its sampler and scheduler lists",
    "class KSampler:",
    `    SAMPLERS = ${JSON.stringify(list("sampler_name"))}`,
    `    SCHEDULERS = ${JSON.stringify(list("scheduler"))}`,
    "",
  ].join("\n");
}

/** Content hash: the base rootfs, this recipe, the stand-in, the comfyui-api build and Node. */
export async function standinHash(apiHash: string): Promise<string> {
  const script = await readFile(serverScript);
  return createHash("sha256")
    .update(
      JSON.stringify({
        base: recipeHash,
        EXTRA_FILES,
        PYTHON_TREES,
        PYTHON_FILES,
        PYTHON_LINKS,
        PYTHON_DROP,
        MODEL_FOLDERS,
        MANAGER_INIT,
        COMFY_VERSION_PY,
        samplersPy: samplersPy.toString(),
        IMPORT_CHANGES,
        IMAGE_PATHS,
        apiHash,
        NODE_VERSION,
        v: 3,
      }),
    )
    .update(script)
    .update(await readFile(introspectScript))
    .update(await readFile(coreObjectInfo))
    .digest("hex")
    .slice(0, 16);
}

const tarballFor = (hash: string) => join(cacheDir, `standin-${hash}.tar`);

export interface StandinBuild {
  path: string;
  hash: string;
  /** false when the tarball was in the cache already */
  built: boolean;
  /** time for this call: the comfyui-api build (when not cached) plus the image's root filesystem */
  ms: number;
  /** the comfyui-api build folder in the cache, and whether this call built it */
  api: { dir: string; hash: string; built: boolean; ms: number };
}

/** The image's root filesystem as a tarball in the lab cache; built once per content hash. */
export async function buildStandinTarball(log: (msg: string) => void = () => {}): Promise<StandinBuild> {
  const started = Date.now();
  const api = await ensureComfyuiApiBuild(log);
  const node = await ensureNodeRuntime(log);
  const hash = await standinHash(api.hash);
  const path = tarballFor(hash);
  const result = (built: boolean): StandinBuild => ({ path, hash, built, ms: Date.now() - started, api });
  if (existsSync(path)) return result(false);
  if (process.getuid?.() !== 0) throw new Error("building the stand-in image needs root (chroot into the lab rootfs)");
  await mkdir(cacheDir, { recursive: true });
  return withDirLock(join(cacheDir, "standin.lock"), async () => {
    if (existsSync(path)) return result(false);
    const base = join(cacheDir, `rootfs-${recipeHash}.tar`);
    if (!existsSync(base)) await ensureImage(log); // builds the debootstrap rootfs tarball
    if (!existsSync(base))
      throw new Error(`${base} missing (the lab image exists but its rootfs tarball is gone: rm the flow-lab image and retry)`);
    const work = await mkdtemp(join(cacheDir, "standin-build-"));
    try {
      const t0 = Date.now();
      const full = join(work, "full");
      const out = join(work, "out");
      await mkdir(full);
      await run("tar", ["-C", full, "-xf", base, "./usr/lib", "./usr/lib64", "./usr/bin", "./etc", "./lib", "./lib64"]);
      // node and comfyui-api inside the full rootfs, so its own loader resolves their libraries
      await mkdir(join(full, "usr/local/bin"), { recursive: true });
      await copyFile(node.path, join(full, IMAGE_PATHS.node));
      await chmod(join(full, IMAGE_PATHS.node), 0o755);
      await mkdir(dirname(join(full, IMAGE_PATHS.api)), { recursive: true });
      await run("cp", ["-al", api.dir, join(full, IMAGE_PATHS.api)]);
      // python's trees less what the image leaves out, before ld.so --list looks at what is kept
      const drop = PYTHON_DROP.flatMap((n, i) => [...(i ? ["-o"] : []), "-path", `*/${n}`]);
      await run("find", [...PYTHON_TREES.map((t) => join(full, t)), "(", ...drop, ")", "-prune", "-exec", "rm", "-rf", "{}", "+"]);
      const pythonNatives = (await run("find", [...PYTHON_TREES.map((t) => join(full, t)), "-type", "f", "-name", "*.so"])).stdout
        .split("\n")
        .filter(Boolean)
        .map((p) => p.slice(full.length));
      const natives = (
        await run("find", [
          join(full, IMAGE_PATHS.api),
          "-type",
          "f",
          "(",
          "-name",
          "*.node",
          "-o",
          "-name",
          "*.so",
          "-o",
          "-name",
          "*.so.*",
          ")",
        ])
      ).stdout
        .split("\n")
        .filter(Boolean)
        .map((p) => p.slice(full.length));
      const libs = new Set<string>();
      for (const bin of [IMAGE_PATHS.node, ...natives, IMAGE_PATHS.python, ...pythonNatives]) {
        const listed = await run("chroot", [full, "/lib64/ld-linux-x86-64.so.2", "--list", bin]);
        const found = [...listed.stdout.matchAll(/(?:=>\s*)?(\/\S+)\s+\(0x/g)].map((m) => m[1]!);
        if (listed.stdout.includes("not found")) throw new Error(`ld.so --list ${bin}: a library is missing\n${listed.stdout}`);
        for (const l of found) if (!l.startsWith(`${IMAGE_PATHS.api}/`) && l !== bin) libs.add(l);
      }
      if (![...libs].some((l) => l.includes("libstdc++")))
        throw new Error(`ld.so --list ${IMAGE_PATHS.node}: unexpected output (no libstdc++)`);

      await mkdir(out);
      for (const p of [
        "/tmp",
        "/root",
        "/proc",
        "/sys",
        "/dev",
        "/etc",
        "/usr/bin",
        "/usr/sbin",
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib64",
        "/usr/local/bin",
        IMAGE_PATHS.workflows,
      ]) {
        await mkdir(join(out, p), { recursive: true });
      }
      await chmod(join(out, "tmp"), 0o1777);
      await chmod(join(out, "root"), 0o700);
      // merged /usr, as Debian has it: /bin, /lib, /lib64 are links into /usr
      for (const l of ["bin", "lib", "lib64", "sbin"]) await run("ln", ["-s", `usr/${l}`, join(out, l)]);
      for (const file of [...EXTRA_FILES, IMAGE_PATHS.python, ...PYTHON_FILES, ...libs]) {
        // copy what a link points at, under the name the loader asks for
        const src = await realInRoot(full, file);
        const dest = join(out, file.replace(/^\/(lib|lib64|bin)\//, "/usr/$1/"));
        await mkdir(dirname(dest), { recursive: true });
        await copyFile(src, dest);
        await chmod(dest, (await stat(src)).mode & 0o7777);
      }
      await run("ln", ["-s", "dash", join(out, "usr/bin/sh")]);
      for (const t of PYTHON_TREES) {
        await mkdir(dirname(join(out, t)), { recursive: true });
        await run("cp", ["-a", join(full, t), join(out, t)]);
      }
      for (const [link, target] of PYTHON_LINKS) {
        await mkdir(dirname(join(out, link)), { recursive: true });
        await run("ln", ["-s", target, join(out, link)]);
      }
      await writeFile(join(out, "etc/hosts"), "127.0.0.1 localhost\n");
      // node: the official binary carries its debug symbols (~12 MB); strip them when we can
      await copyFile(node.path, join(out, IMAGE_PATHS.node));
      await chmod(join(out, IMAGE_PATHS.node), 0o755);
      if (await have("strip")) await run("strip", [join(out, IMAGE_PATHS.node)]);
      await cp(api.dir, join(out, IMAGE_PATHS.api), { recursive: true, preserveTimestamps: true });
      const comfy = join(out, IMAGE_PATHS.comfyHome);
      for (const d of [...MODEL_FOLDERS.map((f) => `models/${f}`), "custom_nodes/ComfyUI-Manager", "input", "output", "user"]) {
        await mkdir(join(comfy, d), { recursive: true });
      }
      await writeFile(join(comfy, "custom_nodes/ComfyUI-Manager/__init__.py"), MANAGER_INIT);
      await writeFile(join(comfy, "comfyui_version.py"), COMFY_VERSION_PY);
      await mkdir(join(comfy, "comfy"), { recursive: true });
      await writeFile(join(comfy, "comfy/__init__.py"), "");
      await writeFile(join(comfy, "comfy/samplers.py"), samplersPy(JSON.parse(await readFile(coreObjectInfo, "utf8"))));
      await copyFile(serverScript, join(out, IMAGE_PATHS.comfyMain));
      await copyFile(introspectScript, join(out, IMAGE_PATHS.introspect));
      await copyFile(coreObjectInfo, join(out, IMAGE_PATHS.coreObjectInfo));
      // does it run? (inside its own tiny root, so a missing library shows here, not in a lab host)
      const check = await run("chroot", [
        out,
        IMAGE_PATHS.node,
        "-e",
        `process.chdir("${IMAGE_PATHS.api}"); require("${IMAGE_PATHS.api}/node_modules/sharp"); ` +
          `process.stdout.write(process.version + " comfyui-api " + require("${IMAGE_PATHS.api}/dist/package.json").version)`,
      ]);
      if (!check.stdout.endsWith(` comfyui-api ${COMFYUI_API.version}`)) throw new Error(`stand-in rootfs check: ${check.stdout}`);
      // python with the modules pip needs, and pip itself
      const py = await run("chroot", [out, "/usr/bin/python", "-B", "-c", "import ssl, hashlib, zlib, ctypes, lzma, bz2, sqlite3, json"], {
        allowFail: true,
      });
      if (py.code !== 0) throw new Error(`stand-in rootfs check: python: ${py.stderr}`);
      const pip = await run("chroot", [out, "/usr/bin/python3", "-B", "-m", "pip", "--version"]);
      if (!pip.stdout.startsWith("pip ")) throw new Error(`stand-in rootfs check: ${pip.stdout}`);
      const du = await run("du", ["-sm", out]);
      log(
        `stand-in rootfs: node ${check.stdout}, ${pip.stdout.trim()}, ${libs.size} libraries, ${du.stdout.split("\t")[0]} MB, ` +
          `built in ${Date.now() - t0} ms`,
      );
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
    return result(true);
  });
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
  /** how the tarball was had: built by this call or found in the cache */
  build: StandinBuild;
}

/** Make sure `hostName`'s inner Docker engine has the stand-in image with this content hash. */
export async function ensureStandinImage(inv: LabInventory, hostName: string, log: (msg: string) => void = () => {}): Promise<StandinLoad> {
  const host = inv.hosts[hostName];
  if (!host) throw new Error(`no lab host ${hostName} in the inventory`);
  const started = Date.now();
  const build = await buildStandinTarball(log);
  const { path, hash } = build;
  const load = await ensureInnerImage(
    { name: hostName, container: host.data.container },
    { tag: STANDIN_TAG, hashLabel: HASH_LABEL, hash, path, changes: IMPORT_CHANGES },
    log,
  );
  return { tag: STANDIN_TAG, hash, loaded: load.loaded, ms: Date.now() - started, bytes: load.bytes, build };
}

// The lab's Caddy image (`flow-caddy:lab`), built here from Debian's `caddy` package (2.6.2,
// installed on this machine by .ci/run) and loaded into a lab host's own Docker engine, where
// flow runs the official `caddy:2` on real boxes (images cannot be pulled in the lab).
//
// It reproduces what flow relies on in the official image:
//   /usr/bin/caddy                 the binary (Debian's is linked against glibc and libzstd: those
//                                  libraries, found with ldd, come with it, at the paths the loader asks for)
//   ENV XDG_CONFIG_HOME=/config, XDG_DATA_HOME=/data (Caddy keeps its certificates, its local CA
//                                  among them, under /data/caddy), VOLUME /config /data, WORKDIR /srv
//   CMD caddy run --config /etc/caddy/Caddyfile --adapter caddyfile
//   /etc/caddy/Caddyfile           the official default (serve /usr/share/caddy on :80); flow mounts its own
//   /etc/ssl/certs/ca-certificates.crt (this machine's bundle, when it has one), /etc/passwd,
//   /etc/group, /tmp, /root.
// No shell, no other tools: `docker exec` into it runs caddy only.
//
// Built once per content hash (this recipe, the binary, its libraries, the CA bundle) into the
// lab cache as a tarball, and loaded into a host only when the host's image carries another hash
// (HASH_LABEL), as the stand-in image is (../standin/image.ts).
//
//   const r = await ensureCaddyImage(inv, "lab1");  // { tag, hash, loaded, ms }
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { chmod, copyFile, mkdir, mkdtemp, readdir, readFile, realpath, rename, rm, stat, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { LabInventory } from "../hosts.ts";
import { cacheDir, ensureInnerImage, run, withDirLock } from "../util.ts";

export const CADDY_TAG = "flow-caddy:lab";
export const HASH_LABEL = "flow.caddy.hash";
/** The binary the image is made from (Debian: apt-get install caddy). */
export const CADDY_BINARY = "/usr/bin/caddy";
const CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt";

// The official image's configuration (docker-library/caddy, 2/alpine/Dockerfile).
const IMPORT_CHANGES = [
  `ENV PATH=${JSON.stringify("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")}`,
  "ENV XDG_CONFIG_HOME=/config",
  "ENV XDG_DATA_HOME=/data",
  "VOLUME /config",
  "VOLUME /data",
  "EXPOSE 80 443 443/udp 2019",
  "WORKDIR /srv",
  'CMD ["caddy","run","--config","/etc/caddy/Caddyfile","--adapter","caddyfile"]',
];
// Written into the image (the official image's default Caddyfile and page, users and groups).
const FILES: Record<string, string> = {
  "/etc/caddy/Caddyfile": ":80 {\n\troot * /usr/share/caddy\n\tfile_server\n}\n",
  "/usr/share/caddy/index.html": "<!DOCTYPE html>\n<title>Caddy works!</title>\n<p>flow lab: Caddy works!</p>\n",
  "/etc/passwd": "root:x:0:0:root:/root:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
  "/etc/group": "root:x:0:\nnogroup:x:65534:\n",
  "/etc/nsswitch.conf": "hosts: files dns\n",
};
const DIRS: [string, number][] = [
  ["/tmp", 0o1777],
  ["/root", 0o700],
  ["/config", 0o755],
  ["/data", 0o755],
  ["/srv", 0o755],
  ["/proc", 0o755],
  ["/sys", 0o755],
  ["/dev", 0o755],
];

/** Libraries `bin` loads, as ldd lists them (the dynamic loader included). */
async function sharedLibraries(bin: string): Promise<string[]> {
  const r = await run("ldd", [bin]);
  if (r.stdout.includes("not found")) throw new Error(`ldd ${bin}: a library is missing\n${r.stdout}`);
  const libs = [...r.stdout.matchAll(/(?:=>\s*)?(\/\S+)\s+\(0x/g)].map((m) => m[1]!);
  if (!libs.some((l) => /\/ld-linux[^/]*\.so/.test(l))) throw new Error(`ldd ${bin}: unexpected output (no dynamic loader)\n${r.stdout}`);
  return [...new Set(libs)];
}

/** Everything copied from this machine: [path in the image, file here] (links resolved). */
async function sources(): Promise<[string, string][]> {
  if (!existsSync(CADDY_BINARY))
    throw new Error(`${CADDY_BINARY} not found: the lab's Caddy image is built from Debian's package (apt-get install caddy)`);
  const libs = await sharedLibraries(CADDY_BINARY);
  const files: [string, string][] = [[CADDY_BINARY, CADDY_BINARY]];
  // merged /usr, as Debian has it: /lib and /lib64 are links into /usr; each library under the name the loader asks for
  for (const l of libs) files.push([l.replace(/^\/(lib|lib64)\//, "/usr/$1/"), await realpath(l)]);
  if (existsSync(CA_BUNDLE)) files.push([CA_BUNDLE, await realpath(CA_BUNDLE)]);
  return files;
}

/** Content hash: this recipe and every file copied in. */
async function caddyHash(files: [string, string][]): Promise<string> {
  const h = createHash("sha256").update(JSON.stringify({ IMPORT_CHANGES, FILES, DIRS, files: files.map(([p]) => p), v: 1 }));
  for (const [, src] of files) h.update(await readFile(src));
  return h.digest("hex").slice(0, 16);
}

const tarballFor = (hash: string) => join(cacheDir, `caddy-${hash}.tar`);

export interface CaddyBuild {
  path: string;
  hash: string;
  /** false when the tarball was in the cache already */
  built: boolean;
  ms: number;
}

/** The image's root filesystem as a tarball in the lab cache; built once per content hash. */
export async function buildCaddyTarball(log: (msg: string) => void = () => {}): Promise<CaddyBuild> {
  const started = Date.now();
  const files = await sources();
  const hash = await caddyHash(files);
  const path = tarballFor(hash);
  const result = (built: boolean): CaddyBuild => ({ path, hash, built, ms: Date.now() - started });
  if (existsSync(path)) return result(false);
  await mkdir(cacheDir, { recursive: true });
  return withDirLock(join(cacheDir, "caddy.lock"), async () => {
    if (existsSync(path)) return result(false);
    const out = await mkdtemp(join(cacheDir, "caddy-build-"));
    try {
      await chmod(out, 0o755); // the image's / (mkdtemp makes it 0700)
      for (const [dir, mode] of DIRS) {
        await mkdir(join(out, dir), { recursive: true });
        await chmod(join(out, dir), mode);
      }
      for (const d of ["usr/bin", "usr/sbin", "usr/lib", "usr/lib64"]) await mkdir(join(out, d), { recursive: true });
      for (const l of ["bin", "lib", "lib64", "sbin"]) await run("ln", ["-s", `usr/${l}`, join(out, l)]);
      for (const [dest, src] of files) {
        await mkdir(dirname(join(out, dest)), { recursive: true });
        await copyFile(src, join(out, dest));
        await chmod(join(out, dest), (await stat(src)).mode & 0o7777);
      }
      for (const [p, text] of Object.entries(FILES)) {
        await mkdir(dirname(join(out, p)), { recursive: true });
        await writeFile(join(out, p), text);
      }
      // does it run inside its own tiny root? (a missing library shows here, not in a lab host)
      if (process.getuid?.() === 0) {
        const check = await run("chroot", [out, CADDY_BINARY, "version"], { allowFail: true });
        if (check.code !== 0 || !/^v?2\./.test(check.stdout)) throw new Error(`caddy rootfs check: ${check.stdout}${check.stderr}`);
        log(`caddy rootfs: ${check.stdout.trim().split(" ")[0]}, ${files.length} files copied, built in ${Date.now() - started} ms`);
        // what that run left behind (smallstep's ~/.step)
        await rm(join(out, "root"), { recursive: true, force: true });
        await mkdir(join(out, "root"), { mode: 0o700 });
      }
      const partial = `${path}.partial`;
      await run("tar", ["--numeric-owner", "--owner=0", "--group=0", "-C", out, "-cf", partial, "."]);
      await rename(partial, path);
      // older builds are never wanted again
      for (const f of await readdir(cacheDir)) {
        if (/^caddy-[0-9a-f]+\.tar$/.test(f) && join(cacheDir, f) !== path) await rm(join(cacheDir, f), { force: true });
      }
    } finally {
      await rm(out, { recursive: true, force: true });
    }
    return result(true);
  });
}

export interface CaddyLoad {
  tag: string;
  hash: string;
  /** false when the host already had this exact image */
  loaded: boolean;
  ms: number;
  build: CaddyBuild;
}

/** Make sure `hostName`'s inner Docker engine has the Caddy image with this content hash. */
export async function ensureCaddyImage(inv: LabInventory, hostName: string, log: (msg: string) => void = () => {}): Promise<CaddyLoad> {
  const host = inv.hosts[hostName];
  if (!host) throw new Error(`no lab host ${hostName} in the inventory`);
  const started = Date.now();
  const build = await buildCaddyTarball(log);
  const { path, hash } = build;
  const load = await ensureInnerImage(
    { name: hostName, container: host.data.container },
    { tag: CADDY_TAG, hashLabel: HASH_LABEL, hash, path, changes: IMPORT_CHANGES },
    log,
  );
  return { tag: CADDY_TAG, hash, loaded: load.loaded, ms: Date.now() - started, build };
}

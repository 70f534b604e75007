// flow as a user installs it: `npm pack`, the tarball installed into an empty project, the README's
// "Writing a plugin" example as that project's flowfile (importing flow by its package name, types
// included), then `npx flow list` and `npx flow run` there.
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPO } from "../support/cli.ts";

const npm = (args: string[], cwd: string) =>
  spawnSync("npm", [...args, "--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error"], {
    cwd,
    encoding: "utf8",
    timeout: 300_000,
  });

/** The first ts block under "## Writing a plugin": the docs and this test cannot drift apart. */
function readmeExample(): string {
  const readme = readFileSync(join(REPO, "README.md"), "utf8");
  const section = readme.slice(readme.indexOf("## Writing a plugin"));
  const m = /```ts\n([\s\S]*?)```/.exec(section);
  assert.ok(m, "README has a ts example under ## Writing a plugin");
  return m[1]!;
}

describe("the packed package in a user's project", { timeout: 600_000 }, () => {
  const work = mkdtempSync(join(tmpdir(), "flow-pack-"));
  const project = join(work, "project");
  after(() => rmSync(work, { recursive: true, force: true }));

  test("npm pack, install into an empty project, the README's plugin example runs there", () => {
    const packed = npm(["pack", "--pack-destination", work], REPO);
    assert.equal(packed.status, 0, packed.stderr);
    const tarball = readdirSync(work).find((f) => f.endsWith(".tgz"));
    assert.ok(tarball, "npm pack wrote a tarball");
    execFileSync("mkdir", ["-p", project]);
    writeFileSync(join(project, "package.json"), JSON.stringify({ name: "my-fleet", private: true, type: "module" }));
    const installed = npm(["install", join(work, tarball)], project);
    assert.equal(installed.status, 0, installed.stderr);
    writeFileSync(join(project, "flowfile.ts"), readmeExample());

    const env = { ...process.env, CI: "true" };
    const flow = (args: string[]) =>
      spawnSync(join(project, "node_modules/.bin/flow"), args, { cwd: project, env, encoding: "utf8", timeout: 60_000 });
    const list = flow(["list"]);
    assert.equal(list.status, 0, list.stderr);
    assert.match(list.stdout, /flowfile: .*project\/flowfile\.ts/);
    assert.match(list.stdout, /plugin hello — an example\n\s+hello:greet\s+Write a greeting file/);
    assert.match(list.stdout, /plugin ops .*\n\s+status\s+OS, uptime/, "the built-in plugins come from the package too");

    const path = join(work, "greeting");
    const first = flow(["run", "hello:greet", "--host", "local", "--name", "team", "--path", path]);
    assert.equal(first.status, 0, first.stdout + first.stderr);
    assert.match(first.stdout, /greeting in .*: changed/);
    assert.equal(readFileSync(path, "utf8"), "hello team\n");
    const second = flow(["run", "hello:greet", "--host", "local", "--name", "team", "--path", path, "--json"]);
    const recap = JSON.parse(second.stdout.trim().split("\n").pop()!);
    assert.deepEqual([recap.hosts[0].changed, recap.hosts[0].failed], [0, 0], second.stdout);
    const help = flow(["run", "hello:greet", "--help"]);
    assert.match(help.stdout, /--name=<name>\s+who to greet \(Required\)/);

    // the package's types: the flowfile type-checks against `flow` as installed
    writeFileSync(
      join(project, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          module: "NodeNext",
          moduleResolution: "NodeNext",
          target: "ES2022",
          strict: true,
          noEmit: true,
          skipLibCheck: true,
          types: [],
        },
        include: ["flowfile.ts"],
      }),
    );
    const tsc = spawnSync(process.execPath, [join(REPO, "node_modules/typescript/bin/tsc"), "-p", project], { encoding: "utf8" });
    assert.equal(tsc.status, 0, tsc.stdout + tsc.stderr);
    writeFileSync(
      join(project, "flowfile.ts"),
      readmeExample()
        .replace('name: z.string().describe("who to greet"),', "name: z.string(), bogus: 1 as unknown as string,")
        .replace("const text = `hello ${o.name}\\n`;", "const text: number = o.name;"),
    );
    const bad = spawnSync(process.execPath, [join(REPO, "node_modules/typescript/bin/tsc"), "-p", project], { encoding: "utf8" });
    assert.notEqual(bad.status, 0, "a type error in the flowfile is caught: the types are real, not any");
    assert.match(bad.stdout, /flowfile\.ts.*Type 'string' is not assignable to type 'number'/);
  });
});

// npm run bench:fanout: five read-only commands on 20 lab hosts, flow vs Ansible vs the OpenSSH floor,
// plus the per-step overhead of 50 sequential steps on one host. Median of interleaved runs.
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ensureLab, labUnavailableReason } from "../test/lab/lab.ts";
import { SshTransport } from "../lib/transport/ssh.ts";
import { FIVE } from "./fanout.flowfile.ts";

const HOSTS = Number(process.env.BENCH_HOSTS ?? 20);
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const repo = fileURLToPath(new URL("..", import.meta.url));
const flowBin = join(repo, "bin/flow.mjs");
const flowfile = join(repo, "bench/fanout.flowfile.ts");

function run(argv: string[], env: Record<string, string> = {}): Promise<{ ms: number; code: number | null; out: string }> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const child = spawn(argv[0]!, argv.slice(1), { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (c) => (out += c));
    child.stderr.on("data", (c) => (out += c));
    child.on("close", (code) => resolve({ ms: performance.now() - t0, code, out }));
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main() {
  const why = await labUnavailableReason();
  if (why) throw new Error(`the lab cannot run here: ${why}`);
  // keep hosts as they are (re-creating them would disturb other users of the lab)
  // BENCH_NO_DOCKER=1: hosts without their inner Docker engine (20 idle engines load a 2-core machine)
  const inv = await ensureLab({ hosts: HOSTS, docker: process.env.BENCH_NO_DOCKER === "1" ? false : undefined });
  const hosts = Object.entries(inv.hosts).slice(0, HOSTS);
  const sshBase = (port: number, user: string, key: string) => [
    "ssh",
    "-i",
    key,
    "-o",
    `UserKnownHostsFile=${inv.knownHostsFile}`,
    "-o",
    "StrictHostKeyChecking=yes",
    "-o",
    "BatchMode=yes",
    "-o",
    "ControlMaster=no",
    "-p",
    String(port),
    `${user}@127.0.0.1`,
  ];
  const dir = mkdtempSync(join(tmpdir(), "flow-bench-"));
  const ansibleInv = join(dir, "hosts.ini");
  writeFileSync(
    ansibleInv,
    "[lab]\n" +
      hosts
        .map(
          ([n, h]) =>
            `${n} ansible_host=127.0.0.1 ansible_port=${h.port} ansible_user=${h.user} ansible_ssh_private_key_file=${h.identityFile}`,
        )
        .join("\n") +
      "\n",
  );
  const playbook = join(dir, "five.yml");
  writeFileSync(
    playbook,
    `- hosts: lab\n  gather_facts: false\n  tasks:\n${FIVE.map((c) => `    - shell: ${JSON.stringify(c)}\n`).join("")}`,
  );
  const ansibleEnv = {
    ANSIBLE_FORKS: String(HOSTS),
    ANSIBLE_HOST_KEY_CHECKING: "True",
    ANSIBLE_STDOUT_CALLBACK: "minimal",
    ANSIBLE_PYTHON_INTERPRETER: "/usr/bin/python3",
    ANSIBLE_SSH_ARGS: `-o UserKnownHostsFile=${inv.knownHostsFile} -o ControlMaster=no`,
    ANSIBLE_LOCALHOST_WARNING: "False",
    ANSIBLE_DEPRECATION_WARNINGS: "False",
  };
  const haveAnsible = spawnSync("sh", ["-c", "command -v ansible-playbook"]).status === 0 && process.env.BENCH_ANSIBLE !== "0";
  const hostList = hosts.map(([n]) => n).join(",");

  const contenders: Record<string, () => Promise<{ ms: number; code: number | null; out: string }>> = {
    "OpenSSH floor (20 ssh, one session each)": async () => {
      const t0 = performance.now();
      const rs = await Promise.all(hosts.map(([, h]) => run([...sshBase(h.port, h.user, h.identityFile), FIVE.join("; ")])));
      return { ms: performance.now() - t0, code: rs.every((r) => r.code === 0) ? 0 : 1, out: rs.find((r) => r.code !== 0)?.out ?? "" };
    },
    "flow, five steps": () =>
      run([process.execPath, flowBin, "run", "bench:five", "--hosts", hostList, "--flowfile", flowfile, "--concurrency", String(HOSTS)], {
        CI: "true",
      }),
  };
  if (haveAnsible) {
    contenders["Ansible ad-hoc shell (one call)"] = () =>
      run(["ansible", "lab", "-i", ansibleInv, "-m", "shell", "-a", FIVE.join("; ")], ansibleEnv);
    contenders["Ansible playbook, five tasks"] = () => run(["ansible-playbook", "-i", ansibleInv, playbook], ansibleEnv);
    contenders["Ansible playbook, five tasks, pipelining"] = () =>
      run(["ansible-playbook", "-i", ansibleInv, playbook], { ...ansibleEnv, ANSIBLE_PIPELINING: "True" });
  }
  const times: Record<string, number[]> = Object.fromEntries(Object.keys(contenders).map((k) => [k, []]));
  // Ansible's playbooks take minutes per run on 2 cores with 20 forks: BENCH_PLAYBOOK_RUNS may run them fewer times.
  const PLAYBOOK_RUNS = Number(process.env.BENCH_PLAYBOOK_RUNS ?? RUNS);
  for (let i = 0; i < RUNS; i++) {
    for (const [name, f] of Object.entries(contenders)) {
      if (name.includes("playbook") && i >= PLAYBOOK_RUNS) continue;
      const r = await f();
      if (r.code !== 0) throw new Error(`${name} failed:\n${r.out.slice(-2000)}`);
      times[name]!.push(r.ms);
      process.stderr.write(`[bench] run ${i + 1} ${name}: ${(r.ms / 1000).toFixed(2)} s\n`);
    }
  }

  // Per-step overhead on one host: 50 sequential trivial steps inside flow, one bare `ssh host true`,
  // and one ssh2 exec on an already open connection.
  const [name1, h1] = hosts[0]!;
  const stepRuns: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const r = await run(
      [process.execPath, flowBin, "run", "bench:steps", "--host", name1, "--flowfile", flowfile, "--json", "--count", "50"],
      { CI: "true" },
    );
    const ms = r.out
      .split("\n")
      .filter((l) => l.includes('"step-end"'))
      .map((l) => JSON.parse(l).ms as number);
    stepRuns.push(ms.reduce((a, b) => a + b, 0) / ms.length);
  }
  const bare: number[] = [];
  for (let i = 0; i < RUNS; i++) bare.push((await run([...sshBase(h1.port, h1.user, h1.identityFile), "true"])).ms);
  const execMs: Record<string, number> = {};
  for (const persistentShell of [false, true]) {
    const t = new SshTransport(
      { label: name1, address: "127.0.0.1", port: h1.port, user: h1.user, identityFile: h1.identityFile },
      {
        knownHostsFile: inv.knownHostsFile,
        acceptNewHostKey: false,
        connectTimeoutMs: 10_000,
        keepaliveIntervalMs: 15_000,
        sshConfigFile: null,
        maxChannels: 8,
      },
      { persistentShell },
    );
    await t.connect();
    await t.exec("true");
    const xs: number[] = [];
    for (let i = 0; i < 50; i++) {
      const t0 = performance.now();
      await t.exec("true");
      xs.push(performance.now() - t0);
    }
    await t.close();
    execMs[persistentShell ? "persistent sh" : "exec channel"] = median(xs);
  }

  const floor = median(times["OpenSSH floor (20 ssh, one session each)"]!);
  const lines = [
    `fan-out: ${hosts.length} lab hosts, ${RUNS} interleaved runs, median wall time ` +
      `(load at start: ${spawnSync("cat", ["/proc/loadavg"]).stdout.toString().trim()})`,
    "",
    "| contender | median s | x floor |",
    "|---|---|---|",
    ...Object.entries(times).map(
      ([k, xs]) =>
        `| ${k} (${xs.length} runs: ${xs.map((x) => (x / 1000).toFixed(1)).join(", ")}) | ` +
        `${(median(xs) / 1000).toFixed(2)} | ${(median(xs) / floor).toFixed(2)} |`,
    ),
    "",
    "per-step overhead, one host:",
    "",
    "| what | ms |",
    "|---|---|",
    `| flow step (\`true\`), mean of 50 sequential steps, median of ${RUNS} runs | ${median(stepRuns).toFixed(1)} |`,
    `| ssh2 exec on an open connection: exec channel | ${execMs["exec channel"]!.toFixed(1)} |`,
    `| ssh2 exec on an open connection: persistent sh | ${execMs["persistent sh"]!.toFixed(1)} |`,
    `| one bare \`ssh host true\` (new process + handshake) | ${median(bare).toFixed(0)} |`,
  ];
  console.log(lines.join("\n"));
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});

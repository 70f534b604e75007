// Tier "ops": look at the fleet and run ad-hoc commands on it.
import { z } from "zod";
import { definePlugin, defineTask } from "../lib/index.ts";
import { parseStatus, statusCommand, type HostStatus } from "../lib/facts/status.ts";
import type { HostRecap } from "../lib/events.ts";
import { dataRootOf } from "../lib/host-data.ts";
import { formatTable } from "../lib/output/table.ts";

export const status = defineTask({
  name: "status",
  description: "OS, uptime, load, memory, data-volume disk, containers and GPUs of each host",
  lock: false,
  options: z.object({
    path: z.string().optional().describe("folder whose disk to report (default: the host's data root)"),
  }),
  async run(ctx, opts) {
    // the same data root setup, comfyui and the models tasks use (recorded, flowfile, provider, home)
    const path = opts.path ?? dataRootOf(ctx);
    await ctx.step("status", async () => {
      const s = parseStatus(await ctx.sh(statusCommand(path)), path);
      ctx.emit({ status: s });
      return { status: "ok", note: oneLine(s) };
    });
  },
  summarize: fleetTable,
});

export const exec = defineTask({
  name: "exec",
  description: "Run a shell command on every selected host: flow run exec --hosts gpus -- nvidia-smi",
  lock: false,
  takesRest: true,
  passthrough: true,
  options: z.object({ sudo: z.boolean().default(false).describe("run it as root (sudo -n) when the login user is not") }),
  async run(ctx, opts) {
    // Words after -- form one command line, joined by spaces, as `ssh host cmd` does.
    const command = ctx.rest.join(" ");
    if (!command.trim()) throw new Error("exec needs a command after --");
    await ctx.step(command.length > 60 ? `${command.slice(0, 57)}...` : command, async () => {
      if (ctx.dryRun) return { status: "skipped", note: "dry run: not run" };
      // One host: the bytes go straight through, so the output can be piped as from `ssh host cmd`.
      const raw = ctx.raw;
      const r = await ctx.exec(command, {
        sudo: opts.sudo, onStdout: raw && ((c) => raw.stdout(c)), onStderr: raw && ((c) => raw.stderr(c)),
      });
      if (!raw) {
        const out = [r.stdout.trimEnd(), r.stderr.trimEnd() && `stderr:\n${r.stderr.trimEnd()}`].filter(Boolean).join("\n");
        if (out) ctx.log(out);
      }
      ctx.emit({ exec: { code: r.code, signal: r.signal ?? null, ...(raw ? {} : { stdout: r.stdout, stderr: r.stderr }) } });
      if (r.code !== 0) return { status: "failed", note: `exit ${r.code ?? r.signal}` };
      return { status: "ok", note: "exit 0" };
    });
  },
  // As ssh: the command's own exit code, 255 when the host could not be reached.
  exitCode(recaps) {
    const [r] = recaps;
    if (!r || recaps.length > 1) return recaps.every((x) => x.outcome === "ok") ? 0 : 1;
    if (r.outcome === "unreachable") return 255;
    const code = (r.data.exec as { code?: number | null } | undefined)?.code;
    return typeof code === "number" ? code : r.outcome === "ok" ? 0 : 1;
  },
});

function oneLine(s: HostStatus): string {
  const gpu = s.gpus ? `${s.gpus.length} GPU` : "no GPU";
  const disk = s.disk ? `${s.disk.availableGB} GB free on ${s.disk.path}` : "disk ?";
  const n = s.docker.containers.length;
  return `${s.os}, load ${s.load?.[0] ?? "?"}, ${disk}, ${n} container${n === 1 ? "" : "s"}, ${gpu}`;
}

function fleetTable(recaps: HostRecap[]): string {
  const head = ["host", "os", "up", "load", "mem free", "disk free", "containers", "gpus"];
  const rows = recaps.map((r) => {
    const s = r.data.status as HostStatus | undefined;
    if (!s) return [r.host, r.outcome, "", "", "", "", "", ""];
    const secs = s.uptimeSeconds;
    const up = secs === null ? "?" : secs > 86400 ? `${Math.floor(secs / 86400)}d` : `${Math.floor(secs / 3600)}h`;
    const containers = s.docker.state === "ok"
      ? s.docker.containers.map((c) => `${c.name}:${c.state}`).join(" ") || "-"
      : `docker ${s.docker.state}`;
    const gpus = s.gpus ? s.gpus.map((g) => `${g.name} ${g.memoryUsedMB}/${g.memoryTotalMB}MB ${g.utilization}%`).join("; ") : "-";
    return [r.host, s.os, up, String(s.load?.[0] ?? "?"),
      s.memory ? `${(s.memory.availableMB / 1024).toFixed(1)}/${(s.memory.totalMB / 1024).toFixed(1)}G` : "?",
      s.disk ? `${s.disk.availableGB}/${s.disk.sizeGB}G ${s.disk.path}` : "?", containers, gpus];
  });
  return formatTable(head, rows);
}

export const ops = () => definePlugin({ name: "ops", description: "status and ad-hoc commands for the fleet", tasks: [status, exec] });

// The Docker engine on this machine. There is no systemd here (nor in CI), so
// when no engine answers we start dockerd ourselves and leave it running.
import { closeSync, openSync } from "node:fs";
import { spawn } from "node:child_process";
import { run, sleep } from "./util.ts";

export const dockerdLog = "/var/log/flow-lab-dockerd.log";

export async function engineAnswers(): Promise<boolean> {
  return (await run("docker", ["info", "--format", "{{.ServerVersion}}"], { allowFail: true, timeoutMs: 20_000 })).code === 0;
}

/** Make sure a Docker engine answers; start dockerd (as root) when none does. */
export async function ensureEngine(timeoutMs = 60_000): Promise<void> {
  if (await engineAnswers()) return;
  if (process.getuid?.() !== 0) throw new Error("no Docker engine answers and only root can start dockerd");
  const log = openSync(dockerdLog, "a");
  // detached + unref: the engine outlives this process, like a service would
  const child = spawn("dockerd", [], { detached: true, stdio: ["ignore", log, log] });
  child.on("error", () => {}); // reported below as a timeout with the log's path
  child.unref();
  closeSync(log);
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await engineAnswers()) return;
    if (child.exitCode !== null) break;
    await sleep(500);
  }
  throw new Error(`dockerd did not come up (exit ${child.exitCode ?? "-"}); see ${dockerdLog}`);
}

// Run the real `flow` binary as a user would, in a given folder.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

export const FLOW_BIN = fileURLToPath(new URL("../../bin/flow.mjs", import.meta.url));
export const REPO = fileURLToPath(new URL("../..", import.meta.url));

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function flow(
  args: string[],
  opts: { cwd?: string; env?: Record<string, string | undefined>; onStdout?: (s: string) => void; signal?: AbortSignal } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [FLOW_BIN, ...args], {
      cwd: opts.cwd ?? REPO,
      env: { ...process.env, CI: "true", ...opts.env },
      stdio: ["ignore", "pipe", "pipe"],
      signal: opts.signal,
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => {
      stdout += c.toString();
      opts.onStdout?.(c.toString());
    });
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    child.on("error", (e) => (e.name === "AbortError" ? resolve({ code: null, stdout, stderr }) : reject(e)));
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

/** A throwaway project folder with a flowfile whose imports point at this checkout. */
export function flowfileSource(body: string): string {
  return `import { defineFlow, defineTask, definePlugin, shQuote, TaskError } from ${JSON.stringify(REPO + "lib/index.ts")};
import { ops } from ${JSON.stringify(REPO + "plugins/index.ts")};
import { z } from "zod";
${body}`;
}

// Detached remote scripts as shell text: state, launch, follow, collect.
// A run lives in <remoteDir>/runs/<key>/: job.json (0600, read then deleted by the script),
// pid (of the sh wrapper), events.jsonl, result.json, log, exit, collected.
import { hostPath } from "./paths.ts";
import { shQuote } from "../quote.ts";

export function runDir(remoteDir: string, key: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(key))
    throw new Error(`remote script key ${JSON.stringify(key)}: use letters, digits, '.', '_' or '-'`);
  return hostPath(remoteDir, "runs", key);
}

/** Prints `running`, `finished <exit>` (not yet reported) or `none`. */
export function runState(remoteDir: string, key: string): string {
  const d = runDir(remoteDir, key);
  return [
    `d=${d}`,
    // after a reboot the pid may belong to another process: the boot id says whether it is ours
    `same_boot() { [ "$(cat "$d/boot" 2>/dev/null)" = "$(cat ${BOOT_ID} 2>/dev/null)" ]; }`,
    `if [ -f "$d/pid" ] && [ ! -f "$d/exit" ] && same_boot && kill -0 "$(cat "$d/pid")" 2>/dev/null; then echo running`,
    `elif [ -f "$d/exit" ] && [ ! -f "$d/collected" ]; then echo "finished $(cat "$d/exit")"`,
    `elif [ -f "$d/pid" ] && [ ! -f "$d/exit" ] && [ ! -f "$d/collected" ]; then echo "lost"`,
    `else echo none; fi`,
  ].join("\n");
}

/**
 * Reads the job from stdin into a 0600 file, then starts the script in its own session
 * (setsid + nohup), so a dropped SSH connection does not end it. The sh wrapper records
 * the exit status even when node is killed.
 */
export function launch(remoteDir: string, key: string, node: string, script: string): string {
  const d = runDir(remoteDir, key);
  const inner = `${node} ${script} "$0" </dev/null >>"$0/log" 2>&1; echo $? > "$0/exit.tmp"; mv "$0/exit.tmp" "$0/exit"`;
  return [
    "set -e",
    // the run's folder and all it holds (job, log, events, result) are the login user's alone
    "umask 077",
    `d=${d}`,
    `rm -rf "$d"`,
    `mkdir -p -- "$d"`,
    `cat > "$d/job.json"`,
    `d=$(cd "$d" && pwd)`,
    `setsid nohup sh -c ${shQuote(inner)} "$d" >/dev/null 2>&1 </dev/null &`,
    `echo $! > "$d/pid"`,
    `cat ${BOOT_ID} > "$d/boot" 2>/dev/null || true`,
  ].join("\n");
}

/**
 * Streams events.jsonl until the run's wrapper exits. What was written before we came is sent
 * without its progress lines but the latest (a re-attach shows where the run is, not its past).
 */
export function follow(remoteDir: string, key: string): string {
  const d = runDir(remoteDir, key);
  const past = `awk '/^[{]"t":[0-9]*,"type":"progress"/ { p = $0; next } { print } END { if (p != "") print p }'`;
  return [
    `d=${d}`,
    `touch "$d/events.jsonl"`,
    // whole lines only: one being written now is line n+1, which tail prints once complete
    `n=$(wc -l < "$d/events.jsonl")`,
    `head -n "$n" "$d/events.jsonl" | ${past}`,
    `if [ ! -f "$d/exit" ]; then tail -s 0.2 -n +$((n + 1)) -F --pid="$(cat "$d/pid")" "$d/events.jsonl" 2>/dev/null; ` +
      `else tail -n +$((n + 1)) "$d/events.jsonl"; fi`,
  ].join("\n");
}

/** Prints the exit status line, then result.json (or nothing), then the log's tail after a marker. */
export function collect(remoteDir: string, key: string): string {
  const d = runDir(remoteDir, key);
  return [
    `d=${d}`,
    `i=0; while [ ! -f "$d/exit" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done`,
    `cat "$d/exit" 2>/dev/null || echo unknown`,
    `cat "$d/result.json" 2>/dev/null; echo`,
    `echo ${shQuote(LOG_MARKER)}`,
    `tail -n 20 "$d/log" 2>/dev/null`,
    `(umask 077; touch "$d/collected")`,
  ].join("\n");
}

export const LOG_MARKER = "----flow-log----";
const BOOT_ID = "/proc/sys/kernel/random/boot_id";

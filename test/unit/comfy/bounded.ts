// Run a hostile-input scenario in a worker thread with a hard time and memory limit and a stack the
// size of the main thread's: a regression (endless expansion, stack overflow) then fails its test
// instead of hanging the runner or eating the machine's memory.
import { Worker } from "node:worker_threads";

export interface Outcome {
  /** time the scenario itself took, in the worker (module loading excluded) */
  ms?: number;
  value?: unknown;
  error?: { name: string; message: string };
  /** set when the worker was stopped: time limit, out of memory, crash */
  killed?: string;
}

const SCENARIOS = new URL("./hostile-scenarios.ts", import.meta.url).href;
const TSX = import.meta.resolve("tsx/esm/api");

const WORKER = `
import { parentPort, workerData } from "node:worker_threads";
const { register } = await import(workerData.tsx);
register();
const scenarios = await import(workerData.scenarios);
const t = performance.now();
try {
  const value = await scenarios[workerData.name](workerData.arg);
  parentPort.postMessage({ ms: performance.now() - t, value });
} catch (e) {
  const error = { name: e?.constructor?.name ?? typeof e, message: String(e?.message ?? e) };
  parentPort.postMessage({ ms: performance.now() - t, error });
}
`;

export async function bounded(name: string, arg?: unknown, limits: { seconds?: number; memMb?: number } = {}): Promise<Outcome> {
  const seconds = limits.seconds ?? 30;
  const w = new Worker(WORKER, {
    eval: true,
    workerData: { tsx: TSX, scenarios: SCENARIOS, name, arg },
    // V8's default stack on the main thread is ~1 MB; workers get 4 MB unless told.
    resourceLimits: { stackSizeMb: 1, maxOldGenerationSizeMb: limits.memMb ?? 1024 },
  });
  let timer: NodeJS.Timeout | undefined;
  try {
    return await new Promise<Outcome>((resolve) => {
      timer = setTimeout(() => resolve({ killed: `still running after ${seconds} s` }), seconds * 1000);
      w.on("message", (m: Outcome) => resolve(m));
      w.on("error", (e) => resolve({ killed: `worker died: ${(e as Error).message}` }));
      w.on("exit", (code) => resolve({ killed: `worker exited ${code} without an answer` }));
    });
  } finally {
    clearTimeout(timer);
    await w.terminate();
  }
}

/** A readable one-line account of an outcome, for assertion messages. */
export const describe = (o: Outcome) => JSON.stringify(o).slice(0, 600);

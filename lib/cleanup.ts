// Work to undo when flow is interrupted (Ctrl-C, SIGTERM): release host locks, close connections.
// On globalThis: a second copy of this module (a flowfile importing flow's sources) shares the jobs.
const state = ((globalThis as Record<symbol, unknown>)[Symbol.for("flow.cleanup")] ??= { jobs: new Set(), installed: false }) as {
  jobs: Set<() => Promise<unknown>>;
  installed: boolean;
};
const jobs = state.jobs;

export function onInterrupt(job: () => Promise<unknown>): () => void {
  install();
  jobs.add(job);
  return () => jobs.delete(job);
}

function install(): void {
  if (state.installed) return;
  state.installed = true;
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.once(sig, async () => {
      process.stderr.write(`\nflow: ${sig}, cleaning up (releasing host locks)\n`);
      const timeout = new Promise((r) => setTimeout(r, 3000));
      await Promise.race([Promise.allSettled([...jobs].map((j) => j())), timeout]);
      process.exit(sig === "SIGINT" ? 130 : 143);
    });
  }
}

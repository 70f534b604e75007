// Work to undo when flow is interrupted (Ctrl-C, SIGTERM): release host locks, close connections.
const jobs = new Set<() => Promise<unknown>>();
let installed = false;

export function onInterrupt(job: () => Promise<unknown>): () => void {
  install();
  jobs.add(job);
  return () => jobs.delete(job);
}

function install(): void {
  if (installed) return;
  installed = true;
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.once(sig, async () => {
      process.stderr.write(`\nflow: ${sig}, cleaning up (releasing host locks)\n`);
      const timeout = new Promise((r) => setTimeout(r, 3000));
      await Promise.race([Promise.allSettled([...jobs].map((j) => j())), timeout]);
      process.exit(sig === "SIGINT" ? 130 : 143);
    });
  }
}

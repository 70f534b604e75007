// How often provider:up asks the API and knocks on SSH while a box boots (FLOW_CLOUD_POLL_MS for tests).

export function pollMs(): number {
  const v = Number(process.env.FLOW_CLOUD_POLL_MS);
  return Number.isFinite(v) && v >= 10 ? v : 5000;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// The TypeScript compiler takes 0.3-0.5 s to load: loaded only when a source must really be read or
// checked, so a run that changes nothing (its checks cached) does not pay for it.
import { createRequire } from "node:module";
import type * as TS from "typescript";

let loaded: typeof TS | undefined;
const load = () => (loaded ??= createRequire(import.meta.url)("typescript") as typeof TS);

/** `typescript`, loaded at its first use. */
export const lazyTs = new Proxy({} as typeof TS, { get: (_t, key) => load()[key as keyof typeof TS] });

/** Its version, without loading it. */
export function typescriptVersion(): string {
  return (createRequire(import.meta.url)("typescript/package.json") as { version: string }).version;
}

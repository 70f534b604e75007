// Locate ../shared/data (relative to the repo root) for acceptance tests; absent -> tests skip.
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

export const SHARED = fileURLToPath(new URL("../../../../shared/data/", import.meta.url));
export const HAVE_SHARED = existsSync(SHARED);
export const SKIP_MSG = HAVE_SHARED ? false : `shared reference data not found at ${SHARED}`;
export const readShared = (rel: string): Buffer => readFileSync(SHARED + rel);
export const jsonShared = (rel: string): any => JSON.parse(readShared(rel).toString("utf8"));

// Reference data for the tests: the fixtures in test/fixtures/data (in every clone) first, then the
// larger corpora in ../shared/data (the 41 templates, the community workflows), which acceptance
// tests over those corpora need and skip without, saying so.
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

export const FIXTURES = fileURLToPath(new URL("../../fixtures/data/", import.meta.url));
// FLOW_TEST_SHARED_DATA=/nowhere shows what a plain clone runs
export const SHARED = process.env.FLOW_TEST_SHARED_DATA ?? fileURLToPath(new URL("../../../../shared/data/", import.meta.url));
export const HAVE_SHARED = existsSync(SHARED);
/** For tests over whole corpora that only ../shared/data holds. */
export const SKIP_MSG = HAVE_SHARED
  ? false
  : `the reference corpora (templates, community workflows) are not beside this clone at ${SHARED}`;

/** Where a data file is: the fixtures first, then the shared corpora; undefined when neither has it. */
export function dataPath(rel: string): string | undefined {
  return [FIXTURES + rel, SHARED + rel].find((p) => existsSync(p));
}

/** A test's skip reason when any of these files is missing (false when all are there). */
export function needs(...rels: string[]): false | string {
  const missing = rels.filter((r) => !dataPath(r));
  return missing.length ? `reference data missing: ${missing.join(", ")}` : false;
}

export const readShared = (rel: string): Buffer => {
  const p = dataPath(rel);
  if (!p) throw new Error(`reference data missing: ${rel} (neither in ${FIXTURES} nor in ${SHARED})`);
  return readFileSync(p);
};
export const jsonShared = (rel: string): any => JSON.parse(readShared(rel).toString("utf8"));

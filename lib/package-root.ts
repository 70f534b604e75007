// The folder flow is installed in (this checkout, or node_modules/flow), found from this module's
// own place so it holds whether the code runs from its sources or from the built dist/.
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

function find(): string {
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    const pkg = join(dir, "package.json");
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, "utf8")) as { name?: string }).name === "flow") return dir;
    if (dirname(dir) === dir) throw new Error("flow's package.json not found above " + fileURLToPath(import.meta.url));
  }
}

export const PACKAGE_ROOT = find();

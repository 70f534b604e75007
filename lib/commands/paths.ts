// Paths on a host, as shell words. A relative path is taken from the login user's home.
import { shQuote } from "../quote.ts";

/** `".flow"` -> `"$HOME"/.flow`; absolute paths are quoted as they are. */
export function hostPath(path: string, ...parts: string[]): string {
  const joined = [path.replace(/\/+$/, ""), ...parts].join("/");
  if (joined.startsWith("/")) return shQuote(joined);
  return `"$HOME"/${shQuote(joined)}`;
}

// The one quoting function for every value that reaches a POSIX shell.
// zx's $.quote targets bash ($'...'), which dash (`sh -c`) does not understand.

export class QuoteError extends Error {}

const SAFE = /^[A-Za-z0-9_\-.,:/@%+=]+$/;

/** Quote one word for POSIX sh. Single quotes protect everything but the single quote itself. */
export function shQuote(value: string | number): string {
  const s = String(value);
  if (s.includes("\0")) throw new QuoteError(`cannot pass a NUL byte to a shell: ${JSON.stringify(s.slice(0, 40))}`);
  if (s === "") return "''";
  if (SAFE.test(s)) return s;
  return "'" + s.replace(/'/g, `'\\''`) + "'";
}

/** argv -> one shell command line, every word quoted. */
export function shJoin(argv: readonly (string | number)[]): string {
  return argv.map(shQuote).join(" ");
}

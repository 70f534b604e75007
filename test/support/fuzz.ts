// Deterministic random strings that are hard to pass through a shell.
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const NASTY = [
  "'",
  '"',
  "\\",
  "$",
  "`",
  "$(",
  ")",
  "${",
  "}",
  "\n",
  "\r",
  "\t",
  " ",
  ";",
  "&",
  "|",
  "<",
  ">",
  "*",
  "?",
  "[",
  "]",
  "~",
  "#",
  "!",
  "%",
  "-",
  "--",
  "=",
  "é",
  "日本",
  "🙂",
  "\u200b",
  "\x1b[31m",
  "\x7f",
  "$(id)",
  "`id`",
  "'\\''",
  "\\'",
  "-n",
  "-e",
];

export function hostileStrings(count: number, seed = 1): string[] {
  const r = rng(seed);
  const out: string[] = ["", "'", "''", "\n", "-n", "-e", "$HOME", "a b"];
  while (out.length < count) {
    const parts: string[] = [];
    const n = 1 + Math.floor(r() * 8);
    for (let i = 0; i < n; i++) {
      const pick = r();
      if (pick < 0.6) parts.push(NASTY[Math.floor(r() * NASTY.length)]!);
      else if (pick < 0.8) parts.push(String.fromCharCode(1 + Math.floor(r() * 126)));
      else parts.push(String.fromCodePoint(0xa0 + Math.floor(r() * 0x2000)));
    }
    out.push(parts.join(""));
  }
  return out;
}

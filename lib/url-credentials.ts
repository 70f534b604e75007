// URLs may carry a credential (CivitAI's `?token=`, a signed CDN link, `user:pass@`). Such a URL
// is fine to fetch with, but must never be written down: not in the lock file, a state file, an
// error message or a log line. This module says which parts are credentials and removes them.

/** Query keys that carry a credential or a signature (compared lower-case). */
const SECRET_KEYS = new Set([
  "token",
  "access_token",
  "api_key",
  "apikey",
  "key",
  "auth",
  "authorization",
  "password",
  "passwd",
  "secret",
  "sig",
  "signature",
  "credential",
  "session",
  "sessionid",
  "jwt",
  "hf_token",
  "private_token",
]);
/** Prefixes of signed-link parameters (S3, GCS, CloudFront, Azure SAS). */
const SECRET_PREFIXES = ["x-amz-", "x-goog-", "x-ms-"];
const SECRET_EXACT = new Set(["policy", "key-pair-id", "se", "sp", "sv", "sr", "skoid", "sktid"]);

export function isSecretQueryKey(key: string): boolean {
  const k = key.toLowerCase();
  return (
    SECRET_KEYS.has(k) || SECRET_EXACT.has(k) || SECRET_PREFIXES.some((p) => k.startsWith(p)) || /(^|_)(token|secret|signature)$/.test(k)
  );
}

/** True when the URL holds a user:password or a credential query parameter. */
export function hasUrlCredentials(url: string): boolean {
  const u = tryParse(url);
  if (!u) return false;
  if (u.username || u.password) return true;
  for (const k of u.searchParams.keys()) if (isSecretQueryKey(k)) return true;
  return false;
}

/** The credential values a URL carries (password, credential parameters), to be redacted wherever they appear. */
export function urlCredentialValues(url: string): string[] {
  const u = tryParse(url);
  if (!u) return [];
  const out = [u.password && decodeURIComponentSafe(u.password)].filter((v): v is string => !!v);
  for (const [k, v] of u.searchParams) if (isSecretQueryKey(k) && v) out.push(v);
  return out;
}

/**
 * The URL without its credentials: userinfo dropped, credential parameters removed (`keep:
 * "mask"` writes `***` in their place instead, for messages where the reader should see one
 * was there). Text that is not a URL is returned as it is.
 */
export function stripUrlCredentials(url: string, keep: "drop" | "mask" = "drop"): string {
  const u = tryParse(url);
  if (!u) return url;
  let changed = false;
  if (u.username || u.password) {
    u.username = "";
    u.password = "";
    changed = true;
  }
  for (const k of [...new Set(u.searchParams.keys())]) {
    if (!isSecretQueryKey(k)) continue;
    changed = true;
    if (keep === "mask") u.searchParams.set(k, "***");
    else u.searchParams.delete(k);
  }
  if (!changed) return url;
  // URLSearchParams encodes `***` as `%2A%2A%2A`; show it plainly.
  return u.toString().replace(/%2A%2A%2A/g, "***");
}

/** Every http(s) URL inside free text, with its credentials masked. */
export function maskUrlsInText(text: string): string {
  return text.replace(/\bhttps?:\/\/[^\s"'<>]+/g, (m) => stripUrlCredentials(m, "mask"));
}

function tryParse(url: string): URL | undefined {
  try {
    return new URL(url);
  } catch {
    return undefined;
  }
}

function decodeURIComponentSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

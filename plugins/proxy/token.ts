// A box's API token: made here, kept here (.env), and only its hash goes to the box.
//
// The token is base64("flow:<secret>") so that Caddy's basic_auth can check it (see caddyfile.ts).
// Its hash is bcrypt with a salt derived from the token: the same token always gives the same
// Caddyfile, so a second run changes nothing. The secret is 256 random bits, which no guessing
// reaches whatever the cost factor; bcrypt's minimum cost keeps each uncached check (a wrong
// token, say) cheap for the box instead of an easy way to load its CPU.
import { createHash, createHmac, randomBytes } from "node:crypto";
import bcrypt from "bcryptjs";
import { TOKEN_USER } from "./caddyfile.ts";

const COST = 4;

export function newToken(): string {
  return Buffer.from(`${TOKEN_USER}:${randomBytes(32).toString("base64url")}`).toString("base64");
}

/** The secret inside a token, or null when the text is not one of ours (a hand-edited .env, say). */
export function tokenSecret(token: string): string | null {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(token)) return null;
  const text = Buffer.from(token, "base64").toString("utf8");
  const prefix = `${TOKEN_USER}:`;
  if (!text.startsWith(prefix) || Buffer.from(text).toString("base64") !== token) return null;
  const secret = text.slice(prefix.length);
  return /^[A-Za-z0-9_-]{20,}$/.test(secret) ? secret : null;
}

/** The bcrypt hash Caddy keeps; deterministic for one token. */
export function tokenHash(token: string): string {
  const secret = tokenSecret(token);
  if (secret === null) throw new Error("not a flow API token (expected base64 of flow:<secret>; api:token --rotate makes a new one)");
  const saltBytes = createHmac("sha256", "flow api token salt").update(secret).digest().subarray(0, 16);
  return bcrypt.hashSync(secret, `$2a$${String(COST).padStart(2, "0")}$${bcrypt.encodeBase64(saltBytes, 16)}`);
}

/** Whether a hash (as found in a Caddyfile) is this token's. */
export function hashMatches(token: string, hash: string): boolean {
  const secret = tokenSecret(token);
  return secret !== null && bcrypt.compareSync(secret, hash);
}

/** A short public name for a token (shown instead of it): sha256 prefix. */
export function tokenFingerprint(token: string): string {
  return `sha256:${createHash("sha256").update(token).digest("hex").slice(0, 12)}`;
}

/** The .env key that holds a host's token: FLOW_API_TOKEN_<HOST> (upper case, other characters as _). */
export function tokenKey(hostName: string): string {
  return `FLOW_API_TOKEN_${hostName.toUpperCase().replace(/[^A-Z0-9]/g, "_")}`;
}

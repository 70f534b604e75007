// Which keys to log in with: the identity files a host names, or else the agent and the default keys.
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import ssh2 from "ssh2";

export type AuthMethod = { type: "publickey"; username: string; key: Buffer } | { type: "agent"; username: string; agent: string };

/**
 * Keys to offer: explicit identity files only; otherwise the agent, then the default key files.
 * `notes` say why a key was left out (missing, passphrase-protected), for the error if none works.
 */
export function authMethods(hop: { user: string; identityFiles: string[] }): { methods: AuthMethod[]; notes: string[] } {
  const methods: AuthMethod[] = [];
  const notes: string[] = [];
  const addKey = (file: string, explicit: boolean) => {
    if (!existsSync(file)) {
      if (explicit) notes.push(`identity file ${file} not found`);
      return;
    }
    const key = readFileSync(file);
    const parsed = ssh2.utils.parseKey(key);
    if (parsed instanceof Error) {
      const why = /encrypt|passphrase/i.test(parsed.message) ? "passphrase-protected; load it into ssh-agent" : parsed.message;
      notes.push(`${file} unusable (${why})`);
      return;
    }
    methods.push({ type: "publickey", username: hop.user, key });
  };
  if (hop.identityFiles.length) {
    for (const f of hop.identityFiles) addKey(f, true);
  } else {
    if (process.env.SSH_AUTH_SOCK) methods.push({ type: "agent", username: hop.user, agent: process.env.SSH_AUTH_SOCK });
    for (const n of ["id_ed25519", "id_ecdsa", "id_rsa"]) addKey(join(homedir(), ".ssh", n), false);
  }
  return { methods, notes };
}

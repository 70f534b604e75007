// Where a box's token lives on this machine: the project's .env (0600), beside the other secrets,
// under FLOW_API_TOKEN_<HOST>. The environment wins over the file, as for every secret.
import { loadEnv, redactor, writeDotEnvValue } from "../../lib/secrets.ts";
import { TaskError } from "../../lib/index.ts";
import { tokenKey, tokenSecret } from "./token.ts";

export interface StoredToken {
  token: string;
  key: string;
  /** "environment" when the variable is set in the environment, else ".env" */
  from: "environment" | ".env";
}

export function readToken(projectDir: string, hostName: string): StoredToken | null {
  const key = tokenKey(hostName);
  const fromEnv = process.env[key];
  const token = fromEnv ?? loadEnv(projectDir, {})[key];
  if (!token) return null;
  if (tokenSecret(token) === null)
    throw new TaskError(`${key} is not a flow API token (a hand-edited value?): remove it, or make a new one with api:token --rotate`);
  // a token is a secret from the moment it is known: nothing this process prints may carry it
  redactor.add(token);
  return { token, key, from: fromEnv ? "environment" : ".env" };
}

export function saveToken(projectDir: string, hostName: string, token: string): string {
  const key = tokenKey(hostName);
  if (process.env[key])
    throw new TaskError(`${key} is set in the environment, which wins over .env: change it there, or unset it and run again`);
  redactor.add(token);
  return writeDotEnvValue(projectDir, key, token);
}

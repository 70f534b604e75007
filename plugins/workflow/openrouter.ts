// workflow:generate --llm: one chat completion from OpenRouter (OpenAI-compatible API), and the
// TypeScript taken out of its reply. The caller proves whatever comes back; nothing here trusts it.
// Requests go through guardedFetch (the net policy, settings.allowHosts; 429 and 5xx retried with
// lib/retry.ts's back-off, the server's Retry-After first). The key travels only in the header.
import { z } from "zod";
import { TaskError } from "../../lib/task.ts";
import type { RetryPolicy } from "../../lib/retry.ts";
import { guardedFetch, HttpError } from "../shared/http.ts";
import { OPENROUTER_KEY } from "./index.ts";

export const OPENROUTER_URL = "https://openrouter.ai/api/v1";
export const DEFAULT_LLM_MODEL = "anthropic/claude-sonnet-4";

/** A rate-limited account gets a few patient tries; a generation itself may take minutes. */
const LLM_RETRY: RetryPolicy = { tries: 4, baseMs: 2_000, maxMs: 30_000 };
const LLM_TIMEOUT_MS = 300_000;

/** The key was refused: every later request would be too, so the run stops at the first. */
export class KeyRefusedError extends TaskError {}

/** The base URL: env FLOW_OPENROUTER_URL (a mirror, a test server), else OpenRouter's; no trailing "/". */
export const openRouterUrl = (env: NodeJS.ProcessEnv = process.env) => (env.FLOW_OPENROUTER_URL || OPENROUTER_URL).replace(/\/+$/, "");

const replySchema = z.object({
  choices: z.array(z.object({ message: z.object({ content: z.string().nullable().optional() }) })).optional(),
  error: z.object({ message: z.string().optional(), code: z.union([z.number(), z.string()]).optional() }).optional(),
});

export interface ChatRequest {
  baseUrl: string;
  key: string;
  model: string;
  /** comfyui-api's prompt */
  system: string;
  /** the API-format workflow */
  user: string;
  allowHosts: readonly string[];
  retry?: RetryPolicy;
}

/** The model's answer text. A refused key, exhausted rate limit or an error answer throws a TaskError saying which. */
export async function chatCompletion(r: ChatRequest): Promise<string> {
  const url = `${r.baseUrl}/chat/completions`;
  let res;
  try {
    res = await guardedFetch(
      url,
      {
        method: "POST",
        headers: { authorization: `Bearer ${r.key}`, "content-type": "application/json", "x-title": "flow workflow:generate" },
        body: JSON.stringify({
          model: r.model,
          messages: [
            { role: "system", content: r.system },
            { role: "user", content: r.user },
          ],
          // as near to repeatable as the API allows
          temperature: 0,
        }),
      },
      { allowHosts: r.allowHosts, retry: r.retry ?? LLM_RETRY, timeoutMs: LLM_TIMEOUT_MS },
    );
  } catch (e) {
    if (e instanceof HttpError && e.status === 429)
      throw new TaskError(`OpenRouter kept answering 429 (rate limited): ${e.message}; try again later, or another --model`);
    if (e instanceof HttpError) throw new TaskError(`OpenRouter: ${e.message}`);
    throw e;
  }
  const text = await res.text();
  let body: z.infer<typeof replySchema> | undefined;
  try {
    const parsed = replySchema.safeParse(JSON.parse(text));
    if (parsed.success) body = parsed.data;
  } catch {
    body = undefined;
  }
  const said = body?.error?.message ? `: ${body.error.message}` : "";
  if (res.status === 401 || res.status === 403)
    throw new KeyRefusedError(
      `${OPENROUTER_KEY} was refused by ${r.baseUrl} (HTTP ${res.status}${said}); check the key in the environment or .env`,
    );
  if (res.status === 402) throw new TaskError(`OpenRouter: the account has no credit left (HTTP 402${said})`);
  if (!res.ok) throw new TaskError(`OpenRouter answered HTTP ${res.status} for model ${r.model}${said || `: ${text.slice(0, 200)}`}`);
  if (!body) throw new TaskError(`OpenRouter's answer is not a chat completion (${text.slice(0, 120)})`);
  if (body.error) throw new TaskError(`OpenRouter: model ${r.model} failed${said}`);
  const content = body.choices?.[0]?.message.content;
  if (!content) throw new TaskError(`OpenRouter: model ${r.model} gave an empty answer`);
  return content;
}

/**
 * The TypeScript in a reply: the longest fenced block marked ts / typescript (or unmarked); else the
 * whole reply when it reads as a module (comfyui-api's prompt asks for bare TypeScript). undefined
 * when there is none: prose, or a block in another language.
 */
export function extractTypeScript(reply: string): string | undefined {
  const blocks = [...reply.matchAll(/^[ \t]*(`{3,}|~{3,})[ \t]*([\w+-]*)[^\n]*\n([\s\S]*?)^[ \t]*\1[ \t]*$/gm)]
    .filter((m) => /^(ts|typescript|tsx|)$/i.test(m[2]!))
    .map((m) => m[3]!);
  const best = blocks.sort((a, b) => b.length - a.length)[0];
  if (best?.trim()) return best.endsWith("\n") ? best : `${best}\n`;
  const bare = reply.trim();
  if (/^(import|export|const|let|type|interface)\b/.test(bare) && /\bexport\s+default\b/.test(bare)) return `${bare}\n`;
  return undefined;
}

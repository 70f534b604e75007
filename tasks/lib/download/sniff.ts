// What the first bytes of a downloaded file say it is. A login wall, a proxy's error or S3's
// <Error> can come back with status 200, no Content-Type, and neither size nor sha256 to catch
// them: saved under a model's name, ComfyUI then fails on it much later. Model weights never begin
// with markup or JSON text, so for their extensions those first bytes decide; other files (a
// .json or .yaml config a workflow needs) may well be text and are never judged.

/** Extensions of weight files: binary formats that never start as HTML, JSON or XML text. */
const WEIGHT_EXTENSIONS = [".safetensors", ".sft", ".ckpt", ".pt", ".pt2", ".pth", ".bin", ".gguf", ".onnx", ".pkl"];

// on the lower-cased text after a BOM and white space
const HTML = /^<(!doctype\s+html|!--|(html|head|body|title|meta|script|div|p|h1|center)[\s>/])/;
const XML = /^<(\?xml|!doctype|[a-z][\w:.-]*[\s>/])/; // S3's <Error>, any other element
const JSON_TEXT = /^(\{\s*("|\})|\[\s*([{["\]\d-]|true|false|null))/;

/** Bytes of the file's start that sniff() needs. */
export const SNIFF_BYTES = 512;

/**
 * Why the file starting with `head` must not be placed at `target`, or undefined. `size`, when known,
 * lets a safetensors header (8-byte little-endian length, then `{"`) be told from a JSON body.
 */
export function sniff(head: Buffer, target: string, size?: number): string | undefined {
  const lower = target.toLowerCase();
  if (!WEIGHT_EXTENSIONS.some((e) => lower.endsWith(e))) return undefined;
  if (isSafetensorsHeader(head, size)) return undefined;
  let i = head[0] === 0xef && head[1] === 0xbb && head[2] === 0xbf ? 3 : 0; // UTF-8 BOM
  while (i < head.length && (head[i] === 0x20 || (head[i]! >= 0x09 && head[i]! <= 0x0d))) i++;
  const text = head
    .subarray(i, i + 64)
    .toString("latin1")
    .toLowerCase();
  const what = HTML.test(text) ? "an HTML page" : XML.test(text) ? "an XML document" : JSON_TEXT.test(text) ? "a JSON document" : undefined;
  if (!what) return undefined;
  const excerpt = JSON.stringify(
    head
      .subarray(i, i + 60)
      .toString("latin1")
      .replace(/[^\x20-\x7e]+/g, " "),
  );
  return `server sent ${what}, not a model (it begins ${excerpt})`;
}

/** A safetensors header: its length fits the file (and the format's 100 MB cap), and JSON follows it. */
function isSafetensorsHeader(head: Buffer, size?: number): boolean {
  if (head.length < 10) return false;
  const n = head.readBigUInt64LE(0);
  if (n < 2n || n > 100_000_000n || (size !== undefined && n + 8n > BigInt(size))) return false;
  return head[8] === 0x7b && (head[9] === 0x22 || head[9] === 0x7d || head[9] === 0x20);
}

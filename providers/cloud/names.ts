// Names of launched boxes: what --name accepts, and the one provider:up picks without it.

/** letters, digits, '.', '_' or '-', not first */
export const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/**
 * The name provider:up gives a box without --name: the same for the same provider, type and region,
 * so a re-run (say, after an SSH-wait timeout) finds the box it launched instead of renting another.
 * Hostname rules (RFC 1123 label, which DataCrunch's hostname and Lambda's name both accept):
 * lower-case letters, digits and '-', no leading or trailing '-', at most 63 characters.
 */
export function defaultName(provider: string, type: string, region: string): string {
  const label = `flow-${provider}-${type}-${region}`
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, "-")
    .replace(/-{2,}/g, "-");
  return label.slice(0, 63).replace(/-+$/, "");
}

// Lookups and writes keyed by workflow data (node ids, class names, input names). A plain object
// answers "constructor" or "toString" from Object.prototype, and `o["__proto__"] = v` replaces the
// prototype instead of adding a key: names from a file are data, so only own properties count.

/** The own property `key` of `o`, never an inherited one. */
export function getOwn<V>(o: Readonly<Record<string, V>> | undefined, key: string): V | undefined {
  return o !== undefined && Object.hasOwn(o, key) ? o[key] : undefined;
}

/** Add or replace the own property `key`: "__proto__" included, which JSON.stringify then writes like any key. */
export function setOwn<V>(o: Record<string, V>, key: string, value: V): void {
  Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true });
}

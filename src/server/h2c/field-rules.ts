// Which header fields a request may carry (RFC 9113 §8.2): lowercase names without controls or
// separators, values without NUL/CR/LF or surrounding whitespace, no connection-specific fields,
// `te` only as "trailers". The HPACK decoder classifies each field once, when it is first decoded,
// and keeps the answer in its dynamic table: indexed fields cost nothing to check again.

export const FieldKind = { REGULAR: 0, PSEUDO: 1, MALFORMED: 2 } as const;

const CONNECTION_SPECIFIC = new Set([
  'connection',
  'proxy-connection',
  'keep-alive',
  'transfer-encoding',
  'upgrade',
]);

/** Name characters HTTP/2 forbids: controls and space, uppercase, DEL and above. */
export function nameIsValid(name: string): boolean {
  if (name.length === 0) return false;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c <= 0x20 || (c >= 0x41 && c <= 0x5a) || c >= 0x7f) return false;
    if (c === 0x3a && i > 0) return false; // a colon only opens a pseudo-header's name
  }
  return true;
}

const FORBIDDEN_IN_VALUE = /[\0\n\r]/;

function valueIsValid(value: string): boolean {
  const n = value.length;
  if (n === 0) return true;
  const first = value.charCodeAt(0);
  const last = value.charCodeAt(n - 1);
  if (first === 0x20 || first === 0x09 || last === 0x20 || last === 0x09) return false;
  return !FORBIDDEN_IN_VALUE.test(value);
}

/** The kind of a decoded field, given whether its name is valid (nameIsValid, or a table's). */
export function fieldKind(name: string, value: string, nameValid: boolean): number {
  if (!nameValid) return FieldKind.MALFORMED;
  if (!valueIsValid(value)) return FieldKind.MALFORMED;
  if (name.charCodeAt(0) === 0x3a) return name.length > 1 ? FieldKind.PSEUDO : FieldKind.MALFORMED;
  if (CONNECTION_SPECIFIC.has(name)) return FieldKind.MALFORMED;
  if (name === 'te' && value !== 'trailers') return FieldKind.MALFORMED;
  return FieldKind.REGULAR;
}

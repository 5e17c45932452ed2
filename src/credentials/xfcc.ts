// x-forwarded-client-cert parsing. Only the RIGHT-MOST element is ever used: under APPEND_FORWARD
// the elements to its left were supplied by earlier hops (or by the client itself).

export type XfccElement = ReadonlyMap<string, readonly string[]>;

/** Splits an XFCC value into elements of key → values (keys lower-cased; quoted values unescaped). */
export function parseXfcc(value: string): XfccElement[] | undefined {
  const elements: XfccElement[] = [];
  let el = new Map<string, string[]>();
  let i = 0;
  const n = value.length;
  while (i < n) {
    const eq = value.indexOf('=', i);
    if (eq === -1) return undefined;
    const key = value.slice(i, eq).trim().toLowerCase();
    if (key === '' || /[,;"]/.test(key)) return undefined;
    i = eq + 1;
    let v = '';
    if (value[i] === '"') {
      i++;
      let closed = false;
      while (i < n) {
        const c = value[i]!;
        if (c === '\\' && i + 1 < n) {
          v += value[i + 1];
          i += 2;
          continue;
        }
        if (c === '"') {
          closed = true;
          i++;
          break;
        }
        v += c;
        i++;
      }
      if (!closed) return undefined;
    } else {
      while (i < n && value[i] !== ';' && value[i] !== ',') v += value[i++];
    }
    const list = el.get(key) ?? [];
    list.push(v);
    el.set(key, list);
    if (i >= n) break;
    if (value[i] === ';') i++;
    else if (value[i] === ',') {
      elements.push(el);
      el = new Map();
      i++;
    } else return undefined;
  }
  if (el.size > 0) elements.push(el);
  return elements;
}

export function rightmostElement(value: string): XfccElement | undefined {
  const all = parseXfcc(value);
  return all === undefined || all.length === 0 ? undefined : all[all.length - 1];
}

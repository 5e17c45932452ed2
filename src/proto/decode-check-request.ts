// Decodes only the CheckRequest fields a decision needs, straight from the wire, into RequestFacts.
// Never throws: a malformed message becomes a DecodeFailure so the handler can answer with a deny
// instead of a gRPC error (which Envoy would hand to failure_mode_allow).
import protobuf from 'protobufjs';
import { EMPTY_MAP, type RequestFacts } from '../check/facts.js';
import { keepsHeader } from '../check/header-rules.js';

export interface DecodeFailure {
  readonly malformed: true;
  readonly detail: string;
}

interface MutableFacts {
  sourcePrincipal: string;
  sourceCertificate: string;
  sourceAddress: string;
  destinationPrincipal: string;
  headers: Map<string, string>;
  controlCharInHeader: boolean;
  method: string;
  path: string;
  host: string;
  requestId: string;
  contextExtensions: ReadonlyMap<string, string>;
}

const LEN = 2;
const certificateCache = new Map<string, string>();
const CERT_CACHE_MAX = 1024;
export const MAX_CERT_CHARS = 32 * 1024;

export function decodeCheckRequest(bytes: Uint8Array): RequestFacts | DecodeFailure {
  // A Buffer view (no copy): values are sliced out of it by position.
  const buf = Buffer.isBuffer(bytes)
    ? bytes
    : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const facts: MutableFacts = {
    sourcePrincipal: '',
    sourceCertificate: '',
    sourceAddress: '',
    destinationPrincipal: '',
    headers: new Map(),
    controlCharInHeader: false,
    method: '',
    path: '',
    host: '',
    requestId: '',
    contextExtensions: EMPTY_MAP,
  };
  try {
    const r = protobuf.Reader.create(buf);
    while (r.pos < r.len) {
      const tag = r.uint32();
      if (tag >>> 3 === 1 && (tag & 7) === LEN) readAttributes(r, buf, r.uint32() + r.pos, facts);
      else r.skipType(tag & 7);
    }
    return facts;
  } catch (err) {
    return { malformed: true, detail: err instanceof Error ? err.message : 'undecodable' };
  }
}

export function isDecodeFailure(x: RequestFacts | DecodeFailure): x is DecodeFailure {
  return (x as DecodeFailure).malformed === true;
}

function readAttributes(r: protobuf.Reader, buf: Buffer, end: number, f: MutableFacts): void {
  while (r.pos < end) {
    const tag = r.uint32();
    const field = tag >>> 3;
    if ((tag & 7) !== LEN) {
      r.skipType(tag & 7);
      continue;
    }
    if (field === 1) readPeer(r, r.uint32() + r.pos, f, true);
    else if (field === 2) readPeer(r, r.uint32() + r.pos, f, false);
    else if (field === 4) readRequest(r, buf, r.uint32() + r.pos, f);
    else if (field === 10) {
      if (f.contextExtensions === EMPTY_MAP) f.contextExtensions = new Map();
      readMapEntry(r, r.uint32() + r.pos, f.contextExtensions as Map<string, string>);
    } else r.skipType(LEN);
  }
}

function readPeer(r: protobuf.Reader, end: number, f: MutableFacts, source: boolean): void {
  while (r.pos < end) {
    const tag = r.uint32();
    const field = tag >>> 3;
    if ((tag & 7) !== LEN) r.skipType(tag & 7);
    else if (field === 4) {
      const principal = r.string();
      if (source) f.sourcePrincipal = principal;
      else f.destinationPrincipal = principal;
    } else if (field === 5 && source) f.sourceCertificate = urlDecodeCertificate(r.string());
    else if (field === 1 && source) f.sourceAddress = readAddress(r, r.uint32() + r.pos);
    else r.skipType(LEN);
  }
}

function readAddress(r: protobuf.Reader, end: number): string {
  let out = '';
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag >>> 3 === 1 && (tag & 7) === LEN) {
      const sockEnd = r.uint32() + r.pos;
      while (r.pos < sockEnd) {
        const t = r.uint32();
        if (t >>> 3 === 2 && (t & 7) === LEN) out = r.string();
        else r.skipType(t & 7);
      }
    } else r.skipType(tag & 7);
  }
  return out;
}

function readRequest(r: protobuf.Reader, buf: Buffer, end: number, f: MutableFacts): void {
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag >>> 3 === 2 && (tag & 7) === LEN) readHttp(r, buf, r.uint32() + r.pos, f);
    else r.skipType(tag & 7);
  }
}

function readHttp(r: protobuf.Reader, buf: Buffer, end: number, f: MutableFacts): void {
  while (r.pos < end) {
    const tag = r.uint32();
    const field = tag >>> 3;
    if ((tag & 7) !== LEN) {
      r.skipType(tag & 7);
      continue;
    }
    switch (field) {
      case 1:
        f.requestId = r.string();
        break;
      case 2:
        f.method = r.string();
        break;
      case 3:
        readHeader(r, buf, r.uint32() + r.pos, f, false);
        break;
      case 4:
        f.path = r.string();
        break;
      case 5:
        f.host = r.string();
        break;
      case 13:
        readHeaderMap(r, buf, r.uint32() + r.pos, f);
        break;
      default:
        r.skipType(LEN);
    }
  }
}

function readMapEntry(r: protobuf.Reader, end: number, into: Map<string, string>): void {
  let key = '';
  let value = '';
  while (r.pos < end) {
    const tag = r.uint32();
    const field = tag >>> 3;
    if (field === 1 && (tag & 7) === LEN) key = r.string();
    else if (field === 2 && (tag & 7) === LEN) value = r.string();
    else r.skipType(tag & 7);
  }
  into.set(key, value);
}

// encode_raw_headers=true: one HeaderValue per header line, not merged; merge them the way the
// headers map would be, so repeated identity headers are still caught as comma-joined values.
function readHeaderMap(r: protobuf.Reader, buf: Buffer, end: number, f: MutableFacts): void {
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag >>> 3 !== 1 || (tag & 7) !== LEN) {
      r.skipType(tag & 7);
      continue;
    }
    readHeader(r, buf, r.uint32() + r.pos, f, true);
  }
}

/**
 * One header: a `headers` map entry (key 1, value 2) or a HeaderValue (key 1, value 2,
 * raw_value 3).
 * The value is located, scanned for control characters, and made a string only if the header is
 * kept (keepsHeader). Both value forms are read as UTF-8, as Envoy's own decoding would.
 */
function readHeader(
  r: protobuf.Reader,
  buf: Buffer,
  end: number,
  f: MutableFacts,
  rawValue: boolean,
): void {
  let key = '';
  let from = 0;
  let to = 0;
  while (r.pos < end) {
    const tag = r.uint32();
    const field = tag >>> 3;
    if ((tag & 7) !== LEN) r.skipType(tag & 7);
    else if (field === 1) key = r.string();
    else if (field === 2 || (field === 3 && rawValue)) {
      const len = r.uint32();
      from = r.pos;
      r.skip(len);
      to = r.pos;
    } else r.skipType(LEN);
  }
  if (hasControlChar(buf, from, to)) f.controlCharInHeader = true;
  const name = key.toLowerCase();
  if (!keepsHeader(name)) return;
  const value = buf.toString('utf8', from, to);
  const existing = f.headers.get(name);
  f.headers.set(name, existing === undefined ? value : `${existing},${value}`);
}

/** C0 controls other than HTAB, and DEL (header-rules.ts); UTF-8 never encodes them otherwise. */
function hasControlChar(buf: Buffer, from: number, to: number): boolean {
  for (let i = from; i < to; i++) {
    const b = buf[i]!;
    if (b < 0x20 ? b !== 0x09 : b === 0x7f) return true;
  }
  return false;
}

// Envoy URL-encodes the PEM (newline, space, '+', '/', '='); standard percent-decoding reverses it.
// A certificate that does not decode is passed on as-is and fails PEM parsing later (a deny).
function urlDecodeCertificate(raw: string): string {
  if (raw === '') return '';
  // A leaf certificate is a few KiB; anything far larger is refused later (certificate_invalid)
  // and must never be kept in a cache an attacker could fill with megabyte entries.
  if (raw.length > MAX_CERT_CHARS) return raw;
  const hit = certificateCache.get(raw);
  if (hit !== undefined) return hit;
  let decoded: string;
  try {
    decoded = decodeURIComponent(raw);
  } catch {
    decoded = raw;
  }
  if (certificateCache.size >= CERT_CACHE_MAX) certificateCache.clear();
  certificateCache.set(raw, decoded);
  return decoded;
}

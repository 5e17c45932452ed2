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

/** RequestFacts while the decoder fills them in. */
type MutableFacts = { -readonly [K in keyof RequestFacts]-?: RequestFacts[K] } & {
  headers: Map<string, string>;
};

// Field numbers as Envoy's protos name them (envoy/service/auth/v3/external_auth.proto and
// attribute_context.proto, envoy/config/core/v3/address.proto and base.proto); an entry of a
// map<string, string> is a message of its own with key 1 and value 2.
const CheckRequest = { attributes: 1 } as const;
const AttributeContext = { source: 1, destination: 2, request: 4, context_extensions: 10 } as const;
const Peer = { address: 1, principal: 4, certificate: 5 } as const;
const Address = { socket_address: 1 } as const;
const SocketAddress = { address: 2 } as const;
const Request = { http: 2 } as const;
const HttpRequest = { id: 1, method: 2, headers: 3, path: 4, host: 5, header_map: 13 } as const;
const HeaderMap = { headers: 1 } as const;
const HeaderValue = { key: 1, value: 2, raw_value: 3 } as const;
const MapEntry = { key: 1, value: 2 } as const;

// A tag is (field number << 3) | wire type; every field read here is length-delimited, so each is
// matched by its whole tag and anything else (another field, another wire type) is skipped.
const LEN = 2;
const WIRE_TYPE_MASK = 7;
const lenTag = (field: number): number => (field << 3) | LEN;
const CHECK_REQUEST_ATTRIBUTES = lenTag(CheckRequest.attributes);
const ATTRIBUTES_SOURCE = lenTag(AttributeContext.source);
const ATTRIBUTES_DESTINATION = lenTag(AttributeContext.destination);
const ATTRIBUTES_REQUEST = lenTag(AttributeContext.request);
const ATTRIBUTES_CONTEXT_EXTENSIONS = lenTag(AttributeContext.context_extensions);
const PEER_ADDRESS = lenTag(Peer.address);
const PEER_PRINCIPAL = lenTag(Peer.principal);
const PEER_CERTIFICATE = lenTag(Peer.certificate);
const ADDRESS_SOCKET_ADDRESS = lenTag(Address.socket_address);
const SOCKET_ADDRESS_ADDRESS = lenTag(SocketAddress.address);
const REQUEST_HTTP = lenTag(Request.http);
const HTTP_ID = lenTag(HttpRequest.id);
const HTTP_METHOD = lenTag(HttpRequest.method);
const HTTP_HEADERS = lenTag(HttpRequest.headers);
const HTTP_PATH = lenTag(HttpRequest.path);
const HTTP_HOST = lenTag(HttpRequest.host);
const HTTP_HEADER_MAP = lenTag(HttpRequest.header_map);
const HEADER_MAP_HEADERS = lenTag(HeaderMap.headers);
const HEADER_KEY = lenTag(HeaderValue.key);
const HEADER_VALUE = lenTag(HeaderValue.value);
const HEADER_RAW_VALUE = lenTag(HeaderValue.raw_value);
const MAP_KEY = lenTag(MapEntry.key);
const MAP_VALUE = lenTag(MapEntry.value);

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
      if (tag === CHECK_REQUEST_ATTRIBUTES) readAttributes(r, buf, r.uint32() + r.pos, facts);
      else r.skipType(tag & WIRE_TYPE_MASK);
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
    if (tag === ATTRIBUTES_SOURCE) readPeer(r, r.uint32() + r.pos, f, true);
    else if (tag === ATTRIBUTES_DESTINATION) readPeer(r, r.uint32() + r.pos, f, false);
    else if (tag === ATTRIBUTES_REQUEST) readRequest(r, buf, r.uint32() + r.pos, f);
    else if (tag === ATTRIBUTES_CONTEXT_EXTENSIONS) {
      if (f.contextExtensions === EMPTY_MAP) f.contextExtensions = new Map();
      readMapEntry(r, r.uint32() + r.pos, f.contextExtensions as Map<string, string>);
    } else r.skipType(tag & WIRE_TYPE_MASK);
  }
}

function readPeer(r: protobuf.Reader, end: number, f: MutableFacts, source: boolean): void {
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag === PEER_PRINCIPAL) {
      const principal = r.string();
      if (source) f.sourcePrincipal = principal;
      else f.destinationPrincipal = principal;
    } else if (tag === PEER_CERTIFICATE && source)
      f.sourceCertificate = urlDecodeCertificate(r.string());
    else if (tag === PEER_ADDRESS && source) f.sourceAddress = readAddress(r, r.uint32() + r.pos);
    else r.skipType(tag & WIRE_TYPE_MASK);
  }
}

function readAddress(r: protobuf.Reader, end: number): string {
  let out = '';
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag === ADDRESS_SOCKET_ADDRESS) {
      const sockEnd = r.uint32() + r.pos;
      while (r.pos < sockEnd) {
        const t = r.uint32();
        if (t === SOCKET_ADDRESS_ADDRESS) out = r.string();
        else r.skipType(t & WIRE_TYPE_MASK);
      }
    } else r.skipType(tag & WIRE_TYPE_MASK);
  }
  return out;
}

function readRequest(r: protobuf.Reader, buf: Buffer, end: number, f: MutableFacts): void {
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag === REQUEST_HTTP) readHttp(r, buf, r.uint32() + r.pos, f);
    else r.skipType(tag & WIRE_TYPE_MASK);
  }
}

function readHttp(r: protobuf.Reader, buf: Buffer, end: number, f: MutableFacts): void {
  while (r.pos < end) {
    const tag = r.uint32();
    // Headers first: every header of the request is one more occurrence of one of those fields.
    if (tag === HTTP_HEADERS) readHeader(r, buf, r.uint32() + r.pos, f, false);
    else if (tag === HTTP_HEADER_MAP) readHeaderMap(r, buf, r.uint32() + r.pos, f);
    else if (tag === HTTP_ID) f.requestId = r.string();
    else if (tag === HTTP_METHOD) f.method = r.string();
    else if (tag === HTTP_PATH) f.path = r.string();
    else if (tag === HTTP_HOST) f.host = r.string();
    else r.skipType(tag & WIRE_TYPE_MASK);
  }
}

function readMapEntry(r: protobuf.Reader, end: number, into: Map<string, string>): void {
  let key = '';
  let value = '';
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag === MAP_KEY) key = r.string();
    else if (tag === MAP_VALUE) value = r.string();
    else r.skipType(tag & WIRE_TYPE_MASK);
  }
  into.set(key, value);
}

// encode_raw_headers=true: one HeaderValue per header line, not merged; merge them the way the
// headers map would be, so repeated identity headers are still caught as comma-joined values.
function readHeaderMap(r: protobuf.Reader, buf: Buffer, end: number, f: MutableFacts): void {
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag === HEADER_MAP_HEADERS) readHeader(r, buf, r.uint32() + r.pos, f, true);
    else r.skipType(tag & WIRE_TYPE_MASK);
  }
}

/**
 * One header: a `headers` map entry (key, value) or a HeaderValue (key, value, raw_value); the two
 * number key and value alike, so one reader serves both.
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
    if (tag === HEADER_KEY) key = r.string();
    else if (tag === HEADER_VALUE || (tag === HEADER_RAW_VALUE && rawValue)) {
      const len = r.uint32();
      from = r.pos;
      r.skip(len);
      to = r.pos;
    } else r.skipType(tag & WIRE_TYPE_MASK);
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

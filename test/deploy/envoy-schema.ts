// Validates an Envoy config (YAML parsed to JS) against Envoy's own .proto schema, the way
// Envoy's loader would read it: unknown fields, wrong scalar kinds, unresolvable `@type`s and
// missing PGV-required fields are all errors, so a misspelt key cannot silently become a no-op.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import protobuf from 'protobufjs';

const require = createRequire(import.meta.url);
const DEPS = join(dirname(require.resolve('@grpc/grpc-js-xds/package.json')), 'deps');
// protobufjs ships descriptor.proto (imported by the PGV and udpa annotation files).
const PROTOBUFJS = dirname(require.resolve('protobufjs/package.json'));
const INCLUDE = ['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate']
  .map((d) => join(DEPS, d))
  .concat(PROTOBUFJS);

/** Every type a front-proxy config can name in `@type`; add a file here when envoy.yaml grows. */
export const ENVOY_PROTOS = [
  'envoy/config/bootstrap/v3/bootstrap.proto',
  'envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto',
  'envoy/extensions/filters/http/ext_authz/v3/ext_authz.proto',
  'envoy/extensions/filters/http/router/v3/router.proto',
  'envoy/extensions/transport_sockets/tls/v3/tls.proto',
  'envoy/extensions/access_loggers/file/v3/file.proto',
  'envoy/extensions/access_loggers/stream/v3/stream.proto',
  'envoy/extensions/upstreams/http/v3/http_protocol_options.proto',
];

export const BOOTSTRAP = 'envoy.config.bootstrap.v3.Bootstrap';

export function loadEnvoySchema(): protobuf.Root {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => {
    for (const dir of INCLUDE) {
      const candidate = join(dir, target);
      if (existsSync(candidate)) return candidate;
    }
    return target;
  };
  root.loadSync(ENVOY_PROTOS, { keepCase: true });
  root.resolveAll();
  return root;
}

export interface SchemaReport {
  errors: string[];
  /** Fields marked `deprecated = true`: Envoy may reject them in a later release. */
  deprecated: string[];
}

const INT32 = new Set(['int32', 'sint32', 'sfixed32']);
const UINT32 = new Set(['uint32', 'fixed32']);
const INT64 = new Set(['int64', 'sint64', 'sfixed64']);
const UINT64 = new Set(['uint64', 'fixed64']);
const WRAPPERS: Record<string, string> = {
  'google.protobuf.BoolValue': 'bool',
  'google.protobuf.StringValue': 'string',
  'google.protobuf.BytesValue': 'bytes',
  'google.protobuf.Int32Value': 'int32',
  'google.protobuf.UInt32Value': 'uint32',
  'google.protobuf.Int64Value': 'int64',
  'google.protobuf.UInt64Value': 'uint64',
  'google.protobuf.DoubleValue': 'double',
  'google.protobuf.FloatValue': 'float',
};
const WELL_KNOWN = new Set([
  ...Object.keys(WRAPPERS),
  'google.protobuf.Duration',
  'google.protobuf.Timestamp',
  'google.protobuf.Struct',
  'google.protobuf.ListValue',
  'google.protobuf.FieldMask',
  'google.protobuf.Value',
  'google.protobuf.Any',
]);
const DURATION = /^-?\d+(\.\d{1,9})?s$/;
const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;

function lowerCamel(snake: string): string {
  return snake.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function checkScalar(type: string, v: unknown): string | undefined {
  const intLike = (n: unknown, unsigned: boolean): boolean => {
    const s = typeof n === 'number' ? String(n) : typeof n === 'string' ? n : '';
    return (unsigned ? /^\d+$/ : /^-?\d+$/).test(s);
  };
  if (type === 'string') return typeof v === 'string' ? undefined : 'a string';
  if (type === 'bytes') return typeof v === 'string' ? undefined : 'base64 bytes as a string';
  if (type === 'bool') return typeof v === 'boolean' ? undefined : 'a boolean';
  if (type === 'double' || type === 'float') {
    return typeof v === 'number' || v === 'NaN' || v === 'Infinity' || v === '-Infinity'
      ? undefined
      : 'a number';
  }
  if (INT32.has(type) || INT64.has(type)) return intLike(v, false) ? undefined : 'an integer';
  if (UINT32.has(type) || UINT64.has(type)) {
    return intLike(v, true) ? undefined : 'a non-negative integer';
  }
  return `a value of unsupported scalar type ${type}`;
}

/** Walks `value` as an instance of message `typeName`, collecting every problem found. */
export function validateEnvoyConfig(
  root: protobuf.Root,
  value: unknown,
  typeName: string = BOOTSTRAP,
): SchemaReport {
  const report: SchemaReport = { errors: [], deprecated: [] };
  walkMessage(root, root.lookupType(typeName), value, '$', report);
  return report;
}

function walkValue(
  root: protobuf.Root,
  field: protobuf.Field,
  v: unknown,
  path: string,
  report: SchemaReport,
): void {
  if (v === null) return; // JSON null means "default" for every non-Value field.
  const resolved = field.resolvedType;
  if (resolved instanceof protobuf.Enum) {
    const ok =
      (typeof v === 'string' && Object.hasOwn(resolved.values, v)) ||
      (typeof v === 'number' && Object.values(resolved.values).includes(v));
    if (!ok) {
      const names = Object.keys(resolved.values).join(', ');
      report.errors.push(`${path}: ${JSON.stringify(v)} is not a ${resolved.name} (${names})`);
    }
  } else if (resolved instanceof protobuf.Type) {
    walkMessage(root, resolved, v, path, report);
  } else {
    const want = checkScalar(field.type, v);
    if (want !== undefined)
      report.errors.push(`${path}: expected ${want}, got ${JSON.stringify(v)}`);
    const minLen = field.options?.['(validate.rules).string.min_len'];
    if (typeof minLen === 'number' && typeof v === 'string' && v.length < minLen) {
      report.errors.push(`${path}: must be at least ${minLen} character(s)`);
    }
  }
}

function walkWellKnown(
  root: protobuf.Root,
  name: string,
  v: unknown,
  path: string,
  report: SchemaReport,
): boolean {
  if (!WELL_KNOWN.has(name)) return false;
  const fail = (what: string): void => {
    report.errors.push(`${path}: ${name} must be ${what}, got ${JSON.stringify(v)}`);
  };
  if (name in WRAPPERS) {
    const want = checkScalar(WRAPPERS[name]!, v);
    if (want !== undefined) fail(want);
  } else if (name === 'google.protobuf.Duration') {
    if (typeof v !== 'string' || !DURATION.test(v)) fail('a duration string such as "0.2s"');
  } else if (name === 'google.protobuf.Timestamp') {
    if (typeof v !== 'string' || !TIMESTAMP.test(v)) fail('an RFC 3339 timestamp');
  } else if (name === 'google.protobuf.Struct') {
    if (!isObject(v)) fail('an object');
  } else if (name === 'google.protobuf.ListValue') {
    if (!Array.isArray(v)) fail('a list');
  } else if (name === 'google.protobuf.FieldMask') {
    if (typeof v !== 'string') fail('a comma-separated string');
  } else if (name === 'google.protobuf.Value') {
    // Any JSON value is a Value.
  } else if (name === 'google.protobuf.Any') {
    walkAny(root, v, path, report);
  }
  return true;
}

function walkAny(root: protobuf.Root, v: unknown, path: string, report: SchemaReport): void {
  if (!isObject(v)) {
    report.errors.push(`${path}: google.protobuf.Any must be an object with "@type"`);
    return;
  }
  const url = v['@type'];
  if (typeof url !== 'string' || !url.includes('/')) {
    report.errors.push(`${path}: typed config needs "@type": type.googleapis.com/<message>`);
    return;
  }
  const name = url.slice(url.lastIndexOf('/') + 1);
  let type: protobuf.Type;
  try {
    type = root.lookupType(name);
  } catch {
    report.errors.push(`${path}: @type ${name} is not a loaded Envoy message`);
    return;
  }
  const rest = Object.fromEntries(Object.entries(v).filter(([k]) => k !== '@type'));
  // Well-known types keep their JSON form under "value" when packed into an Any.
  if (WELL_KNOWN.has(type.fullName.slice(1)))
    walkMessage(root, type, rest.value, `${path}.value`, report);
  else walkMessage(root, type, rest, path, report);
}

function walkMessage(
  root: protobuf.Root,
  type: protobuf.Type,
  v: unknown,
  path: string,
  report: SchemaReport,
): void {
  const fullName = type.fullName.slice(1);
  if (walkWellKnown(root, fullName, v, path, report)) return;
  if (!isObject(v)) {
    report.errors.push(`${path}: ${fullName} must be an object, got ${JSON.stringify(v)}`);
    return;
  }
  const byName = new Map<string, protobuf.Field>();
  for (const field of type.fieldsArray) {
    byName.set(field.name, field);
    byName.set(lowerCamel(field.name), field);
  }
  const seen = new Set<protobuf.Field>();
  for (const [key, child] of Object.entries(v)) {
    const field = byName.get(key);
    const at = `${path}.${key}`;
    if (field === undefined) {
      report.errors.push(`${at}: unknown field "${key}" in ${fullName}`);
      continue;
    }
    if (seen.has(field)) report.errors.push(`${at}: field given twice (snake and camel case)`);
    seen.add(field);
    if (child !== null && field.options?.deprecated === true) report.deprecated.push(at);
    if (field.map) {
      if (!isObject(child)) report.errors.push(`${at}: map field must be an object`);
      else
        for (const [k, item] of Object.entries(child))
          walkValue(root, field, item, `${at}.${k}`, report);
    } else if (field.repeated) {
      if (!Array.isArray(child)) report.errors.push(`${at}: repeated field must be a list`);
      else child.forEach((item, i) => walkValue(root, field, item, `${at}[${i}]`, report));
    } else {
      walkValue(root, field, child, at, report);
    }
  }
  checkRequired(type, seen, path, report);
}

// PGV annotations are how Envoy marks required fields; honour the two forms it uses most.
function checkRequired(
  type: protobuf.Type,
  seen: Set<protobuf.Field>,
  path: string,
  report: SchemaReport,
): void {
  for (const field of type.fieldsArray) {
    // Inside a oneof, PGV applies a member's rules only when that member is the one set.
    const required = field.options?.['(validate.rules).message.required'] === true;
    if (required && field.partOf == null && !seen.has(field)) {
      report.errors.push(`${path}: required field "${field.name}" is missing`);
    }
  }
  for (const oneof of type.oneofsArray) {
    const set = oneof.fieldsArray.filter((f) => seen.has(f));
    if (set.length > 1) {
      report.errors.push(`${path}: only one of ${set.map((f) => f.name).join(', ')} may be set`);
    }
    if (oneof.options?.['(validate.required)'] === true && set.length === 0) {
      const names = oneof.fieldsArray.map((f) => f.name).join(' | ');
      report.errors.push(`${path}: one of ${names} is required`);
    }
  }
}

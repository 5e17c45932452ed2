// Request facts for unit tests of one module, as the wire decoder would produce them.
import type { RequestFacts } from '../../src/check/facts.js';

export function makeFacts(
  over: Partial<Omit<RequestFacts, 'headers'>> & {
    headers?: Map<string, string> | Record<string, string>;
  } = {},
): RequestFacts {
  const { headers, ...rest } = over;
  return {
    sourcePrincipal: '',
    sourceCertificate: '',
    sourceAddress: '',
    destinationPrincipal: '',
    method: 'GET',
    path: '/',
    host: 'h',
    requestId: '1',
    contextExtensions: new Map(),
    ...rest,
    headers: headers instanceof Map ? headers : new Map(Object.entries(headers ?? {})),
  };
}

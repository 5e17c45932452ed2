// Read-only facts taken once from a CheckRequest; everything after the decoder reads only these.

export interface RequestFacts {
  /** attributes.source.principal, as Envoy took it from the TLS handshake. */
  readonly sourcePrincipal: string;
  /** URL-decoded PEM of the peer leaf certificate, or '' when Envoy did not include it. */
  readonly sourceCertificate: string;
  readonly sourceAddress: string;
  readonly destinationPrincipal: string;
  /** Lower-cased header names to values (Envoy joins repeated headers with ','). */
  readonly headers: ReadonlyMap<string, string>;
  readonly method: string;
  readonly path: string;
  readonly host: string;
  readonly requestId: string;
  readonly contextExtensions: ReadonlyMap<string, string>;
}

export const EMPTY_MAP: ReadonlyMap<string, string> = new Map();

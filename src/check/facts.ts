// Read-only facts taken once from a CheckRequest; everything after the decoder reads only these.

export interface RequestFacts {
  /** attributes.source.principal, as Envoy took it from the TLS handshake. */
  readonly sourcePrincipal: string;
  /** URL-decoded PEM of the peer leaf certificate, or '' when Envoy did not include it. */
  readonly sourceCertificate: string;
  readonly sourceAddress: string;
  readonly destinationPrincipal: string;
  /**
   * Lower-cased header names to values (Envoy joins repeated headers with ','): only the headers
   * a decision reads or an allow strips (keepsHeader in header-rules.ts); the decoder makes no
   * string of any other header's value.
   */
  readonly headers: ReadonlyMap<string, string>;
  /** Some header value, kept or not, held a control character (set by the decoder). */
  readonly controlCharInHeader?: boolean;
  readonly method: string;
  readonly path: string;
  readonly host: string;
  readonly requestId: string;
  readonly contextExtensions: ReadonlyMap<string, string>;
}

export const EMPTY_MAP: ReadonlyMap<string, string> = new Map();

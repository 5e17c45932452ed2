// What a request's header block says, checked against HTTP/2's message rules (RFC 9113 §8.1–8.3)
// as it is decoded: pseudo-headers first, each once, only the request ones, the required ones
// present; a trailer block with none; a content-length that is a number. One instance per
// connection, reused for every block.
import { FieldKind } from './field-rules.js';

export class RequestHead {
  method: string | undefined;
  path: string | undefined;
  scheme: string | undefined;
  authority: string | undefined;
  contentType: string | undefined;
  encoding: string | undefined;
  /** -1 when absent. */
  contentLength = -1;
  /** Why the block is a malformed message, or undefined. */
  malformed: string | undefined;
  private regularSeen = false;
  private trailers = false;

  reset(trailers: boolean): void {
    this.method = this.path = this.scheme = this.authority = undefined;
    this.contentType = this.encoding = this.malformed = undefined;
    this.contentLength = -1;
    this.regularSeen = false;
    this.trailers = trailers;
  }

  readonly visit = (name: string, value: string, kind: number): void => {
    if (this.malformed !== undefined) return;
    if (kind === FieldKind.MALFORMED) this.malformed = 'invalid or connection-specific field';
    else if (kind === FieldKind.PSEUDO) this.pseudo(name, value);
    else {
      this.regularSeen = true;
      if (name === 'content-type') this.contentType = value;
      else if (name === 'grpc-encoding') this.encoding = value;
      else if (name === 'content-length') this.length(value);
    }
  };

  /** After the block: the rules that need the whole list. */
  finish(): void {
    if (this.malformed !== undefined || this.trailers) return;
    if (this.method === undefined || this.scheme === undefined || this.path === undefined)
      this.malformed = 'missing :method, :scheme or :path';
    else if (this.path === '') this.malformed = 'empty :path';
  }

  private pseudo(name: string, value: string): void {
    if (this.trailers) return void (this.malformed = 'pseudo-header in trailers');
    if (this.regularSeen) return void (this.malformed = 'pseudo-header after a regular field');
    let seen: string | undefined;
    if (name === ':method') {
      seen = this.method;
      this.method = value;
    } else if (name === ':path') {
      seen = this.path;
      this.path = value;
    } else if (name === ':scheme') {
      seen = this.scheme;
      this.scheme = value;
    } else if (name === ':authority') {
      seen = this.authority;
      this.authority = value;
    } else return void (this.malformed = 'unknown or response pseudo-header');
    if (seen !== undefined) this.malformed = 'repeated pseudo-header';
  }

  private length(value: string): void {
    const n = /^[0-9]{1,15}$/.test(value) ? Number(value) : NaN;
    if (Number.isNaN(n) || (this.contentLength !== -1 && this.contentLength !== n))
      this.malformed = 'invalid content-length';
    else this.contentLength = n;
  }
}

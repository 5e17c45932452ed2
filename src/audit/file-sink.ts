// The embedded-default audit sink: a JSON-lines file, one record a line, opened append-only.
// Each batch is one write followed by fdatasync, so a batch reported written survives a crash
// or power loss; a crash mid-write can leave at most one torn line, which is never rewritten
// (the verifier reports it as `malformed`) but is closed with a newline before the next write.
import { open, type FileHandle } from 'node:fs/promises';
import { GENESIS, headOfRecord, parseRecord, storedLinesBuffer } from './chain.js';
import type { AuditSink } from './sink.js';
import type { ChainHead, StoredRecord } from './types.js';

const CHUNK = 64 * 1024;

const NEWLINE = Buffer.from('\n');

export class FileSink implements AuditSink {
  readonly kind = 'file';
  private handle: FileHandle | undefined;
  private needsNewline = false;

  constructor(
    private readonly path: string,
    private readonly writer: string,
  ) {}

  async readHead(): Promise<ChainHead> {
    const fh = await this.file();
    const { head, endsWithNewline } = await findHead(fh, this.writer);
    this.needsNewline = !endsWithNewline;
    return head;
  }

  async write(records: readonly StoredRecord[]): Promise<void> {
    const fh = await this.file();
    const lines = storedLinesBuffer(records, 'after');
    const bytes = this.needsNewline ? Buffer.concat([NEWLINE, lines]) : lines;
    // Whatever happens below, the file may now end mid-line until readHead looks again.
    this.needsNewline = true;
    await fh.writeFile(bytes);
    await fh.datasync();
    this.needsNewline = false;
  }

  async close(): Promise<void> {
    const fh = this.handle;
    this.handle = undefined;
    await fh?.close();
  }

  private async file(): Promise<FileHandle> {
    // 'a' = O_APPEND: every write lands at the end even if another process appends too, so
    // several writers can share one file without overwriting each other's lines.
    this.handle ??= await open(this.path, 'a+', 0o640);
    return this.handle;
  }
}

/**
 * Scans the file backwards in chunks for this writer's newest record. Usually the last line is
 * ours; when writers share a file it may take a few chunks; a writer never seen means GENESIS.
 * Unparseable lines (a torn last write, another program's noise) are skipped, not trusted.
 */
async function findHead(
  fh: FileHandle,
  writer: string,
): Promise<{ head: ChainHead; endsWithNewline: boolean }> {
  const size = (await fh.stat()).size;
  if (size === 0) return { head: GENESIS, endsWithNewline: true };
  const last = Buffer.alloc(1);
  await fh.read(last, 0, 1, size - 1);
  const endsWithNewline = last[0] === 0x0a;

  let end = size;
  let carry = Buffer.alloc(0); // bytes of a line that started before the current chunk
  while (end > 0) {
    const start = Math.max(0, end - CHUNK);
    const chunk = Buffer.alloc(end - start);
    await fh.read(chunk, 0, chunk.length, start);
    let buf = Buffer.concat([chunk, carry]);
    let nl = buf.lastIndexOf(0x0a, buf.length - 1);
    let lineEnd = buf.length;
    while (nl >= 0) {
      const head = headOfLine(buf.subarray(nl + 1, lineEnd), writer);
      if (head !== undefined) return { head, endsWithNewline };
      lineEnd = nl;
      nl = nl === 0 ? -1 : buf.lastIndexOf(0x0a, nl - 1);
    }
    buf = buf.subarray(0, lineEnd);
    if (start === 0) {
      const head = headOfLine(buf, writer);
      return { head: head ?? GENESIS, endsWithNewline };
    }
    carry = Buffer.from(buf);
    end = start;
  }
  return { head: GENESIS, endsWithNewline };
}

function headOfLine(line: Buffer, writer: string): ChainHead | undefined {
  if (line.length === 0) return undefined;
  return headOfRecord(parseRecord(line.toString('utf8')), writer);
}

// Reads a JSON-lines audit file or a Redis Stream in stored order and runs the chain verifier
// over it, streaming, so a large log is never held in memory.
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { ChainVerifier } from './chain-verifier.js';
import { entryRecords, type RedisClient } from './redis-stream-sink.js';
import type { VerifyOptions, VerifyResult } from './verify-result.js';

const PAGE = 1000;

export async function verifyFile(path: string, opts: VerifyOptions = {}): Promise<VerifyResult> {
  const verifier = new ChainVerifier(opts);
  const input = createReadStream(path, { encoding: 'utf8' });
  const lines = createInterface({ input, crlfDelay: Infinity });
  let line = 0;
  try {
    for await (const text of lines) {
      verifier.push(text, { line: ++line });
      if (!verifier.wantsMore) break;
    }
  } finally {
    lines.close();
    input.destroy();
  }
  return verifier.finish();
}

export async function verifyStream(
  redis: RedisClient,
  streamKey: string,
  opts: VerifyOptions = {},
): Promise<VerifyResult> {
  const verifier = new ChainVerifier(opts);
  let start = '-';
  for (;;) {
    const page = await redis.xrange(streamKey, start, '+', 'COUNT', PAGE);
    for (const [id, fields] of page) {
      for (const line of entryRecords(fields)) {
        verifier.push(line, { id });
        if (!verifier.wantsMore) return verifier.finish();
      }
    }
    if (page.length < PAGE) return verifier.finish();
    start = `(${page[page.length - 1]![0]}`;
  }
}

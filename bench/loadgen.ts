// Open-loop gRPC load generator on node:http2 for latency percentiles that do not hide queueing
// (no coordinated omission): request i is *scheduled* at t0 + i/rate whatever happened before,
// and its latency is measured from that scheduled time, not from when it was actually written.
// With --rate 0 it runs closed-loop instead (--concurrency streams in flight) for throughput.
//
// usage: node --import tsx bench/loadgen.ts --target 127.0.0.1:PORT --frames FILE
//          [--rate 5000] [--duration 10] [--warmup 2] [--connections 2] [--concurrency 64]
// FILE holds one or more gRPC-framed CheckRequests back to back; they are sent round-robin.
// Prints one JSON object on stdout.
import { readFileSync } from 'node:fs';
import http2 from 'node:http2';
import { parseArgs } from 'node:util';
import * as hdr from 'hdr-histogram-js';

const { values } = parseArgs({
  options: {
    target: { type: 'string' },
    frames: { type: 'string' },
    rate: { type: 'string', default: '5000' },
    duration: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '2' },
    connections: { type: 'string', default: '2' },
    concurrency: { type: 'string', default: '64' },
  },
});
const target = values.target ?? '127.0.0.1:9191';
const rate = Number(values.rate);
const durationMs = Number(values.duration) * 1000;
const warmupMs = Number(values.warmup) * 1000;
const frames = splitFrames(readFileSync(values.frames ?? ''));
const PATH = '/envoy.service.auth.v3.Authorization/Check';
const DENY_MARK = Buffer.from('x-agent-authz-reason');

function splitFrames(buf: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < buf.length;) {
    const len = buf.readUInt32BE(at + 1);
    out.push(buf.subarray(at, at + 5 + len));
    at += 5 + len;
  }
  if (out.length === 0) throw new Error('no frames');
  return out;
}

function connect(): http2.ClientHttp2Session {
  // Node's default 10 MB per-session budget refuses streams (ENHANCE_YOUR_CALM) once a few
  // thousand requests queue up: the generator must keep offering load, not throttle itself.
  const s = http2.connect(`http://${target}`, {
    maxSessionMemory: 1024,
    peerMaxConcurrentStreams: 1 << 30,
  });
  s.on('error', () => undefined);
  return s;
}
// A session the server closed (GOAWAY, reset) is replaced; its lost streams count as errors.
const sessions = Array.from({ length: Number(values.connections) }, connect);
let reconnects = 0;
let debugLines = 0;
const histogram = hdr.build({
  lowestDiscernibleValue: 1,
  highestTrackableValue: 120_000_000,
  numberOfSignificantValueDigits: 3,
});
const counts = { sent: 0, ok: 0, denied: 0, grpcErrors: 0, transportErrors: 0 };
let measuring = false;
let outstanding = 0;
let n = 0;

function send(scheduledMs: number, onDone?: () => void): void {
  let session = sessions[n % sessions.length]!;
  if (session.destroyed || session.closed) {
    session = sessions[n % sessions.length] = connect();
    reconnects++;
  }
  const frame = frames[n % frames.length]!;
  n++;
  counts.sent++;
  outstanding++;
  const counted = measuring;
  let stream: http2.ClientHttp2Stream;
  try {
    stream = session.request({
      ':method': 'POST',
      ':path': PATH,
      'content-type': 'application/grpc',
      te: 'trailers',
    });
  } catch {
    // The session is going away (GOAWAY received): replace it, count this one as lost.
    sessions[(n - 1) % sessions.length] = connect();
    reconnects++;
    outstanding--;
    if (counted) counts.transportErrors++;
    onDone?.();
    return;
  }
  let status: string | undefined;
  let denied = false;
  stream.on('response', (h) => {
    if (h['grpc-status'] !== undefined) status = String(h['grpc-status']);
  });
  stream.on('trailers', (t) => {
    status = String(t['grpc-status']);
  });
  stream.on('data', (chunk: Buffer) => {
    if (chunk.includes(DENY_MARK)) denied = true;
  });
  let finished = false;
  const finish = (transportError: boolean) => {
    if (finished) return;
    finished = true;
    outstanding--;
    if (counted) {
      histogram.recordValue(Math.max(1, Math.round((performance.now() - scheduledMs) * 1000)));
      if (transportError) counts.transportErrors++;
      else if (status !== '0') counts.grpcErrors++;
      else if (denied) counts.denied++;
      else counts.ok++;
    }
    onDone?.();
  };
  stream.on('end', () => finish(false));
  stream.on('error', (e) => {
    if (process.env.LOADGEN_DEBUG && debugLines++ < 3)
      process.stderr.write(`stream error: ${e.message}\n`);
    finish(true);
  });
  stream.end(frame);
}

function openLoop(): Promise<number> {
  return new Promise((resolve) => {
    const interval = 1000 / rate;
    const t0 = performance.now();
    const measureFrom = t0 + warmupMs;
    const stopAt = measureFrom + durationMs;
    let next = t0;
    let measured = 0;
    const tick = () => {
      const now = performance.now();
      while (next <= now && next < stopAt) {
        measuring = next >= measureFrom;
        if (measuring) measured++;
        send(next);
        next += interval;
      }
      if (next < stopAt) setImmediate(tick);
      else resolve(measured);
    };
    tick();
  });
}

function closedLoop(): Promise<number> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const stopAt = t0 + warmupMs + durationMs;
    let measured = 0;
    const loop = () => {
      const now = performance.now();
      if (now >= stopAt) return;
      measuring = now >= t0 + warmupMs;
      if (measuring) measured++;
      send(now, loop);
    };
    for (let i = 0; i < Number(values.concurrency); i++) loop();
    setTimeout(() => resolve(measured), warmupMs + durationMs);
  });
}

const measured = rate > 0 ? await openLoop() : await closedLoop();
// Let the tail drain (bounded): an answer that never comes is a transport error, not a lost sample.
const drainUntil = performance.now() + 5000;
while (outstanding > 0 && performance.now() < drainUntil)
  await new Promise((r) => setTimeout(r, 5));
counts.transportErrors += outstanding;
for (const s of sessions) s.destroy();
const us = (p: number) => histogram.getValueAtPercentile(p) / 1000;
process.stdout.write(
  JSON.stringify({
    mode: rate > 0 ? 'open' : 'closed',
    offered_per_s: rate > 0 ? rate : null,
    measured_requests: measured,
    achieved_per_s: Math.round((counts.ok + counts.denied) / (durationMs / 1000)),
    ...counts,
    unanswered: outstanding,
    reconnects,
    p50_ms: us(50),
    p90_ms: us(90),
    p99_ms: us(99),
    p999_ms: us(99.9),
    max_ms: histogram.maxValue / 1000,
  }) + '\n',
);
process.exit(0);

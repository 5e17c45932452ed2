// `make floods`: the HTTP/2 floods of docs/transport.md against agent-authz as `make run` serves it
// (embedded registry, default limits, pinned to the server core), one connection each, reporting
// what each cost the server — CPU, RSS — and whether the connection was ended, then checking that
// a legitimate check is still allowed. FLOODS_COMPARE_MAIN=/other/dist/src/cli/main.js runs the
// same floods against another build (e.g. before a change), side by side.
import { join } from 'node:path';
import { EnvoyCheckClient, reasonOf } from '../test/helpers/official-envoy.js';
import { frame } from '../test/helpers/h2-frames.js';
import { RawClient, requestBlock } from '../test/helpers/h2-raw-client.js';
import { literalField } from '../test/helpers/hpack.js';
import { ROOT, cpuSeconds, rssMiB, sleep } from './lib/procs.js';
import { startAuthz, type Server } from './lib/servers.js';

const ALPHA = 'spiffe://example.org/agents/alpha';
const u32 = (v: number) => Buffer.from([v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255]);
const open = (n: number) =>
  Array.from({ length: n }, (_, i) => frame(1, 4, 1 + 2 * i, requestBlock()));
const tableSize4096 = () =>
  Buffer.concat([Buffer.from([0x3f, 0xe1, 0x1f]), requestBlock().subarray(1)]);

interface Flood {
  readonly name: string;
  /** Sent first and not measured (e.g. the streams a flood runs against). */
  readonly setup?: Buffer[];
  /** Sends the flood; resolves when it is all written or the connection closed. */
  run(c: RawClient): Promise<void>;
}

/** Waits until the socket can take more, or closed. */
function writable(c: RawClient): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      c.socket.off('drain', done).off('close', done);
      resolve();
    };
    c.socket.on('drain', done).on('close', done);
  });
}

async function write(c: RawClient, frames: Buffer[]): Promise<void> {
  for (let at = 0; at < frames.length && !c.closed; at += 2000) {
    if (!c.socket.write(Buffer.concat(frames.slice(at, at + 2000)))) await writable(c);
  }
}

const ONLY = process.env.FLOODS_ONLY;
const FLOODS: Flood[] = [
  {
    name: 'empty DATA frames for 6 s',
    async run(c) {
      c.send(frame(1, 4, 1, requestBlock()));
      const chunk = Buffer.concat(Array.from({ length: 5000 }, () => frame(0, 0, 1)));
      const until = Date.now() + 6000;
      while (Date.now() < until && !c.closed) if (!c.socket.write(chunk)) await writable(c);
    },
  },
  {
    name: '20 000 empty SETTINGS, 4 096 streams open',
    setup: open(4096),
    run: (c) =>
      write(
        c,
        Array.from({ length: 20_000 }, () => frame(4, 0, 0)),
      ),
  },
  {
    name: '20 000 stream-0 WINDOW_UPDATE, 4 096 streams open',
    setup: open(4096),
    run: (c) =>
      write(
        c,
        Array.from({ length: 20_000 }, () => frame(8, 0, 0, u32(1))),
      ),
  },
  {
    name: 'rapid reset: 100 000 HEADERS + RST_STREAM',
    run: (c) =>
      write(
        c,
        Array.from({ length: 100_000 }, (_, i) => [
          frame(1, 4, 1 + 2 * i, requestBlock()),
          frame(3, 0, 1 + 2 * i, u32(8)),
        ]).flat(),
      ),
  },
  {
    name: 'CONTINUATION flood (1 000-byte frames, no END_HEADERS)',
    run: (c) =>
      write(c, [
        frame(1, 0, 1, requestBlock()),
        ...Array.from({ length: 100_000 }, () => frame(9, 0, 1, Buffer.alloc(1000, 0x40))),
      ]),
  },
  {
    name: 'HPACK bomb flood (16 000 references to a 4 KB entry per block)',
    run: (c) => {
      const frames = [
        frame(
          1,
          5,
          1,
          Buffer.concat([
            tableSize4096(),
            literalField('x-bomb', 'b'.repeat(4000), { indexing: true }),
          ]),
        ),
      ];
      for (let i = 1; i <= 2000; i++) {
        const block = Buffer.concat([tableSize4096(), Buffer.alloc(16_000, 0xbe)]);
        frames.push(
          frame(1, 1, 1 + 2 * i, block.subarray(0, 16_000)),
          frame(9, 4, 1 + 2 * i, block.subarray(16_000)),
        );
      }
      return write(c, frames);
    },
  },
  {
    name: 'Huffman-heavy flood (60 KB Huffman value per request)',
    run: (c) => {
      const value = Buffer.from(Array.from({ length: 60_000 }, (_, i) => 0x21 + ((i * 7919) % 90)));
      const block = Buffer.concat([
        requestBlock(),
        literalField('x-big', value, { huffman: true }),
      ]);
      const frames: Buffer[] = [];
      for (let i = 0; i < 2000; i++) {
        const id = 1 + 2 * i;
        frames.push(frame(1, 1, id, block.subarray(0, 16_000)));
        for (let at = 16_000; at < block.length; at += 16_000)
          frames.push(
            frame(9, at + 16_000 >= block.length ? 4 : 0, id, block.subarray(at, at + 16_000)),
          );
      }
      return write(c, frames);
    },
  },
];

interface Row {
  flood: string;
  /** The event loop's thread; the whole process adds V8's compiler and GC helper threads. */
  main_cpu_ms: number;
  cpu_ms: number;
  rss_growth_mib: number;
  ended: string;
  legit_after: string;
}

async function measure(server: Server, f: Flood): Promise<Row> {
  const pid = server.proc.child.pid!;
  const legit = new EnvoyCheckClient(`127.0.0.1:${server.grpcPort}`);
  await legit.check({ principal: ALPHA });
  const c = await RawClient.connect(server.grpcPort);
  await c.ackSettings();
  if (f.setup !== undefined) {
    c.send(...f.setup, frame(6, 0, 0, Buffer.from('setup..!')));
    await c.waitFor((x) => x.type === 6 && (x.flags & 1) !== 0, 10_000);
  }
  const rss0 = rssMiB(pid);
  let rssMax = rss0;
  const sampler = setInterval(() => (rssMax = Math.max(rssMax, rssMiB(pid))), 100);
  const cpu0 = cpuSeconds(pid);
  const main0 = cpuSeconds(pid, pid);
  await f.run(c);
  // Let the server finish what it was sent (or the close), then read its CPU.
  const settle = Date.now() + 10_000;
  let last = -1;
  while (Date.now() < settle) {
    const now = cpuSeconds(pid);
    if (now === last) break;
    last = now;
    await sleep(300);
  }
  const cpu = cpuSeconds(pid) - cpu0;
  const main = cpuSeconds(pid, pid) - main0;
  clearInterval(sampler);
  const goaway = c.frames.find((x) => x.type === 7);
  const ended =
    goaway === undefined
      ? c.closed
        ? 'closed'
        : 'no'
      : `GOAWAY ${goaway.payload.readUInt32BE(4)}`;
  c.close();
  const reason = reasonOf(await legit.check({ principal: ALPHA }));
  legit.close();
  return {
    flood: f.name,
    main_cpu_ms: Math.round(main * 1000),
    cpu_ms: Math.round(cpu * 1000),
    rss_growth_mib: Math.round((rssMax - rss0) * 10) / 10,
    ended,
    legit_after: reason,
  };
}

async function runAll(label: string, main: string | undefined): Promise<void> {
  const server = await startAuthz(`floods-${label}`, {
    env: {
      AGENT_AUTHZ_REGISTRY_FILE: join(ROOT, 'examples/registry.yaml'),
      AGENT_AUTHZ_SPIFFE_TRUST_DOMAINS: 'example.org',
      AGENT_AUTHZ_AUDIT_SINK: 'none',
    },
    cpu: process.env.BENCH_SERVER_CPU ?? '0',
    main,
    nodeArgs: (process.env.FLOODS_NODE_ARGS ?? '').split(' ').filter((a) => a !== ''),
  });
  try {
    console.log(`\n${label}: ${main ?? 'this build'}`);
    console.log(
      'flood | CPU ms, event loop | CPU ms, process | RSS growth MiB | connection ended | legit check after',
    );
    for (const f of FLOODS.filter((x) => ONLY === undefined || x.name.includes(ONLY))) {
      const r = await measure(server, f);
      console.log(
        `${r.flood} | ${r.main_cpu_ms} | ${r.cpu_ms} | ${r.rss_growth_mib} | ${r.ended} | ${r.legit_after}`,
      );
    }
  } finally {
    await server.stop();
  }
}

await runAll('this', undefined);
if (process.env.FLOODS_COMPARE_MAIN !== undefined)
  await runAll('other', process.env.FLOODS_COMPARE_MAIN);

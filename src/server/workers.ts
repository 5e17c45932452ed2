// `serve --workers N`: a node:cluster primary forks N workers that each run the whole server on the
// same gRPC (and admin) port; the primary accepts connections and hands each to a worker in turn,
// so one Envoy connection always lands on one worker. The primary owns the operator HTTP port:
// /metrics there is every worker's registry summed by prom-client's AggregatorRegistry (a worker's
// own /metrics answered round-robin would be a different process's numbers on every scrape),
// /readyz is ready only when every worker says it is. SIGTERM/SIGINT to the primary are forwarded
// to the workers, which drain as a single server does; the primary exits when they have.
import cluster, { type Worker } from 'node:cluster';
import { createServer, type Server } from 'node:http';
import { AggregatorRegistry, type PrometheusContentType, type Registry } from 'prom-client';
import type { Config } from '../config/config.js';
import type { Logger } from '../observability/logger.js';
import { listen } from './http-server.js';

const READY = 'agent-authz:ready';
const RESTART_DELAY_MS = 1000;

interface ReadyMessage {
  readonly type: typeof READY;
  readonly ready: boolean;
}

export function isWorkerProcess(): boolean {
  return cluster.isWorker;
}

/**
 * What a worker runs: the same config, except that the operator HTTP port belongs to the primary.
 * Port 0 under cluster is one random port shared by the workers; nothing is meant to scrape it.
 */
export function workerConfig(config: Config): Config {
  return Object.freeze({ ...config, http_port: 0 });
}

/** In a worker: answer the primary's metric requests from our registry, and report readiness. */
export function attachWorker(registry: Registry, isReady: () => boolean): () => void {
  // prom-client answers the primary's requests only once an AggregatorRegistry exists here.
  new AggregatorRegistry<PrometheusContentType>();
  AggregatorRegistry.setRegistries([registry]);
  const send = () => {
    if (process.connected) process.send?.({ type: READY, ready: isReady() } satisfies ReadyMessage);
  };
  send();
  const timer = setInterval(send, 1000);
  timer.unref();
  return () => clearInterval(timer);
}

/** In the primary: fork, supervise, aggregate, forward signals. Resolves with the exit code. */
export async function runPrimary(config: Config, logger: Logger): Promise<number> {
  const ready = new Map<number, boolean>();
  let stopping = false;
  const fork = (): Worker => {
    const w = cluster.fork();
    ready.set(w.id, false);
    w.on('message', (m: ReadyMessage) => {
      if (m?.type === READY) ready.set(w.id, m.ready);
    });
    return w;
  };
  cluster.on('exit', (w, code, signal) => {
    ready.delete(w.id);
    if (stopping) return;
    // A worker that dies is replaced, after a pause so that a crash loop does not spin.
    logger.error({ worker: w.id, code, signal }, 'worker exited; starting a replacement');
    setTimeout(() => {
      if (!stopping) fork();
    }, RESTART_DELAY_MS).unref();
  });
  for (let i = 0; i < config.workers; i++) fork();

  const aggregator = new AggregatorRegistry<PrometheusContentType>();
  const allReady = () => ready.size === config.workers && [...ready.values()].every(Boolean);
  const http = createPrimaryHttp(aggregator, allReady, () => !stopping);
  const port = await listen(http, config.bind_address, config.http_port);
  logger.info(
    { workers: config.workers, http_port: port, grpc_port: config.grpc_port },
    'agent-authz primary started',
  );

  return new Promise<number>((resolve) => {
    const shutdown = (signal: NodeJS.Signals) => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal }, 'signal received: stopping workers');
      const workers = Object.values(cluster.workers ?? {}).filter(
        (w): w is Worker => w !== undefined,
      );
      for (const w of workers) w.process.kill(signal);
      // Each worker bounds its own drain by shutdown_grace; this bounds a worker that hangs anyway.
      const force = setTimeout(
        () => {
          for (const w of workers) if (!w.isDead()) w.process.kill('SIGKILL');
        },
        config.shutdown_delay + config.shutdown_grace + 5000,
      );
      const done = () => {
        if (workers.some((w) => !w.isDead())) return;
        clearTimeout(force);
        http.close(() => resolve(0));
        http.closeAllConnections();
      };
      cluster.on('exit', done);
      done();
    };
    process.once('SIGTERM', () => shutdown('SIGTERM'));
    process.once('SIGINT', () => shutdown('SIGINT'));
  });
}

function createPrimaryHttp(
  aggregator: AggregatorRegistry<PrometheusContentType>,
  allReady: () => boolean,
  alive: () => boolean,
): Server {
  return createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
    } else if (path === '/healthz') {
      const ok = alive();
      res
        .writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' })
        .end(ok ? 'ok\n' : 'stopping\n');
    } else if (path === '/readyz') {
      const ok = alive() && allReady();
      res
        .writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' })
        .end(ok ? 'ready\n' : 'not ready\n');
    } else if (path === '/metrics') {
      aggregator.clusterMetrics().then(
        (text) => res.writeHead(200, { 'content-type': aggregator.contentType }).end(text),
        () => res.writeHead(500).end(),
      );
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    }
  });
}

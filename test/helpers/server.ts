// Starts the real server (gRPC, HTTP and admin on 127.0.0.1:0) for integration tests.
import { Writable } from 'node:stream';
import { loadConfig } from '../../src/config/config.js';
import { createLogger } from '../../src/observability/logger.js';
import type { RegistryStore } from '../../src/registry/registry.js';
import { startApp, type RunningApp } from '../../src/server/app.js';

export interface TestServer {
  readonly app: RunningApp;
  readonly address: string;
  readonly logs: string[];
  stop(): Promise<void>;
}

export async function startTestServer(
  overrides: Record<string, unknown>,
  store?: RegistryStore,
): Promise<TestServer> {
  const config = loadConfig({
    env: {},
    overrides: {
      bind_address: '127.0.0.1',
      grpc_port: 0,
      http_port: 0,
      admin_port: 0,
      audit_sink: 'none',
      log_level: 'info',
      registry_watch: false,
      shutdown_grace: '2s',
      ...overrides,
    },
  });
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      logs.push(String(chunk));
      cb();
    },
  });
  const app = await startApp(config, {
    logger: createLogger(config.log_level, sink),
    ...(store ? { store } : {}),
  });
  return { app, address: `127.0.0.1:${app.grpcPort}`, logs, stop: () => app.stop(2000) };
}

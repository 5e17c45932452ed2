// One SIGTERM-under-load round against a server child process: 50 checks held in flight by a
// Conjur that has not answered yet, SIGTERM as the last of them reaches Conjur, Conjur released
// once the server says it is shutting down. Returns what the client got, what the wire showed and
// how the process ended, for the test to judge.
import { encodeOfficialRequest } from '../helpers/official-envoy.js';
import { startChildServer, startHeldConjur } from './child-server.js';
import type { InteropClient, RunOutput } from './clients.js';
import { startTcpProbe } from './tcp-probe.js';

export const SIGTERM_CALLS = 50;

export interface SigtermRound {
  readonly output: RunOutput;
  /** Answers the server sent after its GOAWAY: calls that were in flight when it began to drain. */
  readonly answersAfterGoaway: number;
  readonly exitCode: number | null;
}

export async function sigtermRound(client: InteropClient): Promise<SigtermRound> {
  const conjur = await startHeldConjur();
  try {
    const child = await startChildServer({
      conjur_url: conjur.url,
      conjur_timeout: '1s',
      shutdown_grace: '5s',
    });
    try {
      const probe = await startTcpProbe(child.grpcPort);
      try {
        // A distinct non-JWT token per call: each check asks Conjur, which holds its answer.
        const calls = Array.from({ length: SIGTERM_CALLS }, (_, i) => ({
          request: encodeOfficialRequest({ headers: { 'x-agent-token': `conjur-token-${i}` } }),
        }));
        // Sent from the Conjur handler itself, with no poll in between: each check then stays in
        // flight until Conjur answers or its 150 ms decision budget runs out.
        conjur.at(SIGTERM_CALLS, () => child.process.kill('SIGTERM'));
        const running = client.run({ target: probe.target, calls, concurrency: SIGTERM_CALLS });
        await child.logged('shutting down: NOT_SERVING, draining in-flight checks');
        conjur.release();
        const output = await running;
        return {
          output,
          answersAfterGoaway: probe.answersAfterGoaway(),
          exitCode: await child.exited,
        };
      } finally {
        await probe.close();
      }
    } finally {
      child.process.kill('SIGKILL');
    }
  } finally {
    await conjur.close();
  }
}

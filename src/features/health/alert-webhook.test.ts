// The health monitor's alerts through the 'alert-webhook' circuit, against a local webhook that
// hangs or answers 5xx: once the circuit opens, later messages are dropped at once instead of
// each waiting out the timeout, and every dropped message is counted and logged.
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMemoryCircuitStore, createCircuitRegistry, type CircuitRegistry } from '../../platform/circuit/index.js';
import { createLogger } from '../../platform/log.js';
import { circuitPost } from './alert-webhook.js';
import { createHealthMonitor } from './health-monitor.js';

const POLICY = { failureThreshold: 2, halfOpenAfterMs: 60_000, timeoutMs: 150, retries: 0, retryDelayMs: 1, retryMaxDelayMs: 5 };

describe('alerts through the alert-webhook circuit', () => {
  let hook: Server;
  let url = '';
  let behaviour: 'hang' | '503' | 'ok' = 'hang';
  const received: string[] = [];
  beforeAll(async () => {
    hook = await new Promise<Server>((resolve) => {
      const s = createServer((req, res) => {
        let body = '';
        req.on('data', (c: Buffer) => (body += c));
        req.on('end', () => {
          received.push(body);
          if (behaviour === '503') res.writeHead(503).end();
          else if (behaviour === 'ok') res.writeHead(200).end('ok');
          // 'hang': never answers
        });
      }).listen(0, '127.0.0.1', () => resolve(s));
    });
    url = `http://127.0.0.1:${(hook.address() as { port: number }).port}/hook`;
  });
  afterAll(async () => {
    hook.closeAllConnections();
    await new Promise((r) => hook.close(r));
  });

  /** A monitor whose one check flips at every round (confirm 1): each round is one alert. */
  function flapping(registry: CircuitRegistry, lines: string[]) {
    let up = true;
    return createHealthMonitor({
      checks: [{ name: 'redis', required: false, run: async () => ((up = !up) ? undefined : Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:6390'))) }],
      log: createLogger('info', { write: (l: string) => void lines.push(l) }),
      intervalMs: 0,
      confirm: 1,
      webhookUrl: url,
      post: circuitPost(registry.define('alert-webhook')),
    });
  }

  it('a hung webhook: two messages time out, then the circuit is open and the rest are dropped at once; all counted', async () => {
    behaviour = 'hang';
    const registry = createCircuitRegistry({ store: createMemoryCircuitStore(), log: createLogger('silent'), defaults: POLICY });
    const lines: string[] = [];
    const monitor = flapping(registry, lines);
    const took: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      await monitor.check();
      took.push(performance.now() - t0);
    }
    expect(took[0]).toBeGreaterThanOrEqual(140);
    expect(took[1]).toBeGreaterThanOrEqual(140);
    for (const t of took.slice(2)) expect(t).toBeLessThan(50); // fail fast: no timeout waited
    expect(monitor.stats()).toEqual({ alertsDropped: 5 });
    expect(registry.stats().circuits).toEqual([{ name: 'alert-webhook', failures: 2, rejections: 3 }]);
    expect((await registry.views())[0]).toMatchObject({ state: 'open', lastFailure: 'timed out after 150 ms' });
    expect(lines.filter((l) => l.includes('alert dropped, the alert webhook circuit is open'))).toHaveLength(3);
    expect(lines.filter((l) => l.includes('could not be reached; alert dropped'))).toHaveLength(2);
    await monitor.close();
    await registry.close();
  });

  it('a webhook answering 503 is retried, and delivers once it answers again', async () => {
    behaviour = '503';
    received.length = 0;
    const registry = createCircuitRegistry({ store: createMemoryCircuitStore(), log: createLogger('silent'), defaults: { ...POLICY, failureThreshold: 5, retries: 1 } });
    const monitor = flapping(registry, []);
    await monitor.check();
    expect(received).toHaveLength(2); // first attempt and one retry
    expect(monitor.stats().alertsDropped).toBe(1);
    behaviour = 'ok';
    await monitor.check();
    expect(received).toHaveLength(3);
    expect(JSON.parse(received[2]!)).toEqual({ text: ':large_green_circle: carebase: redis recovered' });
    expect(monitor.stats().alertsDropped).toBe(1);
    expect((await registry.views())[0]).toMatchObject({ state: 'closed', failures: { consecutive: 0, total: 2 } });
    await monitor.close();
    await registry.close();
  });
});

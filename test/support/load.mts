// Continuous HTTPS load through Caddy, for the rollout e2e test and the rollout benchmark:
// concurrent GETs and POSTs with bodies, each request recorded (start, latency, status), so a run can
// be cut into windows (before / during / after a swap) and every failure is listed, not just counted.
// The requests run in a worker thread: a load generator hot enough to keep Caddy busy would otherwise
// starve the test's own event loop, where the fake Bot API answers the app's sendMessage calls, and
// the updates it delivers would slow down for reasons no deploy caused.
import https from 'node:https';
import { randomBytes } from 'node:crypto';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';

export interface LoadTarget {
  domain: string;
  httpsPort: number;
  ca?: string | Buffer;
  connect?: string;
}

/** One kind of request, as data (it crosses into the load's worker thread). */
export interface LoadOp {
  name: string;
  method: string;
  path: string;
  headers?: Record<string, string>;
  /** a fresh body for every request, by kind (BODIES) */
  body?: keyof typeof BODIES;
  /** statuses that count as ok (default: any 2xx) */
  okStatuses?: number[];
}

/** Request bodies by kind: functions cannot cross into the load's worker thread, names can. */
const BODIES = {
  /** a task for the reference app, ~1 KiB: a held POST must arrive whole */
  'task-json': () => JSON.stringify({ title: `load ${randomBytes(4).toString('hex')} ${'x'.repeat(1000)}`.slice(0, 200), note: 'y'.repeat(800) }),
  /** a folder for the lazyflow-layout fixture (test/fixtures/lazyflow-app) */
  'folder-json': () => JSON.stringify({ name: `load ${randomBytes(3).toString('hex')}` }),
} as const;

export interface Sample {
  op: string;
  start: number; // ms since epoch
  ms: number;
  status: number;
  ok: boolean;
  error?: string;
  /**
   * times the request was sent again because the server closed the idle keep-alive connection it went
   * out on before answering anything (Caddy does so on a config reload): what browsers, curl and Node's
   * documented pattern do (RFC 9112 9.3.1); never a request the server began to answer
   */
  resent?: number;
}

export interface LoadHandle {
  /** stop the loops; every request's sample, once they are stopped */
  stop(): Promise<Sample[]>;
}

/** Ops for the reference app: GET /health, GET /tasks and POST /tasks with a JSON body (initData auth). */
export function appOps(auth?: string): LoadOp[] {
  const ops: LoadOp[] = [{ name: 'GET /health', method: 'GET', path: '/health' }];
  if (auth) {
    ops.push({ name: 'GET /tasks', method: 'GET', path: '/tasks', headers: { authorization: auth } });
    ops.push({
      name: 'POST /tasks',
      method: 'POST',
      path: '/tasks',
      headers: { authorization: auth, 'content-type': 'application/json' },
      body: 'task-json',
      okStatuses: [200, 201],
    });
  }
  return ops;
}

const IDLE_CLOSED = Symbol('idle keep-alive connection closed by the server before any answer');

async function request(t: LoadTarget, agent: https.Agent, op: LoadOp, timeoutMs: number): Promise<Sample> {
  const start = Date.now();
  const t0 = performance.now();
  for (let resent = 0; ; resent++) {
    const s = await requestOnce(t, agent, op, timeoutMs, start, t0, resent < 3);
    if (s !== IDLE_CLOSED) return resent ? { ...s, resent } : s;
  }
}

function requestOnce(t: LoadTarget, agent: https.Agent, op: LoadOp, timeoutMs: number, start: number, t0: number, mayResend: boolean): Promise<Sample | typeof IDLE_CLOSED> {
  return new Promise((resolve) => {
    let answered = false;
    const body = op.body ? BODIES[op.body]() : undefined;
    const req = https.request(
      {
        host: t.connect ?? '127.0.0.1',
        port: t.httpsPort,
        servername: t.domain,
        path: op.path,
        method: op.method,
        headers: { host: t.httpsPort === 443 ? t.domain : `${t.domain}:${t.httpsPort}`, ...(op.headers ?? {}), ...(body !== undefined ? { 'content-length': String(Buffer.byteLength(body)) } : {}) },
        ca: t.ca,
        rejectUnauthorized: Boolean(t.ca),
        agent,
        timeout: timeoutMs,
      },
      (res) => {
        answered = true;
        res.resume();
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          const ok = op.okStatuses ? op.okStatuses.includes(status) : status >= 200 && status < 300;
          resolve({ op: op.name, start, ms: performance.now() - t0, status, ok, ...(ok ? {} : { error: `HTTP ${status}` }) });
        });
        res.on('error', (e) => resolve({ op: op.name, start, ms: performance.now() - t0, status: 0, ok: false, error: e.message }));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`timeout ${timeoutMs} ms`)));
    req.on('error', (e: NodeJS.ErrnoException) => {
      if (mayResend && !answered && req.reusedSocket && (e.code === 'ECONNRESET' || e.code === 'EPIPE')) return resolve(IDLE_CLOSED);
      resolve({ op: op.name, start, ms: performance.now() - t0, status: 0, ok: false, error: e.code ?? e.message });
    });
    if (body !== undefined) req.write(body);
    req.end();
  });
}

interface LoadOptions {
  concurrency?: number;
  pauseMs?: number;
  timeoutMs?: number;
}

/** The request loops themselves (inside the load's worker thread). */
function runLoops(t: LoadTarget, ops: LoadOp[], o: LoadOptions) {
  const samples: Sample[] = [];
  const agent = new https.Agent({ keepAlive: true, maxSockets: o.concurrency ?? 6 });
  let running = true;
  const loops = Array.from({ length: o.concurrency ?? 6 }, async (_, w) => {
    let i = w;
    while (running) {
      samples.push(await request(t, agent, ops[i++ % ops.length], o.timeoutMs ?? 60_000));
      if (o.pauseMs) await new Promise((r) => setTimeout(r, o.pauseMs));
    }
  });
  return {
    async stop() {
      running = false;
      await Promise.all(loops);
      agent.destroy();
      return samples;
    },
  };
}

if (!isMainThread && (workerData as { lazyflowLoad?: boolean } | null)?.lazyflowLoad) {
  const { t, ops, o } = workerData as { t: LoadTarget; ops: LoadOp[]; o: LoadOptions };
  const loops = runLoops(t, ops, o);
  parentPort!.once('message', async () => parentPort!.postMessage(await loops.stop()));
}

/** Start `concurrency` loops, each issuing ops round-robin back to back (with an optional pause), in a worker thread. */
export function startLoad(t: LoadTarget, ops: LoadOp[], o: LoadOptions = {}): LoadHandle {
  const worker = new Worker(new URL(import.meta.url), { workerData: { lazyflowLoad: true, t, ops, o } });
  let failed: Error | undefined;
  worker.on('error', (e) => (failed = e as Error));
  return {
    async stop() {
      const got = new Promise<Sample[]>((resolve, reject) => {
        worker.once('message', resolve);
        worker.once('exit', (code) => reject(failed ?? new Error(`the load's worker thread exited (${code}) before reporting`)));
      });
      if (failed) throw failed;
      worker.postMessage('stop');
      const samples = await got;
      await worker.terminate();
      return samples;
    },
  };
}

export function percentile(xs: number[], p: number): number {
  if (!xs.length) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

export interface LoadStats {
  requests: number;
  failed: number;
  maxMs: number;
  p50Ms: number;
  p99Ms: number;
  byOp: Record<string, { requests: number; failed: number; maxMs: number }>;
  failures: Sample[];
  /** requests sent again after the server closed their idle keep-alive connection (see Sample.resent) */
  resent: number;
}

/** Stats of the samples that were in flight during [from, to] (all samples when no window). */
export function stats(samples: Sample[], window?: { from: number; to: number }): LoadStats {
  const xs = window ? samples.filter((s) => s.start <= window.to && s.start + s.ms >= window.from) : samples;
  const byOp: LoadStats['byOp'] = {};
  for (const s of xs) {
    const b = (byOp[s.op] ??= { requests: 0, failed: 0, maxMs: 0 });
    b.requests++;
    if (!s.ok) b.failed++;
    b.maxMs = Math.max(b.maxMs, s.ms);
  }
  const ms = xs.map((s) => s.ms);
  return {
    requests: xs.length,
    failed: xs.filter((s) => !s.ok).length,
    maxMs: Math.max(0, ...ms),
    p50Ms: percentile(ms, 50),
    p99Ms: percentile(ms, 99),
    byOp,
    failures: xs.filter((s) => !s.ok),
    resent: xs.filter((s) => s.resent).length,
  };
}

/** Sample `docker ps` for a compose service every `everyMs`; returns the counts seen. */
export function sampleContainers(count: () => Promise<number>, everyMs = 100): { stop(): Promise<{ at: number; n: number }[]> } {
  const seen: { at: number; n: number }[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      try {
        seen.push({ at: Date.now(), n: await count() });
      } catch {
        /* docker busy: skip this sample */
      }
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return seen;
    },
  };
}

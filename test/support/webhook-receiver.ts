// A local HTTP receiver standing in for an alert webhook (Slack, Discord, ntfy...): records every
// request with its parsed JSON, answers `status` (changeable), and can be stopped and restarted on
// the same port to play a channel that is down.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export type ReceivedHook = { method: string; path: string; headers: http.IncomingHttpHeaders; body: string; json: any };

export interface WebhookReceiver {
  /** http://127.0.0.1:<port> */
  readonly url: string;
  readonly port: number;
  readonly received: ReceivedHook[];
  status: number;
  /** answer the next `times` requests with this status (then `status` again): a channel failing for a while */
  failNext(status: number, times?: number): void;
  stop(): Promise<void>;
  /** listen again on the same port after stop() */
  restart(): Promise<void>;
}

export async function startWebhookReceiver(port = 0): Promise<WebhookReceiver> {
  const received: ReceivedHook[] = [];
  const failures: number[] = [];
  let server: http.Server;
  const r = {
    url: '',
    port: 0,
    received,
    status: 200,
    failNext(status: number, times = 1) {
      for (let i = 0; i < times; i++) failures.push(status);
    },
    async stop() {
      await new Promise<void>((res) => {
        server.closeAllConnections?.();
        server.close(() => res());
      });
    },
    async restart() {
      await listen(r.port);
    },
  };
  const listen = (p: number) =>
    new Promise<void>((res, rej) => {
      server = http.createServer((req, resp) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          const body = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = JSON.parse(body);
          } catch {
            json = undefined;
          }
          received.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers, body, json });
          resp.writeHead(failures.shift() ?? r.status, { 'content-type': 'text/plain' }).end('ok');
        });
      });
      server.once('error', rej);
      server.listen(p, '127.0.0.1', () => {
        r.port = (server.address() as AddressInfo).port;
        r.url = `http://127.0.0.1:${r.port}`;
        res();
      });
    });
  await listen(port);
  return r;
}

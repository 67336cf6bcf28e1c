// HTTPS client for tests: talks to the stack's published port on 127.0.0.1 while verifying the
// certificate for the real domain name against a given root, like `curl --resolve --cacert`.
import https from 'node:https';
import http from 'node:http';
import tls from 'node:tls';

export type Reply = {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  text(): string;
  json<T = any>(): T;
  peerCertificate?: tls.DetailedPeerCertificate;
};

export type RequestOptions = {
  method?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  timeoutMs?: number;
  agent?: https.Agent | http.Agent | false;
  /** address to dial instead of 127.0.0.1 (e.g. ::1) */
  connect?: string;
};

export type Target = { domain: string; httpsPort: number; httpPort: number; ca: Buffer | string };

function toReply(res: http.IncomingMessage, body: Buffer, cert?: tls.DetailedPeerCertificate): Reply {
  return {
    status: res.statusCode ?? 0,
    headers: res.headers,
    body,
    peerCertificate: cert,
    text: () => body.toString('utf8'),
    json: () => JSON.parse(body.toString('utf8')),
  };
}

/** Headers as a browser, grammY's client or Telegram sends them: a body of known size carries its
 * Content-Length (node's http client would otherwise send it chunked, which no real client here does). */
function withLength(t: Target, opts: RequestOptions): Record<string, string> {
  const headers: Record<string, string> = { host: t.domain, ...(opts.headers ?? {}) };
  const named = Object.keys(headers).some((k) => /^(content-length|transfer-encoding)$/i.test(k));
  if (opts.body !== undefined && !named) headers['content-length'] = String(Buffer.byteLength(opts.body));
  return headers;
}

export function httpsRequest(t: Target, path: string, opts: RequestOptions = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: opts.connect ?? '127.0.0.1',
        port: t.httpsPort,
        servername: t.domain,
        path,
        method: opts.method ?? 'GET',
        headers: withLength(t, opts),
        ca: t.ca,
        agent: opts.agent ?? false,
        timeout: opts.timeoutMs ?? 60_000,
      },
      (res) => {
        const cert = (res.socket as tls.TLSSocket).getPeerCertificate?.(true);
        const chunks: Buffer[] = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve(toReply(res, Buffer.concat(chunks), cert)));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`timeout after ${opts.timeoutMs ?? 60_000} ms: ${path}`)));
    req.on('error', reject);
    if (opts.body !== undefined) req.write(opts.body);
    req.end();
  });
}

export function httpRequest(t: Target, path: string, opts: RequestOptions = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port: t.httpPort,
        path,
        method: opts.method ?? 'GET',
        headers: withLength(t, opts),
        agent: false,
        timeout: opts.timeoutMs ?? 30_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve(toReply(res, Buffer.concat(chunks))));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    if (opts.body !== undefined) req.write(opts.body);
    req.end();
  });
}

/** A keep-alive agent for load generators, trusting the stack's root. */
export function keepAliveAgent(t: Target, maxSockets = 16): https.Agent {
  return new https.Agent({ keepAlive: true, maxSockets, ca: t.ca, servername: t.domain });
}

/** Builds a multipart/form-data body with one file field. */
export function multipartFile(field: string, fileName: string, content: Buffer, mime = 'application/octet-stream') {
  const boundary = `----lazyflow${Math.random().toString(16).slice(2)}`;
  const head = Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="${field}"; filename="${fileName}"\r\nContent-Type: ${mime}\r\n\r\n`,
  );
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  return { body: Buffer.concat([head, content, tail]), contentType: `multipart/form-data; boundary=${boundary}` };
}

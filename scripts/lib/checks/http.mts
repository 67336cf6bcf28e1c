// A small HTTP(S) client for smoke and the rollout gates. It dials a given address (default the
// local host, where Caddy publishes its ports) while sending SNI and Host for DOMAIN, like
// `curl --resolve DOMAIN:443:127.0.0.1`. It never throws: transport errors come back as {error}.
import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import type { HttpObs, TlsObs } from './evaluate.mts';

/** What a TLS handshake showed: trust verdict and the leaf's validity, names and issuer. */
function observeTls(sock: tls.TLSSocket): TlsObs {
  const cert = sock.getPeerCertificate?.(false);
  return {
    authorized: sock.authorized,
    authorizationError: sock.authorizationError ? String(sock.authorizationError) : undefined,
    validTo: cert?.valid_to,
    validFrom: cert?.valid_from,
    subjectAltNames: cert?.subjectaltname,
    issuer: cert?.issuer ? [cert.issuer.CN ?? cert.issuer.O].flat()[0] : undefined,
  };
}

export interface Target {
  domain: string;
  httpsPort: number;
  httpPort: number;
  /** address to dial (default 127.0.0.1) */
  connect?: string;
  /** PEM roots to trust; undefined = system + Node's bundled roots */
  ca?: string | string[];
  /** sent with every HTTPS request (the maintenance key while maintenance is on: never over plain HTTP) */
  headers?: Record<string, string>;
}

export interface Req {
  method?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  timeoutMs?: number;
  /** verify the certificate (default false: only the tls check judges the certificate) */
  verify?: boolean;
}

export type HttpResult = HttpObs & { tls?: TlsObs };

/**
 * System trust plus Node's bundled roots, when this Node can read the system store, plus the roots of
 * NODE_EXTRA_CA_CERTS (Node's own way to trust a private CA in every command, as --ca does for one):
 * an explicit `ca` replaces Node's defaults, so the extra roots are added here or never.
 */
export function defaultRoots(): string[] | undefined {
  const getCA = (tls as unknown as { getCACertificates?: (t?: string) => string[] }).getCACertificates;
  if (!getCA) return undefined;
  try {
    return [...new Set([...getCA('bundled'), ...getCA('system'), ...getCA('extra')])];
  } catch {
    return undefined;
  }
}

function hostHeader(domain: string, port: number, defaultPort: number) {
  return port === defaultPort ? domain : `${domain}:${port}`;
}

export function httpsGet(t: Target, path: string, r: Req = {}): Promise<HttpResult> {
  return new Promise((resolve) => {
    const timeoutMs = r.timeoutMs ?? 10_000;
    let settled = false;
    const done = (v: HttpResult) => {
      if (!settled) {
        settled = true;
        resolve(v);
      }
    };
    const req = https.request(
      {
        host: t.connect ?? '127.0.0.1',
        port: t.httpsPort,
        servername: t.domain,
        path,
        method: r.method ?? 'GET',
        headers: { host: hostHeader(t.domain, t.httpsPort, 443), ...(t.headers ?? {}), ...(r.headers ?? {}) },
        ca: t.ca ?? defaultRoots(),
        rejectUnauthorized: r.verify ?? false,
        agent: false,
        timeout: timeoutMs,
      },
      (res) => {
        const tlsObs = observeTls(res.socket as tls.TLSSocket);
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => done({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8'), tls: tlsObs }));
        res.on('error', (e) => done({ status: 0, headers: {}, body: '', error: e.message }));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (e: NodeJS.ErrnoException) => done({ status: 0, headers: {}, body: '', error: e.code ? `${e.code}: ${e.message}` : e.message }));
    if (r.body !== undefined) req.write(r.body);
    req.end();
  });
}

export function httpGet(t: Target, path: string, r: Req = {}): Promise<HttpResult> {
  return new Promise((resolve) => {
    const timeoutMs = r.timeoutMs ?? 10_000;
    const req = http.request(
      {
        host: t.connect ?? '127.0.0.1',
        port: t.httpPort,
        path,
        method: r.method ?? 'GET',
        headers: { host: hostHeader(t.domain, t.httpPort, 80), ...(r.headers ?? {}) },
        agent: false,
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (e: NodeJS.ErrnoException) => resolve({ status: 0, headers: {}, body: '', error: e.code ? `${e.code}: ${e.message}` : e.message }));
    if (r.body !== undefined) req.write(r.body);
    req.end();
  });
}

/** TLS handshake with verification; reports the certificate whether or not it verifies. */
export function tlsProbe(t: Target, timeoutMs = 10_000): Promise<TlsObs> {
  return new Promise((resolve) => {
    const sock = tls.connect({
      host: t.connect ?? '127.0.0.1',
      port: t.httpsPort,
      servername: t.domain,
      ca: t.ca ?? defaultRoots(),
      rejectUnauthorized: false,
      ALPNProtocols: ['http/1.1'],
    });
    const timer = setTimeout(() => {
      sock.destroy();
      resolve({ authorized: false, error: `no TLS handshake within ${timeoutMs} ms` });
    }, timeoutMs);
    sock.once('secureConnect', () => {
      clearTimeout(timer);
      resolve(observeTls(sock));
      sock.end();
    });
    sock.once('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve({ authorized: false, error: e.code ? `${e.code}: ${e.message}` : e.message });
    });
  });
}

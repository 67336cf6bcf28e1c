// Pebble needs an HTTPS listener certificate of its own: a throwaway CA and a leaf for "pebble".
import { execFileSync } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export function writePebbleConfig(dir: string): void {
  const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  run('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
    '-subj', '/CN=lazyflow test Pebble listener CA', '-keyout', 'listener-ca.key', '-out', 'listener-ca.pem');
  run('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', '/CN=pebble',
    '-keyout', 'key.pem', '-out', 'pebble.csr');
  writeFileSync(join(dir, 'san.ext'), 'subjectAltName=DNS:pebble,DNS:localhost,IP:127.0.0.1\n');
  run('x509', '-req', '-in', 'pebble.csr', '-CA', 'listener-ca.pem', '-CAkey', 'listener-ca.key', '-CAcreateserial',
    '-days', '2', '-extfile', 'san.ext', '-out', 'cert.pem');
  writeFileSync(
    join(dir, 'pebble-config.json'),
    JSON.stringify({
      pebble: {
        listenAddress: '0.0.0.0:14000',
        managementListenAddress: '0.0.0.0:15000',
        certificate: '/etc/pebble/cert.pem',
        privateKey: '/etc/pebble/key.pem',
        httpPort: 80,
        tlsPort: 443,
        ocspResponderURL: '',
        externalAccountBindingRequired: false,
      },
    }, null, 2),
  );
  for (const f of ['key.pem', 'listener-ca.key']) chmodSync(join(dir, f), 0o600);
}

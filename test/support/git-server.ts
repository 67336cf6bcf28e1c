// "GitHub" for the adopter guide: a real OpenSSH server in a container (the sshd stand-in image, user
// git) serving bare repositories over SSH. Keys are added as GitHub adds them: a user's key may push,
// a deploy key may only fetch (anything but git-upload-pack is refused).
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SSHD_IMAGE, waitBanner } from './offsite-backends.ts';
import { freePorts } from './ports.ts';
import { mustRun, run } from './run.ts';

const GIT_UID = 1002; // the git user of test/standins/sshd/Dockerfile

export type GitServer = {
  port: number;
  /** the server's ed25519 host key, "ssh-ed25519 AAAA..." (what GitHub publishes for its own) */
  hostKey: string;
  /** ssh URL of a repository: ssh://git@127.0.0.1:<port>/srv/git/<name>.git */
  url(name: string): string;
  /** a bare repository on the server, from a local repository */
  pushBare(name: string, from: string): Promise<void>;
  /** a key that may fetch and push (a user's key) */
  addUserKey(publicKey: string): void;
  /** a key that may only fetch (a deploy key without write access) */
  addDeployKey(publicKey: string): void;
  /** GIT_SSH_COMMAND for a client holding `key`, which pins the server's key under the name `alias`
   * in `knownHosts` as the ssh client of a machine pins github.com */
  sshCommand(o: { key: string; knownHosts: string; alias: string }): string;
  destroy(): Promise<void>;
};

export async function startGitServer(base: string): Promise<GitServer> {
  const [port] = await freePorts(1);
  const keysDir = join(base, 'authorized_keys');
  const reposDir = join(base, 'repos');
  mkdirSync(keysDir, { recursive: true });
  mkdirSync(reposDir, { recursive: true });
  chmodSync(keysDir, 0o755);
  chownSync(reposDir, GIT_UID, GIT_UID);
  const keysFile = join(keysDir, 'git');
  writeFileSync(keysFile, '');
  const keys: string[] = [];
  const writeKeys = () => writeFileSync(keysFile, `${keys.join('\n')}\n`, { mode: 0o644 });
  const name = `lzf-e2e-git-${randomBytes(3).toString('hex')}`;
  await mustRun('docker', ['run', '-d', '--name', name, '-p', `127.0.0.1:${port}:22`,
    '-v', `${keysDir}:/etc/ssh/authorized_keys:ro`, '-v', `${reposDir}:/srv/git`, SSHD_IMAGE]);
  await waitBanner(port);
  const scan = await mustRun('ssh-keyscan', ['-p', String(port), '-t', 'ed25519', '127.0.0.1']);
  const hostKey = scan.split('\n').map((l) => /(ssh-ed25519 \S+)/.exec(l)?.[1]).find(Boolean);
  if (!hostKey) throw new Error(`ssh-keyscan found no ed25519 key on port ${port}: ${scan}`);
  const server: GitServer = {
    port,
    hostKey,
    url: (repo) => `ssh://git@127.0.0.1:${port}/srv/git/${repo}.git`,
    async pushBare(repo, from) {
      const dir = join(reposDir, `${repo}.git`);
      await mustRun('git', ['clone', '-q', '--bare', from, dir]);
      await mustRun('chown', ['-R', `${GIT_UID}:${GIT_UID}`, dir]);
    },
    addUserKey(publicKey) {
      keys.push(`restrict,command="exec git-shell -c \\"$SSH_ORIGINAL_COMMAND\\"" ${publicKey.trim()}`);
      writeKeys();
    },
    addDeployKey(publicKey) {
      keys.push(`restrict,command="case \\"$SSH_ORIGINAL_COMMAND\\" in git-upload-pack*) exec git-shell -c \\"$SSH_ORIGINAL_COMMAND\\" ;; *) echo 'ERROR: the deploy key is read-only' >&2; exit 1 ;; esac" ${publicKey.trim()}`);
      writeKeys();
    },
    sshCommand: ({ key, knownHosts, alias }) =>
      `ssh -F /dev/null -i ${key} -o IdentitiesOnly=yes -o UserKnownHostsFile=${knownHosts} -o HostKeyAlias=${alias} -o StrictHostKeyChecking=yes -o BatchMode=yes`,
    async destroy() {
      await run('docker', ['rm', '-f', '-v', name]);
      rmSync(base, { recursive: true, force: true });
    },
  };
  return server;
}

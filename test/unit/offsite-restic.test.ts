// restic argv/env builders, offsite config judgement and the offsite retention decision: pure data.
import { describe, expect, it } from 'vitest';
import { backupArgs, checkArgs, forgetArgs, parseBackupSummary, parseResticVersion, parseSnapshots, resticEnv, restoreArgs, snapshotsArgs, snapshotTags, type ResticTarget } from '../../scripts/lib/commands/restic.mts';
import { offsiteProblems, repositoryHasCredentials, type FileObservation } from '../../scripts/lib/offsite/config.mts';
import { offsiteDecisions, offsiteSource, pickSnapshot, sideBySide } from '../../scripts/lib/offsite/offsite.mts';
import { resticErrorLine, redact } from '../../scripts/lib/offsite/runner.mts';
import { checkOffsite } from '../../scripts/lib/checks/preflight.mts';

const target: ResticTarget = {
  repository: 'rest:http://127.0.0.1:8000/repo',
  passwordFile: '/root/lazyflow-offsite/pw',
  cacheDir: '/srv/lazyflow/offsite/cache',
  host: 'lazyflow',
  credentials: { RESTIC_REST_USERNAME: 'u', RESTIC_REST_PASSWORD: 'sekret-rest-pass' },
  options: [],
};

describe('restic argv builders', () => {
  it('backup: one snapshot of the backup dir, tagged, at the backup time, no secret in argv', () => {
    const argv = backupArgs(target, { dir: '/srv/lazyflow/backups/20261201T031700Z-cron', tags: { backupId: '20261201T031700Z-cron', reason: 'cron', release: '3f2a9c1d2e4b', schema: 3 }, time: new Date('2026-12-01T03:17:00.123Z') });
    expect(argv).toEqual([
      'backup', '--json', '--host', 'lazyflow',
      '--tag', 'lazyflow-backup', '--tag', 'id=20261201T031700Z-cron', '--tag', 'reason=cron', '--tag', 'release=3f2a9c1d2e4b', '--tag', 'schema=3',
      '--time', '2026-12-01 03:17:00', '--retry-lock', '2m',
      '/srv/lazyflow/backups/20261201T031700Z-cron',
    ]);
    expect(argv.join(' ')).not.toContain('sekret');
    expect(argv.join(' ')).not.toContain(target.passwordFile);
  });
  it('tags never carry a comma (restic splits --tag on commas); an unknown release is said so', () => {
    expect(snapshotTags({ backupId: 'x', reason: 'a,b', release: null, schema: 0 })).toEqual(['lazyflow-backup', 'id=x', 'reason=a_b', 'release=unknown', 'schema=0']);
  });
  it('snapshots, forget, check, restore', () => {
    expect(snapshotsArgs(target)).toEqual(['snapshots', '--json', '--no-lock', '--host', 'lazyflow', '--tag', 'lazyflow-backup']);
    expect(forgetArgs(target, ['abc', 'def'])).toEqual(['forget', '--json', '--retry-lock', '2m', 'abc', 'def']);
    expect(() => forgetArgs(target, [])).toThrow();
    expect(checkArgs(target, { readDataSubset: '5%' })).toEqual(['check', '--retry-lock', '2m', '--read-data-subset', '5%']);
    expect(restoreArgs({ ...target, options: ['sftp.args=-i /k'] }, { snapshotId: 'abcd', path: '/srv/x/backups/id', target: '/srv/x/.f' })).toEqual(['restore', '--json', '--no-lock', '-o', 'sftp.args=-i /k', 'abcd:/srv/x/backups/id', '--target', '/srv/x/.f']);
  });
  it('env: ours replaces any RESTIC_*/AWS_* of the caller; credentials only here', () => {
    const env = resticEnv(target, { PATH: '/bin', RESTIC_PASSWORD: 'leak', AWS_SECRET_ACCESS_KEY: 'leak2', HOME: '/root' });
    expect(env.RESTIC_PASSWORD).toBeUndefined();
    expect(env.AWS_SECRET_ACCESS_KEY).toBeUndefined();
    expect(env).toMatchObject({ PATH: '/bin', HOME: '/root', RESTIC_REPOSITORY: target.repository, RESTIC_PASSWORD_FILE: target.passwordFile, RESTIC_CACHE_DIR: target.cacheDir, TZ: 'UTC', RESTIC_REST_PASSWORD: 'sekret-rest-pass' });
  });
});

describe('parsing restic output', () => {
  it('snapshots: tags become fields, newest first', () => {
    const out = JSON.stringify([
      { id: 'a'.repeat(64), short_id: 'aaaaaaaa', time: '2026-11-30T03:17:00Z', host: 'lazyflow', paths: ['/s/backups/20261130T031700Z-cron'], tags: ['lazyflow-backup', 'id=20261130T031700Z-cron', 'reason=cron', 'release=abc', 'schema=2'], summary: { total_bytes_processed: 1000, data_added_packed: 10 } },
      { id: 'b'.repeat(64), short_id: 'bbbbbbbb', time: '2026-12-01T03:17:00Z', host: 'lazyflow', paths: ['/s/backups/20261201T031700Z-cron'], tags: ['lazyflow-backup', 'id=20261201T031700Z-cron', 'reason=cron', 'release=abc', 'schema=3'] },
    ]);
    const s = parseSnapshots(out);
    expect(s.map((x) => x.backupId)).toEqual(['20261201T031700Z-cron', '20261130T031700Z-cron']);
    expect(s[1]).toMatchObject({ reason: 'cron', release: 'abc', schema: 2, bytes: 1000, dataAdded: 10, path: '/s/backups/20261130T031700Z-cron' });
    expect(pickSnapshot(s, 'latest')?.shortId).toBe('bbbbbbbb');
    expect(pickSnapshot(s, 'aaaaaaaa')?.backupId).toBe('20261130T031700Z-cron');
    expect(pickSnapshot(s, '20261130T031700Z-cron')?.shortId).toBe('aaaaaaaa');
  });
  it('backup summary line among status lines', () => {
    const out = ['{"message_type":"status","percent_done":0.5}', '{"message_type":"summary","snapshot_id":"ff00","data_added":2048,"data_added_packed":1024,"total_bytes_processed":9999,"total_duration":1.5}', ''].join('\n');
    expect(parseBackupSummary(out)).toEqual({ snapshotId: 'ff00', dataAdded: 2048, dataAddedPacked: 1024, totalBytes: 9999, seconds: 1.5 });
    expect(parseBackupSummary('{"message_type":"status"}')).toBeNull();
  });
  it('version', () => {
    expect(parseResticVersion('restic 0.19.1 compiled with go1.26.4 on linux/amd64')).toEqual([0, 19, 1]);
  });
  it('the error line: Fatal first, secrets redacted', () => {
    expect(resticErrorLine('repository abc opened\nFatal: unable to open config file: Stat: connection refused\n')).toBe('unable to open config file: Stat: connection refused');
    expect(resticErrorLine('Save(<data/1>) returned error, retrying after 1s: Post "http://u:sekret-rest-pass@h/": connection refused', ['sekret-rest-pass'])).not.toContain('sekret');
    expect(redact('a sekret b', ['sekret'])).toBe('a *** b');
  });
});

describe('offsite config judgement (preflight names every bad key)', () => {
  const files: Record<string, FileObservation> = {
    '/root/o/pw': { exists: true, isFile: true, mode: 0o600 },
    '/root/o/pw-open': { exists: true, isFile: true, mode: 0o644 },
    '/srv/lazyflow/pw': { exists: true, isFile: true, mode: 0o600 },
    '/root/o/key': { exists: true, isFile: true, mode: 0o600 },
    '/root/o/known_hosts': { exists: true, isFile: true, mode: 0o644 },
  };
  const obs = (p: string) => files[p] ?? { exists: false };
  const keys = (v: Record<string, string>) => offsiteProblems(v, '/srv/lazyflow', '.env.prod', obs, '/repo').map((p) => p.key);
  const table: [string, Record<string, string>, string[]][] = [
    ['offsite off: nothing to say', {}, []],
    ['a password file without a repository', { OFFSITE_PASSWORD_FILE: '/root/o/pw' }, ['OFFSITE_REPOSITORY']],
    ['rest, all good', { OFFSITE_REPOSITORY: 'rest:https://b.example.net/r', OFFSITE_PASSWORD_FILE: '/root/o/pw' }, []],
    ['missing password file key', { OFFSITE_REPOSITORY: 'rest:https://b/r' }, ['OFFSITE_PASSWORD_FILE']],
    ['password file absent', { OFFSITE_REPOSITORY: 'rest:https://b/r', OFFSITE_PASSWORD_FILE: '/root/o/none' }, ['OFFSITE_PASSWORD_FILE']],
    ['password file readable by others', { OFFSITE_REPOSITORY: 'rest:https://b/r', OFFSITE_PASSWORD_FILE: '/root/o/pw-open' }, ['OFFSITE_PASSWORD_FILE']],
    ['password file inside STATE_DIR', { OFFSITE_REPOSITORY: 'rest:https://b/r', OFFSITE_PASSWORD_FILE: '/srv/lazyflow/pw' }, ['OFFSITE_PASSWORD_FILE']],
    ['relative password file', { OFFSITE_REPOSITORY: 'rest:https://b/r', OFFSITE_PASSWORD_FILE: 'pw' }, ['OFFSITE_PASSWORD_FILE']],
    ['user:pass in a REST URL', { OFFSITE_REPOSITORY: 'rest:https://u:p@b/r', OFFSITE_PASSWORD_FILE: '/root/o/pw' }, ['OFFSITE_REPOSITORY']],
    ['s3 without keys', { OFFSITE_REPOSITORY: 's3:https://s3/b/r', OFFSITE_PASSWORD_FILE: '/root/o/pw' }, ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY']],
    ['sftp without key', { OFFSITE_REPOSITORY: 'sftp:u@h:/r', OFFSITE_PASSWORD_FILE: '/root/o/pw', OFFSITE_SFTP_KNOWN_HOSTS: '/root/o/known_hosts' }, ['OFFSITE_SFTP_KEY']],
    ['sftp with key and pinned host key', { OFFSITE_REPOSITORY: 'sftp:u@h:/r', OFFSITE_PASSWORD_FILE: '/root/o/pw', OFFSITE_SFTP_KEY: '/root/o/key', OFFSITE_SFTP_KNOWN_HOSTS: '/root/o/known_hosts' }, []],
    ['sftp without a pinned host key (never trusted on first use)', { OFFSITE_REPOSITORY: 'sftp:u@h:/r', OFFSITE_PASSWORD_FILE: '/root/o/pw', OFFSITE_SFTP_KEY: '/root/o/key' }, ['OFFSITE_SFTP_KNOWN_HOSTS']],
    ['sftp known_hosts file absent', { OFFSITE_REPOSITORY: 'sftp:u@h:/r', OFFSITE_PASSWORD_FILE: '/root/o/pw', OFFSITE_SFTP_KEY: '/root/o/key', OFFSITE_SFTP_KNOWN_HOSTS: '/root/o/none' }, ['OFFSITE_SFTP_KNOWN_HOSTS']],
    ['local repository inside STATE_DIR', { OFFSITE_REPOSITORY: '/srv/lazyflow/restic', OFFSITE_PASSWORD_FILE: '/root/o/pw' }, ['OFFSITE_REPOSITORY']],
    ['rest user without password file', { OFFSITE_REPOSITORY: 'rest:https://b/r', OFFSITE_PASSWORD_FILE: '/root/o/pw', OFFSITE_REST_USERNAME: 'u' }, ['OFFSITE_REST_PASSWORD_FILE']],
    ['bad timeout', { OFFSITE_REPOSITORY: 'rest:https://b/r', OFFSITE_PASSWORD_FILE: '/root/o/pw', OFFSITE_TIMEOUT: 'soon' }, ['OFFSITE_TIMEOUT']],
  ];
  it.each(table)('%s', (_name, values, expected) => {
    expect(keys(values)).toEqual(expected);
  });
  it('credentials in URLs are recognised', () => {
    expect(repositoryHasCredentials('rest:http://u:p@127.0.0.1:8000/r')).toBe(true);
    expect(repositoryHasCredentials('rest:http://127.0.0.1:8000/r')).toBe(false);
    expect(repositoryHasCredentials('sftp:user@host:/r')).toBe(false);
  });
  it('preflight: restic missing or too old fails, and only when offsite is on', () => {
    expect(checkOffsite(false, [], null, 'f')).toEqual([]);
    const old = checkOffsite(true, [], { bin: 'restic', ok: true, version: 'restic 0.14.0 compiled with go1.19' }, 'f');
    expect(old.find((r) => r.name === 'restic')?.ok).toBe(false);
    expect(checkOffsite(true, [], { bin: 'restic', ok: false, error: 'spawn restic ENOENT' }, 'f').find((r) => r.name === 'restic')?.ok).toBe(false);
    expect(checkOffsite(true, [], { bin: 'restic', ok: true, version: 'restic 0.19.1 compiled' }, 'f').every((r) => r.ok)).toBe(true);
  });
});

describe('offsite retention decision', () => {
  const snap = (backupId: string, iso: string) => ({ snapshotId: `${backupId}-snap`, shortId: backupId.slice(0, 8), time: new Date(iso), backupId, reason: 'cron', release: null, schema: 1, path: '/x', bytes: null, dataAdded: null });
  it('same flags as local; the newest and the journal-named backups are kept', () => {
    const snaps = [snap('d5', '2026-12-05T03:00:00Z'), snap('d4', '2026-12-04T03:00:00Z'), snap('d3', '2026-12-03T03:00:00Z'), snap('d2', '2026-12-02T03:00:00Z'), snap('d1', '2026-12-01T03:00:00Z')];
    const d = offsiteDecisions(snaps, { last: 1 }, ['d2']);
    expect(d.filter((x) => x.keep).map((x) => x.id)).toEqual(['d5', 'd2']);
    expect(d.find((x) => x.id === 'd3')?.snapshotId).toBe('d3-snap');
    // keep-daily 2: the newest two days
    expect(offsiteDecisions(snaps, { daily: 2 }, []).filter((x) => x.keep).map((x) => x.id)).toEqual(['d5', 'd4']);
  });
  it('offsite: sources', () => {
    expect(offsiteSource('latest')).toBeNull();
    expect(offsiteSource('offsite:latest')).toBe('latest');
    expect(offsiteSource('offsite:20261201T031700Z-cron')).toBe('20261201T031700Z-cron');
    expect(() => offsiteSource('offsite:')).toThrow(/offsite:latest/);
    expect(() => offsiteSource('offsite:../x')).toThrow();
  });
  it('side by side: a local backup missing offsite and an offsite-only one', () => {
    const rows = sideBySide([], [snap('20261201T031700Z-cron', '2026-12-01T03:17:00Z')]);
    expect(rows).toHaveLength(1);
    expect(rows[0].local).toBeNull();
    expect(rows[0].offsite?.snapshotId).toBe('20261201T031700Z-cron-snap');
  });
});

describe('restic --json errors', () => {
  it('the exit_error object becomes its message line', () => {
    const stderr = '{"message_type":"exit_error","code":1,"message":"Fatal: unable to open config file: Stat: connection refused\\nIs there a repository at the following location?"}\n';
    expect(resticErrorLine(stderr)).toBe('unable to open config file: Stat: connection refused');
  });
});

describe('a damaged pack: the line names the damage, not only a count (restic 0.19.1 output)', () => {
  const pack = 'd6f5532cb12bd913c86d3d4576af80fc360425172827fad3ff8c5a3872e2c529';
  it('restore --json: "There were 2 errors" gets the first error it counts', () => {
    const stderr = [
      `{"message_type":"error","error":{"message":"decrypting blob \\u003cdata/f220fff3\\u003e from pack ${pack} failed: ciphertext verification failed"},"during":"restore","item":"/b/lazyflow.db"}`,
      '{"message_type":"error","error":{"message":"lchown /t/b/lazyflow.db: no such file or directory"},"during":"restore","item":"/b/lazyflow.db"}',
      '{"message_type":"exit_error","code":1,"message":"Fatal: There were 2 errors"}',
    ].join('\n');
    expect(resticErrorLine(stderr)).toBe('There were 2 errors: decrypting blob <data/f220fff3> from pack d6f5532c failed: ciphertext verification failed');
  });
  it('check: "repository contains errors" gets the damaged pack', () => {
    const stderr = [
      `pack ${pack} contains 2 errors: [blob 6a0a6b6deee27c91093b2ac74dcf990ac1ed39e0c669dc5e076018f57b422933: decrypting blob <data/6a0a6b6d> from pack ${pack} failed: ciphertext verification failed unexpected pack id 758fa3d0dcea5e0069a31a87dbd28d90130565c8587de7ff2196293da918c1f3]`,
      '',
      'The repository contains damaged pack files. These damaged files must be removed to repair the repository.',
      `restic repair packs ${pack}`,
      'Fatal: repository contains errors',
    ].join('\n');
    expect(resticErrorLine(stderr)).toBe('repository contains errors: pack d6f5532c contains 2 errors: [blob 6a0a6b6d: decrypting blob <data/6a0a6b6d> from pack d6f5532c failed: ciphertext verification failed unexpected pack id 758fa3d0]');
  });
  it('a run interrupted at OFFSITE_TIMEOUT: the backend error restic retried on, not its "context canceled"', () => {
    const stderr = [
      'Stat(<config/>) returned error, retrying after 1.173219875s: Head "http://:***@127.0.0.1:38231/x/config": dial tcp 127.0.0.1:38231: connect: connection refused',
      'Stat(<config/>) returned error, retrying after 3.773770994s: Head "http://:***@127.0.0.1:38231/x/config": dial tcp 127.0.0.1:38231: connect: connection refused',
      'signal interrupt received, cleaning up ',
      '{"message_type":"exit_error","code":130,"message":"Fatal: unable to open config file: context canceled\\nrest:http://127.0.0.1:38231/x/"}',
    ].join('\n');
    expect(resticErrorLine(stderr, [], { interrupted: true })).toBe('Stat(<config/>) failed: dial tcp 127.0.0.1:38231: connect: connection refused');
    expect(resticErrorLine(stderr)).toBe('unable to open config file: context canceled');
  });
  it('a Fatal line that says what is wrong stays as it is', () => {
    expect(resticErrorLine('Load(<data/1>) failed: x\nFatal: unable to open config file: Stat: connection refused')).toBe('unable to open config file: Stat: connection refused');
  });
});

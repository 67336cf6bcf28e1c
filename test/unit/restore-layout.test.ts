// The STATE_DIR layout verdicts (preflight, and restore before it stops anything): observed
// filesystem types, mount points and devices in, pass/warn/fail out, each failure naming the path
// and the fix.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkStateLayout, isSharedFs, observeStateLayout, type LayoutObservation, type PathObservation } from '../../scripts/lib/checks/preflight.mts';

const p = (path: string, over: Partial<PathObservation> = {}): PathObservation => ({ path, exists: true, mountPoint: '/', fsType: 'ext4', dev: 2049, ...over });
const layout = (over: Partial<LayoutObservation> = {}): LayoutObservation => ({
  root: p('/srv/state'), data: p('/srv/state/data'), uploads: p('/srv/state/uploads'), backups: p('/srv/state/backups'), ...over,
});
const failures = (o: LayoutObservation) => checkStateLayout(o).filter((r) => !r.ok);

describe('checkStateLayout', () => {
  it('a plain local layout passes', () => {
    const r = checkStateLayout(layout());
    expect(r.every((x) => x.ok)).toBe(true);
    expect(r.map((x) => x.name)).toEqual(['state dir layout']);
  });

  it('a STATE_DIR that is itself a mount point is fine (renames stay inside it)', () => {
    const m = { mountPoint: '/srv/state', dev: 77 };
    expect(failures(layout({ root: p('/srv/state', m), data: p('/srv/state/data', m), uploads: p('/srv/state/uploads', m), backups: p('/srv/state/backups', m) }))).toEqual([]);
  });

  for (const item of ['data', 'uploads'] as const) {
    it(`${item}/ as its own mount point is refused, naming the path and the fix`, () => {
      const f = failures(layout({ [item]: p(`/srv/state/${item}`, { mountPoint: `/srv/state/${item}`, dev: 99 }) }));
      expect(f).toHaveLength(1);
      expect(f[0].message).toContain(`/srv/state/${item} is its own mount point`);
      expect(f[0].message).toMatch(/rename, which cannot cross filesystems/);
      expect(f[0].fix).toMatch(/mount the filesystem at STATE_DIR/);
      expect(f[0].file).toBe(`/srv/state/${item}`);
    });
    it(`${item}/ on another device (a bind mount whose mount point we did not match) is refused too`, () => {
      expect(failures(layout({ [item]: p(`/srv/state/${item}`, { dev: 5 }) }))).toHaveLength(1);
    });
  }

  it('a missing data/ (first deploy) is not judged', () => {
    expect(failures(layout({ data: p('/srv/state/data', { exists: false, dev: NaN }) }))).toEqual([]);
  });

  for (const fsType of ['nfs', 'nfs4', 'cifs', 'smb3', '9p', 'fuse.sshfs', 'fuse', 'virtiofs', 'drvfs']) {
    it(`STATE_DIR on ${fsType} is refused (SQLite locking)`, () => {
      const f = failures(layout({ root: p('/srv/state', { fsType, mountPoint: '/srv' }) }));
      expect(f.map((x) => x.name)).toContain('state dir filesystem');
      expect(f.find((x) => x.name === 'state dir filesystem')!.message).toContain(`/srv/state is on ${fsType}`);
      expect(f.find((x) => x.name === 'state dir filesystem')!.fix).toMatch(/local filesystem/);
    });
  }

  it('local filesystems are not "shared"', () => {
    for (const t of ['ext4', 'xfs', 'btrfs', 'zfs', 'tmpfs', 'overlay']) expect(isSharedFs(t), t).toBe(false);
  });

  it('Docker Desktop is refused whatever the filesystem looks like from here', () => {
    const f = failures(layout({ dockerOperatingSystem: 'Docker Desktop' }));
    expect(f).toHaveLength(1);
    expect(f[0].message).toMatch(/Docker Desktop/);
    expect(f[0].fix).toMatch(/Linux host with Docker Engine/);
  });

  it('backups/ on a filesystem without hard links is refused; on another local filesystem it is a warning', () => {
    const vfat = failures(layout({ backups: p('/srv/state/backups', { fsType: 'vfat', mountPoint: '/srv/state/backups', dev: 8 }) }));
    expect(vfat).toHaveLength(1);
    expect(vfat[0].message).toMatch(/\/srv\/state\/backups is on vfat/);
    const other = checkStateLayout(layout({ backups: p('/srv/state/backups', { fsType: 'xfs', mountPoint: '/mnt/big', dev: 8 }) }));
    expect(other.filter((r) => !r.ok)).toEqual([]);
    expect(other.find((r) => r.level === 'warn')?.message).toMatch(/drill copies uploads instead of hard-linking/);
  });
});

describe('observeStateLayout on this machine', () => {
  it('a plain temp STATE_DIR passes', () => {
    const root = mkdtempSync(join(tmpdir(), 'layout-'));
    try {
      for (const d of ['data', 'uploads', 'backups']) mkdirSync(join(root, d));
      const o = observeStateLayout({ root, data: join(root, 'data'), uploads: join(root, 'uploads'), backups: join(root, 'backups') });
      expect(checkStateLayout(o).filter((r) => !r.ok)).toEqual([]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  // a real mount on data/: only root can make one
  it.skipIf(process.getuid?.() !== 0)('a tmpfs mounted on data/ is seen and refused', () => {
    const root = mkdtempSync(join(tmpdir(), 'layout-'));
    const data = join(root, 'data');
    for (const d of ['data', 'uploads', 'backups']) mkdirSync(join(root, d));
    const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', data]);
    try {
      expect(m.status, String(m.stderr)).toBe(0);
      const o = observeStateLayout({ root, data, uploads: join(root, 'uploads'), backups: join(root, 'backups') });
      expect(o.data.fsType).toBe('tmpfs');
      const f = checkStateLayout(o).filter((r) => !r.ok);
      expect(f.map((r) => r.name)).toEqual(['state dir data']);
      expect(f[0].message).toContain(`${data} is its own mount point`);
    } finally {
      spawnSync('umount', [data]);
      rmSync(root, { recursive: true, force: true });
    }
  });
});

// Smoke's hardening check as a table: `docker inspect` facts of the app and Caddy containers in,
// pass or fail naming every missing protection out.
import { describe, expect, it } from 'vitest';
import { evalHardening, type HardeningObs } from '../../scripts/lib/checks/hardening.mts';

// as Docker reports the stack that docker-compose.yml declares
const app: HardeningObs = { service: 'app', readonlyRootfs: true, privileged: false, capDrop: ['ALL'], capAdd: null, securityOpt: ['no-new-privileges:true'], user: 'bun' };
const caddy: HardeningObs = { service: 'caddy', readonlyRootfs: true, privileged: false, capDrop: ['ALL'], capAdd: ['CAP_NET_BIND_SERVICE'], securityOpt: ['no-new-privileges:true'], user: '' };

describe('smoke hardening', () => {
  it('the stack as declared passes, and says what it found', () => {
    expect(evalHardening([app, caddy])).toEqual({
      status: 'pass',
      detail: 'app: read-only root, no capabilities, no-new-privileges, user bun; caddy: read-only root, only NET_BIND_SERVICE, no-new-privileges',
    });
  });

  const cases: [string, HardeningObs, RegExp][] = [
    ['app with a writable root', { ...app, readonlyRootfs: false }, /^app: root filesystem writable/],
    ['app privileged', { ...app, privileged: true }, /^app: privileged/],
    ['app keeps its capabilities', { ...app, capDrop: null }, /^app: capabilities not dropped/],
    ['app given a capability', { ...app, capAdd: ['NET_ADMIN'] }, /^app: extra capabilities NET_ADMIN/],
    ['app without no-new-privileges', { ...app, securityOpt: [] }, /^app: new privileges allowed/],
    ['app as root', { ...app, user: '' }, /^app: runs as root \(user ""\)/],
    ['app as uid 0', { ...app, user: '0:0' }, /^app: runs as root \(user "0:0"\)/],
    ['caddy with NET_ADMIN as well', { ...caddy, capAdd: ['NET_BIND_SERVICE', 'NET_ADMIN'] }, /^caddy: extra capabilities NET_ADMIN/],
    ['caddy with a writable root', { ...caddy, readonlyRootfs: false }, /^caddy: root filesystem writable/],
    ['no caddy container', { service: 'caddy', error: 'no container' }, /^caddy: no container/],
  ];
  it.each(cases)('%s fails, naming it', (_name, bad, detail) => {
    const list = bad.service === 'app' ? [bad, caddy] : [app, bad];
    const v = evalHardening(list);
    expect(v.status).toBe('fail');
    expect(v.detail).toMatch(detail);
    expect(v.detail).toMatch(/node scripts\/rollout\.mts --config \.env\.prod\)$/);
  });

  it('several gaps of one container are all named', () => {
    expect(evalHardening([{ ...app, readonlyRootfs: false, securityOpt: null, user: 'root' }, caddy]).detail).toMatch(/^app: root filesystem writable \(read_only: true\), new privileges allowed \(security_opt: no-new-privileges:true\), runs as root \(user "root"\) \(/);
  });
});

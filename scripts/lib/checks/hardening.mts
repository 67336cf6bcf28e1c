// Smoke's hardening check, pure: the app and Caddy containers run with the least privilege
// docker-compose.yml declares, read back from `docker inspect` of the containers that run. A
// container started another way (a hand-made `docker run`, an override file, an edited compose file)
// that lost it fails here, naming what is missing.
import type { Verdict } from './evaluate.mts';

/** the part of `docker inspect` this check reads */
export interface HardeningObs {
  service: string;
  /** no container of the service to judge */
  error?: string;
  readonlyRootfs?: boolean;
  privileged?: boolean;
  capDrop?: string[] | null;
  capAdd?: string[] | null;
  securityOpt?: string[] | null;
  /** Config.User ('' = root) */
  user?: string;
}

/** what each service may have: Caddy needs to bind :80/:443, the app needs no capability and no root */
export const HARDENING: Record<string, { capAdd: string[]; nonRoot: boolean }> = {
  app: { capAdd: [], nonRoot: true },
  caddy: { capAdd: ['NET_BIND_SERVICE'], nonRoot: false },
};

const capName = (c: string) => c.toUpperCase().replace(/^CAP_/, '');

export function evalHardening(list: HardeningObs[]): Verdict {
  const bad: string[] = [];
  const good: string[] = [];
  for (const o of list) {
    const want = HARDENING[o.service];
    if (!want) continue;
    if (o.error) {
      bad.push(`${o.service}: ${o.error}`);
      continue;
    }
    const gaps: string[] = [];
    if (!o.readonlyRootfs) gaps.push('root filesystem writable (read_only: true)');
    if (o.privileged) gaps.push('privileged');
    if (!(o.capDrop ?? []).map(capName).includes('ALL')) gaps.push('capabilities not dropped (cap_drop: [ALL])');
    const extra = (o.capAdd ?? []).map(capName).filter((c) => !want.capAdd.includes(c));
    if (extra.length) gaps.push(`extra capabilities ${extra.join(', ')}`);
    if (!(o.securityOpt ?? []).some((s) => /^no-new-privileges(:true|=true)?$/.test(s))) gaps.push('new privileges allowed (security_opt: no-new-privileges:true)');
    const user = (o.user ?? '').trim();
    if (want.nonRoot && (user === '' || /^(root|0)(:.*)?$/.test(user))) gaps.push(`runs as root (user "${user}")`);
    if (gaps.length) bad.push(`${o.service}: ${gaps.join(', ')}`);
    else good.push(`${o.service}: read-only root, ${want.capAdd.length ? `only ${want.capAdd.join(', ')}` : 'no capabilities'}, no-new-privileges${want.nonRoot ? `, user ${user}` : ''}`);
  }
  if (bad.length) return { status: 'fail', detail: `${bad.join('; ')} (docker-compose.yml declares it; a rollout recreates the containers from it: node scripts/rollout.mts --config .env.prod)` };
  return { status: 'pass', detail: good.join('; ') };
}

import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type NetLab, waitForOutput } from './netns.js';

export interface RouterLab {
  /** The boot network's namespace: bridge br0 with the server's address, and the guests' taps. */
  srv: string;
  /** The home router's namespace. */
  rtr: string;
  /** The server's address on br0 (10.<net>.0.1). */
  serverIp: string;
  /** The router's DHCP-only dnsmasq. */
  router: ChildProcess;
}

/**
 * A boot network beside a "home router", as a user has it: bridge br0 (10.<net>.0.1/24) in namespace
 * srv with one tap per guest, and a DHCP-only dnsmasq in namespace rtr (10.<net>.0.254) that hands out
 * 10.<net>.0.150-199 and knows nothing about network boot. The router also sends IPv6 router
 * advertisements: on a link without any, iPXE waits 13 s for one before it goes on.
 */
export async function routerLab(lab: NetLab, o: { net: number; taps: string[]; dir: string }): Promise<RouterLab> {
  const srv = lab.ns('srv');
  const rtr = lab.ns('rtr');
  const prefix = `10.${o.net}.0`;
  lab.bridge(srv, 'br0', `${prefix}.1/24`);
  lab.ip(srv, '-6', 'addr', 'add', `fd${o.net}::1/64`, 'dev', 'br0', 'nodad');
  lab.link({ ns: srv, ifname: 'rtrport' }, { ns: rtr, ifname: 'rtr0', cidr: `${prefix}.254/24` });
  lab.ip(rtr, '-6', 'addr', 'add', `fd${o.net}::fe/64`, 'dev', 'rtr0', 'nodad');
  lab.ip(srv, 'link', 'set', 'rtrport', 'master', 'br0');
  for (const tap of o.taps) lab.tap(srv, tap, 'br0');
  const router = lab.spawn(rtr, '/usr/sbin/dnsmasq', [
    '--no-daemon', '--conf-file=/dev/null', '--port=0', '--user=root', '--group=root',
    '--interface=rtr0', '--bind-interfaces', '--no-ping',
    `--pid-file=${join(o.dir, 'router.pid')}`, `--dhcp-leasefile=${join(o.dir, 'router.leases')}`,
    `--dhcp-range=${prefix}.150,${prefix}.199,255.255.255.0,1h`,
    '--enable-ra', `--dhcp-range=fd${o.net}::,ra-only`,
  ]);
  await waitForOutput(router, (t) => /DHCP, IP range/.test(t));
  return { srv, rtr, serverIp: `${prefix}.1`, router };
}

export type LabApi = (method: string, path: string, body?: unknown) => Promise<{ status: number; json: Record<string, unknown> }>;

/** hiveboot's REST API as seen from inside the lab (curl in namespace `ns`), with the daemon's token. */
export function labApi(lab: NetLab, ns: string, baseUrl: string, stateDir: string): LabApi {
  const token = readFileSync(join(stateDir, 'api-token'), 'utf8').trim();
  return async (method, path, body) => {
    const r = await lab.run(ns, 'curl', [
      '-s', '-X', method, '-H', `authorization: Bearer ${token}`,
      ...(body !== undefined ? ['-H', 'content-type: application/json', '--data', JSON.stringify(body)] : []),
      '-w', '\n%{http_code}', `${baseUrl}${path}`,
    ]);
    const lines = r.stdout.trimEnd().split('\n');
    const status = Number(lines.pop());
    const text = lines.join('\n');
    return { status, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
  };
}

/**
 * Waits for the first-boot agent's marker ("HIVEBOOT-READY host=… node=…") on a guest's serial console
 * log, or until `timeoutMs` passes or `stop()` says the guest is gone; returns the console as it is then.
 */
export async function waitForMarker(serialLog: string, timeoutMs: number, stop: () => boolean = () => false): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let text = '';
  while (Date.now() < deadline && !stop()) {
    text = existsSync(serialLog) ? readFileSync(serialLog, 'utf8') : '';
    if (/HIVEBOOT-READY host=\S+ node=\S+/.test(text)) break;
    await new Promise((r) => setTimeout(r, 2000));
  }
  return text;
}

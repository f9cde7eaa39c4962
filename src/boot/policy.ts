import type { Host } from '../inventory/index.js';
import { formatPortal, parsePortal } from '../model/identifiers.js';
import { missingForBoot } from '../inventory/host-state.js';
import type { ProfileView } from '../model/schemas.js';

/**
 * Boot policy: given what we know about a machine, decide what it boots and say why. Pure — no I/O,
 * no clock — so every rule is a unit test. The service around it does the lookups and the writes.
 */

export interface PolicyConfig {
  discovery: boolean;
  autoEnroll: boolean;
  defaultProfile: string;
  initiatorIqnPrefix: string;
}

export interface BootContext {
  mac: string;
  hostname: string;
  initiatorIqn: string;
  targetIqn: string;
  lun: number;
  uris: string[];
  username: string | null;
  password: string | null;
  reverseUsername: string | null;
  reversePassword: string | null;
  efiFilename: string | null;
  kernelArgs: string;
  labels: Record<string, string>;
  params: Record<string, string>;
}

export type Decision =
  | { kind: 'discover'; reason: string }
  | { kind: 'enroll'; profile: string; reason: string }
  | { kind: 'wait'; state: string; reason: string }
  | { kind: 'exit'; reason: string }
  | { kind: 'boot'; template: string; context: BootContext; reason: string };

export function decide(
  mac: string,
  host: Host | undefined,
  profile: ProfileView | undefined,
  cfg: PolicyConfig,
  hasTemplate: (name: string) => boolean,
): Decision {
  if (!host) {
    if (cfg.autoEnroll) {
      return { kind: 'enroll', profile: cfg.defaultProfile, reason: `unknown MAC and auto-enrolment is on: enrolling with profile ${cfg.defaultProfile}` };
    }
    if (cfg.discovery) return { kind: 'discover', reason: 'unknown MAC: reporting it for approval' };
    return { kind: 'exit', reason: 'unknown MAC and discovery is off: not ours to boot' };
  }
  switch (host.state) {
    case 'disabled':
      return { kind: 'exit', reason: 'host is disabled: booting the next device' };
    case 'discovered':
      return { kind: 'wait', state: host.state, reason: 'discovered, waiting for approval' };
    case 'pending': {
      const missing = missingForBoot({ hostname: host.hostname, profile: host.profile, hasDisk: host.disk !== null });
      return { kind: 'wait', state: host.state, reason: missing.length ? `pending, waiting for ${missing.join(', ')}` : 'pending' };
    }
    case 'ready':
      break;
  }
  if (!host.hostname || !host.disk) {
    // The state machine never allows this; the check keeps the policy total if the database was edited by hand.
    return { kind: 'wait', state: host.state, reason: 'ready but without a host name or disk' };
  }
  if (!profile) return { kind: 'wait', state: host.state, reason: `profile ${host.profile ?? '(none)'} does not exist` };
  if (!hasTemplate(profile.template)) {
    return { kind: 'wait', state: host.state, reason: `template ${profile.template} of profile ${profile.name} does not exist` };
  }
  const disk = host.disk;
  const context: BootContext = {
    mac: host.mac,
    hostname: host.hostname,
    initiatorIqn: host.initiatorIqn ?? `${cfg.initiatorIqnPrefix}:${host.hostname}`,
    targetIqn: disk.targetIqn,
    lun: disk.lun,
    uris: disk.portals.map((p) => iscsiUri(p, disk.lun, disk.targetIqn)),
    username: disk.chapUser,
    password: disk.chapSecret,
    reverseUsername: disk.mutualUser,
    reversePassword: disk.mutualSecret,
    efiFilename: profile.efiFilename,
    kernelArgs: profile.kernelArgs,
    labels: { ...profile.k3sLabels, ...host.labels },
    params: profile.params,
  };
  return {
    kind: 'boot',
    template: profile.template,
    context,
    reason: `ready: profile ${profile.name}, template ${profile.template}, ${disk.portals.length} portal(s)`,
  };
}

/**
 * iPXE's iSCSI root path (RFC 4173): iscsi:<server>:<protocol>:<port>:<lun>:<target>. The protocol
 * field is left empty (TCP); IPv6 servers are written in brackets as iPXE expects. The LUN field is
 * hexadecimal (RFC 4173; iPXE's scsi_parse_lun reads it base 16), so LUN 10 is written "a".
 */
export function iscsiUri(portal: string, lun: number, targetIqn: string): string {
  const p = parsePortal(portal);
  const server = formatPortal(p).replace(/:\d+$/, '');
  return `iscsi:${server}::${p.port}:${lun.toString(16)}:${targetIqn}`;
}

// rbd-target-api's refusals, turned into what an operator should do about them. The patterns are the
// API's own message texts (ceph-iscsi 3.5's source, ../shared/eval/ceph/ceph-iscsi-api.md); an
// unknown message is passed on as the gateway wrote it. Every explanation ends with the failed call
// and the gateway's words, so nothing is lost in translation.

import { GatewayApiError } from './api-client.js';

export type CephIscsiProblem =
  | 'unreachable'
  | 'not-trusted'
  | 'bad-credentials'
  | 'minimum-gateways'
  | 'gateway-unavailable'
  | 'not-a-gateway'
  | 'gateway-config'
  | 'disk-in-use'
  | 'client-logged-in'
  | 'bad-chap'
  | 'target-chap'
  | 'image'
  | 'limit'
  | 'inconsistent'
  | 'refused';

/** A provisioning step the gateways refused or could not take; `problem` says which kind. */
export class CephIscsiError extends Error {
  constructor(
    message: string,
    readonly problem: CephIscsiProblem,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'CephIscsiError';
  }
}

export interface ExplainContext {
  /** cephIscsi.user, named when the password is refused. */
  user: string;
  /** How many gateways cephIscsi.gateways lists (for minimum_gateways). */
  gatewayCount: number;
}

const GATEWAY_STATES: Record<string, string> = {
  'iscsi down, API up': 'its iSCSI service (port 3260) is down',
  'iscsi Unknown, API down': 'its rbd-target-api is down',
  'UNKNOWN state': 'its rbd-target-api cannot be reached',
};

interface Rule {
  pattern: RegExp;
  problem: CephIscsiProblem;
  advice: (m: RegExpExecArray, err: GatewayApiError, ctx: ExplainContext) => string;
}

const CFG = '/etc/ceph/iscsi-gateway.cfg';

const RULES: Rule[] = [
  {
    pattern: /API access not available to (\S+)/,
    problem: 'not-trusted',
    advice: (m) =>
      `the Ceph iSCSI gateways refuse API calls from ${m[1]}: add ${m[1]} to trusted_ip_list in ${CFG} on every gateway and restart rbd-target-api`,
  },
  {
    pattern: /at least (\d+) gateways must exist before disk mapping|HA configuration has been defined \(>(\d+) gateways\)/,
    problem: 'minimum-gateways',
    advice: (m, _e, ctx) =>
      `the gateways need at least ${m[1] ?? m[2]} gateways (minimum_gateways in ${CFG}) before a disk or a client can be added, and cephIscsi.gateways lists ${ctx.gatewayCount}: list more gateways, or lower minimum_gateways`,
  },
  {
    pattern: /gateway\(s\) unavailable:(.*)$/,
    problem: 'gateway-unavailable',
    advice: (m) => {
      const down = [...m[1]!.matchAll(/([^,(]+)\(([^)]*)\)/g)].map(([, gw, state]) => `${gw!.trim()} (${GATEWAY_STATES[state!] ?? state})`);
      return `Ceph iSCSI gateway${down.length === 1 ? '' : 's'} unavailable: ${down.join(', ') || m[1]}; a change is made on every gateway of a target at once, so it waits until they are all up`;
    },
  },
  {
    pattern: /ip_addresses query to (\S+) failed/,
    problem: 'gateway-unavailable',
    advice: (m) => `gateway ${m[1]} cannot be added as a portal: its rbd-target-api does not answer (is it running, and in the same http/https mode as the others?)`,
  },
  {
    pattern: /(\S+) cannot be used to perform this operation because it is not defined within the gateways configuration/,
    problem: 'not-a-gateway',
    advice: (m, err) =>
      `the rbd-target-api at ${err.url} runs on ${m[1]}, which is not a portal of this target: call the API on one of the gateways in cephIscsi.gateways (and list ${m[1]} there if it is one)`,
  },
  {
    pattern: /not resolvable to an IP address|is not available on|does not match the local version|failed package validation|IP address provided is not usable|IP address already defined/,
    problem: 'gateway-config',
    advice: () => 'a gateway could not be added as a portal: check the names and addresses in cephIscsi.gateways against each gateway (GET /api/sysinfo/hostname, /api/sysinfo/ip_addresses)',
  },
  {
    pattern: /already mapped on target (\S+)|Unable to delete (\S+)\. (?:Allocated|Mapped) to: (.*)$/,
    problem: 'disk-in-use',
    advice: (m) =>
      m[1]
        ? `the host's RBD image is already exported by another target, ${m[1]}: an image can be on one target only (remove it there first)`
        : `RBD image ${m[2]} is still in use by ${m[3]}`,
  },
  {
    pattern: /Client '([^']+)' is logged in to/,
    problem: 'client-logged-in',
    advice: (m) => `initiator ${m[1]} is logged in, and the gateways refuse to remove its access until it logs out: power the host off first`,
  },
  {
    pattern: /^(?:Minimum|Maximum) length of (?:mutual )?(?:username|password)|^Invalid (?:mutual )?(?:username|password)$|^(?:Mutual )?(?:[Uu]sername|[Pp]assword) is required$/,
    problem: 'bad-chap',
    advice: () =>
      'the gateways refused the host\'s CHAP credentials (they take users of 8-64 characters of A-Z a-z 0-9 . : @ _ - and secrets of 12-16 characters of A-Z a-z 0-9 @ - _ /): give the host credentials within those limits',
  },
  {
    pattern: /because target CHAP authentication is enabled/,
    problem: 'target-chap',
    advice: () => 'the target has target-wide CHAP set, which the gateways do not allow beside per-host ACLs: clear it (gwcli: auth nochap on the target)',
  },
  {
    pattern: /Image (\S+) (?:does not exist|not found)|is not compatible with LIO|Size parameter is required/,
    problem: 'image',
    advice: () =>
      'the host\'s RBD image is missing or unusable for the gateways (it must exist and have the exclusive-lock feature): check the golden snapshot and the clone',
  },
  {
    pattern: /Disk limit of 256 reached/,
    problem: 'limit',
    advice: () => 'the gateways already export 256 disks, ceph-iscsi\'s limit',
  },
];

/** A GatewayApiError as a CephIscsiError that says what to do; anything else is returned as it is. */
export function explainGatewayError(err: unknown, ctx: ExplainContext): unknown {
  if (!(err instanceof GatewayApiError)) return err;
  const said = `${err.call} ${err.status === undefined ? 'got no answer' : `answered ${err.status}`}: ${err.gatewayMessage}`;
  if (err.unreachable) {
    return new CephIscsiError(`Ceph iSCSI gateway API unreachable: check cephIscsi.apiUrls and that rbd-target-api runs (${said})`, 'unreachable', {
      cause: err,
    });
  }
  if (err.status === 401) {
    // "Missing credentials" or "username/password mismatch with the configuration file".
    return new CephIscsiError(
      `the Ceph iSCSI gateway API refused user "${ctx.user}": cephIscsi.user and the password in cephIscsi.passwordFile must equal api_user and api_password in ${CFG} (${said})`,
      'bad-credentials',
      { cause: err },
    );
  }
  for (const rule of RULES) {
    const m = rule.pattern.exec(err.gatewayMessage);
    if (m) return new CephIscsiError(`${rule.advice(m, err, ctx)} (${said})`, rule.problem, { cause: err });
  }
  return new CephIscsiError(`the Ceph iSCSI gateways refused a change (${said})`, 'refused', { cause: err });
}

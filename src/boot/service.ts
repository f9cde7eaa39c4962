import type { Host, Inventory } from '../inventory/index.js';
import { ConflictError, ValidationError } from '../model/errors.js';
import { normalizeMac } from '../model/identifiers.js';
import type { Facts } from '../model/schemas.js';
import type { CallerVerdict } from './caller-check.js';
import { decide, type Decision, type PolicyConfig } from './policy.js';
import { TemplateError, type TemplateSet } from './render.js';

export interface ScriptRequest {
  /** Where the request came from: recorded on the timeline. */
  sourceIp: string | null;
  /** Base URL the machine reached us on, e.g. http://192.0.2.1:8080. */
  baseUrl: string;
  facts: Facts;
}

export interface ScriptResult {
  script: string;
  decision: Decision['kind'] | 'error';
  mac: string;
}

export interface BootServiceOptions {
  policy: PolicyConfig;
  retrySeconds: number;
  maxDiscovered: number;
  /** Templates can be swapped on reload; always read through this. */
  templates: () => TemplateSet;
  onDecision?: (decision: ScriptResult['decision']) => void;
  /** Whether the caller is the machine whose script (with its disk secrets) it asks for; absent: anyone. */
  verifyCaller?: (mac: string, sourceIp: string | null) => CallerVerdict;
}

/** Repeated identical decisions (a machine waiting and retrying) are written once per window. */
const DEDUPE_WINDOW_MS = 5 * 60 * 1000;

/**
 * Answers boot-script requests: looks the machine up, asks the policy, performs what the decision
 * implies (record a discovery, enrol), renders the template and writes the decision on the host's
 * timeline with its reason. Answers from local state only: firmware does not wait.
 */
export class BootService {
  private readonly lastDecision = new Map<string, { key: string; at: number }>();

  constructor(
    private readonly inventory: Inventory,
    private readonly opts: BootServiceOptions,
  ) {}

  /**
   * The bootstrap script is the same for every machine, but its fetch is a boot stage: it lands on
   * the timeline of the machine last seen at the requesting address (DHCP learnt it).
   */
  bootstrapScript(baseUrl: string, sourceIp: string | null = null): string {
    const script = this.opts.templates().render('bootstrap', { baseUrl, retrySeconds: this.opts.retrySeconds });
    const host = sourceIp ? this.inventory.hosts.findByLastIp(sourceIp) : undefined;
    if (host) this.recordOnce(host.mac, sourceIp, 'script: bootstrap /boot.ipxe', 'iPXE is running and fetched the bootstrap script');
    return script;
  }

  hostScript(macInput: string, req: ScriptRequest): ScriptResult {
    const mac = normalizeMac(macInput);
    const templates = this.opts.templates();
    let host = this.inventory.hosts.find(mac);
    let decision = this.decideFor(mac, host, templates);

    if (decision.kind === 'enroll') {
      host = this.enroll(mac, decision.profile, req);
      decision = host ? this.decideFor(mac, host, templates) : { kind: 'wait', state: 'unknown', reason: 'auto-enrolment failed, see events' };
    } else if (decision.kind === 'discover') {
      const result = this.inventory.hosts.discover(mac, req.facts, { stage: 'discover', sourceIp: req.sourceIp }, this.opts);
      if (!result) decision = { kind: 'wait', state: 'unknown', reason: 'too many discovered hosts, not recorded' };
    } else if (host) {
      this.inventory.hosts.touch(mac, req.sourceIp, req.facts);
    }

    if (decision.kind === 'boot' && this.opts.verifyCaller) {
      const verdict = this.opts.verifyCaller(mac, req.sourceIp);
      if (!verdict.ok) {
        // The script would carry the host's CHAP secret: a caller that is not the host waits instead.
        decision = { kind: 'wait', state: host?.state ?? 'ready', reason: `boot script withheld: ${verdict.reason}` };
      }
    }

    const selfUrl = `${req.baseUrl}/boot/${mac}.ipxe`;
    const common = { mac, baseUrl: req.baseUrl, selfUrl, retrySeconds: this.opts.retrySeconds };
    let script: string;
    let kind: ScriptResult['decision'] = decision.kind;
    try {
      script = this.renderDecision(templates, decision, common);
    } catch (err) {
      if (!(err instanceof TemplateError)) throw err;
      // A template or a stored value that cannot be printed safely: the machine waits, the reason is recorded.
      kind = 'error';
      decision = { kind: 'wait', state: host?.state ?? 'unknown', reason: `cannot render the boot script: ${err.message}` };
      script = templates.render('wait', { ...common, state: host?.state ?? 'unknown', reason: 'boot script error, see hiveboot host events' });
    }
    this.recordOnce(mac, req.sourceIp, `script: ${kind}`, decision.reason);
    this.opts.onDecision?.(kind);
    return { script, decision: kind, mac };
  }

  /** POST /v1/discover: a machine reporting itself (from the discovery script, or a DHCP handler). */
  discover(macInput: string, facts: Facts, sourceIp: string | null): Host | undefined {
    const mac = normalizeMac(macInput);
    return this.inventory.hosts.discover(mac, facts, { stage: 'discover', sourceIp }, this.opts)?.host;
  }

  private decideFor(mac: string, host: Host | undefined, templates: TemplateSet): Decision {
    const profile = host?.profile ? this.inventory.profiles.find(host.profile) : undefined;
    return decide(mac, host, profile, this.opts.policy, (t) => templates.has(t));
  }

  private enroll(mac: string, profile: string, req: ScriptRequest): Host | undefined {
    const actor = { stage: 'enroll', sourceIp: req.sourceIp };
    try {
      this.inventory.hosts.discover(mac, req.facts, actor, { maxDiscovered: Number.MAX_SAFE_INTEGER });
      return this.inventory.hosts.approve(mac, { defaultProfile: profile }, actor);
    } catch (err) {
      if (!(err instanceof ValidationError) && !(err instanceof ConflictError)) throw err;
      this.inventory.events.record({ mac, stage: 'enroll', sourceIp: req.sourceIp, message: 'auto-enrolment failed', reason: err.message });
      return this.inventory.hosts.find(mac);
    }
  }

  private renderDecision(templates: TemplateSet, d: Decision, common: Record<string, unknown>): string {
    switch (d.kind) {
      case 'boot':
        return templates.render(d.template, { ...common, ...d.context });
      case 'discover':
        return templates.render('discovery', common);
      case 'exit':
        return templates.render('exit', common);
      case 'wait':
        return templates.render('wait', { ...common, state: d.state, reason: d.reason });
      case 'enroll':
        return templates.render('wait', { ...common, state: 'unknown', reason: 'enrolling' });
    }
  }

  private recordOnce(mac: string, sourceIp: string | null, message: string, reason: string): void {
    const key = `${message}|${reason}|${sourceIp}`;
    const now = Date.now();
    const last = this.lastDecision.get(mac);
    if (last && last.key === key && now - last.at < DEDUPE_WINDOW_MS) return;
    this.lastDecision.set(mac, { key, at: now });
    if (this.lastDecision.size > 10_000) this.lastDecision.delete(this.lastDecision.keys().next().value!);
    this.inventory.events.record({ mac, stage: 'script', sourceIp, message, reason });
  }
}

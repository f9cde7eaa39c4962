import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * One registry per daemon (no global state, so tests can build many). Servers added by later issues
 * (DHCP, TFTP, iSCSI) register their own metrics on the same registry.
 */
export function createMetrics(opts: { hostsByState?: () => Record<string, number> } = {}) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'hiveboot_process_' });
  const httpRequests = new Counter({
    name: 'hiveboot_http_requests_total',
    help: 'HTTP requests by route and status code',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [registry],
  });
  const httpDuration = new Histogram({
    name: 'hiveboot_http_request_duration_seconds',
    help: 'HTTP request latency by route',
    labelNames: ['route'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1],
    registers: [registry],
  });
  const bootScripts = new Counter({
    name: 'hiveboot_boot_scripts_total',
    help: 'Per-machine boot scripts served, by decision (boot, wait, discover, exit, error)',
    labelNames: ['decision'] as const,
    registers: [registry],
  });
  const iscsiLogins = new Counter({
    name: 'hiveboot_iscsi_logins_total',
    help: 'iSCSI logins by outcome (ok, refused)',
    labelNames: ['outcome'] as const,
    registers: [registry],
  });
  const iscsiSessions = new Gauge({ name: 'hiveboot_iscsi_sessions', help: 'Open iSCSI sessions', registers: [registry] });
  const iscsiBytes = new Counter({
    name: 'hiveboot_iscsi_bytes_total',
    help: 'Bytes read and written through the built-in target, per target and LUN',
    labelNames: ['target', 'lun', 'direction'] as const,
    registers: [registry],
  });
  const iscsiLatency = new Histogram({
    name: 'hiveboot_iscsi_command_duration_seconds',
    help: 'SCSI read/write command latency at the target (storage time), per target',
    labelNames: ['target', 'direction'] as const,
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1],
    registers: [registry],
  });
  const hostsByState = opts.hostsByState;
  if (hostsByState) {
    new Gauge({
      name: 'hiveboot_hosts',
      help: 'Registered hosts by state',
      labelNames: ['state'] as const,
      registers: [registry],
      collect() {
        for (const [state, n] of Object.entries(hostsByState())) this.set({ state }, n);
      },
    });
  }
  return { registry, httpRequests, httpDuration, bootScripts, iscsiLogins, iscsiSessions, iscsiBytes, iscsiLatency };
}

export type Metrics = ReturnType<typeof createMetrics>;

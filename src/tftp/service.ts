import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import type { Config } from '../config/schema.js';
import type { Inventory } from '../inventory/index.js';
import { TftpServer, type TransferEvent } from './server.js';

/** Longer than DHCP waits before writing where it saw a machine (dhcp/service.ts). */
const LAST_IP_SETTLE_MS = 300;

/** netboot/ shipped with hiveboot (src/tftp → ../../netboot, same from dist/tftp). */
export const DEFAULT_NETBOOT_DIR = fileURLToPath(new URL('../../netboot/', import.meta.url));

export function netbootRoot(config: Config): string {
  return config.tftp.root ?? DEFAULT_NETBOOT_DIR;
}

/**
 * Builds the TFTP server from the config and connects it to the rest: every transfer lands on the
 * timeline of the machine last seen at the client's address (DHCP learnt it), and the server's
 * counters feed /metrics.
 */
export function createTftpService(deps: { config: Config; inventory: Inventory; logger: Logger; registry: Registry }): TftpServer | undefined {
  const { config, inventory, logger } = deps;
  if (!config.tftp.enabled) return undefined;
  const server = new TftpServer({
    address: config.tftp.listen,
    port: config.tftp.port,
    root: netbootRoot(config),
    maxTransfers: config.tftp.maxTransfers,
    timeoutMs: config.tftp.timeoutMs,
    retries: config.tftp.retries,
    logger,
    onTransfer: (e) => onTransfer(e),
  });

  new Counter({
    name: 'hiveboot_tftp_transfers_total',
    help: 'TFTP transfers by outcome (complete, error, timeout)',
    labelNames: ['outcome'] as const,
    registers: [deps.registry],
    collect() {
      this.reset();
      for (const [outcome, n] of Object.entries(server.counters.transfers)) this.inc({ outcome }, n);
    },
  });
  new Counter({
    name: 'hiveboot_tftp_sent_bytes_total',
    help: 'File bytes acknowledged by TFTP clients',
    registers: [deps.registry],
    collect() {
      this.reset();
      this.inc(server.counters.bytesSent);
    },
  });

  /**
   * Transfers from an address whose machine DHCP has not written yet, waiting for a second look; a
   * later transfer from the same address queues behind them, so the timeline keeps their order
   * (EDK2 asks for the size and aborts, then downloads: the abort must not land after the download).
   */
  const waiting = new Map<string, TransferEvent[]>();

  function onTransfer(e: TransferEvent): void {
    const queue = waiting.get(e.ip);
    if (queue) {
      queue.push(e);
      return;
    }
    try {
      if (!inventory.hosts.findByLastIp(e.ip)) {
        // DHCP writes where it saw a machine in the quiet after a burst (up to 250 ms later): a
        // quick transfer can end before that is written. Look once more after that.
        // (Not after shutdown: the database is closed by then.)
        waiting.set(e.ip, [e]);
        setTimeout(() => {
          const held = waiting.get(e.ip) ?? [];
          waiting.delete(e.ip);
          if (inventory.db.open) for (const x of held) record(x);
        }, LAST_IP_SETTLE_MS).unref();
        return;
      }
    } catch (err) {
      logger.error({ err }, 'could not record a TFTP transfer');
      return;
    }
    record(e);
  }

  function record(e: TransferEvent): void {
    try {
      const host = inventory.hosts.findByLastIp(e.ip);
      if (!host) {
        logger.debug({ ip: e.ip, file: e.file, outcome: e.outcome }, 'TFTP transfer from an address no host was seen at');
        return;
      }
      const kib = (e.bytes / 1024).toFixed(0);
      inventory.events.record({
        mac: host.mac,
        stage: 'tftp',
        sourceIp: e.ip,
        message: `${e.outcome === 'complete' ? 'sent' : e.outcome} ${e.file} (${kib} KiB in ${e.durationMs} ms, blksize ${e.blksize}, windowsize ${e.windowsize})`,
        reason: e.reason ?? 'transfer complete',
      });
    } catch (err) {
      logger.error({ err }, 'could not record a TFTP transfer');
    }
  }
  return server;
}

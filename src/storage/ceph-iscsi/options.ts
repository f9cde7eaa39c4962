// From hiveboot.yaml's cephIscsi section to a ready provisioner: reads the API password and CA files
// (the composition root calls this; nothing here reads the environment).

import { readFileSync, statSync } from 'node:fs';
import type { Config } from '../../config/schema.js';
import type { Inventory } from '../../inventory/index.js';
import { GatewayApi, type GatewayApiOptions } from './api-client.js';
import { CephIscsiProvisioner, type CephIscsiOptions } from './provisioner.js';
import type { RbdImages } from './rbd.js';

export interface CephIscsiSettings {
  api: GatewayApiOptions;
  provisioner: CephIscsiOptions;
}

export function cephIscsiSettings(config: Config): CephIscsiSettings {
  const c = config.cephIscsi;
  if (!c) {
    throw new Error('storage.backend is ceph-iscsi but the cephIscsi section (apiUrls, passwordFile, gateways) is missing from the config');
  }
  return {
    api: {
      urls: c.apiUrls,
      user: c.user,
      password: readSecretFile(c.passwordFile, 'cephIscsi.passwordFile'),
      ...(c.tls.caFile ? { ca: readFileSync(c.tls.caFile) } : {}),
      insecure: c.tls.insecure,
      timeoutMs: c.timeoutMs,
    },
    provisioner: {
      gateways: c.gateways.map((g) => ({ name: g.name, ip: g.ip })),
      targetIqnPrefix: c.targetIqnPrefix ?? config.iscsi.targetIqnPrefix,
      initiatorIqnPrefix: config.boot.initiatorIqnPrefix,
      mutualChap: config.storage.mutualChap,
      apiUser: c.user,
    },
  };
}

/** The provisioner for storage.backend ceph-iscsi; `rbd` clones and deletes images (src/ceph). Close it on shutdown. */
export function createCephIscsiProvisioner(config: Config, inventory: Inventory, rbd: RbdImages): CephIscsiProvisioner {
  const settings = cephIscsiSettings(config);
  return new CephIscsiProvisioner(inventory, new GatewayApi(settings.api), rbd, settings.provisioner);
}

/** A secret's file: first line, and only if no one but its owner can read it. */
export function readSecretFile(path: string, field: string): string {
  let mode: number;
  try {
    mode = statSync(path).mode & 0o777;
  } catch (err) {
    throw new Error(`${field}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  if (mode & 0o077) throw new Error(`${field}: ${path} is readable by others (mode ${mode.toString(8)}): chmod 600 ${path}`);
  const secret = readFileSync(path, 'utf8').split('\n')[0]!.trim();
  if (!secret) throw new Error(`${field}: ${path} is empty`);
  return secret;
}

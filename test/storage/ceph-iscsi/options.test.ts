// The cephIscsi config section and the settings made from it (password and CA files).
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { validateConfig } from '../../../src/config/load.js';
import { cephIscsiSettings, createCephIscsiProvisioner } from '../../../src/storage/ceph-iscsi/options.js';
import type { RbdImages } from '../../../src/storage/ceph-iscsi/rbd.js';
import { tempInventory } from '../../inventory/helpers.js';

const dirs: string[] = [];
afterEach(() => {
  while (dirs.length) rmSync(dirs.pop()!, { recursive: true, force: true });
});

function passwordFile(mode = 0o600, text = 'api-Pa55word\n'): string {
  const dir = mkdtempSync(join(tmpdir(), 'hiveboot-ceph-'));
  dirs.push(dir);
  const file = join(dir, 'api-password');
  writeFileSync(file, text);
  chmodSync(file, mode);
  return file;
}

const section = (file: string, over: Record<string, unknown> = {}) => ({
  apiUrls: ['http://gw1.example.net:5000', 'https://gw2.example.net:5000/api'],
  passwordFile: file,
  gateways: [
    { name: 'gw1.example.net', ip: '192.0.2.11' },
    { name: 'gw2.example.net', ip: '192.0.2.12' },
  ],
  ...over,
});

describe('cephIscsi config section', () => {
  it('is optional, and filled with defaults when present', () => {
    expect(validateConfig({}).cephIscsi).toBeUndefined();
    const config = validateConfig({ storage: { backend: 'ceph-iscsi' }, cephIscsi: section('/etc/hiveboot/ceph-api') });
    expect(config.storage.backend).toBe('ceph-iscsi');
    expect(config.cephIscsi).toEqual({ ...section('/etc/hiveboot/ceph-api'), user: 'admin', tls: { insecure: false }, timeoutMs: 30_000 });
  });

  it.each([
    ['an unknown setting', { apiUrl: 'http://gw1:5000' }, 'cephIscsi.apiUrl'],
    ['a URL with credentials', { apiUrls: ['http://admin:pw@gw1:5000'] }, 'cephIscsi.apiUrls.0'],
    ['no gateway', { gateways: [] }, 'cephIscsi.gateways'],
    ['a gateway without its address', { gateways: [{ name: 'gw1' }] }, 'cephIscsi.gateways.0'],
  ])('rejects %s', (_name, over, field) => {
    expect(() => validateConfig({ cephIscsi: section('/x', over) })).toThrow(field);
  });
});

describe('cephIscsiSettings', () => {
  it('reads the password file and takes prefixes from the rest of the config', () => {
    const config = validateConfig({ cephIscsi: section(passwordFile()), storage: { backend: 'ceph-iscsi', mutualChap: true } });
    const s = cephIscsiSettings(config);
    expect(s.api).toMatchObject({ urls: config.cephIscsi!.apiUrls, user: 'admin', password: 'api-Pa55word', insecure: false, timeoutMs: 30_000 });
    expect(s.provisioner).toEqual({
      gateways: config.cephIscsi!.gateways,
      targetIqnPrefix: 'iqn.2026-01.io.hiveboot',
      initiatorIqnPrefix: 'iqn.2026-01.io.hiveboot',
      mutualChap: true,
      apiUser: 'admin',
    });
  });

  it('refuses a password file others can read, and says how to fix it', () => {
    const file = passwordFile(0o644);
    expect(() => cephIscsiSettings(validateConfig({ cephIscsi: section(file) }))).toThrow(`cephIscsi.passwordFile: ${file} is readable by others (mode 644): chmod 600 ${file}`);
  });

  it('says what is missing', () => {
    expect(() => cephIscsiSettings(validateConfig({ storage: { backend: 'ceph-iscsi' } }))).toThrow(/cephIscsi section .* is missing/);
    expect(() => cephIscsiSettings(validateConfig({ cephIscsi: section(passwordFile(0o600, '\n')) }))).toThrow(/is empty/);
    expect(() => cephIscsiSettings(validateConfig({ cephIscsi: section('/nonexistent/file') }))).toThrow('cephIscsi.passwordFile: cannot read /nonexistent/file: ENOENT');
  });

  it('builds a provisioner, refusing a gateway address that is not an IP', () => {
    const { inv } = tempInventory();
    const rbd: RbdImages = { ensureClone: async () => {}, remove: async () => {} };
    const ok = validateConfig({ cephIscsi: section(passwordFile(), { targetIqnPrefix: 'iqn.2026-02.net.example' }) });
    const prov = createCephIscsiProvisioner(ok, inv, rbd);
    expect(prov.portals()).toEqual(['192.0.2.11:3260', '192.0.2.12:3260']);
    prov.close();
    const bad = validateConfig({ cephIscsi: section(passwordFile(), { gateways: [{ name: 'gw1', ip: 'gw1.example.net' }] }) });
    expect(() => createCephIscsiProvisioner(bad, inv, rbd)).toThrow('cephIscsi.gateways.0.ip: "gw1.example.net" is not an IP address');
  });
});

import { describe, expect, it } from 'vitest';
import { ConflictError, NotFoundError, ValidationError } from '../../src/model/errors.js';
import { tempInventory, thrown } from './helpers.js';

describe('profiles', () => {
  it('creates a profile with defaults and lists profiles by name', () => {
    const { inv } = tempInventory();
    const p = inv.profiles.create({ name: 'workers' });
    expect(p).toEqual({
      name: 'workers',
      description: '',
      template: 'sanboot',
      image: null,
      kernelArgs: '',
      k3sLabels: {},
      efiFilename: null,
      params: {},
      bootFile: null,
      createdAt: '2026-03-01T12:00:00.000Z',
      updatedAt: '2026-03-01T12:00:00.000Z',
    });
    inv.profiles.create({ name: 'gpu' });
    expect(inv.profiles.list().map((x) => x.name)).toEqual(['gpu', 'workers']);
    expect(inv.profiles.get('workers')).toEqual(p);
  });

  it('stores every field, normalised', () => {
    const { inv } = tempInventory();
    inv.images.create({ name: 'debian-12', location: '/srv/images/debian-12.raw' });
    const p = inv.profiles.create({
      name: 'workers',
      description: 'K3s workers',
      template: 'sanboot-efi',
      image: 'debian-12',
      kernelArgs: '  console=ttyS0,115200   quiet ',
      k3sLabels: { 'node-role.kubernetes.io/worker': 'true' },
      efiFilename: 'EFI\\BOOT\\BOOTX64.EFI',
      params: { extraArgs: 'ip=dhcp' },
    });
    expect(p).toMatchObject({
      template: 'sanboot-efi',
      image: 'debian-12',
      kernelArgs: 'console=ttyS0,115200 quiet',
      k3sLabels: { 'node-role.kubernetes.io/worker': 'true' },
      efiFilename: '/EFI/BOOT/BOOTX64.EFI',
      params: { extraArgs: 'ip=dhcp' },
    });
  });

  it('refuses a duplicate name', () => {
    const { inv } = tempInventory();
    inv.profiles.create({ name: 'workers', description: 'first' });
    thrown(() => inv.profiles.create({ name: 'workers', description: 'second' }), ConflictError, 'name');
    expect(inv.profiles.get('workers').description).toBe('first');
  });

  it.each([
    [{ name: 'Workers' }, 'name'],
    [{ name: 'w', template: '../etc/passwd' }, 'template'],
    [{ name: 'w', image: 'missing' }, 'image'],
    [{ name: 'w', kernelArgs: 'quiet; reboot' }, 'kernelArgs'],
    [{ name: 'w', kernelArgs: 'quiet\nshell' }, 'kernelArgs'],
    [{ name: 'w', k3sLabels: { zone: 'a b' } }, 'k3sLabels.zone'],
    [{ name: 'w', efiFilename: '/EFI/../x.efi' }, 'efiFilename'],
    [{ name: 'w', params: { '1bad': 'x' } }, 'params.1bad'],
    [{ name: 'w', params: { extra: '${root-path}' } }, 'params.extra'],
  ])('refuses %j naming %s', (input, field) => {
    const { inv } = tempInventory();
    thrown(() => inv.profiles.create(input), ValidationError, field);
    expect(inv.profiles.list()).toEqual([]);
  });

  it('updates only the given fields, and null clears the image and EFI file name', () => {
    const { inv, clock } = tempInventory();
    inv.images.create({ name: 'debian-12', location: '/srv/images/debian-12.raw' });
    inv.profiles.create({ name: 'workers', description: 'K3s', image: 'debian-12', kernelArgs: 'quiet', efiFilename: '/EFI/x.efi' });
    clock.advance(1000);
    const u = inv.profiles.update('workers', { kernelArgs: 'quiet  splash' });
    expect(u).toMatchObject({ description: 'K3s', image: 'debian-12', kernelArgs: 'quiet splash', efiFilename: '/EFI/x.efi' });
    expect(u.updatedAt).toBe('2026-03-01T12:00:01.000Z');
    expect(u.createdAt).toBe('2026-03-01T12:00:00.000Z');
    const cleared = inv.profiles.update('workers', { image: null, efiFilename: null });
    expect(cleared).toMatchObject({ image: null, efiFilename: null, kernelArgs: 'quiet splash' });
  });

  it('validates updates and changes nothing when one is refused', () => {
    const { inv } = tempInventory();
    inv.profiles.create({ name: 'workers', kernelArgs: 'quiet' });
    thrown(() => inv.profiles.update('workers', { image: 'missing' }), ValidationError, 'image');
    thrown(() => inv.profiles.update('workers', { kernelArgs: 'a|b' }), ValidationError, 'kernelArgs');
    thrown(() => inv.profiles.update('nope', { description: 'x' }), NotFoundError, 'name');
    expect(inv.profiles.get('workers').kernelArgs).toBe('quiet');
  });

  it('reports unknown profiles as not found', () => {
    const { inv } = tempInventory();
    expect(inv.profiles.find('nope')).toBeUndefined();
    expect(thrown(() => inv.profiles.get('nope'), NotFoundError, 'name').message).toBe('profile "nope" does not exist');
    thrown(() => inv.profiles.remove('nope'), NotFoundError, 'name');
  });

  it('refuses to remove a profile hosts use, and removes it once they are gone', () => {
    const { inv } = tempInventory();
    inv.profiles.create({ name: 'workers' });
    inv.hosts.create({ mac: '52:54:00:00:00:01', profile: 'workers' });
    inv.hosts.create({ mac: '52:54:00:00:00:02', profile: 'workers' });
    const err = thrown(() => inv.profiles.remove('workers'), ConflictError, 'name');
    expect(err.message).toBe('profile "workers" is used by 2 host(s)');
    expect(inv.profiles.find('workers')).toBeDefined();
    inv.hosts.remove('52:54:00:00:00:01');
    inv.hosts.update('52:54:00:00:00:02', { profile: null });
    inv.profiles.remove('workers');
    expect(inv.profiles.find('workers')).toBeUndefined();
  });

  it('the database itself refuses deleting a profile in use (foreign key backstop)', () => {
    const { inv } = tempInventory();
    inv.profiles.create({ name: 'workers' });
    inv.hosts.create({ mac: '52:54:00:00:00:01', profile: 'workers' });
    expect(() => inv.db.prepare("DELETE FROM profiles WHERE name = 'workers'").run()).toThrow(/FOREIGN KEY constraint failed/);
  });
});

import { describe, expect, it } from 'vitest';
import { ConflictError, NotFoundError, ValidationError } from '../../src/model/errors.js';
import { tempInventory, thrown } from './helpers.js';

const SHA = 'a'.repeat(64);

describe('images', () => {
  it('registers an image with defaults and lists images by name', () => {
    const { inv } = tempInventory();
    const img = inv.images.create({ name: 'debian-12', location: '/srv/images/debian-12.raw' });
    expect(img).toEqual({
      name: 'debian-12',
      description: '',
      format: 'raw',
      location: '/srv/images/debian-12.raw',
      sizeBytes: null,
      sha256: null,
      createdAt: '2026-03-01T12:00:00.000Z',
      updatedAt: '2026-03-01T12:00:00.000Z',
    });
    inv.images.create({ name: 'alpine', location: '/srv/images/alpine.qcow2', format: 'qcow2', sizeBytes: 1 << 30, sha256: SHA, description: 'tiny' });
    expect(inv.images.list().map((i) => [i.name, i.format])).toEqual([
      ['alpine', 'qcow2'],
      ['debian-12', 'raw'],
    ]);
    expect(inv.images.get('alpine')).toMatchObject({ sizeBytes: 1 << 30, sha256: SHA, description: 'tiny' });
  });

  it('refuses a duplicate name and keeps the first', () => {
    const { inv } = tempInventory();
    inv.images.create({ name: 'debian-12', location: '/a' });
    thrown(() => inv.images.create({ name: 'debian-12', location: '/b' }), ConflictError, 'name');
    expect(inv.images.get('debian-12').location).toBe('/a');
  });

  it('refuses an invalid name', () => {
    const { inv } = tempInventory();
    thrown(() => inv.images.create({ name: 'Debian 12', location: '/a' }), ValidationError, 'name');
    expect(inv.images.list()).toEqual([]);
  });

  it('reports unknown images as not found', () => {
    const { inv } = tempInventory();
    expect(inv.images.find('nope')).toBeUndefined();
    expect(thrown(() => inv.images.get('nope'), NotFoundError, 'name').message).toBe('image "nope" does not exist');
    thrown(() => inv.images.remove('nope'), NotFoundError, 'name');
  });

  it('refuses to remove an image that profiles boot from, naming them', () => {
    const { inv } = tempInventory();
    inv.images.create({ name: 'debian-12', location: '/a' });
    inv.profiles.create({ name: 'workers', image: 'debian-12' });
    inv.profiles.create({ name: 'gpu', image: 'debian-12' });
    const err = thrown(() => inv.images.remove('debian-12'), ConflictError, 'name');
    expect(err.message).toBe('image "debian-12" is used by profile(s) gpu, workers');
    expect(inv.images.find('debian-12')).toBeDefined();

    inv.profiles.update('workers', { image: null });
    inv.profiles.remove('gpu');
    inv.images.remove('debian-12');
    expect(inv.images.list()).toEqual([]);
  });

  it('the database itself refuses deleting an image in use (foreign key backstop)', () => {
    const { inv } = tempInventory();
    inv.images.create({ name: 'debian-12', location: '/a' });
    inv.profiles.create({ name: 'workers', image: 'debian-12' });
    expect(() => inv.db.prepare("DELETE FROM images WHERE name = 'debian-12'").run()).toThrow(/FOREIGN KEY constraint failed/);
  });

  it('refuses an unknown format at the database level', () => {
    const { inv } = tempInventory();
    expect(() => inv.images.create({ name: 'x', location: '/a', format: 'vmdk' as 'raw' })).toThrow(/CHECK constraint failed/);
    expect(inv.images.find('x')).toBeUndefined();
  });
});

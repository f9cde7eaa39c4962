import { ConflictError, NotFoundError } from '../model/errors.js';
import { validateName } from '../model/identifiers.js';
import type { ImageCreate, ImageView } from '../model/schemas.js';
import { statement, type Db } from './database.js';
import { translateConstraint } from './sqlite-errors.js';

interface ImageRow {
  name: string;
  description: string;
  format: 'raw' | 'qcow2';
  location: string;
  size_bytes: number | null;
  sha256: string | null;
  created_at: string;
  updated_at: string;
}

/** Golden images that profiles boot from. Storage (cloning, RBD import) builds on these records. */
export class ImageStore {
  constructor(
    private readonly db: Db,
    private readonly now: () => Date,
  ) {}

  list(): ImageView[] {
    return (statement(this.db, 'SELECT * FROM images ORDER BY name').all() as ImageRow[]).map(toView);
  }

  find(name: string): ImageView | undefined {
    const row = statement(this.db, 'SELECT * FROM images WHERE name = ?').get(name) as ImageRow | undefined;
    return row && toView(row);
  }

  get(name: string): ImageView {
    const image = this.find(name);
    if (!image) throw new NotFoundError(`image "${name}" does not exist`, 'name');
    return image;
  }

  create(input: ImageCreate): ImageView {
    const name = validateName(input.name);
    const at = this.now().toISOString();
    return this.db.transaction(() => {
      if (this.find(name)) throw new ConflictError(`image "${name}" already exists`, 'name');
      try {
        this.db
          .prepare(
            `INSERT INTO images (name, description, format, location, size_bytes, sha256, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
          )
          .run(name, input.description ?? '', input.format ?? 'raw', input.location, input.sizeBytes ?? null, input.sha256 ?? null, at, at);
      } catch (err) {
        translateConstraint(err, { name: 'name' });
      }
      return this.get(name);
    }).immediate();
  }

  remove(name: string): void {
    this.db.transaction(() => {
      this.get(name);
      const users = statement(this.db, 'SELECT name FROM profiles WHERE image = ? ORDER BY name').all(name) as { name: string }[];
      if (users.length > 0) {
        throw new ConflictError(`image "${name}" is used by profile(s) ${users.map((u) => u.name).join(', ')}`, 'name');
      }
      statement(this.db, 'DELETE FROM images WHERE name = ?').run(name);
    }).immediate();
  }
}

function toView(r: ImageRow): ImageView {
  return {
    name: r.name,
    description: r.description,
    format: r.format,
    location: r.location,
    sizeBytes: r.size_bytes,
    sha256: r.sha256,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

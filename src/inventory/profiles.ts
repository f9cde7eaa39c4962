import { ConflictError, NotFoundError, ValidationError } from '../model/errors.js';
import { validateBootFile, validateLabels, validateName } from '../model/identifiers.js';
import { assertIpxeArgs, normalizeEfiPath } from '../model/ipxe-text.js';
import type { ProfileCreate, ProfileUpdate, ProfileView } from '../model/schemas.js';
import { statement, type Db } from './database.js';
import { parseJsonMap, translateConstraint } from './sqlite-errors.js';

interface ProfileRow {
  name: string;
  description: string;
  template: string;
  image: string | null;
  kernel_args: string;
  k3s_labels: string;
  efi_filename: string | null;
  params: string;
  boot_file: string | null;
  created_at: string;
  updated_at: string;
}

/** Profiles: which template a host boots with and its parameters (image, kernel args, K3s labels). */
export class ProfileStore {
  constructor(
    private readonly db: Db,
    private readonly now: () => Date,
  ) {}

  list(): ProfileView[] {
    return (statement(this.db, 'SELECT * FROM profiles ORDER BY name').all() as ProfileRow[]).map(toView);
  }

  find(name: string): ProfileView | undefined {
    const row = statement(this.db, 'SELECT * FROM profiles WHERE name = ?').get(name) as ProfileRow | undefined;
    return row && toView(row);
  }

  get(name: string): ProfileView {
    const p = this.find(name);
    if (!p) throw new NotFoundError(`profile "${name}" does not exist`, 'name');
    return p;
  }

  create(input: ProfileCreate): ProfileView {
    const name = validateName(input.name);
    const fields = this.clean(input);
    const at = this.now().toISOString();
    return this.db.transaction(() => {
      if (this.find(name)) throw new ConflictError(`profile "${name}" already exists`, 'name');
      this.checkImage(fields.image);
      try {
        this.db
          .prepare(
            `INSERT INTO profiles (name, description, template, image, kernel_args, k3s_labels, efi_filename, params, boot_file, created_at, updated_at)
             VALUES (@name, @description, @template, @image, @kernelArgs, @k3sLabels, @efiFilename, @params, @bootFile, @at, @at)`,
          )
          .run({
            name,
            description: fields.description ?? '',
            template: fields.template ?? 'sanboot',
            image: fields.image ?? null,
            kernelArgs: fields.kernelArgs ?? '',
            k3sLabels: JSON.stringify(fields.k3sLabels ?? {}),
            efiFilename: fields.efiFilename ?? null,
            params: JSON.stringify(fields.params ?? {}),
            bootFile: fields.bootFile ?? null,
            at,
          });
      } catch (err) {
        translateConstraint(err, { name: 'name' });
      }
      return this.get(name);
    }).immediate();
  }

  update(name: string, patch: ProfileUpdate): ProfileView {
    const fields = this.clean(patch);
    return this.db.transaction(() => {
      const current = this.get(name);
      if (fields.image !== undefined) this.checkImage(fields.image);
      const next = { ...current, ...stripUndefined(fields) };
      this.db
        .prepare(
          `UPDATE profiles SET description = @description, template = @template, image = @image, kernel_args = @kernelArgs,
             k3s_labels = @k3sLabels, efi_filename = @efiFilename, params = @params, boot_file = @bootFile, updated_at = @at WHERE name = @name`,
        )
        .run({
          name,
          description: next.description,
          template: next.template,
          image: next.image,
          kernelArgs: next.kernelArgs,
          k3sLabels: JSON.stringify(next.k3sLabels),
          efiFilename: next.efiFilename,
          params: JSON.stringify(next.params),
          bootFile: next.bootFile,
          at: this.now().toISOString(),
        });
      return this.get(name);
    }).immediate();
  }

  remove(name: string): void {
    this.db.transaction(() => {
      this.get(name);
      const n = (statement(this.db, 'SELECT count(*) AS n FROM hosts WHERE profile = ?').get(name) as { n: number }).n;
      if (n > 0) throw new ConflictError(`profile "${name}" is used by ${n} host(s)`, 'name');
      statement(this.db, 'DELETE FROM profiles WHERE name = ?').run(name);
    }).immediate();
  }

  private checkImage(image: string | null | undefined): void {
    if (image && !statement(this.db, 'SELECT 1 FROM images WHERE name = ?').get(image)) {
      throw new ValidationError(`image: "${image}" does not exist (register it with "hiveboot image add")`, 'image');
    }
  }

  /** Validates every field that ends up on an iPXE line or a K3s config. */
  private clean(input: ProfileUpdate): ProfileUpdate {
    const out: ProfileUpdate = { ...input };
    if (input.template !== undefined) out.template = validateName(input.template, 'template');
    if (input.image !== undefined && input.image !== null) out.image = validateName(input.image, 'image');
    if (input.kernelArgs !== undefined) out.kernelArgs = assertIpxeArgs(input.kernelArgs, 'kernelArgs');
    if (input.k3sLabels !== undefined) out.k3sLabels = validateLabels(input.k3sLabels, 'k3sLabels');
    if (input.efiFilename !== undefined && input.efiFilename !== null) out.efiFilename = normalizeEfiPath(input.efiFilename);
    if (input.bootFile !== undefined && input.bootFile !== null) out.bootFile = validateBootFile(input.bootFile);
    if (input.params !== undefined) {
      for (const [k, v] of Object.entries(input.params)) {
        if (!/^[A-Za-z][A-Za-z0-9_]{0,62}$/.test(k)) throw new ValidationError(`params: "${k}" is not a valid parameter name`, `params.${k}`);
        assertIpxeArgs(v, `params.${k}`);
      }
    }
    return out;
  }
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function toView(r: ProfileRow): ProfileView {
  return {
    name: r.name,
    description: r.description,
    template: r.template,
    image: r.image,
    kernelArgs: r.kernel_args,
    k3sLabels: parseJsonMap(r.k3s_labels),
    efiFilename: r.efi_filename,
    params: parseJsonMap(r.params),
    bootFile: r.boot_file,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

import { Command } from 'commander';
import { createHash } from 'node:crypto';
import { createReadStream, statSync } from 'node:fs';
import { resolve } from 'node:path';
import type { ImageCreate, ImageView } from '../../model/schemas.js';
import type { CephSettings } from '../../ceph/cluster.js';
import { DEFAULT_CONFIG_PATH, loadConfig } from '../../config/load.js';
import { importGolden, parseRbdTarget, progressPrinter } from '../import-rbd.js';
import type { GlobalOptions } from '../settings.js';
import { ctx, UsageError } from './common.js';
import { addListShowRemove } from './resource.js';

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** The cluster to import into: the config file's ceph section, with the command's flags on top. */
function cephSettingsFor(cmd: Command, o: { cephConf?: string; cephClient?: string; keyring?: string }): { settings: CephSettings; pool: string } {
  const g = cmd.optsWithGlobals<GlobalOptions>();
  const explicit = g.config ?? process.env.HIVEBOOT_CONFIG;
  const { ceph } = loadConfig({ path: explicit ?? DEFAULT_CONFIG_PATH, required: explicit !== undefined, env: process.env }).config;
  const keyring = o.keyring ?? ceph.keyring;
  return { settings: { conf: o.cephConf ?? ceph.conf, client: o.cephClient ?? ceph.client, ...(keyring ? { keyring } : {}) }, pool: ceph.pool };
}

export function imageCommand(): Command {
  const image = new Command('image').description('golden images that profiles boot from');

  image
    .command('add <name> <file>')
    .description('register a golden image file (its size is recorded; --checksum also records its sha256)')
    .option('--format <format>', 'raw or qcow2', 'raw')
    .option('--description <text>', 'what is in the image')
    .option('--checksum', 'read the whole file and record its sha256')
    .option('--rbd <pool/image>', 'import the file into this RBD image (pool from the config\'s ceph.pool if omitted), snapshot it, and register the snapshot')
    .option('--snapshot <name>', 'with --rbd: the snapshot hosts\' disks are cloned from', 'golden')
    .option('--ceph-conf <file>', 'with --rbd: ceph.conf (default: the config\'s ceph.conf)')
    .option('--ceph-client <name>', 'with --rbd: cephx user (default: the config\'s ceph.client)')
    .option('--keyring <file>', 'with --rbd: keyring of that user (default: the config\'s ceph.keyring)')
    .action(async (name: string, file: string, o, cmd: Command) => {
      const { api, out } = ctx(cmd);
      const path = resolve(file);
      let size: number;
      try {
        const st = statSync(path);
        if (!st.isFile()) throw new UsageError(`${file}: not a regular file`);
        size = st.size;
      } catch (err) {
        if (err instanceof UsageError) throw err;
        throw new UsageError(`${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
      }
      let location = path;
      let note = '';
      if (o.rbd) {
        if (o.format !== 'raw') throw new UsageError('--rbd: only raw images can be imported into RBD');
        const ceph = cephSettingsFor(cmd, o);
        const imported = await importGolden(path, size, parseRbdTarget(o.rbd, ceph.pool), o.snapshot, ceph.settings, progressPrinter());
        location = imported.location;
        note = imported.imported ? `, ${(imported.written / 2 ** 30).toFixed(2)} GiB of data written to RBD` : ', already in RBD (nothing copied)';
      }
      const body: ImageCreate = { name, location, format: o.format, sizeBytes: size };
      if (o.description) body.description = o.description;
      if (o.checksum) body.sha256 = await sha256File(path);
      const img = await api.post<ImageView>('/v1/images', body);
      if (out.format === 'json') return out.json(img);
      out.line(`registered image ${img.name}: ${img.location} (${(size / 2 ** 30).toFixed(2)} GiB${note})`);
    });

  addListShowRemove(image, {
    noun: 'image',
    path: '/v1/images',
    columns: [
      ['NAME', 'name'],
      ['FORMAT', 'format'],
      ['SIZE', 'sizeBytes'],
      ['LOCATION', 'location'],
    ],
    removeHelp: 'remove an image that no profile uses (the file is left alone)',
  });

  return image;
}

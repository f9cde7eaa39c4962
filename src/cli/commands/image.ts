import { Command } from 'commander';
import { createHash } from 'node:crypto';
import { createReadStream, statSync } from 'node:fs';
import { resolve } from 'node:path';
import type { ImageCreate, ImageView } from '../../model/schemas.js';
import { ctx, UsageError } from './common.js';
import { addListShowRemove } from './resource.js';

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export function imageCommand(): Command {
  const image = new Command('image').description('golden images that profiles boot from');

  image
    .command('add <name> <file>')
    .description('register a golden image file (its size is recorded; --checksum also records its sha256)')
    .option('--format <format>', 'raw or qcow2', 'raw')
    .option('--description <text>', 'what is in the image')
    .option('--checksum', 'read the whole file and record its sha256')
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
      const body: ImageCreate = { name, location: path, format: o.format, sizeBytes: size };
      if (o.description) body.description = o.description;
      if (o.checksum) body.sha256 = await sha256File(path);
      const img = await api.post<ImageView>('/v1/images', body);
      if (out.format === 'json') return out.json(img);
      out.line(`registered image ${img.name}: ${img.location} (${(size / 2 ** 30).toFixed(2)} GiB)`);
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

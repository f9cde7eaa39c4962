import { Command } from 'commander';
import type { ProfileCreate, ProfileUpdate, ProfileView } from '../../model/schemas.js';
import { collect, ctx, keyValues, UsageError } from './common.js';
import { addListShowRemove } from './resource.js';

const enc = encodeURIComponent;

function profileOptions(cmd: Command): Command {
  return cmd
    .option('--description <text>', 'what this profile is for')
    .option('--template <name>', 'boot template (boot-templates/<name>.ipxe.hbs), default sanboot')
    .option('--image <name>', 'golden image the hosts boot from')
    .option('--kernel-args <args>', 'extra kernel arguments')
    .option('--k3s-label <key=value>', 'K3s node label for every host of this profile (repeatable)', collect)
    .option('--efi-filename <path>', 'UEFI: the file sanboot starts, e.g. /EFI/BOOT/BOOTX64.EFI')
    .option('--param <key=value>', 'extra template parameter (repeatable)', collect)
    .option('--boot-file <file|url>', 'PXE boot file for hosts of this profile, over the architecture table');
}

function fields(o: Record<string, unknown>): ProfileUpdate {
  const p: ProfileUpdate = {};
  if (typeof o.description === 'string') p.description = o.description;
  if (typeof o.template === 'string') p.template = o.template;
  if (typeof o.image === 'string') p.image = o.image;
  if (typeof o.kernelArgs === 'string') p.kernelArgs = o.kernelArgs;
  const labels = keyValues(o.k3sLabel as string[] | undefined, '--k3s-label');
  if (labels) p.k3sLabels = labels;
  if (typeof o.efiFilename === 'string') p.efiFilename = o.efiFilename;
  const params = keyValues(o.param as string[] | undefined, '--param');
  if (params) p.params = params;
  if (typeof o.bootFile === 'string') p.bootFile = o.bootFile;
  return p;
}

export function profileCommand(): Command {
  const profile = new Command('profile').description('what hosts boot: template, image, kernel arguments, K3s labels');

  profileOptions(profile.command('add <name>').description('create a profile')).action(async (name: string, o, cmd: Command) => {
    const { api, out } = ctx(cmd);
    const body: ProfileCreate = { name, ...fields(o) } as ProfileCreate;
    const p = await api.post<ProfileView>('/v1/profiles', body);
    if (out.format === 'json') return out.json(p);
    out.line(`created profile ${p.name} (template ${p.template}${p.image ? `, image ${p.image}` : ''})`);
  });

  addListShowRemove(profile, {
    noun: 'profile',
    path: '/v1/profiles',
    columns: [
      ['NAME', 'name'],
      ['TEMPLATE', 'template'],
      ['IMAGE', 'image'],
      ['K3S LABELS', 'k3sLabels'],
      ['DESCRIPTION', 'description'],
    ],
    removeHelp: 'remove a profile that no host uses',
  });

  profileOptions(profile.command('update <name>').description('change a profile'))
    .option('--no-image', 'remove the image')
    .action(async (name: string, o, cmd: Command) => {
      const { api, out } = ctx(cmd);
      const patch = fields(o);
      if (o.image === false) patch.image = null;
      if (Object.keys(patch).length === 0) throw new UsageError('nothing to change: give at least one option');
      const p = await api.patch<ProfileView>(`/v1/profiles/${enc(name)}`, patch);
      if (out.format === 'json') return out.json(p);
      out.line(`updated profile ${p.name}`);
    });

  return profile;
}

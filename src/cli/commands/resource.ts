import type { Command } from 'commander';
import { ctx } from './common.js';

/**
 * The list / show / rm subcommands every named resource has (profiles, images), written once.
 * `path` is the collection, e.g. /v1/profiles.
 */
export function addListShowRemove(
  parent: Command,
  spec: { noun: string; path: string; columns: [string, string][]; removeHelp: string },
): void {
  parent
    .command('list')
    .alias('ls')
    .description(`list ${spec.noun}s`)
    .action(async (_o, cmd: Command) => {
      const { api, out } = ctx(cmd);
      const { items } = await api.get<{ items: Record<string, unknown>[] }>(spec.path);
      out.table(items, spec.columns);
    });

  parent
    .command('show <name>')
    .description(`show a ${spec.noun}`)
    .action(async (name: string, _o, cmd: Command) => {
      const { api, out } = ctx(cmd);
      out.record(await api.get<Record<string, unknown>>(`${spec.path}/${encodeURIComponent(name)}`));
    });

  parent
    .command('rm <name>')
    .alias('remove')
    .description(spec.removeHelp)
    .action(async (name: string, _o, cmd: Command) => {
      const { api, out } = ctx(cmd);
      await api.delete(`${spec.path}/${encodeURIComponent(name)}`);
      if (out.format === 'json') return out.json({ removed: name });
      out.line(`removed ${spec.noun} ${name}`);
    });
}

import { Command } from 'commander';
import type { DiskInput, EventView, HostCreate, HostUpdate, HostView } from '../../model/schemas.js';
import { collect, ctx, intOption, keyValues, readSecret, UsageError } from './common.js';

const enc = encodeURIComponent;

interface DiskFlags {
  portal?: string[];
  targetIqn?: string;
  lun?: string;
  chapUser?: string;
  chapSecretFile?: string;
  mutualUser?: string;
  mutualSecretFile?: string;
}

function diskFromFlags(f: DiskFlags): DiskInput | undefined {
  const any = f.portal || f.targetIqn || f.lun || f.chapUser || f.chapSecretFile || f.mutualUser || f.mutualSecretFile;
  if (!any) return undefined;
  if (!f.portal?.length) throw new UsageError('--portal is required with other disk options');
  if (!f.targetIqn) throw new UsageError('--target-iqn is required with other disk options');
  const disk: DiskInput = { portals: f.portal, targetIqn: f.targetIqn };
  const lun = intOption(f.lun, '--lun');
  if (lun !== undefined) disk.lun = lun;
  if (f.chapUser !== undefined) disk.chapUser = f.chapUser;
  const secret = readSecret(f.chapSecretFile);
  if (secret !== undefined) disk.chapSecret = secret;
  if (f.mutualUser !== undefined) disk.mutualUser = f.mutualUser;
  const mutual = readSecret(f.mutualSecretFile);
  if (mutual !== undefined) disk.mutualSecret = mutual;
  return disk;
}

function addDiskOptions(cmd: Command): Command {
  return cmd
    .option('--portal <address[:port]>', 'iSCSI portal of the disk (repeat for multipath)', collect)
    .option('--target-iqn <iqn>', 'iSCSI target name of the disk')
    .option('--lun <n>', 'LUN of the disk (default 0)')
    .option('--chap-user <user>', 'CHAP user name the host logs in with (8-64 characters)')
    .option('--chap-secret-file <file>', 'file holding the CHAP secret (12-16 characters); "-" reads standard input')
    .option('--mutual-user <user>', 'mutual CHAP: the user name the target answers with')
    .option('--mutual-secret-file <file>', 'mutual CHAP secret file; "-" reads standard input');
}

const COLUMNS: [string, string][] = [
  ['MAC', 'mac'],
  ['HOSTNAME', 'hostname'],
  ['STATE', 'state'],
  ['PROFILE', 'profile'],
  ['LAST IP', 'lastIp'],
  ['LAST SEEN', 'lastSeenAt'],
];

export function hostCommand(): Command {
  const host = new Command('host').description('register and manage machines (by MAC)');

  addDiskOptions(
    host
      .command('add')
      .description('register a machine')
      .requiredOption('--mac <mac>', 'MAC address of the boot NIC')
      .option('--hostname <name>', 'RFC 1123 host name (also the K3s node name)')
      .option('--profile <name>', 'profile to boot')
      .option('--state <state>', 'initial state (default: ready when it has a disk, else pending)')
      .option('--label <key=value>', 'node label (repeatable)', collect)
      .option('--initiator-iqn <iqn>', 'iSCSI initiator name (default <prefix>:<hostname>)')
      .option('--ip <address>', 'reserved IPv4 address (full-DHCP mode)')
      .option('--boot-file <file|url>', 'PXE boot file for this host, over its profile and the architecture table'),
  ).action(async (o, cmd: Command) => {
    const { api, out } = ctx(cmd);
    const body: HostCreate = { mac: o.mac };
    if (o.hostname !== undefined) body.hostname = o.hostname;
    if (o.profile !== undefined) body.profile = o.profile;
    if (o.state !== undefined) body.state = o.state;
    const labels = keyValues(o.label, '--label');
    if (labels) body.labels = labels;
    if (o.initiatorIqn !== undefined) body.initiatorIqn = o.initiatorIqn;
    if (o.ip !== undefined) body.ip = o.ip;
    if (o.bootFile !== undefined) body.bootFile = o.bootFile;
    const disk = diskFromFlags(o);
    if (disk) body.disk = disk;
    const h = await api.post<HostView>('/v1/hosts', body);
    if (out.format === 'json') return out.json(h);
    out.line(`registered ${h.mac}${h.hostname ? ` as ${h.hostname}` : ''}: ${h.state}`);
  });

  host
    .command('list')
    .alias('ls')
    .description('list machines')
    .option('--state <state>', 'only this state (discovered, pending, ready, disabled)')
    .option('--profile <name>', 'only this profile')
    .action(async (o, cmd: Command) => {
      const { api, out } = ctx(cmd);
      const { items } = await api.get<{ items: HostView[] }>('/v1/hosts', { state: o.state, profile: o.profile });
      out.table(items as unknown as Record<string, unknown>[], COLUMNS);
    });

  host
    .command('show <mac>')
    .description('show one machine')
    .action(async (mac: string, _o, cmd: Command) => {
      const { api, out } = ctx(cmd);
      out.record((await api.get<HostView>(`/v1/hosts/${enc(mac)}`)) as unknown as Record<string, unknown>);
    });

  addDiskOptions(
    host
      .command('update <mac>')
      .description('change a machine')
      .option('--hostname <name>', 'new host name')
      .option('--profile <name>', 'new profile')
      .option('--no-profile', 'remove the profile')
      .option('--state <state>', 'set the state (discovered, pending, ready, disabled)')
      .option('--label <key=value>', 'replace the labels (repeatable)', collect)
      .option('--initiator-iqn <iqn>', 'iSCSI initiator name')
      .option('--ip <address>', 'reserved IPv4 address (full-DHCP mode)')
      .option('--no-ip', 'remove the address reservation')
      .option('--boot-file <file|url>', 'PXE boot file for this host')
      .option('--no-boot-file', 'use the profile / architecture table again')
      .option('--no-disk', 'remove the disk'),
  ).action(async (mac: string, o, cmd: Command) => {
    const { api, out } = ctx(cmd);
    const patch: HostUpdate = {};
    if (o.hostname !== undefined) patch.hostname = o.hostname;
    if (o.profile === false) patch.profile = null;
    else if (typeof o.profile === 'string') patch.profile = o.profile;
    if (o.state !== undefined) patch.state = o.state;
    const labels = keyValues(o.label, '--label');
    if (labels) patch.labels = labels;
    if (o.initiatorIqn !== undefined) patch.initiatorIqn = o.initiatorIqn;
    if (o.ip === false) patch.ip = null;
    else if (typeof o.ip === 'string') patch.ip = o.ip;
    if (o.bootFile === false) patch.bootFile = null;
    else if (typeof o.bootFile === 'string') patch.bootFile = o.bootFile;
    if (o.disk === false) patch.disk = null;
    else {
      const disk = diskFromFlags(o);
      if (disk) patch.disk = disk;
    }
    if (Object.keys(patch).length === 0) throw new UsageError('nothing to change: give at least one option');
    const h = await api.patch<HostView>(`/v1/hosts/${enc(mac)}`, patch);
    if (out.format === 'json') return out.json(h);
    out.line(`updated ${h.mac}${h.hostname ? ` (${h.hostname})` : ''}: ${h.state}`);
  });

  host
    .command('rm <mac>')
    .alias('remove')
    .description('remove a machine (its events are kept; its disk data too unless --delete-disk)')
    .option('--delete-disk', 'also delete the disk hiveboot provisioned for it')
    .action(async (mac: string, o, cmd: Command) => {
      const { api, out } = ctx(cmd);
      await api.delete(`/v1/hosts/${enc(mac)}${o.deleteDisk ? '?deleteDisk=true' : ''}`);
      if (out.format === 'json') return out.json({ removed: mac, diskDeleted: o.deleteDisk === true });
      out.line(`removed ${mac}${o.deleteDisk ? ' and its disk' : ''}`);
    });

  host
    .command('rotate-chap <mac>')
    .description("give the machine a new CHAP secret (its target takes it at once; the machine gets it at its next boot)")
    .action(async (mac: string, _o, cmd: Command) => {
      const { api, out } = ctx(cmd);
      const h = await api.post<HostView>(`/v1/hosts/${enc(mac)}/disk/rotate-chap`, {});
      if (out.format === 'json') return out.json(h);
      out.line(`rotated the CHAP secret of ${h.mac}${h.hostname ? ` (${h.hostname})` : ''}; it takes effect at its next boot`);
    });

  host
    .command('approve <mac>')
    .description('approve a discovered machine (host name defaults to node-<mac>, profile to the default)')
    .option('--hostname <name>', 'host name to give it')
    .option('--profile <name>', 'profile to give it')
    .action(async (mac: string, o, cmd: Command) => {
      const { api, out } = ctx(cmd);
      const body: Record<string, string> = {};
      if (o.hostname) body.hostname = o.hostname;
      if (o.profile) body.profile = o.profile;
      const h = await api.post<HostView>(`/v1/hosts/${enc(mac)}/approve`, body);
      if (out.format === 'json') return out.json(h);
      out.line(`approved ${h.mac} as ${h.hostname} (profile ${h.profile}): ${h.state}`);
    });

  host
    .command('events <mac>')
    .description("a machine's boot timeline, oldest first")
    .option('--limit <n>', 'how many of the newest events', '50')
    .option('-f, --follow', 'keep printing new events as they arrive (Ctrl-C stops)')
    .option('--until <stage>', 'with --follow: stop after the first new event of this stage (e.g. config-applied)')
    .option('--interval <ms>', 'with --follow: how often to ask for new events', '1000')
    .action(async (mac: string, o, cmd: Command) => {
      const { api, out } = ctx(cmd);
      const wanted = intOption(o.limit, '--limit')!;
      if (wanted < 1) throw new UsageError('--limit: must be at least 1');
      if (o.until !== undefined && !o.follow) throw new UsageError('--until: needs --follow');
      const interval = intOption(o.interval, '--interval')!;
      if (interval < 100) throw new UsageError('--interval: must be at least 100 (ms)');
      const path = `/v1/hosts/${enc(mac)}/events`;
      const events: EventView[] = [];
      let before: number | undefined;
      while (events.length < wanted) {
        const page = await api.get<{ items: EventView[]; nextBefore: number | null }>(path, {
          limit: Math.min(1000, wanted - events.length),
          before,
        });
        events.push(...page.items);
        if (page.nextBefore === null) break;
        before = page.nextBefore;
      }
      events.reverse();
      const columns: [string, string][] = [
        ['TIME', 'at'],
        ['STAGE', 'stage'],
        ['FROM', 'sourceIp'],
        ['WHAT', 'message'],
        ['WHY', 'reason'],
      ];
      if (!o.follow) return out.table(events as unknown as Record<string, unknown>[], columns);

      // Following: one line per event (a table cannot be re-aligned once printed); JSON as one object
      // per line, so a script can read them as they come.
      const print = (e: EventView) =>
        out.format === 'json'
          ? process.stdout.write(`${JSON.stringify(e)}\n`)
          : out.line(`${e.at}  ${e.stage.padEnd(15)} ${(e.sourceIp ?? '-').padEnd(15)} ${e.message}${e.reason ? ` — ${e.reason}` : ''}`);
      events.forEach(print);
      let last = events.length ? events[events.length - 1]!.id : 0;
      for (;;) {
        await new Promise((r) => setTimeout(r, interval));
        // Newest first from the API: take pages back to the last event printed, then print oldest first.
        const fresh: EventView[] = [];
        let cursor: number | undefined;
        for (;;) {
          const page = await api.get<{ items: EventView[]; nextBefore: number | null }>(path, { limit: 100, before: cursor });
          const newer = page.items.filter((e) => e.id > last);
          fresh.push(...newer);
          if (newer.length < page.items.length || page.nextBefore === null) break;
          cursor = page.nextBefore;
        }
        fresh.reverse();
        for (const e of fresh) {
          print(e);
          last = e.id;
          if (o.until !== undefined && e.stage === o.until) return;
        }
      }
    });

  return host;
}

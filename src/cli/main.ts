import { Command, CommanderError } from 'commander';
import { ConfigError } from '../config/load.js';
import { DomainError } from '../model/errors.js';
import { VERSION } from '../version.js';
import { ApiClient, ApiError } from './client.js';
import { UsageError } from './commands/common.js';
import { hostCommand } from './commands/host.js';
import { imageCommand } from './commands/image.js';
import { profileCommand } from './commands/profile.js';
import { serveCommand } from './commands/serve.js';
import { resolveClientSettings } from './settings.js';

export function buildProgram(): Command {
  const program = new Command('hiveboot')
    .description('network boot for diskless clusters: DHCP, TFTP, iPXE scripts and iSCSI disks')
    .option('-c, --config <file>', 'config file (default /etc/hiveboot/hiveboot.yaml; env HIVEBOOT_CONFIG)')
    .option('--url <url>', 'daemon URL for client commands (env HIVEBOOT_URL; default from the config file)')
    .option('--token <token>', 'API token (env HIVEBOOT_TOKEN; default from the config file / token file)')
    .option('--token-file <file>', 'file holding the API token (env HIVEBOOT_TOKEN_FILE)')
    .option('-o, --output <format>', 'table or json', 'table');

  program.addCommand(serveCommand());
  program.addCommand(hostCommand());
  program.addCommand(profileCommand());
  program.addCommand(imageCommand());
  program
    .command('version')
    .description('print the version of this CLI and of the daemon it talks to')
    .action(async (_o, cmd: Command) => {
      const g = cmd.optsWithGlobals<{ output?: string }>();
      let daemon: string | null = null;
      try {
        const s = resolveClientSettings(g, process.env);
        daemon = (await new ApiClient(s.url, s.token, 3000).get<{ version: string }>('/healthz')).version;
      } catch {
        daemon = null;
      }
      if (g.output === 'json') process.stdout.write(`${JSON.stringify({ cli: VERSION, daemon })}\n`);
      else process.stdout.write(`hiveboot ${VERSION}${daemon ? ` (daemon ${daemon})` : ''}\n`);
    });
  // Every (sub)command: usage errors come back here, and read "hiveboot: <reason>" like other failures.
  const output = {
    outputError: (str: string, write: (s: string) => void) => write(`hiveboot: ${str.replace(/^error: /, '')}`),
  };
  const all = (c: Command): Command[] => [c, ...c.commands.flatMap(all)];
  for (const c of all(program)) c.exitOverride().configureOutput(output);
  return program;
}

/** Runs the CLI; failures print one line "hiveboot: <reason>" and exit non-zero (2 for usage). */
export async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv, { from: 'user' });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander already printed help or the usage error.
      return err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.exitCode === 0 ? 0 : 2;
    }
    if (err instanceof UsageError) return fail(err.message, 2);
    if (err instanceof ApiError) return fail(err.field && !err.message.includes(err.field) ? `${err.field}: ${err.message}` : err.message, 1);
    if (err instanceof ConfigError || err instanceof DomainError) return fail(err.message, 1);
    return fail((err as Error).message ?? String(err), 1);
  }
}

function fail(message: string, code: number): number {
  process.stderr.write(`hiveboot: ${message.split('\n')[0]}\n`);
  return code;
}

import { Command } from 'commander';
import { DEFAULT_CONFIG_PATH, loadConfig } from '../../config/load.js';
import { createLogger } from '../../log.js';

/**
 * `hiveboot serve`: the daemon in the foreground (systemd runs it this way). Process concerns live
 * here: config file, signals, exit codes.
 */
export function serveCommand(): Command {
  return new Command('serve')
    .description('run the daemon in the foreground')
    .action(async (_o, cmd: Command) => {
      const g = cmd.optsWithGlobals<{ config?: string }>();
      const explicit = g.config ?? process.env.HIVEBOOT_CONFIG;
      const { config, file } = loadConfig({ path: explicit ?? DEFAULT_CONFIG_PATH, required: explicit !== undefined, env: process.env });
      const log = createLogger({ level: config.log.level });
      log.info({ config: file ?? '(defaults)' }, 'starting hiveboot');
      // Loaded here, not at the top: client commands should not pay for the whole daemon at start-up.
      const { startDaemon } = await import('../../daemon.js');
      const { systemdNotifier } = await import('../../systemd/notify.js');
      // Under systemd (Type=notify): the daemon says READY/RELOADING/STOPPING, the watchdog is pinged
      // from here on. The variables leave the environment: no child process may speak for us.
      const notifier = systemdNotifier(process.env, { logger: log });
      for (const name of ['NOTIFY_SOCKET', 'WATCHDOG_USEC', 'WATCHDOG_PID']) delete process.env[name];
      notifier.startWatchdog();
      const daemon = await startDaemon(config, { logger: log, notifier });
      const stop = (signal: string) => {
        log.info({ signal }, 'stopping');
        // A second signal while stopping means "now".
        process.once(signal as NodeJS.Signals, () => process.exit(1));
        daemon.stop().then(
          () => process.exit(0),
          (err) => {
            log.error({ err }, 'error while stopping');
            process.exit(1);
          },
        );
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
      // SIGHUP: the config file is read again; one that does not load is refused whole, with its error.
      process.on('SIGHUP', () => {
        let next;
        try {
          next = loadConfig({ path: explicit ?? DEFAULT_CONFIG_PATH, required: explicit !== undefined, env: process.env }).config;
        } catch (err) {
          log.error({ err: (err as Error).message }, 'reload refused: the config does not load; keeping the running one');
          return;
        }
        daemon.reload(next);
      });
    });
}

import { readFileSync } from 'node:fs';
import { defaultTokenFile, readTokenFile } from '../config/api-token.js';
import { DEFAULT_CONFIG_PATH, loadConfig } from '../config/load.js';

export interface GlobalOptions {
  config?: string;
  url?: string;
  token?: string;
  tokenFile?: string;
  output?: string;
}

export interface ClientSettings {
  url: string;
  token?: string;
}

/**
 * Where the CLI finds the daemon and its token: flags, then HIVEBOOT_URL / HIVEBOOT_TOKEN /
 * HIVEBOOT_TOKEN_FILE, then the config file (its listen address and token file).
 */
export function resolveClientSettings(opts: GlobalOptions, env: NodeJS.ProcessEnv): ClientSettings {
  const explicitConfig = opts.config ?? env.HIVEBOOT_CONFIG;
  let fromConfig: ClientSettings | undefined;
  const needConfig = !(opts.url ?? env.HIVEBOOT_URL) || !(opts.token ?? opts.tokenFile ?? env.HIVEBOOT_TOKEN ?? env.HIVEBOOT_TOKEN_FILE);
  if (needConfig) {
    const { config } = loadConfig({ path: explicitConfig ?? DEFAULT_CONFIG_PATH, required: explicitConfig !== undefined, env });
    const listen = config.http.listen === '0.0.0.0' || config.http.listen === '::' ? '127.0.0.1' : config.http.listen;
    const host = listen.includes(':') ? `[${listen}]` : listen;
    let token = config.api.token;
    if (!token) {
      try {
        token = readTokenFile(defaultTokenFile(config));
      } catch {
        token = undefined; // unreadable (not root?): the API will answer 401 with a hint
      }
    }
    fromConfig = { url: config.http.publicUrl ?? `http://${host}:${config.http.port}`, token };
  }
  const read = (file: string | undefined) => (file ? readFileSync(file, 'utf8').trim() : undefined);
  const token = opts.token ?? read(opts.tokenFile) ?? env.HIVEBOOT_TOKEN ?? read(env.HIVEBOOT_TOKEN_FILE) ?? fromConfig?.token;
  return { url: opts.url ?? env.HIVEBOOT_URL ?? fromConfig!.url, token };
}

// `hiveboot <args>` from the TypeScript sources (bin/hiveboot.js runs dist/), for tests that need the
// real serve command — its signals and its systemd notifications — without building dist/:
//   node --import tsx test/systemd/serve-cli.ts serve --config FILE
import { main } from '../../src/cli/main.js';

const code = await main(process.argv.slice(2));
if (process.argv[2] !== 'serve' || code !== 0) process.exitCode = code;

// Runs the daemon from the TypeScript sources, for tests that start it inside a network namespace:
//   ip netns exec NS node --import tsx test/support/serve.ts CONFIG.yaml
// The same path as `hiveboot serve`, without needing dist/ to be built.
import { loadConfig } from '../../src/config/load.js';
import { startDaemon } from '../../src/daemon.js';

const { config } = loadConfig({ path: process.argv[2]!, required: true, env: process.env });
const daemon = await startDaemon(config);
const stop = () => void daemon.stop().then(() => process.exit(0));
process.once('SIGTERM', stop);
process.once('SIGINT', stop);

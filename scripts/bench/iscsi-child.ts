// The hiveboot side of the iSCSI bench, as its own process: the test target (test/support/iscsi-target.ts)
// started from a spec in argv, "ready <port>" on stdout, stopped by SIGTERM. iscsi.ts bundles this file
// to plain JavaScript first, so the process measured is what the daemon runs (compiled code, no tsx
// loader thread, which alone adds ~40 MB of RSS).
import { startTestTarget, type TestTargetSpec } from '../../test/support/iscsi-target.js';

const spec = JSON.parse(process.argv[2] ?? '') as TestTargetSpec;
const target = await startTestTarget(spec);
process.stdout.write(`ready ${target.port}\n`);
process.on('SIGTERM', () => void target.stop().then(() => process.exit(0)));

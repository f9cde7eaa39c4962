#!/usr/bin/env node
// The hiveboot command. The TypeScript sources are compiled to dist/ by `npm run build`
// (run automatically by `npm ci` / `npm install` through the "prepare" script).
import { main } from '../dist/cli/main.js';

const code = await main(process.argv.slice(2));
// serve keeps running until a signal; every other command ends here.
if (process.argv[2] !== 'serve' || code !== 0) process.exitCode = code;

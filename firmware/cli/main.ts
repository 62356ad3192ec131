#!/usr/bin/env node
import { runCli } from './index.js';

runCli(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`onionbox: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);

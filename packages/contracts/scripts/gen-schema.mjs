#!/usr/bin/env node
// Writes packages/daemon/schema/member-config.schema.json from the TypeBox definition
// (src/member-config.ts, read from the build: run `npx tsc -b` first). With --check, writes nothing and
// exits 1 when the committed file differs.
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { memberConfigJsonSchema } from '../dist/index.js';

const target = fileURLToPath(new URL('../../daemon/schema/member-config.schema.json', import.meta.url));
const text = `${JSON.stringify(memberConfigJsonSchema(), null, 2)}\n`;
if (process.argv.includes('--check')) {
  if (readFileSync(target, 'utf8') !== text) {
    process.stderr.write(`${target} is not the generated schema; run node packages/contracts/scripts/gen-schema.mjs\n`);
    process.exit(1);
  }
} else {
  writeFileSync(target, text);
  process.stdout.write(`wrote ${target}\n`);
}

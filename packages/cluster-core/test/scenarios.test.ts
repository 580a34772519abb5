/**
 * Golden scenarios (testdata/*.txt): each file is a script of commands and their expected output; see
 * src/scenario.ts for the format. GWC_UPDATE_GOLDEN=1 rewrites the files with the actual output; review the
 * diff like code.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { CORE_COMMANDS, CoreScenario, runScript } from '../src/testing.js';

const dir = fileURLToPath(new URL('./testdata/', import.meta.url));
const update = process.env['GWC_UPDATE_GOLDEN'] === '1';

describe('golden scenarios', () => {
  const files = readdirSync(dir).filter((f) => f.endsWith('.txt')).sort();
  it('has scenarios', () => expect(files.length).toBeGreaterThan(0));
  it.each(files)('%s', (file) => {
    const path = dir + file;
    const script = readFileSync(path, 'utf8');
    const actual = runScript(script, CORE_COMMANDS, new CoreScenario());
    if (update) writeFileSync(path, actual);
    else expect(actual, `${file} differs; if the change is intended, run with GWC_UPDATE_GOLDEN=1 and review the diff`).toBe(script);
  });
});

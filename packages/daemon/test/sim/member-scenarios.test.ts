/**
 * Golden scenarios of whole members (testdata/*.txt; format in cluster-core's src/scenario.ts): the core,
 * session replication, the data-plane policy and the operator plane on one simulated network in virtual
 * time. GWC_UPDATE_GOLDEN=1 rewrites the files with the actual output; review the diff like code.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runScript } from '@gwcluster/cluster-core/testing';
import { MEMBER_COMMANDS, MemberScenario } from '../../src/sim/member-scenario.js';

const dir = fileURLToPath(new URL('./testdata/', import.meta.url));
const update = process.env['GWC_UPDATE_GOLDEN'] === '1';

describe('golden scenarios of whole members', () => {
  const files = readdirSync(dir).filter((f) => f.endsWith('.txt')).sort();
  it('has scenarios', () => expect(files.length).toBeGreaterThan(0));
  it.each(files)('%s', (file) => {
    const path = dir + file;
    const script = readFileSync(path, 'utf8');
    const actual = runScript(script, MEMBER_COMMANDS, new MemberScenario());
    if (update) writeFileSync(path, actual);
    else expect(actual, `${file} differs; if the change is intended, run with GWC_UPDATE_GOLDEN=1 and review the diff`).toBe(script);
  });
});

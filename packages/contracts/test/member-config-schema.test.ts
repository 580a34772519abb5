// The committed JSON schema is the one generated from the TypeBox definition.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { memberConfigJsonSchema } from '../src/index.js';

describe('member configuration schema', () => {
  it('packages/daemon/schema/member-config.schema.json equals the generated one (node packages/contracts/scripts/gen-schema.mjs)', () => {
    const committed = readFileSync(new URL('../../daemon/schema/member-config.schema.json', import.meta.url), 'utf8');
    expect(committed).toBe(`${JSON.stringify(memberConfigJsonSchema(), null, 2)}\n`);
  });
});

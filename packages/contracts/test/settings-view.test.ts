// The live settings as a member reports them (GET /v1/config, the answer to PATCH /v1/config) are read by
// members and gwctl of other releases during a rolling upgrade: a field the other release does not know
// may be missing or added, and the view still validates (fastify serialises it, gwctl checks it).
import { Value } from '@sinclair/typebox/value';
import { describe, expect, it } from 'vitest';
import { CLUSTER_LIVE_FIELDS, ConfigChangedSchema, SettingsSchema } from '../src/index.js';

const complete = Object.fromEntries(CLUSTER_LIVE_FIELDS.map((f) => [f, f === 'addressPool' ? [] : f === 'memberAddressTakeover' ? false : f === 'addressPoolFailback' ? 'automatic' : 100]));

describe('SettingsSchema', () => {
  it("accepts this release's settings, an older release's (a field missing) and a newer release's (a field added)", () => {
    expect(Value.Check(SettingsSchema, complete)).toBe(true);
    const { memberAddressTakeover: _m, ...older } = complete;
    expect(Value.Check(SettingsSchema, older)).toBe(true);
    expect(Value.Check(SettingsSchema, { ...complete, futureKnobMs: 5 })).toBe(true);
    expect(Value.Check(ConfigChangedSchema, { version: 3, settings: older, doneBy: '192.0.2.11', forwarded: true })).toBe(true);
  });

  it('still refuses a known field of the wrong type', () => {
    expect(Value.Check(SettingsSchema, { ...complete, keepalivePeriodMs: 'fast' })).toBe(false);
    expect(Value.Check(SettingsSchema, { ...complete, addressPool: 'none' })).toBe(false);
  });
});

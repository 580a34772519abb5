// Fuzzing what state sync reads from outside (fast-check): the session file (decodeSessionFile never
// throws; an altered record never restores), the sealed StateSync opener (never throws), and the native
// session table's install of replicated records (random 112-byte records are counted, never crash).
import { X509Certificate } from 'node:crypto';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { SESSION_RECORD_SIZE, SessionTable, decodeSessionRecord } from '@gwcluster/native-addon';
import { SyncCipher, createTestPki, loadPrivateKey, mutateBytes as mutate, type TestPki } from '@gwcluster/security';
import type { StateSync } from '@gwcluster/wire';
import { SESSION_FILE_HEADER, decodeSessionFile, encodeSessionFile } from '../../src/sync/session-file.js';
import { openStateSync, sealStateSync } from '../../src/sync/sealed-sync.js';

const NOW = 1_700_000_000_000;
const edits = fc.array(fc.tuple(fc.nat(), fc.nat({ max: 255 }), fc.constantFrom('flip', 'set', 'cut', 'insert')), { minLength: 1, maxLength: 5 });

/** A plausible record: format 1, IPv4 TCP, the rest random. */
const record = fc.uint8Array({ minLength: SESSION_RECORD_SIZE, maxLength: SESSION_RECORD_SIZE }).map((r) => {
  r[0] = 1;
  r[1] = 4;
  r[2] = 6;
  return r;
});

describe('state sync inputs under fuzzing', () => {
  it('decodeSessionFile: random and mutated files never throw; an altered record never restores', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 1024 }), (b) => {
      const r = decodeSessionFile(b, NOW);
      return r.ok || r.reason.length > 0;
    }), { numRuns: 2000 });
    fc.assert(
      fc.property(fc.array(record, { minLength: 1, maxLength: 4 }), edits, (records, e) => {
        const file = encodeSessionFile(records, NOW - 1000);
        const altered = mutate(file, e);
        const r = decodeSessionFile(altered, NOW);
        if (!r.ok) return r.reason.length > 0;
        // Accepted: only if the records are the original ones (the header's time or reserved bytes changed).
        return Buffer.from(r.records).equals(Buffer.from(file.subarray(SESSION_FILE_HEADER)));
      }),
      { numRuns: 2000 },
    );
  });

  it('SessionTable.install: random records are installed or counted invalid, never crash', () => {
    const table = new SessionTable({ maxSessions: 10_000, mode: 'strict' });
    let offered = 0;
    fc.assert(
      fc.property(fc.array(fc.oneof(record, fc.uint8Array({ minLength: SESSION_RECORD_SIZE, maxLength: SESSION_RECORD_SIZE })), { minLength: 1, maxLength: 16 }), (records) => {
        const out = table.install(records, NOW);
        offered += records.length;
        expect(out.installed + out.updated + out.stale + out.invalid + out.refused).toBe(records.length);
        for (const r of records) {
          try {
            decodeSessionRecord(r);
          } catch (e) {
            expect(e).toBeInstanceOf(RangeError);
          }
        }
      }),
      { numRuns: 500 },
    );
    expect(offered).toBeGreaterThan(500);
    table.expire(NOW + 10 * 3600_000);
  });

  describe('sealed StateSync', () => {
    let pki: TestPki;
    let a: SyncCipher;
    let b: SyncCipher;
    const [A, B] = ['192.0.2.1', '192.0.2.2'];
    beforeAll(async () => {
      pki = await createTestPki([A, B]);
      const pub = new Map([A, B].map((ip) => [ip, new X509Certificate(Buffer.from(pki.members[ip]!.certDer)).publicKey]));
      const make = (ip: string) => {
        const key = loadPrivateKey(pki.members[ip]!.keyPem);
        return new SyncCipher({ cluster: 'fuzz', self: ip, incarnation: 1, privateKey: () => key, peerPublicKey: (p) => pub.get(p) });
      };
      a = make(A);
      b = make(B);
    });

    it('openStateSync: records round-trip; mutated frames, seq or flag never open and never throw', () => {
      fc.assert(
        fc.property(fc.array(record, { minLength: 1, maxLength: 9 }), fc.nat({ max: 2 ** 40 }), fc.boolean(), edits, (states, seq, flag, e) => {
          const m: StateSync = { type: 'state-sync', seq, records: states.map((s, i) => ({ key: s.subarray(20, 60), version: i + 1, state: s, removed: false })), snapshotComplete: flag };
          const sealed = sealStateSync(a, B, m)!;
          // Before the frame opens once (after that its counter is a replay): other seq, other flag, altered bytes.
          if (openStateSync(b, A, { ...sealed, seq: seq + 1 }).ok) return false;
          if (openStateSync(b, A, { ...sealed, snapshotComplete: !flag }).ok) return false;
          const altered = mutate(sealed.sealed!, e);
          if (!Buffer.from(altered).equals(Buffer.from(sealed.sealed!)) && openStateSync(b, A, { ...sealed, sealed: altered }).ok) return false;
          const opened = openStateSync(b, A, sealed);
          return opened.ok && opened.message.records.length === m.records.length && Buffer.from(opened.message.records[0]!.state).equals(Buffer.from(states[0]!));
        }),
        { numRuns: 300 },
      );
    });
  });
});

import { describe, expect, it } from 'vitest';
import { MessageOpener, MessageSealer, createTestPki } from '../src/index.js';
import { NOW, SAMPLE_MESSAGES } from './fixtures.js';

describe('createTestPki', () => {
  it('builds a 64-member cluster PKI whose members all verify, quickly', async () => {
    const ips = Array.from({ length: 64 }, (_, i) => `192.0.2.${i + 1}`);
    const started = performance.now();
    const pki = await createTestPki(ips);
    const elapsedMs = performance.now() - started;
    console.log(`createTestPki: 64 members in ${elapsedMs.toFixed(0)} ms`);
    expect(Object.keys(pki.members)).toEqual(ips);
    const trust = pki.trustStore();
    const fingerprints = new Set<string>();
    for (const ip of ips) {
      const m = pki.members[ip]!;
      const v = trust.verifyChain(m.chainDer, ip, 0); // valid at a simulated clock of 0
      expect(v.ok, ip).toBe(true);
      fingerprints.add(m.fingerprint);
    }
    expect(fingerprints.size).toBe(64);
    expect(elapsedMs).toBeLessThan(20_000); // generous (shared 2-CPU machines): typically 0.2-1 s
  });

  it('gives members what MessageSealer needs', async () => {
    const pki = await createTestPki(['192.0.2.10', '192.0.2.11']);
    const m = pki.members['192.0.2.10']!;
    const sealer = new MessageSealer({ cluster: 'c', memberIp: m.memberIp, certChainDer: m.chainDer, privateKeyPem: m.keyPem, incarnation: 1 });
    const opener = new MessageOpener({ cluster: 'c', self: '192.0.2.200', trust: pki.trustStore() });
    expect(opener.open(sealer.seal(SAMPLE_MESSAGES['master-offer'], 'broadcast', NOW), NOW).ok).toBe(true);
  });
});

/**
 * Test fixtures: a cluster CA and member certificates in one call, for this and other packages' tests.
 * Not for production: keys live only in memory and the default validity spans 1970..2100 so that
 * simulated clocks starting at 0 (or at any real date) see valid certificates.
 */
import { createClusterCa, issueMemberCertificate, type IssuedCertificate } from './pki.js';
import { TrustStore, type TrustStoreOptions } from './trust.js';

/** One member's credentials, ready for MessageSealer ({ certChainDer: member.chainDer, privateKeyPem: member.keyPem }). */
export interface TestMember extends IssuedCertificate {
  readonly memberIp: string;
  /** [certDer]: the chain a member presents (CA excluded). */
  readonly chainDer: readonly Uint8Array[];
}

export interface TestPki {
  readonly ca: IssuedCertificate;
  /** Keyed by member IP, in the order given. */
  readonly members: Readonly<Record<string, TestMember>>;
  /** A TrustStore for this CA; options other than the CA pass through (crlPem, allowedFingerprints). */
  trustStore(opts?: Omit<TrustStoreOptions, 'caCertPem'>): TrustStore;
}

export interface TestPkiOptions {
  /** Default "gwcluster test CA". */
  readonly caCommonName?: string;
  /** Default 1970-01-01T00:00:00Z, for the CA and every member. */
  readonly notBefore?: Date;
  /** Default 2100-01-01T00:00:00Z, for the CA and every member. */
  readonly notAfter?: Date;
}

/** Fixed so that a test clock of 0 ms is inside every certificate's validity. */
export const TEST_PKI_NOT_BEFORE = new Date(0);
export const TEST_PKI_NOT_AFTER = new Date('2100-01-01T00:00:00Z');

/**
 * A CA and one certificate per member IP (CN "member <ip>", SAN IP <ip>). Members are issued
 * concurrently; 64 members take a few hundred ms (see the package README for measured figures).
 */
export async function createTestPki(memberIps: readonly string[], opts: TestPkiOptions = {}): Promise<TestPki> {
  const notBefore = opts.notBefore ?? TEST_PKI_NOT_BEFORE;
  const notAfter = opts.notAfter ?? TEST_PKI_NOT_AFTER;
  const ca = await createClusterCa({ commonName: opts.caCommonName ?? 'gwcluster test CA', notBefore, notAfter });
  const issued = await Promise.all(memberIps.map((memberIp) => issueMemberCertificate({ ca, memberIp, notBefore, notAfter })));
  const members: Record<string, TestMember> = {};
  memberIps.forEach((memberIp, i) => {
    const m = issued[i]!;
    members[memberIp] = { ...m, memberIp, chainDer: [m.certDer] };
  });
  return {
    ca,
    members,
    trustStore: (more = {}) => new TrustStore({ ...more, caCertPem: ca.certPem }),
  };
}

/**
 * For fuzz tests: `base` with `edits` applied in order, each [position (mod length), value, op]: 'flip'
 * one bit of the byte, 'set' the byte, 'cut' the rest off, anything else inserts [value, 0xff] there.
 */
export function mutateBytes(base: Uint8Array, edits: readonly (readonly [number, number, string])[]): Uint8Array {
  let b = Buffer.from(base);
  for (const [at, v, op] of edits) {
    const i = b.length === 0 ? 0 : at % b.length;
    if (op === 'flip' && b.length > 0) b[i] = b[i]! ^ (1 << (v % 8));
    else if (op === 'set' && b.length > 0) b[i] = v;
    else if (op === 'cut') b = b.subarray(0, i);
    else b = Buffer.concat([b.subarray(0, i), Buffer.from([v, 0xff]), b.subarray(i)]);
  }
  return new Uint8Array(b);
}

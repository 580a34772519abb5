/**
 * A minimal DER reader (X.690), enough to read an X.509 CRL (RFC 5280 section 5.1) synchronously:
 * node:crypto parses certificates but not CRLs, and @peculiar/x509's parser is asynchronous to verify.
 * Every function throws DerError on malformed input; callers turn that into a coded value.
 */

export class DerError extends Error {
  override name = 'DerError';
}

export interface DerElement {
  /** The identifier octet (tag class, constructed bit, tag number < 31). */
  readonly tag: number;
  /** The whole element, header included. */
  readonly raw: Uint8Array;
  /** The contents octets. */
  readonly body: Uint8Array;
}

export const TAG = {
  integer: 0x02,
  bitString: 0x03,
  oid: 0x06,
  utcTime: 0x17,
  generalizedTime: 0x18,
  sequence: 0x30,
  contextCons0: 0xa0,
} as const;

/** Reads the element starting at `offset` of `bytes`; returns it and the offset after it. */
export function readElement(bytes: Uint8Array, offset: number): { element: DerElement; next: number } {
  if (offset + 2 > bytes.length) throw new DerError(`truncated element header at byte ${offset}`);
  const tag = bytes[offset]!;
  if ((tag & 0x1f) === 0x1f) throw new DerError(`high-tag-number form at byte ${offset} is not supported`);
  let length = bytes[offset + 1]!;
  let header = 2;
  if (length & 0x80) {
    const count = length & 0x7f;
    if (count === 0 || count > 4) throw new DerError(`length of ${count} octets at byte ${offset} is not supported`);
    if (offset + 2 + count > bytes.length) throw new DerError(`truncated length at byte ${offset}`);
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + bytes[offset + 2 + i]!;
    header += count;
  }
  const end = offset + header + length;
  if (end > bytes.length) throw new DerError(`element at byte ${offset} claims ${length} bytes, only ${bytes.length - offset - header} remain`);
  return { element: { tag, raw: bytes.subarray(offset, end), body: bytes.subarray(offset + header, end) }, next: end };
}

/** The elements inside a constructed element's contents. */
export function children(body: Uint8Array): DerElement[] {
  const out: DerElement[] = [];
  for (let offset = 0; offset < body.length; ) {
    const { element, next } = readElement(body, offset);
    out.push(element);
    offset = next;
  }
  return out;
}

function expect(e: DerElement | undefined, tag: number, what: string): DerElement {
  if (!e || e.tag !== tag) throw new DerError(`${what}: expected tag 0x${tag.toString(16)}, got ${e ? '0x' + e.tag.toString(16) : 'nothing'}`);
  return e;
}

function isTime(e: DerElement | undefined): boolean {
  return e !== undefined && (e.tag === TAG.utcTime || e.tag === TAG.generalizedTime);
}

/** Milliseconds since the epoch of a UTCTime (YYMMDDHHMMSSZ) or GeneralizedTime (YYYYMMDDHHMMSSZ). */
export function parseTime(e: DerElement): number {
  const s = Buffer.from(e.body).toString('latin1');
  const m = e.tag === TAG.utcTime ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s) : /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s);
  if (!m) throw new DerError(`time "${s}" is not in DER form`);
  let year = Number(m[1]);
  if (e.tag === TAG.utcTime) year += year >= 50 ? 1900 : 2000; // RFC 5280 4.1.2.5.1
  return Date.UTC(year, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
}

/** Canonical serial number text: lowercase hex, no leading zero octets, no separators. */
export function canonicalSerial(hex: string): string {
  const digits = hex.replace(/[:\s]/g, '').toLowerCase().replace(/^0+/, '');
  if (digits === '') return '00';
  return digits.length % 2 === 1 ? '0' + digits : digits;
}

export interface ParsedCertificateList {
  /** DER of tbsCertList: the bytes the signature covers. */
  readonly tbs: Uint8Array;
  /** DER of the signature algorithm OID (contents octets). */
  readonly signatureAlgorithmOid: Uint8Array;
  /** The signature (DER ECDSA-Sig-Value for ECDSA), without the BIT STRING's unused-bits octet. */
  readonly signature: Uint8Array;
  /** DER of the issuer Name. */
  readonly issuer: Uint8Array;
  readonly thisUpdateMs: number;
  readonly nextUpdateMs: number | undefined;
  /** Canonical serials (see canonicalSerial) of the revoked certificates. */
  readonly revokedSerials: string[];
  /** revocationDate of each entry, ms, in the order of revokedSerials. */
  readonly revokedAtMs: number[];
}

/** Parses a DER CertificateList (RFC 5280 5.1). Does not verify the signature. */
export function parseCertificateList(der: Uint8Array): ParsedCertificateList {
  const { element: top, next } = readElement(der, 0);
  if (next !== der.length) throw new DerError(`${der.length - next} trailing bytes after the CRL`);
  const [tbsEl, algEl, sigEl, ...extra] = children(expect(top, TAG.sequence, 'CertificateList').body);
  if (extra.length) throw new DerError('CertificateList has more than three elements');
  const tbs = expect(tbsEl, TAG.sequence, 'tbsCertList');
  const alg = children(expect(algEl, TAG.sequence, 'signatureAlgorithm').body);
  const oid = expect(alg[0], TAG.oid, 'signatureAlgorithm.algorithm');
  const sig = expect(sigEl, TAG.bitString, 'signatureValue');
  if (sig.body.length < 1 || sig.body[0] !== 0) throw new DerError('signatureValue has unused bits');

  const fields = children(tbs.body);
  let i = 0;
  if (fields[i]?.tag === TAG.integer) i++; // version v2
  expect(fields[i++], TAG.sequence, 'tbsCertList.signature');
  const issuer = expect(fields[i++], TAG.sequence, 'tbsCertList.issuer');
  const thisUpdateEl = fields[i++];
  if (!isTime(thisUpdateEl)) throw new DerError('tbsCertList.thisUpdate is not a time');
  const thisUpdateMs = parseTime(thisUpdateEl!);
  let nextUpdateMs: number | undefined;
  if (isTime(fields[i])) nextUpdateMs = parseTime(fields[i++]!);
  const revokedSerials: string[] = [];
  const revokedAtMs: number[] = [];
  if (fields[i]?.tag === TAG.sequence) {
    for (const entry of children(fields[i++]!.body)) {
      const [serial, date] = children(expect(entry, TAG.sequence, 'revokedCertificates entry').body);
      const s = expect(serial, TAG.integer, 'revokedCertificates.userCertificate');
      if (!isTime(date)) throw new DerError('revokedCertificates.revocationDate is not a time');
      revokedSerials.push(canonicalSerial(Buffer.from(s.body).toString('hex')));
      revokedAtMs.push(parseTime(date!));
    }
  }
  if (fields[i]?.tag === TAG.contextCons0) i++; // crlExtensions
  if (i !== fields.length) throw new DerError(`tbsCertList has ${fields.length - i} unexpected trailing elements`);
  return { tbs: tbs.raw, signatureAlgorithmOid: oid.body, signature: sig.body.subarray(1), issuer: issuer.raw, thisUpdateMs, nextUpdateMs, revokedSerials, revokedAtMs };
}

/**
 * The classic pcap file format (what tcpdump -w writes and tcpdump -r reads): a 24-byte global header,
 * then per packet a 16-byte record header and the bytes. Little-endian, microsecond timestamps,
 * link type 1 (Ethernet).
 */
export const PCAP_LINKTYPE_ETHERNET = 1;

export function pcapGlobalHeader(snaplen = 65535, linktype = PCAP_LINKTYPE_ETHERNET): Buffer {
  const h = Buffer.alloc(24);
  h.writeUInt32LE(0xa1b2c3d4, 0);
  h.writeUInt16LE(2, 4);
  h.writeUInt16LE(4, 6);
  h.writeInt32LE(0, 8); // thiszone
  h.writeUInt32LE(0, 12); // sigfigs
  h.writeUInt32LE(snaplen, 16);
  h.writeUInt32LE(linktype, 20);
  return h;
}

/** One record: the frame as captured (`origLength`: its length on the wire, default the bytes given). */
export function pcapRecord(frame: Uint8Array, atMs: number, origLength = frame.length): Buffer {
  const r = Buffer.alloc(16 + frame.length);
  const sec = Math.floor(atMs / 1000);
  r.writeUInt32LE(sec >>> 0, 0);
  r.writeUInt32LE(Math.floor((atMs - sec * 1000) * 1000), 4);
  r.writeUInt32LE(frame.length, 8);
  r.writeUInt32LE(origLength, 12);
  r.set(frame, 16);
  return r;
}

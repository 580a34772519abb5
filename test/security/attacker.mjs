// What an attacker on the cluster segment does in test/security: capture the cluster protocol's datagrams
// with tcpdump and send them again (once, or as a flood at a set rate) from an address of its choosing.
// Plain ESM so scripts can use it too.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { once } from 'node:events';

/**
 * Starts tcpdump on `ifname` of `host` writing UDP datagrams that match `filter` (pcap syntax) to a file
 * in the topology's temp dir. Resolves once tcpdump listens; stop() ends it and returns the datagrams.
 */
export async function startCapture(host, filter, { ifname = 'eth0', name = 'capture' } = {}) {
  const file = join(host.topology.tmpDir(), `${name}-${Date.now()}.pcap`);
  const child = host.spawn('tcpdump', ['-i', ifname, '--immediate-mode', '-U', '-n', '-Z', 'root', '-s', '0', '-w', file, filter], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`tcpdump did not start: ${stderr}`)), 5000);
    child.stderr.on('data', (d) => {
      stderr += d;
      if (stderr.includes('listening on')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.on('exit', (code) => reject(new Error(`tcpdump exited ${code}: ${stderr}`)));
  });
  return {
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGINT');
        await once(child, 'exit');
      }
      if (process.env.GWC_DEBUG_CAPTURE) console.error(stderr);
      return udpDatagrams(readFileSync(file));
    },
  };
}

/** The UDP datagrams of a pcap file (Ethernet link type), in capture order: { t, src, dst, sport, dport, payload }. */
export function udpDatagrams(pcap) {
  const magic = pcap.readUInt32LE(0);
  if (magic !== 0xa1b2c3d4 && magic !== 0xa1b23c4d) throw new Error(`not a little-endian pcap file (magic ${magic.toString(16)})`);
  const nanos = magic === 0xa1b23c4d;
  if (pcap.readUInt32LE(20) !== 1) throw new Error(`pcap link type ${pcap.readUInt32LE(20)} is not Ethernet`);
  const out = [];
  for (let off = 24; off + 16 <= pcap.length; ) {
    const t = pcap.readUInt32LE(off) * 1000 + pcap.readUInt32LE(off + 4) / (nanos ? 1e6 : 1e3);
    const caplen = pcap.readUInt32LE(off + 8);
    const frame = pcap.subarray(off + 16, off + 16 + caplen);
    off += 16 + caplen;
    if (frame.length < 14 + 20 + 8 || frame.readUInt16BE(12) !== 0x0800) continue;
    const ip = frame.subarray(14);
    const ihl = (ip[0] & 15) * 4;
    if (ip[9] !== 17) continue;
    const udp = ip.subarray(ihl);
    const length = udp.readUInt16BE(4);
    out.push({
      t,
      src: `${ip[12]}.${ip[13]}.${ip[14]}.${ip[15]}`,
      dst: `${ip[16]}.${ip[17]}.${ip[18]}.${ip[19]}`,
      sport: udp.readUInt16BE(0),
      dport: udp.readUInt16BE(2),
      payload: new Uint8Array(udp.subarray(8, length)),
    });
  }
  return out;
}

/**
 * A node script that sends `payloads` (hex) to to:port from the namespace it runs in, bound to `from`:
 * `count` datagrams in all, cycling through the payloads, at about `rate` per second (batches every ms),
 * stopping after `maxSeconds` in any case. Prints {sent, seconds, rate} as JSON.
 */
export function senderScript({ payloads, from, to, port = 7400, count = payloads.length, rate = 1000, maxSeconds = 30 }) {
  return `
const dgram = require('node:dgram');
const payloads = ${JSON.stringify(payloads.map((p) => Buffer.from(p).toString('hex')))}.map((h) => Buffer.from(h, 'hex'));
const s = dgram.createSocket('udp4');
s.bind({ address: ${JSON.stringify(from)}, port: 0 }, () => {
  const t0 = process.hrtime.bigint();
  const elapsed = () => Number(process.hrtime.bigint() - t0) / 1e9;
  let sent = 0;
  let inFlight = 0;
  const step = () => {
    const due = Math.min(${count}, Math.floor(elapsed() * ${rate}) + 1);
    while (sent < due && inFlight < 2048) {
      inFlight++;
      s.send(payloads[sent % payloads.length], ${port}, ${JSON.stringify(to)}, () => inFlight--);
      sent++;
    }
    if (sent >= ${count} || elapsed() > ${maxSeconds}) {
      const seconds = elapsed();
      const done = () => { console.log(JSON.stringify({ sent, seconds, rate: sent / seconds })); s.close(); };
      const drain = () => (inFlight > 0 ? setImmediate(drain) : done());
      return drain();
    }
    setImmediate(step);
  };
  step();
});`;
}

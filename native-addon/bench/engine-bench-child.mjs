// The processes of engine-bench.mjs, run inside its namespaces (ip netns exec NS node ... ROLE).
//   flood DEVICE DST_MAC SECONDS: injects UDP frames 198.51.100.1:(40000..40255) -> 192.0.2.1:9000
//     (64-byte payload, UDP checksum 0) as fast as one thread can (pcap_inject), prints { sent, seconds }.
//   engine QUEUE OWNED_FRACTION: runs a PacketEngine on QUEUE owning that fraction of the 1024 units
//     (the rest belong to slot 2: dropped); prints { ready } and, when stdin closes, its stats.
import { Capture, PacketEngine, WorkUnitFilter } from '../dist/index.js';

const [role, ...args] = process.argv.slice(2);
const print = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);

function checksum(b) {
  let s = 0;
  for (let i = 0; i < b.length; i += 2) s += (b[i] << 8) | (b[i + 1] ?? 0);
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return ~s & 0xffff;
}

function frame(dstMac, sport) {
  const payload = Buffer.alloc(64, 0x61);
  const f = Buffer.alloc(14 + 20 + 8 + payload.length);
  Buffer.from(dstMac.replaceAll(':', ''), 'hex').copy(f, 0);
  Buffer.from('020000000001', 'hex').copy(f, 6);
  f.writeUInt16BE(0x0800, 12);
  const ip = f.subarray(14, 34);
  ip[0] = 0x45;
  ip.writeUInt16BE(20 + 8 + payload.length, 2);
  ip[8] = 64;
  ip[9] = 17;
  Buffer.from([198, 51, 100, 1]).copy(ip, 12);
  Buffer.from([192, 0, 2, 1]).copy(ip, 16);
  ip.writeUInt16BE(checksum(ip), 10);
  f.writeUInt16BE(sport, 34);
  f.writeUInt16BE(9000, 36);
  f.writeUInt16BE(8 + payload.length, 38);
  payload.copy(f, 42);
  return f;
}

if (role === 'flood') {
  const [device, dstMac, seconds] = args;
  const cap = Capture.open({ device, filter: new WorkUnitFilter({ clusterIps: [], frames: true }), bpf: 'udp port 1', bufferBytes: 1 << 20 });
  const frames = Array.from({ length: 256 }, (_, i) => frame(dstMac, 40000 + i));
  const t0 = process.hrtime.bigint();
  const end = t0 + BigInt(Math.round(Number(seconds) * 1e9));
  let sent = 0;
  let errors = 0;
  for (;;) {
    for (const f of frames) {
      try {
        cap.inject(f);
        sent++;
      } catch {
        errors++;
      }
    }
    if (process.hrtime.bigint() >= end) break;
  }
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  cap.close();
  print({ sent, errors, seconds: secs });
} else if (role === 'engine') {
  const [queue, fraction] = args;
  const engine = PacketEngine.open({ queueNum: Number(queue), clusterIps: ['192.0.2.1'], method: 1, localSlot: 1, master: false });
  const owned = Math.round(1024 * Number(fraction));
  engine.setTable(Array.from({ length: 1024 }, (_, u) => ((u * owned) % 1024 < owned ? 1 : 2)));
  print({ ready: true });
  process.stdin.resume();
  process.stdin.on('end', () => {
    const s = engine.stats();
    engine.close();
    print({ stats: s });
    process.exit(0);
  });
} else {
  throw new Error(`unknown role ${role}`);
}

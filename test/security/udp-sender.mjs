// Sends `count` datagrams of garbage to each target (host:port), as fast as the socket takes them; prints
// {"sent": n}. For the security tests: what an attacker on some network can throw at the control port.
//   node udp-sender.mjs --count 2000 --targets 198.51.100.11:7400,198.51.100.255:7400
import { createSocket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { count: { type: 'string', default: '1000' }, targets: { type: 'string' }, size: { type: 'string', default: '200' } } });
const count = Number(values.count);
const size = Number(values.size);
const targets = (values.targets ?? '').split(',').filter(Boolean).map((t) => {
  const [host, port] = t.split(':');
  return { host, port: Number(port) };
});
const socket = createSocket('udp4');
await new Promise((r) => socket.bind(0, () => r()));
socket.setBroadcast(true);
let sent = 0;
for (let i = 0; i < count; i++) {
  for (const t of targets) {
    await new Promise((r) => socket.send(randomBytes(size), t.port, t.host, () => r()));
    sent++;
  }
  if (i % 100 === 99) await new Promise((r) => setTimeout(r, 5));
}
socket.close();
process.stdout.write(`${JSON.stringify({ sent })}\n`);

#!/usr/bin/env node
// TCP and UDP echo service for end-to-end tests. Every TCP connection and UDP datagram it handles is
// counted; on SIGTERM / SIGINT (or every --report-ms) it prints one JSON line of counts and exits on signal.
//   node echo-server.mjs --host 0.0.0.0 --tcp 7000 --udp 7001 [--name m1] [--max-seconds 1800]
import net from 'node:net';
import dgram from 'node:dgram';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: { host: { type: 'string', default: '0.0.0.0' }, tcp: { type: 'string' }, udp: { type: 'string' }, name: { type: 'string', default: '' }, 'report-ms': { type: 'string', default: '0' }, 'max-seconds': { type: 'string', default: '1800' } },
});
const stats = { name: values.name, tcpConnections: 0, tcpBytes: 0, tcpErrors: 0, udpDatagrams: 0, udpBytes: 0, peers: {}, udpPeers: {} };
const report = () => process.stdout.write(`${JSON.stringify(stats)}\n`);

// One {"listening":true} line on stderr once every socket is bound (stdout carries only the counts).
let waiting = (values.tcp ? 1 : 0) + (values.udp ? 1 : 0);
const bound = () => {
  if (--waiting === 0) process.stderr.write('{"listening":true}\n');
};
if (values.tcp) {
  net
    .createServer((sock) => {
      stats.tcpConnections++;
      const peer = `${sock.remoteAddress}:${sock.remotePort}`;
      stats.peers[peer] = (stats.peers[peer] ?? 0) + 1;
      sock.on('data', (d) => {
        stats.tcpBytes += d.length;
        sock.write(d);
      });
      sock.on('end', () => sock.end());
      sock.on('error', () => stats.tcpErrors++);
    })
    .listen(Number(values.tcp), values.host, bound);
}
if (values.udp) {
  const s = dgram.createSocket('udp4');
  s.on('message', (msg, rinfo) => {
    stats.udpDatagrams++;
    stats.udpBytes += msg.length;
    const peer = `${rinfo.address}:${rinfo.port}`;
    stats.udpPeers[peer] = (stats.udpPeers[peer] ?? 0) + 1;
    s.send(msg, rinfo.port, rinfo.address);
  });
  s.bind(Number(values.udp), values.host, bound);
}
const every = Number(values['report-ms']);
if (every > 0) setInterval(report, every).unref();
const stop = () => {
  report();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
setTimeout(stop, Number(values['max-seconds']) * 1000).unref();
process.stdin.resume();
process.stdin.on('end', stop);

// The nftables scripts a topology loads to emulate partitions and packet loss: pure text from the
// topology's state. Each script atomically replaces the harness's own table in one namespace.

const NFT_TABLE = 'gwt_harness';

/**
 * The switch namespace's bridge table: frames between the ports of `from` and `to` dropped on every
 * segment both share (or only on `segment`). blocked: iterable of { from: Host, to: Host, segment? }.
 */
export function switchRules(blocked) {
  const rules = [];
  for (const { from, to, segment } of blocked) {
    for (const fi of from.interfaces) for (const ti of to.interfaces) {
      if (fi.segment !== ti.segment) continue;
      if (segment !== undefined && fi.segment !== segment) continue;
      rules.push(`iifname "${fi.port}" oifname "${ti.port}" drop`);
    }
  }
  return replaceTable('bridge', rules.length ? [
    `chain forward { type filter hook forward priority -200; policy accept;`,
    ...dedupe(rules).map((r) => `  ${r}`),
    `}`,
  ] : []);
}

/**
 * Host `h`'s inet table: IPv4 from / to the addresses of the peers it is blocked from dropped, and
 * random loss per interface. loss: Map of ifname to { in, out } percentages, or undefined.
 */
export function hostRules(h, blocked, loss) {
  const pre = [];
  const post = [];
  const peerAddrs = (peer, segment) => peer.interfaces
    .filter((i) => segment === undefined || i.segment === segment)
    .flatMap((i) => i.addresses.map((a) => a.split('/')[0]));
  const fromAddrs = [];
  const toAddrs = [];
  for (const { from, to, segment } of blocked) {
    if (to === h) fromAddrs.push(...peerAddrs(from, segment));
    if (from === h) toAddrs.push(...peerAddrs(to, segment));
  }
  if (fromAddrs.length) pre.push(`ip saddr { ${dedupe(fromAddrs).join(', ')} } drop`);
  if (toAddrs.length) post.push(`ip daddr { ${dedupe(toAddrs).join(', ')} } drop`);
  for (const [ifname, l] of loss ?? []) {
    const lin = lossExpr(l.in);
    const lout = lossExpr(l.out);
    if (lin) pre.push(`iifname "${ifname}" ${lin}`);
    if (lout) post.push(`oifname "${ifname}" ${lout}`);
  }
  const body = [];
  if (pre.length) body.push('chain pre { type filter hook prerouting priority -300; policy accept;', ...pre.map((r) => `  ${r}`), '}');
  if (post.length) body.push('chain post { type filter hook postrouting priority 300; policy accept;', ...post.map((r) => `  ${r}`), '}');
  return replaceTable('inet', body);
}

function lossExpr(percent) {
  if (percent >= 100) return 'drop';
  const threshold = Math.round(percent * 100); // of 10000
  if (threshold <= 0) return undefined;
  return `numgen random mod 10000 < ${threshold} drop`;
}

function dedupe(xs) {
  return [...new Set(xs)];
}

/** An nft script that atomically replaces the harness table of `family` with `body` (nothing if empty). */
function replaceTable(family, body) {
  const lines = [`add table ${family} ${NFT_TABLE}`, `delete table ${family} ${NFT_TABLE}`];
  if (body.length) lines.push(`table ${family} ${NFT_TABLE} {`, ...body.map((l) => `  ${l}`), '}');
  return lines.join('\n') + '\n';
}

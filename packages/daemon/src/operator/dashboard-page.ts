/** The dashboard page (see dashboard.ts). Plain HTML, CSS and JavaScript in one string. */
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>gwcluster dashboard</title>
<style>
  :root { --bg:#0f1419; --panel:#171d24; --fg:#d8dee6; --dim:#7d8a99; --line:#26303b; --warn:#e0a030; --bad:#e05050; --ok:#4cc38a; }
  * { box-sizing: border-box; }
  body { margin:0; background:var(--bg); color:var(--fg); font:13px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; }
  header { display:flex; gap:24px; align-items:baseline; padding:12px 20px; border-bottom:1px solid var(--line); flex-wrap:wrap; }
  header h1 { font-size:16px; margin:0; font-weight:600; }
  header .kv { color:var(--dim); } header .kv b { color:var(--fg); font-weight:600; }
  #conn { margin-left:auto; } #conn.live b { color:var(--ok); } #conn.down b { color:var(--bad); }
  main { display:grid; grid-template-columns: auto 1fr; gap:20px; padding:20px; }
  section { background:var(--panel); border:1px solid var(--line); border-radius:6px; padding:14px; }
  h2 { font-size:12px; text-transform:uppercase; letter-spacing:.06em; color:var(--dim); margin:0 0 10px; font-weight:600; }
  #units { display:grid; grid-template-columns:repeat(32, 12px); grid-auto-rows:12px; gap:1px; }
  #units div { background:#2a323c; border-radius:1px; }
  #units div[data-owner=""] { background:#39424d; outline:1px dashed #55606d; outline-offset:-2px; }
  .legend { margin-top:8px; color:var(--dim); font-size:12px; }
  table { border-collapse:collapse; width:100%; font-variant-numeric:tabular-nums; }
  th { text-align:left; color:var(--dim); font-weight:500; font-size:12px; padding:4px 10px 6px 0; border-bottom:1px solid var(--line); }
  td { padding:5px 10px 5px 0; border-bottom:1px solid var(--line); white-space:nowrap; }
  td.num { text-align:right; }
  .sw { display:inline-block; width:10px; height:10px; border-radius:2px; margin-right:6px; vertical-align:-1px; }
  .badge { font-size:11px; padding:1px 6px; border-radius:8px; background:#2f3a46; margin-left:6px; }
  .badge.master { background:#22466b; } .badge.draining { background:#5a4416; color:#ffd27a; }
  .bar { height:6px; background:#26303b; border-radius:3px; min-width:80px; } .bar i { display:block; height:6px; border-radius:3px; }
  .loss-warn { color:var(--warn); } .loss-bad { color:var(--bad); }
  #timeline { grid-column:1 / span 2; }
  #events { list-style:none; margin:0; padding:0; max-height:260px; overflow:auto; font-family:ui-monospace, monospace; font-size:12px; }
  #events li { padding:3px 0; border-bottom:1px solid var(--line); display:grid; grid-template-columns: 110px 70px 90px 1fr; gap:10px; }
  #events .t { color:var(--dim); } #events .k { color:#9fb6ff; }
  #events li.kind-role .k, #events li.kind-membership .k { color:#ffd27a; } #events li.kind-operator .k, #events li.kind-config .k { color:#8ee0b4; }
  #strip { position:relative; height:26px; margin-bottom:10px; border:1px solid var(--line); border-radius:4px; background:#12171d; }
  #strip span { position:absolute; top:4px; width:3px; height:16px; border-radius:1px; background:#9fb6ff; }
  #strip span.kind-role, #strip span.kind-membership { background:#ffd27a; } #strip span.kind-operator, #strip span.kind-config { background:#8ee0b4; }
  #login { display:none; padding:20px; } #login.show { display:block; }
  input { background:#0c1015; color:var(--fg); border:1px solid var(--line); border-radius:4px; padding:6px 8px; width:320px; }
  button { background:#22466b; color:var(--fg); border:0; border-radius:4px; padding:6px 12px; cursor:pointer; }
  #error { color:var(--bad); margin-left:10px; }
</style>
</head>
<body>
<header>
  <h1>gwcluster</h1>
  <span class="kv">member <b id="self">-</b> (<span id="role">-</span>)</span>
  <span class="kv">master <b id="master">-</b></span>
  <span class="kv">epoch <b id="epoch">-</b></span>
  <span class="kv">config <b id="config-version">-</b></span>
  <span class="kv">keepalive <b id="keepalive">-</b></span>
  <span class="kv">units <b id="assigned">-</b></span>
  <span id="conn" class="kv down">stream <b>connecting</b></span>
</header>
<div id="login"><form id="login-form">Admin token of this member: <input id="token" type="password" autocomplete="off"> <button>Connect</button><span id="error"></span></form></div>
<main>
  <section>
    <h2>Work units (32 x 32, coloured by owner)</h2>
    <div id="units"></div>
    <div class="legend">unit u: row u / 32, column u % 32 &middot; dashed: unassigned</div>
  </section>
  <section>
    <h2>Members</h2>
    <table id="members"><thead><tr><th>member</th><th>units</th><th></th><th>load</th><th>loss P</th><th>watchdog</th><th>last keepalive</th></tr></thead><tbody></tbody></table>
  </section>
  <section id="timeline">
    <h2>Cluster events (this member)</h2>
    <div id="strip" title="last 5 minutes"></div>
    <ul id="events"></ul>
  </section>
</main>
<script>
(() => {
  'use strict';
  const PALETTE = ['#4e9af1','#f1a04e','#5cc98b','#e0607e','#a78bfa','#e6d35a','#4fd1c5','#f472b6','#94a3b8','#fb923c','#22c55e','#60a5fa'];
  const $ = (id) => document.getElementById(id);
  const grid = $('units');
  const cells = [];
  for (let u = 0; u < 1024; u++) { const d = document.createElement('div'); d.dataset.unit = String(u); d.dataset.owner = ''; d.title = 'unit ' + u; grid.appendChild(d); cells.push(d); }
  const colourOf = new Map();
  function colour(id) {
    if (!colourOf.has(id)) {
      const used = new Set(colourOf.values());
      colourOf.set(id, PALETTE.find((c) => !used.has(c)) || PALETTE[colourOf.size % PALETTE.length]);
    }
    return colourOf.get(id);
  }
  const events = [];
  function text(el, s) { if (el.textContent !== s) el.textContent = s; }

  function render(s) {
    text($('self'), s.self); text($('role'), s.role); text($('master'), s.master || '(none)');
    text($('epoch'), String(s.epoch)); text($('config-version'), 'v' + s.configVersion); text($('keepalive'), s.keepalivePeriodMs + ' ms');
    const assigned = s.table.filter((i) => i >= 0).length;
    text($('assigned'), assigned + '/1024' + (s.moving ? ', ' + s.moving + ' moving' : ''));
    const ids = s.members.map((m) => m.id);
    [...ids].sort().forEach(colour);
    for (let u = 0; u < 1024; u++) {
      const i = s.table[u];
      const owner = i >= 0 ? ids[i] : '';
      const c = cells[u];
      if (c.dataset.owner !== owner) { c.dataset.owner = owner; c.style.background = owner ? colour(owner) : ''; c.title = 'unit ' + u + (owner ? ' \\u2192 ' + owner : ' unassigned'); }
    }
    const maxUnits = Math.max(1, ...s.members.map((m) => m.units));
    const tbody = $('members').tBodies[0];
    const rows = s.members.slice().sort((a, b) => a.id.localeCompare(b.id, undefined, { numeric: true }));
    tbody.replaceChildren(...rows.map((m) => {
      const tr = document.createElement('tr');
      tr.dataset.member = m.id; tr.dataset.units = String(m.units); tr.dataset.draining = String(m.draining);
      const lossClass = m.loss > 0.05 ? 'loss-bad' : m.loss > 0.005 ? 'loss-warn' : '';
      tr.innerHTML =
        '<td><span class="sw" style="background:' + colour(m.id) + '"></span>' + m.id +
          (m.role === 'master' ? '<span class="badge master">master</span>' : '') + (m.draining ? '<span class="badge draining">draining</span>' : '') + '</td>' +
        '<td class="num units">' + m.units + '</td>' +
        '<td><div class="bar"><i style="width:' + Math.round(100 * m.units / maxUnits) + '%;background:' + colour(m.id) + '"></i></div></td>' +
        '<td class="num">' + m.load.toFixed(1) + '</td>' +
        '<td class="num ' + lossClass + '">' + m.loss.toFixed(4) + '</td>' +
        '<td class="num">' + m.watchdogPeriods + ' &times; ' + s.keepalivePeriodMs + ' ms</td>' +
        '<td class="num">' + (m.lastHeardMsAgo === null ? '-' : Math.round(m.lastHeardMsAgo) + ' ms ago') + '</td>';
      return tr;
    }));
    drawStrip();
  }

  function addEvent(e) {
    if (events.length && events[events.length - 1].id >= e.id) return;
    events.push(e); if (events.length > 300) events.shift();
    const li = document.createElement('li');
    li.className = 'kind-' + e.kind; li.dataset.eventId = String(e.id);
    const t = new Date(e.at);
    li.innerHTML = '<span class="t"></span><span class="e"></span><span class="k"></span><span class="m"></span>';
    li.children[0].textContent = t.toLocaleTimeString() + '.' + String(t.getMilliseconds()).padStart(3, '0');
    li.children[1].textContent = 'epoch ' + e.epoch; li.children[2].textContent = e.kind; li.children[3].textContent = e.message;
    const list = $('events'); list.insertBefore(li, list.firstChild);
    while (list.children.length > 300) list.lastChild.remove();
  }

  function drawStrip() {
    const strip = $('strip'); const now = Date.now(); const span = 300000;
    strip.replaceChildren(...events.filter((e) => now - Date.parse(e.at) < span).map((e) => {
      const s = document.createElement('span'); s.className = 'kind-' + e.kind;
      s.style.left = 'calc(' + (100 * (1 - (now - Date.parse(e.at)) / span)).toFixed(2) + '% - 3px)'; s.title = e.at + ' ' + e.kind + ': ' + e.message; return s;
    }));
  }

  function setConn(state, label) { const c = $('conn'); c.className = 'kv ' + state; c.querySelector('b').textContent = label; }

  let token = '';
  const m = /(?:^|[#&])token=([^&]+)/.exec(location.hash);
  if (m) { token = decodeURIComponent(m[1]); sessionStorage.setItem('gwcluster-token', token); history.replaceState(null, '', location.pathname); }
  else token = sessionStorage.getItem('gwcluster-token') || '';

  $('login-form').addEventListener('submit', (ev) => { ev.preventDefault(); token = $('token').value; sessionStorage.setItem('gwcluster-token', token); $('login').classList.remove('show'); connect(); });

  let backoff = 500;
  async function connect() {
    setConn('down', 'connecting');
    let res;
    try {
      res = await fetch('/v1/stream', { headers: token ? { authorization: 'Bearer ' + token } : {}, cache: 'no-store' });
    } catch (e) { return retry('unreachable'); }
    if (res.status === 401 || res.status === 403) {
      const body = await res.json().catch(() => ({}));
      $('error').textContent = body.message || 'authentication failed'; $('login').classList.add('show'); setConn('down', 'needs token'); return;
    }
    if (!res.ok || !res.body) return retry('HTTP ' + res.status);
    setConn('live', 'live'); backoff = 500;
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let i;
        while ((i = buf.indexOf('\\n\\n')) >= 0) {
          const block = buf.slice(0, i); buf = buf.slice(i + 2);
          let event = 'message'; let data = '';
          for (const line of block.split('\\n')) {
            if (line.startsWith('event: ')) event = line.slice(7); else if (line.startsWith('data: ')) data += line.slice(6);
          }
          if (!data) continue;
          const obj = JSON.parse(data);
          if (event === 'snapshot') render(obj); else if (event === 'event') addEvent(obj);
        }
      }
    } catch (e) { /* stream broken */ }
    retry('disconnected');
  }
  function retry(why) { setConn('down', why + ', retrying'); setTimeout(connect, backoff); backoff = Math.min(backoff * 2, 5000); }
  connect();
})();
</script>
</body>
</html>
`;

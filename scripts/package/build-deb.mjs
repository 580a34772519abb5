#!/usr/bin/env node
// Builds the Debian packages of gwcluster from this checkout (npm run package):
//   gwctl      (Architecture: all)  the operator's command line, installable alone;
//   gwcluster  (this architecture)  the appliance: gwclusterd, the built addon, the unit, the man pages,
//                                   the schema and the docs; Depends on gwctl of the same version.
// Both lay their files in one self-contained Node.js tree, /usr/lib/gwcluster/node_modules, copied from
// this checkout's production dependency closure (`npm ls --omit=dev`): the workspace packages' dist/, bin/,
// schema/, proto/ and the addon's build/Release; every other package as npm installed it. Nothing is
// downloaded and nothing outside a temporary directory and the output directory is written.
//
//   node scripts/package/build-deb.mjs [--out DIR] [--no-lintian] [--fast]
//
// --fast: gzip -1 instead of xz (for the package test, which unpacks the packages at once).
//
// Output: DIR (default build/deb) holds gwctl_V_all.deb, gwcluster_V_ARCH.deb and lintian.txt.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, closeSync, copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, readdirSync, rmSync, rmdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const { values: args } = parseArgs({ options: { out: { type: 'string' }, 'no-lintian': { type: 'boolean' }, fast: { type: 'boolean' } } });
const OUT = resolve(args.out ?? join(ROOT, 'build', 'deb'));
const LIB = 'usr/lib/gwcluster';
const MAINTAINER = 'gwcluster maintainers <gwcluster@example.org>';
// Node.js 20.17 or newer (package.json engines). Debian 13 ships 20.19; on Debian 12, NodeSource's nodejs.
const NODE_DEPENDS = 'nodejs (>= 20.17)';

const run = (cmd, argv, opts = {}) => execFileSync(cmd, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...opts });
const die = (msg) => {
  process.stderr.write(`package: ${msg}\n`);
  process.exit(1);
};

const version = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version;
const arch = run('dpkg', ['--print-architecture']).trim();
const ADDON = join(ROOT, 'native-addon', 'build', 'Release');
if (!existsSync(join(ADDON, 'gwcluster_filter.node'))) die('native-addon/build/Release/gwcluster_filter.node is missing: run npm run setup first');
for (const w of ['cli', 'daemon']) if (!existsSync(join(ROOT, 'packages', w, 'dist', 'main.js'))) die(`packages/${w}/dist is missing: run npx tsc -b first`);

/** The installed directory (relative to ROOT) of every production dependency of workspace `ws`, itself included. */
function closure(ws) {
  const text = run('npm', ['ls', '--omit=dev', '--all', '--parseable', '-w', ws], { cwd: ROOT });
  return [...new Set(text.split('\n').filter(Boolean).map((p) => relative(ROOT, p)).filter((p) => p.startsWith('node_modules/')))]
    // Type declarations are not loaded at run time.
    .filter((p) => !/^node_modules\/(@types\/|undici-types$)/.test(p));
}

const WORKSPACE_DIRS = ['dist', 'bin', 'schema', 'proto'];
const skipBuildOutput = (src) => !/\.(tsbuildinfo|d\.ts|d\.ts\.map|js\.map)$/.test(src);

/** Copies installed package `rel` (node_modules/...) into stage/LIB/rel; workspace packages: their run-time files only. */
function copyPackage(stage, rel) {
  const src = join(ROOT, rel);
  const dst = join(stage, LIB, rel);
  mkdirSync(dst, { recursive: true });
  if (rel.startsWith('node_modules/@gwcluster/')) {
    const real = resolve(ROOT, rel);
    const pkg = JSON.parse(readFileSync(join(real, 'package.json'), 'utf8'));
    delete pkg.devDependencies;
    delete pkg.scripts;
    writeFileSync(join(dst, 'package.json'), `${JSON.stringify(pkg, null, 2)}\n`);
    for (const d of WORKSPACE_DIRS) if (existsSync(join(real, d))) cpSync(join(real, d), join(dst, d), { recursive: true, dereference: true, filter: skipBuildOutput });
    return;
  }
  // An npm package as installed, without its nested node_modules (each is in the closure on its own) and
  // without what only its developers use: dot-files, tests, benchmarks, examples, documentation (its
  // licence stays: the copyright file points to it).
  cpSync(src, dst, { recursive: true, dereference: true, filter: (s) => runTimeFile(relative(src, s)) });
}

const DEV_DIRS = new Set(['node_modules', 'test', 'tests', '__tests__', 'bench', 'benchmark', 'benchmarks', 'example', 'examples', 'docs', 'integration', 'scripts']);
function runTimeFile(rel) {
  if (rel === '') return true;
  const parts = rel.split('/');
  if (parts.some((p) => p.startsWith('.') || DEV_DIRS.has(p))) return false;
  const name = parts[parts.length - 1];
  if (/^licen[cs]e|^copying|^notice/i.test(name)) return true;
  return !/\.(md|markdown|html|sh|ts|mts|cts|map)$/i.test(name);
}

/** Modes Debian expects: directories 0755, files 0644, scripts (#!) 0755; no empty directory. Returns every file, relative to `root`. */
function normaliseModes(dir, root = dir, files = []) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      chmodSync(p, 0o755);
      normaliseModes(p, root, files);
      // A directory whose files were all left out (tests, documentation) goes too.
      if (readdirSync(p).length === 0) rmdirSync(p);
    } else if (e.isFile()) {
      const head = Buffer.alloc(2);
      const fd = openSync(p, 'r');
      readSync(fd, head, 0, 2, 0);
      closeSync(fd);
      chmodSync(p, head.toString('latin1') === '#!' ? 0o755 : 0o644);
      if (!relative(root, p).startsWith('DEBIAN/')) files.push(relative(root, p));
    }
  }
  return files;
}

function writeFile(stage, rel, text, mode = 0o644) {
  const p = join(stage, rel);
  mkdirSync(dirname(p), { recursive: true });
  writeFileSync(p, text);
  chmodSync(p, mode);
}

function gzipFile(stage, rel, data) {
  writeFile(stage, rel, gzipSync(data, { level: 9 }));
}

// The module tree is found relative to the wrapper (PREFIX/usr/bin -> PREFIX/usr/lib/gwcluster), so the
// installed files also run from an unpacked package (test/package).
const wrapper = (pkg, bin) =>
  `#!/bin/sh\n# ${bin} of the gwcluster package: Node.js runs it from the package's own module tree.\nexec /usr/bin/node "$(dirname "$(readlink -f "$0")")/../lib/gwcluster/node_modules/@gwcluster/${pkg}/bin/${bin}.js" "$@"\n`;

function changelog(name) {
  return `${name} (${version}) unstable; urgency=medium\n\n  * Release ${version}.\n\n -- ${MAINTAINER}  ${new Date(0).toUTCString().replace('GMT', '+0000').replace(/^(\w+),/, '$1,')}\n`;
}

function copyright(stage, pkg, modules) {
  const lines = modules
    .filter((m) => !m.startsWith('node_modules/@gwcluster/'))
    .map((m) => {
      const p = JSON.parse(readFileSync(join(ROOT, m, 'package.json'), 'utf8'));
      const lic = typeof p.license === 'string' ? p.license : (p.license?.type ?? 'see its package.json');
      return `  ${p.name} ${p.version}: ${lic}`;
    })
    .sort();
  writeFile(
    stage,
    `usr/share/doc/${pkg}/copyright`,
    `${pkg}\n\nCopyright (C) 2026 the gwcluster authors.\n\nThe gwcluster sources (the @gwcluster/* modules in /${LIB}/node_modules) carry no licence\nstatement yet. The package also holds these npm modules, each under its own licence (its text is in the\nmodule's directory in /${LIB}/node_modules; on Debian systems the Apache License 2.0 is also in\n/usr/share/common-licenses/Apache-2.0):\n\n${lines.join('\n')}\n`,
  );
}

function control(stage, fields) {
  const size = Number(run('du', ['-sk', '--exclude=DEBIAN', stage]).split('\t')[0]);
  const text = `${Object.entries({ ...fields, 'Installed-Size': String(size) })
    .map(([k, v]) => `${k}: ${v}`)
    .join('\n')}\n`;
  writeFile(stage, 'DEBIAN/control', text);
}

/** Shared-library dependencies of ELF files, as dpkg-shlibdeps computes them. */
function shlibDepends(files) {
  const tmp = mkdtempSync(join(tmpdir(), 'gwc-shlibs-'));
  try {
    mkdirSync(join(tmp, 'debian'));
    writeFileSync(join(tmp, 'debian', 'control'), 'Source: gwcluster\n\nPackage: gwcluster\nArchitecture: any\n');
    const out = run('dpkg-shlibdeps', ['-O', ...files.map((f) => `-e${f}`)], { cwd: tmp });
    return out.replace(/^shlibs:Depends=/, '').trim();
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

function build(stage, name, fileName) {
  const files = normaliseModes(stage).sort();
  writeFile(stage, 'DEBIAN/md5sums', files.map((f) => `${createHash('md5').update(readFileSync(join(stage, f))).digest('hex')}  ${f}\n`).join(''));
  chmodSync(stage, 0o755);
  const deb = join(OUT, fileName);
  run('dpkg-deb', ['--root-owner-group', ...(args.fast ? ['-Zgzip', '-z1'] : ['-Zxz']), '--build', stage, deb]);
  process.stdout.write(`package: built ${relative(process.cwd(), deb) || deb}\n`);
  return deb;
}

mkdirSync(OUT, { recursive: true });
const work = mkdtempSync(join(tmpdir(), 'gwc-package-'));
try {
  const cliModules = closure('@gwcluster/cli');
  const daemonModules = closure('@gwcluster/daemon').filter((m) => !cliModules.includes(m));
  if (!cliModules.includes('node_modules/@gwcluster/native-addon')) die('gwctl no longer depends on the addon: revise the split of the packages');

  // gwctl: the command line, its modules (with the addon's JavaScript, which gwctl workunit uses without the
  // compiled part), its man page and bash completion.
  const ctl = join(work, 'gwctl');
  for (const m of cliModules) copyPackage(ctl, m);
  writeFile(ctl, 'usr/bin/gwctl', wrapper('cli', 'gwctl'), 0o755);
  gzipFile(ctl, 'usr/share/man/man1/gwctl.1.gz', readFileSync(join(ROOT, 'appliance/man/gwctl.1')));
  const completion = run(process.execPath, [join(ctl, LIB, 'node_modules/@gwcluster/cli/bin/gwctl.js'), 'completion', 'bash']);
  writeFile(ctl, 'usr/share/bash-completion/completions/gwctl', completion);
  copyright(ctl, 'gwctl', cliModules);
  gzipFile(ctl, 'usr/share/doc/gwctl/changelog.gz', changelog('gwctl'));
  writeFile(ctl, 'usr/share/lintian/overrides/gwctl', readFileSync(join(ROOT, 'appliance/debian/gwctl.lintian-overrides')));
  control(ctl, {
    Package: 'gwctl',
    Version: version,
    Architecture: 'all',
    Maintainer: MAINTAINER,
    Depends: NODE_DEPENDS,
    Section: 'net',
    Priority: 'optional',
    Homepage: 'https://example.org/gwcluster',
    Description: 'command line of the gwcluster gateway cluster\n gwctl talks to the admin API of any member of a gwcluster cluster (status,\n members, work units, sessions, drain, configuration changes) and makes what a\n member needs before its first start: the cluster CA, member certificates and\n the personality directory (gwctl personality).',
  });
  const ctlDeb = build(ctl, 'gwctl', `gwctl_${version}_all.deb`);

  // gwcluster: the daemon, the rest of its modules, the compiled addon, the unit, man pages, schema, docs.
  const app = join(work, 'gwcluster');
  for (const m of daemonModules) copyPackage(app, m);
  // The addon's compiled part goes beside its JavaScript (installed by gwctl).
  const addonDst = join(app, LIB, 'node_modules/@gwcluster/native-addon/build/Release');
  mkdirSync(addonDst, { recursive: true });
  for (const f of ['gwcluster_filter.node', 'gwcluster_fastpath.bpf.o']) if (existsSync(join(ADDON, f))) copyFileSync(join(ADDON, f), join(addonDst, f));
  run('strip', ['--strip-unneeded', '--remove-section=.comment', '--remove-section=.note', join(addonDst, 'gwcluster_filter.node')]);
  writeFile(app, 'usr/bin/gwclusterd', wrapper('daemon', 'gwclusterd'), 0o755);
  writeFile(app, 'lib/systemd/system/gwclusterd.service', readFileSync(join(ROOT, 'appliance/gwclusterd.service')));
  gzipFile(app, 'usr/share/man/man8/gwclusterd.8.gz', readFileSync(join(ROOT, 'appliance/man/gwclusterd.8')));
  gzipFile(app, 'usr/share/man/man5/member.json.5.gz', readFileSync(join(ROOT, 'appliance/man/member.json.5')));
  writeFile(app, 'usr/share/gwcluster/member-config.schema.json', readFileSync(join(ROOT, 'packages/daemon/schema/member-config.schema.json')));
  for (const doc of ['operator-guide.md', 'configuration.md', 'architecture.md', 'security.md', 'dataplane.md']) {
    writeFile(app, `usr/share/doc/gwcluster/${doc}`, readFileSync(join(ROOT, 'docs', doc)));
  }
  writeFile(app, 'usr/share/doc/gwcluster/README.appliance.md', readFileSync(join(ROOT, 'appliance/README.md')));
  copyright(app, 'gwcluster', daemonModules);
  gzipFile(app, 'usr/share/doc/gwcluster/changelog.gz', changelog('gwcluster'));
  writeFile(app, 'usr/share/lintian/overrides/gwcluster', readFileSync(join(ROOT, 'appliance/debian/gwcluster.lintian-overrides')));
  for (const s of ['postinst', 'prerm', 'postrm']) writeFile(app, `DEBIAN/${s}`, readFileSync(join(ROOT, `appliance/debian/gwcluster.${s}`)), 0o755);
  const shlibs = shlibDepends([join(addonDst, 'gwcluster_filter.node')]);
  control(app, {
    Package: 'gwcluster',
    Version: version,
    Architecture: arch,
    Maintainer: MAINTAINER,
    // The commands gwclusterd runs: ip (iproute2), nft (nftables), iptables, arping (iputils-arping).
    Depends: [`gwctl (= ${version})`, NODE_DEPENDS, shlibs, 'adduser', 'iproute2', 'nftables', 'iptables', 'iputils-arping'].join(', '),
    Section: 'net',
    Priority: 'optional',
    Homepage: 'https://example.org/gwcluster',
    Description: 'clustered tunnel-gateway appliance (gwclusterd)\n Several Linux hosts act as one gateway: one cluster IP, 1024 work units hashed\n from packet headers and shared among the members, an elected master, and\n replicated sessions so that the survivors carry on a dead member\'s TCP flows.\n .\n This package holds gwclusterd, its systemd unit (run as the user gwcluster\n with CAP_NET_ADMIN and CAP_NET_RAW only), the compiled packet filter, the\n configuration schema and the operator documentation.',
  });
  const appDeb = build(app, 'gwcluster', `gwcluster_${version}_${arch}.deb`);

  if (!args['no-lintian']) {
    let report;
    try {
      report = run('lintian', ['--no-cfg', '--fail-on', 'error', '--display-info', '--info', ctlDeb, appDeb]);
    } catch (e) {
      if (e.code === 'ENOENT') die('lintian is not installed (apt-get install lintian), or pass --no-lintian');
      writeFileSync(join(OUT, 'lintian.txt'), `${e.stdout ?? ''}${e.stderr ?? ''}`);
      die(`lintian found errors:\n${e.stdout ?? ''}${e.stderr ?? ''}`);
    }
    writeFileSync(join(OUT, 'lintian.txt'), report);
    const tags = report.split('\n').filter((l) => /^[EW]: /.test(l));
    process.stdout.write(`package: lintian: no errors, ${tags.length} warning(s) (${join(relative(process.cwd(), OUT) || OUT, 'lintian.txt')})\n`);
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}

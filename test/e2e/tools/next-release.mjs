// A "next release" of gwclusterd for rolling-upgrade tests: a copy of this checkout's built module tree
// (every @gwcluster package without its sources and tests; the compiled addon and the third-party modules
// linked) in which
// - every @gwcluster package reports `version` (gwclusterd --version, the members list, gwctl version), and
// - the member configuration knows one more live cluster field, `field` (an integer, default 0, changed with
//   `gwctl config set` and propagated like the others), which this checkout's release does not know.
// That is what a release N+1 looks like to members of release N: another software version on the wire and
// a propagated configuration with a field they do not know. The copy is made from the compiled files, and
// every edit is checked (the tool throws when the code it edits has changed shape).
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

// What a package's run time does not need (the rest is copied: dist, bin, package.json, proto, schema, ...).
const SOURCES_ONLY = new Set(['src', 'test', 'bench', 'fuzz', 'scripts', 'tsconfig.json', 'tsconfig.tsbuildinfo', 'node_modules', 'README.md', 'binding.gyp']);

function edit(file, from, to) {
  const text = readFileSync(file, 'utf8');
  if (!text.includes(from)) throw new Error(`next-release: ${file} no longer contains ${JSON.stringify(from.slice(0, 80))}; update test/e2e/tools/next-release.mjs`);
  writeFileSync(file, text.replace(from, to));
}

/**
 * Builds the next release under `dir` and returns the command that runs its gwclusterd (argv, without
 * --config).
 * @param {string} dir an empty directory
 * @param {{ version: string, field: string }} opts
 * @returns {string[]}
 */
export function makeNextRelease(dir, { version, field }) {
  const modules = join(dir, 'node_modules');
  mkdirSync(join(modules, '@gwcluster'), { recursive: true });
  for (const entry of readdirSync(join(ROOT, 'node_modules'))) {
    if (entry === '@gwcluster' || entry === '.bin' || entry.startsWith('.')) continue;
    symlinkSync(join(ROOT, 'node_modules', entry), join(modules, entry));
  }
  for (const name of readdirSync(join(ROOT, 'node_modules', '@gwcluster'))) {
    const src = realpathSync(join(ROOT, 'node_modules', '@gwcluster', name));
    const dest = join(modules, '@gwcluster', name);
    mkdirSync(dest);
    for (const entry of readdirSync(src)) {
      if (entry === 'build') symlinkSync(join(src, entry), join(dest, entry)); // the compiled addon
      else if (!SOURCES_ONLY.has(entry)) cpSync(join(src, entry), join(dest, entry), { recursive: true });
    }
    const pkg = JSON.parse(readFileSync(join(dest, 'package.json'), 'utf8'));
    pkg.version = version;
    writeFileSync(join(dest, 'package.json'), `${JSON.stringify(pkg, null, 2)}\n`);
  }
  const contracts = join(modules, '@gwcluster', 'contracts', 'dist', 'member-config.js');
  edit(contracts, 'export const CLUSTER_LIVE_FIELDS = [\n', `export const CLUSTER_LIVE_FIELDS = [\n    '${field}',\n`);
  edit(
    contracts,
    '    memberAddressTakeover: Filled(Type.Boolean({',
    `    ${field}: Filled(Type.Integer({ minimum: 0, maximum: 1000, default: 0, description: 'A live field of the next release (rolling-upgrade test).' })),\n    memberAddressTakeover: Filled(Type.Boolean({`,
  );
  const bin = join(modules, '@gwcluster', 'daemon', 'bin', 'gwclusterd.js');
  if (!existsSync(bin)) throw new Error(`next-release: no ${bin}`);
  return [process.execPath, bin];
}

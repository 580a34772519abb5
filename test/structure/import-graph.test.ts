// Every package's modules form no import circle (type-only imports included), every relative import
// resolves, and no module imports its own package's index.ts. In the addon, each component folder
// depends on common/ and on the components below it, and index.ts only re-exports.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const PACKAGES = [
  'native-addon/src',
  ...readdirSync(join(ROOT, 'packages'), { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .map((e) => `packages/${e.name}/src`),
];

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(p);
    return e.name.endsWith('.ts') ? [p] : [];
  });
}

/** Relative module specifiers of every import/export ... from '...' (and import '...'), resolved to .ts files. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specs = [
    ...text.matchAll(/^\s*(?:import|export)\b[^;'"]*?\bfrom\s*['"](\.[^'"]+)['"]/gm),
    ...text.matchAll(/^\s*import\s*['"](\.[^'"]+)['"]/gm),
  ].map((m) => m[1]!);
  return specs.map((s) => resolve(dirname(file), s.replace(/\.js$/, '.ts')));
}

/** Every elementary cycle found by a depth-first search, as module paths relative to src/. */
function findCycles(SRC: string, graph: Map<string, string[]>): string[][] {
  const cycles: string[][] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (n: string): void => {
    state.set(n, 'open');
    stack.push(n);
    for (const m of graph.get(n) ?? []) {
      if (state.get(m) === 'open') cycles.push([...stack.slice(stack.indexOf(m)), m].map((p) => relative(SRC, p)));
      else if (!state.has(m)) visit(m);
    }
    stack.pop();
    state.set(n, 'done');
  };
  for (const n of graph.keys()) if (!state.has(n)) visit(n);
  return cycles;
}

describe.each(PACKAGES)('module graph of %s', (pkg) => {
  const SRC = join(ROOT, pkg);
  const files = sourceFiles(SRC);
  const graph = new Map(files.map((f) => [f, importsOf(f)]));

  it('resolves every relative import to a source file', () => {
    const known = new Set(files);
    const missing = [...graph].flatMap(([f, deps]) => deps.filter((d) => !known.has(d)).map((d) => `${relative(SRC, f)} -> ${relative(SRC, d)}`));
    expect(missing).toEqual([]);
  });

  it('has no import circle', () => {
    expect(findCycles(SRC, graph)).toEqual([]);
  });

  it('imports its own index.ts from no module', () => {
    const index = join(SRC, 'index.ts');
    const importers = [...graph].filter(([, deps]) => deps.includes(index)).map(([f]) => relative(SRC, f));
    expect(importers).toEqual([]);
  });

  it.runIf(pkg === 'native-addon/src')('index.ts only re-exports', () => {
    const statements = readFileSync(join(SRC, 'index.ts'), 'utf8').split('\n').filter((l) => /^(import|const|let|function|class)\b/.test(l));
    expect(statements).toEqual([]);
  });
});

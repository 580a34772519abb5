import { defineConfig } from 'vitest/config';
import { fileURLToPath } from 'node:url';

const pkg = (name: string) => fileURLToPath(new URL(`./packages/${name}/src/index.ts`, import.meta.url));

export default defineConfig({
  resolve: {
    // Tests run against the TypeScript sources of sibling packages; processes (gwclusterd, gwctl) run the build.
    alias: {
      '@gwcluster/contracts': pkg('contracts'),
      '@gwcluster/wire': pkg('wire'),
      '@gwcluster/security': pkg('security'),
      // Subpath exports come before their package: an alias matches by prefix, the first entry wins.
      '@gwcluster/cluster-core/testing': fileURLToPath(new URL('./packages/cluster-core/src/testing.ts', import.meta.url)),
      '@gwcluster/cluster-core': pkg('cluster-core'),
      '@gwcluster/state-sync': pkg('state-sync'),
      '@gwcluster/daemon': pkg('daemon'),
      '@gwcluster/cli': pkg('cli'),
      '@gwcluster/native-addon': fileURLToPath(new URL('./native-addon/src/index.ts', import.meta.url)),
    },
  },
  test: {
    include: ['packages/*/test/**/*.test.ts', 'native-addon/test/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});

import { createTestPki } from './dist/index.js';
const ips = Array.from({ length: 64 }, (_, i) => `192.0.2.${i + 1}`);
let t = performance.now(); await createTestPki(ips); console.log('cold 64 members ms', (performance.now() - t).toFixed(1));
for (let k = 0; k < 3; k++) { const t = performance.now(); await createTestPki(ips); console.log('64 members ms', (performance.now() - t).toFixed(1)); }

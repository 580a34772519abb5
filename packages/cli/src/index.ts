export * from './client.js';
export * from './format.js';
export * from './status.js';
export { buildProgram, main } from './main.js';

export * from './types.js';
export * from './limits.js';
export * from './codec.js';
export * from './ip.js';
export * from './header.js';

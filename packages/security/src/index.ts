export * from './errors.js';
export * from './pem.js';
export * from './keys.js';
export * from './pki.js';
export * from './trust.js';
export * from './replay.js';
export * from './envelope.js';
export * from './testing.js';
export { canonicalSerial } from './der.js';

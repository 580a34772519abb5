export * from './replicator.js';

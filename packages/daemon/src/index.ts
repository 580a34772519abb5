export * from './config.js';
export * from './transport.js';
export * from './cluster-address.js';
export * from './applications.js';
export * from './member-node.js';
export * from './admin-app.js';
export * from './server.js';
export { BootError, loadCredentials, runMember, type RunningMember } from './main.js';

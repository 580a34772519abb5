// The contracts shared by gwclusterd and gwctl: types, schemas and the configuration check, no workspace dependency.
export * from './member-config.js';
export * from './admin-api.js';
export * from './api-errors.js';
export * from './config-check.js';

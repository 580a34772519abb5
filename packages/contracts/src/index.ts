// The contracts shared by gwclusterd and gwctl: types and schemas only, no workspace dependency.
export * from './member-config.js';
export * from './admin-api.js';
export * from './api-errors.js';

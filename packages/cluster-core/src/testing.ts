/**
 * Test support (subpath `@gwcluster/cluster-core/testing`): the transport conformance suite and the golden
 * scenario runner with the core's commands. Not used by a running member.
 */
export { transportConformance, type SuiteRunner, type TransportFixture } from './transport/conformance.js';
export { CORE_COMMANDS, CoreScenario, formatFields, formatTime, parseDuration, parseScript, runScript, type Command, type CommandTable } from './scenario.js';

/**
 * Test support (subpath `@gwcluster/cluster-core/testing`): the transport conformance suite. Not used by
 * a running member.
 */
export { transportConformance, type SuiteRunner, type TransportFixture } from './transport/conformance.js';

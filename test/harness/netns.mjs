// Network-namespace test harness for gwcluster: the public entry (types in ./netns.d.mts).
//
// Plain JavaScript ESM so that vitest tests (TypeScript) and plain `node` scripts (the demo) can both
// import it without a loader. Modules: topology.mjs (Topology), host.mjs (Host, Segment),
// nft-rules.mjs (partition / loss rules), cleanup.mjs (registry, signal handlers, watchdog, namespace
// sweeps), commands.mjs (running and killing processes), wait.mjs (waitFor), test-net.mjs (addresses).
//
// Model: one "switch" namespace per topology holds one Linux bridge per segment; every host is a
// namespace whose interfaces are veth pairs with the other end plugged into a bridge in the switch
// namespace. Nothing is ever created in the host's (root) network namespace: the veth pair is
// created *by* the switch namespace (`ip -n SWITCH link add PORT type veth peer name IF netns HOST`),
// so neither end exists outside the topology's namespaces, not even briefly.
//
// Only TEST-NET-1/2/3 IPv4 addresses are accepted, IPv6 is disabled in every namespace, no host has
// a default route, and no namespace has a link to the outside: traffic cannot leave the topology.
//
// Cleanup, in every failure mode:
//   - destroy():        SIGTERM to tracked process groups, SIGKILL after a grace period, SIGKILL to
//                       every remaining process in the namespaces (`ip netns pids`), `ip netns del`,
//                       removal of the topology's temp dir. Idempotent.
//   - process 'exit' (normal end, process.exit(), fatal uncaught exception / unhandled rejection):
//                       synchronous version of the above (execFileSync) for every live topology.
//   - SIGINT/SIGTERM/SIGHUP: synchronous cleanup, then, if no one else listens for that signal,
//                       the signal is re-raised so the process still dies of it (as vitest expects).
//   - forked test worker orphaned (its runner died without stopping it; IPC 'disconnect' + ppid
//                       changed): synchronous cleanup, the worker itself lingers until its test ends.
//   - SIGKILL / OOM kill of the process: a detached watchdog (`sh`, own session) per topology holds
//                       the read end of a pipe whose only writer is this process; on EOF it deletes
//                       every namespace with the topology's prefix (killing their processes) and the
//                       temp dir. On a normal destroy() the pipe is closed and the watchdog exits.
//   - all of the above killed at once (e.g. the whole cgroup): scripts/netns-sweep.sh.

export { PREFIX_ROOT, Topology, withTopology } from './topology.mjs';
export { Host, Segment } from './host.mjs';
export { liveTopologies, destroyAllTopologies } from './cleanup.mjs';
export { listNamespaces, netnsSupported } from './commands.mjs';
export { waitFor } from './wait.mjs';
export { isTestNetAddress, parseTestNetCidr } from './test-net.mjs';

// What removes a topology's leftovers when its owner cannot: the process-wide registry of live
// topologies with its exit / signal / orphaned-worker handlers, the detached watchdog that outlives
// a SIGKILL, and the namespace sweeps destroy() and destroySync() share.

import { spawn, execFileSync } from 'node:child_process';
import { describeFailure, killPid, listNamespaces, parseNamespacePids, runCommand } from './commands.mjs';
import { sleep } from './wait.mjs';

// Process-wide registry: every live topology, destroyed synchronously on exit / fatal signals.
// Shared through globalThis so that several copies of this module (vitest module isolation) use
// one set of process listeners.

const REGISTRY_KEY = Symbol.for('gwcluster.test.netns.registry');
/** @type {{ live: Set<any>, installed: boolean, handlers: Record<string, (...a: any[]) => void> }} */
const registry = globalThis[REGISTRY_KEY] ??= { live: new Set(), installed: false, handlers: {} };

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'];

function cleanupAllSync(reason) {
  for (const t of [...registry.live]) {
    try {
      t.destroySync(reason);
    } catch {
      // keep going: the other topologies still have to go
    }
  }
}

function installHandlers() {
  if (registry.installed) return;
  registry.installed = true;
  const h = registry.handlers;
  h.exit = () => cleanupAllSync('process exit');
  process.on('exit', h.exit);
  // 'exit' also fires for fatal exceptions; the monitor only cleans up earlier when the exception
  // is going to be fatal (nobody handles it), so a runner that survives uncaught errors keeps its topologies.
  h.uncaughtExceptionMonitor = (_err, origin) => {
    const handled = process.listenerCount('uncaughtException') > 0
      || (origin === 'unhandledRejection' && process.listenerCount('unhandledRejection') > 0);
    if (!handled) cleanupAllSync(`fatal ${origin}`);
  };
  process.on('uncaughtExceptionMonitor', h.uncaughtExceptionMonitor);
  // A forked worker (vitest's "forks" pool) whose runner died without stopping it (runner SIGKILLed,
  // or SIGINT/SIGTERM sent to the runner alone) keeps running the current test until its timeout.
  // The IPC channel closing is the sign; clean up once the process has really been orphaned
  // (ppid changed), so an intentional process.disconnect() does not destroy anything.
  if (typeof process.send === 'function' && process.connected) {
    const parent = process.ppid;
    h.disconnect = () => {
      let checks = 0;
      const timer = setInterval(() => {
        if (process.ppid !== parent) {
          clearInterval(timer);
          cleanupAllSync('parent process gone');
        } else if (++checks >= 40) {
          clearInterval(timer); // still has its parent after 2 s: an intentional disconnect
        }
      }, 50);
      timer.unref();
    };
    process.on('disconnect', h.disconnect);
  }
  for (const sig of SIGNALS) {
    const handler = () => {
      cleanupAllSync(sig);
      // Preserve the default behaviour (die of the signal) unless someone else handles it.
      if (process.listeners(sig).every((l) => l === handler)) {
        uninstallHandlers();
        process.kill(process.pid, sig);
      }
    };
    h[sig] = handler;
    process.on(sig, handler);
  }
}

function uninstallHandlers() {
  if (!registry.installed) return;
  registry.installed = false;
  const h = registry.handlers;
  process.removeListener('exit', h.exit);
  process.removeListener('uncaughtExceptionMonitor', h.uncaughtExceptionMonitor);
  if (h.disconnect) process.removeListener('disconnect', h.disconnect);
  for (const sig of SIGNALS) process.removeListener(sig, h[sig]);
  registry.handlers = {};
}

export function register(t) {
  registry.live.add(t);
  installHandlers();
}

export function unregister(t) {
  registry.live.delete(t);
  if (registry.live.size === 0) uninstallHandlers();
}

/** Topologies created by this process and not destroyed yet. */
export function liveTopologies() {
  return [...registry.live];
}

/** Destroys every live topology of this process (e.g. in a global teardown). */
export async function destroyAllTopologies() {
  await Promise.allSettled([...registry.live].map((t) => t.destroy()));
}

// ---------------------------------------------------------------------------------------------
// Watchdog: survives a SIGKILL of this process and removes what the topology left behind.

const WATCHDOG_SCRIPT = `
p=$1; d=$2
case $p in gwt*-) ;; *) exit 2 ;; esac
case $p in *[!a-z0-9-]*) exit 2 ;; esac
case $d in /*/"$p"files) ;; *) d= ;; esac
cat >/dev/null 2>&1
i=0
while [ $i -lt 10 ]; do
  left=0
  for ns in $(ip netns list 2>/dev/null | cut -d' ' -f1); do
    case $ns in
      "$p"*)
        left=1
        ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
        ip netns del "$ns" 2>/dev/null ;;
    esac
  done
  [ $left = 0 ] && break
  i=$((i+1)); sleep 0.2
done
[ -n "$d" ] && rm -rf -- "$d"
exit 0
`;

export function startWatchdog(prefix, dir) {
  const child = spawn('sh', ['-c', WATCHDOG_SCRIPT, 'gwt-netns-watchdog', prefix, dir], {
    detached: true, // own session: a Ctrl-C / group kill aimed at the test runner does not reach it
    stdio: ['pipe', 'ignore', 'ignore'],
  });
  child.on('error', () => {});
  child.stdin.on('error', () => {});
  child.unref();
  // @ts-ignore - Socket has unref(); keep the pipe from holding the event loop open
  child.stdin.unref?.();
  return child;
}

/** stopWatchdog(startWatchdog(...)): closing the pipe lets the watchdog do a final sweep, then exit. */
export function stopWatchdog(child) {
  if (!child) return;
  try {
    child.stdin.end();
  } catch {
    // already closed
  }
}

// ---------------------------------------------------------------------------------------------
// Namespace sweeps: kill every process inside, then delete the namespace.

/**
 * Deletes every namespace whose name starts with `prefix` (`switchNs` last), killing the processes
 * in each first; bounded retries. Pushes what could not be removed onto `problems`.
 */
export async function removeNamespaces(prefix, switchNs, problems) {
  const mine = (n) => n.startsWith(prefix);
  for (let round = 0; round < 5; round++) {
    const present = listNamespaces().filter(mine);
    if (present.length === 0) return;
    // Hosts first, the switch namespace last (order does not matter to the kernel; keeps logs readable).
    present.sort((x, y) => Number(x === switchNs) - Number(y === switchNs));
    for (const ns of present) {
      for (let i = 0; i < 5; i++) {
        const r = await runCommand(['ip', 'netns', 'pids', ns], { timeoutMs: 5_000 });
        const pids = parseNamespacePids(r.stdout);
        if (pids.length === 0) break;
        for (const pid of pids) killPid(pid, 'SIGKILL');
        await sleep(20);
      }
      const r = await runCommand(['ip', 'netns', 'del', ns], { timeoutMs: 5_000 });
      if (r.code !== 0 && round === 4) problems.push(describeFailure(['ip', 'netns', 'del', ns], r));
    }
    await sleep(round * 50);
  }
  const left = listNamespaces().filter(mine);
  if (left.length) problems.push(`namespaces left: ${left.join(' ')}`);
}

/**
 * Synchronous, best-effort removeNamespaces for exit / signal handlers; when the namespaces cannot
 * be listed, `known` (the names the topology created) are tried. Never throws: the watchdog retries.
 */
export function removeNamespacesSync(prefix, known) {
  let present = [];
  try {
    present = listNamespaces().filter((n) => n.startsWith(prefix));
  } catch {
    present = [...known];
  }
  for (const ns of present) {
    for (let i = 0; i < 3; i++) {
      let out = '';
      try {
        out = execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8', timeout: 2_000, stdio: ['ignore', 'pipe', 'ignore'] });
      } catch {
        break;
      }
      const pids = parseNamespacePids(out);
      if (pids.length === 0) break;
      for (const pid of pids) killPid(pid, 'SIGKILL');
    }
    try {
      execFileSync('ip', ['netns', 'del', ns], { timeout: 2_000, stdio: 'ignore' });
    } catch {
      // the watchdog retries
    }
  }
}

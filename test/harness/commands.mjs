// Running commands with a timeout in their own process group, killing processes, and asking the
// system about network namespaces.

import { spawn, execFileSync } from 'node:child_process';

const DEFAULT_CMD_TIMEOUT_MS = 10_000;
const MAX_OUTPUT = 16 * 1024 * 1024;

export function errMessage(e) {
  return e instanceof Error ? e.message : String(e);
}

/**
 * Runs argv (no shell) with a timeout; never rejects for a non-zero exit (see `code`), only when the
 * program cannot be started. The command runs in its own process group, killed (SIGKILL) on timeout.
 */
export function runCommand(argv, opts = {}) {
  const { timeoutMs = DEFAULT_CMD_TIMEOUT_MS, input, env } = opts;
  return new Promise((resolve, reject) => {
    const [file, ...args] = argv;
    const child = spawn(file, args, {
      stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      detached: true,
      env: env ?? process.env,
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    let settled = false;
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (d) => { if (stdout.length < MAX_OUTPUT) stdout += d; });
    child.stderr.on('data', (d) => { if (stderr.length < MAX_OUTPUT) stderr += d; });
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child.pid, 'SIGKILL');
    }, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      if (!settled) { settled = true; reject(new Error(`cannot run ${argv.join(' ')}: ${e.message}`)); }
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (!settled) { settled = true; resolve({ stdout, stderr, code, signal, timedOut }); }
    });
    if (input !== undefined) {
      child.stdin.on('error', () => {}); // EPIPE if the command does not read its input
      child.stdin.end(input);
    }
  });
}

export function describeFailure(argv, r) {
  const why = r.timedOut ? 'timed out' : r.signal ? `killed by ${r.signal}` : `exit code ${r.code}`;
  const out = (r.stderr.trim() || r.stdout.trim()).slice(0, 2000);
  const hint = /Cannot open network namespace/.test(out)
    ? ' (the namespace was deleted from outside this process, e.g. by `scripts/netns-sweep.sh --force` or `ip netns del`)'
    : '';
  return `${argv.join(' ')}: ${why}${out ? `: ${out}` : ''}${hint}`;
}

/** Like runCommand, but rejects unless the exit code is 0. */
export async function runOk(argv, opts) {
  const r = await runCommand(argv, opts);
  if (r.code !== 0) throw new Error(describeFailure(argv, r));
  return r;
}

export function killGroup(pid, signal) {
  if (!pid) return false;
  try {
    process.kill(-pid, signal);
    return true;
  } catch {
    return false;
  }
}

export function killPid(pid, signal) {
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    return false;
  }
}

/** Pids in the output of `ip netns pids NS`, without this process's own. */
export function parseNamespacePids(out) {
  return out.split(/\s+/).filter((s) => /^\d+$/.test(s)).map(Number).filter((p) => p !== process.pid);
}

/** Names of all network namespaces (`ip netns list`). */
export function listNamespaces() {
  const out = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8', timeout: 5_000, stdio: ['ignore', 'pipe', 'pipe'] });
  return out.split('\n').map((l) => l.trim().split(/\s+/)[0]).filter((n) => !!n);
}

/** Whether this machine/user can run the harness; `reason` explains why not. */
export function netnsSupported() {
  if (process.platform !== 'linux') return { ok: false, reason: 'not Linux' };
  if (typeof process.getuid === 'function' && process.getuid() !== 0) return { ok: false, reason: 'needs root' };
  for (const [cmd, args] of [['ip', ['-V']], ['nft', ['--version']]]) {
    try {
      execFileSync(cmd, args, { stdio: 'ignore', timeout: 5_000 });
    } catch {
      return { ok: false, reason: `${cmd} not available` };
    }
  }
  return { ok: true };
}

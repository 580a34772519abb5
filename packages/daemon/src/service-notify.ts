/**
 * The service manager's notifications (systemd's Type=notify, sd_notify(3)), when gwclusterd was started
 * with $NOTIFY_SOCKET:
 * - READY=1 the first time the member is ready as /readyz defines it (operator/readiness.ts: in a cluster,
 *   holding the session state, data plane up), so `systemctl start` and units ordered after gwclusterd wait
 *   for a member that serves; STATUS= tells what it waits for, and later its role and units.
 * - RELOADING=1 (with MONOTONIC_USEC) when a SIGHUP reload starts, READY=1 when it is done.
 * - STOPPING=1 when SIGTERM/SIGINT makes it leave the cluster.
 * - WATCHDOG=1 every WATCHDOG_USEC / 2 while the process is live as /livez defines it (its event loop not
 *   stalled); with WatchdogSec= in the unit a member whose JavaScript is stuck is killed and restarted
 *   instead of being vouched for by its still-running heartbeat thread.
 * The datagram is sent by the addon (sdNotify: Node.js has no AF_UNIX datagram sockets). A failed send is
 * logged once and counted, never thrown.
 */
import type { Readiness } from './operator/readiness.js';

/** What the notifier logs with (a pino logger, or a line on stderr before the member's logger exists). */
export interface NotifierLog {
  info(msg: string): void;
  warn(fields: Record<string, unknown>, msg: string): void;
}

export interface ServiceNotifierOptions {
  /** Sends one notification datagram; throws when it cannot. */
  readonly send: (state: string) => void;
  readonly logger: NotifierLog;
  /** The watchdog period WATCHDOG_USEC (µs); undefined: no watchdog. */
  readonly watchdogUsec?: number;
  /** How often readiness and status are looked at, ms (default 250). */
  readonly pollMs?: number;
  /** CLOCK_MONOTONIC in µs, for RELOADING=1's MONOTONIC_USEC (default: process.hrtime, the same clock). */
  readonly monotonicUsec?: () => bigint;
}

export interface NotifierSource {
  readiness(): Readiness;
  /** One line for STATUS=: the role, the master, the units. */
  status(): string;
  /** Live as /livez defines it (default: always). */
  live?(): boolean;
}

export class ServiceNotifier {
  readonly #opts: ServiceNotifierOptions;
  #logger: NotifierLog;
  #source: NotifierSource | null = null;
  #readySent = false;
  #status = '';
  #stopping = false;
  #reloading = false;
  #timers: NodeJS.Timeout[] = [];
  #warned = false;
  /** Notifications sent and sends that failed. */
  readonly counters = { sent: 0, failed: 0, watchdog: 0 };

  constructor(opts: ServiceNotifierOptions) {
    this.#opts = opts;
    this.#logger = opts.logger;
  }

  /** Starts the watchdog at once (also while the member boots: a bind retry may take a while) and the readiness poll. */
  start(): void {
    const poll = setInterval(() => this.tick(), this.#opts.pollMs ?? 250);
    poll.unref();
    this.#timers.push(poll);
    if (this.#opts.watchdogUsec !== undefined && this.#opts.watchdogUsec > 0) {
      const every = Math.max(1, Math.floor(this.#opts.watchdogUsec / 2000));
      const wd = setInterval(() => this.watchdog(), every);
      wd.unref();
      this.#timers.push(wd);
      this.watchdog();
    }
  }

  /** The member to report on (once it runs), and its logger. */
  attach(source: NotifierSource, logger?: NotifierLog): void {
    this.#source = source;
    if (logger) this.#logger = logger;
    this.tick();
  }

  /** Sends READY=1 the first time the member is ready, and STATUS= whenever the status line changes. */
  tick(): void {
    if (this.#stopping || this.#reloading) return;
    const src = this.#source;
    if (!src) {
      this.#setStatus('starting: binding the member address and the admin API');
      return;
    }
    const r = src.readiness();
    const line = r.ready ? `ready: ${src.status()}` : `not ready (${r.role}), waiting for: ${waitingFor(r).join(', ')}`;
    if (r.ready && !this.#readySent) {
      this.#readySent = true;
      this.#status = line;
      this.#send(`READY=1\nSTATUS=${line}`);
      this.#logger.info('service manager told READY=1 (the member is ready as /readyz defines it)');
      return;
    }
    this.#setStatus(line);
  }

  watchdog(): void {
    if (this.#source?.live && !this.#source.live()) return; // stalled: let the service manager's watchdog fire
    this.counters.watchdog++;
    this.#send('WATCHDOG=1');
  }

  /** A reload (SIGHUP) begins. */
  reloading(): void {
    if (this.#stopping) return;
    this.#reloading = true;
    const now = (this.#opts.monotonicUsec ?? (() => process.hrtime.bigint() / 1000n))();
    this.#send(`RELOADING=1\nMONOTONIC_USEC=${now}\nSTATUS=reloading the configuration`);
  }

  /** The reload is done (applied or refused: the member runs on either way). */
  reloaded(outcome: string): void {
    if (this.#stopping || !this.#reloading) return;
    this.#reloading = false;
    this.#status = '';
    this.#send(`READY=1\nSTATUS=${outcome}`);
  }

  /** SIGTERM/SIGINT: the member leaves the cluster and stops. */
  stopping(signal: string): void {
    if (this.#stopping) return;
    this.#stopping = true;
    this.#send(`STOPPING=1\nSTATUS=stopping on ${signal}: leaving the cluster`);
  }

  close(): void {
    for (const t of this.#timers.splice(0)) clearInterval(t);
  }

  #setStatus(line: string): void {
    if (line === this.#status) return;
    this.#status = line;
    this.#send(`STATUS=${line}`);
  }

  #send(state: string): void {
    try {
      this.#opts.send(state);
      this.counters.sent++;
    } catch (e) {
      this.counters.failed++;
      if (!this.#warned) {
        this.#warned = true;
        this.#logger.warn({ err: (e as Error).message }, `cannot notify the service manager ($NOTIFY_SOCKET): ${(e as Error).message}`);
      }
    }
  }
}

function waitingFor(r: Readiness): string[] {
  const out: string[] = [];
  if (!r.checks.cluster) out.push('a place in the cluster');
  if (!r.checks.state) out.push("the other members' session state");
  if (!r.checks.dataplane) out.push('the data plane');
  return out;
}

/**
 * The notifier the environment asks for: $NOTIFY_SOCKET (none: null), $WATCHDOG_USEC when $WATCHDOG_PID
 * is unset or this process. The three variables are removed from the environment, so the commands the
 * member runs (ip, nft, arping) do not inherit them.
 */
export function serviceNotifierFromEnv(
  env: NodeJS.ProcessEnv,
  send: (address: string, state: string) => void,
  logger: NotifierLog,
  pid: number = process.pid,
): ServiceNotifier | null {
  const address = env.NOTIFY_SOCKET;
  const wdUsec = env.WATCHDOG_USEC;
  const wdPid = env.WATCHDOG_PID;
  delete env.NOTIFY_SOCKET;
  delete env.WATCHDOG_USEC;
  delete env.WATCHDOG_PID;
  if (!address) return null;
  const usec = wdUsec !== undefined && /^\d+$/.test(wdUsec) && (wdPid === undefined || wdPid === String(pid)) ? Number(wdUsec) : undefined;
  return new ServiceNotifier({ send: (state) => send(address, state), logger, ...(usec !== undefined ? { watchdogUsec: usec } : {}) });
}

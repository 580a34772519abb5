// The service manager's notification protocol (sd_notify(3)): newline-separated assignments such as
// READY=1, STOPPING=1, RELOADING=1, STATUS=text, WATCHDOG=1, sent as one datagram to the AF_UNIX socket
// named by $NOTIFY_SOCKET (a path, or '@name' for an abstract socket). Node.js cannot send AF_UNIX
// datagrams, so the addon does (notify.cc, a socket() and a sendto(); no libsystemd).
import { loadBinding, type FilterBinding } from '../common/binding.js';
import { callNative, NativeCallError } from '../common/errors.js';

/**
 * Sends `state` (e.g. 'READY=1\nSTATUS=in the cluster') to `address`. Returns false, sending nothing, when
 * `address` is undefined or empty (not started by a service manager that listens). Throws
 * NativeCallError (with syscall, errno and code) when the send fails, e.g. ECONNREFUSED when nobody
 * listens, EAFNOSUPPORT for an address that is neither a path nor '@name'.
 */
export function sdNotify(state: string, address: string | undefined = process.env.NOTIFY_SOCKET, binding: FilterBinding = loadBinding()): boolean {
  const call = 'sdNotify';
  if (typeof state !== 'string' || state.length === 0 || !/^[A-Z_]+=/.test(state)) throw new TypeError(`${call}: state must be KEY=VALUE lines, got ${JSON.stringify(state)}`);
  if (address === undefined || address === '') return false;
  if (typeof address !== 'string') throw new TypeError(`${call}: address must be a string`);
  const native = binding.sdNotify;
  if (!native) throw new NativeCallError(call, 'the addon has no sdNotify (rebuild it)', { code: 'GWC_NO_NOTIFY' });
  callNative(call, () => native(address, state));
  return true;
}

// The service manager's notification protocol (sd_notify(3)) without libsystemd: one datagram of
// newline-separated KEY=VALUE assignments (READY=1, STOPPING=1, STATUS=..., WATCHDOG=1, ...) sent to the
// AF_UNIX datagram socket that $NOTIFY_SOCKET names, a path ("/run/systemd/notify") or, with a leading
// '@', an abstract socket. Node.js has no AF_UNIX datagram sockets, hence this in the addon.
#pragma once

#include <string>

namespace gwc::notify {

// Sends `state` to `address` ($NOTIFY_SOCKET's value). Returns 0, or an errno: EAFNOSUPPORT for an
// address that is neither a path nor '@' (e.g. systemd's "vsock:"), ENAMETOOLONG when it does not fit
// sockaddr_un, EINVAL for an empty address or state, or the errno of socket()/sendto(). `failedCall`
// names the call that failed.
int send(const std::string& address, const std::string& state, const char** failedCall);

}  // namespace gwc::notify

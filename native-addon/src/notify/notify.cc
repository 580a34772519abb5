#include "notify/notify.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>

namespace gwc::notify {

int send(const std::string& address, const std::string& state, const char** failedCall) {
  *failedCall = "sd_notify";
  if (address.empty() || state.empty()) return EINVAL;
  if (address[0] != '/' && address[0] != '@') return EAFNOSUPPORT;
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (address.size() > sizeof sa.sun_path - (address[0] == '/' ? 1 : 0)) return ENAMETOOLONG;
  std::memcpy(sa.sun_path, address.data(), address.size());
  if (address[0] == '@') sa.sun_path[0] = '\0';  // abstract: the name is the bytes after the NUL, unterminated
  const socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address.size() + (address[0] == '/' ? 1 : 0));
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *failedCall = "socket";
    return errno;
  }
  int err = 0;
  for (;;) {
    const ssize_t n = ::sendto(fd, state.data(), state.size(), MSG_NOSIGNAL, reinterpret_cast<const sockaddr*>(&sa), len);
    if (n >= 0) break;
    if (errno == EINTR) continue;
    err = errno;
    *failedCall = "sendto";
    break;
  }
  ::close(fd);
  return err;
}

}  // namespace gwc::notify

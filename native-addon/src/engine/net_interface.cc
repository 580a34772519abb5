#include "engine/net_interface.h"

#include <net/if.h>
#include <sys/ioctl.h>

#include <cerrno>
#include <cstring>

namespace gwc {

void throwOsError(const std::string& call, const std::string& what) {
  const int e = errno;
  throw EngineError(call, e, call + "(" + what + "): " + std::strerror(e));
}

int interfaceIndex(const std::string& name) {
  const unsigned idx = if_nametoindex(name.c_str());
  if (idx == 0) throwOsError("if_nametoindex", name);
  return static_cast<int>(idx);
}

Mac interfaceMac(int fd, const std::string& name) {
  struct ifreq ifr;
  std::memset(&ifr, 0, sizeof ifr);
  std::strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
  if (ioctl(fd, SIOCGIFHWADDR, &ifr) < 0) throwOsError("ioctl(SIOCGIFHWADDR)", name);
  Mac m;
  std::memcpy(m.data(), ifr.ifr_hwaddr.sa_data, 6);
  return m;
}

}  // namespace gwc

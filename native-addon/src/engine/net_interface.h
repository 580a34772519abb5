// What the packet engine's parts ask the OS about a network interface, and how a failed call is
// reported (EngineError: the call and errno). No Node.js dependency.
#pragma once

#include <array>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace gwc {

using Mac = std::array<uint8_t, 6>;

// An OS failure: the call that failed and errno (0 when none applies).
struct EngineError : std::runtime_error {
  EngineError(std::string call, int err, const std::string& what)
      : std::runtime_error(what), syscall(std::move(call)), errnum(err) {}
  std::string syscall;
  int errnum;
};

// Throws EngineError for `call` with the current errno; `what` names the object (interface, queue).
[[noreturn]] void throwOsError(const std::string& call, const std::string& what);

// The interface's index (if_nametoindex); throws EngineError when there is no such interface.
int interfaceIndex(const std::string& name);

// The interface's hardware address (SIOCGIFHWADDR through any socket fd); throws EngineError.
Mac interfaceMac(int fd, const std::string& name);

}  // namespace gwc

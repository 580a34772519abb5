// The seam between the packet engine and the kernel fast path's flow map (fastpath/flow_map.h): the
// engine tells the fast path that a flow's session is established, so the kernel may pass the flow's
// further packets itself. The engine is built without libbpf when the fast path is not; it only knows
// this interface. No Node.js dependency except the resolver (the wraps meet through it).
#pragma once

#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <memory>

namespace gwc {

class FlowOffload {
 public:
  virtual ~FlowOffload() = default;
  // The IP packet at ip (from its IP header), which the engine accepted and whose session is established
  // (TCP) or exists (UDP), of work unit `unit`. Called on the engine thread without its lock; never throws.
  virtual void offload(const uint8_t* ip, size_t len, uint16_t unit) noexcept = 0;
};

// Set by the fast path's registration (fastpath_wrap.cc): the FlowOffload of a FastPath JS object, or
// null for any other object. Unset when the addon was built without the fast path.
using FlowOffloadResolver = std::shared_ptr<FlowOffload> (*)(Napi::Object);
inline FlowOffloadResolver flowOffloadResolver = nullptr;

inline std::shared_ptr<FlowOffload> ResolveFlowOffload(Napi::Object o) {
  return flowOffloadResolver ? flowOffloadResolver(o) : nullptr;
}

}  // namespace gwc

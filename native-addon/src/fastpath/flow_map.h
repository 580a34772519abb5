// User space's side of the fast path's flow map (gwc_flows, fastpath_maps.h): which routed flows the
// kernel passes by itself under GWC_ACTION_PASS_TRACKED, and what it saw of them.
//
//   - offload(): the packet engine accepted a packet whose session is established; both directions of
//     its flow get an entry of the unit's current generation, so their next packets pass in the kernel.
//   - renew(unit): the unit becomes PASS_TRACKED again (a new term of ownership); entries of earlier
//     generations stop counting at once (the program compares generations) and sync() deletes them.
//   - sync(table): folds each entry's last packet into its session (SessionTable::refreshOffloaded) and
//     deletes the entries whose session is gone or no longer established, so their packets go up again.
//
// offload() runs on the engine thread and renew()/sync() on the JS thread: the generations are atomics
// and the map is the kernel's (each system call is atomic). One FlowMap per FastPath (interface); the
// engine offloads into every attached one. No Node.js dependency.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

#include "common/flow_offload.h"

extern "C" {
#include "fastpath/fastpath_consts.h"
#include "fastpath/fastpath_structs.h"
}

namespace gwc {
namespace sess {
class SessionTable;
}

struct FlowSyncResult {
  uint64_t entries = 0;    // entries read
  uint64_t refreshed = 0;  // entries with a packet since the flow was offloaded, folded into their session
  uint64_t removed = 0;    // entries deleted: earlier generation, no session, or no longer established
  uint64_t errors = 0;     // map reads or deletions the kernel refused
};

class FlowMap : public FlowOffload {
 public:
  // Takes its own duplicate of the map's file descriptor (the map outlives the FastPath that made it for
  // as long as an engine holds this object).
  explicit FlowMap(int mapFd);
  ~FlowMap() override;
  FlowMap(const FlowMap&) = delete;
  FlowMap& operator=(const FlowMap&) = delete;

  uint8_t generation(uint16_t unit) const { return gen_[unit % GWC_WORK_UNITS].load(std::memory_order_acquire); }
  // The unit's next generation (8 bits, wrapping), for its policy entry.
  uint8_t renew(uint16_t unit);

  void offload(const uint8_t* ip, size_t len, uint16_t unit) noexcept override;
  // nowWallMs and nowMonoNs: the same instant on the wall clock (ms) and CLOCK_MONOTONIC (ns), to place
  // the kernel's seen_ns on the session table's clock. Takes the table's mutex per entry.
  FlowSyncResult sync(sess::SessionTable& table, int64_t nowWallMs, uint64_t nowMonoNs);

  uint64_t offloaded() const { return offloaded_.load(std::memory_order_relaxed); }
  uint64_t offloadErrors() const { return offloadErrors_.load(std::memory_order_relaxed); }

 private:
  int fd_ = -1;
  std::array<std::atomic<uint8_t>, GWC_WORK_UNITS> gen_{};
  std::atomic<uint64_t> offloaded_{0}, offloadErrors_{0};
};

}  // namespace gwc

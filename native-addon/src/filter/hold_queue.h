// The master's hold queue (003, Figure 9): "assigned, not yet acked -> hold until acked, then forward;
// unassigned -> assign to the least-loaded member and hold". No Node.js dependency.
//
// One bounded FIFO ring per work unit plus two global caps. A packet that would exceed any of the
// three limits is not stored (tail drop: the first packets of a unit, e.g. a TCP SYN, are the ones
// kept) and `drops` is incremented. Memory is bounded by the global byte cap plus the ring slots.
// Not thread-safe: one thread (the JS thread) owns a HoldQueue.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "filter/filter.h"

namespace gwc {

struct HoldLimits {
  // Defaults, with their reasons:
  // 64 packets per unit: a unit waits one assignment round trip on the cluster LAN (well under 1 ms
  //   normally, at most the 200 ms master watchdog of the source); 64 covers the first flight of a TCP
  //   connection or a burst of L2TP control messages without letting one unit take the whole queue.
  uint32_t perUnitPackets = 64;
  // 4096 packets in all: when a dead member's units (up to all 1024) become unassigned at once, each
  //   can still keep its first 4 packets.
  uint32_t totalPackets = 4096;
  // 4 MiB in all: 4096 packets of 1 KiB on average; the queue's memory stays bounded on an appliance
  //   (plus 24 bytes per ring slot created, at most perUnitPackets per unit).
  uint64_t totalBytes = 4u << 20;
};

struct HoldStats {
  uint64_t heldPackets = 0;  // now in the queue
  uint64_t heldBytes = 0;    // now in the queue
  uint64_t drops = 0;        // packets refused because a limit was reached (cumulative)
  uint64_t discarded = 0;    // packets thrown away by discard() (cumulative)
  uint64_t released = 0;     // packets handed back by release() (cumulative)
};

class HoldQueue {
 public:
  explicit HoldQueue(HoldLimits limits = HoldLimits()) : limits_(limits) {}

  const HoldLimits& limits() const { return limits_; }
  const HoldStats& stats() const { return stats_; }

  // Marks the unit held (packets for it are queued until release or discard).
  void hold(uint16_t unit) { units_[unit].held = true; }
  bool isHeld(uint16_t unit) const { return units_[unit].held; }
  uint32_t queued(uint16_t unit) const { return units_[unit].count; }

  // Marks the unit held and appends a copy of the packet. False (and drops + 1) when a limit is hit.
  bool push(uint16_t unit, const uint8_t* data, size_t len);

  // Ends the hold: returns the queued packets oldest first and leaves the unit not held.
  std::vector<std::vector<uint8_t>> release(uint16_t unit);

  // Ends the hold: frees the queued packets, returns how many there were, leaves the unit not held.
  uint32_t discard(uint16_t unit);

 private:
  struct Ring {
    std::vector<std::vector<uint8_t>> slots;  // grows to at most perUnitPackets entries
    uint32_t head = 0;
    uint32_t count = 0;
    bool held = false;
  };
  HoldLimits limits_;
  HoldStats stats_;
  std::array<Ring, kWorkUnits> units_{};
};

}  // namespace gwc

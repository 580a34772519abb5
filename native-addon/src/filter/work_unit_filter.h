// One member's packet filter (003, Figure 9): the work assignment table (unit -> owner slot), this
// member's slot and role, per-unit counters, drop counters and the master's hold queue.
// No Node.js dependency. Not thread-safe: one thread (the JS thread, which also runs the capture's
// uv_poll callback) owns a WorkUnitFilter.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "filter/filter.h"
#include "filter/hold_queue.h"

namespace gwc {

// What this member does with one packet (Figure 9).
enum class Verdict : uint8_t {
  Local = 0,           // the unit is this member's (or ARP): hand it to the local stack
  ForwardToOwner = 1,  // master, method 1: the unit is another member's and acknowledged: forward
  Drop = 2,            // not this member's: drop silently (methods 2/3: the owner saw it too)
  Hold = 3,            // master: the unit is unassigned or assigned but not acknowledged: queued
  Invalid = 4,         // truncated, malformed or unsupported: counted and dropped
};

struct FilterCounters {
  uint64_t cluster = 0;       // classified as to a cluster IP
  uint64_t forwarded = 0;     // classified as forwarded
  uint64_t arp = 0;
  uint64_t unsupported = 0;   // non-IP EtherType
  uint64_t truncated = 0;
  uint64_t malformed = 0;
  uint64_t fragments = 0;     // included in cluster/forwarded
  uint64_t l2tp = 0;          // L2TP IDs used in the key
  uint64_t l2tpFallback = 0;  // UDP to 1701 keyed as plain UDP (truncated / not version 2 / bad Length)
};

class WorkUnitFilter {
 public:
  explicit WorkUnitFilter(HoldLimits limits = HoldLimits()) : hold_(limits) {}

  ClusterAddrs cluster;
  // Slot 0 means "unassigned"; members use slots 1..65535.
  std::array<uint16_t, kWorkUnits> owners{};
  uint16_t localSlot = 0;
  bool master = false;
  uint8_t method = 1;  // packet distribution method 1, 2 or 3 (003, "Normal IP packet processing")

  FilterCounters counters;
  // Packets and IP bytes (IPv4 total length, IPv6 40 + payload length) per unit, counted for the
  // units this member owns (owners[unit] == localSlot != 0) at classification time.
  std::array<uint64_t, kWorkUnits> unitPackets{};
  std::array<uint64_t, kWorkUnits> unitBytes{};

  HoldQueue& holdQueue() { return hold_; }

  // Classifies and counts (counters, and unitPackets/unitBytes of owned units).
  Classification classify(const uint8_t* p, size_t len, bool frame);
  // Classifies, counts, decides (Figure 9) and, for Hold, queues a copy of [p, p + len).
  Verdict verdict(const uint8_t* p, size_t len, bool frame, Classification* out);

  void resetCounters() {
    counters = FilterCounters();
    unitPackets.fill(0);
    unitBytes.fill(0);
  }

 private:
  HoldQueue hold_;
};

}  // namespace gwc

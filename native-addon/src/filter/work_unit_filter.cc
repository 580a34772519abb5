#include "filter/work_unit_filter.h"

namespace gwc {

Classification WorkUnitFilter::classify(const uint8_t* p, size_t len, bool frame) {
  Classification c = gwc::classify(p, len, cluster, frame);
  switch (c.status) {
    case Status::Cluster: ++counters.cluster; break;
    case Status::Forwarded: ++counters.forwarded; break;
    case Status::Arp: ++counters.arp; return c;
    case Status::Unsupported: ++counters.unsupported; return c;
    case Status::Truncated: ++counters.truncated; return c;
    case Status::Malformed: ++counters.malformed; return c;
  }
  if (c.flags & kFlagFragment) ++counters.fragments;
  if (c.flags & kFlagL2tp) ++counters.l2tp;
  if (c.flags & kFlagL2tpFallback) ++counters.l2tpFallback;
  if (localSlot != 0 && owners[c.unit] == localSlot) {
    ++unitPackets[c.unit];
    unitBytes[c.unit] += c.ipLength;
  }
  return c;
}

Verdict WorkUnitFilter::verdict(const uint8_t* p, size_t len, bool frame, Classification* out) {
  const Classification c = classify(p, len, frame);
  if (out) *out = c;
  if (c.status == Status::Arp) return Verdict::Local;
  if (!c.hasUnit()) return Verdict::Invalid;
  const uint16_t owner = owners[c.unit];
  if (localSlot != 0 && owner == localSlot) return Verdict::Local;
  if (!master) return Verdict::Drop;
  if (owner == 0 || hold_.isHeld(c.unit)) {
    hold_.push(c.unit, p, len);  // a refused packet is counted in the hold queue's drops
    return Verdict::Hold;
  }
  return method == 1 ? Verdict::ForwardToOwner : Verdict::Drop;
}

}  // namespace gwc

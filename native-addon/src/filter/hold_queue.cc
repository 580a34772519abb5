#include "filter/hold_queue.h"

#include <utility>

namespace gwc {

bool HoldQueue::push(uint16_t unit, const uint8_t* data, size_t len) {
  Ring& r = units_[unit];
  r.held = true;
  if (r.count >= limits_.perUnitPackets || stats_.heldPackets >= limits_.totalPackets ||
      stats_.heldBytes + len > limits_.totalBytes) {
    ++stats_.drops;
    return false;
  }
  // Slots are created as the ring first fills (a unit that holds 3 packets costs 3 slots).
  const uint32_t index = (r.head + r.count) % limits_.perUnitPackets;
  if (index >= r.slots.size()) r.slots.resize(index + 1);
  std::vector<uint8_t>& slot = r.slots[index];
  slot.assign(data, data + len);
  ++r.count;
  ++stats_.heldPackets;
  stats_.heldBytes += len;
  return true;
}

std::vector<std::vector<uint8_t>> HoldQueue::release(uint16_t unit) {
  Ring& r = units_[unit];
  std::vector<std::vector<uint8_t>> out;
  out.reserve(r.count);
  for (uint32_t i = 0; i < r.count; ++i) {
    std::vector<uint8_t>& slot = r.slots[(r.head + i) % limits_.perUnitPackets];
    stats_.heldBytes -= slot.size();
    out.push_back(std::move(slot));
    slot = std::vector<uint8_t>();
  }
  stats_.heldPackets -= r.count;
  stats_.released += r.count;
  r.head = 0;
  r.count = 0;
  r.held = false;
  return out;
}

uint32_t HoldQueue::discard(uint16_t unit) {
  Ring& r = units_[unit];
  const uint32_t n = r.count;
  for (uint32_t i = 0; i < n; ++i) {
    std::vector<uint8_t>& slot = r.slots[(r.head + i) % limits_.perUnitPackets];
    stats_.heldBytes -= slot.size();
    slot = std::vector<uint8_t>();
  }
  stats_.heldPackets -= n;
  stats_.discarded += n;
  r.head = 0;
  r.count = 0;
  r.held = false;
  return n;
}

}  // namespace gwc

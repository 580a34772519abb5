// The receive replay window of one keypair (whitepaper 5.4.6; the bitmap of RFC 6479, section 3: a ring of
// 64-bit blocks, the block ahead of the window cleared as the window moves, so no bit shifting).
// kRingBlocks blocks of 64 bits; the window accepts counters up to kWindowSize behind the greatest seen.
// Not thread-safe: the Transport's lock guards it.
#pragma once

#include <cstdint>
#include <cstring>

namespace gwc::tunnel {

class ReplayWindow {
 public:
  static constexpr unsigned kBlockBitsLog = 6;
  static constexpr uint64_t kBlockBits = 1ull << kBlockBitsLog;
  static constexpr uint64_t kRingBlocks = 128;  // 8192 bits
  static constexpr uint64_t kWindowSize = (kRingBlocks - 1) * kBlockBits;  // 8128 counters

  ReplayWindow() { reset(); }
  void reset() {
    last_ = 0;
    any_ = false;
    std::memset(ring_, 0, sizeof ring_);
  }

  /** The counter after the greatest accepted, 0 when nothing was accepted. */
  uint64_t next() const { return any_ ? last_ + 1 : 0; }

  /**
   * A replica's window (docs/tunnels.md, "Takeover"): every counter below `n` counts as seen, so a replay
   * of anything the previous owner accepted below its replicated value is refused. Only moves forward.
   */
  void seedBelow(uint64_t n) {
    if (n == 0 || n <= next()) return;
    const uint64_t f = n - 1;
    std::memset(ring_, 0xff, sizeof ring_);
    const uint64_t bit = f & (kBlockBits - 1);
    ring_[(f >> kBlockBitsLog) % kRingBlocks] = bit == kBlockBits - 1 ? ~0ull : ((1ull << (bit + 1)) - 1);
    last_ = f;
    any_ = true;
  }

  /** True when `counter` could still be accepted (not too old, not seen); does not change the window. */
  bool mayAccept(uint64_t counter) const {
    if (counter > last_) return true;
    if (last_ - counter > kWindowSize) return false;
    return !(ring_[(counter >> kBlockBitsLog) % kRingBlocks] & (1ull << (counter & (kBlockBits - 1))));
  }

  /**
   * Marks `counter` seen; false when it was seen already or is older than the window. Call only after the
   * message authenticated, so a forged counter cannot move the window.
   */
  bool accept(uint64_t counter) {
    uint64_t block = counter >> kBlockBitsLog;
    if (!any_) {
      any_ = true;
      last_ = counter;
      ring_[block % kRingBlocks] |= 1ull << (counter & (kBlockBits - 1));
      return true;
    }
    if (counter > last_) {
      const uint64_t current = last_ >> kBlockBitsLog;
      uint64_t diff = block - current;
      if (diff > kRingBlocks) diff = kRingBlocks;
      for (uint64_t i = 1; i <= diff; ++i) ring_[(current + i) % kRingBlocks] = 0;
      last_ = counter;
    } else if (last_ - counter > kWindowSize) {
      return false;
    }
    const uint64_t bit = 1ull << (counter & (kBlockBits - 1));
    uint64_t& b = ring_[block % kRingBlocks];
    if (b & bit) return false;
    b |= bit;
    return true;
  }

 private:
  uint64_t last_;
  bool any_;
  uint64_t ring_[kRingBlocks];
};

}  // namespace gwc::tunnel

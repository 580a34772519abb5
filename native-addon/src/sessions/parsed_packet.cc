// Header parsing for the session table; see parsed_packet.h. No Node.js dependency.
#include "sessions/parsed_packet.h"

#include <algorithm>
#include <cstring>

#include "common/byte_order.h"
#include "filter/filter.h"
#include "sessions/session.h"

namespace gwc {
namespace sess {
namespace {

void parseTcpOptions(const uint8_t* o, size_t n, Parsed* pk) {
  size_t i = 0;
  while (i < n) {
    const uint8_t kind = o[i];
    if (kind == 0) break;       // end of option list
    if (kind == 1) {            // NOP
      ++i;
      continue;
    }
    if (i + 1 >= n) break;
    const size_t l = o[i + 1];
    if (l < 2 || i + l > n) break;  // malformed option list: stop reading, keep what was parsed
    if (kind == 2 && l == 4) {
      pk->mss = readBe16(o + i + 2);
      pk->optFlags |= kDirMss;
    } else if (kind == 3 && l == 3) {
      pk->wscale = std::min<uint8_t>(o[i + 2], 14);  // RFC 7323 2.3: larger values are treated as 14
      pk->optFlags |= kDirWs;
    } else if (kind == 4 && l == 2) {
      pk->optFlags |= kDirSack;
    } else if (kind == 8 && l == 10) {
      pk->tsval = readBe32(o + i + 2);
      pk->optFlags |= kDirTs;
    }
    i += l;
  }
}

}  // namespace

bool parsePacket(const uint8_t* p, size_t len, Parsed* pk) {
  if (len < 1) return false;
  const uint8_t* l4 = nullptr;
  size_t l4len = 0;
  const uint8_t v = p[0] >> 4;
  if (v == 4) {
    if (len < 20) return false;
    const size_t hl = static_cast<size_t>(p[0] & 0x0F) * 4;
    if (hl < 20 || hl > len) return false;
    const size_t tot = readBe16(p + 2);
    if (tot < hl || tot > len) return false;
    pk->family = 4;
    pk->proto = p[9];
    std::memcpy(pk->src.data(), p + 12, 4);
    std::memcpy(pk->dst.data(), p + 16, 4);
    if (readBe16(p + 6) & 0x3FFF) {
      pk->fragment = true;
      return true;
    }
    l4 = p + hl;
    l4len = tot - hl;
  } else if (v == 6) {
    if (len < 40) return false;
    const size_t end = 40 + static_cast<size_t>(readBe16(p + 4));
    if (end > len) return false;
    pk->family = 6;
    std::memcpy(pk->src.data(), p + 8, 16);
    std::memcpy(pk->dst.data(), p + 24, 16);
    uint8_t nh = p[6];
    size_t off = 40;
    int walked = 0;
    for (;;) {
      size_t hlen;
      if (nh == 0 || nh == 43 || nh == 60 || nh == 51) {
        if (walked == kMaxIpv6ExtHeaders || off + 2 > end) return false;
        hlen = nh == 51 ? (static_cast<size_t>(p[off + 1]) + 2) * 4 : (static_cast<size_t>(p[off + 1]) + 1) * 8;
      } else if (nh == 44) {
        if (walked == kMaxIpv6ExtHeaders || off + 8 > end) return false;
        pk->proto = p[off];
        pk->fragment = true;
        return true;
      } else {
        break;
      }
      if (off + hlen > end) return false;
      nh = p[off];
      off += hlen;
      ++walked;
    }
    pk->proto = nh;
    l4 = p + off;
    l4len = end - off;
  } else {
    return false;
  }
  if (pk->proto == 6) {
    if (l4len < 20) return false;
    const size_t doff = static_cast<size_t>(l4[12] >> 4) * 4;
    if (doff < 20 || doff > l4len) return false;
    pk->sport = readBe16(l4);
    pk->dport = readBe16(l4 + 2);
    pk->seq = readBe32(l4 + 4);
    pk->ack = readBe32(l4 + 8);
    pk->tflags = l4[13] & 0x3F;
    pk->win = readBe16(l4 + 14);
    pk->payload = static_cast<uint32_t>(l4len - doff);
    parseTcpOptions(l4 + 20, doff - 20, pk);
  } else if (pk->proto == 17) {
    if (l4len < 8) return false;
    const size_t ulen = readBe16(l4 + 4);
    if (ulen < 8 || ulen > l4len) return false;
    pk->sport = readBe16(l4);
    pk->dport = readBe16(l4 + 2);
  }
  return true;
}

}  // namespace sess
}  // namespace gwc

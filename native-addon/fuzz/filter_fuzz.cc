// Standalone robustness check of filter.cc (no Node): every input is copied into a heap block of
// exactly its size, so AddressSanitizer reports any read past the end.
//
//   g++ -std=c++17 -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -Isrc \
//       fuzz/filter_fuzz.cc src/filter/filter.cc -o /tmp/filter_fuzz && /tmp/filter_fuzz [iterations] [corpus.bin offsets.bin]
//
// Without a corpus it mutates a few seed packets; with one (a batch written by the parity generator:
// packets, then a little-endian uint32 offsets file) it classifies every packet and every prefix.
// It also works as a libFuzzer target (clang -fsanitize=fuzzer -DGWC_LIBFUZZER).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <vector>

#include "../src/filter/filter.h"

namespace {

gwc::ClusterAddrs cluster() {
  gwc::ClusterAddrs c;
  c.v4 = {0xC0000201u, 0xC6336407u};
  c.v6.push_back({0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1});
  return c;
}

uint64_t classifyExact(const uint8_t* data, size_t len, const gwc::ClusterAddrs& c) {
  uint8_t* copy = static_cast<uint8_t*>(std::malloc(len ? len : 1));
  if (len) std::memcpy(copy, data, len);
  const gwc::Classification a = gwc::classifyIp(copy, len, c);
  const gwc::Classification b = gwc::classifyFrame(copy, len, c);
  std::free(copy);
  if (a.hasUnit() && a.unit > 1023) std::abort();
  if (b.hasUnit() && b.unit > 1023) std::abort();
  return a.unit + b.unit;
}

}  // namespace

#ifdef GWC_LIBFUZZER
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const gwc::ClusterAddrs c = cluster();
  classifyExact(data, size, c);
  return 0;
}
#else
int main(int argc, char** argv) {
  const gwc::ClusterAddrs c = cluster();
  const long iterations = argc > 1 ? std::atol(argv[1]) : 2000000;
  uint64_t sink = 0, inputs = 0;
  if (argc > 3) {
    std::ifstream pf(argv[2], std::ios::binary), of(argv[3], std::ios::binary);
    std::vector<uint8_t> pk((std::istreambuf_iterator<char>(pf)), {});
    std::vector<char> ob((std::istreambuf_iterator<char>(of)), {});
    std::vector<uint32_t> off(ob.size() / 4);
    std::memcpy(off.data(), ob.data(), off.size() * 4);
    for (size_t i = 0; i + 1 < off.size(); ++i)
      for (uint32_t len = 0; len <= off[i + 1] - off[i]; ++len, ++inputs) sink += classifyExact(pk.data() + off[i], len, c);
  }
  // Seeds: IPv4/UDP to 1701 with an L2TP header, IPv6 with a hop-by-hop header and TCP, an Ethernet ARP.
  std::vector<std::vector<uint8_t>> seeds = {
      {0x45, 0, 0, 42, 0, 0, 0, 0, 64, 17, 0, 0, 198, 51, 100, 1, 192, 0, 2, 1,
       0x9c, 0x40, 0x06, 0xa5, 0, 22, 0, 0, 0x40, 0x02, 0, 14, 0, 7, 0, 9, 0, 0, 0, 0, 0, 0},
      std::vector<uint8_t>(88, 0),
      {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1},
  };
  seeds[1][0] = 0x60; seeds[1][5] = 48; seeds[1][6] = 0; seeds[1][40] = 6; seeds[1][41] = 0; seeds[1][60] = 0x50;
  std::mt19937_64 rng(12345);
  for (long it = 0; it < iterations; ++it, ++inputs) {
    std::vector<uint8_t> p = seeds[rng() % seeds.size()];
    const int edits = 1 + rng() % 6;
    for (int e = 0; e < edits; ++e) {
      switch (rng() % 4) {
        case 0: if (!p.empty()) p[rng() % p.size()] = static_cast<uint8_t>(rng()); break;
        case 1: p.resize(rng() % (p.size() + 1)); break;
        case 2: p.resize(p.size() + rng() % 64, static_cast<uint8_t>(rng())); break;
        default: if (!p.empty()) p[rng() % std::min<size_t>(p.size(), 8)] ^= static_cast<uint8_t>(1u << (rng() % 8));
      }
    }
    sink += classifyExact(p.data(), p.size(), c);
  }
  std::printf("filter_fuzz: %llu inputs classified as raw IP and as frames, no fault (checksum %llu)\n",
              static_cast<unsigned long long>(inputs), static_cast<unsigned long long>(sink));
  return 0;
}
#endif

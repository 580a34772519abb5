// The user-space owner of the kernel fast path (libbpf): loads fastpath_kern.c's object, attaches it to
// an interface's tc ingress, is the only writer of its policy maps and the reader of its counters,
// and detaches it. No Node.js dependency.
//
// Not thread-safe: one thread (the JS thread) owns a FastPathOwner. Failures throw FastPathError naming
// the libbpf or system call and its errno.
#pragma once

#include <array>
#include <cstddef>
#include <memory>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

extern "C" {
#include "fastpath/fastpath_consts.h"
#include "fastpath/fastpath_structs.h"
}

#include "fastpath/flow_map.h"

struct bpf_object;
struct bpf_program;

namespace gwc {

class FastPathError : public std::runtime_error {
 public:
  FastPathError(std::string syscall, int errnum, const std::string& message)
      : std::runtime_error(message), syscall(std::move(syscall)), errnum(errnum) {}
  std::string syscall;
  int errnum;  // 0 when no OS error applies
};

enum class AttachMode : uint8_t {
  // A bpf_link on the interface's tcx ingress (Linux 6.6+): detached by the kernel when the link's
  // last file descriptor closes, so a member whose process dies stops deciding in the kernel and its
  // packets fall back to the NFQUEUE rule (which, with no engine, drops them), as today.
  Tcx = 0,
  // A cls_bpf direct-action filter on the clsact qdisc: stays attached after the process dies, until
  // detach() or the interface goes. The clsact qdisc is removed on detach only if this owner made it.
  ClsBpf = 1,
};

using Ipv6Bytes = std::array<uint8_t, 16>;

class FastPathOwner {
 public:
  // Opens and loads the BPF object at `objectPath` (verifier included). Every unit's action starts as
  // GWC_ACTION_TO_USER, the config as frames with no user mark.
  explicit FastPathOwner(const std::string& objectPath);
  ~FastPathOwner();
  FastPathOwner(const FastPathOwner&) = delete;
  FastPathOwner& operator=(const FastPathOwner&) = delete;

  void attach(const std::string& ifname, AttachMode mode);
  // Idempotent. After it returns the program no longer sees the interface's packets.
  void detach();
  bool attached() const { return ifindex_ != 0; }
  const std::string& interfaceName() const { return ifname_; }

  void setConfig(const gwc_config& config);
  gwc_config config() const { return config_; }
  // policy.generation is ignored: a PASS_TRACKED policy gets the unit's next flow generation.
  void setUnitPolicy(uint32_t unit, const gwc_unit_policy& policy);
  // GWC_ACTION_REDIRECT: frames of other members' units leave through `ifname` (empty: none, such units
  // go up); its index and MAC are read now.
  void setForwardInterface(const std::string& ifname);
  // The MAC of a packet-path slot (null: forget it).
  void setSlotMac(uint16_t slot, const uint8_t* mac);
  // The program's flow map (offloaded flows), shared with the packet engine.
  const std::shared_ptr<FlowMap>& flows() const { return flows_; }
  // Replaces the address set: new addresses are added before stale ones are removed, so an address in
  // both the old and the new set is never absent.
  void setClusterIps(const std::vector<uint32_t>& v4, const std::vector<Ipv6Bytes>& v6);
  void setBypassIps(const std::vector<uint32_t>& v4, const std::vector<Ipv6Bytes>& v6);

  // Packets and bytes per unit (GWC_WORK_UNITS each) since the last reset, summed over CPUs. A reset
  // moves a baseline (the kernel counters only grow), so no packet counted in between is lost.
  void unitCounters(bool reset, uint64_t* packets, uint64_t* bytes);
  // GWC_STAT_COUNT cumulative counters, summed over CPUs.
  void stats(uint64_t* out);

  // BPF_PROG_TEST_RUN of one packet prefixed by a GWC test carrier header (config l2_offset bytes):
  // the classification words of skb->cb (fastpath_structs.h) and the program's return value.
  // Only while not attached (the test flag would otherwise mark every live packet's cb).
  struct TestRun {
    std::array<uint32_t, GWC_TEST_CB_WORDS> cb;
    uint32_t retval;
    uint32_t mark;  // skb->mark after the program
  };
  TestRun testRun(const uint8_t* data, size_t len);
  // The average run time in nanoseconds of `repeat` runs of one packet (kernel's own measurement).
  uint32_t testRunDuration(const uint8_t* data, size_t len, uint32_t repeat);

 private:
  int mapFd(const char* name) const;
  void replaceSet(int fd4, int fd6, const std::vector<uint32_t>& v4, const std::vector<Ipv6Bytes>& v6,
                  const char* what);
  void readPercpu(int fd, uint32_t key, void* values, const char* what) const;

  bpf_object* object_ = nullptr;
  bpf_program* program_ = nullptr;
  int progFd_ = -1;
  int policyFd_ = -1, countersFd_ = -1, clusterV4Fd_ = -1, clusterV6Fd_ = -1;
  int bypassV4Fd_ = -1, bypassV6Fd_ = -1, configFd_ = -1, statsFd_ = -1, slotMacsFd_ = -1;
  int cpus_ = 0;
  gwc_config config_{};
  std::shared_ptr<FlowMap> flows_;
  std::vector<uint64_t> baselinePackets_, baselineBytes_;

  std::string ifname_;
  int ifindex_ = 0;
  AttachMode mode_ = AttachMode::Tcx;
  int linkFd_ = -1;          // Tcx
  uint32_t tcHandle_ = 0;    // ClsBpf
  uint32_t tcPriority_ = 0;  // ClsBpf
  bool madeClsact_ = false;  // ClsBpf
};

}  // namespace gwc

#include "fastpath/fastpath_owner.h"

#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>

extern "C" {
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
}

#include "filter/filter.h"

namespace gwc {

// The fast path's classification constants are the C++ filter's (filter.h): one contract.
static_assert(GWC_WORK_UNITS == kWorkUnits && GWC_NO_UNIT == kNoUnit && GWC_L2TP_PORT == kL2tpPort);
static_assert(GWC_MAX_IPV6_EXT_HEADERS == kMaxIpv6ExtHeaders && GWC_MAX_VLAN_TAGS == kMaxVlanTags);
static_assert(GWC_STATUS_CLUSTER == static_cast<int>(Status::Cluster) &&
              GWC_STATUS_FORWARDED == static_cast<int>(Status::Forwarded) &&
              GWC_STATUS_ARP == static_cast<int>(Status::Arp) &&
              GWC_STATUS_UNSUPPORTED == static_cast<int>(Status::Unsupported) &&
              GWC_STATUS_TRUNCATED == static_cast<int>(Status::Truncated) &&
              GWC_STATUS_MALFORMED == static_cast<int>(Status::Malformed));
static_assert(GWC_FLAG_FRAGMENT == kFlagFragment && GWC_FLAG_L2TP == kFlagL2tp &&
              GWC_FLAG_L2TP_FALLBACK == kFlagL2tpFallback);
static_assert(GWC_REASON_ETHERNET == static_cast<int>(Reason::Ethernet) &&
              GWC_REASON_VLAN == static_cast<int>(Reason::Vlan) &&
              GWC_REASON_ARP_HEADER == static_cast<int>(Reason::ArpHeader) &&
              GWC_REASON_IP_HEADER == static_cast<int>(Reason::IpHeader) &&
              GWC_REASON_IP_LENGTH == static_cast<int>(Reason::IpLength) &&
              GWC_REASON_EXT_HEADER == static_cast<int>(Reason::ExtHeader) &&
              GWC_REASON_L4_HEADER == static_cast<int>(Reason::L4Header) &&
              GWC_REASON_IP_VERSION == static_cast<int>(Reason::IpVersion) &&
              GWC_REASON_IP_IHL == static_cast<int>(Reason::IpIhl) &&
              GWC_REASON_IP_TOTAL_LENGTH == static_cast<int>(Reason::IpTotalLength) &&
              GWC_REASON_EXT_HEADER_LIMIT == static_cast<int>(Reason::ExtHeaderLimit) &&
              GWC_REASON_TCP_DATA_OFFSET == static_cast<int>(Reason::TcpDataOffset) &&
              GWC_REASON_UDP_LENGTH == static_cast<int>(Reason::UdpLength) &&
              GWC_REASON_VLAN_LIMIT == static_cast<int>(Reason::VlanLimit) &&
              GWC_REASON_ETHERTYPE == static_cast<int>(Reason::EtherType));
static_assert(GWC_L2TP_FALLBACK_TRUNCATED == static_cast<int>(L2tpFallback::Truncated) &&
              GWC_L2TP_FALLBACK_VERSION == static_cast<int>(L2tpFallback::Version) &&
              GWC_L2TP_FALLBACK_LENGTH == static_cast<int>(L2tpFallback::Length));

namespace {

// enum bpf_attach_type BPF_TCX_INGRESS (include/uapi/linux/bpf.h since Linux 6.6); the build machine's
// UAPI headers may predate it.
constexpr int kBpfTcxIngress = 46;

// libbpf's diagnostics (the verifier log on a refused load) of the call in progress, kept for the error.
thread_local std::string libbpfLog;

int collectLibbpfLog(enum libbpf_print_level level, const char* format, va_list args) {
  if (level == LIBBPF_DEBUG) return 0;
  char line[1024];
  const int n = vsnprintf(line, sizeof line, format, args);
  if (n > 0) {
    libbpfLog.append(line, std::min<size_t>(static_cast<size_t>(n), sizeof line - 1));
    if (libbpfLog.size() > 8192) libbpfLog.erase(0, libbpfLog.size() - 8192);
  }
  return 0;
}

[[noreturn]] void fail(const char* syscall, int errnum, const std::string& what) {
  std::string message = std::string(syscall) + "(" + what + "): " + std::strerror(errnum);
  if (!libbpfLog.empty()) {
    // The last lines name what the verifier or libbpf refused.
    std::string tail = libbpfLog.size() > 1500 ? libbpfLog.substr(libbpfLog.size() - 1500) : libbpfLog;
    message += "\n" + tail;
  }
  libbpfLog.clear();
  throw FastPathError(syscall, errnum, message);
}

// libbpf returns -errno (and sets errno) on failure.
inline int errOf(int ret) { return ret < 0 ? -ret : errno; }

}  // namespace

FastPathOwner::FastPathOwner(const std::string& objectPath) {
  libbpf_set_print(collectLibbpfLog);
  libbpfLog.clear();
  object_ = bpf_object__open_file(objectPath.c_str(), nullptr);
  if (!object_) {
    const int e = errno;
    object_ = nullptr;
    fail("bpf_object__open_file", e, objectPath);
  }
  if (int err = bpf_object__load(object_); err != 0) {
    bpf_object__close(object_);
    object_ = nullptr;
    fail("bpf_object__load", errOf(err), objectPath);
  }
  program_ = bpf_object__find_program_by_name(object_, "gwc_fastpath_ingress");
  if (!program_) {
    bpf_object__close(object_);
    object_ = nullptr;
    fail("bpf_object__find_program_by_name", ENOENT, "gwc_fastpath_ingress");
  }
  progFd_ = bpf_program__fd(program_);
  try {
    policyFd_ = mapFd("gwc_unit_policy");
    countersFd_ = mapFd("gwc_unit_counters");
    clusterV4Fd_ = mapFd("gwc_cluster_v4");
    clusterV6Fd_ = mapFd("gwc_cluster_v6");
    bypassV4Fd_ = mapFd("gwc_bypass_v4");
    bypassV6Fd_ = mapFd("gwc_bypass_v6");
    configFd_ = mapFd("gwc_config");
    statsFd_ = mapFd("gwc_stats");
    flows_ = std::make_shared<FlowMap>(mapFd("gwc_flows"));
    slotMacsFd_ = mapFd("gwc_slot_macs");
    cpus_ = libbpf_num_possible_cpus();
    if (cpus_ <= 0) fail("libbpf_num_possible_cpus", -cpus_, "");
    baselinePackets_.assign(GWC_WORK_UNITS, 0);
    baselineBytes_.assign(GWC_WORK_UNITS, 0);
    gwc_config initial{};
    initial.flags = GWC_CONFIG_FRAMES;
    setConfig(initial);
  } catch (...) {
    bpf_object__close(object_);
    object_ = nullptr;
    throw;
  }
  libbpfLog.clear();
}

FastPathOwner::~FastPathOwner() {
  try {
    detach();
  } catch (...) {
    // Destruction must not throw; a cls_bpf filter that could not be removed stays until its interface goes.
  }
  if (object_) bpf_object__close(object_);
}

int FastPathOwner::mapFd(const char* name) const {
  const int fd = bpf_object__find_map_fd_by_name(object_, name);
  if (fd < 0) fail("bpf_object__find_map_fd_by_name", errOf(fd), name);
  return fd;
}

void FastPathOwner::attach(const std::string& ifname, AttachMode mode) {
  if (attached()) fail("attach", EBUSY, "already attached to " + ifname_ + "; detach first");
  const unsigned ifindex = if_nametoindex(ifname.c_str());
  if (ifindex == 0) fail("if_nametoindex", errno, ifname);
  if (mode == AttachMode::Tcx) {
    const int fd = bpf_link_create(progFd_, static_cast<int>(ifindex), static_cast<enum bpf_attach_type>(kBpfTcxIngress),
                                   nullptr);
    if (fd < 0) fail("bpf_link_create", errOf(fd), ifname + " tcx ingress");
    linkFd_ = fd;
  } else {
    bpf_tc_hook hook{};
    hook.sz = sizeof hook;
    hook.ifindex = static_cast<int>(ifindex);
    hook.attach_point = BPF_TC_INGRESS;
    int err = bpf_tc_hook_create(&hook);
    if (err != 0 && err != -EEXIST) fail("bpf_tc_hook_create", errOf(err), ifname + " clsact");
    madeClsact_ = err == 0;
    bpf_tc_opts opts{};
    opts.sz = sizeof opts;
    opts.prog_fd = progFd_;
    err = bpf_tc_attach(&hook, &opts);
    if (err != 0) {
      if (madeClsact_) {
        hook.attach_point = static_cast<bpf_tc_attach_point>(BPF_TC_INGRESS | BPF_TC_EGRESS);
        bpf_tc_hook_destroy(&hook);
      }
      madeClsact_ = false;
      fail("bpf_tc_attach", errOf(err), ifname + " ingress");
    }
    tcHandle_ = opts.handle;
    tcPriority_ = opts.priority;
  }
  ifname_ = ifname;
  ifindex_ = static_cast<int>(ifindex);
  mode_ = mode;
}

void FastPathOwner::detach() {
  if (!attached()) return;
  const std::string ifname = ifname_;
  const int ifindex = ifindex_;
  ifindex_ = 0;
  ifname_.clear();
  if (mode_ == AttachMode::Tcx) {
    close(linkFd_);
    linkFd_ = -1;
    return;
  }
  bpf_tc_hook hook{};
  hook.sz = sizeof hook;
  hook.ifindex = ifindex;
  hook.attach_point = BPF_TC_INGRESS;
  bpf_tc_opts opts{};
  opts.sz = sizeof opts;
  opts.handle = tcHandle_;
  opts.priority = tcPriority_;
  const int err = bpf_tc_detach(&hook, &opts);
  const bool made = madeClsact_;
  madeClsact_ = false;
  if (made) {
    // Both attach points name the qdisc itself (one alone only flushes that hook's filters).
    hook.attach_point = static_cast<bpf_tc_attach_point>(BPF_TC_INGRESS | BPF_TC_EGRESS);
    bpf_tc_hook_destroy(&hook);
  }
  // The interface may be gone already (its filters with it).
  if (err != 0 && err != -ENOENT && err != -ENODEV && err != -EINVAL) fail("bpf_tc_detach", errOf(err), ifname + " ingress");
}

void FastPathOwner::setConfig(const gwc_config& config) {
  const uint32_t key = 0;
  if (int err = bpf_map_update_elem(configFd_, &key, &config, BPF_ANY); err != 0)
    fail("bpf_map_update_elem", errOf(err), "gwc_config");
  config_ = config;
}

void FastPathOwner::setForwardInterface(const std::string& ifname) {
  gwc_config c = config_;
  c.fwd_ifindex = 0;
  std::memset(c.fwd_mac, 0, sizeof c.fwd_mac);
  if (!ifname.empty()) {
    if (ifname.size() >= IFNAMSIZ) fail("setForwardInterface", EINVAL, ifname);
    const unsigned ifindex = if_nametoindex(ifname.c_str());
    if (ifindex == 0) fail("if_nametoindex", errno, ifname);
    const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) fail("socket", errno, "AF_INET for SIOCGIFHWADDR");
    ifreq ifr{};
    std::memcpy(ifr.ifr_name, ifname.c_str(), ifname.size());
    const int rc = ioctl(fd, SIOCGIFHWADDR, &ifr);
    const int e = errno;
    close(fd);
    if (rc < 0) fail("ioctl", e, "SIOCGIFHWADDR " + ifname);
    c.fwd_ifindex = ifindex;
    std::memcpy(c.fwd_mac, ifr.ifr_hwaddr.sa_data, 6);
  }
  setConfig(c);
}

void FastPathOwner::setSlotMac(uint16_t slot, const uint8_t* mac) {
  if (!mac) {
    const int err = bpf_map_delete_elem(slotMacsFd_, &slot);
    if (err != 0 && errOf(err) != ENOENT) fail("bpf_map_delete_elem", errOf(err), "gwc_slot_macs[" + std::to_string(slot) + "]");
    return;
  }
  gwc_slot_mac v{};
  std::memcpy(v.mac, mac, 6);
  if (int err = bpf_map_update_elem(slotMacsFd_, &slot, &v, BPF_ANY); err != 0)
    fail("bpf_map_update_elem", errOf(err), "gwc_slot_macs[" + std::to_string(slot) + "]");
}

void FastPathOwner::setUnitPolicy(uint32_t unit, const gwc_unit_policy& policy) {
  if (unit >= GWC_WORK_UNITS) fail("setUnitPolicy", ERANGE, "unit " + std::to_string(unit));
  if (policy.action >= GWC_ACTION_COUNT) fail("setUnitPolicy", EINVAL, "action " + std::to_string(policy.action));
  gwc_unit_policy p = policy;
  p.generation = p.action == GWC_ACTION_PASS_TRACKED ? flows_->renew(static_cast<uint16_t>(unit)) : 0;
  if (int err = bpf_map_update_elem(policyFd_, &unit, &p, BPF_ANY); err != 0)
    fail("bpf_map_update_elem", errOf(err), "gwc_unit_policy[" + std::to_string(unit) + "]");
}

void FastPathOwner::replaceSet(int fd4, int fd6, const std::vector<uint32_t>& v4, const std::vector<Ipv6Bytes>& v6,
                               const char* what) {
  const uint8_t one = 1;
  for (uint32_t a : v4)
    if (int err = bpf_map_update_elem(fd4, &a, &one, BPF_ANY); err != 0)
      fail("bpf_map_update_elem", errOf(err), std::string(what) + "_v4");
  for (const Ipv6Bytes& a : v6)
    if (int err = bpf_map_update_elem(fd6, a.data(), &one, BPF_ANY); err != 0)
      fail("bpf_map_update_elem", errOf(err), std::string(what) + "_v6");
  // Stale keys: collected first (deleting while walking restarts the walk), then removed.
  std::vector<uint32_t> stale4;
  uint32_t k4 = 0;
  for (int err = bpf_map_get_next_key(fd4, nullptr, &k4); err == 0; err = bpf_map_get_next_key(fd4, &k4, &k4))
    if (std::find(v4.begin(), v4.end(), k4) == v4.end()) stale4.push_back(k4);
  for (uint32_t k : stale4) bpf_map_delete_elem(fd4, &k);
  std::vector<Ipv6Bytes> stale6;
  Ipv6Bytes k6{};
  for (int err = bpf_map_get_next_key(fd6, nullptr, k6.data()); err == 0;
       err = bpf_map_get_next_key(fd6, k6.data(), k6.data()))
    if (std::find(v6.begin(), v6.end(), k6) == v6.end()) stale6.push_back(k6);
  for (const Ipv6Bytes& k : stale6) bpf_map_delete_elem(fd6, k.data());
}

void FastPathOwner::setClusterIps(const std::vector<uint32_t>& v4, const std::vector<Ipv6Bytes>& v6) {
  if (v4.size() + v6.size() > GWC_MAX_CLUSTER_IPS)
    fail("setClusterIps", E2BIG, std::to_string(v4.size() + v6.size()) + " addresses");
  replaceSet(clusterV4Fd_, clusterV6Fd_, v4, v6, "gwc_cluster");
}

void FastPathOwner::setBypassIps(const std::vector<uint32_t>& v4, const std::vector<Ipv6Bytes>& v6) {
  if (v4.size() > GWC_MAX_BYPASS_IPS || v6.size() > GWC_MAX_BYPASS_IPS)
    fail("setBypassIps", E2BIG, std::to_string(v4.size() + v6.size()) + " addresses");
  replaceSet(bypassV4Fd_, bypassV6Fd_, v4, v6, "gwc_bypass");
}

void FastPathOwner::readPercpu(int fd, uint32_t key, void* values, const char* what) const {
  if (int err = bpf_map_lookup_elem(fd, &key, values); err != 0)
    fail("bpf_map_lookup_elem", errOf(err), std::string(what) + "[" + std::to_string(key) + "]");
}

void FastPathOwner::unitCounters(bool reset, uint64_t* packets, uint64_t* bytes) {
  std::vector<gwc_unit_counter> perCpu(static_cast<size_t>(cpus_));
  for (uint32_t u = 0; u < GWC_WORK_UNITS; ++u) {
    readPercpu(countersFd_, u, perCpu.data(), "gwc_unit_counters");
    uint64_t p = 0, b = 0;
    for (const gwc_unit_counter& c : perCpu) p += c.packets, b += c.bytes;
    packets[u] = p - baselinePackets_[u];
    bytes[u] = b - baselineBytes_[u];
    if (reset) baselinePackets_[u] = p, baselineBytes_[u] = b;
  }
}

void FastPathOwner::stats(uint64_t* out) {
  std::vector<uint64_t> perCpu(static_cast<size_t>(cpus_));
  for (uint32_t s = 0; s < GWC_STAT_COUNT; ++s) {
    readPercpu(statsFd_, s, perCpu.data(), "gwc_stats");
    uint64_t sum = 0;
    for (uint64_t v : perCpu) sum += v;
    out[s] = sum;
  }
}

FastPathOwner::TestRun FastPathOwner::testRun(const uint8_t* data, size_t len) {
  if (attached()) fail("testRun", EBUSY, "attached to " + ifname_ + "; test runs need a detached fast path");
  __sk_buff ctx{};
  bpf_test_run_opts opts{};
  opts.sz = sizeof opts;
  opts.data_in = data;
  opts.data_size_in = static_cast<__u32>(len);
  opts.ctx_in = &ctx;
  opts.ctx_size_in = sizeof ctx;
  opts.ctx_out = &ctx;
  opts.ctx_size_out = sizeof ctx;
  opts.repeat = 1;
  if (int err = bpf_prog_test_run_opts(progFd_, &opts); err != 0)
    fail("bpf_prog_test_run_opts", errOf(err), std::to_string(len) + " bytes");
  TestRun r{};
  for (int i = 0; i < GWC_TEST_CB_WORDS; ++i) r.cb[static_cast<size_t>(i)] = ctx.cb[i];
  r.retval = opts.retval;
  r.mark = ctx.mark;
  return r;
}

uint32_t FastPathOwner::testRunDuration(const uint8_t* data, size_t len, uint32_t repeat) {
  if (attached()) fail("testRunDuration", EBUSY, "attached to " + ifname_ + "; test runs need a detached fast path");
  bpf_test_run_opts opts{};
  opts.sz = sizeof opts;
  opts.data_in = data;
  opts.data_size_in = static_cast<__u32>(len);
  opts.repeat = static_cast<int>(repeat);
  if (int err = bpf_prog_test_run_opts(progFd_, &opts); err != 0)
    fail("bpf_prog_test_run_opts", errOf(err), std::to_string(len) + " bytes x " + std::to_string(repeat));
  return opts.duration;
}

}  // namespace gwc

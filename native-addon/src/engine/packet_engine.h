// The data-plane verdict engine of one member: packets the kernel queued with iptables
// `-j NFQUEUE --queue-num N` (raw PREROUTING, data-plane interfaces, no bypass) get their verdict
// here, by the filter of 003 Figure 9 (WorkUnitFilter: ownership table, role, counters, hold queue).
// The engine also answers ARP for the cluster IPs and announces them by gratuitous ARP
// (003: "the master answers ARP for the cluster IP"; "announces the cluster IP by gratuitous ARP
// when it takes office"). No Node.js dependency (engine_wrap.cc is the N-API glue).
// Files: packet_engine.cc (queue, verdicts, thread, JS calls), arp.{h,cc} (ARP), forwarding.cc
// (to the owner's MAC, reinjection, release), net_interface.{h,cc} (interface index and MAC).
//
// Verdicts (per queued IP packet):
//   owned by this member (owner == localSlot)          -> NF_ACCEPT (local delivery or routing);
//                                                         but master and the unit still held (it
//                                                         assigned the unit to itself and has not
//                                                         released it): held too, to keep the order
//   master, method 1, owned by another, MAC known      -> sent to the owner's MAC on the forward
//                                                         interface (AF_PACKET SOCK_DGRAM: the kernel
//                                                         writes the Ethernet header, source = the
//                                                         interface's MAC), then NF_DROP
//   master, unassigned or held (not yet acknowledged)  -> copied into the hold queue, then NF_DROP
//                                                         (copy-and-drop: the kernel queue is freed and
//                                                         verdicts can be batched); a "needs owner"
//                                                         event once per unit until its owner changes
//                                                         or it is released/dropped
//   anything else (not master; methods 2/3)            -> NF_DROP
//   truncated / malformed                              -> NF_DROP, counted
// release(unit) delivers the held packets oldest first: to this member's own stack through a raw
// socket (IPPROTO_RAW, the header as captured; enters via `lo`, so it is not queued again; in stateful
// mode tracked by the session table first, as a queued packet is) when the unit is now this member's, else to the owner's MAC on the forward interface (any method: the
// owner dropped the originals while the unit was not its own).
//
// Threading: one engine thread runs poll() on the nfqueue netlink socket, the ARP sockets and an
// eventfd (wake-up for stop and announce). Every piece of state shared with the JS thread (the
// WorkUnitFilter: table, role, counters, hold queue; the slot MACs; the notified flags; the ARP
// settings; the statistics) is guarded by one mutex `mu_`. The engine thread takes it once per
// packet, only to classify and decide (no system call under it), so a JS call waits at most one
// packet's classification; the mutex's acquire/release ordering is the memory ordering. release()
// sends the held packets while holding `mu_` so that no later packet of the unit is decided before
// the held ones are sent (the kernel may still reorder a raw-socket re-injection, which goes
// through the loopback backlog, against a later NF_ACCEPT: order is best effort, as on a LAN).
#pragma once

#include <libnetfilter_queue/libnetfilter_queue.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/flow_offload.h"
#include "engine/net_interface.h"
#include "filter/work_unit_filter.h"
#include "sessions/session_table.h"

namespace gwc {

struct ArpInterfaceConfig {
  std::string name;
  std::vector<uint32_t> clusterIps;  // IPv4, network-order values (a<<24|b<<16|c<<8|d)
  bool hasMac = false;               // method 1: answer with this MAC instead of the interface's own
  Mac mac{};
};

// The mark every packet the engine accepts carries (the whole mark is set: queued packets carry none).
constexpr uint32_t kAcceptMark = 0x20000000;

struct EngineConfig {
  uint16_t queueNum = 0;
  ClusterAddrs cluster;          // the to-cluster rule of the filter contract
  std::string forwardInterface;  // empty: no forwarding (ForwardToOwner and released packets are dropped)
  std::vector<ArpInterfaceConfig> arpInterfaces;
  uint16_t localSlot = 0;
  bool master = false;
  uint8_t method = 1;
  bool hasClusterMac = false;  // methods 2 and 3 answer ARP with this MAC
  Mac clusterMac{};
  HoldLimits hold;
  uint32_t queueMaxLen = 4096;        // packets the kernel keeps waiting for a verdict (then drops)
  uint32_t rcvbufBytes = 8u << 20;    // netlink receive buffer; overruns are counted (ENOBUFS)
  uint32_t announceRounds = 2;        // gratuitous ARP rounds per announce()
  uint32_t announceIntervalMs = 100;  // between rounds
};

struct EngineEvent {
  enum class Type { NeedsOwner, Announced, Error } type = Type::NeedsOwner;
  uint16_t unit = 0;   // NeedsOwner
  uint16_t owner = 0;  // NeedsOwner: the current slot (0 = unassigned; else assigned, not acknowledged)
  uint32_t frames = 0; // Announced: gratuitous ARP frames sent by this announce()
  std::string syscall; // Error: the failing call; the engine thread has stopped
  int errnum = 0;
  std::string message;
};

// Verdict counts, resettable with the per-unit counters.
struct VerdictCounts {
  uint64_t accepted = 0;   // owned: NF_ACCEPT
  uint64_t forwarded = 0;  // sent to the owner's MAC (count of frames sent)
  uint64_t dropped = 0;    // another member's (incl. forward impossible: no MAC, no interface)
  uint64_t held = 0;       // copied into the hold queue (or refused by its limits) and dropped
  uint64_t invalid = 0;    // truncated or malformed
};

struct EngineStats {
  uint64_t received = 0;        // packets read from the queue
  VerdictCounts verdicts;       // cumulative
  uint64_t verdictErrors = 0;   // nfq_set_verdict* failures
  uint64_t recvOverruns = 0;    // ENOBUFS on the netlink socket: the kernel dropped messages to us
  uint64_t forwardErrors = 0;   // sendto on the forward socket failed
  uint64_t forwardNoMac = 0;    // the owner's MAC is unknown (setSlotMac), or no forward interface
  uint64_t reinjected = 0;      // released packets delivered to this member's stack
  uint64_t reinjectErrors = 0;
  uint64_t releasedForwarded = 0;  // released packets sent to the owner's MAC
  uint64_t releasedDropped = 0;    // released packets with no owner or no MAC
  uint64_t needsOwnerEvents = 0;
  uint64_t eventDrops = 0;      // events the JS side did not take (queue full): re-emitted later
  uint64_t arpRequests = 0;     // ARP requests for a cluster IP seen
  uint64_t arpAnswered = 0;
  uint64_t arpErrors = 0;
  uint64_t garpSent = 0;
  uint64_t sessionDrops = 0;     // owned packets the session table refused (strict: no session / out of window)
  uint64_t sessionTracked = 0;   // owned packets tracked by the session table
  uint64_t sessionDropNoSession = 0;   // of sessionDrops: mid-stream TCP of an unknown session (strict)
  uint64_t sessionDropWindow = 0;      // of sessionDrops: outside the window rule (strict)
};

struct ReleaseResult {
  uint32_t reinjected = 0;
  uint32_t forwarded = 0;
  uint32_t dropped = 0;
};

class PacketEngine {
 public:
  // Returns false when the event could not be queued (the engine counts it).
  using EventSink = std::function<bool(EngineEvent&&)>;

  // Binds the queue and opens every socket; throws EngineError. The thread starts with start().
  PacketEngine(EngineConfig config, EventSink sink);
  ~PacketEngine();
  PacketEngine(const PacketEngine&) = delete;
  PacketEngine& operator=(const PacketEngine&) = delete;

  void start();
  // Stops and joins the thread, unbinds the queue, closes the sockets. Idempotent.
  void stop();
  bool running() const { return thread_.joinable(); }

  void setOwner(uint16_t unit, uint16_t slot);
  void setOwners(const uint16_t* units, size_t n, uint16_t slot);
  void setTable(const uint16_t* table);  // kWorkUnits entries
  void owners(uint16_t* out);
  void setRole(uint16_t localSlot, bool master, uint8_t method);
  // Stateful mode: every packet of an owned unit goes through `table` (its own mutex, taken after the
  // engine's) and is dropped when the table refuses it. nullptr: stateless. The caller keeps the table
  // alive while it is attached.
  void setSessions(sess::SessionTable* table);
  // The kernel fast paths to offload established flows into (dataplane.path kernel); empty: none.
  void setFlowOffloads(std::vector<std::shared_ptr<FlowOffload>> flows);
  void setSlotMac(uint16_t slot, const Mac* mac);  // nullptr forgets it
  void setClusterMac(const Mac* mac);
  void setAnswering(bool on);
  void hold(uint16_t unit);
  bool isHeld(uint16_t unit);
  ReleaseResult release(uint16_t unit);
  uint32_t dropHeld(uint16_t unit);
  void announce();  // asynchronous: the engine thread sends the rounds; an Announced event follows

  // Per-unit packets/bytes of owned (accepted) units and verdict counts since the last reset.
  void counters(bool reset, uint64_t* packets, uint64_t* bytes, VerdictCounts* verdicts);
  EngineStats stats();
  FilterCounters filterCounters();
  HoldStats holdStats();

 private:
  struct ArpPort {
    ArpInterfaceConfig config;
    int ifindex = 0;
    Mac ownMac{};
    int fd = -1;
  };
  struct Pending {
    uint32_t id;
    uint32_t verdict;
  };

  static constexpr int kBurst = 64;  // queue messages / ARP frames read per wake-up

  static int OnQueuedPacket(nfq_q_handle* qh, nfgenmsg* msg, nfq_data* nfa, void* self);
  void OpenForwarding();  // forwarding.cc
  void OpenArpPorts();    // arp.cc
  void Run();
  void ReadQueue();
  void FlushVerdicts();
  void ReadArp(ArpPort& port);
  void SendAnnounceRound();
  bool SendToMac(const uint8_t* p, size_t len, const Mac& mac);  // false: error (counted by caller)
  bool Reinject(const uint8_t* p, size_t len);
  Mac AnswerMacLocked(const ArpPort& port) const;
  void Emit(EngineEvent&& e, uint16_t unitToUnmark);
  void CloseAll();

  EngineConfig config_;
  EventSink sink_;

  nfq_handle* nfq_ = nullptr;
  nfq_q_handle* qh_ = nullptr;
  int nfqFd_ = -1;
  int fwdFd_ = -1;
  int fwdIfindex_ = 0;
  int raw4Fd_ = -1;
  int raw6Fd_ = -1;
  int wakeFd_ = -1;
  std::vector<ArpPort> arpPorts_;
  std::vector<uint8_t> recvBuf_;
  std::vector<Pending> pending_;  // engine thread only
  // Flows to offload once the verdicts of their packets are sent (so no later packet of the flow passes
  // in the kernel ahead of the queued one): the unit and the packet's headers. Engine thread only.
  struct PendingOffload {
    uint16_t unit;
    std::vector<uint8_t> headers;
  };
  std::vector<PendingOffload> pendingOffloads_;

  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> announceRequested_{false};

  std::mutex mu_;  // guards everything below
  sess::SessionTable* sessions_ = nullptr;
  std::vector<std::shared_ptr<FlowOffload>> flowOffloads_;
  WorkUnitFilter filter_;
  std::unordered_map<uint16_t, Mac> slotMacs_;
  std::array<bool, kWorkUnits> notified_{};
  // When each unit last became this member's (ms since the epoch; 0: not since start): the session
  // table marks a session first seen after that as stale (SessionTable::track's unitGainedMs).
  std::array<int64_t, kWorkUnits> gainedMs_{};
  void NoteOwnerLocked(size_t unit, uint16_t slot, int64_t nowMs);
  // Stateful mode: tracks a packet of an owned, forwarded unit (mu_ held); false: the table refused it
  // (counted). Used for queued packets and for held packets released into this member's own stack.
  // *offload (when given) is set when the flow may be offloaded to the kernel (setFlowOffloads).
  bool TrackOwnedLocked(const uint8_t* p, size_t len, uint16_t unit, bool* offload = nullptr);
  VerdictCounts sinceReset_;
  EngineStats stats_;
  bool answering_ = false;
};

}  // namespace gwc

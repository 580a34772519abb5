/* Key and value layouts of the fast path's maps: the contract between the BPF program and its owner in
 * user space (fastpath_owner.cc). Plain C with <linux/types.h> so both sides compile the same bytes. */
#ifndef GWC_FASTPATH_STRUCTS_H
#define GWC_FASTPATH_STRUCTS_H

#include <linux/types.h>

/* gwc_unit_policy[unit]. owner_slot is the unit's owner in the ownership table (0: unassigned), kept for
 * counters and for a later redirect to the owner. generation: under GWC_ACTION_PASS_TRACKED, only flow
 * entries of this generation count (user space moves it on every change of the unit to
 * PASS_TRACKED, so the entries of an earlier term of ownership never pass a packet). */
struct gwc_unit_policy {
  __u8 action; /* GWC_ACTION_* */
  __u8 generation;
  __u16 owner_slot;
};

/* Key of gwc_flows: one direction of a routed IPv4 flow, addresses and ports in network order. */
struct gwc_flow_key {
  __u32 saddr;
  __u32 daddr;
  __u16 sport;
  __u16 dport;
  __u8 proto;
  __u8 pad[3];
};

/* Value of gwc_flows. The engine writes unit and generation (and zeroes the rest) when it offloads the
 * flow; the program writes the rest on every packet it passes: what the session table needs to keep
 * the session's record current (its last packet's sequence end, acknowledgment and raw window, its TCP
 * flags, when it was seen on CLOCK_MONOTONIC, how many packets). */
struct gwc_flow_value {
  __u64 seen_ns;
  __u64 packets;
  __u32 end;     /* TCP: seq + payload length of the last packet */
  __u32 ack;     /* TCP: its acknowledgment number */
  __u16 window;  /* TCP: its window field, unscaled */
  __u8 tcp_flags;
  __u8 generation;
  __u16 unit;
  __u16 pad;
};

/* gwc_unit_counters[unit], per CPU: packets and IP bytes (IPv4 total length, IPv6 40 + payload length)
 * passed in the kernel for an owned unit (the packet engine's unitPackets/unitBytes). */
struct gwc_unit_counter {
  __u64 packets;
  __u64 bytes;
};

/* gwc_config[0]. */
struct gwc_config {
  __u32 flags;      /* GWC_CONFIG_* */
  __u32 l2_offset;  /* bytes before the packet proper (0 on an interface; 14 under BPF_PROG_TEST_RUN) */
  __u32 user_mark;  /* bits OR-ed into skb->mark of GWC_ACTION_TO_USER packets; 0 leaves the mark */
  __u32 pass_mark;  /* bits OR-ed into skb->mark of GWC_ACTION_PASS packets (so a rule can tell "passed
                     * by the program" from "no program attached"); 0 leaves the mark */
  __u32 fwd_ifindex; /* GWC_ACTION_REDIRECT: the forward interface (0: none, REDIRECT goes up) */
  __u8 fwd_mac[6];   /* its MAC: the source of redirected frames */
  __u16 reserved;
};

/* gwc_slot_macs[slot]: the MAC of the member in that packet-path slot. */
struct gwc_slot_mac {
  __u8 mac[6];
  __u16 reserved;
};

/* Key of gwc_cluster_v6 and gwc_bypass_v6: the address in network order. IPv4 keys are __u32 values
 * a.b.c.d = a<<24|b<<16|c<<8|d (host order), as ClusterAddrs::v4. */
struct gwc_ipv6_addr {
  __u8 bytes[16];
};

/* The classification written into skb->cb under GWC_CONFIG_TEST_RESULT (read back through ctx_out):
 *   cb[0] = unit | code << 16 | proto << 24     cb[1] = key
 *   cb[2] = detail | ip_version << 8            cb[3] = tunnel_id << 16 | session_id
 *   cb[4] = ip_length */
#define GWC_TEST_CB_WORDS 5

#endif /* GWC_FASTPATH_STRUCTS_H */

/* Key and value layouts of the fast path's maps: the contract between the BPF program and its owner in
 * user space (fastpath_owner.cc). Plain C with <linux/types.h> so both sides compile the same bytes. */
#ifndef GWC_FASTPATH_STRUCTS_H
#define GWC_FASTPATH_STRUCTS_H

#include <linux/types.h>

/* gwc_unit_policy[unit]. owner_slot is the unit's owner in the ownership table (0: unassigned), kept for
 * counters and for a later redirect to the owner; the kernel acts on `action` alone. */
struct gwc_unit_policy {
  __u8 action; /* GWC_ACTION_* */
  __u8 reserved;
  __u16 owner_slot;
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

/* Constants of the kernel fast path, shared by the BPF program (C, clang -target bpf) and its C++
 * owner. Plain C, no includes.
 *
 * The classification values equal the C++ filter's (filter/filter.h: Status, flags, Reason,
 * L2tpFallback); fastpath_owner.cc checks each one with a static_assert, so the contract has one source.
 */
#ifndef GWC_FASTPATH_CONSTS_H
#define GWC_FASTPATH_CONSTS_H

#define GWC_WORK_UNITS 1024
#define GWC_NO_UNIT 0xFFFF
#define GWC_L2TP_PORT 1701        /* RFC 2661 section 8.1 */
#define GWC_MAX_IPV6_EXT_HEADERS 8
#define GWC_MAX_VLAN_TAGS 2

/* Status: the low 3 bits of a classification code (filter.h Status). */
#define GWC_STATUS_CLUSTER 0
#define GWC_STATUS_FORWARDED 1
#define GWC_STATUS_ARP 2
#define GWC_STATUS_UNSUPPORTED 3
#define GWC_STATUS_TRUNCATED 4
#define GWC_STATUS_MALFORMED 5

/* Flag bits of a code (filter.h kFlag*). */
#define GWC_FLAG_FRAGMENT 0x08
#define GWC_FLAG_L2TP 0x10
#define GWC_FLAG_L2TP_FALLBACK 0x20

/* Drop reasons (filter.h Reason). */
#define GWC_REASON_NONE 0
#define GWC_REASON_ETHERNET 1
#define GWC_REASON_VLAN 2
#define GWC_REASON_ARP_HEADER 3
#define GWC_REASON_IP_HEADER 4
#define GWC_REASON_IP_LENGTH 5
#define GWC_REASON_EXT_HEADER 6
#define GWC_REASON_L4_HEADER 7
#define GWC_REASON_IP_VERSION 8
#define GWC_REASON_IP_IHL 9
#define GWC_REASON_IP_TOTAL_LENGTH 10
#define GWC_REASON_EXT_HEADER_LIMIT 11
#define GWC_REASON_TCP_DATA_OFFSET 12
#define GWC_REASON_UDP_LENGTH 13
#define GWC_REASON_VLAN_LIMIT 14
#define GWC_REASON_ETHERTYPE 15

/* Why an L2TP header was unusable (filter.h L2tpFallback). */
#define GWC_L2TP_FALLBACK_TRUNCATED 1
#define GWC_L2TP_FALLBACK_VERSION 2
#define GWC_L2TP_FALLBACK_LENGTH 3

/* What the kernel does with a packet of a unit (gwc_unit_policy.action). User space computes it from
 * the ownership table, this member's slot and role, holds and session mode; the kernel only applies it.
 * 0 is TO_USER so that a unit nobody configured behaves as today (NFQUEUE decides). */
#define GWC_ACTION_TO_USER 0  /* pass to the stack with config.user_mark set: the NFQUEUE rule takes it */
#define GWC_ACTION_PASS 1     /* this member's unit: pass to the stack with config.pass_mark set, counted per unit */
#define GWC_ACTION_DROP 2     /* another member's unit (it received the packet too): drop silently */
/* This member's unit under session tracking: a routed IPv4 TCP segment without SYN, FIN or RST, or a
 * routed IPv4 UDP datagram, of a flow the packet engine offloaded (gwc_flows, entry of the unit's
 * current generation) passes like PASS and refreshes the flow's entry; everything else of the unit goes
 * up like TO_USER (the engine tracks it, and offloads the flow once its session is established).
 * Packets for a cluster IP itself pass like PASS (the engine does not track them either). */
#define GWC_ACTION_PASS_TRACKED 3
/* Another member's unit at the master of method 1: the frame goes to the owner's MAC (gwc_slot_macs
 * [owner_slot]) out of the forward interface (gwc_config.fwd_ifindex), from that interface's MAC, as
 * the packet engine's forwarding does. Without a forward interface, a known owner MAC or an untagged
 * IPv4/IPv6 Ethernet frame: TO_USER (the engine forwards it). */
#define GWC_ACTION_REDIRECT 4
#define GWC_ACTION_COUNT 5

/* gwc_config.flags */
#define GWC_CONFIG_FRAMES 0x1       /* packets start with an Ethernet header (else: with the IP header) */
#define GWC_CONFIG_DECIDE_IPV6 0x2  /* decide IPv6 packets too (else they pass untouched) */
#define GWC_CONFIG_TEST_RESULT 0x4  /* write the classification into skb->cb (BPF_PROG_TEST_RUN only) */

/* Indexes of the gwc_stats per-CPU counters (packets). */
#define GWC_STAT_PASSED 0          /* owned unit, passed in the kernel */
#define GWC_STAT_DROPPED 1         /* another member's unit, dropped in the kernel */
#define GWC_STAT_TO_USER 2         /* marked for user space */
#define GWC_STAT_INVALID 3         /* truncated or malformed IP: dropped (the packet engine's INVALID) */
#define GWC_STAT_BYPASS 4          /* to one of the member's own addresses, broadcast or multicast */
#define GWC_STAT_NOT_IP 5          /* ARP, other EtherTypes, runt or over-tagged frames: untouched */
#define GWC_STAT_IPV6_UNDECIDED 6  /* IPv6 while GWC_CONFIG_DECIDE_IPV6 is off: untouched */
#define GWC_STAT_CLUSTER 7         /* classified to a cluster IP */
#define GWC_STAT_FORWARDED 8       /* classified as forwarded (destination is not a cluster IP) */
#define GWC_STAT_FRAGMENTS 9
#define GWC_STAT_L2TP 10
#define GWC_STAT_L2TP_FALLBACK 11
#define GWC_STAT_FLOW_HIT 12       /* PASS_TRACKED: an offloaded flow's packet, passed (also counted as passed) */
#define GWC_STAT_FLOW_MISS 13      /* PASS_TRACKED: no current entry, or a SYN/FIN/RST: up to the engine (also toUser) */
#define GWC_STAT_REDIRECTED 14     /* REDIRECT: sent to the owner's MAC by the kernel */
#define GWC_STAT_COUNT 15

#define GWC_MAX_CLUSTER_IPS 64
#define GWC_MAX_BYPASS_IPS 256
/* Offloaded flow directions per interface (gwc_flows, LRU: the least recently used entry makes room,
 * and its flow's next packet goes up to the engine, which offloads it again). */
#define GWC_MAX_FLOWS 65536
/* Packet-path slots whose MAC the kernel knows (gwc_slot_macs). */
#define GWC_MAX_SLOTS 1024

#endif /* GWC_FASTPATH_CONSTS_H */

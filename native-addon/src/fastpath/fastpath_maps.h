/* Every map of the fast path: the contract with user space. User space (fastpath_owner.cc) is the only
 * writer of policy (gwc_unit_policy, gwc_cluster_*, gwc_bypass_*, gwc_config); the program only reads
 * them and writes the counters (gwc_unit_counters, gwc_stats) and the per-packet fields of gwc_flows. BPF side only. */
#ifndef GWC_FASTPATH_MAPS_H
#define GWC_FASTPATH_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "fastpath_consts.h"
#include "fastpath_structs.h"

/* unit -> what to do with its packets. */
struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, GWC_WORK_UNITS);
  __type(key, __u32);
  __type(value, struct gwc_unit_policy);
} gwc_unit_policy SEC(".maps");

/* unit -> packets/bytes passed in the kernel, per CPU (user space sums and resets). */
struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, GWC_WORK_UNITS);
  __type(key, __u32);
  __type(value, struct gwc_unit_counter);
} gwc_unit_counters SEC(".maps");

/* The cluster IPs ("destination is a cluster IP": the work-set filter). Value unused (1). */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, GWC_MAX_CLUSTER_IPS);
  __type(key, __u32);
  __type(value, __u8);
} gwc_cluster_v4 SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, GWC_MAX_CLUSTER_IPS);
  __type(key, struct gwc_ipv6_addr);
  __type(value, __u8);
} gwc_cluster_v6 SEC(".maps");

/* Destinations never decided (the member's own addresses, subnet broadcasts): passed untouched, as the
 * NFQUEUE rule's RETURNs do (daemon dataplane/netfilter.ts). Value unused (1). */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, GWC_MAX_BYPASS_IPS);
  __type(key, __u32);
  __type(value, __u8);
} gwc_bypass_v4 SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, GWC_MAX_BYPASS_IPS);
  __type(key, struct gwc_ipv6_addr);
  __type(value, __u8);
} gwc_bypass_v6 SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct gwc_config);
} gwc_config SEC(".maps");

/* Flows the packet engine offloaded (GWC_ACTION_PASS_TRACKED): written by user space (insert, delete)
 * and by the program (the per-packet fields of gwc_flow_value). */
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, GWC_MAX_FLOWS);
  __type(key, struct gwc_flow_key);
  __type(value, struct gwc_flow_value);
} gwc_flows SEC(".maps");

/* Packet-path slot -> the member's MAC (GWC_ACTION_REDIRECT). Written by user space. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, GWC_MAX_SLOTS);
  __type(key, __u16);
  __type(value, struct gwc_slot_mac);
} gwc_slot_macs SEC(".maps");

/* GWC_STAT_* -> packets, per CPU. */
struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, GWC_STAT_COUNT);
  __type(key, __u32);
  __type(value, __u64);
} gwc_stats SEC(".maps");

#endif /* GWC_FASTPATH_MAPS_H */

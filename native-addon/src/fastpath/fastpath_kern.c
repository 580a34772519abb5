/* The kernel fast path: a tc ingress program (cls_bpf direct-action, or tcx) that computes each
 * packet's work unit (packet_parsing.h, equal to filter/filter.cc) and applies the action user space
 * wrote for that unit in gwc_unit_policy. See README.md for which packet goes where.
 *
 * Return values are the direct-action verdicts TC_ACT_OK (pass on) and TC_ACT_SHOT (drop); tcx reads
 * them as TCX_PASS and TCX_DROP. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#include "fastpath_consts.h"
#include "fastpath_maps.h"
#include "fastpath_structs.h"
#include "packet_parsing.h"

char LICENSE[] SEC("license") = "GPL";

static __always_inline void gwc_count(__u32 stat) {
  __u64 *v = bpf_map_lookup_elem(&gwc_stats, &stat);
  if (v) *v += 1;
}

static __always_inline void gwc_write_test_result(struct __sk_buff *skb, const struct gwc_classification *c) {
  skb->cb[0] = (__u32)c->unit | ((__u32)(c->status | c->flags) << 16) | ((__u32)c->proto << 24);
  skb->cb[1] = c->key;
  skb->cb[2] = (__u32)c->detail | ((__u32)c->ip_version << 8);
  skb->cb[3] = ((__u32)c->tunnel_id << 16) | c->session_id;
  skb->cb[4] = c->ip_length;
}

/* The member's own addresses and subnet broadcasts (gwc_bypass_*), limited broadcast and multicast.
 * Only for a packet whose IP header was read (c->has_dst). */
static __always_inline int gwc_is_bypass(const struct gwc_classification *c) {
  if (c->ip_version == 4) {
    const __u32 d = c->dst4;
    if (d == 0xFFFFFFFF || (d >> 28) == 0xE) return 1; /* 255.255.255.255, 224.0.0.0/4 */
    return bpf_map_lookup_elem(&gwc_bypass_v4, &d) != NULL;
  }
  if (c->dst6.bytes[0] == 0xFF) return 1; /* ff00::/8 */
  return bpf_map_lookup_elem(&gwc_bypass_v6, &c->dst6) != NULL;
}

/* GWC_ACTION_PASS_TRACKED for a routed IPv4 packet (c->status FORWARDED, not a fragment): 1 when the
 * packet belongs to a flow the engine offloaded in the unit's current generation (its entry then
 * refreshed), 0 when it must go up (no entry, an entry of an earlier generation, a TCP SYN, FIN or RST,
 * another protocol, or headers the load cannot read). */
static __always_inline int gwc_offloaded(struct __sk_buff *skb, const struct gwc_classification *c, __u8 generation) {
  if (c->proto != 6 && c->proto != 17) return 0;
  __u8 ip[20];
  if (bpf_skb_load_bytes(skb, c->l3, ip, 20) < 0) return 0;
  const __u32 l4 = c->l3 + c->l4off;
  struct gwc_flow_key k = {};
  __builtin_memcpy(&k.saddr, ip + 12, 4);
  __builtin_memcpy(&k.daddr, ip + 16, 4);
  k.proto = c->proto;
  __u8 th[16];
  if (c->proto == 6) {
    if (c->ip_length < c->l4off + 20) return 0;
    if (bpf_skb_load_bytes(skb, l4, th, 16) < 0) return 0;
    if (th[13] & 0x07) return 0; /* FIN, SYN, RST: the engine's state machine */
  } else {
    if (bpf_skb_load_bytes(skb, l4, th, 4) < 0) return 0;
  }
  __builtin_memcpy(&k.sport, th, 2);
  __builtin_memcpy(&k.dport, th + 2, 2);
  struct gwc_flow_value *v = bpf_map_lookup_elem(&gwc_flows, &k);
  if (!v || v->generation != generation) return 0;
  v->seen_ns = bpf_ktime_get_ns();
  v->packets += 1;
  if (c->proto == 6) {
    const __u32 doff = (__u32)(th[12] >> 4) * 4;
    const __u32 payload = c->ip_length > c->l4off + doff ? c->ip_length - c->l4off - doff : 0;
    v->end = gwc_be32(th + 4) + payload;
    v->ack = gwc_be32(th + 8);
    v->window = gwc_be16(th + 14);
    v->tcp_flags = th[13];
  }
  return 1;
}

/* GWC_ACTION_REDIRECT: rewrites the Ethernet addresses (owner's MAC, the forward interface's) and
 * redirects the frame out of the forward interface. -1 when it cannot (no forward interface, owner MAC
 * unknown, not an untagged IP frame): the packet then goes up. */
static __always_inline int gwc_redirect(struct __sk_buff *skb, const struct gwc_config *cfg, __u32 base, __u16 slot) {
  if (!(cfg->flags & GWC_CONFIG_FRAMES) || cfg->fwd_ifindex == 0) return -1;
  const struct gwc_slot_mac *m = bpf_map_lookup_elem(&gwc_slot_macs, &slot);
  if (!m) return -1;
  __u16 type;
  if (gwc_load16(skb, base + 12, &type) < 0 || (type != 0x0800 && type != 0x86DD)) return -1;
  __u8 addrs[12];
  __builtin_memcpy(addrs, m->mac, 6);
  __builtin_memcpy(addrs + 6, cfg->fwd_mac, 6);
  if (bpf_skb_store_bytes(skb, base, addrs, 12, 0) < 0) return -1;
  return bpf_redirect(cfg->fwd_ifindex, 0);
}

SEC("tc")
int gwc_fastpath_ingress(struct __sk_buff *skb) {
  const __u32 zero = 0;
  const struct gwc_config *cfg = bpf_map_lookup_elem(&gwc_config, &zero);
  if (!cfg) return TC_ACT_OK;
  const __u32 base = cfg->l2_offset & 0xFF;
  if (skb->len < base) return TC_ACT_OK;
  const __u32 len = skb->len - base;

  struct gwc_classification c = {};
  c.status = GWC_STATUS_TRUNCATED;
  c.unit = GWC_NO_UNIT;
  if (cfg->flags & GWC_CONFIG_FRAMES)
    gwc_classify_frame(skb, &c, base, len);
  else
    gwc_classify_ip_version(skb, &c, base, len, 0);
  if (cfg->flags & GWC_CONFIG_TEST_RESULT) gwc_write_test_result(skb, &c);

  /* Not an IP packet the filter can name (ARP, other EtherTypes, runt or over-tagged frames): the
   * stack's business, as today (the NFQUEUE rule only sees IPv4). */
  if (c.ip_version == 0) {
    gwc_count(GWC_STAT_NOT_IP);
    return TC_ACT_OK;
  }
  if (c.ip_version == 6 && !(cfg->flags & GWC_CONFIG_DECIDE_IPV6)) {
    gwc_count(GWC_STAT_IPV6_UNDECIDED);
    return TC_ACT_OK;
  }
  if (c.has_dst && c.status != GWC_STATUS_CLUSTER && gwc_is_bypass(&c)) {
    gwc_count(GWC_STAT_BYPASS);
    return TC_ACT_OK;
  }
  if (c.status != GWC_STATUS_CLUSTER && c.status != GWC_STATUS_FORWARDED) {
    gwc_count(GWC_STAT_INVALID);
    return TC_ACT_SHOT;
  }
  gwc_count(c.status == GWC_STATUS_CLUSTER ? GWC_STAT_CLUSTER : GWC_STAT_FORWARDED);
  if (c.flags & GWC_FLAG_FRAGMENT) gwc_count(GWC_STAT_FRAGMENTS);
  if (c.flags & GWC_FLAG_L2TP) gwc_count(GWC_STAT_L2TP);
  if (c.flags & GWC_FLAG_L2TP_FALLBACK) gwc_count(GWC_STAT_L2TP_FALLBACK);

  const __u32 unit = c.unit & (GWC_WORK_UNITS - 1);
  const struct gwc_unit_policy *policy = bpf_map_lookup_elem(&gwc_unit_policy, &unit);
  __u8 action = policy ? policy->action : GWC_ACTION_TO_USER;
  if (action == GWC_ACTION_PASS_TRACKED) {
    if (c.status == GWC_STATUS_CLUSTER) {
      action = GWC_ACTION_PASS;
    } else if (c.ip_version == 4 && !(c.flags & GWC_FLAG_FRAGMENT) && gwc_offloaded(skb, &c, policy->generation)) {
      gwc_count(GWC_STAT_FLOW_HIT);
      action = GWC_ACTION_PASS;
    } else {
      gwc_count(GWC_STAT_FLOW_MISS);
      action = GWC_ACTION_TO_USER;
    }
  }
  if (action == GWC_ACTION_REDIRECT) {
    const int r = gwc_redirect(skb, cfg, base, policy->owner_slot);
    if (r >= 0) {
      gwc_count(GWC_STAT_REDIRECTED);
      return r;
    }
    action = GWC_ACTION_TO_USER;
  }
  if (action == GWC_ACTION_PASS) {
    struct gwc_unit_counter *n = bpf_map_lookup_elem(&gwc_unit_counters, &unit);
    if (n) {
      n->packets += 1;
      n->bytes += c.ip_length;
    }
    skb->mark |= cfg->pass_mark;
    gwc_count(GWC_STAT_PASSED);
    return TC_ACT_OK;
  }
  if (action == GWC_ACTION_DROP) {
    gwc_count(GWC_STAT_DROPPED);
    return TC_ACT_SHOT;
  }
  skb->mark |= cfg->user_mark;
  gwc_count(GWC_STAT_TO_USER);
  return TC_ACT_OK;
}

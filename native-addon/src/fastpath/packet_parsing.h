/* The filtering function of filter/filter.cc (the specification; filter/reference.ts is its TypeScript
 * twin), over an skb, for the BPF program. Every branch, check order and outcome field follows
 * filter.cc line by line; test/fastpath/parity.test.ts feeds both the same random packets.
 *
 * The packet is [base, base + len) of the skb, len = skb->len - base (the "captured bytes" of the
 * specification). Every read goes through bpf_skb_load_bytes after the same bounds check filter.cc
 * makes, so non-linear skbs (GRO super-segments) read the same as linear ones; a load the kernel
 * refuses (never expected) classifies the packet as truncated. BPF side only. */
#ifndef GWC_PACKET_PARSING_H
#define GWC_PACKET_PARSING_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "fastpath_consts.h"
#include "fastpath_maps.h"
#include "fastpath_structs.h"

/* filter.h Classification, plus the destination the decision needs (not part of the contract). */
struct gwc_classification {
  __u8 status;
  __u8 flags;
  __u8 ip_version;
  __u8 proto;
  __u8 detail;
  __u8 has_dst;  /* dst4 / dst6 hold the IP destination */
  __u16 unit;
  __u16 tunnel_id;
  __u16 session_id;
  __u32 key;
  __u32 ip_length;
  __u32 dst4;
  struct gwc_ipv6_addr dst6;
  __u32 l3;    /* IPv4: skb offset of the IP header, and its length (for the flow lookup) */
  __u32 l4off;
};

static __always_inline __u16 gwc_be16(const __u8 *p) { return (__u16)((p[0] << 8) | p[1]); }
static __always_inline __u32 gwc_be32(const __u8 *p) {
  return ((__u32)p[0] << 24) | ((__u32)p[1] << 16) | ((__u32)p[2] << 8) | (__u32)p[3];
}
static __always_inline __u32 gwc_fold128(const __u8 *p) {
  return gwc_be32(p) ^ gwc_be32(p + 4) ^ gwc_be32(p + 8) ^ gwc_be32(p + 12);
}
static __always_inline __u16 gwc_work_unit_of_key(__u32 k) {
  return (__u16)((k ^ (k >> 10) ^ (k >> 20) ^ (k >> 30)) & 1023u);
}

/* filter.cc drop(): every outcome field reset, then status, reason and IP version. */
static __always_inline int gwc_drop(struct gwc_classification *c, __u8 status, __u8 reason, __u8 version) {
  c->status = status;
  c->flags = 0;
  c->ip_version = version;
  c->proto = 0;
  c->detail = reason;
  c->unit = GWC_NO_UNIT;
  c->tunnel_id = 0;
  c->session_id = 0;
  c->key = 0;
  c->ip_length = 0;
  return 0;
}

static __always_inline int gwc_load16(struct __sk_buff *skb, __u32 off, __u16 *v) {
  __u8 b[2];
  if (bpf_skb_load_bytes(skb, off, b, 2) < 0) return -1;
  *v = gwc_be16(b);
  return 0;
}

/* filter.cc parseL2tp over the UDP payload [q, q + m) (absolute skb offset q). Returns 0 and sets the
 * IDs, or the L2TP fallback reason. */
static __always_inline int gwc_parse_l2tp(struct __sk_buff *skb, __u32 q, __u32 m, __u16 *tunnel, __u16 *session) {
  __u16 flags, v;
  if (m < 2) return GWC_L2TP_FALLBACK_TRUNCATED;
  if (gwc_load16(skb, q, &flags) < 0) return GWC_L2TP_FALLBACK_TRUNCATED;
  if ((flags & 0x000F) != 2) return GWC_L2TP_FALLBACK_VERSION;
  const int l = (flags & 0x4000) != 0, s = (flags & 0x0800) != 0, o = (flags & 0x0200) != 0;
  const __u32 hdr = 6 + (l ? 2 : 0) + (s ? 4 : 0) + (o ? 2 : 0);
  if (m < hdr) return GWC_L2TP_FALLBACK_TRUNCATED;
  __u32 off = 2;
  __u32 msg_len = m;
  if (l) {
    if (gwc_load16(skb, q + 2, &v) < 0) return GWC_L2TP_FALLBACK_TRUNCATED;
    msg_len = v;
    if (msg_len < hdr || msg_len > m) return GWC_L2TP_FALLBACK_LENGTH;
    off = 4;
  }
  if (o) {
    if (gwc_load16(skb, q + hdr - 2, &v) < 0) return GWC_L2TP_FALLBACK_TRUNCATED;
    if (hdr + (__u32)v > msg_len) return GWC_L2TP_FALLBACK_TRUNCATED;
  }
  __u8 ids[4];
  if (bpf_skb_load_bytes(skb, q + off, ids, 4) < 0) return GWC_L2TP_FALLBACK_TRUNCATED;
  *tunnel = gwc_be16(ids);
  *session = gwc_be16(ids + 2);
  return 0;
}

/* filter.cc finish(): the IP datagram is [l3, l3 + end), its transport header at l3 + l4off. */
static __always_inline int gwc_finish(struct __sk_buff *skb, struct gwc_classification *c, __u32 l3, __u32 l4off,
                                      __u32 end, __u32 src, __u32 dst, int to_cluster) {
  c->ip_length = end;
  if (!to_cluster || (c->flags & GWC_FLAG_FRAGMENT)) {
    c->status = to_cluster ? GWC_STATUS_CLUSTER : GWC_STATUS_FORWARDED;
    c->key = src ^ dst;
    c->unit = gwc_work_unit_of_key(c->key);
    return 0;
  }
  c->status = GWC_STATUS_CLUSTER;
  const __u32 l4 = l3 + l4off;
  const __u32 l4len = end - l4off;
  if (c->proto == 6) { /* TCP */
    __u8 th[13];
    if (l4len < 20) return gwc_drop(c, GWC_STATUS_TRUNCATED, GWC_REASON_L4_HEADER, c->ip_version);
    if (bpf_skb_load_bytes(skb, l4, th, 13) < 0)
      return gwc_drop(c, GWC_STATUS_TRUNCATED, GWC_REASON_L4_HEADER, c->ip_version);
    const __u32 doff = th[12] >> 4;
    if (doff < 5) return gwc_drop(c, GWC_STATUS_MALFORMED, GWC_REASON_TCP_DATA_OFFSET, c->ip_version);
    if (doff * 4 > l4len) return gwc_drop(c, GWC_STATUS_TRUNCATED, GWC_REASON_L4_HEADER, c->ip_version);
    c->key = src ^ gwc_be16(th);
  } else if (c->proto == 17) { /* UDP */
    __u8 uh[8];
    if (l4len < 8) return gwc_drop(c, GWC_STATUS_TRUNCATED, GWC_REASON_L4_HEADER, c->ip_version);
    if (bpf_skb_load_bytes(skb, l4, uh, 8) < 0)
      return gwc_drop(c, GWC_STATUS_TRUNCATED, GWC_REASON_L4_HEADER, c->ip_version);
    const __u32 ulen = gwc_be16(uh + 4);
    if (ulen < 8) return gwc_drop(c, GWC_STATUS_MALFORMED, GWC_REASON_UDP_LENGTH, c->ip_version);
    if (ulen > l4len) return gwc_drop(c, GWC_STATUS_TRUNCATED, GWC_REASON_L4_HEADER, c->ip_version);
    const __u16 sport = gwc_be16(uh);
    c->key = src ^ sport;
    if (gwc_be16(uh + 2) == GWC_L2TP_PORT) {
      __u16 tunnel = 0, session = 0;
      const int fb = gwc_parse_l2tp(skb, l4 + 8, ulen - 8, &tunnel, &session);
      if (fb == 0) {
        c->flags |= GWC_FLAG_L2TP;
        c->tunnel_id = tunnel;
        c->session_id = session;
        c->key = src ^ sport ^ tunnel ^ session;
      } else {
        c->flags |= GWC_FLAG_L2TP_FALLBACK;
        c->detail = (__u8)fb;
      }
    }
  } else {
    c->key = src ^ dst;
  }
  c->unit = gwc_work_unit_of_key(c->key);
  return 0;
}

/* filter.cc classifyIpv4: the IPv4 header at l3, len bytes captured from there. */
static __always_inline int gwc_classify_ipv4(struct __sk_buff *skb, struct gwc_classification *c, __u32 l3, __u32 len) {
  __u8 ip[20];
  if (len < 20) return gwc_drop(c, GWC_STATUS_TRUNCATED, GWC_REASON_IP_HEADER, 4);
  if (bpf_skb_load_bytes(skb, l3, ip, 20) < 0) return gwc_drop(c, GWC_STATUS_TRUNCATED, GWC_REASON_IP_HEADER, 4);
  c->dst4 = gwc_be32(ip + 16);
  c->has_dst = 1;
  const __u32 hl = (__u32)(ip[0] & 0x0F) * 4;
  if (hl < 20) return gwc_drop(c, GWC_STATUS_MALFORMED, GWC_REASON_IP_IHL, 4);
  if (hl > len) return gwc_drop(c, GWC_STATUS_TRUNCATED, GWC_REASON_IP_HEADER, 4);
  const __u32 tot = gwc_be16(ip + 2);
  if (tot < hl) return gwc_drop(c, GWC_STATUS_MALFORMED, GWC_REASON_IP_TOTAL_LENGTH, 4);
  if (tot > len) return gwc_drop(c, GWC_STATUS_TRUNCATED, GWC_REASON_IP_LENGTH, 4);
  c->ip_version = 4;
  c->proto = ip[9];
  if (gwc_be16(ip + 6) & 0x3FFF) c->flags |= GWC_FLAG_FRAGMENT; /* MF bit or fragment offset */
  const __u32 src = gwc_be32(ip + 12), dst = c->dst4;
  const int to_cluster = bpf_map_lookup_elem(&gwc_cluster_v4, &dst) != NULL;
  c->l3 = l3;
  c->l4off = hl;
  return gwc_finish(skb, c, l3, hl, tot, src, dst, to_cluster);
}

/* filter.cc classifyIpv6, extension-header walk included (at most GWC_MAX_IPV6_EXT_HEADERS). */
static __always_inline int gwc_classify_ipv6(struct __sk_buff *skb, struct gwc_classification *c, __u32 l3, __u32 len) {
  __u8 ip[40];
  if (len < 40) return gwc_drop(c, GWC_STATUS_TRUNCATED, GWC_REASON_IP_HEADER, 6);
  if (bpf_skb_load_bytes(skb, l3, ip, 40) < 0) return gwc_drop(c, GWC_STATUS_TRUNCATED, GWC_REASON_IP_HEADER, 6);
  __builtin_memcpy(c->dst6.bytes, ip + 24, 16);
  c->has_dst = 1;
  const __u32 end = 40 + (__u32)gwc_be16(ip + 4);
  if (end > len) return gwc_drop(c, GWC_STATUS_TRUNCATED, GWC_REASON_IP_LENGTH, 6);
  c->ip_version = 6;
  __u8 nh = ip[6];
  __u32 off = 40;
  __u8 ext[2];
  /* Iteration `walked` sees one header; the (GWC_MAX_IPV6_EXT_HEADERS + 1)th extension header is
   * refused inside the loop, so the loop always ends by break or return. */
#pragma unroll
  for (int walked = 0; walked <= GWC_MAX_IPV6_EXT_HEADERS; walked++) {
    __u32 hlen;
    if (nh == 0 || nh == 43 || nh == 60) { /* hop-by-hop, routing, destination options: 8-byte units */
      if (walked == GWC_MAX_IPV6_EXT_HEADERS)
        return gwc_drop(c, GWC_STATUS_MALFORMED, GWC_REASON_EXT_HEADER_LIMIT, 6);
      if (off + 2 > end) return gwc_drop(c, GWC_STATUS_TRUNCATED, GWC_REASON_EXT_HEADER, 6);
      if (bpf_skb_load_bytes(skb, l3 + off, ext, 2) < 0)
        return gwc_drop(c, GWC_STATUS_TRUNCATED, GWC_REASON_EXT_HEADER, 6);
      hlen = ((__u32)ext[1] + 1) * 8;
    } else if (nh == 51) { /* AH (RFC 4302): payload length in 4-byte units, minus 2 */
      if (walked == GWC_MAX_IPV6_EXT_HEADERS)
        return gwc_drop(c, GWC_STATUS_MALFORMED, GWC_REASON_EXT_HEADER_LIMIT, 6);
      if (off + 2 > end) return gwc_drop(c, GWC_STATUS_TRUNCATED, GWC_REASON_EXT_HEADER, 6);
      if (bpf_skb_load_bytes(skb, l3 + off, ext, 2) < 0)
        return gwc_drop(c, GWC_STATUS_TRUNCATED, GWC_REASON_EXT_HEADER, 6);
      hlen = ((__u32)ext[1] + 2) * 4;
    } else if (nh == 44) { /* Fragment: what follows is fragment data, stop walking */
      if (walked == GWC_MAX_IPV6_EXT_HEADERS)
        return gwc_drop(c, GWC_STATUS_MALFORMED, GWC_REASON_EXT_HEADER_LIMIT, 6);
      if (off + 8 > end) return gwc_drop(c, GWC_STATUS_TRUNCATED, GWC_REASON_EXT_HEADER, 6);
      if (bpf_skb_load_bytes(skb, l3 + off, ext, 1) < 0)
        return gwc_drop(c, GWC_STATUS_TRUNCATED, GWC_REASON_EXT_HEADER, 6);
      c->flags |= GWC_FLAG_FRAGMENT;
      nh = ext[0];
      off += 8;
      break;
    } else {
      break; /* upper layer, or ESP 50 / no next header 59 ("other protocol") */
    }
    if (off + hlen > end) return gwc_drop(c, GWC_STATUS_TRUNCATED, GWC_REASON_EXT_HEADER, 6);
    nh = ext[0];
    off += hlen;
  }
  c->proto = nh;
  const int to_cluster = bpf_map_lookup_elem(&gwc_cluster_v6, &c->dst6) != NULL;
  return gwc_finish(skb, c, l3, off, end, gwc_fold128(ip + 8), gwc_fold128(ip + 24), to_cluster);
}

/* filter.cc classifyIpVersion: expected 4 or 6 after an EtherType, 0 for a raw IP packet. */
static __always_inline int gwc_classify_ip_version(struct __sk_buff *skb, struct gwc_classification *c, __u32 l3,
                                                   __u32 len, __u8 expected) {
  __u8 first;
  if (len < 1) return gwc_drop(c, GWC_STATUS_TRUNCATED, GWC_REASON_IP_HEADER, expected);
  if (bpf_skb_load_bytes(skb, l3, &first, 1) < 0)
    return gwc_drop(c, GWC_STATUS_TRUNCATED, GWC_REASON_IP_HEADER, expected);
  const __u8 version = first >> 4;
  if (expected != 0 && version != expected) return gwc_drop(c, GWC_STATUS_MALFORMED, GWC_REASON_IP_VERSION, expected);
  if (version == 4) return gwc_classify_ipv4(skb, c, l3, len);
  if (version == 6) return gwc_classify_ipv6(skb, c, l3, len);
  return gwc_drop(c, GWC_STATUS_MALFORMED, GWC_REASON_IP_VERSION, 0);
}

/* filter.cc classifyFrame: Ethernet II, up to GWC_MAX_VLAN_TAGS tags, then IPv4, IPv6 or ARP. */
static __always_inline int gwc_classify_frame(struct __sk_buff *skb, struct gwc_classification *c, __u32 base,
                                              __u32 len) {
  __u16 type;
  if (len < 14) return gwc_drop(c, GWC_STATUS_TRUNCATED, GWC_REASON_ETHERNET, 0);
  if (gwc_load16(skb, base + 12, &type) < 0) return gwc_drop(c, GWC_STATUS_TRUNCATED, GWC_REASON_ETHERNET, 0);
  __u32 off = 14;
#pragma unroll
  for (int tags = 0; tags <= GWC_MAX_VLAN_TAGS; tags++) {
    if (type != 0x8100 && type != 0x88A8) break;
    if (tags == GWC_MAX_VLAN_TAGS) return gwc_drop(c, GWC_STATUS_MALFORMED, GWC_REASON_VLAN_LIMIT, 0);
    if (off + 4 > len) return gwc_drop(c, GWC_STATUS_TRUNCATED, GWC_REASON_VLAN, 0);
    if (gwc_load16(skb, base + off + 2, &type) < 0) return gwc_drop(c, GWC_STATUS_TRUNCATED, GWC_REASON_VLAN, 0);
    off += 4;
  }
  const __u32 l3 = base + off;
  const __u32 l3len = len - off;
  if (type == 0x0800) return gwc_classify_ip_version(skb, c, l3, l3len, 4);
  if (type == 0x86DD) return gwc_classify_ip_version(skb, c, l3, l3len, 6);
  if (type == 0x0806) { /* ARP (RFC 826): 8 fixed bytes, then sender/target hardware and protocol addresses */
    __u8 arp[8];
    if (l3len < 8) return gwc_drop(c, GWC_STATUS_TRUNCATED, GWC_REASON_ARP_HEADER, 0);
    if (bpf_skb_load_bytes(skb, l3, arp, 8) < 0) return gwc_drop(c, GWC_STATUS_TRUNCATED, GWC_REASON_ARP_HEADER, 0);
    const __u32 need = 8 + 2 * ((__u32)arp[4] + arp[5]);
    if (need > l3len) return gwc_drop(c, GWC_STATUS_TRUNCATED, GWC_REASON_ARP_HEADER, 0);
    gwc_drop(c, GWC_STATUS_ARP, GWC_REASON_NONE, 0);
    return 0;
  }
  return gwc_drop(c, GWC_STATUS_UNSUPPORTED, GWC_REASON_ETHERTYPE, 0);
}

#endif /* GWC_PACKET_PARSING_H */

// N-API glue of the filter: argument checks and conversions only. The work is in filter.cc,
// hold_queue.cc and work_unit_filter.cc (no Node dependency). Argument errors are TypeError/RangeError
// naming the call and the argument; the typed wrapper (filter/filter.ts) checks first with friendlier text.
#include <napi.h>

#include <cstring>
#include <string>

#include "filter/filter.h"
#include "filter/work_unit_filter.h"

#include "filter/filter_wrap.h"

namespace {

using gwc::ClusterAddrs;
using gwc::kWorkUnits;

[[noreturn]] void throwType(Napi::Env env, const std::string& msg) { throw Napi::TypeError::New(env, msg); }
[[noreturn]] void throwRange(Napi::Env env, const std::string& msg) { throw Napi::RangeError::New(env, msg); }

bool isTypedArrayOf(const Napi::Value& v, napi_typedarray_type t) {
  return v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == t;
}

Napi::Uint8Array argBytes(const Napi::CallbackInfo& info, size_t i, const char* call, const char* name) {
  if (info.Length() <= i || !isTypedArrayOf(info[i], napi_uint8_array))
    throwType(info.Env(), std::string(call) + ": " + name + " must be a Buffer or Uint8Array");
  return info[i].As<Napi::Uint8Array>();
}

Napi::Uint32Array argU32(const Napi::CallbackInfo& info, size_t i, const char* call, const char* name) {
  if (info.Length() <= i || !isTypedArrayOf(info[i], napi_uint32_array))
    throwType(info.Env(), std::string(call) + ": " + name + " must be a Uint32Array");
  return info[i].As<Napi::Uint32Array>();
}

Napi::Uint16Array argU16(const Napi::CallbackInfo& info, size_t i, const char* call, const char* name) {
  if (info.Length() <= i || !isTypedArrayOf(info[i], napi_uint16_array))
    throwType(info.Env(), std::string(call) + ": " + name + " must be a Uint16Array");
  return info[i].As<Napi::Uint16Array>();
}

bool argBool(const Napi::CallbackInfo& info, size_t i, const char* call, const char* name) {
  if (info.Length() <= i || !info[i].IsBoolean())
    throwType(info.Env(), std::string(call) + ": " + name + " must be a boolean");
  return info[i].As<Napi::Boolean>().Value();
}

uint32_t argUint(const Napi::CallbackInfo& info, size_t i, const char* call, const char* name, double max) {
  if (info.Length() <= i || !info[i].IsNumber())
    throwType(info.Env(), std::string(call) + ": " + name + " must be a number");
  const double d = info[i].As<Napi::Number>().DoubleValue();
  if (!(d >= 0 && d <= max) || d != static_cast<double>(static_cast<uint64_t>(d)))
    throwRange(info.Env(), std::string(call) + ": " + name + " must be an integer 0.." +
                               std::to_string(static_cast<uint64_t>(max)) + ", got " + std::to_string(d));
  return static_cast<uint32_t>(d);
}

uint16_t argUnit(const Napi::CallbackInfo& info, size_t i, const char* call) {
  return static_cast<uint16_t>(argUint(info, i, call, "unit", kWorkUnits - 1));
}

// v4: Uint32Array of addresses (network-order values); v6: Uint8Array of 16-byte addresses.
ClusterAddrs argCluster(const Napi::CallbackInfo& info, size_t i, const char* call) {
  Napi::Uint32Array v4 = argU32(info, i, call, "clusterV4");
  Napi::Uint8Array v6 = argBytes(info, i + 1, call, "clusterV6");
  if (v6.ByteLength() % 16 != 0)
    throwRange(info.Env(), std::string(call) + ": clusterV6 length must be a multiple of 16, got " +
                               std::to_string(v6.ByteLength()));
  ClusterAddrs c;
  c.v4.assign(v4.Data(), v4.Data() + v4.ElementLength());
  for (size_t k = 0; k + 16 <= v6.ByteLength(); k += 16) {
    std::array<uint8_t, 16> a;
    std::memcpy(a.data(), v6.Data() + k, 16);
    c.v6.push_back(a);
  }
  return c;
}

// Packet i is packets[offsets[i], offsets[i+1]); offsets has n + 1 entries, non-decreasing.
size_t checkOffsets(Napi::Env env, const char* call, const Napi::Uint8Array& packets,
                    const Napi::Uint32Array& offsets) {
  const size_t m = offsets.ElementLength();
  if (m == 0) return 0;
  const uint32_t* o = offsets.Data();
  for (size_t i = 0; i + 1 < m; ++i)
    if (o[i + 1] < o[i])
      throwRange(env, std::string(call) + ": offsets must be non-decreasing, offsets[" + std::to_string(i + 1) +
                          "]=" + std::to_string(o[i + 1]) + " < offsets[" + std::to_string(i) + "]=" +
                          std::to_string(o[i]));
  if (o[m - 1] > packets.ByteLength())
    throwRange(env, std::string(call) + ": offsets[" + std::to_string(m - 1) + "]=" + std::to_string(o[m - 1]) +
                        " is past the end of packets (" + std::to_string(packets.ByteLength()) + " bytes)");
  return m - 1;
}

Napi::Value WorkUnitOfKey(const Napi::CallbackInfo& info) {
  const uint32_t k = argUint(info, 0, "workUnitOfKey", "key", 4294967295.0);
  return Napi::Number::New(info.Env(), gwc::workUnitOfKey(k));
}

// classifyBatch(packets, offsets, clusterV4, clusterV6, frames) -> Uint16Array (0xFFFF: no unit)
Napi::Value ClassifyBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* call = "classifyBatch";
  Napi::Uint8Array packets = argBytes(info, 0, call, "packets");
  Napi::Uint32Array offsets = argU32(info, 1, call, "offsets");
  const ClusterAddrs cluster = argCluster(info, 2, call);
  const bool frames = argBool(info, 4, call, "frames");
  const size_t n = checkOffsets(env, call, packets, offsets);
  Napi::Uint16Array units = Napi::Uint16Array::New(env, n);
  const uint8_t* base = packets.Data();
  const uint32_t* o = offsets.Data();
  uint16_t* u = units.Data();
  for (size_t i = 0; i < n; ++i) u[i] = gwc::classify(base + o[i], o[i + 1] - o[i], cluster, frames).unit;
  return units;
}

// classifyBatchDetailed(...same) -> { units, keys, codes, protos, details, l2tpIds }
Napi::Value ClassifyBatchDetailed(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* call = "classifyBatchDetailed";
  Napi::Uint8Array packets = argBytes(info, 0, call, "packets");
  Napi::Uint32Array offsets = argU32(info, 1, call, "offsets");
  const ClusterAddrs cluster = argCluster(info, 2, call);
  const bool frames = argBool(info, 4, call, "frames");
  const size_t n = checkOffsets(env, call, packets, offsets);
  auto units = Napi::Uint16Array::New(env, n);
  auto keys = Napi::Uint32Array::New(env, n);
  auto codes = Napi::Uint8Array::New(env, n);
  auto protos = Napi::Uint8Array::New(env, n);
  auto details = Napi::Uint8Array::New(env, n);
  auto l2tpIds = Napi::Uint32Array::New(env, n);
  const uint8_t* base = packets.Data();
  const uint32_t* o = offsets.Data();
  for (size_t i = 0; i < n; ++i) {
    const gwc::Classification c = gwc::classify(base + o[i], o[i + 1] - o[i], cluster, frames);
    units[i] = c.unit;
    keys[i] = c.key;
    codes[i] = c.code();
    protos[i] = c.proto;
    details[i] = c.detail;
    l2tpIds[i] = (static_cast<uint32_t>(c.tunnelId) << 16) | c.sessionId;
  }
  Napi::Object r = Napi::Object::New(env);
  r.Set("units", units);
  r.Set("keys", keys);
  r.Set("codes", codes);
  r.Set("protos", protos);
  r.Set("details", details);
  r.Set("l2tpIds", l2tpIds);
  return r;
}

class FilterWrap : public gwc::FilterHandle, public Napi::ObjectWrap<FilterWrap> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "Filter",
                       {
                           InstanceMethod<&FilterWrap::SetClusterIps>("setClusterIps"),
                           InstanceMethod<&FilterWrap::SetOwner>("setOwner"),
                           InstanceMethod<&FilterWrap::SetOwners>("setOwners"),
                           InstanceMethod<&FilterWrap::SetTable>("setTable"),
                           InstanceMethod<&FilterWrap::Owners>("owners"),
                           InstanceMethod<&FilterWrap::SetRole>("setRole"),
                           InstanceMethod<&FilterWrap::ClassifyBatch>("classifyBatch"),
                           InstanceMethod<&FilterWrap::VerdictBatch>("verdictBatch"),
                           InstanceMethod<&FilterWrap::Counters>("counters"),
                           InstanceMethod<&FilterWrap::Stats>("stats"),
                           InstanceMethod<&FilterWrap::Hold>("hold"),
                           InstanceMethod<&FilterWrap::IsHeld>("isHeld"),
                           InstanceMethod<&FilterWrap::Release>("release"),
                           InstanceMethod<&FilterWrap::DropHeld>("dropHeld"),
                       });
  }

  // new Filter(perUnitPackets, totalPackets, totalBytes)
  explicit FilterWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<FilterWrap>(info) {
    const char* call = "new Filter";
    gwc::HoldLimits limits;
    limits.perUnitPackets = argUint(info, 0, call, "perUnitPackets", 65536);
    limits.totalPackets = argUint(info, 1, call, "totalPackets", 1 << 24);
    limits.totalBytes = argUint(info, 2, call, "totalBytes", 4294967295.0);
    if (limits.perUnitPackets == 0 || limits.totalPackets == 0)
      throwRange(info.Env(), "new Filter: perUnitPackets and totalPackets must be at least 1");
    filter_ = std::make_unique<gwc::WorkUnitFilter>(limits);
  }

  gwc::WorkUnitFilter& filter() override { return *filter_; }

 private:
  Napi::Value SetClusterIps(const Napi::CallbackInfo& info) {
    filter_->cluster = argCluster(info, 0, "Filter.setClusterIps");
    return info.Env().Undefined();
  }
  Napi::Value SetOwner(const Napi::CallbackInfo& info) {
    const uint16_t unit = argUnit(info, 0, "Filter.setOwner");
    filter_->owners[unit] = static_cast<uint16_t>(argUint(info, 1, "Filter.setOwner", "slot", 65535));
    return info.Env().Undefined();
  }
  Napi::Value SetOwners(const Napi::CallbackInfo& info) {
    const char* call = "Filter.setOwners";
    Napi::Uint16Array units = argU16(info, 0, call, "units");
    const uint16_t slot = static_cast<uint16_t>(argUint(info, 1, call, "slot", 65535));
    for (size_t i = 0; i < units.ElementLength(); ++i)
      if (units[i] >= kWorkUnits)
        throwRange(info.Env(), std::string(call) + ": units[" + std::to_string(i) + "]=" +
                                   std::to_string(units[i]) + " is not a work unit 0..1023");
    for (size_t i = 0; i < units.ElementLength(); ++i) filter_->owners[units[i]] = slot;
    return info.Env().Undefined();
  }
  Napi::Value SetTable(const Napi::CallbackInfo& info) {
    Napi::Uint16Array table = argU16(info, 0, "Filter.setTable", "table");
    if (table.ElementLength() != kWorkUnits)
      throwRange(info.Env(), "Filter.setTable: table must have 1024 entries, got " +
                                 std::to_string(table.ElementLength()));
    std::memcpy(filter_->owners.data(), table.Data(), sizeof(uint16_t) * kWorkUnits);
    return info.Env().Undefined();
  }
  Napi::Value Owners(const Napi::CallbackInfo& info) {
    auto out = Napi::Uint16Array::New(info.Env(), kWorkUnits);
    std::memcpy(out.Data(), filter_->owners.data(), sizeof(uint16_t) * kWorkUnits);
    return out;
  }
  // setRole(localSlot, master, method)
  Napi::Value SetRole(const Napi::CallbackInfo& info) {
    const char* call = "Filter.setRole";
    const uint16_t slot = static_cast<uint16_t>(argUint(info, 0, call, "localSlot", 65535));
    const bool master = argBool(info, 1, call, "master");
    const uint32_t method = argUint(info, 2, call, "method", 3);
    if (method < 1) throwRange(info.Env(), "Filter.setRole: method must be 1, 2 or 3");
    filter_->localSlot = slot;
    filter_->master = master;
    filter_->method = static_cast<uint8_t>(method);
    return info.Env().Undefined();
  }
  Napi::Value ClassifyBatch(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const char* call = "Filter.classifyBatch";
    Napi::Uint8Array packets = argBytes(info, 0, call, "packets");
    Napi::Uint32Array offsets = argU32(info, 1, call, "offsets");
    const bool frames = argBool(info, 2, call, "frames");
    const size_t n = checkOffsets(env, call, packets, offsets);
    auto units = Napi::Uint16Array::New(env, n);
    const uint8_t* base = packets.Data();
    const uint32_t* o = offsets.Data();
    for (size_t i = 0; i < n; ++i) units[i] = filter_->classify(base + o[i], o[i + 1] - o[i], frames).unit;
    return units;
  }
  // verdictBatch(packets, offsets, frames) -> { verdicts: Uint8Array, units: Uint16Array }
  Napi::Value VerdictBatch(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const char* call = "Filter.verdictBatch";
    Napi::Uint8Array packets = argBytes(info, 0, call, "packets");
    Napi::Uint32Array offsets = argU32(info, 1, call, "offsets");
    const bool frames = argBool(info, 2, call, "frames");
    const size_t n = checkOffsets(env, call, packets, offsets);
    auto verdicts = Napi::Uint8Array::New(env, n);
    auto units = Napi::Uint16Array::New(env, n);
    const uint8_t* base = packets.Data();
    const uint32_t* o = offsets.Data();
    for (size_t i = 0; i < n; ++i) {
      gwc::Classification c;
      verdicts[i] = static_cast<uint8_t>(filter_->verdict(base + o[i], o[i + 1] - o[i], frames, &c));
      units[i] = c.unit;
    }
    Napi::Object r = Napi::Object::New(env);
    r.Set("verdicts", verdicts);
    r.Set("units", units);
    return r;
  }
  // counters(reset) -> BigUint64Array(2048): packets of units 0..1023, then bytes of units 0..1023
  Napi::Value Counters(const Napi::CallbackInfo& info) {
    const bool reset = argBool(info, 0, "Filter.counters", "reset");
    auto out = Napi::TypedArrayOf<uint64_t>::New(info.Env(), 2 * kWorkUnits, napi_biguint64_array);
    std::memcpy(out.Data(), filter_->unitPackets.data(), sizeof(uint64_t) * kWorkUnits);
    std::memcpy(out.Data() + kWorkUnits, filter_->unitBytes.data(), sizeof(uint64_t) * kWorkUnits);
    if (reset) {
      filter_->unitPackets.fill(0);
      filter_->unitBytes.fill(0);
    }
    return out;
  }
  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const gwc::FilterCounters& c = filter_->counters;
    const gwc::HoldStats& h = filter_->holdQueue().stats();
    Napi::Object r = Napi::Object::New(env);
    auto num = [&](const char* k, uint64_t v) { r.Set(k, Napi::Number::New(env, static_cast<double>(v))); };
    num("cluster", c.cluster);
    num("forwarded", c.forwarded);
    num("arp", c.arp);
    num("unsupported", c.unsupported);
    num("truncated", c.truncated);
    num("malformed", c.malformed);
    num("fragments", c.fragments);
    num("l2tp", c.l2tp);
    num("l2tpFallback", c.l2tpFallback);
    num("heldPackets", h.heldPackets);
    num("heldBytes", h.heldBytes);
    num("holdDrops", h.drops);
    num("holdDiscarded", h.discarded);
    num("holdReleased", h.released);
    return r;
  }
  Napi::Value Hold(const Napi::CallbackInfo& info) {
    filter_->holdQueue().hold(argUnit(info, 0, "Filter.hold"));
    return info.Env().Undefined();
  }
  Napi::Value IsHeld(const Napi::CallbackInfo& info) {
    const uint16_t unit = argUnit(info, 0, "Filter.isHeld");
    return Napi::Boolean::New(info.Env(), filter_->holdQueue().isHeld(unit));
  }
  Napi::Value Release(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto packets = filter_->holdQueue().release(argUnit(info, 0, "Filter.release"));
    Napi::Array out = Napi::Array::New(env, packets.size());
    for (size_t i = 0; i < packets.size(); ++i)
      out.Set(static_cast<uint32_t>(i), Napi::Buffer<uint8_t>::Copy(env, packets[i].data(), packets[i].size()));
    return out;
  }
  Napi::Value DropHeld(const Napi::CallbackInfo& info) {
    const uint32_t n = filter_->holdQueue().discard(argUnit(info, 0, "Filter.dropHeld"));
    return Napi::Number::New(info.Env(), n);
  }

  std::unique_ptr<gwc::WorkUnitFilter> filter_;
};

}  // namespace

void gwc::InitFilter(Napi::Env env, Napi::Object exports) {
  exports.Set("workUnitOfKey", Napi::Function::New<WorkUnitOfKey>(env, "workUnitOfKey"));
  exports.Set("classifyBatch", Napi::Function::New<ClassifyBatch>(env, "classifyBatch"));
  exports.Set("classifyBatchDetailed", Napi::Function::New<ClassifyBatchDetailed>(env, "classifyBatchDetailed"));
  Napi::Function filterCtor = FilterWrap::Init(env);
  exports.Set("Filter", filterCtor);
  gwc::FilterHandle::unwrap = [](Napi::Object o) -> gwc::FilterHandle* { return FilterWrap::Unwrap(o); };
  env.SetInstanceData<Napi::FunctionReference>(new Napi::FunctionReference(Napi::Persistent(filterCtor)));
}

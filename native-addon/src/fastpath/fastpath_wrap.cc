// N-API face of FastPathOwner. Arguments are checked here (TypeError/RangeError naming the call); OS
// and libbpf failures become Errors with syscall, errno and code (the errno name), message
// "<call>: <syscall>(<what>): <strerror>".
#include "common/system_call_error.h"
#include "fastpath/fastpath_wrap.h"

#include <time.h>

#include <cstring>
#include <memory>
#include <mutex>
#include <vector>

#include "common/flow_offload.h"
#include "fastpath/fastpath_owner.h"
#include "sessions/session_table.h"
#include "sessions/session_wrap.h"

namespace gwc {
namespace {

// The test carrier put before each packet under BPF_PROG_TEST_RUN, which needs an Ethernet header:
// zero MACs and the IEEE local experimental EtherType 0x88B5, so the kernel sets nothing up from it.
// FastPath objects carry this tag, so the packet engine can check what it is given (ResolveFlowOffload).
const napi_type_tag kFastPathTag = {0x6777636c75737465ull, 0x7266617374706174ull};

constexpr uint8_t kTestCarrier[14] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x88, 0xB5};

Napi::Error fastPathError(Napi::Env env, const std::string& call, const FastPathError& e) {
  return gwc::SystemCallError(env, call + ": " + e.what(), e.syscall, e.errnum);
}

[[noreturn]] void throwType(Napi::Env env, const std::string& message) {
  throw Napi::TypeError::New(env, message);
}

uint32_t argUint(const Napi::CallbackInfo& info, size_t i, const char* call, const char* name, uint32_t max) {
  if (!info[i].IsNumber()) throwType(info.Env(), std::string(call) + ": " + name + " must be a number");
  const double d = info[i].As<Napi::Number>().DoubleValue();
  if (!(d >= 0) || d > max || d != static_cast<double>(static_cast<uint32_t>(d)))
    throw Napi::RangeError::New(info.Env(), std::string(call) + ": " + name + " must be an integer 0.." + std::to_string(max));
  return static_cast<uint32_t>(d);
}

bool argBool(const Napi::CallbackInfo& info, size_t i, const char* call, const char* name) {
  if (!info[i].IsBoolean()) throwType(info.Env(), std::string(call) + ": " + name + " must be a boolean");
  return info[i].As<Napi::Boolean>().Value();
}

template <typename T, napi_typedarray_type Type>
Napi::TypedArrayOf<T> argArray(const Napi::CallbackInfo& info, size_t i, const char* call, const char* name) {
  if (!info[i].IsTypedArray() || info[i].As<Napi::TypedArray>().TypedArrayType() != Type)
    throwType(info.Env(), std::string(call) + ": " + name + " has the wrong typed-array type");
  return info[i].As<Napi::TypedArrayOf<T>>();
}

void argAddresses(const Napi::CallbackInfo& info, const char* call, std::vector<uint32_t>* v4, std::vector<Ipv6Bytes>* v6) {
  auto a4 = argArray<uint32_t, napi_uint32_array>(info, 0, call, "v4 (Uint32Array)");
  auto a6 = argArray<uint8_t, napi_uint8_array>(info, 1, call, "v6 (Uint8Array, 16 bytes per address)");
  if (a6.ElementLength() % 16 != 0) throw Napi::RangeError::New(info.Env(), std::string(call) + ": v6 length must be a multiple of 16");
  v4->assign(a4.Data(), a4.Data() + a4.ElementLength());
  for (size_t o = 0; o < a6.ElementLength(); o += 16) {
    Ipv6Bytes b;
    std::memcpy(b.data(), a6.Data() + o, 16);
    v6->push_back(b);
  }
}

// Runs f(buf) with `packet` behind the test carrier and the config set for a live-like run (the test
// result flag off, frames as given, l2_offset = the carrier); the config in force is restored after.
template <typename F>
void withCarrier(FastPathOwner& o, const Napi::Uint8Array& packet, bool frames, F&& f) {
  const gwc_config saved = o.config();
  gwc_config test = saved;
  test.flags = (saved.flags & ~(GWC_CONFIG_FRAMES | GWC_CONFIG_TEST_RESULT)) | (frames ? GWC_CONFIG_FRAMES : 0);
  test.l2_offset = sizeof kTestCarrier;
  o.setConfig(test);
  std::vector<uint8_t> buf(kTestCarrier, kTestCarrier + sizeof kTestCarrier);
  buf.insert(buf.end(), packet.Data(), packet.Data() + packet.ElementLength());
  try {
    f(buf);
  } catch (...) {
    o.setConfig(saved);
    throw;
  }
  o.setConfig(saved);
}

class FastPathWrap : public Napi::ObjectWrap<FastPathWrap> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "FastPath",
                       {
                           InstanceMethod<&FastPathWrap::Attach>("attach"),
                           InstanceMethod<&FastPathWrap::Detach>("detach"),
                           InstanceMethod<&FastPathWrap::Attached>("attached"),
                           InstanceMethod<&FastPathWrap::SetConfig>("setConfig"),
                           InstanceMethod<&FastPathWrap::SetUnitPolicies>("setUnitPolicies"),
                           InstanceMethod<&FastPathWrap::SetClusterIps>("setClusterIps"),
                           InstanceMethod<&FastPathWrap::SetBypassIps>("setBypassIps"),
                           InstanceMethod<&FastPathWrap::UnitCounters>("unitCounters"),
                           InstanceMethod<&FastPathWrap::Stats>("stats"),
                           InstanceMethod<&FastPathWrap::ClassifyInKernel>("classifyInKernel"),
                           InstanceMethod<&FastPathWrap::TestRunDuration>("testRunDuration"),
                           InstanceMethod<&FastPathWrap::SetForwardInterface>("setForwardInterface"),
                           InstanceMethod<&FastPathWrap::SetSlotMac>("setSlotMac"),
                           InstanceMethod<&FastPathWrap::SyncFlows>("syncFlows"),
                           InstanceMethod<&FastPathWrap::OffloadPacket>("offloadPacket"),
                           InstanceMethod<&FastPathWrap::RunOnce>("runOnce"),
                           InstanceMethod<&FastPathWrap::FlowStats>("flowStats"),
                           InstanceMethod<&FastPathWrap::Close>("close"),
                       });
  }

  // The FlowOffload of a FastPath object (open), or null.
  static std::shared_ptr<FlowOffload> FlowsOf(Napi::Object o) {
    bool tagged = false;
    if (napi_check_object_type_tag(o.Env(), o, &kFastPathTag, &tagged) != napi_ok || !tagged) return nullptr;
    FastPathWrap* w = Unwrap(o);
    if (!w || !w->owner_) return nullptr;
    return w->owner_->flows();
  }

  // new FastPath(objectPath)
  explicit FastPathWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<FastPathWrap>(info) {
    if (!info[0].IsString()) throwType(info.Env(), "FastPath: objectPath must be a string");
    try {
      owner_ = std::make_unique<FastPathOwner>(info[0].As<Napi::String>().Utf8Value());
    } catch (const FastPathError& e) {
      throw fastPathError(info.Env(), "FastPath", e);
    }
    napi_type_tag_object(info.Env(), info.This(), &kFastPathTag);
  }

 private:
  FastPathOwner& owner(const Napi::CallbackInfo& info, const char* call) {
    if (!owner_) throw Napi::Error::New(info.Env(), std::string(call) + ": the fast path is closed");
    return *owner_;
  }

  template <typename F>
  auto guarded(const Napi::CallbackInfo& info, const char* call, F&& f) {
    try {
      return f(owner(info, call));
    } catch (const FastPathError& e) {
      throw fastPathError(info.Env(), call, e);
    }
  }

  // attach(ifname, mode): mode 0 tcx, 1 cls_bpf
  void Attach(const Napi::CallbackInfo& info) {
    const char* call = "attach";
    if (!info[0].IsString()) throwType(info.Env(), "attach: ifname must be a string");
    const std::string ifname = info[0].As<Napi::String>().Utf8Value();
    const auto mode = static_cast<AttachMode>(argUint(info, 1, call, "mode", 1));
    guarded(info, call, [&](FastPathOwner& o) { o.attach(ifname, mode); });
  }

  void Detach(const Napi::CallbackInfo& info) {
    guarded(info, "detach", [](FastPathOwner& o) { o.detach(); });
  }

  Napi::Value Attached(const Napi::CallbackInfo& info) {
    return Napi::Boolean::New(info.Env(), owner_ && owner_->attached());
  }

  // setConfig(flags, l2Offset, userMark, passMark)
  void SetConfig(const Napi::CallbackInfo& info) {
    const char* call = "setConfig";
    gwc_config c{};
    c.flags = argUint(info, 0, call, "flags", GWC_CONFIG_FRAMES | GWC_CONFIG_DECIDE_IPV6 | GWC_CONFIG_TEST_RESULT);
    c.l2_offset = argUint(info, 1, call, "l2Offset", 255);
    c.user_mark = argUint(info, 2, call, "userMark", 0xFFFFFFFFu);
    c.pass_mark = argUint(info, 3, call, "passMark", 0xFFFFFFFFu);
    guarded(info, call, [&](FastPathOwner& o) {
      const gwc_config old = o.config();  // the forward interface is set by setForwardInterface alone
      c.fwd_ifindex = old.fwd_ifindex;
      std::memcpy(c.fwd_mac, old.fwd_mac, sizeof c.fwd_mac);
      o.setConfig(c);
    });
  }

  // setUnitPolicies(units: Uint16Array, action, ownerSlot)
  void SetUnitPolicies(const Napi::CallbackInfo& info) {
    const char* call = "setUnitPolicies";
    auto units = argArray<uint16_t, napi_uint16_array>(info, 0, call, "units (Uint16Array)");
    gwc_unit_policy p{};
    p.action = static_cast<uint8_t>(argUint(info, 1, call, "action", GWC_ACTION_COUNT - 1));
    p.owner_slot = static_cast<uint16_t>(argUint(info, 2, call, "ownerSlot", 0xFFFF));
    for (size_t i = 0; i < units.ElementLength(); ++i)
      if (units[i] >= GWC_WORK_UNITS)
        throw Napi::RangeError::New(info.Env(), std::string(call) + ": units[" + std::to_string(i) + "]=" +
                                                    std::to_string(units[i]) + " is not a work unit 0..1023");
    guarded(info, call, [&](FastPathOwner& o) {
      for (size_t i = 0; i < units.ElementLength(); ++i) o.setUnitPolicy(units[i], p);
    });
  }

  void SetClusterIps(const Napi::CallbackInfo& info) {
    std::vector<uint32_t> v4;
    std::vector<Ipv6Bytes> v6;
    argAddresses(info, "setClusterIps", &v4, &v6);
    guarded(info, "setClusterIps", [&](FastPathOwner& o) { o.setClusterIps(v4, v6); });
  }

  void SetBypassIps(const Napi::CallbackInfo& info) {
    std::vector<uint32_t> v4;
    std::vector<Ipv6Bytes> v6;
    argAddresses(info, "setBypassIps", &v4, &v6);
    guarded(info, "setBypassIps", [&](FastPathOwner& o) { o.setBypassIps(v4, v6); });
  }

  // unitCounters(reset) -> BigUint64Array(2048): packets of units 0..1023, then bytes
  Napi::Value UnitCounters(const Napi::CallbackInfo& info) {
    const char* call = "unitCounters";
    const bool reset = argBool(info, 0, call, "reset");
    auto out = Napi::BigUint64Array::New(info.Env(), 2 * GWC_WORK_UNITS);
    guarded(info, call, [&](FastPathOwner& o) { o.unitCounters(reset, out.Data(), out.Data() + GWC_WORK_UNITS); });
    return out;
  }

  // stats() -> BigUint64Array(GWC_STAT_COUNT)
  Napi::Value Stats(const Napi::CallbackInfo& info) {
    auto out = Napi::BigUint64Array::New(info.Env(), GWC_STAT_COUNT);
    guarded(info, "stats", [&](FastPathOwner& o) { o.stats(out.Data()); });
    return out;
  }

  // classifyInKernel(packets, offsets, frames) -> { units, keys, codes, protos, details, l2tpIds, verdicts }
  // Runs the program once per packet (BPF_PROG_TEST_RUN) behind the test carrier, with the test result
  // flag on; the previous config is restored afterwards.
  Napi::Value ClassifyInKernel(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const char* call = "classifyInKernel";
    auto packets = argArray<uint8_t, napi_uint8_array>(info, 0, call, "packets (Uint8Array)");
    auto offsets = argArray<uint32_t, napi_uint32_array>(info, 1, call, "offsets (Uint32Array)");
    const bool frames = argBool(info, 2, call, "frames");
    const size_t n = offsets.ElementLength() == 0 ? 0 : offsets.ElementLength() - 1;
    for (size_t i = 0; i < n; ++i)
      if (offsets[i + 1] < offsets[i] || offsets[i + 1] > packets.ElementLength())
        throw Napi::RangeError::New(env, std::string(call) + ": offsets must be non-decreasing and within packets");
    auto units = Napi::Uint16Array::New(env, n);
    auto keys = Napi::Uint32Array::New(env, n);
    auto codes = Napi::Uint8Array::New(env, n);
    auto protos = Napi::Uint8Array::New(env, n);
    auto details = Napi::Uint8Array::New(env, n);
    auto l2tpIds = Napi::Uint32Array::New(env, n);
    auto verdicts = Napi::Uint8Array::New(env, n);
    guarded(info, call, [&](FastPathOwner& o) {
      const gwc_config saved = o.config();
      gwc_config test{};
      test.flags = GWC_CONFIG_TEST_RESULT | (frames ? GWC_CONFIG_FRAMES : 0) | (saved.flags & GWC_CONFIG_DECIDE_IPV6);
      test.l2_offset = sizeof kTestCarrier;
      test.user_mark = saved.user_mark;
      test.pass_mark = saved.pass_mark;
      o.setConfig(test);
      std::vector<uint8_t> buf;
      try {
        for (size_t i = 0; i < n; ++i) {
          const size_t len = offsets[i + 1] - offsets[i];
          buf.assign(kTestCarrier, kTestCarrier + sizeof kTestCarrier);
          buf.insert(buf.end(), packets.Data() + offsets[i], packets.Data() + offsets[i] + len);
          const FastPathOwner::TestRun r = o.testRun(buf.data(), buf.size());
          units[i] = static_cast<uint16_t>(r.cb[0] & 0xFFFF);
          codes[i] = static_cast<uint8_t>(r.cb[0] >> 16);
          protos[i] = static_cast<uint8_t>(r.cb[0] >> 24);
          keys[i] = r.cb[1];
          details[i] = static_cast<uint8_t>(r.cb[2]);
          l2tpIds[i] = r.cb[3];
          verdicts[i] = static_cast<uint8_t>(r.retval);
        }
      } catch (...) {
        o.setConfig(saved);
        throw;
      }
      o.setConfig(saved);
    });
    Napi::Object r = Napi::Object::New(env);
    r.Set("units", units);
    r.Set("keys", keys);
    r.Set("codes", codes);
    r.Set("protos", protos);
    r.Set("details", details);
    r.Set("l2tpIds", l2tpIds);
    r.Set("verdicts", verdicts);
    return r;
  }

  // testRunDuration(packet, frames, repeat) -> average nanoseconds per run (the kernel's measurement)
  Napi::Value TestRunDuration(const Napi::CallbackInfo& info) {
    const char* call = "testRunDuration";
    auto packet = argArray<uint8_t, napi_uint8_array>(info, 0, call, "packet (Uint8Array)");
    const bool frames = argBool(info, 1, call, "frames");
    const uint32_t repeat = argUint(info, 2, call, "repeat", 100'000'000);
    uint32_t ns = 0;
    guarded(info, call, [&](FastPathOwner& o) {
      withCarrier(o, packet, frames, [&](const std::vector<uint8_t>& buf) { ns = o.testRunDuration(buf.data(), buf.size(), repeat); });
    });
    return Napi::Number::New(info.Env(), ns);
  }

  // syncFlows(table) -> { entries, refreshed, removed, errors }: folds the offloaded flows' kernel-passed
  // packets into their sessions of `table` (a SessionTable), and deletes the entries that must go up.
  Napi::Value SyncFlows(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const char* call = "syncFlows";
    sess::SessionTable* table = info[0].IsObject() ? UnwrapSessionTable(info[0].As<Napi::Object>()) : nullptr;
    if (!table) throwType(env, "syncFlows: table must be a SessionTable (native)");
    FlowSyncResult r;
    guarded(info, call, [&](FastPathOwner& o) {
      timespec mono{};
      clock_gettime(CLOCK_MONOTONIC, &mono);
      timespec wall{};
      clock_gettime(CLOCK_REALTIME, &wall);
      const uint64_t monoNs = static_cast<uint64_t>(mono.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(mono.tv_nsec);
      const int64_t wallMs = static_cast<int64_t>(wall.tv_sec) * 1000 + wall.tv_nsec / 1'000'000;
      r = o.flows()->sync(*table, wallMs, monoNs);
    });
    Napi::Object out = Napi::Object::New(env);
    out.Set("entries", static_cast<double>(r.entries));
    out.Set("refreshed", static_cast<double>(r.refreshed));
    out.Set("removed", static_cast<double>(r.removed));
    out.Set("errors", static_cast<double>(r.errors));
    return out;
  }

  // setForwardInterface(ifname): '' for none
  void SetForwardInterface(const Napi::CallbackInfo& info) {
    if (!info[0].IsString()) throwType(info.Env(), "setForwardInterface: ifname must be a string");
    const std::string ifname = info[0].As<Napi::String>().Utf8Value();
    guarded(info, "setForwardInterface", [&](FastPathOwner& o) { o.setForwardInterface(ifname); });
  }

  // setSlotMac(slot, mac: Uint8Array(6) | null)
  void SetSlotMac(const Napi::CallbackInfo& info) {
    const char* call = "setSlotMac";
    const uint16_t slot = static_cast<uint16_t>(argUint(info, 0, call, "slot", 0xFFFF));
    if (info[1].IsNull()) {
      guarded(info, call, [&](FastPathOwner& o) { o.setSlotMac(slot, nullptr); });
      return;
    }
    auto mac = argArray<uint8_t, napi_uint8_array>(info, 1, call, "mac (Uint8Array of 6 bytes, or null)");
    if (mac.ElementLength() != 6) throw Napi::RangeError::New(info.Env(), "setSlotMac: mac must be 6 bytes");
    guarded(info, call, [&](FastPathOwner& o) { o.setSlotMac(slot, mac.Data()); });
  }

  // offloadPacket(ipPacket, unit): what the packet engine does for a packet of an established session.
  void OffloadPacket(const Napi::CallbackInfo& info) {
    const char* call = "offloadPacket";
    auto packet = argArray<uint8_t, napi_uint8_array>(info, 0, call, "ipPacket (Uint8Array)");
    const uint32_t unit = argUint(info, 1, call, "unit", GWC_WORK_UNITS - 1);
    guarded(info, call, [&](FastPathOwner& o) { o.flows()->offload(packet.Data(), packet.ElementLength(), static_cast<uint16_t>(unit)); });
  }

  // runOnce(packet, frames) -> { verdict, mark }: one BPF_PROG_TEST_RUN of the program as configured
  // (policies, flows, marks), behind the test carrier. Only while detached.
  Napi::Value RunOnce(const Napi::CallbackInfo& info) {
    const char* call = "runOnce";
    auto packet = argArray<uint8_t, napi_uint8_array>(info, 0, call, "packet (Uint8Array)");
    const bool frames = argBool(info, 1, call, "frames");
    FastPathOwner::TestRun r{};
    guarded(info, call, [&](FastPathOwner& o) {
      withCarrier(o, packet, frames, [&](const std::vector<uint8_t>& buf) { r = o.testRun(buf.data(), buf.size()); });
    });
    Napi::Object out = Napi::Object::New(info.Env());
    out.Set("verdict", r.retval);
    out.Set("mark", r.mark);
    return out;
  }

  // flowStats() -> { offloaded, offloadErrors }: flows the engine offloaded into this path's map.
  Napi::Value FlowStats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object out = Napi::Object::New(env);
    guarded(info, "flowStats", [&](FastPathOwner& o) {
      out.Set("offloaded", static_cast<double>(o.flows()->offloaded()));
      out.Set("offloadErrors", static_cast<double>(o.flows()->offloadErrors()));
    });
    return out;
  }

  // Detaches and frees the program and its maps. Idempotent.
  void Close(const Napi::CallbackInfo&) { owner_.reset(); }

  std::unique_ptr<FastPathOwner> owner_;
};

}  // namespace

void InitFastPath(Napi::Env env, Napi::Object exports) {
  exports.Set("FastPath", FastPathWrap::Init(env));
  flowOffloadResolver = &FastPathWrap::FlowsOf;
  exports.Set("hasFastPath", Napi::Boolean::New(env, true));
  Napi::Object k = Napi::Object::New(env);
  k.Set("actionToUser", GWC_ACTION_TO_USER);
  k.Set("actionPass", GWC_ACTION_PASS);
  k.Set("actionDrop", GWC_ACTION_DROP);
  k.Set("actionPassTracked", GWC_ACTION_PASS_TRACKED);
  k.Set("actionRedirect", GWC_ACTION_REDIRECT);
  k.Set("configFrames", GWC_CONFIG_FRAMES);
  k.Set("configDecideIpv6", GWC_CONFIG_DECIDE_IPV6);
  k.Set("configTestResult", GWC_CONFIG_TEST_RESULT);
  k.Set("statCount", GWC_STAT_COUNT);
  k.Set("testCarrierBytes", static_cast<uint32_t>(sizeof kTestCarrier));
  exports.Set("fastPathConstants", k);
}

}  // namespace gwc

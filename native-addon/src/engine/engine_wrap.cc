// N-API glue of the PacketEngine (packet_engine.h): argument checks, conversions, and the events of
// the engine thread to JS through a ThreadSafeFunction (non-blocking calls; a full queue drops the
// event and counts it in eventDrops).
#include "common/system_call_error.h"
#include "engine/engine_wrap.h"
#include "sessions/session_wrap.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace gwc {
namespace {

[[noreturn]] void throwType(Napi::Env env, const std::string& msg) { throw Napi::TypeError::New(env, msg); }
[[noreturn]] void throwRange(Napi::Env env, const std::string& msg) { throw Napi::RangeError::New(env, msg); }

Napi::Value prop(const Napi::Object& o, const char* name) { return o.Get(name); }

uint32_t uintOf(Napi::Env env, const Napi::Value& v, const std::string& what, double max) {
  if (!v.IsNumber()) throwType(env, what + " must be a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0 && d <= max) || d != static_cast<double>(static_cast<uint64_t>(d)))
    throwRange(env, what + " must be an integer 0.." + std::to_string(static_cast<uint64_t>(max)) + ", got " + std::to_string(d));
  return static_cast<uint32_t>(d);
}

uint32_t argUint(const Napi::CallbackInfo& info, size_t i, const std::string& what, double max) {
  return uintOf(info.Env(), info.Length() > i ? info[i] : info.Env().Undefined(), what, max);
}

bool boolOf(Napi::Env env, const Napi::Value& v, const std::string& what) {
  if (!v.IsBoolean()) throwType(env, what + " must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

std::string stringOf(Napi::Env env, const Napi::Value& v, const std::string& what) {
  if (!v.IsString()) throwType(env, what + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

template <typename T>
T typedOf(Napi::Env env, const Napi::Value& v, napi_typedarray_type type, const std::string& what, const char* kind) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != type) throwType(env, what + " must be a " + kind);
  return v.As<T>();
}

// A Uint8Array of 6 bytes -> MAC; 0 bytes -> none.
bool macOf(Napi::Env env, const Napi::Value& v, const std::string& what, Mac* out) {
  auto a = typedOf<Napi::Uint8Array>(env, v, napi_uint8_array, what, "Uint8Array of 6 bytes (or 0 for none)");
  if (a.ByteLength() == 0) return false;
  if (a.ByteLength() != 6) throwRange(env, what + " must have 6 bytes, got " + std::to_string(a.ByteLength()));
  std::memcpy(out->data(), a.Data(), 6);
  return true;
}

uint8_t methodOf(Napi::Env env, const Napi::Value& v, const std::string& what) {
  const uint32_t m = uintOf(env, v, what, 3);
  if (m < 1) throwRange(env, what + " must be 1, 2 or 3");
  return static_cast<uint8_t>(m);
}

Napi::Error engineError(Napi::Env env, const std::string& call, const std::string& syscall, int errnum,
                        const std::string& message) {
  return gwc::SystemCallError(env, call + ": " + message, syscall, errnum);
}

// /proc/net/netfilter/nfnetlink_queue (this network namespace): queue_number peer_portid queue_total
// copy_mode copy_range queue_dropped user_dropped id_sequence 1
bool kernelQueueStats(uint16_t queue, uint64_t* waiting, uint64_t* queueDropped, uint64_t* userDropped) {
  std::ifstream in("/proc/net/netfilter/nfnetlink_queue");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream s(line);
    uint64_t num, portid, total, mode, range, qd, ud;
    if (!(s >> num >> portid >> total >> mode >> range >> qd >> ud)) continue;
    if (num != queue) continue;
    *waiting = total;
    *queueDropped = qd;
    *userDropped = ud;
    return true;
  }
  return false;
}

}  // namespace

Napi::Function EngineWrap::Init(Napi::Env env) {
  return DefineClass(env, "PacketEngine",
                     {
                         InstanceMethod<&EngineWrap::SetOwner>("setOwner"),
                         InstanceMethod<&EngineWrap::SetOwners>("setOwners"),
                         InstanceMethod<&EngineWrap::SetTable>("setTable"),
                         InstanceMethod<&EngineWrap::Owners>("owners"),
                         InstanceMethod<&EngineWrap::SetRole>("setRole"),
                         InstanceMethod<&EngineWrap::SetSlotMac>("setSlotMac"),
                         InstanceMethod<&EngineWrap::SetClusterMac>("setClusterMac"),
                         InstanceMethod<&EngineWrap::SetAnswering>("setAnswering"),
                         InstanceMethod<&EngineWrap::Hold>("hold"),
                         InstanceMethod<&EngineWrap::IsHeld>("isHeld"),
                         InstanceMethod<&EngineWrap::Release>("release"),
                         InstanceMethod<&EngineWrap::DropHeld>("dropHeld"),
                         InstanceMethod<&EngineWrap::Announce>("announce"),
                         InstanceMethod<&EngineWrap::Counters>("counters"),
                         InstanceMethod<&EngineWrap::Stats>("stats"),
                         InstanceMethod<&EngineWrap::Ref>("ref"),
                         InstanceMethod<&EngineWrap::Unref>("unref"),
                         InstanceMethod<&EngineWrap::Close>("close"),
                         InstanceMethod<&EngineWrap::AttachSessions>("attachSessions"),
                         InstanceMethod<&EngineWrap::AttachFlowOffloads>("attachFlowOffloads"),
                     });
}

// new PacketEngine(config, onEvent): binds the queue, opens the sockets and starts the thread.
EngineWrap::EngineWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<EngineWrap>(info) {
  Napi::Env env = info.Env();
  const std::string call = "new PacketEngine";
  if (info.Length() < 2 || !info[0].IsObject() || !info[1].IsFunction())
    throwType(env, call + ": arguments must be (config object, onEvent function)");
  Napi::Object o = info[0].As<Napi::Object>();
  EngineConfig c;
  c.queueNum = static_cast<uint16_t>(uintOf(env, prop(o, "queueNum"), call + ": queueNum", 65535));
  auto v4 = typedOf<Napi::Uint32Array>(env, prop(o, "clusterV4"), napi_uint32_array, call + ": clusterV4", "Uint32Array");
  auto v6 = typedOf<Napi::Uint8Array>(env, prop(o, "clusterV6"), napi_uint8_array, call + ": clusterV6", "Uint8Array");
  if (v6.ByteLength() % 16) throwRange(env, call + ": clusterV6 length must be a multiple of 16");
  c.cluster.v4.assign(v4.Data(), v4.Data() + v4.ElementLength());
  for (size_t k = 0; k + 16 <= v6.ByteLength(); k += 16) {
    std::array<uint8_t, 16> a;
    std::memcpy(a.data(), v6.Data() + k, 16);
    c.cluster.v6.push_back(a);
  }
  c.forwardInterface = stringOf(env, prop(o, "forwardInterface"), call + ": forwardInterface");
  Napi::Value arps = prop(o, "arpInterfaces");
  if (!arps.IsArray()) throwType(env, call + ": arpInterfaces must be an array");
  Napi::Array arr = arps.As<Napi::Array>();
  for (uint32_t i = 0; i < arr.Length(); ++i) {
    const std::string at = call + ": arpInterfaces[" + std::to_string(i) + "]";
    Napi::Value item = arr.Get(i);
    if (!item.IsObject()) throwType(env, at + " must be an object");
    Napi::Object a = item.As<Napi::Object>();
    ArpInterfaceConfig ac;
    ac.name = stringOf(env, prop(a, "name"), at + ".name");
    auto ips = typedOf<Napi::Uint32Array>(env, prop(a, "clusterV4"), napi_uint32_array, at + ".clusterV4", "Uint32Array");
    ac.clusterIps.assign(ips.Data(), ips.Data() + ips.ElementLength());
    ac.hasMac = macOf(env, prop(a, "mac"), at + ".mac", &ac.mac);
    c.arpInterfaces.push_back(ac);
  }
  c.localSlot = static_cast<uint16_t>(uintOf(env, prop(o, "localSlot"), call + ": localSlot", 65535));
  c.master = boolOf(env, prop(o, "master"), call + ": master");
  c.method = methodOf(env, prop(o, "method"), call + ": method");
  c.hasClusterMac = macOf(env, prop(o, "clusterMac"), call + ": clusterMac", &c.clusterMac);
  c.hold.perUnitPackets = uintOf(env, prop(o, "perUnitPackets"), call + ": perUnitPackets", 65536);
  c.hold.totalPackets = uintOf(env, prop(o, "totalPackets"), call + ": totalPackets", 1 << 24);
  c.hold.totalBytes = uintOf(env, prop(o, "totalBytes"), call + ": totalBytes", 4294967295.0);
  if (c.hold.perUnitPackets == 0 || c.hold.totalPackets == 0)
    throwRange(env, call + ": perUnitPackets and totalPackets must be at least 1");
  c.queueMaxLen = uintOf(env, prop(o, "queueMaxLen"), call + ": queueMaxLen", 1 << 20);
  c.announceRounds = uintOf(env, prop(o, "announceRounds"), call + ": announceRounds", 100);
  c.announceIntervalMs = uintOf(env, prop(o, "announceIntervalMs"), call + ": announceIntervalMs", 60000);
  queueNum_ = c.queueNum;

  tsfn_ = Tsfn::New(env, info[1].As<Napi::Function>(), "gwcluster.PacketEngine", 1024, 1, this);
  Tsfn tsfn = tsfn_;
  try {
    engine_ = std::make_unique<PacketEngine>(std::move(c), [tsfn](EngineEvent&& e) mutable {
      auto* copy = new EngineEvent(std::move(e));
      if (tsfn.NonBlockingCall(copy) == napi_ok) return true;
      delete copy;
      return false;
    });
  } catch (const EngineError& e) {
    tsfn_.Release();
    throw engineError(env, call, e.syscall, e.errnum, e.what());
  }
  engine_->start();
  napi_add_env_cleanup_hook(env, &EngineWrap::OnEnvCleanup, this);
  cleanupHook_ = true;
}

EngineWrap::~EngineWrap() { Shutdown(true); }

void EngineWrap::OnEnvCleanup(void* self) {
  auto* w = static_cast<EngineWrap*>(self);
  w->cleanupHook_ = false;  // being run: not to be removed
  w->Shutdown(false);       // the environment finalizes the TSFN itself
}

void EngineWrap::Shutdown(bool releaseTsfn) {
  if (closed_) return;
  closed_ = true;
  if (engine_) engine_->stop();  // joins the thread: no TSFN call after this
  if (releaseTsfn) tsfn_.Release();
  if (cleanupHook_) {
    napi_remove_env_cleanup_hook(Env(), &EngineWrap::OnEnvCleanup, this);
    cleanupHook_ = false;
  }
}

void EngineWrap::CallJs(Napi::Env env, Napi::Function fn, EngineWrap*, EngineEvent* e) {
  std::unique_ptr<EngineEvent> ev(e);
  if (!env || !fn) return;
  Napi::Object o = Napi::Object::New(env);
  switch (ev->type) {
    case EngineEvent::Type::NeedsOwner:
      o.Set("type", "unit-needs-owner");
      o.Set("unit", Napi::Number::New(env, ev->unit));
      o.Set("owner", Napi::Number::New(env, ev->owner));
      break;
    case EngineEvent::Type::Announced:
      o.Set("type", "announced");
      o.Set("frames", Napi::Number::New(env, ev->frames));
      break;
    case EngineEvent::Type::Error:
      o.Set("type", "error");
      o.Set("error", engineError(env, "PacketEngine", ev->syscall, ev->errnum, ev->message).Value());
      break;
  }
  fn.Call({o});
}

void EngineWrap::CheckOpen(Napi::Env env, const char* call) const {
  if (closed_) throw Napi::Error::New(env, std::string(call) + ": the engine is closed");
}

Napi::Value EngineWrap::SetOwner(const Napi::CallbackInfo& info) {
  CheckOpen(info.Env(), "PacketEngine.setOwner");
  const auto unit = static_cast<uint16_t>(argUint(info, 0, "PacketEngine.setOwner: unit", kWorkUnits - 1));
  const auto slot = static_cast<uint16_t>(argUint(info, 1, "PacketEngine.setOwner: slot", 65535));
  engine_->setOwner(unit, slot);
  return info.Env().Undefined();
}

Napi::Value EngineWrap::SetOwners(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* call = "PacketEngine.setOwners";
  CheckOpen(env, call);
  auto units = typedOf<Napi::Uint16Array>(env, info.Length() > 0 ? info[0] : env.Undefined(), napi_uint16_array,
                                          std::string(call) + ": units", "Uint16Array");
  const auto slot = static_cast<uint16_t>(argUint(info, 1, std::string(call) + ": slot", 65535));
  for (size_t i = 0; i < units.ElementLength(); ++i)
    if (units[i] >= kWorkUnits) throwRange(env, std::string(call) + ": units[" + std::to_string(i) + "] is not a work unit 0..1023");
  engine_->setOwners(units.Data(), units.ElementLength(), slot);
  return env.Undefined();
}

Napi::Value EngineWrap::SetTable(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env, "PacketEngine.setTable");
  auto t = typedOf<Napi::Uint16Array>(env, info.Length() > 0 ? info[0] : env.Undefined(), napi_uint16_array,
                                      "PacketEngine.setTable: table", "Uint16Array");
  if (t.ElementLength() != kWorkUnits) throwRange(env, "PacketEngine.setTable: table must have 1024 entries");
  engine_->setTable(t.Data());
  return env.Undefined();
}

Napi::Value EngineWrap::Owners(const Napi::CallbackInfo& info) {
  CheckOpen(info.Env(), "PacketEngine.owners");
  auto out = Napi::Uint16Array::New(info.Env(), kWorkUnits);
  engine_->owners(out.Data());
  return out;
}

// setRole(localSlot, master, method)
Napi::Value EngineWrap::SetRole(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env, "PacketEngine.setRole");
  const auto slot = static_cast<uint16_t>(argUint(info, 0, "PacketEngine.setRole: localSlot", 65535));
  const bool master = boolOf(env, info.Length() > 1 ? info[1] : env.Undefined(), "PacketEngine.setRole: master");
  const uint8_t method = methodOf(env, info.Length() > 2 ? info[2] : env.Undefined(), "PacketEngine.setRole: method");
  engine_->setRole(slot, master, method);
  return env.Undefined();
}

// setSlotMac(slot, mac: Uint8Array(6) | Uint8Array(0) to forget)
Napi::Value EngineWrap::SetSlotMac(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env, "PacketEngine.setSlotMac");
  const auto slot = static_cast<uint16_t>(argUint(info, 0, "PacketEngine.setSlotMac: slot", 65535));
  Mac mac;
  const bool has = macOf(env, info.Length() > 1 ? info[1] : env.Undefined(), "PacketEngine.setSlotMac: mac", &mac);
  engine_->setSlotMac(slot, has ? &mac : nullptr);
  return env.Undefined();
}

Napi::Value EngineWrap::SetClusterMac(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env, "PacketEngine.setClusterMac");
  Mac mac;
  const bool has = macOf(env, info.Length() > 0 ? info[0] : env.Undefined(), "PacketEngine.setClusterMac: mac", &mac);
  engine_->setClusterMac(has ? &mac : nullptr);
  return env.Undefined();
}

Napi::Value EngineWrap::SetAnswering(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env, "PacketEngine.setArpAnswering");
  engine_->setAnswering(boolOf(env, info.Length() > 0 ? info[0] : env.Undefined(), "PacketEngine.setArpAnswering: on"));
  return env.Undefined();
}

Napi::Value EngineWrap::Hold(const Napi::CallbackInfo& info) {
  CheckOpen(info.Env(), "PacketEngine.hold");
  engine_->hold(static_cast<uint16_t>(argUint(info, 0, "PacketEngine.hold: unit", kWorkUnits - 1)));
  return info.Env().Undefined();
}

Napi::Value EngineWrap::IsHeld(const Napi::CallbackInfo& info) {
  CheckOpen(info.Env(), "PacketEngine.isHeld");
  const auto unit = static_cast<uint16_t>(argUint(info, 0, "PacketEngine.isHeld: unit", kWorkUnits - 1));
  return Napi::Boolean::New(info.Env(), engine_->isHeld(unit));
}

Napi::Value EngineWrap::Release(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env, "PacketEngine.release");
  const auto unit = static_cast<uint16_t>(argUint(info, 0, "PacketEngine.release: unit", kWorkUnits - 1));
  const ReleaseResult r = engine_->release(unit);
  Napi::Object o = Napi::Object::New(env);
  o.Set("reinjected", Napi::Number::New(env, r.reinjected));
  o.Set("forwarded", Napi::Number::New(env, r.forwarded));
  o.Set("dropped", Napi::Number::New(env, r.dropped));
  return o;
}

Napi::Value EngineWrap::DropHeld(const Napi::CallbackInfo& info) {
  CheckOpen(info.Env(), "PacketEngine.dropHeld");
  const auto unit = static_cast<uint16_t>(argUint(info, 0, "PacketEngine.dropHeld: unit", kWorkUnits - 1));
  return Napi::Number::New(info.Env(), engine_->dropHeld(unit));
}

Napi::Value EngineWrap::Announce(const Napi::CallbackInfo& info) {
  CheckOpen(info.Env(), "PacketEngine.announce");
  engine_->announce();
  return info.Env().Undefined();
}

static Napi::Object verdictObject(Napi::Env env, const VerdictCounts& v) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("accepted", Napi::Number::New(env, static_cast<double>(v.accepted)));
  o.Set("forwarded", Napi::Number::New(env, static_cast<double>(v.forwarded)));
  o.Set("dropped", Napi::Number::New(env, static_cast<double>(v.dropped)));
  o.Set("held", Napi::Number::New(env, static_cast<double>(v.held)));
  o.Set("invalid", Napi::Number::New(env, static_cast<double>(v.invalid)));
  return o;
}

// counters(reset) -> { units: BigUint64Array(2048) (packets of units 0..1023, then bytes), verdicts }
Napi::Value EngineWrap::Counters(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env, "PacketEngine.counters");
  const bool reset = boolOf(env, info.Length() > 0 ? info[0] : env.Undefined(), "PacketEngine.counters: reset");
  auto units = Napi::TypedArrayOf<uint64_t>::New(env, 2 * kWorkUnits, napi_biguint64_array);
  VerdictCounts v;
  engine_->counters(reset, units.Data(), units.Data() + kWorkUnits, &v);
  Napi::Object o = Napi::Object::New(env);
  o.Set("units", units);
  o.Set("verdicts", verdictObject(env, v));
  return o;
}

Napi::Value EngineWrap::Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env, "PacketEngine.stats");
  const EngineStats s = engine_->stats();
  const FilterCounters f = engine_->filterCounters();
  const HoldStats h = engine_->holdStats();
  Napi::Object o = Napi::Object::New(env);
  auto num = [&](const char* k, uint64_t v) { o.Set(k, Napi::Number::New(env, static_cast<double>(v))); };
  num("received", s.received);
  o.Set("verdicts", verdictObject(env, s.verdicts));
  num("verdictErrors", s.verdictErrors);
  num("recvOverruns", s.recvOverruns);
  uint64_t waiting = 0, qd = 0, ud = 0;
  const bool known = kernelQueueStats(queueNum_, &waiting, &qd, &ud);
  num("kernelWaiting", waiting);
  num("kernelQueueDropped", qd);
  num("kernelUserDropped", ud);
  o.Set("kernelStatsKnown", Napi::Boolean::New(env, known));
  num("forwardErrors", s.forwardErrors);
  num("forwardNoMac", s.forwardNoMac);
  num("reinjected", s.reinjected);
  num("reinjectErrors", s.reinjectErrors);
  num("releasedForwarded", s.releasedForwarded);
  num("releasedDropped", s.releasedDropped);
  num("needsOwnerEvents", s.needsOwnerEvents);
  num("eventDrops", s.eventDrops);
  num("arpRequests", s.arpRequests);
  num("arpAnswered", s.arpAnswered);
  num("arpErrors", s.arpErrors);
  num("garpSent", s.garpSent);
  num("sessionTracked", s.sessionTracked);
  num("sessionDrops", s.sessionDrops);
  num("sessionDropNoSession", s.sessionDropNoSession);
  num("sessionDropWindow", s.sessionDropWindow);
  num("cluster", f.cluster);
  num("forwardedTraffic", f.forwarded);
  num("truncated", f.truncated);
  num("malformed", f.malformed);
  num("fragments", f.fragments);
  num("heldPackets", h.heldPackets);
  num("heldBytes", h.heldBytes);
  num("holdDrops", h.drops);
  num("holdDiscarded", h.discarded);
  num("holdReleased", h.released);
  return o;
}

Napi::Value EngineWrap::Ref(const Napi::CallbackInfo& info) {
  if (!closed_) tsfn_.Ref(info.Env());
  return info.Env().Undefined();
}

Napi::Value EngineWrap::Unref(const Napi::CallbackInfo& info) {
  if (!closed_) tsfn_.Unref(info.Env());
  return info.Env().Undefined();
}

Napi::Value EngineWrap::AttachSessions(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env, "PacketEngine.attachSessions");
  if (info.Length() < 1 || info[0].IsNull() || info[0].IsUndefined()) {
    engine_->setSessions(nullptr);
    if (!sessionsRef_.IsEmpty()) sessionsRef_.Reset();
    return env.Undefined();
  }
  if (!info[0].IsObject()) throw Napi::TypeError::New(env, "PacketEngine.attachSessions: table must be a SessionTable (native) or null");
  sess::SessionTable* table = UnwrapSessionTable(info[0].As<Napi::Object>());
  if (table == nullptr) throw Napi::TypeError::New(env, "PacketEngine.attachSessions: table must be a SessionTable (native) or null");
  sessionsRef_ = Napi::Persistent(info[0].As<Napi::Object>());
  engine_->setSessions(table);
  return env.Undefined();
}

// attachFlowOffloads(fastPaths: FastPath[]): the kernel fast paths whose flow maps get the flows this
// engine sees established ([] detaches). Each FastPath's flow map stays alive while attached here.
Napi::Value EngineWrap::AttachFlowOffloads(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env, "PacketEngine.attachFlowOffloads");
  if (info.Length() < 1 || !info[0].IsArray()) throw Napi::TypeError::New(env, "PacketEngine.attachFlowOffloads: fastPaths must be an array of FastPath (native)");
  Napi::Array a = info[0].As<Napi::Array>();
  std::vector<std::shared_ptr<FlowOffload>> flows;
  for (uint32_t i = 0; i < a.Length(); ++i) {
    Napi::Value v = a.Get(i);
    std::shared_ptr<FlowOffload> f = v.IsObject() ? ResolveFlowOffload(v.As<Napi::Object>()) : nullptr;
    if (!f) throw Napi::TypeError::New(env, "PacketEngine.attachFlowOffloads: fastPaths[" + std::to_string(i) + "] is not an open FastPath (native)");
    flows.push_back(std::move(f));
  }
  engine_->setFlowOffloads(std::move(flows));
  return env.Undefined();
}

Napi::Value EngineWrap::Close(const Napi::CallbackInfo& info) {
  Shutdown(true);
  return info.Env().Undefined();
}

}  // namespace gwc

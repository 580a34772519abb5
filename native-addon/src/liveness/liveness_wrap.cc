// Argument errors are TypeError/RangeError naming the call and the argument; OS failures carry `syscall`,
// `errno` and `code`. The typed wrapper (liveness.ts) checks first with friendlier text.
#include "liveness/liveness_wrap.h"

#include <arpa/inet.h>
#include <sodium.h>

#include <cstring>
#include <memory>
#include <string>

#include "common/system_call_error.h"
#include "liveness/liveness.h"

namespace gwc {
namespace {

[[noreturn]] void throwType(Napi::Env env, const std::string& msg) { throw Napi::TypeError::New(env, msg); }
[[noreturn]] void throwRange(Napi::Env env, const std::string& msg) { throw Napi::RangeError::New(env, msg); }

Napi::Value arg(const Napi::CallbackInfo& info, size_t i) { return info.Length() > i ? info[i] : info.Env().Undefined(); }

double numberOf(Napi::Env env, const Napi::Value& v, const std::string& what, double min, double max, bool integer = true) {
  if (!v.IsNumber()) throwType(env, what + " must be a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= min && d <= max) || (integer && d != static_cast<double>(static_cast<int64_t>(d))))
    throwRange(env, what + " must be " + (integer ? "an integer " : "a number ") + std::to_string(static_cast<int64_t>(min)) + ".." +
                        std::to_string(static_cast<int64_t>(max)));
  return d;
}

uint32_t ipv4Of(Napi::Env env, const Napi::Value& v, const std::string& what) {
  in_addr a{};
  if (!v.IsString() || inet_pton(AF_INET, v.As<Napi::String>().Utf8Value().c_str(), &a) != 1)
    throwType(env, what + " must be an IPv4 address string");
  return ntohl(a.s_addr);
}

std::string ipv4Text(uint32_t v4) {
  in_addr a{};
  a.s_addr = htonl(v4);
  char buf[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &a, buf, sizeof buf);
  return buf;
}

void keyOf(Napi::Env env, const Napi::Value& v, const std::string& what, uint8_t out[liveness::kKeyBytes]) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array || v.As<Napi::Uint8Array>().ByteLength() != liveness::kKeyBytes)
    throwType(env, what + " must be a Uint8Array of " + std::to_string(liveness::kKeyBytes) + " bytes");
  std::memcpy(out, v.As<Napi::Uint8Array>().Data(), liveness::kKeyBytes);
}

class LivenessWrap : public Napi::ObjectWrap<LivenessWrap> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "Liveness",
                       {InstanceMethod<&LivenessWrap::SetPeers>("setPeers"),
                        InstanceMethod<&LivenessWrap::Peers>("peers"),
                        InstanceMethod<&LivenessWrap::Stats>("stats"),
                        InstanceMethod<&LivenessWrap::BoundPort>("boundPort"),
                        InstanceMethod<&LivenessWrap::Unref>("unref"),
                        InstanceMethod<&LivenessWrap::Close>("close")});
  }

  // new Liveness({ address, port, intervalMs, minPeriods, maxPeriods, lossToleranceK, incarnation, realtimePriority }, onEvent)
  explicit LivenessWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<LivenessWrap>(info) {
    Napi::Env env = info.Env();
    const std::string call = "new Liveness";
    if (!arg(info, 0).IsObject() || !arg(info, 1).IsFunction()) throwType(env, call + ": arguments must be (config, onEvent)");
    Napi::Object o = arg(info, 0).As<Napi::Object>();
    liveness::Config c;
    c.selfV4 = ipv4Of(env, o.Get("address"), call + ": address");
    c.port = static_cast<uint16_t>(numberOf(env, o.Get("port"), call + ": port", 0, 65535));
    c.intervalMs = static_cast<uint32_t>(numberOf(env, o.Get("intervalMs"), call + ": intervalMs", 1, 10000));
    c.minPeriods = static_cast<uint32_t>(numberOf(env, o.Get("minPeriods"), call + ": minPeriods", 1, 100));
    c.maxPeriods = static_cast<uint32_t>(numberOf(env, o.Get("maxPeriods"), call + ": maxPeriods", c.minPeriods, 100));
    c.lossToleranceK = numberOf(env, o.Get("lossToleranceK"), call + ": lossToleranceK", 1, 1e12, false);
    c.incarnation = static_cast<uint64_t>(numberOf(env, o.Get("incarnation"), call + ": incarnation", 0, 9007199254740991.0));
    c.realtimePriority = static_cast<int>(numberOf(env, o.Get("realtimePriority"), call + ": realtimePriority", 0, 99));
    tsfn_ = Tsfn::New(env, arg(info, 1).As<Napi::Function>(), "gwcluster.Liveness", 1024, 1, this);
    Tsfn tsfn = tsfn_;
    try {
      impl_ = std::make_unique<liveness::Liveness>(c, [tsfn](liveness::Event&& e) mutable {
        auto* copy = new liveness::Event(std::move(e));
        if (tsfn.NonBlockingCall(copy) == napi_ok) return true;
        delete copy;
        return false;
      });
    } catch (const liveness::LivenessError& e) {
      tsfn_.Release();
      throw SystemCallError(env, call + ": " + e.what(), e.syscall, e.errnum);
    }
    impl_->start();
    napi_add_env_cleanup_hook(env, &LivenessWrap::OnEnvCleanup, this);
    cleanupHook_ = true;
  }

  ~LivenessWrap() override { Shutdown(true, false); }

 private:
  static void CallJs(Napi::Env env, Napi::Function fn, LivenessWrap*, liveness::Event* e) {
    std::unique_ptr<liveness::Event> ev(e);
    if (!env || !fn) return;
    Napi::Object o = Napi::Object::New(env);
    switch (ev->type) {
      case liveness::Event::Type::Down:
        o.Set("type", "down");
        o.Set("peer", ipv4Text(ev->peer));
        o.Set("silentMs", Napi::Number::New(env, ev->silentMs));
        o.Set("periods", Napi::Number::New(env, ev->periods));
        break;
      case liveness::Event::Type::Up:
        o.Set("type", "up");
        o.Set("peer", ipv4Text(ev->peer));
        break;
      case liveness::Event::Type::Error:
        o.Set("type", "error");
        o.Set("error", SystemCallError(env, "Liveness: " + ev->message, ev->syscall, ev->errnum).Value());
        break;
    }
    fn.Call({o});
  }
  using Tsfn = Napi::TypedThreadSafeFunction<LivenessWrap, liveness::Event, &LivenessWrap::CallJs>;

  static void OnEnvCleanup(void* self) {
    auto* w = static_cast<LivenessWrap*>(self);
    w->cleanupHook_ = false;
    w->Shutdown(false, false);
  }

  void Shutdown(bool releaseTsfn, bool announceLeaving) {
    if (closed_) return;
    closed_ = true;
    impl_->stop(announceLeaving);
    impl_.reset();
    if (releaseTsfn) tsfn_.Release();
    if (cleanupHook_) {
      napi_remove_env_cleanup_hook(Env(), &LivenessWrap::OnEnvCleanup, this);
      cleanupHook_ = false;
    }
  }

  void CheckOpen(Napi::Env env, const char* call) const {
    if (closed_) throw Napi::Error::New(env, std::string(call) + ": closed");
  }

  // setPeers([{ address, txKey, rxKey }])
  Napi::Value SetPeers(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const std::string call = "Liveness.setPeers";
    CheckOpen(env, call.c_str());
    if (!arg(info, 0).IsArray()) throwType(env, call + ": peers must be an array");
    Napi::Array a = arg(info, 0).As<Napi::Array>();
    if (a.Length() > 1024) throwRange(env, call + ": at most 1024 peers");
    std::vector<liveness::PeerSpec> specs;
    for (uint32_t i = 0; i < a.Length(); ++i) {
      const std::string what = call + ": peers[" + std::to_string(i) + "]";
      if (!a.Get(i).IsObject()) throwType(env, what + " must be an object");
      Napi::Object p = a.Get(i).As<Napi::Object>();
      liveness::PeerSpec s;
      s.v4 = ipv4Of(env, p.Get("address"), what + ".address");
      keyOf(env, p.Get("txKey"), what + ".txKey", s.txKey);
      keyOf(env, p.Get("rxKey"), what + ".rxKey", s.rxKey);
      specs.push_back(s);
    }
    impl_->setPeers(specs);
    for (auto& s : specs) sodium_memzero(&s, sizeof s);
    return env.Undefined();
  }

  Napi::Value Peers(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckOpen(env, "Liveness.peers");
    const auto views = impl_->peers();
    Napi::Array out = Napi::Array::New(env, views.size());
    for (size_t i = 0; i < views.size(); ++i) {
      const auto& v = views[i];
      Napi::Object o = Napi::Object::New(env);
      o.Set("address", ipv4Text(v.v4));
      o.Set("armed", Napi::Boolean::New(env, v.armed));
      o.Set("down", Napi::Boolean::New(env, v.down));
      o.Set("silentMs", v.silentMs < 0 ? env.Null() : Napi::Number::New(env, v.silentMs));
      o.Set("loss", Napi::Number::New(env, v.loss));
      o.Set("periods", Napi::Number::New(env, v.periods));
      o.Set("intervalMs", Napi::Number::New(env, v.intervalMs));
      o.Set("limitMs", Napi::Number::New(env, v.limitMs));
      o.Set("gapMaxMs", Napi::Number::New(env, v.gapMaxMs));
      o.Set("incarnation", Napi::Number::New(env, static_cast<double>(v.incarnation)));
      o.Set("seq", Napi::Number::New(env, static_cast<double>(v.seq)));
      out.Set(static_cast<uint32_t>(i), o);
    }
    return out;
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckOpen(env, "Liveness.stats");
    const auto s = impl_->stats();
    Napi::Object o = Napi::Object::New(env);
    auto num = [&](const char* k, uint64_t v) { o.Set(k, Napi::Number::New(env, static_cast<double>(v))); };
    num("sent", s.sent);
    num("sendErrors", s.sendErrors);
    num("received", s.received);
    num("accepted", s.accepted);
    num("malformed", s.malformed);
    num("wrongAddress", s.wrongAddress);
    num("unknownPeer", s.unknownPeer);
    num("badMac", s.badMac);
    num("replay", s.replay);
    num("leaving", s.leaving);
    num("downEvents", s.downEvents);
    num("upEvents", s.upEvents);
    num("eventDrops", s.eventDrops);
    o.Set("realtime", Napi::Boolean::New(env, s.realtime));
    return o;
  }

  Napi::Value BoundPort(const Napi::CallbackInfo& info) {
    CheckOpen(info.Env(), "Liveness.boundPort");
    return Napi::Number::New(info.Env(), impl_->boundPort());
  }

  Napi::Value Unref(const Napi::CallbackInfo& info) {
    if (!closed_) tsfn_.Unref(info.Env());
    return info.Env().Undefined();
  }

  // close({ announceLeaving })
  Napi::Value Close(const Napi::CallbackInfo& info) {
    bool leaving = false;
    if (arg(info, 0).IsObject()) leaving = arg(info, 0).As<Napi::Object>().Get("announceLeaving").ToBoolean();
    Shutdown(true, leaving);
    return info.Env().Undefined();
  }

  std::unique_ptr<liveness::Liveness> impl_;
  Tsfn tsfn_;
  bool closed_ = false;
  bool cleanupHook_ = false;
};

// sealDatagram(state, intervalMs, self, to, incarnation, seq, key): the datagram, for tests (forgery,
// replay and freshness cases are built from it).
Napi::Value SealDatagram(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string call = "sealLivenessDatagram";
  const auto state = static_cast<uint8_t>(numberOf(env, arg(info, 0), call + ": state", 0, 255));
  const auto interval = static_cast<uint16_t>(numberOf(env, arg(info, 1), call + ": intervalMs", 0, 65535));
  const uint32_t self = ipv4Of(env, arg(info, 2), call + ": from");
  const uint32_t to = ipv4Of(env, arg(info, 3), call + ": to");
  const auto inc = static_cast<uint64_t>(numberOf(env, arg(info, 4), call + ": incarnation", 0, 9007199254740991.0));
  const auto seq = static_cast<uint64_t>(numberOf(env, arg(info, 5), call + ": seq", 0, 9007199254740991.0));
  uint8_t key[liveness::kKeyBytes];
  keyOf(env, arg(info, 6), call + ": key", key);
  auto out = Napi::Buffer<uint8_t>::New(env, liveness::kDatagramBytes);
  liveness::seal(out.Data(), state, interval, self, to, inc, seq, key);
  sodium_memzero(key, sizeof key);
  return out;
}

}  // namespace

void InitLiveness(Napi::Env env, Napi::Object exports) {
  exports.Set("Liveness", LivenessWrap::Init(env));
  exports.Set("sealLivenessDatagram", Napi::Function::New(env, SealDatagram, "sealLivenessDatagram"));
  exports.Set("hasLiveness", Napi::Boolean::New(env, true));
}

}  // namespace gwc

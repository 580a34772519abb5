// Argument errors are TypeError/RangeError naming the call and the argument; OS failures carry `syscall`,
// `errno` and `code`. The typed wrapper (tunnel.ts) checks first with friendlier text.
#include "common/system_call_error.h"
#include "tunnel/tunnel_wrap.h"

#include <arpa/inet.h>
#include <sodium.h>

#include <cstring>
#include <memory>
#include <string>

#include "tunnel/transport.h"
#include "tunnel/tunnel_device.h"

namespace gwc {
namespace {

using tunnel::Endpoint;

const napi_type_tag kTransportTag = {0x6777636c74756e6eull, 0x6c7472616e73706full};

[[noreturn]] void throwType(Napi::Env env, const std::string& msg) { throw Napi::TypeError::New(env, msg); }
[[noreturn]] void throwRange(Napi::Env env, const std::string& msg) { throw Napi::RangeError::New(env, msg); }

Napi::Value arg(const Napi::CallbackInfo& info, size_t i) { return info.Length() > i ? info[i] : info.Env().Undefined(); }

double numberOf(Napi::Env env, const Napi::Value& v, const std::string& what, double min, double max) {
  if (!v.IsNumber()) throwType(env, what + " must be a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= min && d <= max) || d != static_cast<double>(static_cast<int64_t>(d)))
    throwRange(env, what + " must be an integer " + std::to_string(static_cast<int64_t>(min)) + ".." +
                        std::to_string(static_cast<int64_t>(max)));
  return d;
}

Napi::Uint8Array bytesOf(Napi::Env env, const Napi::Value& v, const std::string& what) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) throwType(env, what + " must be a Uint8Array");
  return v.As<Napi::Uint8Array>();
}

Napi::Uint32Array offsetsOf(Napi::Env env, const Napi::Value& v, const std::string& what, size_t total) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array) throwType(env, what + " must be a Uint32Array");
  auto o = v.As<Napi::Uint32Array>();
  if (o.ElementLength() < 1) throwRange(env, what + " must have at least one entry (0)");
  for (size_t i = 0; i < o.ElementLength(); ++i)
    if (o[i] > total || (i > 0 && o[i] < o[i - 1])) throwRange(env, what + " must be non-decreasing offsets within the buffer");
  return o;
}

Endpoint endpointOf(Napi::Env env, const Napi::Value& addr, const Napi::Value& port, const std::string& what) {
  if (!addr.IsString()) throwType(env, what + ": address must be a string");
  const std::string a = addr.As<Napi::String>().Utf8Value();
  const auto p = static_cast<uint16_t>(numberOf(env, port, what + ": port", 0, 65535));
  Endpoint ep;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ep.addr);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ep.addr);
  if (inet_pton(AF_INET, a.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(p);
    ep.len = sizeof(sockaddr_in);
  } else if (inet_pton(AF_INET6, a.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(p);
    ep.len = sizeof(sockaddr_in6);
  } else {
    throwType(env, what + ": address is not an IPv4 or IPv6 address: " + a);
  }
  return ep;
}

Napi::Object endpointObject(Napi::Env env, const Endpoint& ep) {
  char buf[INET6_ADDRSTRLEN] = "";
  uint16_t port = 0;
  if (ep.addr.ss_family == AF_INET) {
    auto* v4 = reinterpret_cast<const sockaddr_in*>(&ep.addr);
    inet_ntop(AF_INET, &v4->sin_addr, buf, sizeof buf);
    port = ntohs(v4->sin_port);
  } else if (ep.addr.ss_family == AF_INET6) {
    auto* v6 = reinterpret_cast<const sockaddr_in6*>(&ep.addr);
    inet_ntop(AF_INET6, &v6->sin6_addr, buf, sizeof buf);
    port = ntohs(v6->sin6_port);
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("address", Napi::String::New(env, buf));
  o.Set("port", Napi::Number::New(env, port));
  return o;
}

Napi::Error osError(Napi::Env env, const std::string& call, const std::string& syscall, int errnum, const std::string& message) {
  return gwc::SystemCallError(env, call + ": " + message, syscall, errnum);
}

class TransportWrap : public Napi::ObjectWrap<TransportWrap> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "TunnelTransport",
                       {InstanceMethod<&TransportWrap::SetKeypairs>("setKeypairs"),
                        InstanceMethod<&TransportWrap::SetAllowedIps>("setAllowedIps"),
                        InstanceMethod<&TransportWrap::SetEndpoint>("setEndpoint"),
                        InstanceMethod<&TransportWrap::RemovePeer>("removePeer"),
                        InstanceMethod<&TransportWrap::SetForward>("setForward"),
                        InstanceMethod<&TransportWrap::SetForwarders>("setForwarders"),
                        InstanceMethod<&TransportWrap::DecryptBatch>("decryptBatch"),
                        InstanceMethod<&TransportWrap::EncryptBatch>("encryptBatch"),
                        InstanceMethod<&TransportWrap::Activity>("activity"),
                        InstanceMethod<&TransportWrap::PeerStats>("peerStats"),
                        InstanceMethod<&TransportWrap::Stats>("stats")});
  }

  explicit TransportWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TransportWrap>(info) {
    try {
      transport_ = std::make_shared<tunnel::Transport>();
    } catch (const std::exception& e) {
      throw Napi::Error::New(info.Env(), std::string("new TunnelTransport: ") + e.what());
    }
    napi_type_tag_object(info.Env(), info.This(), &kTransportTag);
  }

  std::shared_ptr<tunnel::Transport> transport() const { return transport_; }

 private:
  static uint32_t peerOf(const Napi::CallbackInfo& info, const std::string& call) {
    return static_cast<uint32_t>(numberOf(info.Env(), arg(info, 0), call + ": peer", 0, 4294967295.0));
  }

  // setKeypairs(peer, [{ localIndex, remoteIndex, sendKey, receiveKey, canSend }])
  Napi::Value SetKeypairs(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const std::string call = "TunnelTransport.setKeypairs";
    const uint32_t peer = peerOf(info, call);
    if (!arg(info, 1).IsArray()) throwType(env, call + ": keypairs must be an array");
    Napi::Array arr = arg(info, 1).As<Napi::Array>();
    std::vector<tunnel::KeypairSpec> specs;
    for (uint32_t i = 0; i < arr.Length(); ++i) {
      const std::string at = call + ": keypairs[" + std::to_string(i) + "]";
      if (!arr.Get(i).IsObject()) throwType(env, at + " must be an object");
      Napi::Object o = arr.Get(i).As<Napi::Object>();
      tunnel::KeypairSpec s;
      s.localIndex = static_cast<uint32_t>(numberOf(env, o.Get("localIndex"), at + ".localIndex", 0, 4294967295.0));
      s.remoteIndex = static_cast<uint32_t>(numberOf(env, o.Get("remoteIndex"), at + ".remoteIndex", 0, 4294967295.0));
      auto sk = bytesOf(env, o.Get("sendKey"), at + ".sendKey");
      auto rk = bytesOf(env, o.Get("receiveKey"), at + ".receiveKey");
      if (sk.ByteLength() != tunnel::kKeySize || rk.ByteLength() != tunnel::kKeySize) throwRange(env, at + ": keys must be 32 bytes");
      std::memcpy(s.sendKey.data(), sk.Data(), tunnel::kKeySize);
      std::memcpy(s.receiveKey.data(), rk.Data(), tunnel::kKeySize);
      if (!o.Get("canSend").IsBoolean()) throwType(env, at + ".canSend must be a boolean");
      s.canSend = o.Get("canSend").As<Napi::Boolean>().Value();
      // Optional: the send limit (the counter lease) and a replica's seed (docs/tunnels.md, "Takeover").
      auto u64 = [&](const char* name, uint64_t* out) {
        Napi::Value v = o.Get(name);
        if (v.IsUndefined()) return false;
        if (v.IsBigInt()) {
          bool lossless = false;
          *out = v.As<Napi::BigInt>().Uint64Value(&lossless);
          if (!lossless) throwRange(env, at + "." + name + " must be 0..2^64-1");
        } else {
          *out = static_cast<uint64_t>(numberOf(env, v, at + "." + name, 0, 9007199254740991.0));
        }
        return true;
      };
      u64("sendLimit", &s.sendLimit);
      const bool a = u64("seedSendCounter", &s.seedSendCounter);
      const bool b = u64("seedReceiveNext", &s.seedReceiveNext);
      s.hasSeed = a || b;
      specs.push_back(s);
    }
    transport_->setKeypairs(peer, specs);
    for (auto& s : specs) sodium_memzero(&s, sizeof s);
    return env.Undefined();
  }

  // setAllowedIps(peer, prefixes: Uint8Array of 18-byte records: family (4|6), bits, 16 address bytes)
  Napi::Value SetAllowedIps(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const std::string call = "TunnelTransport.setAllowedIps";
    const uint32_t peer = peerOf(info, call);
    auto b = bytesOf(env, arg(info, 1), call + ": prefixes");
    if (b.ByteLength() % 18) throwRange(env, call + ": prefixes must be 18-byte records");
    std::vector<tunnel::Prefix> ps;
    for (size_t off = 0; off < b.ByteLength(); off += 18) {
      tunnel::Prefix p;
      p.family = b[off];
      p.bits = b[off + 1];
      if ((p.family != 4 && p.family != 6) || p.bits > (p.family == 4 ? 32 : 128)) throwRange(env, call + ": bad prefix record");
      std::memcpy(p.addr.data(), b.Data() + off + 2, 16);
      ps.push_back(p);
    }
    transport_->setAllowedIps(peer, ps);
    return env.Undefined();
  }

  Napi::Value SetEndpoint(const Napi::CallbackInfo& info) {
    const std::string call = "TunnelTransport.setEndpoint";
    const uint32_t peer = peerOf(info, call);
    transport_->setEndpoint(peer, endpointOf(info.Env(), arg(info, 1), arg(info, 2), call));
    return info.Env().Undefined();
  }

  // setForward(peer, address?, port?): packets for the peer go to that member (no address: encrypt here).
  Napi::Value SetForward(const Napi::CallbackInfo& info) {
    const std::string call = "TunnelTransport.setForward";
    const uint32_t peer = peerOf(info, call);
    if (!arg(info, 1).IsString()) {
      transport_->setForward(peer, nullptr);
    } else {
      const Endpoint ep = endpointOf(info.Env(), arg(info, 1), arg(info, 2), call);
      transport_->setForward(peer, &ep);
    }
    return info.Env().Undefined();
  }

  // setForwarders([ipv4 text]): the members whose forwarded packets are encrypted here.
  Napi::Value SetForwarders(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const std::string call = "TunnelTransport.setForwarders";
    if (!arg(info, 0).IsArray()) throwType(env, call + ": addresses must be an array");
    Napi::Array arr = arg(info, 0).As<Napi::Array>();
    std::vector<uint32_t> v;
    for (uint32_t i = 0; i < arr.Length(); ++i) {
      in_addr a{};
      if (!arr.Get(i).IsString() || inet_pton(AF_INET, arr.Get(i).As<Napi::String>().Utf8Value().c_str(), &a) != 1)
        throwType(env, call + ": addresses[" + std::to_string(i) + "] must be an IPv4 address string");
      v.push_back(a.s_addr);
    }
    transport_->setForwarders(v);
    return env.Undefined();
  }

  Napi::Value RemovePeer(const Napi::CallbackInfo& info) {
    transport_->removePeer(peerOf(info, "TunnelTransport.removePeer"));
    return info.Env().Undefined();
  }

  // decryptBatch(datagrams, offsets, address?, port?) -> { status, peers, plaintext, offsets }
  Napi::Value DecryptBatch(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const std::string call = "TunnelTransport.decryptBatch";
    auto d = bytesOf(env, arg(info, 0), call + ": datagrams");
    auto off = offsetsOf(env, arg(info, 1), call + ": offsets", d.ByteLength());
    Endpoint from;
    const bool hasFrom = arg(info, 2).IsString();
    if (hasFrom) from = endpointOf(env, arg(info, 2), arg(info, 3), call);
    const size_t n = off.ElementLength() - 1;
    auto status = Napi::Uint8Array::New(env, n);
    auto peers = Napi::Uint32Array::New(env, n);
    auto outOff = Napi::Uint32Array::New(env, n + 1);
    std::vector<uint8_t> plain(d.ByteLength() + 1);
    size_t pos = 0;
    for (size_t i = 0; i < n; ++i) {
      const tunnel::DecryptResult r = transport_->decrypt(d.Data() + off[i], off[i + 1] - off[i], hasFrom ? &from : nullptr, plain.data() + pos);
      status[i] = static_cast<uint8_t>(r.status);
      peers[i] = r.peer;
      outOff[i] = static_cast<uint32_t>(pos);
      pos += r.length;
    }
    outOff[n] = static_cast<uint32_t>(pos);
    Napi::Object o = Napi::Object::New(env);
    o.Set("status", status);
    o.Set("peers", peers);
    o.Set("plaintext", Napi::Buffer<uint8_t>::Copy(env, plain.data(), pos));
    o.Set("offsets", outOff);
    return o;
  }

  // encryptBatch(peer (-1: by destination), packets, offsets) -> { status, peers, datagrams, offsets, endpoints }
  Napi::Value EncryptBatch(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const std::string call = "TunnelTransport.encryptBatch";
    const auto peer = static_cast<int64_t>(numberOf(env, arg(info, 0), call + ": peer", -1, 4294967295.0));
    auto d = bytesOf(env, arg(info, 1), call + ": packets");
    auto off = offsetsOf(env, arg(info, 2), call + ": offsets", d.ByteLength());
    const size_t n = off.ElementLength() - 1;
    auto status = Napi::Uint8Array::New(env, n);
    auto peers = Napi::Uint32Array::New(env, n);
    auto outOff = Napi::Uint32Array::New(env, n + 1);
    Napi::Array endpoints = Napi::Array::New(env, n);
    std::vector<uint8_t> out(d.ByteLength() + n * 64 + 1);
    size_t pos = 0;
    for (size_t i = 0; i < n; ++i) {
      size_t len = 0;
      Endpoint to;
      uint32_t p = 0;
      const auto s = transport_->encrypt(peer, d.Data() + off[i], off[i + 1] - off[i], out.data() + pos, &len, &to, &p);
      status[i] = static_cast<uint8_t>(s);
      peers[i] = p;
      outOff[i] = static_cast<uint32_t>(pos);
      endpoints.Set(static_cast<uint32_t>(i), s == tunnel::EncryptStatus::Sent ? endpointObject(env, to) : env.Null());
      pos += len;
    }
    outOff[n] = static_cast<uint32_t>(pos);
    Napi::Object o = Napi::Object::New(env);
    o.Set("status", status);
    o.Set("peers", peers);
    o.Set("datagrams", Napi::Buffer<uint8_t>::Copy(env, out.data(), pos));
    o.Set("offsets", outOff);
    o.Set("endpoints", endpoints);
    return o;
  }

  Napi::Value Activity(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const auto list = transport_->drainActivity();
    Napi::Array arr = Napi::Array::New(env, list.size());
    for (size_t i = 0; i < list.size(); ++i) {
      const auto& a = list[i];
      Napi::Object o = Napi::Object::New(env);
      o.Set("localIndex", Napi::Number::New(env, a.localIndex));
      o.Set("peer", Napi::Number::New(env, a.peer));
      o.Set("received", Napi::Number::New(env, static_cast<double>(a.received)));
      o.Set("receivedData", Napi::Number::New(env, static_cast<double>(a.receivedData)));
      o.Set("sent", Napi::Number::New(env, static_cast<double>(a.sent)));
      o.Set("sentData", Napi::Number::New(env, static_cast<double>(a.sentData)));
      o.Set("sendCounter", Napi::BigInt::New(env, a.sendCounter));
      o.Set("receiveNext", Napi::BigInt::New(env, a.receiveNext));
      if (a.hasFrom) o.Set("from", endpointObject(env, a.from));
      arr.Set(static_cast<uint32_t>(i), o);
    }
    return arr;
  }

  Napi::Value PeerStats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const uint32_t peer = peerOf(info, "TunnelTransport.peerStats");
    const auto c = transport_->peerCounters(peer);
    Napi::Object o = Napi::Object::New(env);
    o.Set("rxPackets", Napi::Number::New(env, static_cast<double>(c.rxPackets)));
    o.Set("rxBytes", Napi::Number::New(env, static_cast<double>(c.rxBytes)));
    o.Set("txPackets", Napi::Number::New(env, static_cast<double>(c.txPackets)));
    o.Set("txBytes", Napi::Number::New(env, static_cast<double>(c.txBytes)));
    Endpoint ep;
    if (transport_->peerEndpoint(peer, &ep)) o.Set("endpoint", endpointObject(env, ep));
    return o;
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const auto d = transport_->decryptCounts();
    const auto e = transport_->encryptCounts();
    Napi::Array da = Napi::Array::New(env, d.size()), ea = Napi::Array::New(env, e.size());
    for (size_t i = 0; i < d.size(); ++i) da.Set(static_cast<uint32_t>(i), Napi::Number::New(env, static_cast<double>(d[i])));
    for (size_t i = 0; i < e.size(); ++i) ea.Set(static_cast<uint32_t>(i), Napi::Number::New(env, static_cast<double>(e[i])));
    Napi::Object o = Napi::Object::New(env);
    o.Set("decrypt", da);
    o.Set("encrypt", ea);
    return o;
  }

  std::shared_ptr<tunnel::Transport> transport_;
};

class DeviceWrap : public Napi::ObjectWrap<DeviceWrap> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "TunnelDevice",
                       {InstanceMethod<&DeviceWrap::SendDatagram>("sendDatagram"),
                        InstanceMethod<&DeviceWrap::SendKeepalive>("sendKeepalive"),
                        InstanceMethod<&DeviceWrap::Stats>("stats"),
                        InstanceMethod<&DeviceWrap::BoundPort>("boundPort"),
                        InstanceMethod<&DeviceWrap::Ref>("ref"),
                        InstanceMethod<&DeviceWrap::Unref>("unref"),
                        InstanceMethod<&DeviceWrap::Close>("close")});
  }

  // new TunnelDevice(transport, { tunName, mtu, listenAddress, listenPort }, onEvent)
  explicit DeviceWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<DeviceWrap>(info) {
    Napi::Env env = info.Env();
    const std::string call = "new TunnelDevice";
    bool tagged = false;
    if (!arg(info, 0).IsObject() || napi_check_object_type_tag(env, arg(info, 0), &kTransportTag, &tagged) != napi_ok || !tagged)
      throwType(env, call + ": transport must be a TunnelTransport");
    if (!arg(info, 1).IsObject() || !arg(info, 2).IsFunction()) throwType(env, call + ": arguments must be (transport, config, onEvent)");
    transportRef_ = Napi::Persistent(arg(info, 0).As<Napi::Object>());
    auto transport = TransportWrap::Unwrap(arg(info, 0).As<Napi::Object>())->transport();
    Napi::Object o = arg(info, 1).As<Napi::Object>();
    tunnel::DeviceConfig c;
    if (!o.Get("tunName").IsString()) throwType(env, call + ": tunName must be a string");
    c.tunName = o.Get("tunName").As<Napi::String>().Utf8Value();
    c.mtu = static_cast<uint32_t>(numberOf(env, o.Get("mtu"), call + ": mtu", 576, 65535));
    c.listenPort = static_cast<uint16_t>(numberOf(env, o.Get("listenPort"), call + ": listenPort", 0, 65535));
    if (!o.Get("listenAddress").IsString()) throwType(env, call + ": listenAddress must be an IPv4 address string");
    in_addr a{};
    if (inet_pton(AF_INET, o.Get("listenAddress").As<Napi::String>().Utf8Value().c_str(), &a) != 1)
      throwType(env, call + ": listenAddress must be an IPv4 address string");
    c.listenV4 = ntohl(a.s_addr);
    if (o.Get("forwardAddress").IsString()) {
      in_addr fa{};
      if (inet_pton(AF_INET, o.Get("forwardAddress").As<Napi::String>().Utf8Value().c_str(), &fa) != 1)
        throwType(env, call + ": forwardAddress must be an IPv4 address string");
      c.forwardV4 = ntohl(fa.s_addr);
      c.forwardPort = static_cast<uint16_t>(numberOf(env, o.Get("forwardPort"), call + ": forwardPort", 1, 65535));
    }

    tsfn_ = Tsfn::New(env, arg(info, 2).As<Napi::Function>(), "gwcluster.TunnelDevice", 4096, 1, this);
    Tsfn tsfn = tsfn_;
    try {
      device_ = std::make_unique<tunnel::TunnelDevice>(std::move(c), transport, [tsfn](tunnel::DeviceEvent&& e) mutable {
        auto* copy = new tunnel::DeviceEvent(std::move(e));
        if (tsfn.NonBlockingCall(copy) == napi_ok) return true;
        delete copy;
        return false;
      });
    } catch (const tunnel::DeviceError& e) {
      tsfn_.Release();
      throw osError(env, call, e.syscall, e.errnum, e.what());
    }
    device_->start();
    napi_add_env_cleanup_hook(env, &DeviceWrap::OnEnvCleanup, this);
    cleanupHook_ = true;
  }

  ~DeviceWrap() override { Shutdown(true); }

 private:
  static void CallJs(Napi::Env env, Napi::Function fn, DeviceWrap*, tunnel::DeviceEvent* e) {
    std::unique_ptr<tunnel::DeviceEvent> ev(e);
    if (!env || !fn) return;
    Napi::Object o = Napi::Object::New(env);
    switch (ev->type) {
      case tunnel::DeviceEvent::Type::Handshake:
        o.Set("type", "handshake");
        o.Set("bytes", Napi::Buffer<uint8_t>::Copy(env, ev->bytes.data(), ev->bytes.size()));
        o.Set("from", endpointObject(env, ev->from));
        break;
      case tunnel::DeviceEvent::Type::NeedKeypair:
        o.Set("type", "need-keypair");
        o.Set("peer", Napi::Number::New(env, ev->peer));
        break;
      case tunnel::DeviceEvent::Type::Error:
        o.Set("type", "error");
        o.Set("error", osError(env, "TunnelDevice", ev->syscall, ev->errnum, ev->message).Value());
        break;
    }
    fn.Call({o});
  }
  using Tsfn = Napi::TypedThreadSafeFunction<DeviceWrap, tunnel::DeviceEvent, &DeviceWrap::CallJs>;

  static void OnEnvCleanup(void* self) {
    auto* w = static_cast<DeviceWrap*>(self);
    w->cleanupHook_ = false;
    w->Shutdown(false);
  }

  void Shutdown(bool releaseTsfn) {
    if (closed_) return;
    closed_ = true;
    device_.reset();  // joins the thread, closes the socket and the TUN device (the interface goes away)
    if (releaseTsfn) tsfn_.Release();
    if (cleanupHook_) {
      napi_remove_env_cleanup_hook(Env(), &DeviceWrap::OnEnvCleanup, this);
      cleanupHook_ = false;
    }
  }

  void CheckOpen(Napi::Env env, const char* call) const {
    if (closed_) throw Napi::Error::New(env, std::string(call) + ": the device is closed");
  }

  Napi::Value SendDatagram(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const std::string call = "TunnelDevice.sendDatagram";
    CheckOpen(env, call.c_str());
    auto b = bytesOf(env, arg(info, 0), call + ": bytes");
    const Endpoint to = endpointOf(env, arg(info, 1), arg(info, 2), call);
    const int err = device_->sendDatagram(b.Data(), b.ByteLength(), to);
    if (err != 0) throw osError(env, call, "sendto", err, std::string("sendto: ") + std::strerror(err));
    return env.Undefined();
  }

  Napi::Value SendKeepalive(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckOpen(env, "TunnelDevice.sendKeepalive");
    const auto peer = static_cast<uint32_t>(numberOf(env, arg(info, 0), "TunnelDevice.sendKeepalive: peer", 0, 4294967295.0));
    return Napi::Number::New(env, static_cast<double>(device_->sendKeepalive(peer)));
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckOpen(env, "TunnelDevice.stats");
    const auto s = device_->stats();
    Napi::Object o = Napi::Object::New(env);
    auto num = [&](const char* k, uint64_t v) { o.Set(k, Napi::Number::New(env, static_cast<double>(v))); };
    num("udpReceived", s.udpReceived);
    num("udpBatches", s.udpBatches);
    num("handshakeMessages", s.handshakeMessages);
    num("truncated", s.truncated);
    num("tunWritten", s.tunWritten);
    num("tunWriteErrors", s.tunWriteErrors);
    num("tunRead", s.tunRead);
    num("tunBatches", s.tunBatches);
    num("udpSent", s.udpSent);
    num("sendErrors", s.sendErrors);
    num("needKeypairEvents", s.needKeypairEvents);
    num("forwarded", s.forwarded);
    num("forwardReceived", s.forwardReceived);
    num("forwardRefused", s.forwardRefused);
    num("forwardLoops", s.forwardLoops);
    num("eventDrops", s.eventDrops);
    return o;
  }

  Napi::Value BoundPort(const Napi::CallbackInfo& info) {
    CheckOpen(info.Env(), "TunnelDevice.boundPort");
    return Napi::Number::New(info.Env(), device_->boundPort());
  }

  Napi::Value Ref(const Napi::CallbackInfo& info) {
    if (!closed_) tsfn_.Ref(info.Env());
    return info.Env().Undefined();
  }
  Napi::Value Unref(const Napi::CallbackInfo& info) {
    if (!closed_) tsfn_.Unref(info.Env());
    return info.Env().Undefined();
  }
  Napi::Value Close(const Napi::CallbackInfo& info) {
    Shutdown(true);
    return info.Env().Undefined();
  }

  std::unique_ptr<tunnel::TunnelDevice> device_;
  Napi::ObjectReference transportRef_;
  Tsfn tsfn_;
  bool closed_ = false;
  bool cleanupHook_ = false;
};

}  // namespace

void InitTunnel(Napi::Env env, Napi::Object exports) {
  exports.Set("TunnelTransport", TransportWrap::Init(env));
  exports.Set("TunnelDevice", DeviceWrap::Init(env));
  exports.Set("hasTunnel", Napi::Boolean::New(env, true));
}

}  // namespace gwc

// N-API glue of the session table: argument checks and conversions only; the work is in
// session_table.cc (no Node dependency). Every call takes the table's mutex, so a packet engine
// thread may share the table (UnwrapSessionTable). Argument errors are TypeError/RangeError naming
// the call and the argument; the typed wrapper (sessions/sessions.ts) checks first with friendlier text.
#include "sessions/session_wrap.h"

#include "filter/filter.h"

#include <cmath>
#include <cstring>
#include <memory>
#include <string>

namespace gwc {
namespace {

using sess::SessionTable;

// Objects created by this constructor carry this tag (napi_type_tag_object), so the engine can
// check what it is given.
const napi_type_tag kSessionTableTag = {0x6777636c75737465ull, 0x7273657373696f6eull};

[[noreturn]] void throwType(Napi::Env env, const std::string& msg) { throw Napi::TypeError::New(env, msg); }
[[noreturn]] void throwRange(Napi::Env env, const std::string& msg) { throw Napi::RangeError::New(env, msg); }

bool isTypedArrayOf(const Napi::Value& v, napi_typedarray_type t) {
  return v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == t;
}

Napi::Uint8Array argBytes(const Napi::CallbackInfo& info, size_t i, const std::string& call, const char* name) {
  if (info.Length() <= i || !isTypedArrayOf(info[i], napi_uint8_array))
    throwType(info.Env(), call + ": " + name + " must be a Buffer or Uint8Array");
  return info[i].As<Napi::Uint8Array>();
}

double argNumber(const Napi::CallbackInfo& info, size_t i, const std::string& call, const char* name, double min,
                 double max) {
  if (info.Length() <= i || !info[i].IsNumber()) throwType(info.Env(), call + ": " + name + " must be a number");
  const double d = info[i].As<Napi::Number>().DoubleValue();
  if (!(d >= min && d <= max) || std::floor(d) != d)
    throwRange(info.Env(), call + ": " + name + " must be an integer " + std::to_string(static_cast<int64_t>(min)) +
                               ".." + std::to_string(static_cast<int64_t>(max)) + ", got " + std::to_string(d));
  return d;
}

int64_t argNow(const Napi::CallbackInfo& info, size_t i, const std::string& call) {
  return static_cast<int64_t>(argNumber(info, i, call, "nowMs", 0, 9007199254740991.0));
}

bool argBool(const Napi::CallbackInfo& info, size_t i, const std::string& call, const char* name) {
  if (info.Length() <= i || !info[i].IsBoolean()) throwType(info.Env(), call + ": " + name + " must be a boolean");
  return info[i].As<Napi::Boolean>().Value();
}

sess::Timeouts argTimeouts(const Napi::CallbackInfo& info, size_t i, const std::string& call) {
  if (info.Length() <= i || !isTypedArrayOf(info[i], napi_uint32_array))
    throwType(info.Env(), call + ": timeouts must be a Uint32Array of 11 values (ms)");
  Napi::Uint32Array a = info[i].As<Napi::Uint32Array>();
  if (a.ElementLength() != 11)
    throwRange(info.Env(), call + ": timeouts must have 11 entries, got " + std::to_string(a.ElementLength()));
  sess::Timeouts t;
  uint32_t* f[] = {&t.synSent,   &t.synRecv,  &t.established,  &t.finWait,        &t.closing,     &t.timeWait,
                   &t.closed,    &t.udpUnreplied, &t.udpReplied, &t.otherUnreplied, &t.otherReplied};
  for (size_t k = 0; k < 11; ++k) *f[k] = a[k];
  return t;
}

Napi::Buffer<uint8_t> toBuffer(Napi::Env env, const std::vector<uint8_t>& v) {
  return Napi::Buffer<uint8_t>::Copy(env, v.data(), v.size());
}

class SessionTableWrap : public Napi::ObjectWrap<SessionTableWrap> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "SessionTable",
                       {
                           InstanceMethod<&SessionTableWrap::TrackPacket>("trackPacket"),
                           InstanceMethod<&SessionTableWrap::TrackBatch>("trackBatch"),
                           InstanceMethod<&SessionTableWrap::CollectChanges>("collectChanges"),
                           InstanceMethod<&SessionTableWrap::Install>("install"),
                           InstanceMethod<&SessionTableWrap::Remove>("remove"),
                           InstanceMethod<&SessionTableWrap::Expire>("expire"),
                           InstanceMethod<&SessionTableWrap::SessionsForUnits>("sessionsForUnits"),
                           InstanceMethod<&SessionTableWrap::List>("list"),
                           InstanceMethod<&SessionTableWrap::Stats>("stats"),
                           InstanceMethod<&SessionTableWrap::Size>("size"),
                           InstanceMethod<&SessionTableWrap::Configure>("configure"),
                       });
  }

  // new SessionTable(maxSessions, loose, timeouts: Uint32Array(11))
  explicit SessionTableWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<SessionTableWrap>(info) {
    const std::string call = "new SessionTable";
    const size_t max = static_cast<size_t>(argNumber(info, 0, call, "maxSessions", 0, 1e9));
    const bool loose = argBool(info, 1, call, "loose");
    const sess::Timeouts t = argTimeouts(info, 2, call);
    table_ = std::make_unique<SessionTable>(max, loose ? sess::Mode::Loose : sess::Mode::Strict, t);
    napi_type_tag_object(info.Env(), info.This(), &kSessionTableTag);
  }

  SessionTable* table() { return table_.get(); }

 private:
  using Lock = std::lock_guard<std::mutex>;

  // trackPacket(bytes, nowMs, unit: 0..1023 | 65535, unitGainedMs?: when this member gained the unit)
  //   -> { verdict, reason, created, state, unit }
  Napi::Value TrackPacket(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const std::string call = "SessionTable.trackPacket";
    Napi::Uint8Array p = argBytes(info, 0, call, "ipPacket");
    const int64_t now = argNow(info, 1, call);
    const uint16_t unit = static_cast<uint16_t>(argNumber(info, 2, call, "unit", 0, 65535));
    const int64_t gained = info.Length() > 3 && !info[3].IsUndefined()
                               ? static_cast<int64_t>(argNumber(info, 3, call, "unitGainedMs", 0, 9007199254740991.0))
                               : 0;
    sess::TrackResult r;
    {
      Lock l(table_->mutex());
      r = table_->track(p.Data(), p.ByteLength(), now, unit, gained);
    }
    Napi::Object o = Napi::Object::New(env);
    o.Set("verdict", Napi::Number::New(env, static_cast<uint8_t>(r.verdict)));
    o.Set("reason", Napi::Number::New(env, static_cast<uint8_t>(r.reason)));
    o.Set("created", Napi::Boolean::New(env, r.created));
    o.Set("session", Napi::Boolean::New(env, r.session));
    o.Set("proto", Napi::Number::New(env, r.proto));
    o.Set("state", Napi::Number::New(env, r.state));
    o.Set("unit", Napi::Number::New(env, r.unit));
    return o;
  }

  // trackBatch(packets, offsets, nowMs, units: Uint16Array | null) -> { verdicts, reasons }
  Napi::Value TrackBatch(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const std::string call = "SessionTable.trackBatch";
    Napi::Uint8Array packets = argBytes(info, 0, call, "packets");
    if (info.Length() <= 1 || !isTypedArrayOf(info[1], napi_uint32_array))
      throwType(env, call + ": offsets must be a Uint32Array");
    Napi::Uint32Array offsets = info[1].As<Napi::Uint32Array>();
    const int64_t now = argNow(info, 2, call);
    const uint16_t* units = nullptr;
    const size_t m = offsets.ElementLength();
    const size_t n = m == 0 ? 0 : m - 1;
    if (info.Length() > 3 && !info[3].IsNull() && !info[3].IsUndefined()) {
      if (!isTypedArrayOf(info[3], napi_uint16_array)) throwType(env, call + ": units must be a Uint16Array or null");
      Napi::Uint16Array u = info[3].As<Napi::Uint16Array>();
      if (u.ElementLength() != n)
        throwRange(env, call + ": units must have one entry per packet (" + std::to_string(n) + "), got " +
                            std::to_string(u.ElementLength()));
      units = u.Data();
    }
    const uint32_t* o = offsets.Data();
    for (size_t i = 0; i + 1 < m; ++i)
      if (o[i + 1] < o[i]) throwRange(env, call + ": offsets must be non-decreasing");
    if (m > 0 && o[m - 1] > packets.ByteLength()) throwRange(env, call + ": offsets run past the end of packets");
    auto verdicts = Napi::Uint8Array::New(env, n);
    auto reasons = Napi::Uint8Array::New(env, n);
    {
      Lock l(table_->mutex());
      const uint8_t* base = packets.Data();
      for (size_t i = 0; i < n; ++i) {
        const sess::TrackResult r =
            table_->track(base + o[i], o[i + 1] - o[i], now, units ? units[i] : sess::kNoUnit);
        verdicts[i] = static_cast<uint8_t>(r.verdict);
        reasons[i] = static_cast<uint8_t>(r.reason);
      }
    }
    Napi::Object r = Napi::Object::New(env);
    r.Set("verdicts", verdicts);
    r.Set("reasons", reasons);
    return r;
  }

  // collectChanges(maxRecords, nowMs, lazy) -> { records: Buffer, removed: Buffer, pending* }
  Napi::Value CollectChanges(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const std::string call = "SessionTable.collectChanges";
    const size_t max = static_cast<size_t>(argNumber(info, 0, call, "maxRecords", 0, 1e9));
    const int64_t now = argNow(info, 1, call);
    const bool lazy = argBool(info, 2, call, "lazy");
    sess::Collected c;
    {
      Lock l(table_->mutex());
      c = table_->collectChanges(max, now, lazy);
    }
    Napi::Object r = Napi::Object::New(env);
    r.Set("records", toBuffer(env, c.records));
    r.Set("removed", toBuffer(env, c.removed));
    r.Set("pendingUrgent", Napi::Number::New(env, static_cast<double>(c.pendingUrgent)));
    r.Set("pendingLazy", Napi::Number::New(env, static_cast<double>(c.pendingLazy)));
    r.Set("pendingRemoved", Napi::Number::New(env, static_cast<double>(c.pendingRemoved)));
    return r;
  }

  // install(records: n * recordSize bytes, nowMs) -> { installed, updated, stale, invalid, refused }
  Napi::Value Install(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const std::string call = "SessionTable.install";
    Napi::Uint8Array b = argBytes(info, 0, call, "records");
    const int64_t now = argNow(info, 1, call);
    if (b.ByteLength() % sess::kRecordSize != 0)
      throwRange(env, call + ": records length must be a multiple of " + std::to_string(sess::kRecordSize) +
                          ", got " + std::to_string(b.ByteLength()));
    sess::InstallResult res;
    {
      Lock l(table_->mutex());
      res = table_->install(b.Data(), b.ByteLength() / sess::kRecordSize, now);
    }
    Napi::Object r = Napi::Object::New(env);
    r.Set("installed", Napi::Number::New(env, res.installed));
    r.Set("updated", Napi::Number::New(env, res.updated));
    r.Set("stale", Napi::Number::New(env, res.stale));
    r.Set("invalid", Napi::Number::New(env, res.invalid));
    r.Set("refused", Napi::Number::New(env, res.refused));
    return r;
  }

  // remove(keys: n * keySize bytes) -> number removed
  Napi::Value Remove(const Napi::CallbackInfo& info) {
    const std::string call = "SessionTable.remove";
    Napi::Uint8Array b = argBytes(info, 0, call, "keys");
    if (b.ByteLength() % sess::kKeySize != 0)
      throwRange(info.Env(), call + ": keys length must be a multiple of " + std::to_string(sess::kKeySize) +
                                 ", got " + std::to_string(b.ByteLength()));
    Lock l(table_->mutex());
    return Napi::Number::New(info.Env(), static_cast<double>(table_->remove(b.Data(), b.ByteLength() / sess::kKeySize)));
  }

  Napi::Value Expire(const Napi::CallbackInfo& info) {
    const int64_t now = argNow(info, 0, "SessionTable.expire");
    Lock l(table_->mutex());
    return Napi::Number::New(info.Env(), static_cast<double>(table_->expire(now)));
  }

  // sessionsForUnits(bitmap: 128 bytes) -> Buffer of records
  Napi::Value SessionsForUnits(const Napi::CallbackInfo& info) {
    const std::string call = "SessionTable.sessionsForUnits";
    Napi::Uint8Array b = argBytes(info, 0, call, "unitBitmap");
    if (b.ByteLength() != kWorkUnits / 8)
      throwRange(info.Env(), call + ": unitBitmap must have 128 bytes, got " + std::to_string(b.ByteLength()));
    std::vector<uint8_t> out;
    {
      Lock l(table_->mutex());
      out = table_->sessionsForUnits(b.Data());
    }
    return toBuffer(info.Env(), out);
  }

  // list(offset, limit, unit|-1, proto|-1, port|-1, addr: 0, 4 or 16 bytes) -> { records, total }
  Napi::Value List(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const std::string call = "SessionTable.list";
    sess::ListQuery q;
    q.offset = static_cast<size_t>(argNumber(info, 0, call, "offset", 0, 1e12));
    q.limit = static_cast<size_t>(argNumber(info, 1, call, "limit", 0, 1e7));
    q.unit = static_cast<int32_t>(argNumber(info, 2, call, "unit", -1, kWorkUnits - 1));
    q.proto = static_cast<int32_t>(argNumber(info, 3, call, "proto", -1, 255));
    q.port = static_cast<int32_t>(argNumber(info, 4, call, "port", -1, 65535));
    Napi::Uint8Array a = argBytes(info, 5, call, "addr");
    if (a.ByteLength() == 4 || a.ByteLength() == 16) {
      q.addrFamily = a.ByteLength() == 4 ? 4 : 6;
      std::memcpy(q.addr.data(), a.Data(), a.ByteLength());
    } else if (a.ByteLength() != 0) {
      throwRange(env, call + ": addr must have 0, 4 or 16 bytes, got " + std::to_string(a.ByteLength()));
    }
    size_t total = 0;
    std::vector<uint8_t> out;
    {
      Lock l(table_->mutex());
      out = table_->list(q, &total);
    }
    Napi::Object r = Napi::Object::New(env);
    r.Set("records", toBuffer(env, out));
    r.Set("total", Napi::Number::New(env, static_cast<double>(total)));
    return r;
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    sess::TableStats t;
    size_t max;
    {
      Lock l(table_->mutex());
      t = table_->stats();
      max = table_->maxSessions();
    }
    Napi::Object r = Napi::Object::New(env);
    auto num = [&](const char* k, uint64_t v) { r.Set(k, Napi::Number::New(env, static_cast<double>(v))); };
    num("sessions", t.sessions);
    num("maxSessions", max);
    num("tcp", t.tcp);
    num("udp", t.udp);
    num("other", t.other);
    num("replicas", t.replicas);
    num("created", t.created);
    num("refused", t.refused);
    num("installRefused", t.installRefused);
    num("expired", t.expired);
    num("removed", t.removed);
    num("accepted", t.accepted);
    num("dropped", t.dropped);
    num("recordsCollected", t.recordsCollected);
    num("removalsCollected", t.removalsCollected);
    num("removalsDropped", t.removalsDropped);
    num("installed", t.installed);
    num("installStale", t.installStale);
    num("regained", t.regained);
    num("offloadRefreshed", t.offloadRefreshed);
    num("installInvalid", t.installInvalid);
    num("bytesPerSession", SessionTable::bytesPerSession());
    Napi::Object reasons = Napi::Object::New(env);
    for (uint8_t i = 0; i < sess::kReasonCount; ++i)
      reasons.Set(sess::reasonName(static_cast<sess::Reason>(i)), Napi::Number::New(env, static_cast<double>(t.reasons[i])));
    r.Set("reasons", reasons);
    return r;
  }

  Napi::Value Size(const Napi::CallbackInfo& info) {
    Lock l(table_->mutex());
    return Napi::Number::New(info.Env(), static_cast<double>(table_->size()));
  }

  // configure(maxSessions, loose, timeouts)
  Napi::Value Configure(const Napi::CallbackInfo& info) {
    const std::string call = "SessionTable.configure";
    const size_t max = static_cast<size_t>(argNumber(info, 0, call, "maxSessions", 0, 1e9));
    const bool loose = argBool(info, 1, call, "loose");
    const sess::Timeouts t = argTimeouts(info, 2, call);
    Lock l(table_->mutex());
    table_->setMaxSessions(max);
    table_->setMode(loose ? sess::Mode::Loose : sess::Mode::Strict);
    table_->setTimeouts(t);
    return info.Env().Undefined();
  }

  std::unique_ptr<SessionTable> table_;
};

}  // namespace

void InitSessionTable(Napi::Env env, Napi::Object exports) {
  exports.Set("SessionTable", SessionTableWrap::Init(env));
  exports.Set("sessionRecordSize", Napi::Number::New(env, static_cast<double>(sess::kRecordSize)));
  exports.Set("sessionKeySize", Napi::Number::New(env, static_cast<double>(sess::kKeySize)));
}

sess::SessionTable* UnwrapSessionTable(Napi::Object o) {
  bool tagged = false;
  if (napi_check_object_type_tag(o.Env(), o, &kSessionTableTag, &tagged) != napi_ok || !tagged) return nullptr;
  return SessionTableWrap::Unwrap(o)->table();
}

}  // namespace gwc

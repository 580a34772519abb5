#include "common/system_call_error.h"
#include "capture/capture.h"

#include <cerrno>
#include <cstring>

#include "filter/filter_wrap.h"

namespace gwc {
namespace {

// An Error for an OS or libpcap failure: message "<call>: <syscall>(<device>): <text>", with the
// properties syscall, and errno + code when an errno applies (code = "EPERM", ...), or the
// libpcap status name as code (PCAP_ERROR_NO_SUCH_DEVICE, ...).
Napi::Error osError(Napi::Env env, const std::string& call, const char* syscall, const std::string& device,
                    const std::string& text, int errnum, const char* pcapCode = nullptr) {
  Napi::Error e = gwc::SystemCallError(env, call + ": " + syscall + "(" + device + "): " + text, syscall, errnum);
  if (errnum == 0 && pcapCode) {
    e.Set("code", Napi::String::New(env, pcapCode));
  }
  return e;
}

const char* pcapStatusName(int status) {
  switch (status) {
    case PCAP_ERROR: return "PCAP_ERROR";
    case PCAP_ERROR_BREAK: return "PCAP_ERROR_BREAK";
    case PCAP_ERROR_NOT_ACTIVATED: return "PCAP_ERROR_NOT_ACTIVATED";
    case PCAP_ERROR_ACTIVATED: return "PCAP_ERROR_ACTIVATED";
    case PCAP_ERROR_NO_SUCH_DEVICE: return "PCAP_ERROR_NO_SUCH_DEVICE";
    case PCAP_ERROR_RFMON_NOTSUP: return "PCAP_ERROR_RFMON_NOTSUP";
    case PCAP_ERROR_NOT_RFMON: return "PCAP_ERROR_NOT_RFMON";
    case PCAP_ERROR_PERM_DENIED: return "PCAP_ERROR_PERM_DENIED";
    case PCAP_ERROR_IFACE_NOT_UP: return "PCAP_ERROR_IFACE_NOT_UP";
    default: return "PCAP_ERROR";
  }
}

[[noreturn]] void throwType(Napi::Env env, const std::string& msg) { throw Napi::TypeError::New(env, msg); }

uint32_t argUint(const Napi::CallbackInfo& info, size_t i, const char* name, uint32_t min, uint32_t max) {
  if (info.Length() <= i || !info[i].IsNumber()) throwType(info.Env(), std::string("new Capture: ") + name + " must be a number");
  const double d = info[i].As<Napi::Number>().DoubleValue();
  if (!(d >= min && d <= max) || d != static_cast<double>(static_cast<uint64_t>(d)))
    throw Napi::RangeError::New(info.Env(), std::string("new Capture: ") + name + " must be an integer " +
                                                std::to_string(min) + ".." + std::to_string(max));
  return static_cast<uint32_t>(d);
}

}  // namespace

Napi::Function CaptureWrap::Init(Napi::Env env) {
  return DefineClass(env, "Capture",
                     {
                         InstanceMethod<&CaptureWrap::Start>("start"),
                         InstanceMethod<&CaptureWrap::Close>("close"),
                         InstanceMethod<&CaptureWrap::Inject>("inject"),
                         InstanceMethod<&CaptureWrap::Stats>("stats"),
                         InstanceAccessor<&CaptureWrap::LinkType>("linkType"),
                     });
}

CaptureWrap::CaptureWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<CaptureWrap>(info) {
  Napi::Env env = info.Env();
  const std::string call = "new Capture";
  if (info.Length() < 1 || !info[0].IsString()) throwType(env, call + ": device must be an interface name string");
  device_ = info[0].As<Napi::String>().Utf8Value();
  FilterHandle* fh = info.Length() > 1 ? FilterHandle::from(env, info[1]) : nullptr;
  if (!fh) throwType(env, call + ": filter must be a native Filter object");
  if (info.Length() < 3 || !info[2].IsString()) throwType(env, call + ": bpf must be a string ('' for none)");
  const std::string bpf = info[2].As<Napi::String>().Utf8Value();
  const uint32_t snaplen = argUint(info, 3, "snaplen", 64, 262144);
  if (info.Length() < 5 || !info[4].IsBoolean()) throwType(env, call + ": promiscuous must be a boolean");
  const bool promisc = info[4].As<Napi::Boolean>().Value();
  const uint32_t bufferBytes = argUint(info, 5, "bufferBytes", 65536, 1u << 30);
  maxBatch_ = argUint(info, 6, "maxBatch", 1, 65536);

  char errbuf[PCAP_ERRBUF_SIZE] = {0};
  pcap_ = pcap_create(device_.c_str(), errbuf);
  if (!pcap_) throw osError(env, call, "pcap_create", device_, errbuf, 0);
  pcap_set_snaplen(pcap_, static_cast<int>(snaplen));
  pcap_set_promisc(pcap_, promisc ? 1 : 0);
  pcap_set_immediate_mode(pcap_, 1);
  pcap_set_buffer_size(pcap_, static_cast<int>(bufferBytes));
  const int status = pcap_activate(pcap_);
  if (status < 0) {
    const int errnum = status == PCAP_ERROR_PERM_DENIED ? EPERM : 0;
    std::string text = pcap_statustostr(status);
    const char* detail = pcap_geterr(pcap_);
    if (detail && *detail) text += std::string(": ") + detail;
    ClosePcap();
    throw osError(env, call, "pcap_activate", device_, text, errnum, pcapStatusName(status));
  }
  linkType_ = pcap_datalink(pcap_);
  if (linkType_ != DLT_EN10MB) {
    const char* name = pcap_datalink_val_to_name(linkType_);
    ClosePcap();
    throw Napi::Error::New(env, call + ": " + device_ + " has link type " + (name ? name : "?") +
                                    "; Capture classifies Ethernet (EN10MB) frames only");
  }
  if (!bpf.empty()) {
    struct bpf_program prog;
    if (pcap_compile(pcap_, &prog, bpf.c_str(), 1, PCAP_NETMASK_UNKNOWN) < 0) {
      const std::string text = std::string(pcap_geterr(pcap_)) + " (expression: " + bpf + ")";
      ClosePcap();
      throw osError(env, call, "pcap_compile", device_, text, 0, "PCAP_ERROR");
    }
    const int rc = pcap_setfilter(pcap_, &prog);
    pcap_freecode(&prog);
    if (rc < 0) {
      const std::string text = pcap_geterr(pcap_);
      const int errnum = errno;
      ClosePcap();
      throw osError(env, call, "pcap_setfilter", device_, text, errnum);
    }
  }
  if (pcap_setnonblock(pcap_, 1, errbuf) < 0) {
    const int errnum = errno;
    ClosePcap();
    throw osError(env, call, "pcap_setnonblock", device_, errbuf, errnum);
  }
  fd_ = pcap_get_selectable_fd(pcap_);
  if (fd_ < 0) {
    ClosePcap();
    throw Napi::Error::New(env, call + ": " + device_ + " has no selectable file descriptor");
  }
  filter_ = &fh->filter();
  filterRef_ = Napi::Persistent(info[1].As<Napi::Object>());
}

CaptureWrap::~CaptureWrap() {
  StopPolling();
  ClosePcap();
}

void CaptureWrap::CheckOpen(Napi::Env env, const char* call) const {
  if (!pcap_) throw Napi::Error::New(env, std::string(call) + ": the capture on " + device_ + " is closed");
}

// start(onBatch, onError)
Napi::Value CaptureWrap::Start(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env, "Capture.start");
  if (poll_) throw Napi::Error::New(env, "Capture.start: the capture on " + device_ + " is already started");
  if (info.Length() < 2 || !info[0].IsFunction() || !info[1].IsFunction())
    throwType(env, "Capture.start: onBatch and onError must be functions");
  onBatch_ = Napi::Persistent(info[0].As<Napi::Function>());
  onError_ = Napi::Persistent(info[1].As<Napi::Function>());
  asyncContext_ = std::make_unique<Napi::AsyncContext>(env, "gwcluster:capture");
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || !loop)
    throw Napi::Error::New(env, "Capture.start: no libuv event loop");
  poll_ = new uv_poll_t;
  poll_->data = this;
  int rc = uv_poll_init(loop, poll_, fd_);
  if (rc == 0) rc = uv_poll_start(poll_, UV_READABLE, &CaptureWrap::OnReadable);
  if (rc != 0) {
    uv_close(reinterpret_cast<uv_handle_t*>(poll_), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
    poll_ = nullptr;
    throw osError(env, "Capture.start", "uv_poll_start", device_, uv_strerror(rc), -rc);
  }
  Ref();  // stay alive while polling
  return env.Undefined();
}

void CaptureWrap::StopPolling() {
  if (!poll_) return;
  uv_poll_stop(poll_);
  uv_close(reinterpret_cast<uv_handle_t*>(poll_), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
  poll_ = nullptr;
  Unref();
}

void CaptureWrap::ClosePcap() {
  if (pcap_) pcap_close(pcap_);
  pcap_ = nullptr;
  fd_ = -1;
}

Napi::Value CaptureWrap::Close(const Napi::CallbackInfo& info) {
  StopPolling();  // before pcap_close: the fd leaves epoll first
  ClosePcap();
  onBatch_.Reset();
  onError_.Reset();
  return info.Env().Undefined();
}

void CaptureWrap::OnReadable(uv_poll_t* handle, int status, int /*events*/) {
  auto* self = static_cast<CaptureWrap*>(handle->data);
  Napi::HandleScope scope(self->Env());
  if (status < 0) {
    self->Fail("uv_poll", uv_strerror(status));
    return;
  }
  self->Drain();
}

void CaptureWrap::OnFrame(u_char* user, const struct pcap_pkthdr* h, const u_char* bytes) {
  auto* self = reinterpret_cast<CaptureWrap*>(user);
  Classification c;
  const Verdict v = self->filter_->verdict(bytes, h->caplen, true, &c);
  self->frames_.insert(self->frames_.end(), bytes, bytes + h->caplen);
  self->offsets_.push_back(static_cast<uint32_t>(self->frames_.size()));
  self->verdicts_.push_back(static_cast<uint8_t>(v));
  self->units_.push_back(c.unit);
}

// Up to 16 batches per wake-up, so a flood cannot starve the rest of the event loop (uv_poll is
// level-triggered: what is left wakes us again).
void CaptureWrap::Drain() {
  for (int round = 0; round < 16 && pcap_; ++round) {
    frames_.clear();
    offsets_.assign(1, 0);
    verdicts_.clear();
    units_.clear();
    while (verdicts_.size() < maxBatch_) {
      const int n = pcap_dispatch(pcap_, static_cast<int>(maxBatch_ - verdicts_.size()), &CaptureWrap::OnFrame,
                                  reinterpret_cast<u_char*>(this));
      if (n == PCAP_ERROR) {
        if (!verdicts_.empty()) Deliver();
        Fail("pcap_dispatch", pcap_ ? pcap_geterr(pcap_) : "closed");
        return;
      }
      if (n <= 0) break;
    }
    if (verdicts_.empty()) return;
    const bool full = verdicts_.size() >= maxBatch_;
    Deliver();
    if (!full) return;
  }
}

void CaptureWrap::Deliver() {
  Napi::Env env = Env();
  if (onBatch_.IsEmpty()) return;
  const size_t n = verdicts_.size();
  Napi::Object batch = Napi::Object::New(env);
  batch.Set("frames", Napi::Buffer<uint8_t>::Copy(env, frames_.data(), frames_.size()));
  auto offsets = Napi::Uint32Array::New(env, n + 1);
  std::memcpy(offsets.Data(), offsets_.data(), sizeof(uint32_t) * (n + 1));
  auto verdicts = Napi::Uint8Array::New(env, n);
  std::memcpy(verdicts.Data(), verdicts_.data(), n);
  auto units = Napi::Uint16Array::New(env, n);
  std::memcpy(units.Data(), units_.data(), sizeof(uint16_t) * n);
  batch.Set("offsets", offsets);
  batch.Set("verdicts", verdicts);
  batch.Set("units", units);
  delivered_ += n;
  try {
    onBatch_.MakeCallback(Value(), {batch}, *asyncContext_);
  } catch (const Napi::Error& e) {
    napi_fatal_exception(env, e.Value());  // as an uncaught exception of the callback
  }
}

void CaptureWrap::Fail(const char* syscall, const std::string& message) {
  Napi::Env env = Env();
  Napi::Error err = osError(env, "Capture", syscall, device_, message, 0);
  Napi::FunctionReference onError = std::move(onError_);
  StopPolling();
  if (!onError.IsEmpty()) {
    try {
      onError.MakeCallback(Value(), {err.Value()}, *asyncContext_);
    } catch (const Napi::Error& e) {
      napi_fatal_exception(env, e.Value());
    }
  }
}

Napi::Value CaptureWrap::Inject(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env, "Capture.inject");
  if (info.Length() < 1 || !info[0].IsTypedArray() ||
      info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
    throwType(env, "Capture.inject: frame must be a Buffer or Uint8Array holding an Ethernet frame");
  Napi::Uint8Array frame = info[0].As<Napi::Uint8Array>();
  errno = 0;
  const int n = pcap_inject(pcap_, frame.Data(), frame.ByteLength());
  if (n < 0) {
    const int errnum = errno;
    throw osError(env, "Capture.inject", "pcap_inject", device_, pcap_geterr(pcap_), errnum);
  }
  ++injected_;
  return Napi::Number::New(env, n);
}

Napi::Value CaptureWrap::Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env, "Capture.stats");
  struct pcap_stat ps;
  std::memset(&ps, 0, sizeof ps);
  if (pcap_stats(pcap_, &ps) < 0) throw osError(env, "Capture.stats", "pcap_stats", device_, pcap_geterr(pcap_), 0);
  Napi::Object r = Napi::Object::New(env);
  r.Set("received", Napi::Number::New(env, ps.ps_recv));
  r.Set("droppedByKernel", Napi::Number::New(env, ps.ps_drop));
  r.Set("droppedByInterface", Napi::Number::New(env, ps.ps_ifdrop));
  r.Set("delivered", Napi::Number::New(env, static_cast<double>(delivered_)));
  r.Set("injected", Napi::Number::New(env, static_cast<double>(injected_)));
  return r;
}

Napi::Value CaptureWrap::LinkType(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), linkType_);
}

}  // namespace gwc

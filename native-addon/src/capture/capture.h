// libpcap capture on one Ethernet interface, classified by a Filter and delivered to JS in batches.
//
// Threading: none of its own. The pcap handle is non-blocking and immediate-mode; a uv_poll on
// pcap_get_selectable_fd wakes the JS thread, which drains up to maxBatch frames per delivery,
// runs them through the Filter (verdicts, counters, hold queue: the same thread that owns the
// Filter), and calls onBatch. A batch's buffers are copies: JS may keep them.
#pragma once

#include <napi.h>
#include <pcap/pcap.h>
#include <uv.h>

#include <memory>
#include <string>
#include <vector>

#include "filter/work_unit_filter.h"

namespace gwc {

class CaptureWrap : public Napi::ObjectWrap<CaptureWrap> {
 public:
  static Napi::Function Init(Napi::Env env);
  // new Capture(device, filter, bpf, snaplen, promiscuous, bufferBytes, maxBatch)
  explicit CaptureWrap(const Napi::CallbackInfo& info);
  ~CaptureWrap() override;

 private:
  Napi::Value Start(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value Inject(const Napi::CallbackInfo& info);
  Napi::Value Stats(const Napi::CallbackInfo& info);
  Napi::Value LinkType(const Napi::CallbackInfo& info);

  static void OnReadable(uv_poll_t* handle, int status, int events);
  static void OnFrame(u_char* user, const struct pcap_pkthdr* h, const u_char* bytes);
  void Drain();
  void Deliver();
  void Fail(const char* syscall, const std::string& message);
  void StopPolling();
  void ClosePcap();
  void CheckOpen(Napi::Env env, const char* call) const;

  std::string device_;
  pcap_t* pcap_ = nullptr;
  int fd_ = -1;
  int linkType_ = 0;
  uv_poll_t* poll_ = nullptr;
  WorkUnitFilter* filter_ = nullptr;
  Napi::ObjectReference filterRef_;  // keeps the Filter alive as long as the capture
  Napi::FunctionReference onBatch_;
  Napi::FunctionReference onError_;
  std::unique_ptr<Napi::AsyncContext> asyncContext_;
  uint32_t maxBatch_ = 256;
  // The batch being filled.
  std::vector<uint8_t> frames_;
  std::vector<uint32_t> offsets_;
  std::vector<uint8_t> verdicts_;
  std::vector<uint16_t> units_;
  uint64_t delivered_ = 0;
  uint64_t injected_ = 0;
};

}  // namespace gwc

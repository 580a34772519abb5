// The JS object of the PacketEngine (packet_engine.h). Lifecycle: the constructor binds the queue and
// starts the engine thread; close() joins the thread and releases the event function (idempotent);
// the environment's cleanup hook stops the thread on process exit; the finalizer does the same.
#pragma once

#include <napi.h>

#include <memory>

#include "engine/packet_engine.h"

namespace gwc {

class EngineWrap : public Napi::ObjectWrap<EngineWrap> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit EngineWrap(const Napi::CallbackInfo& info);
  ~EngineWrap() override;

 private:
  static void CallJs(Napi::Env env, Napi::Function fn, EngineWrap* self, EngineEvent* e);
  using Tsfn = Napi::TypedThreadSafeFunction<EngineWrap, EngineEvent, &EngineWrap::CallJs>;
  static void OnEnvCleanup(void* self);

  Napi::Value SetOwner(const Napi::CallbackInfo& info);
  Napi::Value SetOwners(const Napi::CallbackInfo& info);
  Napi::Value SetTable(const Napi::CallbackInfo& info);
  Napi::Value Owners(const Napi::CallbackInfo& info);
  Napi::Value SetRole(const Napi::CallbackInfo& info);
  Napi::Value SetSlotMac(const Napi::CallbackInfo& info);
  Napi::Value SetClusterMac(const Napi::CallbackInfo& info);
  Napi::Value SetAnswering(const Napi::CallbackInfo& info);
  Napi::Value Hold(const Napi::CallbackInfo& info);
  Napi::Value IsHeld(const Napi::CallbackInfo& info);
  Napi::Value Release(const Napi::CallbackInfo& info);
  Napi::Value DropHeld(const Napi::CallbackInfo& info);
  Napi::Value Announce(const Napi::CallbackInfo& info);
  Napi::Value Counters(const Napi::CallbackInfo& info);
  Napi::Value Stats(const Napi::CallbackInfo& info);
  Napi::Value Ref(const Napi::CallbackInfo& info);
  Napi::Value Unref(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value AttachSessions(const Napi::CallbackInfo& info);
  Napi::Value AttachFlowOffloads(const Napi::CallbackInfo& info);

  void CheckOpen(Napi::Env env, const char* call) const;
  void Shutdown(bool releaseTsfn);

  std::unique_ptr<PacketEngine> engine_;
  Napi::ObjectReference sessionsRef_;  // keeps the attached SessionTable alive
  Tsfn tsfn_;
  uint16_t queueNum_ = 0;
  bool closed_ = false;
  bool cleanupHook_ = false;
};

}  // namespace gwc

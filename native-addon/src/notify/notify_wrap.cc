// sdNotify(address: string, state: string): undefined. Argument errors are TypeErrors; a failed send
// throws an Error with syscall, errno and code (system_call_error.h).
#include "notify/notify_wrap.h"

#include "common/system_call_error.h"
#include "notify/notify.h"

namespace gwc {

namespace {

Napi::Value SdNotify(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 2 || !info[0].IsString() || !info[1].IsString()) throw Napi::TypeError::New(env, "sdNotify(address, state): two strings");
  const std::string address = info[0].As<Napi::String>().Utf8Value();
  const std::string state = info[1].As<Napi::String>().Utf8Value();
  const char* call = nullptr;
  const int err = notify::send(address, state, &call);
  if (err != 0) throw SystemCallError(env, std::string("sdNotify: ") + call + " to " + address + ": " + std::strerror(err), call, err);
  return env.Undefined();
}

}  // namespace

void InitNotify(Napi::Env env, Napi::Object exports) { exports.Set("sdNotify", Napi::Function::New(env, SdNotify, "sdNotify")); }

}  // namespace gwc

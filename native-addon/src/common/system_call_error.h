// The JavaScript Error for a failed system call, shared by the addon's components: the message, and the
// properties syscall, errno and code ("EPERM", ...) when an errno applies.
#pragma once

#include <napi.h>

#include <cstring>
#include <string>

namespace gwc {

inline Napi::Error SystemCallError(Napi::Env env, const std::string& message, const std::string& syscall, int errnum) {
  Napi::Error e = Napi::Error::New(env, message);
  e.Set("syscall", Napi::String::New(env, syscall));
  if (errnum != 0) {
    e.Set("errno", Napi::Number::New(env, errnum));
    const char* name = strerrorname_np(errnum);
    if (name) e.Set("code", Napi::String::New(env, name));
  }
  return e;
}

}  // namespace gwc

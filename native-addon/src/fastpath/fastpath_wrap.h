// The fast path's N-API registration (FastPath class, hasFastPath, fastPathConstants).
#pragma once

#include <napi.h>

namespace gwc {

void InitFastPath(Napi::Env env, Napi::Object exports);

}  // namespace gwc

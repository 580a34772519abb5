// N-API glue of the service manager notification (notify.h). See notify.ts for the typed face.
#pragma once

#include <napi.h>

namespace gwc {

// Adds sdNotify(address, state) to exports.
void InitNotify(Napi::Env env, Napi::Object exports);

}  // namespace gwc

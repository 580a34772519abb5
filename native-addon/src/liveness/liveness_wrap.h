// N-API glue of fast liveness (liveness.h): class Liveness, events to JS through a ThreadSafeFunction.
// See liveness.ts for the typed face.
#pragma once

#include <napi.h>

namespace gwc {

// Adds Liveness and hasLiveness to exports.
void InitLiveness(Napi::Env env, Napi::Object exports);

}  // namespace gwc

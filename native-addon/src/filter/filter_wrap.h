// The filter's N-API registration, and how other native classes (Capture) reach the WorkUnitFilter
// inside a JS Filter object.
#pragma once

#include <napi.h>

#include "filter/work_unit_filter.h"

namespace gwc {

// Registers workUnitOfKey, classifyBatch, classifyBatchDetailed and the Filter class on `exports`.
// Must run before any other component's Init that unwraps a Filter (FilterHandle::from).
void InitFilter(Napi::Env env, Napi::Object exports);

class FilterHandle {
 public:
  virtual ~FilterHandle() = default;
  virtual WorkUnitFilter& filter() = 0;

  // Set by the module's Init: the unwrapper. The Filter constructor of each environment (for the
  // instanceof check) is that environment's instance data.
  static inline FilterHandle* (*unwrap)(Napi::Object) = nullptr;

  // The FilterHandle of `v`, or nullptr when `v` is not a native Filter.
  static FilterHandle* from(Napi::Env env, Napi::Value v) {
    auto* ctor = env.GetInstanceData<Napi::FunctionReference>();
    if (!ctor || !unwrap || !v.IsObject()) return nullptr;
    Napi::Object o = v.As<Napi::Object>();
    if (!o.InstanceOf(ctor->Value())) return nullptr;
    return unwrap(o);
  }
};

}  // namespace gwc

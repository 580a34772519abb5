// Module init of gwcluster_filter.node: each component registers its own exports. Components built
// only when their library is present (pcap, libnetfilter_queue, libbpf + clang, libsodium) report it
// through hasPcap/hasEngine/hasFastPath/hasTunnel.
#include <napi.h>

#include "filter/filter_wrap.h"
#include "notify/notify_wrap.h"
#include "sessions/session_wrap.h"

#ifdef GWC_HAVE_PCAP
#include "capture/capture.h"
#endif

#ifdef GWC_HAVE_NFQ
#include "engine/engine_wrap.h"
#endif

#ifdef GWC_HAVE_FASTPATH
#include "fastpath/fastpath_wrap.h"
#endif

#ifdef GWC_HAVE_SODIUM
#include "tunnel/tunnel_wrap.h"
#include "liveness/liveness_wrap.h"
#endif

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  gwc::InitFilter(env, exports);
#ifdef GWC_HAVE_PCAP
  exports.Set("Capture", gwc::CaptureWrap::Init(env));
  exports.Set("hasPcap", Napi::Boolean::New(env, true));
#else
  exports.Set("hasPcap", Napi::Boolean::New(env, false));
#endif
#ifdef GWC_HAVE_NFQ
  exports.Set("PacketEngine", gwc::EngineWrap::Init(env));
  exports.Set("hasEngine", Napi::Boolean::New(env, true));
#else
  exports.Set("hasEngine", Napi::Boolean::New(env, false));
#endif
#ifdef GWC_HAVE_FASTPATH
  gwc::InitFastPath(env, exports);
#else
  exports.Set("hasFastPath", Napi::Boolean::New(env, false));
#endif
#ifdef GWC_HAVE_SODIUM
  gwc::InitTunnel(env, exports);
  gwc::InitLiveness(env, exports);
#else
  exports.Set("hasTunnel", Napi::Boolean::New(env, false));
  exports.Set("hasLiveness", Napi::Boolean::New(env, false));
#endif
  gwc::InitSessionTable(env, exports);
  gwc::InitNotify(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(gwcluster_filter, Init)

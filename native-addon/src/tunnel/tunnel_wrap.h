// N-API glue of the tunnel data path: class TunnelTransport (transport.h: keypairs, batch encrypt and
// decrypt, counters) and class TunnelDevice (tunnel_device.h: UDP socket + TUN device + thread, events to
// JS through a ThreadSafeFunction). See tunnel.ts for the typed face.
#pragma once

#include <napi.h>

namespace gwc {

// Adds TunnelTransport, TunnelDevice and hasTunnel to exports.
void InitTunnel(Napi::Env env, Napi::Object exports);

}  // namespace gwc

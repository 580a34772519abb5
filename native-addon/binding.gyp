{
  "variables": {
    # libpcap is optional at build time: without pcap-config (Debian libpcap-dev) the addon is built
    # without Capture and reports hasPcap = false. scripts/apt-packages.txt installs it.
    "have_pcap%": "<!(command -v pcap-config >/dev/null 2>&1 && echo 1 || echo 0)",
    # libnetfilter_queue is optional too: without its headers (Debian libnetfilter-queue-dev) the addon
    # is built without PacketEngine and reports hasEngine = false.
    "have_nfq%": "<!(test -e /usr/include/libnetfilter_queue/libnetfilter_queue.h && echo 1 || echo 0)",
    # The kernel fast path needs clang (the BPF program) and libbpf (Debian libbpf-dev): without them the
    # addon is built without FastPath and reports hasFastPath = false.
    "have_bpf%": "<!(command -v clang >/dev/null 2>&1 && test -e /usr/include/bpf/libbpf.h && echo 1 || echo 0)",
    # The WireGuard data path (src/tunnel/) needs libsodium (Debian libsodium-dev): without it the addon
    # is built without TunnelTransport/TunnelDevice and reports hasTunnel = false.
    "have_sodium%": "<!(test -e /usr/include/sodium.h && echo 1 || echo 0)"
  },
  "targets": [
    {
      "target_name": "gwcluster_filter",
      "sources": [
        "src/common/addon.cc",
        "src/filter/filter.cc", "src/filter/hold_queue.cc", "src/filter/work_unit_filter.cc", "src/filter/filter_wrap.cc",
        "src/sessions/session.cc", "src/sessions/parsed_packet.cc", "src/sessions/tcp_tracking.cc",
        "src/sessions/session_table.cc", "src/sessions/session_wrap.cc",
        "src/notify/notify.cc", "src/notify/notify_wrap.cc"
      ],
      # Includes name the component: #include "filter/filter.h".
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")", "src"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED", "NAPI_CPP_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions", "-O3"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17", "-O3"],
      "cflags": ["-O2", "-Wall", "-Wextra"],
      "cflags_cc": ["-std=c++17", "-O2", "-fexceptions", "-Wall", "-Wextra"],
      "conditions": [
        ["have_pcap==1", {
          "sources": ["src/capture/capture.cc"],
          "defines": ["GWC_HAVE_PCAP"],
          "libraries": ["<!@(pcap-config --libs 2>/dev/null)"]
        }],
        ["have_nfq==1", {
          "sources": ["src/engine/packet_engine.cc", "src/engine/arp.cc", "src/engine/forwarding.cc",
                      "src/engine/net_interface.cc", "src/engine/engine_wrap.cc"],
          "defines": ["GWC_HAVE_NFQ"],
          "libraries": ["-lnetfilter_queue", "-lnfnetlink", "-lpthread"]
        }],
        ["have_sodium==1", {
          "sources": ["src/tunnel/transport.cc", "src/tunnel/tunnel_device.cc", "src/tunnel/tunnel_wrap.cc",
                      "src/liveness/liveness.cc", "src/liveness/liveness_wrap.cc"],
          "defines": ["GWC_HAVE_SODIUM"],
          "libraries": ["-lsodium", "-lpthread"]
        }],
        ["have_bpf==1", {
          "sources": ["src/fastpath/fastpath_owner.cc", "src/fastpath/flow_map.cc", "src/fastpath/fastpath_wrap.cc"],
          "defines": ["GWC_HAVE_FASTPATH"],
          "libraries": ["-lbpf"],
          "dependencies": ["gwcluster_fastpath_bpf"]
        }]
      ]
    }
  ],
  "conditions": [
    ["have_bpf==1", {
      "targets": [
        {
          # The BPF object the FastPath loads: build/Release/gwcluster_fastpath.bpf.o.
          "target_name": "gwcluster_fastpath_bpf",
          "type": "none",
          "actions": [
            {
              "action_name": "fastpath_bpf_object",
              "inputs": [
                "src/fastpath/build-bpf.sh",
                "src/fastpath/fastpath_kern.c",
                "src/fastpath/packet_parsing.h",
                "src/fastpath/fastpath_maps.h",
                "src/fastpath/fastpath_structs.h",
                "src/fastpath/fastpath_consts.h"
              ],
              "outputs": ["<(PRODUCT_DIR)/gwcluster_fastpath.bpf.o"],
              "action": ["sh", "src/fastpath/build-bpf.sh", "src/fastpath/fastpath_kern.c", "<(PRODUCT_DIR)/gwcluster_fastpath.bpf.o"]
            }
          ]
        }
      ]
    }]
  ]
}

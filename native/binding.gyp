{
  "targets": [
    {
      "target_name": "loch_native",
      "sources": ["src/addon.cc", "src/ring.cc", "src/ring_tls.cc", "src/tls_shelf.cc", "src/net.cc", "src/memory.cc", "src/thread.cc", "src/siv.cc", "src/head_scan.cc", "src/tls_addon.cc", "src/tls_engine.cc", "src/tls13_record.cc", "src/gateway_json.cc", "src/dir_watch.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_DISABLE_CPP_EXCEPTIONS", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS", "NAPI_VERSION=8", "OPENSSL_API_COMPAT=0x30000000L", "LOCH_TLS_EMBEDDED"],
      "cflags_cc": ["-O2", "-std=c++17", "-fno-exceptions", "-fvisibility=hidden", "-Wall", "-Wextra"],
      "libraries": ["-luring"]
    },
    {
      "target_name": "loch_tls",
      "sources": ["src/tls_addon.cc", "src/tls_engine.cc", "src/tls13_record.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_DISABLE_CPP_EXCEPTIONS", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS", "NAPI_VERSION=8", "OPENSSL_API_COMPAT=0x30000000L"],
      "cflags_cc": ["-O2", "-std=c++17", "-fno-exceptions", "-fvisibility=hidden", "-Wall", "-Wextra"],
      "libraries": []
    }
  ]
}

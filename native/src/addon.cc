// Placeholder translation unit; the ring and TLS engine land in their own files.
#include <napi.h>
static Napi::Object Init(Napi::Env env, Napi::Object exports) { return exports; }
NODE_API_MODULE(loch_native, Init)

// What to do after a napi_make_callback from the loop failed: either the callback threw, and the
// error is reported as uncaught (napi_fatal_exception: 'uncaughtException', else the process
// exits), as for any callback of the loop; or the environment can no longer run JavaScript (a
// worker being terminated), and there is nothing to report. The one copy for the addon's loop
// callbacks (ring.cc's completions and flush, dir_watch.cc's events).
#pragma once

#include <node_api.h>

namespace loch {

// True when an error was reported; false when the environment cannot run JavaScript any more.
inline bool ReportCallbackFailure(napi_env env) {
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  napi_value error = nullptr;
  if (pending) napi_get_and_clear_last_exception(env, &error);
  napi_valuetype type = napi_undefined;
  if (error != nullptr) napi_typeof(env, error, &type);
  if (type == napi_undefined) return false;
  napi_fatal_exception(env, error);
  return true;
}

}  // namespace loch

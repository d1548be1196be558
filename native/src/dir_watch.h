// A directory watch that hears changes of a directory's entries, not every write to its files:
// inotify with IN_CLOSE_WRITE instead of IN_MODIFY (libuv's, and so node:fs watch's, directory
// watch asks for IN_MODIFY, which wakes the loop at every write to any file in the directory,
// such as an access log kept beside the config). For @loch/proxy's reload on a changed config,
// certificate or key. Not recursive, not a file watch, not debounced. See dir_watch.cc.
#pragma once

#include <napi.h>

namespace loch::dirwatch {
// Adds `dirWatch: { open(dir, onEvent) }` to exports (native/README.md, "Directory watch").
void Register(Napi::Env env, Napi::Object exports);
}  // namespace loch::dirwatch

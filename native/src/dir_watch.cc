// Directory watch on inotify, read on the calling thread's libuv loop (a uv_poll on the inotify
// descriptor, unref'd: it never keeps the process alive). One inotify instance per watch: loch
// watches a handful of directories, and an instance of its own makes close() final at once.
//
// open(dir, onEvent) -> { close() } | { errno, syscall }
//   onEvent(kind, name): kind is 'written' (a file opened for writing was closed: `cat >`, cp
//   over, an editor saving in place), 'attrib' (chmod, chown, utimes, and the link count of a
//   file replaced by a rename), 'created', 'deleted', 'moved-from', 'moved-to' (name: the
//   entry's name in the directory), 'overflow' (the kernel's queue overflowed: any entry may have
//   changed; name null) or 'gone' (the directory itself was removed, renamed or unmounted; name
//   null; the last event of the watch). Writes that do not close the file (appends to an open
//   log) are not heard. No event is delivered after close() (idempotent) or after 'gone'.
//   Without close(), the watch lasts until the environment (thread) is torn down.
#include "dir_watch.h"

#include <sys/inotify.h>
#include <unistd.h>
#include <uv.h>

#include <cerrno>
#include <cstring>

namespace loch::dirwatch {
namespace {

// Everything a directory watch notifies; IN_MODIFY left out on purpose (see the header).
// IN_EXCL_UNLINK: a file unlinked while still open (a rotated log) is no longer the directory's.
constexpr uint32_t kMask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | IN_ATTRIB |
                           IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | IN_EXCL_UNLINK;

// One watch. Owned by two parties: the open uv handle (until its close callback) and the
// JavaScript close function (until its finalizer); the last one to let go deletes it.
struct Watch {
  uv_poll_t poll;
  napi_env env = nullptr;
  int fd = -1;
  napi_ref callback = nullptr;
  napi_async_context async = nullptr;
  napi_async_cleanup_hook_handle hook = nullptr;
  bool closing = false;  // close() or teardown began: nothing more is delivered
  bool ended = false;    // 'gone' was delivered
  int owners = 2;
};

void Release(Watch* w) {
  if (--w->owners == 0) delete w;
}

void OnClosed(uv_handle_t* handle) {
  Watch* w = static_cast<Watch*>(handle->data);
  close(w->fd);
  w->fd = -1;
  if (w->hook != nullptr) {
    napi_remove_async_cleanup_hook(w->hook);
    w->hook = nullptr;
  }
  Release(w);
}

// Stops delivery now and frees the descriptor once libuv let go of it. Needs a live env (the
// references are deleted here): called from close() and from the teardown hook.
void CloseWatch(Watch* w) {
  if (w->closing) return;
  w->closing = true;
  uv_poll_stop(&w->poll);
  if (w->callback != nullptr) napi_delete_reference(w->env, w->callback);
  w->callback = nullptr;
  if (w->async != nullptr) napi_async_destroy(w->env, w->async);
  w->async = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(&w->poll), OnClosed);
}

// Environment teardown (worker exit, process exit): closes the watch while JavaScript values can
// still be released; the environment waits for the close callback, which removes this hook.
void OnTeardown(napi_async_cleanup_hook_handle hook, void* arg) {
  (void)hook;
  CloseWatch(static_cast<Watch*>(arg));
}

const char* KindOf(uint32_t mask) {
  if (mask & IN_Q_OVERFLOW) return "overflow";
  if (mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT | IN_IGNORED)) return "gone";
  if (mask & IN_MOVED_TO) return "moved-to";
  if (mask & IN_MOVED_FROM) return "moved-from";
  if (mask & IN_CREATE) return "created";
  if (mask & IN_DELETE) return "deleted";
  if (mask & IN_CLOSE_WRITE) return "written";
  if (mask & IN_ATTRIB) return "attrib";
  return nullptr;
}

// Calls onEvent(kind, name). False when the environment can no longer run JavaScript.
bool Deliver(Watch* w, const char* kind, const inotify_event* ev) {
  napi_env env = w->env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value argv[2];
  napi_create_string_utf8(env, kind, NAPI_AUTO_LENGTH, &argv[0]);
  bool named = ev->len > 0 && !(ev->mask & (IN_Q_OVERFLOW | IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED | IN_UNMOUNT));
  if (named)
    napi_create_string_utf8(env, ev->name, strnlen(ev->name, ev->len), &argv[1]);
  else
    napi_get_null(env, &argv[1]);
  napi_value fn = nullptr;
  napi_value recv = nullptr;
  napi_get_reference_value(env, w->callback, &fn);
  napi_get_global(env, &recv);
  napi_value result;
  bool ok = true;
  napi_status st = napi_make_callback(env, w->async, recv, fn, 2, argv, &result);
  if (st != napi_ok) {
    // The callback threw (reported as uncaught, like any callback from the loop), or the
    // environment is going away (nothing to report).
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    napi_value error = nullptr;
    if (pending) napi_get_and_clear_last_exception(env, &error);
    napi_valuetype type = napi_undefined;
    if (error != nullptr) napi_typeof(env, error, &type);
    if (type == napi_undefined)
      ok = false;
    else
      napi_fatal_exception(env, error);
  }
  napi_close_handle_scope(env, scope);
  return ok;
}

void OnPoll(uv_poll_t* handle, int status, int events) {
  (void)status;
  (void)events;
  Watch* w = static_cast<Watch*>(handle->data);
  alignas(inotify_event) char buf[8192];
  // Bounded: a directory that keeps changing must not starve the rest of the loop.
  for (int round = 0; round < 16 && !w->closing && !w->ended; round++) {
    ssize_t n = read(w->fd, buf, sizeof buf);
    if (n <= 0) break;  // EAGAIN: drained
    for (char* p = buf; p < buf + n;) {
      const inotify_event* ev = reinterpret_cast<const inotify_event*>(p);
      p += sizeof(inotify_event) + ev->len;
      // Read to the end of the batch, deliver only while the watch is open (a callback may close it).
      if (w->closing || w->ended) continue;
      const char* kind = KindOf(ev->mask);
      if (kind == nullptr) continue;
      if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT | IN_IGNORED)) {
        w->ended = true;
        uv_poll_stop(&w->poll);
      }
      if (!Deliver(w, kind, ev)) {
        uv_poll_stop(&w->poll);  // the teardown hook closes it
        return;
      }
    }
  }
}

Napi::Value Close(const Napi::CallbackInfo& info) {
  CloseWatch(static_cast<Watch*>(info.Data()));
  return info.Env().Undefined();
}

Napi::Value Open(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsFunction()) {
    Napi::TypeError::New(env, "dirWatch.open(dir: string, onEvent: function)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  auto failure = [&env](int err, const char* syscall) {
    Napi::Object out = Napi::Object::New(env);
    out.Set("errno", Napi::Number::New(env, err));
    out.Set("syscall", syscall);
    return out;
  };
  std::string dir = info[0].As<Napi::String>().Utf8Value();
  int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) return failure(errno, "inotify_init1");
  if (inotify_add_watch(fd, dir.c_str(), kMask) < 0) {
    int err = errno;
    close(fd);
    return failure(err, "inotify_add_watch");
  }
  uv_loop_t* loop = nullptr;
  napi_get_uv_event_loop(env, &loop);
  Watch* w = new Watch();
  w->env = env;
  w->fd = fd;
  w->poll.data = w;
  if (uv_poll_init(loop, &w->poll, fd) != 0) {
    close(fd);
    delete w;
    return failure(EINVAL, "uv_poll_init");
  }
  napi_create_reference(env, info[1], 1, &w->callback);
  napi_async_init(env, Napi::Object::New(env), Napi::String::New(env, "LochDirWatch"), &w->async);
  uv_poll_start(&w->poll, UV_READABLE, OnPoll);
  uv_unref(reinterpret_cast<uv_handle_t*>(&w->poll));
  napi_add_async_cleanup_hook(env, OnTeardown, w, &w->hook);
  Napi::Object handle = Napi::Object::New(env);
  Napi::Function close = Napi::Function::New(env, Close, "close", w);
  close.AddFinalizer([](Napi::Env, Watch* watch) { Release(watch); }, w);
  handle.Set("close", close);
  return handle;
}

}  // namespace

void Register(Napi::Env env, Napi::Object exports) {
  Napi::Object dirWatch = Napi::Object::New(env);
  dirWatch.Set("open", Napi::Function::New(env, Open, "open"));
  exports.Set("dirWatch", dirWatch);
}

}  // namespace loch::dirwatch

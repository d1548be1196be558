// Directory watch on inotify, read on the calling thread's libuv loop. One inotify instance per
// thread (environment), created at the first open(): every watch of the thread is one watch
// descriptor (wd) in it, so the number of watched directories is bounded by
// fs.inotify.max_user_watches, not by max_user_instances (128 by default, per user, shared with
// every other process of the user), as with libuv's node:fs watch. The instance's descriptor is
// read by a uv_poll that is unref'd: a watch never keeps the process or a worker alive.
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
//   Two open() calls for one directory share its wd (inotify gives the same one); each gets the
//   events, and the wd is removed when the last of them closes.
#include "dir_watch.h"

#include <sys/inotify.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <unordered_map>
#include <vector>

#include "callback_failure.h"

namespace loch::dirwatch {
namespace {

// Everything a directory watch notifies; IN_MODIFY left out on purpose (see the header).
// IN_EXCL_UNLINK: a file unlinked while still open (a rotated log) is no longer the directory's.
constexpr uint32_t kMask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | IN_ATTRIB |
                           IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | IN_EXCL_UNLINK;
constexpr uint32_t kSelf = IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT | IN_IGNORED;

struct Thread;

// One open(). Owned by the thread's table while open and by the JavaScript close function until
// its finalizer (and, briefly, by a delivery in progress); the last owner deletes it.
struct Watch {
  Thread* thread = nullptr;  // null once closed or ended
  int wd = -1;
  napi_ref callback = nullptr;
  napi_async_context async = nullptr;
  int owners = 0;
};

void Release(Watch* w) {
  if (--w->owners == 0) delete w;
}

// The thread's inotify instance and its watches by wd.
struct Thread {
  napi_env env = nullptr;
  int fd = -1;
  uv_poll_t poll;
  napi_async_cleanup_hook_handle hook = nullptr;
  std::unordered_map<int, std::vector<Watch*>> byWd;
};

thread_local Thread* current = nullptr;

// Takes `w` out of its thread (no event reaches it from now on) and drops its JavaScript values.
// `removeWd`: remove the kernel's watch when `w` was the wd's last (not after 'gone': the kernel
// removed it, or will with the IN_IGNORED that follows).
void Detach(Watch* w, bool removeWd) {
  Thread* t = w->thread;
  if (t == nullptr) return;
  w->thread = nullptr;
  auto it = t->byWd.find(w->wd);
  if (it != t->byWd.end()) {
    auto& list = it->second;
    list.erase(std::remove(list.begin(), list.end(), w), list.end());
    if (list.empty()) {
      if (removeWd) inotify_rm_watch(t->fd, w->wd);
      t->byWd.erase(it);
    }
  }
  if (w->callback != nullptr) napi_delete_reference(t->env, w->callback);
  w->callback = nullptr;
  if (w->async != nullptr) napi_async_destroy(t->env, w->async);
  w->async = nullptr;
  Release(w);  // the table's ownership
}

const char* KindOf(uint32_t mask) {
  if (mask & IN_Q_OVERFLOW) return "overflow";
  if (mask & kSelf) return "gone";
  if (mask & IN_MOVED_TO) return "moved-to";
  if (mask & IN_MOVED_FROM) return "moved-from";
  if (mask & IN_CREATE) return "created";
  if (mask & IN_DELETE) return "deleted";
  if (mask & IN_CLOSE_WRITE) return "written";
  if (mask & IN_ATTRIB) return "attrib";
  return nullptr;
}

// Calls w's onEvent(kind, name). False when the environment can no longer run JavaScript.
bool Deliver(Watch* w, const char* kind, const inotify_event* ev) {
  napi_env env = w->thread->env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value argv[2];
  napi_create_string_utf8(env, kind, NAPI_AUTO_LENGTH, &argv[0]);
  if (ev->len > 0 && !(ev->mask & (IN_Q_OVERFLOW | kSelf)))
    napi_create_string_utf8(env, ev->name, strnlen(ev->name, ev->len), &argv[1]);
  else
    napi_get_null(env, &argv[1]);
  napi_value fn = nullptr;
  napi_value recv = nullptr;
  napi_get_reference_value(env, w->callback, &fn);
  napi_get_global(env, &recv);
  napi_value result;
  bool ok = napi_make_callback(env, w->async, recv, fn, 2, argv, &result) == napi_ok || ReportCallbackFailure(env);
  napi_close_handle_scope(env, scope);
  return ok;
}

// Delivers one event to the watches of its wd (every watch for an overflow). A callback may close
// any watch, its own included: each is checked just before its turn.
bool Dispatch(Thread* t, const inotify_event* ev) {
  const char* kind = KindOf(ev->mask);
  if (kind == nullptr) return true;
  std::vector<Watch*> targets;
  if (ev->mask & IN_Q_OVERFLOW) {
    for (auto& entry : t->byWd) targets.insert(targets.end(), entry.second.begin(), entry.second.end());
  } else {
    auto it = t->byWd.find(ev->wd);
    if (it == t->byWd.end()) return true;  // closed meanwhile (or its IN_IGNORED after 'gone')
    targets = it->second;
  }
  for (Watch* w : targets) w->owners++;  // alive through the loop whatever the callbacks do
  bool ok = true;
  bool gone = (ev->mask & kSelf) && !(ev->mask & IN_Q_OVERFLOW);
  for (Watch* w : targets) {
    if (ok && w->thread == t) {
      if (gone) {
        // The last event: delivered, then the watch is detached. A close() inside the callback
        // (FilesWatch's does) detaches it first, with an inotify_rm_watch that fails harmlessly
        // (EINVAL) after IN_DELETE_SELF, where the kernel dropped the wd already.
        ok = Deliver(w, kind, ev);
        if (ev->mask & IN_MOVE_SELF) {
          Detach(w, true);  // the kernel keeps watching a moved directory: stop it
        } else {
          Detach(w, false);
        }
      } else {
        ok = Deliver(w, kind, ev);
      }
    }
    Release(w);
  }
  return ok;
}

void OnPoll(uv_poll_t* handle, int status, int events) {
  (void)status;
  (void)events;
  Thread* t = static_cast<Thread*>(handle->data);
  alignas(inotify_event) char buf[8192];
  // Bounded: directories that keep changing must not starve the rest of the loop.
  for (int round = 0; round < 16; round++) {
    ssize_t n = read(t->fd, buf, sizeof buf);
    if (n <= 0) break;  // EAGAIN: drained
    for (char* p = buf; p < buf + n;) {
      const inotify_event* ev = reinterpret_cast<const inotify_event*>(p);
      p += sizeof(inotify_event) + ev->len;
      if (!Dispatch(t, ev)) {
        uv_poll_stop(&t->poll);  // the environment is going away: the teardown hook closes all
        return;
      }
    }
  }
}

// Environment teardown (worker exit, process exit): every watch of the thread is closed while
// JavaScript values can still be released, then the instance; the environment waits for the
// poll handle's close callback, which removes this hook.
void OnTeardown(napi_async_cleanup_hook_handle hook, void* arg) {
  (void)hook;
  Thread* t = static_cast<Thread*>(arg);
  if (current == t) current = nullptr;
  std::vector<Watch*> all;
  for (auto& entry : t->byWd) all.insert(all.end(), entry.second.begin(), entry.second.end());
  for (Watch* w : all) Detach(w, false);
  uv_poll_stop(&t->poll);
  uv_close(reinterpret_cast<uv_handle_t*>(&t->poll), [](uv_handle_t* h) {
    Thread* thread = static_cast<Thread*>(h->data);
    close(thread->fd);
    napi_remove_async_cleanup_hook(thread->hook);
    delete thread;
  });
}

// This thread's instance, made at the first open(); null with *err/*syscall set when it cannot be.
Thread* ThreadOf(napi_env env, int* err, const char** syscall) {
  if (current != nullptr && current->env == env) return current;
  int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) {
    *err = errno;
    *syscall = "inotify_init1";
    return nullptr;
  }
  uv_loop_t* loop = nullptr;
  napi_get_uv_event_loop(env, &loop);
  Thread* t = new Thread();
  t->env = env;
  t->fd = fd;
  t->poll.data = t;
  if (uv_poll_init(loop, &t->poll, fd) != 0) {
    close(fd);
    delete t;
    *err = EINVAL;
    *syscall = "uv_poll_init";
    return nullptr;
  }
  uv_poll_start(&t->poll, UV_READABLE, OnPoll);
  uv_unref(reinterpret_cast<uv_handle_t*>(&t->poll));
  napi_add_async_cleanup_hook(env, OnTeardown, t, &t->hook);
  current = t;
  return t;
}

Napi::Value Close(const Napi::CallbackInfo& info) {
  Detach(static_cast<Watch*>(info.Data()), true);
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
  int err = 0;
  const char* syscall = nullptr;
  Thread* t = ThreadOf(env, &err, &syscall);
  if (t == nullptr) return failure(err, syscall);
  int wd = inotify_add_watch(t->fd, dir.c_str(), kMask);
  if (wd < 0) return failure(errno, "inotify_add_watch");
  Watch* w = new Watch();
  w->thread = t;
  w->wd = wd;
  w->owners = 2;  // the table, the close function
  napi_create_reference(env, info[1], 1, &w->callback);
  napi_async_init(env, Napi::Object::New(env), Napi::String::New(env, "LochDirWatch"), &w->async);
  t->byWd[wd].push_back(w);
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

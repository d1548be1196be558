// In-ring TLS (see ring.h, TlsConn): the Ring methods that carry a TLS session on a stream.
// Received ciphertext is fed to the session in the completion drain (plaintext into the ring's
// plaintext pool), writes are encrypted when their SEND/WRITEV record is prepared, and the ring
// sends each conn's ciphertext itself, one send in flight per conn: a write whose conn has
// nothing queued goes out at once with send(2) from the thread's hot buffer (SendHot), the rest
// through the ring's SENDs. The rest of the ring (setup, submission, the drain loop) is ring.cc.
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "ring.h"
#include "tls_shelf.h"

namespace loch {

namespace {

// Output buffer capacity a TLS conn keeps while idle.
constexpr size_t kIdleKeep = 16 * 1024;
// Plaintext buffers one feed fills at most before the rest waits in the session (resumed later).
constexpr int kMaxPlainPerFeed = 8;
// The last free plaintext buffers go only to conns whose reader holds none (a new connection's
// handshake and request, a keep-alive one's next request): a proxy's flooded reader always keeps
// one chunk while its upstream write waits, so 'at most one' let the flood eat the reserve and a
// new connection waited for buffers behind it (issue 16), where a plain stream's first read never
// waits behind others' buffers.
constexpr size_t kPlainReserve = 8;
// Ciphertext a session waiting for plaintext buffers may hold before its recv stops (one provided
// buffer's worth at the default size): past it the peer meets TCP backpressure, as a plain
// stream's does at its budget, instead of every byte it sends being copied into the session.
constexpr size_t kStarvedHold = 64 * 1024;
// A full TLS record's ciphertext (TLS 1.3: 16 KiB of plaintext, content type, up to 255 bytes
// of expansion, the header): what a session that is not flooded holds at most.
constexpr size_t kOneRecord = 16384 + 256 + 5;
// FeedConn's `ownBid` for a heap recv's buffer (JavaScript's, not the provided-buffer ring's).
constexpr uint32_t kNoBid = ~0u;
// Ciphertext of a write sealed into the thread's hot buffer and sent at once (Ring::SendHot): a
// proxied body's write (one upstream chunk, up to 64 KiB, and its head) fits. Writes that fit
// what an idle conn keeps (kIdleKeep) stay on the ring's send: their buffer is the conn's small
// one, and one send(2) each would cost more than the ring's batched SENDs (an A/B at 11,268 B:
// bench/results/https-165k-2026-12-06.md).
constexpr size_t kHotBytes = 128 * 1024;

// SendHot is on unless LOCH_TLS_DIRECT_SEND=0 (an A/B of the two send paths: bench/ab/https.ts
// --a-env LOCH_TLS_DIRECT_SEND=0).
bool DirectSend() {
  static const bool on = [] {
    const char* v = std::getenv("LOCH_TLS_DIRECT_SEND");
    return v == nullptr || v[0] != '0';
  }();
  return on;
}

// The thread's hot ciphertext buffer (one ring per thread): every write SendHot takes is sealed
// here and handed to the kernel before the next one, so the records are written into cache lines
// the last write just used, not into a conn's own buffer that 64 connections' turns left cold.
thread_local ByteBuffer hotBuffer;

}  // namespace

// The plaintext pool: `count` buffers of `size` bytes in a JS Uint8Array (pinned until Destroy).
// Only ids below `published` start on the free list: JavaScript keeps the rest until the thread's
// receive budget has room for them (Ring.releasePlain in uring/ring.ts), since the ring decrypts
// into whatever is on it.
void Ring::SetupPlainPool(Napi::Value pool, uint32_t count, uint32_t size, uint32_t published) {
  if (!pool.IsTypedArray() || count == 0 || size == 0 || count > 65535) return;
  auto bytes = pool.As<Napi::Uint8Array>();
  if (bytes.ByteLength() < static_cast<size_t>(count) * size) return;
  plain_ = bytes.Data();
  plainRef_ = Napi::Persistent(bytes);
  plainCount_ = count;
  plainSize_ = size;
  plainFree_.clear();
  plainPublished_ = std::min(count, published);
  for (uint32_t i = plainPublished_; i > 0; i--) plainFree_.push_back(i - 1);
  plainOwner_.assign(count, {0, 0});
}

int Ring::TlsSentPage(uint32_t page, Napi::Value counts) {
  if (!alive_ || !counts.IsTypedArray() || page >= (1u << 16)) return -EINVAL;
  auto array = counts.As<Napi::TypedArray>();
  if (array.TypedArrayType() != napi_float64_array || array.ElementLength() != kTlsSentPage) return -EINVAL;
  auto f64 = counts.As<Napi::Float64Array>();
  if (page >= sentPages_.size()) {
    sentPages_.resize(page + 1, nullptr);
    sentRefs_.resize(page + 1);
  }
  sentRefs_[page] = Napi::Persistent(f64);
  double* p = f64.Data();
  sentPages_[page] = p;
  // The counts of conns open now (JavaScript hands a page over when it first meets one of its
  // ids, right after tlsAttach: nothing was sent yet, but say so from the conns themselves).
  for (uint32_t i = 0; i < kTlsSentPage; i++) {
    const size_t id = static_cast<size_t>(page) * kTlsSentPage + i;
    p[i] = id < conns_.size() && conns_[id] != nullptr ? static_cast<double>(conns_[id]->sent) : 0;
  }
  return 0;
}

void Ring::PublishSent(uint32_t id, uint64_t sent) {
  const uint32_t page = id / kTlsSentPage;
  if (page < sentPages_.size() && sentPages_[page] != nullptr)
    sentPages_[page][id % kTlsSentPage] = static_cast<double>(sent);  // exact below 2^53 bytes
}

int Ring::TlsAttach(int fd, std::shared_ptr<tls::TlsSession> session) {
  if (!alive_) return -EBADF;
  if (plain_ == nullptr || bufRing_ == nullptr) return -ENOTSUP;
  if (session == nullptr || !session->ok()) return -EINVAL;
  if (connByFd_.count(fd) != 0) return -EBUSY;
  uint32_t id;
  if (!freeConns_.empty()) {
    id = freeConns_.back();
    freeConns_.pop_back();
  } else {
    id = static_cast<uint32_t>(conns_.size());
    conns_.emplace_back();
  }
  auto c = std::make_unique<TlsConn>();
  c->session = std::move(session);
  c->fd = fd;
  c->id = id;
  c->gen = ++connGen_;
  TlsConn* conn = c.get();
  conns_[id] = std::move(c);
  connByFd_[fd] = id;
  PublishSent(id, 0);  // a reused id starts from nothing, not from its last conn's count
  // A client speaks first: its ClientHello goes out with the next flush. A server has nothing to
  // say before the ClientHello: driving its handshake now would only set up a record read buffer
  // (malloc, with SSL_MODE_RELEASE_BUFFERS), find no input and free it again.
  if (!conn->session->server()) conn->session->Feed(nullptr, 0, nullptr, 0);
  if (conn->session->failed()) {
    connByFd_.erase(fd);
    FreeConn(conn);
    return -EPROTO;
  }
  TakeConnOutput(conn);
  UpdateRef();
  return static_cast<int>(id);
}

TlsConn* Ring::ConnAt(uint32_t tag, uint32_t gen, int fd) {
  if (tag == 0 || tag > conns_.size()) return nullptr;
  TlsConn* c = conns_[tag - 1].get();
  if (c == nullptr || c->gen != gen || c->closed || (fd >= 0 && c->fd != fd)) return nullptr;
  return c;
}

void Ring::ReleasePlain(uint32_t id, bool keep) {
  // `keep`: its reader released it, and JavaScript keeps it off the free list for now (the
  // thread's cap); a release without `keep` later puts it there.
  if (plain_ != nullptr && id < plainCount_) {
    auto [tag, gen] = plainOwner_[id];
    if (tag != 0 && tag <= conns_.size() && conns_[tag - 1] != nullptr && conns_[tag - 1]->gen == gen &&
        conns_[tag - 1]->plainHeld > 0)
      conns_[tag - 1]->plainHeld--;
    plainOwner_[id] = {0, 0};
    if (keep) return;
    plainFree_.push_back(id);
    if (!starved_.empty()) wake_ = true;
  }
}

void Ring::ReleaseOwnBuffer(uint32_t bid) {
  // A provided buffer comes back (OP_PROVIDE): if it carried a conn's plaintext (FeedConn's own
  // buffer), that conn's reader holds one buffer fewer.
  if (bid >= bidOwner_.size() || bidOwner_[bid].first == 0) return;
  auto [tag, gen] = bidOwner_[bid];
  bidOwner_[bid] = {0, 0};
  if (tag <= conns_.size() && conns_[tag - 1] != nullptr && conns_[tag - 1]->gen == gen &&
      conns_[tag - 1]->plainHeld > 0)
    conns_[tag - 1]->plainHeld--;
  if (!starved_.empty()) wake_ = true;
}

void Ring::CancelTlsRecv(int op, int fd, int32_t slot) {
  // A TLS recv whose end waits behind undelivered plaintext has no kernel op left to cancel:
  // it completes (cancelled) now.
  auto conn = op == OP_CANCEL_FD ? connByFd_.find(fd) : connByFd_.end();
  if (op == OP_CANCEL) {
    for (auto it = connByFd_.begin(); it != connByFd_.end(); ++it) {
      if (conns_[it->second]->recvSlot == slot) conn = it;
    }
  }
  if (conn != connByFd_.end()) {
    TlsConn* c = conns_[conn->second].get();
    // A paused recv has no kernel op either. One whose pause is in flight ends as the kernel
    // reports it (cancelled), no longer paused.
    if ((c->endPending || c->paused) && c->recvSlot >= 0) {
      c->endPending = false;
      c->paused = false;
      synthetic_.emplace_back(c->recvSlot, -ECANCELED);
      c->recvSlot = -1;
    }
    c->pausing = false;
  }
}

void Ring::CloseTlsConn(int fd) {
  auto conn = connByFd_.find(fd);
  if (conn == connByFd_.end()) return;
  TlsConn* c = conns_[conn->second].get();
  c->closed = true;
  connByFd_.erase(conn);
  if (!c->sending) FreeConn(c);
}

void Ring::ArmTlsRecv(Slot& s, int fd, uint32_t tag, uint32_t slotIndex, uint64_t userData, io_uring_sqe* sqe) {
  // A TLS stream: its ciphertext is fed to the conn's session in the drain.
  auto conn = connByFd_.find(fd);
  if (conn == connByFd_.end() || conn->second != tag - 1) return;
  TlsConn* c = conns_[conn->second].get();
  s.tls = c->id + 1;
  s.tlsGen = c->gen;
  c->recvSlot = static_cast<int32_t>(slotIndex);
  c->recvSqe = *sqe;
  c->recvSqe.user_data = userData;
  c->recvTaken = 0;
  c->pausing = false;
  c->paused = false;
  if (!c->starved) return;
  wake_ = true;
  // The recv's byte limit is the stream's allowance less the plaintext a session that is not
  // starved may still produce (one incomplete record's, TLS_HELD_SLACK in uring/stream.ts; the
  // same covers a starved one's decrypted record). A starved session also holds ciphertext
  // whose plaintext is not charged yet: it counts as taken by this recv, so the stream's cap
  // holds (without it a flooded stream's recv armed again while its session kept up to 64 KiB,
  // and the stream held that much past its cap: issue 16).
  const bool multishot = (sqe->ioprio & IORING_RECV_MULTISHOT) != 0;
  const uint32_t limit = multishot ? sqe->file_index : sqe->len;
  const size_t held = c->session->heldBytes();
  c->recvTaken = limit == 0 ? 0 : static_cast<uint32_t>(std::min<size_t>(held, limit));
  if (c->recvTaken > 0 && c->recvTaken < limit) {
    if (multishot) sqe->file_index = limit - c->recvTaken;
    else sqe->len = limit - c->recvTaken;
  }
  if (held >= kStarvedHold || (limit != 0 && c->recvTaken >= limit)) {
    // The session already holds what it may while it waits for plaintext buffers (or all this
    // recv may take): the recv waits here instead of in the kernel (a no-op without a completion
    // takes its place), and ResumeStarved submits it once the session went on (or ends it, for
    // JavaScript to arm another within the room its stream has then).
    io_uring_prep_nop(sqe);
    sqe->flags = IOSQE_CQE_SKIP_SUCCESS;
    c->paused = true;
  }
}

void Ring::ResumeRecv(TlsConn* c, size_t* n) {
  c->paused = false;
  io_uring_sqe again = c->recvSqe;
  // A multishot recv's byte limit (sqe->optlen, file_index in liburing 2.3) counts what it took;
  // a single recv's length, what its starved session held when it was armed (ArmTlsRecv).
  const bool multishot = (again.ioprio & IORING_RECV_MULTISHOT) != 0;
  const uint32_t limit = multishot ? again.file_index : again.len;
  io_uring_sqe* sqe = limit != 0 && c->recvTaken >= limit ? nullptr : Sqe();
  if (sqe == nullptr) {
    // Its limit was reached (or the SQ is full): the recv ends; JavaScript arms another if it
    // reads on.
    const int32_t slot = c->recvSlot;
    c->recvSlot = -1;
    Release(env_, static_cast<uint32_t>(slot));
    Emit(n, slot, -ECANCELED, 0);
    return;
  }
  if (limit != 0 && multishot) again.file_index = limit - c->recvTaken;
  if (limit != 0 && !multishot) again.len = limit - c->recvTaken;
  *sqe = again;
}

void Ring::PauseRecv(TlsConn* c) {
  io_uring_sqe* sqe = Sqe();
  if (sqe == nullptr) return;  // tried again with the next completion
  io_uring_prep_cancel64(sqe, c->recvSqe.user_data, 0);
  io_uring_sqe_set_data64(sqe, kIgnoreUserData);
  c->pausing = true;
}

void Ring::PrepTls(Napi::Env env, const int32_t* r, int op, uint32_t slotIndex, Napi::Value bufs, uint32_t nbufs) {
  TlsConn* c = nullptr;
  auto found = connByFd_.find(r[F_FD]);
  if (found != connByFd_.end() && found->second == static_cast<uint32_t>(r[F_AUX2] - 1)) c = conns_[found->second].get();
  if (c == nullptr) {
    synthetic_.emplace_back(static_cast<int32_t>(slotIndex), -EBADF);
    return;
  }
  if (c->sendError != 0) {
    synthetic_.emplace_back(static_cast<int32_t>(slotIndex), c->sendError);
    return;
  }
  tls::TlsSession& session = *c->session;
  Slot& s = slots_[slotIndex];
  int32_t total = 0;
  bool ok = true;
  if (op == OP_TLS_CLOSE_NOTIFY) {
    session.Shutdown();
  } else {
    // The plaintext pieces: one buffer (send) or several (writev); read now, copied by OpenSSL.
    void* data = nullptr;
    size_t len = 0;
    const int32_t count = op == OP_SEND ? 1 : r[F_AUX];
    std::vector<iovec>& pieces = s.iov;
    pieces.clear();
    if (count <= 0 || count > 1024) ok = false;
    for (int32_t i = 0; ok && i < count; i++) {
      ok = Pin(env, s, bufs, nbufs, r[F_BUF] + (op == OP_SEND ? 0 : i), &data, &len);
      if (ok && op == OP_SEND) {
        ok = static_cast<uint32_t>(r[F_LEN]) <= len;
        len = static_cast<size_t>(r[F_LEN]);
      }
      if (ok) pieces.push_back(iovec{data, len});
    }
    if (!ok) {
      pieces.clear();
      synthetic_.emplace_back(static_cast<int32_t>(slotIndex), -EINVAL);
      return;
    }
    size_t bytes = 0;
    for (const iovec& v : pieces) bytes += v.iov_len;
    total = static_cast<int32_t>(bytes);
    const size_t before = c->out.size();
    const size_t cap = before + session.PendingOutput() + tls::TlsSession::EncryptBound(bytes) + 64 * pieces.size();
    if (DirectSend() && cap > kIdleKeep && cap <= kHotBytes && before == 0 && !c->sending &&
        c->sendHead >= c->sendBuf.size()) {
      ok = SendHot(c, pieces.data(), pieces.size(), cap);
    } else {
      TlsUnshelve(c->out, cap, kIdleKeep);
      c->out.resize(cap);
      size_t used = before;
      ok = session.EncryptPiecesInto(pieces.data(), pieces.size(), c->out.data(), cap, &used);
      c->out.resize(used);
      c->queued += used - before;
    }
    pieces.clear();
  }
  TakeConnOutput(c);  // close_notify, or a spill past the bound, or what SendHot's socket did not take
  if (!ok) {
    synthetic_.emplace_back(static_cast<int32_t>(slotIndex), -EPROTO);
    return;
  }
  if (c->sendError != 0) {
    synthetic_.emplace_back(static_cast<int32_t>(slotIndex), c->sendError);  // SendHot's send failed
    return;
  }
  c->waits.push_back(TlsConn::Wait{c->queued, slotIndex, total});
  // With a send (or SendHot's NOP) in flight its completion tells the writes done, in CQE order.
  if (!c->sending) CompleteWaits(c);
}

bool Ring::SendHot(TlsConn* c, const iovec* pieces, size_t count, size_t cap) {
  // The conn has nothing queued and no send in flight: the write's records (after what the
  // session queued itself) are sealed into the thread's hot buffer and given to send(2) at once,
  // as nginx writes each record from OpenSSL's one write buffer while it is in cache. What the
  // socket does not take now goes to the conn's buffer and the ring's send, as any write's.
  if (hotBuffer.size() < kHotBytes) hotBuffer.resize(kHotBytes);
  unsigned char* hot = hotBuffer.data();
  size_t used = 0;
  if (!c->session->EncryptPiecesInto(pieces, count, hot, cap, &used)) return false;
  c->queued += used;
  ssize_t r = 0;
  if (used > 0) {
    do {
      r = ::send(c->fd, hot, used, MSG_DONTWAIT | MSG_NOSIGNAL);
    } while (r < 0 && errno == EINTR);
  }
  if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
    // As a failed ring send: this write and those after it fail (none before it waits: the conn
    // had sent everything).
    c->sendError = -errno;
    FailWaits(c, c->sendError);
    return true;
  }
  const size_t done = r > 0 ? static_cast<size_t>(r) : 0;
  if (done > 0) {
    c->sent += done;
    PublishSent(c->id, c->sent);
  }
  if (done < used) {
    TlsUnshelve(c->out, used - done, kIdleKeep);
    c->out.insert(c->out.end(), hot + done, hot + used);
    return true;  // the ring's send of the rest (TakeConnOutput) completes the write
  }
  // All sent: the write is told done by a NOP's completion, in the drain with the other CQEs
  // (as a ring send's would be), which OnTlsSend takes as a send of nothing more. Without an SQE
  // it is told done at once (PrepTls: through the synthetic queue and a wake-up).
  if (io_uring_sqe* sqe = Sqe()) {
    io_uring_prep_nop(sqe);
    io_uring_sqe_set_data64(sqe, (static_cast<uint64_t>(kTlsSendTag) << 32) | c->id);
    c->sending = true;
    inFlight_++;
  }
  return true;
}

void Ring::TakeConnOutput(TlsConn* c) {
  tls::TlsSession& session = *c->session;
  size_t pending = session.PendingOutput();
  if (pending > 0) {
    size_t at = c->out.size();
    c->out.resize(at + pending);
    session.TakeOutput(c->out.data() + at, pending);
    c->queued += pending;
  }
  KickSend(c);
}

void Ring::KickSend(TlsConn* c) {
  if (c->sending || c->sendError != 0 || c->closed) return;
  if (c->sendHead >= c->sendBuf.size()) {
    c->sendBuf.clear();
    c->sendHead = 0;
    if (c->out.empty()) {
      // Idle: a connection that once sent a large body keeps no large buffers (memory per idle
      // connection; they go to the thread's shelf for the next burst, tls_shelf.h); a handshake
      // flight or a small response fits in what stays.
      if (c->sendBuf.capacity() > kIdleKeep) TlsShelve(c->sendBuf);
      if (c->out.capacity() > kIdleKeep) TlsShelve(c->out);
      return;
    }
    c->sendBuf.swap(c->out);
  }
  io_uring_sqe* sqe = Sqe();
  if (sqe == nullptr) {
    c->sendError = -EBUSY;
    FailWaits(c, -EBUSY);
    return;
  }
  io_uring_prep_send(sqe, c->fd, c->sendBuf.data() + c->sendHead, c->sendBuf.size() - c->sendHead, MSG_NOSIGNAL);
  io_uring_sqe_set_data64(sqe, (static_cast<uint64_t>(kTlsSendTag) << 32) | c->id);
  c->sending = true;
  inFlight_++;
}

void Ring::OnTlsSend(uint32_t id, int32_t res, size_t* n) {
  if (id >= conns_.size() || conns_[id] == nullptr) return;
  TlsConn* c = conns_[id].get();
  c->sending = false;
  if (inFlight_ > 0) inFlight_--;
  if (res < 0 || (res == 0 && c->sendHead < c->sendBuf.size())) {
    c->sendError = res < 0 ? res : -EPIPE;
    FailWaits(c, c->sendError, n);
  } else {
    c->sendHead += static_cast<size_t>(res);
    c->sent += static_cast<uint64_t>(res);
    PublishSent(id, c->sent);
    CompleteWaits(c, n);
  }
  if (c->closed) {
    FreeConn(c);
    return;
  }
  KickSend(c);  // the rest after a short send, or what queued up meanwhile
}

void Ring::CompleteWrite(int32_t slot, int32_t res, size_t* n) {
  // In the drain, in CQE order (a write is told done before the reply that follows it); otherwise
  // (or with the array full) through the synthetic queue, first thing in the next drain.
  if (n != nullptr && synthetic_.empty() && *n + 1 < cqCap_) {
    Release(env_, static_cast<uint32_t>(slot));
    Emit(n, slot, res, 0);
  } else {
    synthetic_.emplace_back(slot, res);
  }
}

void Ring::CompleteWaits(TlsConn* c, size_t* n) {
  while (!c->waits.empty() && c->waits.front().end <= c->sent) {
    CompleteWrite(static_cast<int32_t>(c->waits.front().slot), c->waits.front().res, n);
    c->waits.pop_front();
  }
}

void Ring::FailWaits(TlsConn* c, int32_t res, size_t* n) {
  for (const TlsConn::Wait& w : c->waits) CompleteWrite(static_cast<int32_t>(w.slot), res, n);
  c->waits.clear();
  c->out.clear();
  c->sendBuf.clear();
  c->sendHead = 0;
}

void Ring::FreeConn(TlsConn* c) {
  FailWaits(c, -ECANCELED);
  // No send in flight reads them (callers free a conn only then): large ones go to the shelf.
  if (c->sendBuf.capacity() > kIdleKeep) TlsShelve(c->sendBuf);
  if (c->out.capacity() > kIdleKeep) TlsShelve(c->out);
  uint32_t id = c->id;
  conns_[id].reset();
  freeConns_.push_back(id);
}

void Ring::TlsRecv(TlsConn* c, uint32_t slot, int32_t res, uint32_t flags, size_t* n) {
  const bool more = (flags & IORING_CQE_F_MORE) != 0;
  const int32_t slotId = static_cast<int32_t>(slot);
  if (!more && c->pausing) {
    c->pausing = false;
    if (res == -ECANCELED) {
      // The pause took effect: the slot stays armed for JavaScript, the kernel op is gone.
      c->paused = true;
      if (!c->starved) ResumeRecv(c, n);  // the session went on meanwhile
      return;
    }
  }
  if (res > 0 && (flags & IORING_CQE_F_BUFFER) != 0) c->recvTaken += static_cast<uint32_t>(res);
  // A heap recv (OP_RECV into JavaScript's buffer, which JavaScript keeps pinned until this
  // completion was dispatched): read before Release.
  unsigned char* heap = slot < slots_.size() ? slots_[slot].tlsHeap : nullptr;
  if (!more && c->starved && !c->session->failed() && (res == 0 || (res < 0 && res != -ECANCELED && res != -ENOBUFS))) {
    // The stream ended (or failed) while decrypted bytes still wait for plaintext buffers: the
    // end is told after them (ResumeStarved), so a reader never sees it early.
    c->endPending = true;
    c->endRes = res;
    c->endFlags = flags;
    return;
  }
  if (!more) {
    c->recvSlot = -1;
    Release(env_, slot);
  }
  if (c->session->failed() || res <= 0 || ((flags & IORING_CQE_F_BUFFER) == 0 && heap == nullptr)) {
    // End of stream, errors, ENOBUFS as they are; after a failure the bytes pass through raw
    // (a plain-HTTP request handed over to an HTTP server).
    Emit(n, slotId, res, flags);
    return;
  }
  const uint32_t bid = heap != nullptr ? bufCount_ : flags >> IORING_CQE_BUFFER_SHIFT;
  int events = 0;
  unsigned char* in = heap != nullptr ? heap : pool_ + static_cast<size_t>(bid) * bufSize_;
  // A heap recv's buffer holds what it was armed for (its length; plaintext is never longer).
  const size_t inCap = heap != nullptr ? c->recvSqe.len : bufSize_;
  const bool lent = FeedConn(c, slot, in, static_cast<size_t>(res), n, &events, in, inCap, heap != nullptr ? kNoBid : bid);
  if (c->session->failed() && c->session->errorKind() == tls::ErrorKind::kPlainHttp) {
    // Not TLS at all: the bytes go to JavaScript as they came, for the plain-HTTP answer (a heap
    // recv's are in its buffer: no buffer flag, JavaScript takes them from there).
    Emit(n, slotId, res, flags | IORING_CQE_F_MORE);
  } else if (bid < bufCount_ && !lent) {
    // The session read what it needed (an incomplete record was copied): the buffer goes back.
    io_uring_buf_ring_add(bufRing_, pool_ + static_cast<size_t>(bid) * bufSize_, bufSize_, bid,
                          io_uring_buf_ring_mask(bufCount_), bufPending_++);
    io_uring_buf_ring_advance(bufRing_, bufPending_);
    bufPending_ = 0;
  }
  ReportEvents(c, slot, events, n);
  if (!more) {
    Emit(n, slotId, -ECANCELED, 0);  // the recv ended: JS re-arms if it reads on
  } else if (c->starved && !c->pausing && c->session->heldBytes() >= kStarvedHold) {
    PauseRecv(c);
  }
}

void Ring::ReportEvents(TlsConn* c, uint32_t slot, int events, size_t* n) {
  // Peer closed and failed are told once; handshake done and new session happen once each anyway.
  events &= ~c->reported;
  c->reported |= events & (tls::kPeerClosed | tls::kFailed);
  if (events != 0) Emit(n, static_cast<int32_t>(slot), events, kCqeFTlsEvent | IORING_CQE_F_MORE);
}

bool Ring::FeedConn(TlsConn* c, uint32_t slot, const unsigned char* data, size_t len, size_t* n, int* events,
                    unsigned char* own, size_t ownCap, uint32_t ownBid) {
  constexpr int kEvents = tls::kHandshakeJustDone | tls::kPeerClosed | tls::kNewSession | tls::kFailed;
  tls::TlsSession& session = *c->session;
  bool first = true;
  bool lent = false;
  int filled = 0;
  for (;;) {
    // The last free buffers (the reserve) go only to a reader that holds none, has no buffer of
    // its own in this feed (see below) and whose session holds at most a record: a request that
    // waited for one (ResumeStarved). Not to a flooded stream whose reader just let go (its
    // session holds a backlog): its reader keeps what it gets while its upstream write waits
    // (seconds, behind a slow upstream), and ~one such stream per reserve buffer took them all,
    // leaving every new connection's request undecrypted (issue 16, HTTPS upload flood).
    const size_t reserve = std::min<size_t>(kPlainReserve, plainCount_ / 8);
    const bool reserved = plainFree_.size() <= reserve &&
                          (c->plainHeld > 0 || own != nullptr || session.heldBytes() > kOneRecord);
    if (plainFree_.empty() || reserved || filled >= kMaxPlainPerFeed || *n + 4 >= cqCap_) {
      // No plaintext buffer (the readers hold them all) or this batch is full: the session keeps
      // the rest of the input (copied) and goes on when buffers come back. JavaScript stops the
      // multishot recv at its queue's high-water mark, so what is kept stays bounded.
      if (first && len > 0) *events |= session.Feed(data, len, nullptr, 0).flags & kEvents;
      session.Detach();  // nothing refers to `data` (so to `own`) any more
      if (first && own != nullptr && c->plainHeld == 0 && *n + 4 < cqCap_ && !session.failed()) {
        // A reader holding no plaintext never waits for the pool, as a plain stream's base read
        // never waits for others' buffers (a heap recv in uring/stream.ts): its records are
        // decrypted into the buffer their ciphertext came in (now copied into the session), lent
        // to the reader as a plain stream's chunk (a provided buffer, which JavaScript charges and
        // gives back with OP_PROVIDE) or as a heap chunk (no buffer flag; JavaScript's own). So
        // a new connection's request is answered whatever flooded readers keep, and a stream
        // holds at most this one buffer outside the pool while its reader keeps it.
        first = false;
        unsigned char* to = own;
        own = nullptr;
        tls::FeedResult r = session.Feed(nullptr, 0, to, ownCap);
        *events |= r.flags & kEvents;
        if (r.plaintext > 0) {
          lent = true;
          if (ownBid == kNoBid) {
            Emit(n, static_cast<int32_t>(slot), static_cast<int32_t>(r.plaintext), IORING_CQE_F_MORE);
          } else {
            Emit(n, static_cast<int32_t>(slot), static_cast<int32_t>(r.plaintext),
                 (ownBid << IORING_CQE_BUFFER_SHIFT) | IORING_CQE_F_BUFFER | IORING_CQE_F_MORE);
            if (bidOwner_.empty()) bidOwner_.assign(bufCount_, {0, 0});
            bidOwner_[ownBid] = {c->id + 1, c->gen};
            c->plainHeld++;
          }
        }
        if ((r.flags & tls::kMorePlaintext) == 0) {
          c->starved = false;  // ResumeStarved skips it (left in its list)
          break;
        }
        continue;  // more records: pool buffers past the reserve, or the session keeps them
      }
      if (!c->starved) {
        c->starved = true;
        starved_.push_back(c->id);
      }
      break;
    }
    uint32_t id = plainFree_.back();
    plainFree_.pop_back();
    tls::FeedResult r = session.Feed(first ? data : nullptr, first ? len : 0, plain_ + static_cast<size_t>(id) * plainSize_, plainSize_);
    first = false;
    *events |= r.flags & kEvents;
    if (r.plaintext > 0) {
      Emit(n, static_cast<int32_t>(slot), static_cast<int32_t>(r.plaintext),
           (id << IORING_CQE_BUFFER_SHIFT) | IORING_CQE_F_BUFFER | IORING_CQE_F_MORE | kCqeFPlain);
      plainOwner_[id] = {c->id + 1, c->gen};
      c->plainHeld++;
      filled++;
    } else {
      plainFree_.push_back(id);
    }
    if ((r.flags & tls::kMorePlaintext) == 0) {
      c->starved = false;
      break;
    }
  }
  TakeConnOutput(c);  // handshake flights, alerts, tickets, key update answers
  return lent;
}

void Ring::ResumeStarved(size_t* n) {
  wake_ = false;
  if (starved_.empty() || plainFree_.empty()) return;
  std::vector<uint32_t> waiting;
  waiting.swap(starved_);
  // Conns whose reader holds no plaintext first, and among them those whose session holds at
  // most a record (a new connection, a request after an idle keep-alive), then the ones with a
  // backlog (a flooder whose reader just let go): in arrival order, streams that flood while
  // their reader keeps a chunk (a proxy whose upstream write waits) are ahead of them and take
  // every buffer that comes back, the reserve included, so a new request waited behind the
  // flood (issue 16, HTTPS upload flood).
  const auto rank = [this](uint32_t id) {
    const TlsConn* c = id < conns_.size() ? conns_[id].get() : nullptr;
    if (c == nullptr || c->plainHeld > 0) return 2;
    return c->session->heldBytes() > kOneRecord ? 1 : 0;
  };
  std::stable_sort(waiting.begin(), waiting.end(), [&rank](uint32_t a, uint32_t b) { return rank(a) < rank(b); });
  for (uint32_t id : waiting) {
    TlsConn* c = id < conns_.size() ? conns_[id].get() : nullptr;
    if (c == nullptr || !c->starved || c->closed) continue;
    if (c->recvSlot < 0 || plainFree_.empty() || *n + Reserve() >= cqCap_) {
      starved_.push_back(id);  // no reader armed yet, or no room: later
      continue;
    }
    c->starved = false;
    int events = 0;
    const uint32_t slot = static_cast<uint32_t>(c->recvSlot);
    FeedConn(c, slot, nullptr, 0, n, &events);
    ReportEvents(c, slot, events, n);
    if (!c->starved && c->paused) ResumeRecv(c, n);
    if (!c->starved && c->endPending) {
      c->endPending = false;
      c->recvSlot = -1;
      Release(env_, slot);
      Emit(n, static_cast<int32_t>(slot), c->endRes, c->endFlags);
    }
  }
}

}  // namespace loch

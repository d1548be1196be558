// Loch's own TLS 1.3 record layer, run after OpenSSL finished a server handshake (`records:
// 'loch'`, @loch/tls's default; `records: 'openssl'` opts out). What kTLS does in the kernel, in the completion
// path: ciphertext is decrypted straight from the buffer it was received into to the plaintext
// buffer JavaScript reads (OpenSSL would copy it into its read buffer first, then out of it), and
// plaintext is encrypted straight into the send buffer (OpenSSL copies it into its write buffer,
// then the BIO copies the record out). AEAD through OpenSSL's EVP (AES-128-GCM, AES-256-GCM,
// ChaCha20-Poly1305): no hand-written crypto.
//
// Two parts:
// - Tls13Takeover watches a handshake (the traffic secrets from the keylog callback, the records
//   going out and coming in) and says whether and with which sequence numbers the record layer
//   may take over. The safety argument is in packages/tls/README.md ("Loch's record layer").
// - Tls13RecordLayer is the record layer itself: RFC 8446 5 (records, inner content type,
//   padding, size limits, nonces), 4.6.3 (KeyUpdate), 6 (alerts).
#pragma once

#include <openssl/evp.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace loch::tls {

/** A TLS 1.3 suite the record layer runs: its AEAD, hash and key length. */
struct Tls13Suite {
  uint16_t id = 0;  // 0x1301, 0x1302, 0x1303
  const EVP_CIPHER* cipher = nullptr;
  const EVP_MD* md = nullptr;
  size_t keyLen = 0;
  size_t hashLen = 0;
  /** The suite for a TLS 1.3 cipher id, or nullptr for one the record layer does not run (CCM). */
  static const Tls13Suite* Of(uint16_t id);
};

/** Longest TLS 1.3 traffic secret (SHA-384). */
constexpr size_t kMaxSecret = 48;
/** RFC 8446 5.1/5.2: plaintext per record, ciphertext per record (2^14 + 256). */
constexpr size_t kMaxPlaintext = 16384;
constexpr size_t kMaxCiphertext = 16384 + 256;
constexpr size_t kRecordHeader = 5;
constexpr size_t kTagLen = 16;

/**
 * RFC 8446 7.3: the AEAD key (`suite.keyLen` bytes) and IV (12) of a traffic secret; with `next`,
 * also 7.2's next secret ("traffic upd", `suite.hashLen` bytes). False when OpenSSL refused.
 */
bool DeriveTrafficKeys(const Tls13Suite& suite, const unsigned char* secret, unsigned char* key, unsigned char* iv,
                       unsigned char* next);

/**
 * One direction's keys: the traffic secret, the AEAD context keyed from it, the IV, the sequence.
 * The direction is chosen per record (Open decrypts, Seal encrypts: AES-GCM and ChaCha20-Poly1305
 * key both the same way), so the keys the take-over's check opened records with move, as they
 * are, into the record layer (one derivation per secret).
 */
class TrafficKeys {
 public:
  TrafficKeys() = default;
  ~TrafficKeys();
  TrafficKeys(const TrafficKeys&) = delete;
  TrafficKeys& operator=(const TrafficKeys&) = delete;
  /** Takes `other`'s context and copies its secret and IV, then wipes them there. */
  TrafficKeys& operator=(TrafficKeys&& other) noexcept;

  /** Keys from `secret` (RFC 8446 7.3), sequence `seq`. False when OpenSSL refused. */
  bool Init(const Tls13Suite& suite, const unsigned char* secret, uint64_t seq);
  bool ready() const { return ctx_ != nullptr; }
  /** RFC 8446 7.2: the next secret ("traffic upd"), its keys, sequence 0. */
  bool Update();

  /**
   * Decrypts the record at `record` (header + body of `bodyLen`) into `out` (room for bodyLen -
   * 16). False when it does not authenticate. Advances the sequence only on success.
   */
  bool Open(const unsigned char* record, size_t bodyLen, unsigned char* out);
  /**
   * Writes one record of `type` with `len` bytes from `data` at `out` (room for len + 22).
   * Returns the record's length. The caller checked exhausted() first.
   */
  size_t Seal(unsigned char type, const unsigned char* data, size_t len, unsigned char* out);
  /** Seal for `len` bytes gathered from `count` pieces (one record, no copy to join them). */
  size_t SealPieces(unsigned char type, const iovec* pieces, size_t count, size_t len, unsigned char* out);

  /** True once the sequence number cannot be used again (RFC 8446 5.3: it must not wrap). */
  bool exhausted() const { return seq_ == UINT64_MAX; }
  uint64_t seq() const { return seq_; }

 private:
  void Nonce(unsigned char out[12]) const;
  bool Rekey();

  const Tls13Suite* suite_ = nullptr;
  EVP_CIPHER_CTX* ctx_ = nullptr;
  unsigned char secret_[kMaxSecret] = {};
  unsigned char iv_[12] = {};
  uint64_t seq_ = 0;
};

/**
 * Watches a server's TLS 1.3 handshake for the take-over: the application traffic secrets (from
 * the keylog callback: never logged, never given out), and the records that went out and came in
 * once each secret existed, to count those already under the application keys by trial
 * decryption (a record under a handshake key fails authentication).
 */
class Tls13Takeover {
 public:
  ~Tls13Takeover();

  /** A keylog line from OpenSSL (CLIENT_/SERVER_TRAFFIC_SECRET_0 kept, the rest ignored). */
  void OnKeylog(const char* line);
  /** Bytes OpenSSL wrote (records out) and read (records in), in order. */
  void OnOutput(const unsigned char* data, size_t len) { out_.Observe(data, len, haveServer_); }
  void OnInput(const unsigned char* data, size_t len) { in_.Observe(data, len, haveClient_); }

  /**
   * Why the take-over is refused (empty: it may go ahead), for `suite`. When it may, readKeys()
   * (the client's secret) and writeKeys() (the server's) are the keys the check opened the
   * records with, each at the sequence number after the records already under it.
   */
  std::string Check(const Tls13Suite& suite);
  /** After Check passed: the record layer's keys (moved out of the watch by Tls13RecordLayer::Create). */
  TrafficKeys& readKeys() { return read_; }
  TrafficKeys& writeKeys() { return write_; }
  /** The server's application traffic secret came, the client's is still to come. */
  bool wantsClientSecret() const { return haveServer_ && !haveClient_; }

 private:
  // A record stream's framing, with a copy of each record that starts once its key exists.
  struct Stream {
    unsigned char header[kRecordHeader] = {};
    size_t headerFill = 0;
    size_t bodyLeft = 0;
    bool capturing = false;
    bool overflow = false;  // captured more than kCaptureCap: refuse
    std::vector<std::vector<unsigned char>> records;
    size_t captured = 0;
    void Observe(const unsigned char* data, size_t len, bool keyKnown);
    bool atBoundary() const { return headerFill == 0 && bodyLeft == 0; }
  };
  // Opens the records of `s` with `keys` (sequence 0 on entry): a run of failures, then of
  // successes, leaves `keys` at the sequence after the last success; false when a failure follows
  // a success (keys changed again: not a point to take over at).
  static bool Count(TrafficKeys& keys, const Stream& s);

  unsigned char client_[kMaxSecret] = {};
  unsigned char server_[kMaxSecret] = {};
  size_t clientLen_ = 0;
  size_t serverLen_ = 0;
  bool haveClient_ = false;
  bool haveServer_ = false;
  Stream out_;
  Stream in_;
  TrafficKeys read_;
  TrafficKeys write_;
};

/** What a Read produced. */
struct RecordRead {
  size_t plaintext = 0;
  /** The caller's buffer filled while input remains: call Read again with no new input. */
  bool more = false;
};

/**
 * The record layer after the take-over. Input like TlsSession::Feed: whole records are decrypted
 * where they were received, straight into the caller's plaintext buffer; only a record split
 * across receives is copied (to reassemble it). Output: records sealed into the caller's buffer,
 * or appended to `queue` (alerts, KeyUpdate, close_notify, a spill past the caller's room).
 */
class Tls13RecordLayer {
 public:
  /**
   * Takes `read` and `write` (ready keys at their sequence numbers: Tls13Takeover's, after its
   * Check passed; nullptr when either is not ready. `queue`: the session's output queue (outlives this).
   */
  static std::unique_ptr<Tls13RecordLayer> Create(TrafficKeys&& read, TrafficKeys&& write,
                                                  std::vector<unsigned char>* queue);

  /** Bytes received before the take-over that OpenSSL did not read (copied). */
  void Hold(const unsigned char* data, size_t len);
  /** Feeds `len` bytes (`data` valid until a Read returns without `more`). */
  RecordRead Read(const unsigned char* data, size_t len, unsigned char* plain, size_t cap);
  /** Stops reading the caller's span: its unread rest is copied. */
  void Detach();
  size_t heldBytes() const { return held_.size() - heldAt_ + inLen_; }
  bool hasPending() const { return heldBytes() > 0 || pendingAt_ < pending_.size(); }

  /**
   * Seals `len` bytes into records of at most 16 KiB at `out` + `*used` while `cap` has room,
   * the rest into the queue (`queuedAhead`: the queue already holds bytes that go first).
   */
  bool SealInto(const unsigned char* data, size_t len, unsigned char* out, size_t cap, size_t* used,
                bool queuedAhead);
  /**
   * SealInto for a writev: the pieces fill records of up to 16 KiB in order, each record sealed
   * from the pieces where they lie (an HTTP head and its body share one record without a copy).
   */
  bool SealPiecesInto(const iovec* pieces, size_t count, unsigned char* out, size_t cap, size_t* used,
                      bool queuedAhead);
  /** Queues close_notify. */
  void CloseNotify();

  bool peerClosed() const { return peerClosed_; }
  bool failed() const { return !error_.empty(); }
  const std::string& error() const { return error_; }
  /** The alert involved in the failure (sent, or received when alertFromPeer()), or -1. */
  int alert() const { return alert_; }
  bool alertFromPeer() const { return alertFromPeer_; }

 private:
  Tls13RecordLayer() = default;
  /**
   * One authenticated record's inner plaintext at `inner` (`len` bytes, padding included):
   * `*content` says how much of it is application data (0 for an alert or a handshake message).
   */
  bool OnRecord(unsigned char* inner, size_t len, size_t* content);
  bool OnHandshake(const unsigned char* p, size_t len);
  /** Counts a record that carried no application data; false (failed) past kMaxIdleRecords. */
  bool CountIdle();
  /** After a failure or the peer's close_notify: nothing more is read (RFC 8446 6.1, 6.2). */
  void DropInput();
  void Queue(unsigned char type, const unsigned char* data, size_t len);
  void QueuePieces(unsigned char type, const iovec* pieces, size_t count, size_t len);
  /** Fails with `alert` sent to the peer (RFC 8446 6.2). */
  void Abort(int alert, const std::string& why);
  void HoldRest();

  TrafficKeys read_;
  TrafficKeys write_;
  std::vector<unsigned char>* queue_ = nullptr;
  // Input: a record being reassembled (held_), then the caller's current span.
  std::vector<unsigned char> held_;
  size_t heldAt_ = 0;
  const unsigned char* in_ = nullptr;
  size_t inLen_ = 0;
  // A record's plaintext that did not fit the caller's (small) buffer, handed out from pendingAt_.
  std::vector<unsigned char> pending_;
  size_t pendingAt_ = 0;
  bool keyUpdateOwed_ = false;
  // Our write key sealed no application data since our last KeyUpdate: a peer's update_requested
  // needs no new answer (RFC 8446 4.6.3), so a peer that asks again and again while we are silent
  // (and does not read) cannot make us queue output without bound.
  bool writeKeyFresh_ = false;
  // Records in a row that carried no application data (empty ones, user_canceled, KeyUpdate):
  // bounded as OpenSSL and BoringSSL bound each kind (kMaxIdleRecords in tls13_record.cc).
  uint32_t idleRecords_ = 0;
  bool peerClosed_ = false;
  bool closeSent_ = false;
  std::string error_;
  int alert_ = -1;
  bool alertFromPeer_ = false;
};

}  // namespace loch::tls

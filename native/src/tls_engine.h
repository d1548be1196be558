// The TLS engine: OpenSSL (the copy the node binary exports; headers ship with Node) driven
// through BIOs of its own over caller memory, so it runs over any transport: the legacy driver's node:net chunks today,
// and the io_uring completion path inside the batch next (a recv's provided buffer fed in C++,
// plaintext out; plaintext encrypted into the flush). Nothing here knows N-API: tls_addon.cc is
// the JavaScript face. Not for sockets or buffers' lifetimes: the caller owns every byte range
// it passes in, and takes what it is given.
//
// TlsContext wraps an SSL_CTX (server: certificates chosen by SNI, ALPN from a preference list,
// ticket keys set from outside and rotated, optional client-certificate verification; client:
// verification against a CA bundle, ALPN offer). TlsSession is one connection: an SSL that
// reads ciphertext in place from the caller's bytes and writes records into the caller's buffer.
#pragma once

#include <openssl/ssl.h>
#include <sys/uio.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tls13_record.h"

namespace loch::tls {

/** What a failure was, so the JavaScript side can pick its typed error. */
enum class ErrorKind : int {
  kNone = 0,
  /** OpenSSL refused the bytes or the handshake (reason in the message). */
  kProtocol = 1,
  /** The peer's certificate did not verify (X509 reason in the message). */
  kCertificate = 2,
  /** The peer sent a fatal alert (its code in alert()). */
  kAlert = 3,
  /** A server's first byte was an ASCII letter: plain HTTP sent to a TLS port. */
  kPlainHttp = 4,
  /** Misuse: a call in the wrong state, bad input. */
  kUsage = 5,
};

/** A certificate with its key and chain, as parsed once from PEM. */
struct Certificate {
  X509* leaf = nullptr;
  EVP_PKEY* key = nullptr;
  STACK_OF(X509)* chain = nullptr;
  ~Certificate();
};

/** A ticket key: 16 bytes of name, 32 of HMAC key, 32 of AES-256 key. */
struct TicketKey {
  unsigned char name[16];
  unsigned char hmac[32];
  unsigned char aes[32];
};

/** Bytes of one ticket key as passed from outside (name | hmac | aes). */
constexpr size_t kTicketKeyBytes = 80;

/** An SSL_CTX with Loch's policy. Create(), then configure before the first session. */
class TlsContext {
 public:
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  /**
   * A context with TLS 1.2..1.3 (narrowed by `minVersion`/`maxVersion`, TLS1_2_VERSION or
   * TLS1_3_VERSION; 0 keeps the bound), Loch's default cipher policy unless `ciphers` /
   * `ciphersuites` are not empty, renegotiation off. nullptr with `why` on failure.
   */
  static std::shared_ptr<TlsContext> Create(bool server, int minVersion, int maxVersion,
                                            const std::string& ciphers,
                                            const std::string& ciphersuites, std::string* why);

  bool server() const { return server_; }
  SSL_CTX* ctx() const { return ctx_; }

  /**
   * Server: adds a certificate (PEM chain, leaf first; PEM key) for the given names: exact
   * ("a.example.com") or wildcard ("*.example.com", one label). `isDefault` (or the first one
   * added) also serves clients that send no or an unknown server name. False with `why`.
   */
  bool AddCertificate(const std::string& chainPem, const std::string& keyPem,
                      const std::vector<std::string>& names, bool isDefault, std::string* why);

  /**
   * Server: the ALPN protocols in preference order (wire format: length-prefixed names). A client
   * that offers ALPN and shares none gets the no_application_protocol alert (RFC 7301, as nginx).
   * Client: the protocols offered.
   */
  bool SetAlpn(const unsigned char* wire, size_t len, std::string* why);

  /**
   * Server: ticket keys (n * kTicketKeyBytes). The first encrypts new tickets; every one decrypts
   * (a ticket under an older key is accepted and renewed), so keys rotate without failing
   * resumption. Every worker given the same bytes resumes the others' sessions.
   */
  bool SetTicketKeys(const unsigned char* bytes, size_t len, std::string* why);

  /**
   * Trusted CA certificates (PEM, several): the server verifies client certificates against
   * them (and advertises their names), the client verifies the server. Replaces the default store.
   */
  bool SetCaPem(const std::string& pem, std::string* why);

  /** Client: the CA file given, or OpenSSL's default paths (SSL_CTX_set_default_verify_paths). */
  bool LoadCaFile(const std::string& path, std::string* why);

  /**
   * Server: ask for a client certificate (`request`), fail the handshake without a valid one
   * (`require`). Client: verify the server (`require`; default on).
   */
  void SetVerify(bool request, bool require);

  /** The certificate to serve for `servername` (exact, then wildcard, then the default). */
  const Certificate* Select(const char* servername) const;

  const std::vector<unsigned char>& alpn() const { return alpn_; }
  bool verifyPeer() const { return verifyPeer_; }

  /**
   * Server: whether TLS 1.3 connections move to Loch's own record layer once the handshake is
   * done (tls13_record.h; off until set: @loch/tls's TlsServerContext sets it unless `records:
   * 'openssl'`). Applies to sessions made afterwards.
   */
  void SetOwnRecords(bool on);
  bool ownRecords() const { return ownRecords_; }
  /** Connections that moved to Loch's record layer, and TLS 1.3 ones that stayed on OpenSSL. */
  uint64_t recordsTaken() const { return recordsTaken_.load(std::memory_order_relaxed); }
  uint64_t recordsDeclined() const { return recordsDeclined_.load(std::memory_order_relaxed); }

 private:
  TlsContext(SSL_CTX* ctx, bool server);
  static int OnServername(SSL* ssl, int* alert, void* arg);
  static int OnAlpnSelect(SSL* ssl, const unsigned char** out, unsigned char* outlen,
                          const unsigned char* in, unsigned int inlen, void* arg);
  static int OnTicketKey(SSL* ssl, unsigned char* name, unsigned char* iv, EVP_CIPHER_CTX* cipher,
                         EVP_MAC_CTX* mac, int enc);
  static int OnNewSession(SSL* ssl, SSL_SESSION* session);
  static void OnKeylog(const SSL* ssl, const char* line);

  SSL_CTX* ctx_;
  bool server_;
  bool verifyPeer_ = false;
  std::vector<std::unique_ptr<Certificate>> certificates_;
  const Certificate* default_ = nullptr;
  std::map<std::string, const Certificate*> exact_;
  std::map<std::string, const Certificate*> wildcard_;  // key: "example.com" for "*.example.com"
  std::vector<unsigned char> alpn_;
  std::vector<TicketKey> ticketKeys_;
  // AES-256-CBC for tickets, fetched once: EVP_aes_256_cbc() (a legacy EVP_CIPHER) made
  // EVP_EncryptInit_ex fetch the provider's cipher by name at every ticket, under the method
  // store's lock.
  EVP_CIPHER* ticketCipher_ = nullptr;
  bool ownRecords_ = false;
  mutable std::atomic<uint64_t> recordsTaken_{0};
  mutable std::atomic<uint64_t> recordsDeclined_{0};

  friend class TlsSession;
};

/** Flags of TlsSession::Feed's result. */
enum FeedFlags : int {
  /** The handshake is complete (now or earlier). */
  kHandshakeDone = 1,
  /** The handshake completed during this call. */
  kHandshakeJustDone = 2,
  /** The peer's close_notify arrived: no more plaintext will come. */
  kPeerClosed = 4,
  /** The plaintext buffer filled up: call Feed again (with no new input) for the rest. */
  kMorePlaintext = 8,
  /** A new session (ticket) arrived for a client: SessionBytes() serializes it. */
  kNewSession = 16,
  /** The session failed: error(), errorKind(), alert(). Output may hold an alert to send. */
  kFailed = 32,
};

/** Result of one Feed. */
struct FeedResult {
  /** Plaintext bytes written into the caller's buffer. */
  size_t plaintext = 0;
  /** FeedFlags. */
  int flags = 0;
};

/**
 * One TLS connection over two BIOs of its own, made to spare copies. Input: OpenSSL reads the
 * ciphertext straight from the caller's bytes during Feed; only an incomplete record left at the
 * end is copied (kept for the next Feed). Output: records go straight into the caller's buffer
 * during EncryptInto; what is written outside it (handshake flights, alerts, tickets) waits in
 * a queue until the caller takes it (PendingOutput / TakeOutput).
 */
class TlsSession {
 public:
  /** Keeps `context` alive as long as the session (its callbacks read the context's tables). */
  explicit TlsSession(std::shared_ptr<const TlsContext> context);
  ~TlsSession();
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  /**
   * False when OpenSSL could not make the SSL (out of memory): error() says why. (After the
   * take-over the SSL is gone and Loch's record layer carries the session: still ok.)
   */
  bool ok() const { return ssl_ != nullptr || records_ != nullptr; }

  /** Client: the server name to send (SNI) and, when `verifyHost`, to check the certificate for. */
  bool SetServername(const std::string& name, bool verifyHost);
  /** Client: ALPN offer for this connection (wire format), replacing the context's. */
  bool SetAlpn(const unsigned char* wire, size_t len);
  /** Client: a session to resume (bytes from SessionBytes()); false when they do not parse. */
  bool SetSession(const unsigned char* bytes, size_t len);

  /**
   * Feeds `len` bytes of ciphertext (may be 0: just drive the handshake, e.g. the client's first
   * flight), then writes as much plaintext as is available into `plain` (up to `cap` bytes).
   * `data` must stay valid until a Feed returns without kMorePlaintext (the follow-up calls pass
   * no new input and go on reading it); then the unread rest, if any, is copied.
   */
  FeedResult Feed(const unsigned char* data, size_t len, unsigned char* plain, size_t cap);

  /**
   * Encrypts `len` bytes of plaintext. Only after the handshake. False when the session failed
   * (error()). The records join the output queue (TakeOutput).
   */
  bool Encrypt(const unsigned char* data, size_t len);

  /**
   * Encrypts `len` bytes straight into `out` (after any queued output, which is moved there
   * first), adding the bytes written to `*used`. With `cap` >= PendingOutput() +
   * EncryptBound(len) nothing spills into the queue. False when the session failed.
   */
  bool EncryptInto(const unsigned char* data, size_t len, unsigned char* out, size_t cap, size_t* used);

  /**
   * EncryptInto for a list of pieces (a writev: an HTTP head and its body, a chunk-size line, its
   * data and CRLF, frame headers and payloads): neighbouring small pieces share one record instead
   * of paying a record each (a header, a tag and an encryption pass per record, on both ends),
   * the way nginx's ssl_buffer_size coalesces a chain. Small pieces (kCoalesceBytes) wait for
   * their neighbours; a larger piece joins what waits before it when both fit in one 16 KiB
   * record (an HTTP head and its body: one record, not two); a piece that does not fit is
   * encrypted where it lies in whole records, only a small tail copied to share a record. The
   * bound for `cap` is EncryptBound(total) as for one buffer.
   */
  bool EncryptPiecesInto(const iovec* pieces, size_t count, unsigned char* out, size_t cap, size_t* used);

  /** Pieces up to this size are copied together into one record by EncryptPiecesInto. */
  static constexpr size_t kCoalesceBytes = 4096;

  /**
   * Most ciphertext that `len` bytes of plaintext become in full-size records: 128 bytes per
   * record covers AEAD (22-29) and CBC with HMAC-SHA384 (about 85). Smaller records (a peer's
   * record_size_limit) only make EncryptInto spill into the queue, never lose bytes.
   */
  static size_t EncryptBound(size_t len) { return len + (len / 16384 + 1) * 128; }

  /**
   * Stops reading the caller's current span: what OpenSSL has not read of it yet is copied and
   * read first by the next Feed. For a caller that must give its buffer back while a Feed still
   * reported kMorePlaintext (the ring, out of plaintext buffers). Bytes kept: heldBytes().
   */
  void Detach() {
    if (records_ != nullptr) {
      records_->Detach();
    } else if (inLen_ > 0) {
      HoldRest();
    }
  }
  /** Ciphertext kept inside the session for the next Feed (an incomplete record, a Detach()). */
  size_t heldBytes() const {
    return records_ != nullptr ? records_->heldBytes() : held_.size() - heldAt_ + inLen_;
  }
  /** True while unread input or decrypted plaintext waits inside the session. */
  bool hasPending() const {
    if (records_ != nullptr) return records_->hasPending();
    return heldBytes() > 0 || (ssl_ != nullptr && SSL_pending(ssl_) > 0);
  }
  /** Whether Loch's record layer carries this connection now (see TlsContext::SetOwnRecords). */
  bool ownRecords() const { return records_ != nullptr; }

  /** Queues close_notify into the output. Idempotent. */
  void Shutdown();

  /** Bytes of ciphertext waiting to be sent. */
  size_t PendingOutput() const;
  /** Moves up to `cap` pending output bytes into `out`; returns how many. */
  size_t TakeOutput(unsigned char* out, size_t cap);

  bool handshakeDone() const { return handshakeDone_; }
  bool server() const { return server_; }
  bool failed() const { return kind_ != ErrorKind::kNone; }
  ErrorKind errorKind() const { return kind_; }
  const std::string& error() const { return error_; }
  /** The alert code involved in the failure (received or sent), or -1. */
  int alert() const { return alert_; }
  /** Whether the failing alert came from the peer. */
  bool alertFromPeer() const { return alertFromPeer_; }

  /** Negotiated values, after the handshake. */
  std::string alpnProtocol() const;
  std::string servername() const;
  const char* version() const;
  const char* cipher() const;
  bool sessionReused() const;
  /** The peer's certificate, DER; empty when there is none. */
  std::vector<unsigned char> PeerCertificateDer() const;
  /** The last session a client received, serialized for SetSession; empty when none. */
  std::vector<unsigned char> SessionBytes() const;

  // The BIO callbacks (OpenSSL calls them; public only so the method tables can name them).
  static int SourceRead(BIO* bio, char* buf, size_t len, size_t* readbytes);
  static int SinkWrite(BIO* bio, const char* buf, size_t len, size_t* written);
  static long BioCtrl(BIO* bio, int cmd, long num, void* ptr);
  static int BioCreate(BIO* bio);

 private:
  static void OnInfo(const SSL* ssl, int where, int ret);
  /** Sets (or clears) the keylog callback the take-over learns the traffic secrets from. */
  void KeylogWindow(bool open);
  /** Keeps what the caller's input still holds (an incomplete record) for the next Feed. */
  void HoldRest();
  void Fail(ErrorKind kind, const std::string& why);
  void FailFromSsl(int code);
  void Advance(FeedResult* result, unsigned char* plain, size_t cap);
  /** At the end of a server's TLS 1.3 handshake: moves to Loch's record layer if the point is clean. */
  void TakeOver();
  /**
   * After the take-over: keeps what the getters say (negotiated_) and frees OpenSSL's SSL, which
   * never reads or writes again; its record layer, cipher contexts and session would otherwise
   * stay with every idle connection.
   */
  void ReleaseSsl();
  /** Reads with Loch's record layer (after TakeOver), then takes over its state. */
  void ReadRecords(const unsigned char* data, size_t len, FeedResult* result, unsigned char* plain, size_t cap);
  void SyncRecords();

  SSL* ssl_ = nullptr;
  BIO* rbio_ = nullptr;  // ciphertext in (owned by ssl_): reads held_, then in_
  BIO* wbio_ = nullptr;  // ciphertext out (owned by ssl_): writes out_, else queued_
  // Input: bytes kept from an earlier Feed (from heldAt_), then the caller's current span.
  std::vector<unsigned char> held_;
  size_t heldAt_ = 0;
  const unsigned char* in_ = nullptr;
  size_t inLen_ = 0;
  // Output: the caller's span during EncryptInto, and the queue for everything else.
  unsigned char* out_ = nullptr;
  size_t outCap_ = 0;
  size_t outLen_ = 0;
  std::vector<unsigned char> queued_;
  size_t queuedAt_ = 0;
  bool server_ = false;
  bool verifyPeer_ = false;
  bool sawInput_ = false;
  bool handshakeDone_ = false;
  bool peerClosed_ = false;
  bool shutdownSent_ = false;
  bool newSession_ = false;
  ErrorKind kind_ = ErrorKind::kNone;
  std::string error_;
  int alert_ = -1;
  bool alertFromPeer_ = false;
  SSL_SESSION* session_ = nullptr;  // client: the latest one received (a reference)
  std::shared_ptr<const TlsContext> context_;
  // Loch's record layer: the handshake watched for the take-over (servers with ownRecords), then
  // the record layer that replaced OpenSSL's.
  std::unique_ptr<Tls13Takeover> takeover_;
  std::unique_ptr<Tls13RecordLayer> records_;
  // The negotiated values once the SSL is freed (ReleaseSsl); nullptr while ssl_ answers.
  struct Negotiated {
    std::string alpn;
    std::string servername;
    const char* version = "";  // OpenSSL's static strings
    const char* cipher = "";
    bool reused = false;
    X509* peer = nullptr;  // a reference (mTLS), or none
    ~Negotiated() { X509_free(peer); }
  };
  std::unique_ptr<Negotiated> negotiated_;

  friend class TlsContext;
};

}  // namespace loch::tls

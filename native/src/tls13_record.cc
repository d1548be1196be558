// Loch's own TLS 1.3 record layer (see tls13_record.h; the safety argument is in
// packages/tls/README.md, "Loch's record layer").
#include "tls13_record.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/params.h>

#include <algorithm>
#include <cstring>
#include <utility>

namespace loch::tls {

namespace {

// RFC 8446 6: alert descriptions the record layer sends.
constexpr int kUnexpectedMessage = 10;
constexpr int kBadRecordMac = 20;
constexpr int kRecordOverflow = 22;
constexpr int kIllegalParameter = 47;
constexpr int kDecodeError = 50;
constexpr int kInternalError = 80;
constexpr int kUserCanceled = 90;
// Content types (RFC 8446 5.1) and the post-handshake messages (4).
constexpr unsigned char kAlert = 21;
constexpr unsigned char kHandshake = 22;
constexpr unsigned char kApplicationData = 23;
constexpr unsigned char kNewSessionTicket = 4;
constexpr unsigned char kKeyUpdate = 24;
// Records kept per direction while a handshake is watched: a server's tickets and a client's
// first requests are far below it; more is not a point to take over at.
constexpr size_t kCaptureCap = 64 * 1024;
// Room a sealed record takes beyond its plaintext: header, content type, tag.
constexpr size_t kSealOverhead = kRecordHeader + 1 + kTagLen;
// Records in a row without application data a peer may send (zero-length application data,
// user_canceled, KeyUpdate): RFC 8446 bounds none of them, and each costs an AEAD open (a
// KeyUpdate also a key derivation) for no progress. OpenSSL allows 32 empty records, 5 warning
// alerts and 32 KeyUpdates in a row, BoringSSL 32, 4 and 32; no peer sends more than a few.
constexpr uint32_t kMaxIdleRecords = 32;

// HKDF-Expand-Label(secret, label, "", length) (RFC 8446 7.1) for the outputs a traffic secret
// needs (key 16/32 bytes, IV 12, the next secret 32/48): at most one hash long, so HKDF-Expand
// (RFC 5869 2.3) is its first block alone, T(1) = HMAC(secret, HkdfLabel || 0x01). Computed with
// one HMAC context per hash and thread, its MAC and digest fetched once: through EVP_KDF each label
// cost a fetch, a context, parameters by name and a free (~19k instructions; 150k a connection).
// The context holds a secret only between Key() and Wipe(): a Scope re-keys it with zeros after use.
class HmacExpander {
 public:
  /** This thread's expander for `suite`'s hash (nullptr when OpenSSL refused). */
  static HmacExpander* For(const Tls13Suite& suite) {
    thread_local HmacExpander sha256(EVP_sha256());
    thread_local HmacExpander sha384(EVP_sha384());
    HmacExpander* e = suite.hashLen == 48 ? &sha384 : &sha256;
    return e->ctx_ != nullptr && e->hashLen_ == suite.hashLen ? e : nullptr;
  }

  /** The context keyed with one secret, wiped when it goes. */
  class Scope {
   public:
    Scope(HmacExpander* e, const unsigned char* secret) : e_(e) {
      keyed_ = e_ != nullptr && EVP_MAC_init(e_->ctx_, secret, e_->hashLen_, nullptr) == 1;
    }
    ~Scope() {
      if (e_ != nullptr) e_->Wipe();
    }
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;
    /** HKDF-Expand-Label(secret, label, "", len) into `out`; false past one block or on failure. */
    bool Expand(const char* label, unsigned char* out, size_t len) {
      return keyed_ && e_->Expand(label, out, len, first_++ == 0);
    }

   private:
    HmacExpander* e_;
    bool keyed_ = false;
    int first_ = 0;
  };

  ~HmacExpander() { EVP_MAC_CTX_free(ctx_); }  // OpenSSL wipes its state
  HmacExpander(const HmacExpander&) = delete;
  HmacExpander& operator=(const HmacExpander&) = delete;

 private:
  explicit HmacExpander(const EVP_MD* md) : hashLen_(static_cast<size_t>(EVP_MD_get_size(md))) {
    EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
    if (mac == nullptr) return;
    ctx_ = EVP_MAC_CTX_new(mac);
    EVP_MAC_free(mac);  // the context keeps its own reference
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, const_cast<char*>(EVP_MD_get0_name(md)), 0),
        OSSL_PARAM_construct_end(),
    };
    if (ctx_ != nullptr && EVP_MAC_CTX_set_params(ctx_, params) != 1) {
      EVP_MAC_CTX_free(ctx_);
      ctx_ = nullptr;
    }
  }

  bool Expand(const char* label, unsigned char* out, size_t len, bool fresh) {
    const size_t labelLen = strlen(label);
    if (len > hashLen_ || labelLen > 12) return false;  // one block; RFC 8446's labels are short
    // HkdfLabel: uint16 length, opaque label<7..255> = "tls13 " + label, opaque context<0..255> = "";
    // then HKDF-Expand's block counter 0x01.
    unsigned char info[2 + 1 + 6 + 12 + 1 + 1];
    info[0] = static_cast<unsigned char>(len >> 8);
    info[1] = static_cast<unsigned char>(len);
    info[2] = static_cast<unsigned char>(6 + labelLen);
    memcpy(info + 3, "tls13 ", 6);
    memcpy(info + 9, label, labelLen);
    info[9 + labelLen] = 0;
    info[10 + labelLen] = 1;
    unsigned char block[EVP_MAX_MD_SIZE];
    size_t n = 0;
    // The first label uses the context as Scope keyed it; the next ones restart it with that key.
    const bool ok = (fresh || EVP_MAC_init(ctx_, nullptr, 0, nullptr) == 1) &&
                    EVP_MAC_update(ctx_, info, 11 + labelLen) == 1 &&
                    EVP_MAC_final(ctx_, block, &n, sizeof block) == 1 && n == hashLen_;
    if (ok) memcpy(out, block, len);
    OPENSSL_cleanse(block, sizeof block);
    return ok;
  }

  // Re-keys with zeros: no state derived from the last secret stays in the context.
  void Wipe() {
    static const unsigned char zeros[EVP_MAX_MD_SIZE] = {};
    EVP_MAC_init(ctx_, zeros, hashLen_, nullptr);
  }

  EVP_MAC_CTX* ctx_ = nullptr;
  size_t hashLen_;
};

int Hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

const Tls13Suite* Tls13Suite::Of(uint16_t id) {
  // The AEADs fetched once per process: OpenSSL 3 would fetch the provider's implementation
  // behind EVP_aes_128_gcm() and the like again at every key setup (a name lookup each).
  static const Tls13Suite suites[] = {
      {0x1301, EVP_CIPHER_fetch(nullptr, "AES-128-GCM", nullptr), EVP_sha256(), 16, 32},
      {0x1302, EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr), EVP_sha384(), 32, 48},
      {0x1303, EVP_CIPHER_fetch(nullptr, "ChaCha20-Poly1305", nullptr), EVP_sha256(), 32, 32},
  };
  for (const Tls13Suite& s : suites) {
    if (s.id == id) return s.cipher != nullptr ? &s : nullptr;
  }
  return nullptr;
}

bool DeriveTrafficKeys(const Tls13Suite& suite, const unsigned char* secret, unsigned char* key, unsigned char* iv,
                       unsigned char* next) {
  HmacExpander::Scope keyed(HmacExpander::For(suite), secret);
  return keyed.Expand("key", key, suite.keyLen) && keyed.Expand("iv", iv, 12) &&
         (next == nullptr || keyed.Expand("traffic upd", next, suite.hashLen));
}

// --- TrafficKeys ---------------------------------------------------------------------------

TrafficKeys::~TrafficKeys() {
  EVP_CIPHER_CTX_free(ctx_);
  OPENSSL_cleanse(secret_, sizeof secret_);
  OPENSSL_cleanse(iv_, sizeof iv_);
}

TrafficKeys& TrafficKeys::operator=(TrafficKeys&& other) noexcept {
  if (this == &other) return *this;
  EVP_CIPHER_CTX_free(ctx_);
  suite_ = other.suite_;
  ctx_ = other.ctx_;
  other.ctx_ = nullptr;
  memcpy(secret_, other.secret_, sizeof secret_);
  memcpy(iv_, other.iv_, sizeof iv_);
  OPENSSL_cleanse(other.secret_, sizeof other.secret_);
  OPENSSL_cleanse(other.iv_, sizeof other.iv_);
  seq_ = other.seq_;
  other.seq_ = 0;
  return *this;
}

bool TrafficKeys::Init(const Tls13Suite& suite, const unsigned char* secret, uint64_t seq) {
  suite_ = &suite;
  memcpy(secret_, secret, suite.hashLen);
  seq_ = seq;
  ctx_ = EVP_CIPHER_CTX_new();
  return ctx_ != nullptr && Rekey();
}

bool TrafficKeys::Rekey() {
  unsigned char key[32];
  // Keyed for decryption; Open and Seal each set the direction of their record.
  bool ok = DeriveTrafficKeys(*suite_, secret_, key, iv_, nullptr) &&
            EVP_CipherInit_ex(ctx_, suite_->cipher, nullptr, key, nullptr, 0) == 1;
  OPENSSL_cleanse(key, sizeof key);
  return ok;
}

bool TrafficKeys::Update() {
  unsigned char next[kMaxSecret];
  bool ok;
  {
    HmacExpander::Scope keyed(HmacExpander::For(*suite_), secret_);
    ok = keyed.Expand("traffic upd", next, suite_->hashLen);
  }
  if (ok) memcpy(secret_, next, suite_->hashLen);
  OPENSSL_cleanse(next, sizeof next);
  if (!ok) return false;
  seq_ = 0;
  return Rekey();
}

void TrafficKeys::Nonce(unsigned char out[12]) const {
  // RFC 8446 5.3: the 64-bit sequence number, big-endian, left-padded to the IV's length, XOR the IV.
  memcpy(out, iv_, 12);
  for (int i = 0; i < 8; i++) out[11 - i] ^= static_cast<unsigned char>(seq_ >> (8 * i));
}

bool TrafficKeys::Open(const unsigned char* record, size_t bodyLen, unsigned char* out) {
  if (bodyLen < kTagLen + 1 || exhausted()) return false;
  const size_t ctLen = bodyLen - kTagLen;
  unsigned char nonce[12];
  Nonce(nonce);
  int n = 0;
  auto* tag = const_cast<unsigned char*>(record + kRecordHeader + ctLen);
  if (EVP_CipherInit_ex(ctx_, nullptr, nullptr, nullptr, nonce, 0) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx_, EVP_CTRL_AEAD_SET_TAG, static_cast<int>(kTagLen), tag) != 1 ||
      EVP_CipherUpdate(ctx_, nullptr, &n, record, static_cast<int>(kRecordHeader)) != 1 ||
      EVP_CipherUpdate(ctx_, out, &n, record + kRecordHeader, static_cast<int>(ctLen)) != 1 ||
      static_cast<size_t>(n) != ctLen || EVP_CipherFinal_ex(ctx_, out + ctLen, &n) != 1) {
    return false;
  }
  seq_++;
  return true;
}

size_t TrafficKeys::Seal(unsigned char type, const unsigned char* data, size_t len, unsigned char* out) {
  const iovec piece{const_cast<unsigned char*>(data), len};
  return SealPieces(type, &piece, 1, len, out);
}

size_t TrafficKeys::SealPieces(unsigned char type, const iovec* pieces, size_t count, size_t len,
                               unsigned char* out) {
  if (exhausted() || len > kMaxPlaintext) return 0;
  const size_t bodyLen = len + 1 + kTagLen;
  out[0] = kApplicationData;  // opaque_type
  out[1] = 3;
  out[2] = 3;
  out[3] = static_cast<unsigned char>(bodyLen >> 8);
  out[4] = static_cast<unsigned char>(bodyLen);
  unsigned char nonce[12];
  Nonce(nonce);
  // A nonce is used once: the sequence number moves on before anything can fail after the
  // encryption started (a failed seal ends the connection anyway).
  seq_++;
  unsigned char* body = out + kRecordHeader;
  int n = 0;
  if (EVP_CipherInit_ex(ctx_, nullptr, nullptr, nullptr, nonce, 1) != 1 ||
      EVP_CipherUpdate(ctx_, nullptr, &n, out, static_cast<int>(kRecordHeader)) != 1) {
    return 0;
  }
  size_t at = 0;
  for (size_t i = 0; i < count; i++) {
    const size_t m = pieces[i].iov_len;
    if (m == 0) continue;
    if (EVP_CipherUpdate(ctx_, body + at, &n, static_cast<const unsigned char*>(pieces[i].iov_base),
                         static_cast<int>(m)) != 1 ||
        static_cast<size_t>(n) != m)
      return 0;
    at += m;
  }
  if (at != len) return 0;
  // The inner content type after the content (RFC 8446 5.2; no padding).
  if (EVP_CipherUpdate(ctx_, body + len, &n, &type, 1) != 1 || n != 1 ||
      EVP_CipherFinal_ex(ctx_, body + len + 1, &n) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx_, EVP_CTRL_AEAD_GET_TAG, static_cast<int>(kTagLen), body + len + 1) != 1) {
    return 0;
  }
  return kRecordHeader + bodyLen;
}

// --- Tls13Takeover -------------------------------------------------------------------------

Tls13Takeover::~Tls13Takeover() {
  OPENSSL_cleanse(client_, sizeof client_);
  OPENSSL_cleanse(server_, sizeof server_);
  for (auto* s : {&out_, &in_}) {
    for (auto& r : s->records) OPENSSL_cleanse(r.data(), r.size());
  }
}

void Tls13Takeover::OnKeylog(const char* line) {
  // "<LABEL> <client random, hex> <secret, hex>" (NSS key log format).
  static constexpr char kClient[] = "CLIENT_TRAFFIC_SECRET_0 ";
  static constexpr char kServer[] = "SERVER_TRAFFIC_SECRET_0 ";
  unsigned char* secret;
  size_t* len;
  bool* have;
  if (strncmp(line, kClient, sizeof kClient - 1) == 0) {
    secret = client_;
    len = &clientLen_;
    have = &haveClient_;
  } else if (strncmp(line, kServer, sizeof kServer - 1) == 0) {
    secret = server_;
    len = &serverLen_;
    have = &haveServer_;
  } else {
    return;
  }
  const char* hex = strchr(line + sizeof kClient - 1, ' ');
  if (hex == nullptr) return;
  hex++;
  size_t n = 0;
  for (; hex[0] != '\0' && hex[1] != '\0' && n < kMaxSecret; hex += 2) {
    int hi = Hex(hex[0]);
    int lo = Hex(hex[1]);
    if (hi < 0 || lo < 0) break;
    secret[n++] = static_cast<unsigned char>(hi << 4 | lo);
  }
  // A second line for the same secret (never seen) would leave the watch unable to tell which
  // keys the records are under: refuse by marking the length unusable.
  *len = *have ? 0 : n;
  *have = true;
}

void Tls13Takeover::Stream::Observe(const unsigned char* data, size_t len, bool keyKnown) {
  while (len > 0) {
    if (bodyLeft == 0) {
      const size_t take = std::min(kRecordHeader - headerFill, len);
      memcpy(header + headerFill, data, take);
      headerFill += take;
      data += take;
      len -= take;
      if (headerFill < kRecordHeader) return;
      headerFill = 0;
      bodyLeft = static_cast<size_t>(header[3]) << 8 | header[4];
      // A record that starts once its key exists may be under it: kept to try. One that started
      // before cannot be (a record is encrypted before any of it is written).
      capturing = keyKnown && header[0] == kApplicationData && !overflow;
      if (capturing) {
        captured += kRecordHeader + bodyLeft;
        if (captured > kCaptureCap) {
          overflow = true;
          capturing = false;
        } else {
          records.emplace_back(header, header + kRecordHeader);
        }
      }
      continue;
    }
    const size_t take = std::min(bodyLeft, len);
    if (capturing) records.back().insert(records.back().end(), data, data + take);
    bodyLeft -= take;
    data += take;
    len -= take;
  }
}

bool Tls13Takeover::Count(TrafficKeys& keys, const Stream& s) {
  std::vector<unsigned char> scratch;
  bool seen = false;
  bool run = true;
  for (const auto& record : s.records) {
    const size_t body = record.size() - kRecordHeader;
    scratch.resize(body);
    if (keys.Open(record.data(), body, scratch.data())) {
      seen = true;  // Open moved the sequence on
    } else if (seen) {
      run = false;
      break;
    }
  }
  OPENSSL_cleanse(scratch.data(), scratch.size());
  return run;
}

std::string Tls13Takeover::Check(const Tls13Suite& suite) {
  if (!haveClient_ || !haveServer_) return "no application traffic secrets";
  if (clientLen_ != suite.hashLen || serverLen_ != suite.hashLen) return "traffic secrets of the wrong length";
  if (!out_.atBoundary() || !in_.atBoundary()) return "a record is partly written or read";
  if (out_.overflow || in_.overflow) return "too many records under the application keys";
  // The keys are derived here once: those that opened the records are the record layer's.
  if (!write_.Init(suite, server_, 0) || !read_.Init(suite, client_, 0)) return "cannot set up the application keys";
  if (!Count(write_, out_) || !Count(read_, in_)) return "records under the application keys are not a run";
  return std::string();
}

// --- Tls13RecordLayer ----------------------------------------------------------------------

std::unique_ptr<Tls13RecordLayer> Tls13RecordLayer::Create(TrafficKeys&& read, TrafficKeys&& write,
                                                           std::vector<unsigned char>* queue) {
  if (!read.ready() || !write.ready()) return nullptr;
  std::unique_ptr<Tls13RecordLayer> self(new Tls13RecordLayer());
  self->read_ = std::move(read);
  self->write_ = std::move(write);
  self->queue_ = queue;
  return self;
}

void Tls13RecordLayer::Hold(const unsigned char* data, size_t len) { held_.insert(held_.end(), data, data + len); }

void Tls13RecordLayer::HoldRest() {
  if (heldAt_ > 0) {
    held_.erase(held_.begin(), held_.begin() + static_cast<std::ptrdiff_t>(heldAt_));
    heldAt_ = 0;
  }
  held_.insert(held_.end(), in_, in_ + inLen_);
  in_ = nullptr;
  inLen_ = 0;
}

void Tls13RecordLayer::Detach() {
  if (inLen_ > 0) HoldRest();
}

RecordRead Tls13RecordLayer::Read(const unsigned char* data, size_t len, unsigned char* plain, size_t cap) {
  RecordRead result;
  if (len > 0 && !failed() && !peerClosed_) {
    if (inLen_ > 0) HoldRest();  // a caller that did not wait for `more` to clear
    in_ = data;
    inLen_ = len;
  }
  size_t used = 0;
  while (!failed() && !peerClosed_) {
    if (pendingAt_ < pending_.size()) {
      const size_t n = std::min(cap - used, pending_.size() - pendingAt_);
      memcpy(plain + used, pending_.data() + pendingAt_, n);
      used += n;
      pendingAt_ += n;
      if (pendingAt_ < pending_.size()) {
        result.more = true;
        break;
      }
      std::vector<unsigned char>().swap(pending_);  // kept by no idle connection
      pendingAt_ = 0;
      continue;
    }
    // The next record: whole in the caller's span (decrypted where it lies), or reassembled in
    // held_ (the only copy of ciphertext: a record split across receives).
    const unsigned char* record;
    size_t body;
    bool fromHeld = heldAt_ < held_.size();
    if (fromHeld) {
      size_t have = held_.size() - heldAt_;
      if (have < kRecordHeader) {
        const size_t take = std::min(kRecordHeader - have, inLen_);
        held_.insert(held_.end(), in_, in_ + take);
        in_ += take;
        inLen_ -= take;
        have += take;
        if (have < kRecordHeader) break;
      }
      body = static_cast<size_t>(held_[heldAt_ + 3]) << 8 | held_[heldAt_ + 4];
      if (body > kMaxCiphertext) {
        Abort(kRecordOverflow, "a TLS record longer than 2^14 + 256 bytes");
        break;
      }
      if (have < kRecordHeader + body) {
        const size_t take = std::min(kRecordHeader + body - have, inLen_);
        held_.insert(held_.end(), in_, in_ + take);
        in_ += take;
        inLen_ -= take;
        if (have + take < kRecordHeader + body) break;
      }
      record = held_.data() + heldAt_;
    } else {
      if (inLen_ == 0) break;
      if (inLen_ < kRecordHeader) {
        HoldRest();
        break;
      }
      body = static_cast<size_t>(in_[3]) << 8 | in_[4];
      if (body > kMaxCiphertext) {
        Abort(kRecordOverflow, "a TLS record longer than 2^14 + 256 bytes");
        break;
      }
      if (inLen_ < kRecordHeader + body) {
        HoldRest();
        break;
      }
      record = in_;
    }
    if (record[0] != kApplicationData) {
      // After the handshake every TLS 1.3 record is protected (RFC 8446 5: a change_cipher_spec
      // or a plaintext record now is an unexpected record type).
      Abort(kUnexpectedMessage, "an unprotected TLS record after the handshake");
      break;
    }
    if (body < kTagLen + 1) {
      Abort(kBadRecordMac, "a TLS record too short to authenticate");
      break;
    }
    const size_t inner = body - kTagLen;
    unsigned char* target;
    if (cap - used >= inner) {
      target = plain + used;
    } else if (used > 0 || cap == 0) {
      result.more = true;  // the caller's buffer is full (or none was given): the record waits
      break;
    } else {
      // A buffer smaller than a record: decrypted aside, handed out in pieces.
      pending_.resize(inner);
      target = pending_.data();
    }
    if (read_.exhausted()) {
      Abort(kInternalError, "the receive sequence number would wrap");
      break;
    }
    if (!read_.Open(record, body, target)) {
      Abort(kBadRecordMac, "a TLS record failed authentication (bad_record_mac)");
      break;
    }
    if (fromHeld) {
      heldAt_ += kRecordHeader + body;
      if (heldAt_ == held_.size()) {
        // An idle connection keeps no reassembly buffer (memory per idle connection).
        std::vector<unsigned char>().swap(held_);
        heldAt_ = 0;
      }
    } else {
      in_ += kRecordHeader + body;
      inLen_ -= kRecordHeader + body;
      if (inLen_ == 0) in_ = nullptr;
    }
    size_t content = 0;
    const bool ok = OnRecord(target, inner, &content);
    if (target == plain + used) {
      used += content;
    } else {
      pending_.resize(content);
      pendingAt_ = 0;
    }
    if (!ok) break;
  }
  if (keyUpdateOwed_ && !failed() && !closeSent_) {
    // RFC 8446 4.6.3: our own KeyUpdate (update_not_requested) before our next record, then the
    // new write keys. None while our write key sealed no application data since our last one: it
    // needs no update, and "an implementation which receives multiple KeyUpdates while it is
    // silent" answers once. So answers never outnumber our own records, whose writes wait for
    // the peer to read: a peer that sends requests and reads nothing gets at most one.
    keyUpdateOwed_ = false;
    if (!writeKeyFresh_) {
      const unsigned char message[] = {kKeyUpdate, 0, 0, 1, 0};
      Queue(kHandshake, message, sizeof message);
      if (!failed() && !write_.Update()) Abort(kInternalError, "cannot derive the next write keys");
      writeKeyFresh_ = true;
    }
  }
  if (failed() || peerClosed_) DropInput();
  result.plaintext = used;
  return result;
}

void Tls13RecordLayer::DropInput() {
  // What follows a failure or close_notify is never read; the caller's span is not referred to
  // once this Read returns (its buffer goes back to the ring or to JavaScript), and a record left
  // in pending_ is one that failed authentication.
  in_ = nullptr;
  inLen_ = 0;
  std::vector<unsigned char>().swap(held_);
  heldAt_ = 0;
  std::vector<unsigned char>().swap(pending_);
  pendingAt_ = 0;
}

bool Tls13RecordLayer::CountIdle() {
  if (++idleRecords_ <= kMaxIdleRecords) return true;
  Abort(kUnexpectedMessage, "more than 32 TLS records in a row without application data");
  return false;
}

bool Tls13RecordLayer::OnRecord(unsigned char* inner, size_t len, size_t* content) {
  // RFC 8446 5.2: the content type is the last non-zero byte; zeros after it are padding.
  size_t n = len;
  while (n > 0 && inner[n - 1] == 0) n--;
  if (n == 0) {
    Abort(kUnexpectedMessage, "a TLS record without a content type");
    return false;
  }
  const unsigned char type = inner[n - 1];
  n--;
  if (n > kMaxPlaintext) {
    Abort(kRecordOverflow, "a TLS record with more than 2^14 bytes of plaintext");
    return false;
  }
  switch (type) {
    case kApplicationData:
      *content = n;
      if (n == 0) return CountIdle();
      idleRecords_ = 0;
      return true;
    case kAlert:
      if (n != 2) {
        Abort(kDecodeError, "a malformed TLS alert");
        return false;
      }
      if (inner[1] == 0) {
        peerClosed_ = true;  // close_notify: what follows is ignored (RFC 8446 6.1)
        return true;
      }
      if (inner[1] == kUserCanceled) return CountIdle();  // a close_notify follows
      // Every other alert ends the connection, whatever its level says (RFC 8446 6).
      alert_ = inner[1];
      alertFromPeer_ = true;
      error_ = "the peer sent a TLS alert";
      return false;
    case kHandshake:
      if (n == 0) {
        Abort(kUnexpectedMessage, "an empty TLS handshake record");
        return false;
      }
      return OnHandshake(inner, n);
    default:
      Abort(kUnexpectedMessage, "a TLS record of an unexpected content type");
      return false;
  }
}

bool Tls13RecordLayer::OnHandshake(const unsigned char* p, size_t len) {
  while (len > 0) {
    if (len < 4) {
      Abort(kUnexpectedMessage, "a post-handshake message split across records (not supported)");
      return false;
    }
    const unsigned char type = p[0];
    const size_t size = static_cast<size_t>(p[1]) << 16 | static_cast<size_t>(p[2]) << 8 | p[3];
    if (size > len - 4) {
      Abort(kUnexpectedMessage, "a post-handshake message split across records (not supported)");
      return false;
    }
    if (type == kKeyUpdate) {
      if (size != 1) {
        Abort(kDecodeError, "a malformed KeyUpdate");
        return false;
      }
      if (p[4] > 1) {
        Abort(kIllegalParameter, "a KeyUpdate with an unknown request_update");
        return false;
      }
      if (len != 5) {
        // RFC 8446 5.1: a key change must end its record.
        Abort(kUnexpectedMessage, "a KeyUpdate not at the end of its record");
        return false;
      }
      if (!CountIdle()) return false;
      if (!read_.Update()) {
        Abort(kInternalError, "cannot derive the next read keys");
        return false;
      }
      if (p[4] == 1) keyUpdateOwed_ = true;
      return true;
    }
    Abort(kUnexpectedMessage, type == kNewSessionTicket ? "a NewSessionTicket from a client"
                                                        : "an unexpected post-handshake message");
    return false;
  }
  return true;
}

void Tls13RecordLayer::Queue(unsigned char type, const unsigned char* data, size_t len) {
  const iovec piece{const_cast<unsigned char*>(data), len};
  QueuePieces(type, &piece, 1, len);
}

void Tls13RecordLayer::QueuePieces(unsigned char type, const iovec* pieces, size_t count, size_t len) {
  const size_t at = queue_->size();
  queue_->resize(at + len + kSealOverhead);
  const size_t n = write_.SealPieces(type, pieces, count, len, queue_->data() + at);
  queue_->resize(at + n);
  if (n == 0 && error_.empty()) {
    error_ = write_.exhausted() ? "the send sequence number would wrap" : "cannot seal a TLS record";
    alert_ = kInternalError;
  }
}

void Tls13RecordLayer::Abort(int alert, const std::string& why) {
  if (failed()) return;
  if (!closeSent_) {
    // RFC 8446 6.2: a fatal alert, then nothing more.
    const unsigned char message[] = {2, static_cast<unsigned char>(alert)};
    Queue(kAlert, message, sizeof message);
    closeSent_ = true;
  }
  error_ = why;
  alert_ = alert;
  alertFromPeer_ = false;
}

bool Tls13RecordLayer::SealInto(const unsigned char* data, size_t len, unsigned char* out, size_t cap, size_t* used,
                                bool queuedAhead) {
  if (failed()) return false;
  if (closeSent_) {
    error_ = "write after close_notify";
    return false;
  }
  if (len > 0) writeKeyFresh_ = false;
  bool spill = queuedAhead || out == nullptr;
  while (len > 0) {
    const size_t n = std::min(len, kMaxPlaintext);
    if (!spill && cap - *used >= n + kSealOverhead) {
      const size_t w = write_.Seal(kApplicationData, data, n, out + *used);
      if (w == 0) {
        error_ = write_.exhausted() ? "the send sequence number would wrap" : "cannot seal a TLS record";
        alert_ = kInternalError;
        return false;
      }
      *used += w;
    } else {
      spill = true;  // order: once a record is queued, the rest follow it there
      Queue(kApplicationData, data, n);
      if (failed()) return false;
    }
    data += n;
    len -= n;
  }
  return true;
}

bool Tls13RecordLayer::SealPiecesInto(const iovec* pieces, size_t count, unsigned char* out, size_t cap,
                                      size_t* used, bool queuedAhead) {
  if (failed()) return false;
  if (closeSent_) {
    error_ = "write after close_notify";
    return false;
  }
  constexpr size_t kMaxPerRecord = 64;  // pieces joined into one record (more start the next one)
  iovec record[kMaxPerRecord];
  bool spill = queuedAhead || out == nullptr;
  size_t i = 0;
  size_t off = 0;  // bytes of pieces[i] already sealed
  for (;;) {
    size_t len = 0;
    size_t k = 0;
    while (i < count && len < kMaxPlaintext && k < kMaxPerRecord) {
      const size_t left = pieces[i].iov_len - off;
      const size_t take = std::min(left, kMaxPlaintext - len);
      if (take > 0) {
        record[k++] = iovec{static_cast<unsigned char*>(pieces[i].iov_base) + off, take};
        len += take;
        off += take;
      }
      if (off == pieces[i].iov_len) {
        i++;
        off = 0;
      }
    }
    if (len == 0) return true;
    writeKeyFresh_ = false;
    if (!spill && cap - *used >= len + kSealOverhead) {
      const size_t w = write_.SealPieces(kApplicationData, record, k, len, out + *used);
      if (w == 0) {
        error_ = write_.exhausted() ? "the send sequence number would wrap" : "cannot seal a TLS record";
        alert_ = kInternalError;
        return false;
      }
      *used += w;
    } else {
      spill = true;  // order: once a record is queued, the rest follow it there
      QueuePieces(kApplicationData, record, k, len);
      if (failed()) return false;
    }
  }
}

void Tls13RecordLayer::CloseNotify() {
  if (closeSent_ || failed()) return;
  const unsigned char message[] = {1, 0};
  Queue(kAlert, message, sizeof message);
  closeSent_ = true;
}

}  // namespace loch::tls

// The TLS engine (see tls_engine.h). Every OpenSSL call here resolves against
// the symbols the node binary exports: the addon links no libssl of its own, so it runs the same
// OpenSSL (version, FIPS mode, configuration) as node:tls in the same process.
#include "tls_engine.h"

#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cctype>
#include <climits>
#include <cstring>

namespace loch::tls {

namespace {

// Mozilla's "intermediate" TLS 1.2 list: ECDHE only, AEAD only.
constexpr const char* kDefaultCiphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
// TLS 1.3: Mozilla's order, AES-128-GCM first (OpenSSL's own default starts with AES-256, which
// costs more per byte for no practical gain).
constexpr const char* kDefaultSuites = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";
constexpr const char* kDefaultGroups = "X25519:P-256:P-384";
const unsigned char kSessionIdContext[] = "loch";

// The OpenSSL error queue as one line ("reason; reason"), emptied.
std::string DrainErrors(const char* fallback) {
  std::string out;
  char buf[256];
  unsigned long e;
  while ((e = ERR_get_error()) != 0) {
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? std::string(fallback) : out;
}

std::string Lower(const std::string& s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool IsIpLiteral(const std::string& s) {
  unsigned char buf[16];
  return inet_pton(AF_INET, s.c_str(), buf) == 1 || inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

// Before each read or write: SSL_get_error needs an empty error queue. Peeking first because the
// queue is almost always empty already, and ERR_clear_error resets all its slots every time
// (about 770 instructions, twice per request and side: a tenth of a small request's engine cost;
// also once per connection made and once per close_notify sent).
void ClearErrorQueue() {
  if (ERR_peek_error() != 0) ERR_clear_error();
}

// A read-only memory BIO over a string (no copy).
BIO* ReadBio(const std::string& s) { return BIO_new_mem_buf(s.data(), static_cast<int>(s.size())); }

}  // namespace

// The session's two BIO types, made once per process (OpenSSL's method tables are immutable once
// set up; C++ initializes function-local statics once, thread-safely).
namespace {

BIO_METHOD* MakeMethod(const char* name, bool source) {
  BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, name);
  if (m == nullptr) return nullptr;
  if (source) {
    BIO_meth_set_read_ex(m, TlsSession::SourceRead);
  } else {
    BIO_meth_set_write_ex(m, TlsSession::SinkWrite);
  }
  BIO_meth_set_ctrl(m, TlsSession::BioCtrl);
  BIO_meth_set_create(m, TlsSession::BioCreate);
  return m;
}

const BIO_METHOD* SourceMethod() {
  static BIO_METHOD* method = MakeMethod("loch tls source", true);
  return method;
}

const BIO_METHOD* SinkMethod() {
  static BIO_METHOD* method = MakeMethod("loch tls sink", false);
  return method;
}

}  // namespace

Certificate::~Certificate() {
  X509_free(leaf);
  EVP_PKEY_free(key);
  if (chain != nullptr) sk_X509_pop_free(chain, X509_free);
}

TlsContext::TlsContext(SSL_CTX* ctx, bool server) : ctx_(ctx), server_(server) {}

TlsContext::~TlsContext() {
  SSL_CTX_free(ctx_);
  EVP_CIPHER_free(ticketCipher_);
}

std::shared_ptr<TlsContext> TlsContext::Create(bool server, int minVersion, int maxVersion,
                                               const std::string& ciphers,
                                               const std::string& ciphersuites, std::string* why) {
  ERR_clear_error();
  SSL_CTX* ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
  if (ctx == nullptr) {
    *why = DrainErrors("SSL_CTX_new failed");
    return nullptr;
  }
  std::shared_ptr<TlsContext> self(new TlsContext(ctx, server));
  int lo = minVersion != 0 ? minVersion : TLS1_2_VERSION;
  int hi = maxVersion != 0 ? maxVersion : TLS1_3_VERSION;
  if (lo < TLS1_2_VERSION || hi > TLS1_3_VERSION || lo > hi) {
    *why = "versions must lie within TLSv1.2..TLSv1.3, minimum first";
    return nullptr;
  }
  SSL_CTX_set_min_proto_version(ctx, lo);
  SSL_CTX_set_max_proto_version(ctx, hi);
  // No renegotiation, no compression; the server picks the cipher in its order, except that a
  // client listing ChaCha20 first (no AES hardware) gets it. 0-RTT stays off (max early data is 0
  // unless set).
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                               SSL_OP_PRIORITIZE_CHACHA);
  // An idle connection keeps no 16 KiB record buffers (memory per idle connection).
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  if (SSL_CTX_set_cipher_list(ctx, ciphers.empty() ? kDefaultCiphers : ciphers.c_str()) != 1) {
    *why = "ciphers: " + DrainErrors("no usable cipher");
    return nullptr;
  }
  if (SSL_CTX_set_ciphersuites(ctx, ciphersuites.empty() ? kDefaultSuites : ciphersuites.c_str()) != 1) {
    *why = "ciphersuites: " + DrainErrors("no usable TLS 1.3 suite");
    return nullptr;
  }
  if (SSL_CTX_set1_groups_list(ctx, kDefaultGroups) != 1) {
    *why = DrainErrors("cannot set groups");
    return nullptr;
  }
  SSL_CTX_set_app_data(ctx, self.get());
  if (server) {
    SSL_CTX_set_session_id_context(ctx, kSessionIdContext, sizeof kSessionIdContext - 1);
    // Resumption is by tickets only: stateless, so every worker resumes every other's sessions
    // once they share the ticket keys, and no per-process cache grows.
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(ctx, 1);
    SSL_CTX_set_tlsext_servername_callback(ctx, OnServername);
  } else {
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, OnNewSession);
    self->SetVerify(true, true);
  }
  return self;
}

bool TlsContext::AddCertificate(const std::string& chainPem, const std::string& keyPem,
                                const std::vector<std::string>& names, bool isDefault,
                                std::string* why) {
  ERR_clear_error();
  auto cert = std::make_unique<Certificate>();
  BIO* bio = ReadBio(chainPem);
  cert->leaf = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  if (cert->leaf == nullptr) {
    BIO_free(bio);
    *why = "certificate: " + DrainErrors("no PEM certificate");
    return false;
  }
  cert->chain = sk_X509_new_null();
  while (X509* extra = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) sk_X509_push(cert->chain, extra);
  BIO_free(bio);
  ERR_clear_error();  // the end of the PEM list
  bio = ReadBio(keyPem);
  cert->key = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (cert->key == nullptr) {
    *why = "key: " + DrainErrors("no PEM private key");
    return false;
  }
  if (X509_check_private_key(cert->leaf, cert->key) != 1) {
    ERR_clear_error();
    *why = "the private key does not match the certificate";
    return false;
  }
  const Certificate* added = cert.get();
  if (isDefault || default_ == nullptr) {
    if (SSL_CTX_use_cert_and_key(ctx_, cert->leaf, cert->key, cert->chain, 1) != 1) {
      *why = DrainErrors("cannot use the certificate");
      return false;
    }
    default_ = added;
  }
  for (const std::string& raw : names) {
    std::string name = Lower(raw);
    if (name.size() > 2 && name[0] == '*' && name[1] == '.') {
      wildcard_[name.substr(2)] = added;
    } else if (!name.empty()) {
      exact_[name] = added;
    }
  }
  certificates_.push_back(std::move(cert));
  return true;
}

const Certificate* TlsContext::Select(const char* servername) const {
  if (servername == nullptr || servername[0] == '\0') return default_;
  std::string name = Lower(servername);
  auto exact = exact_.find(name);
  if (exact != exact_.end()) return exact->second;
  size_t dot = name.find('.');
  if (dot != std::string::npos && dot > 0) {
    auto wild = wildcard_.find(name.substr(dot + 1));
    if (wild != wildcard_.end()) return wild->second;
  }
  return default_;
}

int TlsContext::OnServername(SSL* ssl, int* alert, void*) {
  auto* self = static_cast<TlsContext*>(SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl)));
  const Certificate* cert = self->Select(SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name));
  if (cert == nullptr) {
    *alert = SSL_AD_UNRECOGNIZED_NAME;
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  }
  // The default is the context's own; another one goes onto this connection only. One SSL_CTX
  // for all names keeps ALPN, tickets and client verification the same whatever name was asked.
  if (cert != self->default_ && SSL_use_cert_and_key(ssl, cert->leaf, cert->key, cert->chain, 1) != 1) {
    *alert = SSL_AD_INTERNAL_ERROR;
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  }
  return SSL_TLSEXT_ERR_OK;
}

bool TlsContext::SetAlpn(const unsigned char* wire, size_t len, std::string* why) {
  // Validate the wire form: non-empty names, lengths that add up.
  for (size_t i = 0; i < len;) {
    size_t n = wire[i];
    if (n == 0 || i + 1 + n > len) {
      *why = "malformed ALPN list";
      return false;
    }
    i += 1 + n;
  }
  alpn_.assign(wire, wire + len);
  if (server_) {
    SSL_CTX_set_alpn_select_cb(ctx_, len == 0 ? nullptr : OnAlpnSelect, this);
    return true;
  }
  if (SSL_CTX_set_alpn_protos(ctx_, len == 0 ? nullptr : wire, static_cast<unsigned>(len)) != 0) {
    *why = DrainErrors("cannot set ALPN");
    return false;
  }
  return true;
}

int TlsContext::OnAlpnSelect(SSL*, const unsigned char** out, unsigned char* outlen,
                             const unsigned char* in, unsigned int inlen, void* arg) {
  auto* self = static_cast<TlsContext*>(arg);
  const std::vector<unsigned char>& ours = self->alpn_;
  // The server's preference order, not the client's.
  for (size_t i = 0; i < ours.size(); i += 1 + ours[i]) {
    unsigned char n = ours[i];
    for (unsigned int j = 0; j < inlen; j += 1 + in[j]) {
      if (in[j] == n && j + 1 + n <= inlen && memcmp(in + j + 1, ours.data() + i + 1, n) == 0) {
        *out = in + j + 1;
        *outlen = n;
        return SSL_TLSEXT_ERR_OK;
      }
    }
  }
  return SSL_TLSEXT_ERR_ALERT_FATAL;  // no_application_protocol
}

bool TlsContext::SetTicketKeys(const unsigned char* bytes, size_t len, std::string* why) {
  if (!server_) {
    *why = "ticket keys belong to a server context";
    return false;
  }
  if (len == 0 || len % kTicketKeyBytes != 0) {
    *why = "ticket keys must be a non-empty multiple of 80 bytes (16 name, 32 HMAC, 32 AES)";
    return false;
  }
  std::vector<TicketKey> keys(len / kTicketKeyBytes);
  for (size_t i = 0; i < keys.size(); i++) {
    const unsigned char* k = bytes + i * kTicketKeyBytes;
    memcpy(keys[i].name, k, 16);
    memcpy(keys[i].hmac, k + 16, 32);
    memcpy(keys[i].aes, k + 48, 32);
  }
  if (ticketCipher_ == nullptr) {
    ERR_clear_error();
    ticketCipher_ = EVP_CIPHER_fetch(nullptr, "AES-256-CBC", nullptr);
    if (ticketCipher_ == nullptr) {
      *why = DrainErrors("cannot fetch AES-256-CBC for session tickets");
      return false;
    }
  }
  ticketKeys_.swap(keys);
  SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx_, OnTicketKey);
  return true;
}

int TlsContext::OnTicketKey(SSL* ssl, unsigned char* name, unsigned char* iv, EVP_CIPHER_CTX* cipher,
                            EVP_MAC_CTX* mac, int enc) {
  auto* self = static_cast<TlsContext*>(SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl)));
  const std::vector<TicketKey>& keys = self->ticketKeys_;
  if (keys.empty()) return enc ? -1 : 0;
  size_t index = 0;
  if (enc) {
    memcpy(name, keys[0].name, 16);
    if (RAND_bytes(iv, EVP_MAX_IV_LENGTH) != 1) return -1;
  } else {
    while (index < keys.size() && memcmp(name, keys[index].name, 16) != 0) index++;
    if (index == keys.size()) return 0;  // unknown key (rotated out): full handshake
  }
  const TicketKey& key = keys[index];
  OSSL_PARAM params[3];
  params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, const_cast<unsigned char*>(key.hmac), 32);
  params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, const_cast<char*>("SHA256"), 0);
  params[2] = OSSL_PARAM_construct_end();
  if (EVP_MAC_CTX_set_params(mac, params) != 1) return -1;
  int ok = enc ? EVP_EncryptInit_ex(cipher, self->ticketCipher_, nullptr, key.aes, iv)
               : EVP_DecryptInit_ex(cipher, self->ticketCipher_, nullptr, key.aes, iv);
  if (ok != 1) return -1;
  // A ticket under an older key resumes, and gets a new ticket under the current one.
  return enc || index == 0 ? 1 : 2;
}

bool TlsContext::SetCaPem(const std::string& pem, std::string* why) {
  ERR_clear_error();
  X509_STORE* store = X509_STORE_new();
  STACK_OF(X509_NAME)* names = sk_X509_NAME_new_null();
  BIO* bio = ReadBio(pem);
  int count = 0;
  while (X509* ca = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) {
    X509_STORE_add_cert(store, ca);
    if (server_) sk_X509_NAME_push(names, X509_NAME_dup(X509_get_subject_name(ca)));
    X509_free(ca);
    count++;
  }
  BIO_free(bio);
  ERR_clear_error();
  if (count == 0) {
    X509_STORE_free(store);
    sk_X509_NAME_pop_free(names, X509_NAME_free);
    *why = "no PEM certificate among the CAs";
    return false;
  }
  SSL_CTX_set_cert_store(ctx_, store);
  if (server_) {
    SSL_CTX_set_client_CA_list(ctx_, names);
  } else {
    sk_X509_NAME_pop_free(names, X509_NAME_free);
  }
  return true;
}

bool TlsContext::LoadCaFile(const std::string& path, std::string* why) {
  ERR_clear_error();
  int ok = path.empty() ? SSL_CTX_set_default_verify_paths(ctx_)
                        : SSL_CTX_load_verify_locations(ctx_, path.c_str(), nullptr);
  if (ok != 1) {
    *why = DrainErrors("cannot load the CA certificates");
    return false;
  }
  return true;
}

void TlsContext::SetVerify(bool request, bool require) {
  verifyPeer_ = request;
  int mode = SSL_VERIFY_NONE;
  if (request) {
    mode = SSL_VERIFY_PEER;
    if (server_) mode |= SSL_VERIFY_CLIENT_ONCE | (require ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0);
  }
  SSL_CTX_set_verify(ctx_, mode, nullptr);
}

void TlsContext::SetOwnRecords(bool on) {
  if (!server_) return;  // server side first
  ownRecords_ = on;
}

void TlsContext::OnKeylog(const SSL* ssl, const char* line) {
  auto* s = static_cast<TlsSession*>(SSL_get_app_data(ssl));
  if (s != nullptr && s->takeover_ != nullptr) s->takeover_->OnKeylog(line);
}

int TlsContext::OnNewSession(SSL* ssl, SSL_SESSION* session) {
  auto* s = static_cast<TlsSession*>(SSL_get_app_data(ssl));
  if (s == nullptr) return 0;
  if (s->session_ != nullptr) SSL_SESSION_free(s->session_);
  s->session_ = session;
  s->newSession_ = true;
  return 1;  // the reference is ours now
}

TlsSession::TlsSession(std::shared_ptr<const TlsContext> context) : context_(std::move(context)) {
  server_ = context_->server();
  verifyPeer_ = context_->verifyPeer();
  ClearErrorQueue();
  ssl_ = SSL_new(context_->ctx());
  if (ssl_ == nullptr) {
    Fail(ErrorKind::kUsage, DrainErrors("SSL_new failed"));
    return;
  }
  rbio_ = BIO_new(SourceMethod());
  wbio_ = BIO_new(SinkMethod());
  if (rbio_ == nullptr || wbio_ == nullptr) {
    BIO_free(rbio_);
    BIO_free(wbio_);
    rbio_ = wbio_ = nullptr;
    SSL_free(ssl_);
    ssl_ = nullptr;
    Fail(ErrorKind::kUsage, DrainErrors("BIO_new failed"));
    return;
  }
  BIO_set_data(rbio_, this);
  BIO_set_data(wbio_, this);
  SSL_set_bio(ssl_, rbio_, wbio_);
  SSL_set_app_data(ssl_, this);
  SSL_set_info_callback(ssl_, OnInfo);
  if (server_) {
    SSL_set_accept_state(ssl_);
    if (context_->ownRecords()) takeover_ = std::make_unique<Tls13Takeover>();
  } else {
    SSL_set_connect_state(ssl_);
  }
}

TlsSession::~TlsSession() {
  if (session_ != nullptr) SSL_SESSION_free(session_);
  if (ssl_ != nullptr) SSL_free(ssl_);
}

bool TlsSession::SetServername(const std::string& name, bool verifyHost) {
  if (ssl_ == nullptr || name.empty()) return false;
  bool ip = IsIpLiteral(name);
  // SNI carries host names only (RFC 6066); an IP address is still checked against the SANs.
  if (!ip && SSL_set_tlsext_host_name(ssl_, name.c_str()) != 1) return false;
  if (verifyHost && verifyPeer_) {
    SSL_set_hostflags(ssl_, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    int ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_), name.c_str())
                : SSL_set1_host(ssl_, name.c_str());
    if (ok != 1) return false;
  }
  return true;
}

bool TlsSession::SetAlpn(const unsigned char* wire, size_t len) {
  if (ssl_ == nullptr || server_) return false;
  return SSL_set_alpn_protos(ssl_, len == 0 ? nullptr : wire, static_cast<unsigned>(len)) == 0;
}

bool TlsSession::SetSession(const unsigned char* bytes, size_t len) {
  if (ssl_ == nullptr || server_) return false;
  const unsigned char* p = bytes;
  SSL_SESSION* session = d2i_SSL_SESSION(nullptr, &p, static_cast<long>(len));
  if (session == nullptr) {
    ERR_clear_error();
    return false;
  }
  int ok = SSL_set_session(ssl_, session);
  SSL_SESSION_free(session);
  ERR_clear_error();
  return ok == 1;
}

void TlsSession::KeylogWindow(bool open) {
  // The keylog callback is how OpenSSL 3.0 hands out the TLS 1.3 traffic secrets (it has no call
  // that returns them); they go to the session's take-over watch only, never to a log. OpenSSL
  // formats every secret it derives as a hex line before calling it (sprintf("%02x") per byte:
  // ~46k instructions a secret, 5 a handshake), and only when the callback is set, so it is set
  // only while the secrets the watch needs are derived: from the server's EncryptedExtensions
  // (the two handshake secrets are behind) to the end of that SSL_do_handshake (the exporter
  // secret, which OpenSSL derives and logs just before the server's traffic secret, is formatted
  // too), and around the SSL_do_handshake that reads the client's Finished. The callback is the
  // SSL_CTX's; a context is used by one thread only (its JavaScript environment's) and the window
  // never stays open past one SSL_do_handshake, so no other connection's handshake sees it. A
  // secret missed (another OpenSSL's order) declines the take-over: the connection stays on OpenSSL.
  SSL_CTX_set_keylog_callback(SSL_get_SSL_CTX(ssl_), open ? TlsContext::OnKeylog : nullptr);
}

void TlsSession::OnInfo(const SSL* ssl, int where, int ret) {
  auto* self = static_cast<TlsSession*>(SSL_get_app_data(ssl));
  if (self == nullptr) return;
  if ((where & SSL_CB_ACCEPT_LOOP) != 0 && self->takeover_ != nullptr &&
      SSL_get_state(ssl) == TLS_ST_SW_ENCRYPTED_EXTENSIONS) {
    self->KeylogWindow(true);  // EncryptedExtensions written: the handshake secrets are behind
  }
  if ((where & SSL_CB_ALERT) == 0) return;
  int level = ret >> 8;
  int desc = ret & 0xff;
  if (desc == SSL_AD_CLOSE_NOTIFY) return;
  if (level != SSL3_AL_FATAL) return;
  if (self->alert_ >= 0) return;  // the first one tells the story
  self->alert_ = desc;
  self->alertFromPeer_ = (where & SSL_CB_READ) != 0;
}

void TlsSession::Fail(ErrorKind kind, const std::string& why) {
  if (kind_ != ErrorKind::kNone) return;
  kind_ = kind;
  error_ = why;
}

void TlsSession::FailFromSsl(int code) {
  if (code != SSL_ERROR_SSL) {
    ERR_clear_error();
    Fail(ErrorKind::kProtocol, code == SSL_ERROR_SYSCALL ? "unexpected end of the TLS stream"
                                                          : "TLS failure " + std::to_string(code));
    return;
  }
  unsigned long first = ERR_peek_error();
  int reason = ERR_GET_REASON(first);
  std::string why = DrainErrors("TLS failure");
  long verify = SSL_get_verify_result(ssl_);
  if (alertFromPeer_) {
    const char* name = SSL_alert_desc_string_long(alert_ | (SSL3_AL_FATAL << 8));
    Fail(ErrorKind::kAlert, std::string("the peer sent the fatal alert ") + name + " (" + std::to_string(alert_) +
                                "): " + why);
  } else if (verifyPeer_ && verify != X509_V_OK) {
    Fail(ErrorKind::kCertificate,
         std::string("certificate verification failed: ") + X509_verify_cert_error_string(verify) + " (" + why + ")");
  } else if (reason == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE || reason == SSL_R_CERTIFICATE_VERIFY_FAILED) {
    Fail(ErrorKind::kCertificate, why);
  } else {
    Fail(ErrorKind::kProtocol, why);
  }
}

FeedResult TlsSession::Feed(const unsigned char* data, size_t len, unsigned char* plain, size_t cap) {
  FeedResult result;
  if (records_ != nullptr) {
    if (!failed() && !peerClosed_) ReadRecords(data, len, &result, plain, cap);
  } else if (ssl_ != nullptr && !failed() && len > 0) {
    if (server_ && !sawInput_ && std::isalpha(data[0])) {
      // A TLS record starts with 0x14..0x17; a letter is an HTTP method.
      Fail(ErrorKind::kPlainHttp, "a plain HTTP request was sent to a TLS port");
    } else {
      if (inLen_ > 0) HoldRest();  // a caller that did not wait for kMorePlaintext to clear
      in_ = data;
      inLen_ = len;
    }
    sawInput_ = true;
  }
  if (ssl_ != nullptr && !failed() && records_ == nullptr) Advance(&result, plain, cap);
  if ((result.flags & kMorePlaintext) == 0 && inLen_ > 0) HoldRest();
  if (handshakeDone_) result.flags |= kHandshakeDone;
  if (peerClosed_) result.flags |= kPeerClosed;
  if (newSession_) {
    result.flags |= kNewSession;
    newSession_ = false;
  }
  if (failed()) result.flags |= kFailed;
  return result;
}

void TlsSession::Advance(FeedResult* result, unsigned char* plain, size_t cap) {
  ClearErrorQueue();
  if (!handshakeDone_) {
    const bool window = takeover_ != nullptr;
    if (window && takeover_->wantsClientSecret()) KeylogWindow(true);
    int rc = SSL_do_handshake(ssl_);
    if (window) KeylogWindow(false);
    if (rc != 1) {
      int code = SSL_get_error(ssl_, rc);
      if (code != SSL_ERROR_WANT_READ && code != SSL_ERROR_WANT_WRITE) FailFromSsl(code);
      return;
    }
    handshakeDone_ = true;
    result->flags |= kHandshakeJustDone;
    if (takeover_ != nullptr) TakeOver();
    if (records_ != nullptr) {
      // What OpenSSL did not read (the client's first request behind its Finished, often) is the
      // new record layer's: kept bytes handed over, the caller's span read from where it stands.
      records_->Hold(held_.data() + heldAt_, held_.size() - heldAt_);
      held_.clear();
      heldAt_ = 0;
      const unsigned char* rest = in_;
      const size_t restLen = inLen_;
      in_ = nullptr;
      inLen_ = 0;
      ReadRecords(rest, restLen, result, plain, cap);
      return;
    }
  }
  // Application data (and post-handshake messages: TLS 1.3 tickets, key updates) that arrived.
  // None when every byte given was read and OpenSSL holds nothing: a server's handshake usually
  // ends with the client's Finished alone, and an SSL_read then would only set up a record read
  // buffer (malloc, with SSL_MODE_RELEASE_BUFFERS), find the input empty and free it again.
  if (inLen_ == 0 && heldAt_ == held_.size() && SSL_has_pending(ssl_) == 0) return;
  while (!peerClosed_ && result->plaintext < cap) {
    size_t n = 0;
    int rc = SSL_read_ex(ssl_, plain + result->plaintext, cap - result->plaintext, &n);
    if (rc == 1) {
      result->plaintext += n;
      // Every byte given was read and decrypted: another SSL_read would only find the input empty
      // (a record-buffer allocation and a failed read per record, with SSL_MODE_RELEASE_BUFFERS).
      if (inLen_ == 0 && heldAt_ == held_.size() && SSL_has_pending(ssl_) == 0) break;
      continue;
    }
    int code = SSL_get_error(ssl_, rc);
    if (code == SSL_ERROR_ZERO_RETURN) {
      peerClosed_ = true;
    } else if (code != SSL_ERROR_WANT_READ && code != SSL_ERROR_WANT_WRITE) {
      FailFromSsl(code);
    }
    break;
  }
  if (!failed() && !peerClosed_ && result->plaintext == cap && (SSL_pending(ssl_) > 0 || inLen_ + held_.size() - heldAt_ > 0)) {
    result->flags |= kMorePlaintext;
  }
}

void TlsSession::TakeOver() {
  // The watch ends here either way (its copies of the secrets are wiped with it).
  std::unique_ptr<Tls13Takeover> watch = std::move(takeover_);
  if (SSL_version(ssl_) != TLS1_3_VERSION) return;  // TLS 1.2 stays on OpenSSL, not counted
  const SSL_CIPHER* cipher = SSL_get_current_cipher(ssl_);
  const Tls13Suite* suite = cipher == nullptr ? nullptr : Tls13Suite::Of(SSL_CIPHER_get_protocol_id(cipher));
  // Clean point (packages/tls/README.md, "Loch's record layer"): OpenSSL holds no input it read
  // and did not hand out (SSL_has_pending), wants nothing, and every record it wrote is in our
  // sink (the sink never refuses, so its write buffer is empty); the records under the
  // application keys are counted by trial decryption.
  std::string why = suite == nullptr ? "a suite the record layer does not run" : watch->Check(*suite);
  if (why.empty() && (SSL_has_pending(ssl_) != 0 || SSL_want(ssl_) != SSL_NOTHING)) why = "OpenSSL holds input";
  if (why.empty()) {
    records_ = Tls13RecordLayer::Create(std::move(watch->readKeys()), std::move(watch->writeKeys()), &queued_);
  }
  (records_ != nullptr ? context_->recordsTaken_ : context_->recordsDeclined_).fetch_add(1, std::memory_order_relaxed);
  if (records_ != nullptr) ReleaseSsl();
}

void TlsSession::ReleaseSsl() {
  auto kept = std::make_unique<Negotiated>();
  kept->alpn = alpnProtocol();
  kept->servername = servername();
  kept->version = version();
  kept->cipher = cipher();
  kept->reused = sessionReused();
  kept->peer = SSL_get1_peer_certificate(ssl_);
  // SSL_free sends nothing (no close_notify: that is SSL_shutdown's) and frees the BIOs; with
  // the server's session cache off it touches no shared state either.
  SSL_free(ssl_);
  ssl_ = nullptr;
  rbio_ = wbio_ = nullptr;
  negotiated_ = std::move(kept);
}

void TlsSession::ReadRecords(const unsigned char* data, size_t len, FeedResult* result, unsigned char* plain,
                             size_t cap) {
  RecordRead r = records_->Read(data, len, plain + result->plaintext, cap - result->plaintext);
  result->plaintext += r.plaintext;
  if (r.more) result->flags |= kMorePlaintext;
  SyncRecords();
}

void TlsSession::SyncRecords() {
  if (records_->peerClosed()) peerClosed_ = true;
  if (!records_->failed() || failed()) return;
  alert_ = records_->alert();
  alertFromPeer_ = records_->alertFromPeer();
  if (alertFromPeer_) {
    const char* name = SSL_alert_desc_string_long(alert_ | (SSL3_AL_FATAL << 8));
    Fail(ErrorKind::kAlert, std::string("the peer sent the fatal alert ") + name + " (" + std::to_string(alert_) + ")");
  } else {
    Fail(ErrorKind::kProtocol, records_->error());
  }
}

bool TlsSession::Encrypt(const unsigned char* data, size_t len) {
  if (!ok() || failed()) return false;
  if (!handshakeDone_) {
    Fail(ErrorKind::kUsage, "write before the TLS handshake completed");
    return false;
  }
  if (records_ != nullptr) {
    size_t none = 0;
    const bool ok = records_->SealInto(data, len, nullptr, 0, &none, true);
    SyncRecords();
    return ok;
  }
  ClearErrorQueue();
  while (len > 0) {
    size_t n = 0;
    int rc = SSL_write_ex(ssl_, data, len, &n);
    if (rc != 1) {
      FailFromSsl(SSL_get_error(ssl_, rc));
      return false;
    }
    data += n;
    len -= n;
  }
  return true;
}

void TlsSession::Shutdown() {
  if (!ok() || shutdownSent_ || !handshakeDone_ || failed()) return;
  shutdownSent_ = true;
  if (records_ != nullptr) {
    records_->CloseNotify();
    return;
  }
  SSL_shutdown(ssl_);
  ClearErrorQueue();
}

size_t TlsSession::PendingOutput() const { return queued_.size() - queuedAt_; }

size_t TlsSession::TakeOutput(unsigned char* out, size_t cap) {
  size_t n = std::min(cap, queued_.size() - queuedAt_);
  if (n > 0) memcpy(out, queued_.data() + queuedAt_, n);
  queuedAt_ += n;
  if (queuedAt_ == queued_.size()) {
    queued_.clear();
    queuedAt_ = 0;
    // A burst (a big write that spilled) should not pin its memory on an idle connection.
    if (queued_.capacity() > 64 * 1024) queued_.shrink_to_fit();
  }
  return n;
}

bool TlsSession::EncryptInto(const unsigned char* data, size_t len, unsigned char* out, size_t cap,
                             size_t* used) {
  size_t at = *used;
  at += TakeOutput(out + at, cap - at);
  if (records_ != nullptr) {
    // Loch's record layer: each record sealed where it is sent from (no copy on either side).
    if (failed()) return false;
    const bool ok = records_->SealInto(data, len, out, cap, &at, PendingOutput() > 0);
    *used = at;
    SyncRecords();
    return ok;
  }
  out_ = out + at;
  outCap_ = cap - at;
  outLen_ = 0;
  bool ok = Encrypt(data, len);
  *used = at + outLen_;
  out_ = nullptr;
  outCap_ = outLen_ = 0;
  return ok;
}

bool TlsSession::EncryptPiecesInto(const iovec* pieces, size_t count, unsigned char* out, size_t cap,
                                   size_t* used) {
  if (records_ != nullptr) {
    // Loch's record layer joins the pieces into records where they lie: no staging copy.
    if (failed() || !handshakeDone_) return false;
    size_t at = *used;
    at += TakeOutput(out + at, cap - at);
    const bool ok = records_->SealPiecesInto(pieces, count, out, cap, &at, PendingOutput() > 0);
    *used = at;
    SyncRecords();
    return ok;
  }
  // One record's worth of small pieces, gathered per thread (the call finishes before it returns,
  // and a per-session buffer would cost memory on every idle connection).
  constexpr size_t kRecord = 16384;
  thread_local unsigned char stage[kRecord];
  size_t staged = 0;
  bool ok = true;
  for (size_t i = 0; ok && i < count; i++) {
    const auto* data = static_cast<const unsigned char*>(pieces[i].iov_base);
    size_t len = pieces[i].iov_len;
    if (len == 0) continue;
    const bool more = i + 1 < count;
    if (len <= kCoalesceBytes && (staged > 0 || more)) {
      // A small piece waits in the stage for its neighbours (what follows may join its record).
      while (ok && len > 0) {
        size_t n = std::min(len, kRecord - staged);
        memcpy(stage + staged, data, n);
        staged += n;
        data += n;
        len -= n;
        if (staged == kRecord) {
          ok = EncryptInto(stage, staged, out, cap, used);
          staged = 0;
        }
      }
      continue;
    }
    if (staged > 0 && staged + len <= kRecord) {
      // A larger piece that fits in the record with what waits before it (an HTTP head and a
      // body of up to 16 KiB less the head) joins them there, as nginx's ssl_buffer_size does:
      // two records cost a second SSL_write, record header, nonce, tag and GHASH finish on both
      // ends, about 5k instructions each, where the copy is a vector memcpy (~1k for 11 KB;
      // callgrind counts glibc's `rep movsb` once per byte, so its plain count shows the copy at
      // 11k: bench/results/https-adds-counts-2026-12-05.md).
      memcpy(stage + staged, data, len);
      staged += len;
      if (staged == kRecord) {
        ok = EncryptInto(stage, staged, out, cap, used);
        staged = 0;
      }
      continue;
    }
    // A large piece goes out in place as whole records; only its part beyond a multiple of
    // 16 KiB (`rest`), when small, is copied to share a record with its neighbours: at the
    // piece's start when something is staged (the stage then goes out first, with it), else at
    // its end (it waits in the stage for what follows). HTTP/2 output arenas are runs of 16,393-
    // byte DATA frames: in place alone each run left a record of its last few bytes.
    const size_t rest = len % kRecord;
    const bool joinable = rest > 0 && rest <= kCoalesceBytes && len > rest;
    if (staged > 0) {
      if (joinable && staged + rest <= kRecord) {
        memcpy(stage + staged, data, rest);
        staged += rest;
        data += rest;
        len -= rest;
        ok = EncryptInto(stage, staged, out, cap, used);
        staged = 0;
        if (ok) ok = EncryptInto(data, len, out, cap, used);
        continue;
      }
      ok = EncryptInto(stage, staged, out, cap, used);
      staged = 0;
      if (!ok) break;
    }
    if (joinable && more) {
      ok = EncryptInto(data, len - rest, out, cap, used);
      memcpy(stage, data + len - rest, rest);
      staged = rest;
      continue;
    }
    ok = EncryptInto(data, len, out, cap, used);
  }
  if (ok && staged > 0) ok = EncryptInto(stage, staged, out, cap, used);
  return ok;
}

void TlsSession::HoldRest() {
  if (heldAt_ > 0) {
    held_.erase(held_.begin(), held_.begin() + static_cast<std::ptrdiff_t>(heldAt_));
    heldAt_ = 0;
  }
  held_.insert(held_.end(), in_, in_ + inLen_);
  in_ = nullptr;
  inLen_ = 0;
}

int TlsSession::BioCreate(BIO* bio) {
  BIO_set_init(bio, 1);
  return 1;
}

int TlsSession::SourceRead(BIO* bio, char* buf, size_t len, size_t* readbytes) {
  auto* s = static_cast<TlsSession*>(BIO_get_data(bio));
  BIO_clear_retry_flags(bio);
  size_t n = 0;
  if (s->heldAt_ < s->held_.size()) {
    n = std::min(len, s->held_.size() - s->heldAt_);
    memcpy(buf, s->held_.data() + s->heldAt_, n);
    s->heldAt_ += n;
    if (s->heldAt_ == s->held_.size()) {
      s->held_.clear();
      s->heldAt_ = 0;
    }
  } else if (s->inLen_ > 0) {
    n = std::min(len, s->inLen_);
    memcpy(buf, s->in_, n);
    s->in_ += n;
    s->inLen_ -= n;
  }
  if (n > 0 && s->takeover_ != nullptr) s->takeover_->OnInput(reinterpret_cast<unsigned char*>(buf), n);
  if (n == 0) {
    // Nothing yet: "try again", never end of stream (the transport says when the stream ended).
    BIO_set_retry_read(bio);
    *readbytes = 0;
    return 0;
  }
  *readbytes = n;
  return 1;
}

int TlsSession::SinkWrite(BIO* bio, const char* buf, size_t len, size_t* written) {
  auto* s = static_cast<TlsSession*>(BIO_get_data(bio));
  BIO_clear_retry_flags(bio);
  const auto* bytes = reinterpret_cast<const unsigned char*>(buf);
  if (s->takeover_ != nullptr) s->takeover_->OnOutput(bytes, len);
  // Into the caller's span while it has room and nothing is queued ahead (order is kept).
  if (s->out_ != nullptr && s->PendingOutput() == 0 && s->outLen_ + len <= s->outCap_) {
    memcpy(s->out_ + s->outLen_, bytes, len);
    s->outLen_ += len;
  } else {
    s->queued_.insert(s->queued_.end(), bytes, bytes + len);
  }
  *written = len;
  return 1;
}

long TlsSession::BioCtrl(BIO* bio, int cmd, long, void*) {
  auto* s = static_cast<TlsSession*>(BIO_get_data(bio));
  switch (cmd) {
    case BIO_CTRL_FLUSH:
      return 1;
    case BIO_CTRL_PENDING:
      return s == nullptr ? 0 : static_cast<long>(bio == s->rbio_ ? s->inLen_ + s->held_.size() - s->heldAt_ : s->PendingOutput());
    case BIO_CTRL_WPENDING:
      return s == nullptr || bio == s->rbio_ ? 0 : static_cast<long>(s->PendingOutput());
    default:
      return 0;
  }
}

std::string TlsSession::alpnProtocol() const {
  if (negotiated_ != nullptr) return negotiated_->alpn;
  const unsigned char* p = nullptr;
  unsigned int n = 0;
  if (ssl_ != nullptr) SSL_get0_alpn_selected(ssl_, &p, &n);
  return p == nullptr ? std::string() : std::string(reinterpret_cast<const char*>(p), n);
}

std::string TlsSession::servername() const {
  if (negotiated_ != nullptr) return negotiated_->servername;
  const char* name = ssl_ == nullptr ? nullptr : SSL_get_servername(ssl_, TLSEXT_NAMETYPE_host_name);
  return name == nullptr ? std::string() : std::string(name);
}

const char* TlsSession::version() const {
  if (negotiated_ != nullptr) return negotiated_->version;
  return ssl_ == nullptr ? "" : SSL_get_version(ssl_);
}

const char* TlsSession::cipher() const {
  if (negotiated_ != nullptr) return negotiated_->cipher;
  const SSL_CIPHER* c = ssl_ == nullptr ? nullptr : SSL_get_current_cipher(ssl_);
  return c == nullptr ? "" : SSL_CIPHER_get_name(c);
}

bool TlsSession::sessionReused() const {
  if (negotiated_ != nullptr) return negotiated_->reused;
  return ssl_ != nullptr && SSL_session_reused(ssl_) == 1;
}

std::vector<unsigned char> TlsSession::PeerCertificateDer() const {
  std::vector<unsigned char> out;
  X509* cert = negotiated_ != nullptr ? negotiated_->peer : ssl_ == nullptr ? nullptr : SSL_get0_peer_certificate(ssl_);
  if (cert == nullptr) return out;
  int n = i2d_X509(cert, nullptr);
  if (n <= 0) return out;
  out.resize(static_cast<size_t>(n));
  unsigned char* p = out.data();
  i2d_X509(cert, &p);
  return out;
}

std::vector<unsigned char> TlsSession::SessionBytes() const {
  std::vector<unsigned char> out;
  if (session_ == nullptr) return out;
  int n = i2d_SSL_SESSION(session_, nullptr);
  if (n <= 0) return out;
  out.resize(static_cast<size_t>(n));
  unsigned char* p = out.data();
  i2d_SSL_SESSION(session_, &p);
  return out;
}

}  // namespace loch::tls

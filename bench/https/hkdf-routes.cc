// Instructions per HKDF-Expand-Label of one block (RFC 8446 7.1; 16 bytes of HMAC-SHA256) through
// three OpenSSL 3.0 routes, for the take-over's key derivation (issue 13,
// bench/results/https-takeover-2026-12-05.md). Each route is a function callgrind reports
// inclusively; 110 calls each (divide by 110). On the system libcrypto (3.0.19, node's version):
//
//   g++ -O2 -o /tmp/hkdf-routes bench/https/hkdf-routes.cc -lcrypto
//   valgrind --tool=callgrind --callgrind-out-file=/tmp/hkdf-routes.cg /tmp/hkdf-routes
//   callgrind_annotate --inclusive=yes /tmp/hkdf-routes.cg | grep via_
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include <cstdio>
#include <cstring>

namespace {
unsigned char secret[32] = {1, 2, 3};
// HkdfLabel for "key", 16 bytes, empty context, then HKDF-Expand's block counter 0x01.
unsigned char info[] = {0, 16, 9, 't', 'l', 's', '1', '3', ' ', 'k', 'e', 'y', 0, 1};
EVP_MAC_CTX* mac;
}  // namespace

// EVP_KDF "HKDF" in expand-only mode, fetched once: a context, parameters by name, derive, free per
// label (the take-over's code before 7074e02). The KDF appends the counter itself.
extern "C" __attribute__((noinline)) void via_kdf(unsigned char* out) {
  static EVP_KDF* kdf = EVP_KDF_fetch(nullptr, "HKDF", nullptr);
  EVP_KDF_CTX* ctx = EVP_KDF_CTX_new(kdf);
  int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
  OSSL_PARAM params[] = {OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode),
                         OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, const_cast<char*>("SHA256"), 0),
                         OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, secret, sizeof secret),
                         OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, sizeof info - 1),
                         OSSL_PARAM_construct_end()};
  EVP_KDF_derive(ctx, out, 16, params);
  EVP_KDF_CTX_free(ctx);
}

// HMAC() one-shot: fetches the MAC and the digest by name at every call.
extern "C" __attribute__((noinline)) void via_hmac_oneshot(unsigned char* out) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  HMAC(EVP_sha256(), secret, sizeof secret, info, sizeof info, md, &n);
  memcpy(out, md, 16);
}

// One reused EVP_MAC_CTX (digest set once): keyed with the secret, one label, then re-keyed with
// zeros (the wipe): what a secret costs with its first label (7074e02's HmacExpander).
extern "C" __attribute__((noinline)) void via_mac_reused(unsigned char* out) {
  static const unsigned char zeros[32] = {};
  unsigned char md[EVP_MAX_MD_SIZE];
  size_t n = 0;
  EVP_MAC_init(mac, secret, sizeof secret, nullptr);
  EVP_MAC_update(mac, info, sizeof info);
  EVP_MAC_final(mac, md, &n, sizeof md);
  EVP_MAC_init(mac, zeros, sizeof zeros, nullptr);
  memcpy(out, md, 16);
}

// A further label under the key the context holds (EVP_MAC_init without a key restarts it).
extern "C" __attribute__((noinline)) void via_mac_next_label(unsigned char* out) {
  unsigned char md[EVP_MAX_MD_SIZE];
  size_t n = 0;
  EVP_MAC_init(mac, nullptr, 0, nullptr);
  EVP_MAC_update(mac, info, sizeof info);
  EVP_MAC_final(mac, md, &n, sizeof md);
  memcpy(out, md, 16);
}

int main() {
  EVP_MAC* hmac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  mac = EVP_MAC_CTX_new(hmac);
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, const_cast<char*>("SHA256"), 0),
                         OSSL_PARAM_construct_end()};
  EVP_MAC_CTX_set_params(mac, params);
  unsigned char a[16], b[16], c[16], d[16];
  for (int i = 0; i < 110; i++) {
    via_kdf(a);
    via_hmac_oneshot(b);
    via_mac_reused(c);
    via_mac_next_label(d);  // under the zero key the wipe left: counted, not compared
  }
  // The three routes agree on the output.
  printf("%s\n", memcmp(a, b, 16) == 0 && memcmp(a, c, 16) == 0 ? "same output" : "OUTPUTS DIFFER");
  EVP_MAC_CTX_free(mac);
  EVP_MAC_free(hmac);
  return 0;
}

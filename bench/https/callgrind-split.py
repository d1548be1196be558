#!/usr/bin/env python3
# Splits a callgrind dump (or several: one per thread with --separate-threads=yes) into where the
# instructions went, per unit of work (issue 13: per TLS handshake). Self cost of every function,
# classified by the object and source file callgrind names for it:
#   openssl   - OpenSSL (node's copy: deps/openssl sources and its assembly; nginx's libssl/libcrypto)
#   loch      - Loch's native addon (loch_native.node, loch_tls.node: ring*.cc, tls_*.cc, N-API glue)
#   js        - JavaScript running: V8's JIT code (no object) and its builtins (Builtins_*)
#   v8        - V8's C++ (runtime functions, GC, compilers, parser) and node's own C++ (libuv, N-API)
#   libc      - libc, libstdc++ (malloc/free, memcpy, ...)
#   nginx     - nginx's own code (when the dump is nginx's)
#   other     - the dynamic loader, the kernel's vdso, anything else
# and call counts (exact, from the dumps' call lines): malloc-family calls, frees, N-API function
# callbacks (JavaScript -> native), N-API calls of JavaScript (native -> JavaScript), and the
# inclusive cost of a few OpenSSL entry points (SSL_new, SSL_free, SSL_do_handshake, SSL_read_ex).
# Dumps of callgrind's cache simulation (--cache-sim=yes) add the simulated misses per unit: D1
# (first-level data: reads + writes), LL data and LL instruction, per class and per entry point.
#
# Usage: callgrind-split.py [--top N] [--only SUFFIX] COUNT DUMP [DUMP...]   (COUNT: units of
# work the dumps cover; --top lists the N functions of most self cost per unit; --only counts
# only the dumps whose name ends in SUFFIX, e.g. a worker thread's "-12", while every dump is
# still read for the names the threads share)
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from callgrind_out import Names, records  # noqa: E402

args = sys.argv[1:]
top = 0
only = ""
while args and args[0].startswith("--"):
    if args[0] == "--top":
        top = int(args[1])
    elif args[0] == "--only":
        only = args[1]
    args = args[2:]
count = float(args[0])
files = args[1:]
by_fn = {}

OPENSSL_ASM = re.compile(
    r"^_?(aesni|aes_|vpaes|bsaes|gcm_|_aesni|ecp_nistz256|bn_|BN_|sha\d*_block|sha1_|x25519|"
    r"x86_64_|ChaCha|chacha|Poly1305|poly1305|OPENSSL_|rsaz_|mul_|sqr_|__ecp|ossl_|RSAZ|"
    r"_x86_64|_mul_|__bn|bn_sqr|Poly|__poly|_vpaes|_bsaes|_hps|_aes)")
OPENSSL_NAME = re.compile(
    r"^(SSL_|ssl|tls|TLS|dtls|EVP_|evp_|ossl_|OSSL_|BN_|bn_|EC_|ec_|ECDSA|ECDH|X509|x509|X25519|"
    r"RAND_|rand_|HMAC|hmac|PACKET|WPACKET|OBJ_|obj_|RSA|rsa_|DH_|dh_|CRYPTO_|OPENSSL_|ERR_|err_|"
    r"BIO_|bio_|ASN1|asn1|sk_|OPENSSL_sk|lh_|OPENSSL_LH|PEM_|pem_|ENGINE|engine_|CONF|conf_|"
    r"SHA|sha|AES|aes|gcm|GCM|CMAC|KDF|kdf|HKDF|hkdf|MD5|md5|provider|PROV|prov_|OSSL|i2d_|d2i_|"
    r"c2i_|i2c_|ecx|ecdsa|ecdh|EVP|nid_|OBJ|a2i|i2a|BUF_|buf_|ct_|CT_|UI_|int_|def_|do_|"
    r"x25519|X448|ED25519|ed25519|keccak|KECCAK|poly1305|chacha|ChaCha|ossl)")
NOT_OPENSSL_C = re.compile(
    r"^(uv_|uv__|napi_|node_|nghttp2|nghttp3|ngtcp2|llhttp|ares_|ares__|Brotli|brotli|u_|ucnv|ures|ucol|"
    r"ubrk|uloc|utf8_|icu|deflate|inflate|crc32|adler32|zcalloc|zcfree|_start|__libc|v8_|V8_|simdutf|"
    r"ada|uvwasi|histogram|hdr_|sqlite|0x|_GLOBAL__|__cxa|__gxx|__static|frame_dummy|register_tm|"
    r"deregister_tm|__do_global|_init|_fini|cppgc|Trampoline)")
MALLOC = re.compile(r"^(malloc|calloc|realloc|posix_memalign|aligned_alloc|memalign)$|^operator new")
FREE = re.compile(r"^(free|cfree)$|^operator delete")
NAPI_CALLBACK = re.compile(r"FunctionCallbackWrapper::Invoke|CallbackWrapperBase::InvokeCallback")
NAPI_CALL_JS = re.compile(r"^(napi_call_function|napi_make_callback)$")
ENTRIES = ["SSL_new", "SSL_free", "SSL_do_handshake", "SSL_read_ex", "SSL_write_ex", "SSL_read", "SSL_write",
           "SSL_shutdown", "BIO_new", "SSL_set_bio", "EVP_EncryptUpdate", "EVP_DecryptUpdate", "EVP_CipherUpdate"]
# Loch's in-ring TLS, entered from the ring's prepare and drain (C++ names with their
# signatures, matched by prefix): their inclusive cost is the whole TLS part of a request in the
# ring (OpenSSL, copies, mallocs included); TlsSent was the N-API call sentBytes made before
# 26099f6 (now a memory read: listed for builds before it).
ENTRY_PREFIXES = ["loch::Ring::PrepTls(", "loch::Ring::TlsRecv(", "loch::Ring::OnTlsSend(",
                  "loch::Ring::ReleasePlain(", "(anonymous namespace)::TlsSent("]


def classify(ob, fl, fn):
    obl = ob.lower()
    if "loch_" in obl and obl.endswith(".node"):
        return "loch"
    if ob == "???" or ob == "":
        return "js"
    if "libc.so" in obl or "libstdc++" in obl or "libm.so" in obl or "libgcc" in obl or "libpthread" in obl:
        return "libc"
    if "libssl" in obl or "libcrypto" in obl:
        return "openssl"
    if "ld-linux" in obl or "vdso" in obl:
        return "other"
    if obl.endswith("/nginx"):
        if fl.startswith("src/") or fl.startswith("./src") or fl.startswith("objs/") or "nginx" in fl:
            return "nginx"
        return "nginx"
    if "libpcre" in obl or "libz" in obl or "libcrypt" in obl:
        return "other"
    # node's binary: V8, node, and OpenSSL statically linked.
    if "openssl" in fl:
        return "openssl"
    if fn.startswith("Builtins_"):
        return "js"
    if OPENSSL_ASM.match(fn) or OPENSSL_NAME.match(fn):
        return "openssl"
    # node's binary has no source file names for callgrind: its C functions (no C++ signature)
    # that belong to no other C library node bundles are OpenSSL's (curve25519's fe_mul, cmov...).
    if "(" not in fn and "::" not in fn and not NOT_OPENSSL_C.match(fn):
        return "openssl"
    return "v8"


# One process's dumps share their compressed names (callgrind_out.Names).
names = Names()
# The dumps' event names (their "events:" line): Ir alone, or Ir Dr Dw I1mr D1mr D1mw ILmr DLmr
# DLmw with the cache simulation.
event_names = ["Ir"]
# Misses per class (cache simulation): {class: [D1, LL data, LL instruction]}.
misses = {}


def miss_triple(evs):
    # evs: the cost line's events, in event_names' order (missing trailing ones are 0).
    got = dict(zip(event_names, evs))
    return [got.get("D1mr", 0) + got.get("D1mw", 0), got.get("DLmr", 0) + got.get("DLmw", 0), got.get("ILmr", 0)]


def parse(path, totals, calls, entries, per_file):
    counted = not only or path.endswith(only)
    file_total = 0
    file_openssl = 0
    classified = None  # (fn, class) of the last function classified

    for rec in records(path, names):
        if rec[0] == "events":
            event_names[:] = rec[1]
            continue
        if not rec[-1]:
            continue
        if rec[0] == "call":
            _, _, callee, call_count, costs = rec
            if not counted:
                continue
            ir = costs[0]
            cf = callee["cfn"]
            if MALLOC.match(cf):
                calls["malloc"] = calls.get("malloc", 0) + call_count
            elif FREE.match(cf):
                calls["free"] = calls.get("free", 0) + call_count
            if NAPI_CALLBACK.search(cf):
                calls["napi_callback"] = calls.get("napi_callback", 0) + call_count
            if NAPI_CALL_JS.match(cf):
                calls["napi_call_js"] = calls.get("napi_call_js", 0) + call_count
            key = cf if cf in ENTRIES else next((p[:-1] for p in ENTRY_PREFIXES if cf.startswith(p)), None)
            if key is not None:
                e = entries.setdefault(key, [0, 0, 0, 0])
                e[0] += call_count
                e[1] += ir
                if len(event_names) > 1:
                    d1, ll, _ = miss_triple(costs)
                    e[2] += d1
                    e[3] += ll
            continue
        _, where, costs = rec
        ir = costs[0]
        if classified is None or classified[0] is not where["fn"]:
            classified = (where["fn"], classify(where["ob"], where["fl"], where["fn"]))
        cls = classified[1]
        if counted:
            totals[cls] = totals.get(cls, 0) + ir
            if len(event_names) > 1:
                m = misses.setdefault(cls, [0, 0, 0])
                for i, v in enumerate(miss_triple(costs)):
                    m[i] += v
            by_fn[where["fn"]] = by_fn.get(where["fn"], 0) + ir
        file_total += ir
        if cls == "openssl":
            file_openssl += ir
    if counted:
        per_file.append((path, file_total, file_openssl))


totals, calls, entries, per_file = {}, {}, {}, []
for path in sorted(files):
    parse(path, totals, calls, entries, per_file)
whole = sum(totals.values())
print(f"instructions per unit ({count:g} units), self cost by class:")
print(f"  {'whole':10s} {whole / count:12,.0f}")
for k in ["openssl", "loch", "js", "v8", "libc", "nginx", "other"]:
    if k in totals:
        print(f"  {k:10s} {totals[k] / count:12,.0f}  {100 * totals[k] / whole:5.1f}%")
print("per thread (dump: whole, openssl):")
for path, t, o in per_file:
    if t / count >= 1000:
        print(f"  {path.rsplit('/', 1)[-1]:28s} {t / count:12,.0f} {o / count:12,.0f}")
print("calls per unit:")
for k in ["malloc", "free", "napi_callback", "napi_call_js"]:
    print(f"  {k:14s} {calls.get(k, 0) / count:10.2f}")
if misses:
    print("cache misses per unit (simulated: D1 data, LL data, LL instruction):")
    total = [sum(m[i] for m in misses.values()) for i in range(3)]
    print(f"  {'D1miss':10s} {total[0] / count:12,.0f}")
    print(f"  {'LLdmiss':10s} {total[1] / count:12,.0f}")
    print(f"  {'LLimiss':10s} {total[2] / count:12,.0f}")
    for k in ["openssl", "loch", "js", "v8", "libc", "nginx", "other"]:
        if k in misses:
            m = misses[k]
            print(f"  {k:10s} {m[0] / count:12,.0f} {m[1] / count:12,.0f} {m[2] / count:12,.0f}")
print("OpenSSL entry points per unit (calls, inclusive instructions" + (", D1 and LL data misses):" if misses else "):"))
for name in ENTRIES + [p[:-1] for p in ENTRY_PREFIXES]:
    if name in entries:
        n, ir, d1, ll = entries[name]
        extra = f" {d1 / count:10,.0f} {ll / count:10,.0f}" if misses else ""
        print(f"  {name:18s} {n / count:6.2f} {ir / count:12,.0f}{extra}")
if top:
    print(f"top {top} functions by self cost per unit:")
    for fn, ir in sorted(by_fn.items(), key=lambda kv: -kv[1])[:top]:
        print(f"  {ir / count:10,.0f}  {fn[:150]}")

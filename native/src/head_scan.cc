// HTTP/1.1 head scanner for @loch/http's decoder (packages/http/src/h1/decoder.ts, which holds
// the same rules in JavaScript as the reference its tests compare this one against, and as the
// parser where this addon does not load).
//
// Find mode (a head whole in one read, the usual case) first checks the framing rules 16 bytes
// at a time: no control byte but HTAB and CRLF pairs, no DEL, lines within max_line_length, at
// most max_header_count fields, the head within max_head_size. Anything else is kFallback and
// the decoder's incremental line scan takes over, which reports those errors with their exact
// offsets (and waits for the rest of a head that is not whole). Then, in both modes, the start
// line and the field lines are parsed by RFC 9112 as the decoder does:
// - request line: method = token, SP, request-target of VCHARs, SP, HTTP/d.d, CRLF; the target's
//   form must suit the method (authority-form for CONNECT only, `*` for OPTIONS only, absolute
//   URIs with an authority); status line: HTTP/d.d SP 3DIGIT (100-599) [SP reason] CRLF;
// - field lines: token ":" OWS value OWS CRLF; whitespace before the colon, obs-fold, bytes
//   outside field-value (controls, DEL) and a CR without LF are errors;
// - Content-Length: one, 1-15 digits; Transfer-Encoding and Connection as token lists;
//   Host's bytes are authority characters; Content-Length, Transfer-Encoding and Host are
//   forbidden in trailers.
// The framing decision itself (CL with TE, HTTP/1.0 rules, Expect, keep-alive) stays in the
// decoder: it reads the flags written here.
//
// JS layout: `bind(io: Int32Array, slab: Uint8Array)` (or `scanner(io, slab)`, a function
// `scan(src)` that is its own binding: no binding argument to check per call) returns a binding of the decoder's record
// and its current HeadSlab (`setSlab(binding, slab)` moves it to the next); `scan(binding, src: Uint8Array): number` scans src as the record's
// inputs say (indices of io, the decoder declares the same constants: inputs at 0-7, outputs at
// 8-27 with Content-Length as a float64 at int32 index 26, field entries from 28 on, five int32
// each, then the lines' summary, kSummaryWords after the last entry) and returns the Outcome, or
// kCopied: when io[7] (the slab's first free byte, 4-aligned, -1 for none) leaves room for the
// head and an entry per line (PlaceInSlab), the head is copied into the slab there, followed
// (4-aligned) by its entries with offsets in the slab and the summary (written there as the scan
// goes, none in the record), so the decoder reserves that span and makes no copy of its own (the
// HeadSlab layout of packages/http/src/internal/head-slab.ts; the summary's words are described in
// packages/http/src/internal/head-summary.ts).
#include "head_scan.h"

#include <emmintrin.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace loch::headscan {
namespace {

// io indices (keep in step with decoder.ts).
constexpr int kInStart = 0;
constexpr int kInEnd = 1;
constexpr int kInMode = 2;
constexpr int kInKind = 3;
constexpr int kInMaxHead = 4;
constexpr int kInMaxCount = 5;
constexpr int kInMaxLine = 6;
constexpr int kInSlabTop = 7;
constexpr int kOutLength = 8;
constexpr int kOutError = 9;
constexpr int kOutErrorAt = 10;
constexpr int kOutErrorArg = 11;
constexpr int kOutFieldsAt = 12;
constexpr int kOutFields = 13;
constexpr int kOutMethodEnd = 14;
constexpr int kOutTargetStart = 15;
constexpr int kOutTargetEnd = 16;
constexpr int kOutMinor = 17;
constexpr int kOutForm = 18;
constexpr int kOutStatus = 19;
constexpr int kOutClCount = 20;
constexpr int kOutTeFlags = 21;
constexpr int kOutConnFlags = 22;
constexpr int kOutHostCount = 23;
constexpr int kOutExpect = 24;
constexpr int kOutUpgrade = 25;
constexpr int kOutContentLength = 26;  // float64 over 26-27
constexpr int kEntries = 28;
constexpr int kEntry = 5;
// Outcome::kOk, and the head and its entries are in the slab.
constexpr int32_t kCopied = 3;

// Token list flags (decoder.ts's L_*).
constexpr int32_t kListClose = 1;
constexpr int32_t kListKeepAlive = 2;
constexpr int32_t kListUpgrade = 4;
constexpr int32_t kListChunked = 8;
constexpr int32_t kListOther = 16;
constexpr int32_t kListLastChunked = 32;
constexpr int32_t kListChunkedTwice = 64;
constexpr int32_t kListMalformed = 128;

// Byte classes (packages/http/src/internal/char-classes.ts).
struct Classes {
  uint8_t token[256];
  uint8_t field_value[256];
  uint8_t target[256];
  uint8_t authority[256];
  uint8_t lower[256];
  Classes() {
    const char* tchar = "!#$%&'*+-.^_`|~";
    const char* auth = "-._~%!$&'()*+,;=:[]";
    for (int c = 0; c < 256; c++) {
      const bool alpha = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
      const bool digit = c >= '0' && c <= '9';
      token[c] = (alpha || digit || (c != 0 && std::strchr(tchar, c) != nullptr)) ? 1 : 0;
      field_value[c] = (c == ' ' || c == '\t' || (c >= 0x21 && c <= 0x7e) || c >= 0x80) ? 1 : 0;
      target[c] = (c >= 0x21 && c <= 0x7e) ? 1 : 0;
      authority[c] = (alpha || digit || (c != 0 && std::strchr(auth, c) != nullptr)) ? 1 : 0;
      lower[c] = static_cast<uint8_t>((c >= 'A' && c <= 'Z') ? c + 0x20 : c);
    }
  }
};
const Classes kClasses;

// Known header names: ids by (length, first letter & 31), as known-names.ts.
constexpr size_t kMaxNameLength = 32;
struct KnownNames {
  std::vector<std::string> names;  // index id - 1
  // Names of up to kMaxNameLength bytes, flat by id (one cache line or two per candidate), and
  // per byte 0x20 where the name has a letter, 0 elsewhere: a token byte x is the name's byte c
  // in any case exactly when (x | fold) == c (NameEquals).
  char flat[256][kMaxNameLength];
  char fold[256][kMaxNameLength];
  std::vector<uint8_t> buckets[(kMaxNameLength + 1) * 32];
  int32_t content_length = 0, transfer_encoding = 0, connection = 0, host = 0, expect = 0,
          upgrade = 0, date = 0;
  // 1 at the ids the summary flags (Result::flagged_lines): the hop-by-hop names and content-length.
  uint8_t flagged[256] = {};
};
KnownNames g_names;
bool g_names_set = false;
std::mutex g_names_lock;

inline uint64_t Load8(const void* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

inline uint32_t Load4(const void* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// Whether the token bytes n[0, len) are known name `id` in any case: a word at a time, the last
// word overlapping the one before (loads stay within the name and the 32-byte flat rows).
inline bool NameEquals(const uint8_t* n, size_t len, uint8_t id) {
  const char* cand = g_names.flat[id];
  const char* fold = g_names.fold[id];
  if (len >= 8) {
    size_t i = 0;
    for (; i + 8 < len; i += 8) {
      if ((Load8(n + i) | Load8(fold + i)) != Load8(cand + i)) return false;
    }
    i = len - 8;
    return (Load8(n + i) | Load8(fold + i)) == Load8(cand + i);
  }
  if (len >= 4) {
    const size_t j = len - 4;
    return (Load4(n) | Load4(fold)) == Load4(cand) && (Load4(n + j) | Load4(fold + j)) == Load4(cand + j);
  }
  for (size_t i = 0; i < len; i++) {
    if ((n[i] | static_cast<uint8_t>(fold[i])) != static_cast<uint8_t>(cand[i])) return false;
  }
  return true;
}

// The id of the token b[s, e) among the known names (any case), 0 when it is none.
inline int32_t KnownId(const uint8_t* b, size_t s, size_t e) {
  const size_t len = e - s;
  if (len == 0 || len > kMaxNameLength) return 0;
  const auto& list = g_names.buckets[len * 32 + (kClasses.lower[b[s]] & 31)];
  for (uint8_t id : list) {
    if (NameEquals(b + s, len, id)) return id;
  }
  return 0;
}

inline bool EqualsIgnoreCase(const uint8_t* b, size_t s, size_t e, const char* lower) {
  const size_t n = std::strlen(lower);
  if (e - s != n) return false;
  for (size_t i = 0; i < n; i++) {
    if (kClasses.lower[b[s + i]] != static_cast<uint8_t>(lower[i])) return false;
  }
  return true;
}

// Whether the token bytes b[s, e) are `word` (4-16 lowercase letters and '-') in any case, in two
// overlapping word compares (EqualsIgnoreCase's byte loop was ~7 instructions a byte). A token
// byte x is such a byte c exactly when (x | 0x20) == c: the only other byte that sets to c is
// c & ~0x20, an upper-case letter, or CR for '-', which is no token byte.
template <size_t N>
inline bool TokenIs(const uint8_t* b, size_t s, size_t e, const char (&word)[N]) {
  constexpr size_t n = N - 1;
  static_assert(n >= 4 && n <= 16, "TokenIs compares 4 to 16 bytes");
  if (e - s != n) return false;
  const uint8_t* x = b + s;
  if constexpr (n >= 8) {
    constexpr uint64_t kCase = 0x2020202020202020ULL;
    return (Load8(x) | kCase) == Load8(word) && (Load8(x + n - 8) | kCase) == Load8(word + n - 8);
  } else {
    constexpr uint32_t kCase = 0x20202020u;
    return (Load4(x) | kCase) == Load4(word) && (Load4(x + n - 4) | kCase) == Load4(word + n - 4);
  }
}

inline bool Equals(const uint8_t* b, size_t s, size_t e, const char* text) {
  const size_t n = std::strlen(text);
  return e - s == n && std::memcmp(b + s, text, n) == 0;
}

// Flags of a comma-separated token list (decoder.ts listFlags).
int32_t ListFlags(const uint8_t* b, size_t s, size_t e) {
  int32_t flags = 0;
  size_t i = s;
  while (i < e) {
    const uint8_t c = b[i];
    if (c == ' ' || c == '\t' || c == ',') {
      i++;
      continue;
    }
    const size_t ts = i;
    while (i < e && kClasses.token[b[i]]) i++;
    const size_t te = i;
    if (te == ts) return flags | kListMalformed;
    bool params = false;
    while (i < e && b[i] != ',') {
      if (b[i] != ' ' && b[i] != '\t') params = true;
      i++;
    }
    if (!params && TokenIs(b, ts, te, "chunked")) {
      if (flags & kListChunked) flags |= kListChunkedTwice;
      flags |= kListChunked | kListLastChunked;
      continue;
    }
    flags &= ~kListLastChunked;
    if (params) flags |= kListOther;
    else if (TokenIs(b, ts, te, "close")) flags |= kListClose;
    else if (TokenIs(b, ts, te, "keep-alive")) flags |= kListKeepAlive;
    else if (TokenIs(b, ts, te, "upgrade")) flags |= kListUpgrade;
    else flags |= kListOther;
  }
  return flags;
}

// Whether a list has an empty element (decoder.ts hasEmptyElement: refused in Transfer-Encoding).
bool HasEmptyElement(const uint8_t* b, size_t s, size_t e) {
  bool empty = true;
  for (size_t i = s; i < e; i++) {
    const uint8_t c = b[i];
    if (c == ',') {
      if (empty) return true;
      empty = true;
    } else if (c != ' ' && c != '\t') {
      empty = false;
    }
  }
  return empty;
}

// A parse over a whole block b[base, end) (which ends in CRLF CRLF, or is CRLF for empty
// trailers). Offsets written to the result are relative to base.
class Parser {
 public:
  Parser(const uint8_t* b, size_t base, size_t end, Result* out)
      : b_(b), base_(base), end_(end), entry_origin_(out->in_slab ? base - out->slab_top : base), out_(out) {}

  bool RequestLine(size_t* next);
  bool StatusLine(size_t* next);
  bool Fields(size_t p, bool head);
  // Where the first `count` field lines end (their CR), as find mode's framing pass found them:
  // the parse takes a value's end from there instead of searching for it (see Fields).
  void KnownFieldEnds(const size_t* ends, size_t count) {
    field_ends_ = ends;
    known_ends_ = count;
  }

 private:
  // The byte at p, or 0 past the block (0 is in no class, so scans stop there).
  uint8_t At(size_t p) const { return p < end_ ? b_[p] : 0; }
  bool Fail(Error e, size_t at, int32_t arg = 0) {
    out_->error = e;
    out_->error_at = static_cast<int32_t>(at - base_);
    out_->error_arg = arg;
    return false;
  }
  bool Version(size_t p, int32_t* minor);
  int32_t TargetForm(size_t s, size_t e, size_t method_end) const;
  bool SpecialField(int32_t id, size_t vs, size_t ve);
  size_t ValueEnd(size_t p) const;
  size_t NameEnd(size_t p) const;

  const uint8_t* b_;
  size_t base_;
  size_t end_;
  // What an entry's offsets are relative to: base_, or where the slab's byte 0 would be when
  // the entries go to the slab (offsets in the slab; unsigned arithmetic, may wrap).
  size_t entry_origin_;
  Result* out_;
  const size_t* field_ends_ = nullptr;
  size_t known_ends_ = 0;
};

// Callers have checked that the block holds the 8 bytes at p.
bool Parser::Version(size_t p, int32_t* minor) {
  if (std::memcmp(b_ + p, "HTTP/", 5) != 0) return Fail(Error::kInvalidVersion, p);
  const int major = b_[p + 5] - '0';
  const int m = b_[p + 7] - '0';
  if (major < 0 || major > 9 || b_[p + 6] != '.' || m < 0 || m > 9) return Fail(Error::kInvalidVersion, p);
  if (major != 1) return Fail(Error::kUnsupportedVersion, p, major * 10 + m);
  *minor = m;
  return true;
}

// decoder.ts targetForm: -1 when the form is not allowed for the method.
int32_t Parser::TargetForm(size_t s, size_t e, size_t method_end) const {
  const uint8_t c = b_[s];
  if (Equals(b_, base_, method_end, "CONNECT")) {
    size_t colon = SIZE_MAX;
    for (size_t i = s; i < e; i++) {
      const uint8_t x = b_[i];
      if (x == '/' || x == '?' || x == '#' || x == '@') return -1;
      if (x == ':') colon = i;
    }
    if (colon == SIZE_MAX || colon <= s || colon == e - 1 || e - colon - 1 > 5) return -1;
    for (size_t i = colon + 1; i < e; i++) {
      if (b_[i] < '0' || b_[i] > '9') return -1;
    }
    return 2;
  }
  if (c == '/') return 0;
  if (c == '*' && e - s == 1) return Equals(b_, base_, method_end, "OPTIONS") ? 3 : -1;
  if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'))) return -1;
  for (size_t i = s + 1; i < e; i++) {
    const uint8_t x = b_[i];
    if (x == ':') {
      if (At(i + 1) != '/' || At(i + 2) != '/' || i + 3 >= e || At(i + 3) == '/') return -1;
      return 1;
    }
    const bool ok = (x >= 'A' && x <= 'Z') || (x >= 'a' && x <= 'z') || (x >= '0' && x <= '9') || x == '+' ||
                    x == '-' || x == '.';
    if (!ok) return -1;
  }
  return -1;
}

bool Parser::RequestLine(size_t* next) {
  size_t p = base_;
  // Unbounded reads as in Fields: the block's final CR is in neither class.
  while (kClasses.token[b_[p]]) p++;
  if (p == base_ || b_[p] != ' ') return Fail(Error::kInvalidMethod, p);
  // From here on the decoder checks its method policy before reporting any later error.
  out_->method_end = static_cast<int32_t>(p - base_);
  const size_t ts = ++p;
  while (kClasses.target[b_[p]]) p++;
  const size_t te = p;
  if (te == ts || At(p) != ' ') return Fail(Error::kInvalidTarget, p);
  p++;
  if (p + 10 > end_) return Fail(Error::kInvalidVersion, p);
  int32_t minor = 0;
  if (!Version(p, &minor)) return false;
  p += 8;
  if (At(p) != '\r') return Fail(Error::kInvalidVersion, p);
  if (At(p + 1) != '\n') return Fail(Error::kBareCr, p);
  const int32_t form = TargetForm(ts, te, base_ + out_->method_end);
  if (form < 0) return Fail(Error::kInvalidTargetForm, ts);
  out_->target_start = static_cast<int32_t>(ts - base_);
  out_->target_end = static_cast<int32_t>(te - base_);
  out_->minor = minor;
  out_->form = form;
  *next = p + 2;
  return true;
}

bool Parser::StatusLine(size_t* next) {
  if (end_ - base_ < 14) return Fail(Error::kShortStatusLine, base_);
  int32_t minor = 0;
  if (!Version(base_, &minor)) return false;
  size_t p = base_ + 8;
  if (At(p) != ' ') return Fail(Error::kBadStatusLine, p);
  const int d0 = At(p + 1) - '0';
  const int d1 = At(p + 2) - '0';
  const int d2 = At(p + 3) - '0';
  if (d0 < 1 || d0 > 5 || d1 < 0 || d1 > 9 || d2 < 0 || d2 > 9) return Fail(Error::kBadStatusCode, p);
  out_->status = d0 * 100 + d1 * 10 + d2;
  p += 4;
  size_t rs = p;
  if (At(p) == ' ') {
    rs = ++p;
    while (kClasses.field_value[At(p)]) p++;
  }
  if (At(p) != '\r') return Fail(Error::kBadReasonPhrase, p);
  if (At(p + 1) != '\n') return Fail(Error::kBareCr, p);
  out_->target_start = static_cast<int32_t>(rs - base_);
  out_->target_end = static_cast<int32_t>(p - base_);
  out_->minor = minor;
  *next = p + 2;
  return true;
}

// The first byte at or after p that is not a field-value byte (SP, HTAB, VCHAR, obs-text), 16
// at a time; end_ when there is none.
size_t Parser::ValueEnd(size_t p) const {
  const __m128i ctl_max = _mm_set1_epi8(0x1f);
  const __m128i tab = _mm_set1_epi8(0x09);
  const __m128i del = _mm_set1_epi8(0x7f);
  auto stops = [&](size_t at) {
    const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b_ + at));
    const __m128i ctl = _mm_andnot_si128(_mm_cmpeq_epi8(x, tab), _mm_cmpeq_epi8(_mm_max_epu8(x, ctl_max), ctl_max));
    return static_cast<unsigned>(_mm_movemask_epi8(_mm_or_si128(ctl, _mm_cmpeq_epi8(x, del))));
  };
  while (p + 16 <= end_) {
    const unsigned mask = stops(p);
    if (mask != 0) return p + __builtin_ctz(mask);
    p += 16;
  }
  // Fewer than 16 bytes left: the block's last 16, those before p masked off.
  if (p < end_ && end_ - base_ >= 16) {
    const size_t at = end_ - 16;
    const unsigned mask = stops(at) >> (p - at);
    return mask != 0 ? p + __builtin_ctz(mask) : end_;
  }
  while (p < end_ && kClasses.field_value[b_[p]]) p++;
  return p;
}

// The first byte at or after p that is not a letter, digit or '-' (what field names are made
// of), 16 at a time while the block holds 16 more bytes; the caller's token loop goes on from
// there (the colon, another token byte, or the block's last bytes).
size_t Parser::NameEnd(size_t p) const {
  // Signed compares: x + (0x80 - lo) is below -128 + n exactly when x is in [lo, lo + n).
  const __m128i case_bit = _mm_set1_epi8(0x20);
  const __m128i letter_bias = _mm_set1_epi8(static_cast<char>(0x80 - 'a'));
  const __m128i letter_limit = _mm_set1_epi8(static_cast<char>(-128 + 26));
  const __m128i digit_bias = _mm_set1_epi8(static_cast<char>(0x80 - '0'));
  const __m128i digit_limit = _mm_set1_epi8(static_cast<char>(-128 + 10));
  const __m128i dash = _mm_set1_epi8('-');
  while (p + 16 <= end_) {
    const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b_ + p));
    const __m128i letter = _mm_cmplt_epi8(_mm_add_epi8(_mm_or_si128(x, case_bit), letter_bias), letter_limit);
    const __m128i digit = _mm_cmplt_epi8(_mm_add_epi8(x, digit_bias), digit_limit);
    const __m128i ok = _mm_or_si128(_mm_or_si128(letter, digit), _mm_cmpeq_epi8(x, dash));
    const unsigned stop = ~static_cast<unsigned>(_mm_movemask_epi8(ok)) & 0xffffu;
    if (stop != 0) return p + __builtin_ctz(stop);
    p += 16;
  }
  return p;
}

bool Parser::SpecialField(int32_t id, size_t vs, size_t ve) {
  if (id == g_names.content_length) {
    if (++out_->cl_count > 1) return Fail(Error::kDuplicateContentLength, vs);
    if (ve == vs || ve - vs > 15) return Fail(Error::kInvalidContentLength, vs);
    int64_t v = 0;
    for (size_t i = vs; i < ve; i++) {
      const int d = b_[i] - '0';
      if (d < 0 || d > 9) return Fail(Error::kInvalidContentLength, i);
      v = v * 10 + d;
    }
    out_->content_length = static_cast<double>(v);
  } else if (id == g_names.transfer_encoding) {
    const int32_t f = ListFlags(b_, vs, ve);
    if (f == 0 || (f & kListMalformed) || HasEmptyElement(b_, vs, ve))
      return Fail(Error::kInvalidTransferEncoding, vs);
    const int32_t prev = out_->te_flags;
    int32_t next = (prev & ~kListLastChunked) | f;
    if ((prev & kListChunked) && (f & kListChunked)) next |= kListChunkedTwice;
    if ((prev & kListChunked) && !(f & kListLastChunked)) next |= kListOther;
    out_->te_flags = next;
  } else if (id == g_names.connection) {
    out_->conn_flags |= ListFlags(b_, vs, ve);
  } else if (id == g_names.host) {
    out_->host_count++;
    for (size_t i = vs; i < ve; i++) {
      if (!kClasses.authority[b_[i]]) return Fail(Error::kInvalidHost, i);
    }
  } else if (id == g_names.expect) {
    out_->expect = EqualsIgnoreCase(b_, vs, ve, "100-continue") ? 1 : 2;
  } else if (id == g_names.upgrade) {
    out_->upgrade_header = 1;
  }
  return true;
}

// The summary of the n entries at e (head_scan.h Result::sum_length...): a pass of its own over
// the entries just written, line by line what summarize() in
// packages/http/src/internal/head-summary.ts does. Scan of nginx's 8-line response head under
// callgrind: +224 instructions; the same work inside the parse loop, whose registers it crowds,
// +191 to +239 depending on its form (bench/http-proxy/per-request-2026-12-06f.md).
void Summarize(const int32_t* e, int32_t n, Result* out) {
  const uint8_t* const flagged = g_names.flagged;
  int32_t length = 0;
  uint32_t lines = 0;
  uint64_t ids = 0;
  bool more = false;
  for (int32_t i = 0; i < n; i++, e += kEntry) {
    const int32_t meta = e[4];
    const int32_t id = meta & 0xff;
    ids |= uint64_t{1} << (id & 63);
    if (flagged[id]) {
      if (i < 32) lines |= 1u << i;
      else more = true;
      continue;
    }
    length += (meta & kCanonical) ? e[3] + 2 - e[0] : (e[1] - e[0]) + (e[3] - e[2]) + 4;
  }
  out->sum_length = length;
  out->flagged_lines = static_cast<int32_t>(lines);
  out->ids_lo = static_cast<int32_t>(static_cast<uint32_t>(ids));
  out->ids_hi = static_cast<int32_t>(static_cast<uint32_t>(ids >> 32));
  // Date's bit in the filter is Date's alone (SetKnownNames refuses a list where it is not).
  const bool date = g_names.date != 0 && ((ids >> (g_names.date & 63)) & 1) != 0;
  out->summary_flags = (date ? kSummaryDate : 0) | (more ? kSummaryMore : 0);
}

bool Parser::Fields(size_t p, bool head) {
  const size_t last = end_ - 2;  // the final CRLF
  int32_t n = 0;
  int32_t* w = out_->entries;

  out_->fields_at = static_cast<int32_t>(p - base_);
  // Bytes are read without At()'s bound: the block ends in CRLF (b_[last] is CR), which is in
  // no class these loops go on through, so none of them passes it.
  while (p < last) {
    const size_t ns = p;
    p = NameEnd(p);
    uint8_t c = b_[p];
    while (kClasses.token[c]) c = b_[++p];
    const size_t ne = p;
    if (c != ':' || ne == ns) {
      // A line that starts with SP or HTAB (obs-fold) has an empty name: checked here, on the
      // way to an error, not before every name.
      if (c == ' ' || c == '\t') return Fail(ne == ns ? Error::kObsFold : Error::kWhitespaceBeforeColon, p);
      if (c == '\r' && At(p + 1) != '\n') return Fail(Error::kBareCr, p);
      return Fail(Error::kInvalidHeaderName, p);
    }
    c = b_[++p];
    while (c == ' ' || c == '\t') c = b_[++p];
    const size_t vs = p;
    // A line FindEnd framed has no control byte but HTAB before its CR, and no DEL: every byte
    // up to its CR is a field-value byte, so its CR is where ValueEnd would stop (vs is at or
    // before it: the name and OWS loops stop at a CR). Saves ValueEnd's search per line.
    p = static_cast<size_t>(n) < known_ends_ ? field_ends_[n] : ValueEnd(p);
    if (b_[p] != '\r') return Fail(Error::kInvalidHeaderValue, p);
    if (b_[p + 1] != '\n') return Fail(Error::kBareCr, p);
    size_t ve = p;
    // Trailing OWS: the byte before the CR is usually a VCHAR or obs-text (above SP).
    if (b_[p - 1] <= ' ') {
      while (ve > vs && (b_[ve - 1] == ' ' || b_[ve - 1] == '\t')) ve--;
    }
    const bool canonical = ve == p && vs == ne + 2 && b_[ne + 1] == ' ';
    p += 2;
    if (n >= out_->capacity) return Fail(Error::kNone, p);
    const int32_t id = KnownId(b_, ns, ne);
    w[0] = static_cast<int32_t>(ns - entry_origin_);
    w[1] = static_cast<int32_t>(ne - entry_origin_);
    w[2] = static_cast<int32_t>(vs - entry_origin_);
    w[3] = static_cast<int32_t>(ve - entry_origin_);
    w[4] = canonical ? (id | kCanonical) : id;
    w += kEntry;
    n++;
    out_->fields = n;
    if (id != 0) {
      if (head) {
        if (!SpecialField(id, vs, ve)) return false;
      } else if (id == g_names.content_length || id == g_names.transfer_encoding || id == g_names.host) {
        return Fail(Error::kForbiddenTrailer, ns, id);
      }
    }
  }
  Summarize(out_->entries, n, out_);
  if (head && (out_->conn_flags & ~(kListKeepAlive | kListUpgrade)) == 0) {
    out_->summary_flags |= kSummaryConnectionHopOnly;
  }
  return true;
}

// Lines whose ends FindEnd records for the parse (a head's start line and field lines; more are
// searched for as in block mode).
constexpr size_t kRecordedLines = 64;

// Find mode's framing pass (decoder.ts scanHead): the offset after the final CRLF of the head
// starting at src[s], or 0 when it is not whole in src[s, e) or breaks a framing rule; *lines:
// the head's lines before the empty one; line_ends[k]: the offset of line k's CR, for the first
// kRecordedLines lines.
size_t FindEnd(const uint8_t* src, size_t s, size_t e, const Limits& limits, size_t* lines_out,
               size_t* line_ends) {
  const size_t lim_end = std::min(e, s + static_cast<size_t>(limits.max_head_size));
  const size_t max_line = static_cast<size_t>(limits.max_line_length);
  const int32_t max_lines = limits.max_header_count + 1;
  int32_t lines = 0;
  size_t line_start = s;
  const __m128i ctl_max = _mm_set1_epi8(0x1f);
  const __m128i del = _mm_set1_epi8(0x7f);
  size_t a = s;
  for (;;) {
    // The next control byte or DEL (HTAB included; it is let through below).
    size_t hit = lim_end;
    while (a + 16 <= lim_end) {
      const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + a));
      const __m128i m = _mm_or_si128(_mm_cmpeq_epi8(_mm_max_epu8(x, ctl_max), ctl_max), _mm_cmpeq_epi8(x, del));
      const int mask = _mm_movemask_epi8(m);
      if (mask != 0) {
        hit = a + __builtin_ctz(mask);
        break;
      }
      a += 16;
    }
    if (hit == lim_end && a < lim_end) {
      if (lim_end - s >= 16) {
        // Fewer than 16 bytes left: the last 16 of the head's span, those before a masked off.
        const size_t at = lim_end - 16;
        const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + at));
        const __m128i m = _mm_or_si128(_mm_cmpeq_epi8(_mm_max_epu8(x, ctl_max), ctl_max), _mm_cmpeq_epi8(x, del));
        const unsigned mask = static_cast<unsigned>(_mm_movemask_epi8(m)) >> (a - at);
        a = mask != 0 ? a + __builtin_ctz(mask) : lim_end;
      } else {
        while (a < lim_end && src[a] >= 0x20 && src[a] != 0x7f) a++;
      }
      hit = a;
    }
    if (hit >= lim_end) return 0;
    a = hit;
    const uint8_t c = src[a];
    if (c == '\t') {
      a++;
      continue;
    }
    if (c != '\r' || a + 1 >= lim_end || src[a + 1] != '\n') return 0;
    // CRLF at a: the end of a line.
    if (a == line_start) {
      *lines_out = static_cast<size_t>(lines);
      return a + 2;
    }
    if (a - line_start > max_line || lines >= max_lines) return 0;
    if (static_cast<size_t>(lines) < kRecordedLines) line_ends[lines] = a;
    lines++;
    a += 2;
    line_start = a;
  }
}

void Clear(Result* r) {
  r->length = 0;
  r->error = Error::kNone;
  r->error_at = -1;
  r->error_arg = 0;
  r->fields_at = 0;
  r->fields = 0;
  r->method_end = 0;
  r->target_start = 0;
  r->target_end = 0;
  r->minor = 1;
  r->form = 0;
  r->status = 0;
  r->cl_count = 0;
  r->te_flags = 0;
  r->conn_flags = 0;
  r->host_count = 0;
  r->expect = 0;
  r->upgrade_header = 0;
  r->content_length = -1;
  r->sum_length = 0;
  r->flagged_lines = 0;
  r->ids_lo = 0;
  r->ids_hi = 0;
  r->summary_flags = 0;
  r->in_slab = 0;
}

// Points the entries of a head of `length` bytes with at most `max_fields` field lines into the
// slab after the head's place when the slab has room for them (head_scan.h Result::slab): no
// entry is then copied from the record into the slab after the scan (a loop over the entries in
// ScanWith before: ~217 instructions a proxied request, bench/http-proxy/per-request-2026-12-06g.md).
void PlaceInSlab(Result* r, size_t length, size_t max_fields) {
  if (r->slab == nullptr) return;
  const size_t fields = std::min(max_fields, static_cast<size_t>(r->capacity));
  const size_t wbase = (r->slab_top + length + 3) >> 2;
  if ((wbase + fields * kEntry + kSummaryWords) * 4 > r->slab_len) return;
  r->entries = reinterpret_cast<int32_t*>(r->slab) + wbase;
  r->in_slab = 1;
}

}  // namespace

bool SetKnownNames(const char* const* names, size_t count) {
  std::lock_guard<std::mutex> lock(g_names_lock);
  if (g_names_set) {
    if (g_names.names.size() != count) return false;
    for (size_t i = 0; i < count; i++) {
      if (g_names.names[i] != names[i]) return false;
    }
    return true;
  }
  if (count > 255) return false;
  auto owned = std::make_unique<KnownNames>();  // tens of KiB: not on the stack
  KnownNames& k = *owned;
  for (size_t i = 0; i < count; i++) {
    std::string name(names[i]);
    if (name.empty()) return false;
    for (char ch : name) {
      const uint8_t c = static_cast<uint8_t>(ch);
      if (!kClasses.token[c] || kClasses.lower[c] != c) return false;
    }
    const uint8_t id = static_cast<uint8_t>(i + 1);
    if (name.size() <= kMaxNameLength) {
      k.buckets[name.size() * 32 + (name[0] & 31)].push_back(id);
      std::memcpy(k.flat[id], name.data(), name.size());
      for (size_t j = 0; j < name.size(); j++) {
        k.fold[id][j] = (name[j] >= 'a' && name[j] <= 'z') ? 0x20 : 0;
      }
    }
    if (name == "content-length" || name == "connection" || name == "proxy-connection" ||
        name == "keep-alive" || name == "te" || name == "transfer-encoding" || name == "trailer" ||
        name == "upgrade") {
      k.flagged[id] = 1;
    }
    if (name == "date") k.date = id;
    if (name == "content-length") k.content_length = id;
    else if (name == "transfer-encoding") k.transfer_encoding = id;
    else if (name == "connection") k.connection = id;
    else if (name == "host") k.host = id;
    else if (name == "expect") k.expect = id;
    else if (name == "upgrade") k.upgrade = id;
    k.names.push_back(std::move(name));
  }
  // The decoder's framing depends on these: a list without them is not the decoder's list.
  if (!k.content_length || !k.transfer_encoding || !k.connection || !k.host || !k.expect || !k.upgrade) {
    return false;
  }
  // The summary's Date flag is its bit in the id filter (bit id & 63): no other id may share it.
  for (size_t id = 1; k.date != 0 && id <= count; id++) {
    if (static_cast<int32_t>(id) != k.date && (id & 63) == static_cast<size_t>(k.date & 63)) return false;
  }
  g_names = std::move(k);
  g_names_set = true;
  return true;
}

Outcome Scan(const uint8_t* src, size_t start, size_t end, bool find_end, Kind kind, const Limits& limits,
             Result* out) {
  Clear(out);
  if (start >= end) return Outcome::kFallback;
  // At least the field lines of the head: its lines (find mode), else one per 4 bytes of the
  // block before its final CRLF (a field line is at least `t:` CRLF).
  size_t max_fields;
  size_t line_ends[kRecordedLines];
  if (find_end) {
    if (src[start] == '\r' || src[start] == '\n') return Outcome::kFallback;
    const size_t head_end = FindEnd(src, start, end, limits, &max_fields, line_ends);
    if (head_end == 0) return Outcome::kFallback;
    end = head_end;
  } else if (end - start < 2 || src[end - 2] != '\r' || src[end - 1] != '\n') {
    return Outcome::kFallback;
  } else {
    max_fields = (end - start - 2) / 4;
  }
  out->length = static_cast<int32_t>(end - start);
  PlaceInSlab(out, end - start, max_fields);
  Parser parser(src, start, end, out);
  if (find_end) {
    // Line 0 is the start line of a head (none in trailers).
    const size_t first = kind == Kind::kTrailers ? 0 : 1;
    const size_t recorded = std::min(max_fields, kRecordedLines);
    if (recorded > first) parser.KnownFieldEnds(line_ends + first, recorded - first);
  }
  size_t p = start;
  bool ok = true;
  if (kind == Kind::kRequest) ok = parser.RequestLine(&p);
  else if (kind == Kind::kResponse) ok = parser.StatusLine(&p);
  if (ok) ok = parser.Fields(p, kind != Kind::kTrailers);
  if (ok) return Outcome::kOk;
  return out->error == Error::kNone ? Outcome::kFallback : Outcome::kError;
}

namespace {

Napi::Value Init(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArray()) {
    Napi::TypeError::New(env, "headScan.init(names: string[])").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Array list = info[0].As<Napi::Array>();
  std::vector<std::string> names;
  for (uint32_t i = 0; i < list.Length(); i++) {
    Napi::Value v = list.Get(i);
    if (!v.IsString()) {
      Napi::TypeError::New(env, "headScan.init: names must be strings").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    names.push_back(v.As<Napi::String>().Utf8Value());
  }
  std::vector<const char*> ptrs;
  for (const auto& n : names) ptrs.push_back(n.c_str());
  return Napi::Boolean::New(env, SetKnownNames(ptrs.data(), ptrs.size()));
}

// A record bound once: the decoder's io record and the HeadSlab it copies into, held by strong
// references so the memory outlives every scan through the binding, which saves two typed-array
// look-ups per scan (~20 ns of a ~75 ns crossing). setSlab() moves the binding to the next slab
// (once per ~100 heads) and lets go of the last one at once: a binding per slab would keep
// every slab until its External's finalizer ran (after a turn of the event loop; measured: a
// million heads decoded in one synchronous run kept 415 MB of slabs).
struct Binding {
  napi_ref io_ref = nullptr;
  int32_t* io = nullptr;
  size_t io_len = 0;
  napi_ref slab_ref = nullptr;
  uint8_t* slab = nullptr;
  size_t slab_len = 0;
};

// Tags a binding's External so no other External (an AES-SIV key handle...) passes for one.
constexpr napi_type_tag kBindingTag = {0x6c6f6368'68656164ULL, 0x7363616e'62696e64ULL};

void FinalizeBinding(napi_env env, void* data, void* /*hint*/) {
  auto* b = static_cast<Binding*>(data);
  if (b->io_ref != nullptr) napi_delete_reference(env, b->io_ref);
  if (b->slab_ref != nullptr) napi_delete_reference(env, b->slab_ref);
  delete b;
}

// The Binding of a tagged External (bind()) or tagged function (scanner(), which wraps it);
// throws a TypeError and returns null for anything else.
Binding* BindingOf(napi_env env, napi_value value) {
  bool tagged = false;
  void* bound = nullptr;
  if (napi_check_object_type_tag(env, value, &kBindingTag, &tagged) != napi_ok || !tagged ||
      (napi_get_value_external(env, value, &bound) != napi_ok && napi_unwrap(env, value, &bound) != napi_ok) ||
      bound == nullptr) {
    napi_throw_type_error(env, nullptr, "headScan: not a binding from bind() or scanner()");
    return nullptr;
  }
  return static_cast<Binding*>(bound);
}

// A 4-aligned Uint8Array's memory, or false.
bool SlabOf(napi_env env, napi_value value, uint8_t** data, size_t* len) {
  napi_typedarray_type t;
  size_t off;
  void* d;
  napi_value ab;
  if (napi_get_typedarray_info(env, value, &t, len, &d, &ab, &off) != napi_ok || t != napi_uint8_array ||
      (reinterpret_cast<uintptr_t>(d) & 3) != 0) {
    return false;
  }
  *data = static_cast<uint8_t*>(d);
  return true;
}

// setSlab(binding, slab: Uint8Array): the slab scans copy into from now on.
napi_value SetSlabJs(napi_env env, napi_callback_info cbinfo) {
  size_t argc = 2;
  napi_value argv[2];
  if (napi_get_cb_info(env, cbinfo, &argc, argv, nullptr, nullptr) != napi_ok || argc < 2) {
    napi_throw_type_error(env, nullptr, "headScan.setSlab(binding, slab: Uint8Array)");
    return nullptr;
  }
  Binding* b = BindingOf(env, argv[0]);
  if (b == nullptr) return nullptr;
  uint8_t* data;
  size_t len;
  napi_ref ref;
  if (!SlabOf(env, argv[1], &data, &len)) {
    napi_throw_type_error(env, nullptr, "headScan.setSlab(binding, slab: 4-aligned Uint8Array)");
    return nullptr;
  }
  if (napi_create_reference(env, argv[1], 1, &ref) != napi_ok) {
    napi_throw_error(env, nullptr, "headScan.setSlab: out of memory");
    return nullptr;
  }
  if (b->slab_ref != nullptr) napi_delete_reference(env, b->slab_ref);
  b->slab_ref = ref;
  b->slab = data;
  b->slab_len = len;
  return nullptr;
}

// A new Binding of bind()'s or scanner()'s arguments (io: Int32Array, slab: Uint8Array), its
// references made; null with a TypeError or an Error thrown.
Binding* NewBinding(napi_env env, napi_callback_info cbinfo) {
  size_t argc = 2;
  napi_value argv[2];
  if (napi_get_cb_info(env, cbinfo, &argc, argv, nullptr, nullptr) != napi_ok || argc < 2) {
    napi_throw_type_error(env, nullptr, "headScan.bind(io: Int32Array, slab: Uint8Array)");
    return nullptr;
  }
  napi_typedarray_type it;
  size_t ilen, ioff, blen;
  void* idata;
  uint8_t* bdata;
  napi_value iab;
  if (napi_get_typedarray_info(env, argv[0], &it, &ilen, &idata, &iab, &ioff) != napi_ok ||
      it != napi_int32_array || ilen < static_cast<size_t>(kEntries + kSummaryWords) || (ioff & 7) != 0 ||
      !SlabOf(env, argv[1], &bdata, &blen)) {
    napi_throw_type_error(env, nullptr,
                          "headScan.bind(io: Int32Array of 33+ words, 8-aligned; slab: 4-aligned Uint8Array)");
    return nullptr;
  }
  auto* b = new Binding();
  b->io = static_cast<int32_t*>(idata);
  b->io_len = ilen;
  b->slab = bdata;
  b->slab_len = blen;
  if (napi_create_reference(env, argv[0], 1, &b->io_ref) != napi_ok ||
      napi_create_reference(env, argv[1], 1, &b->slab_ref) != napi_ok) {
    FinalizeBinding(env, b, nullptr);
    napi_throw_error(env, nullptr, "headScan.bind: out of memory");
    return nullptr;
  }
  return b;
}

// bind(io: Int32Array, slab: Uint8Array): an opaque binding for scan().
napi_value BindJs(napi_env env, napi_callback_info cbinfo) {
  Binding* b = NewBinding(env, cbinfo);
  if (b == nullptr) return nullptr;
  napi_value external;
  if (napi_create_external(env, b, FinalizeBinding, nullptr, &external) != napi_ok) {
    FinalizeBinding(env, b, nullptr);
    napi_throw_error(env, nullptr, "headScan.bind: out of memory");
    return nullptr;
  }
  napi_type_tag_object(env, external, &kBindingTag);
  return external;
}

napi_value ScanBoundJs(napi_env env, napi_callback_info cbinfo);

// scanner(io: Int32Array, slab: Uint8Array): a function `scan(src)` bound to a new binding, which
// it owns (napi_wrap: freed with the function) and which setSlab() takes as a binding.
napi_value ScannerJs(napi_env env, napi_callback_info cbinfo) {
  Binding* b = NewBinding(env, cbinfo);
  if (b == nullptr) return nullptr;
  napi_value fn;
  if (napi_create_function(env, "scan", NAPI_AUTO_LENGTH, ScanBoundJs, b, &fn) != napi_ok ||
      napi_wrap(env, fn, b, FinalizeBinding, nullptr, nullptr) != napi_ok) {
    FinalizeBinding(env, b, nullptr);
    napi_throw_error(env, nullptr, "headScan.scanner: out of memory");
    return nullptr;
  }
  napi_type_tag_object(env, fn, &kBindingTag);
  return fn;
}

// One scan of `src` through binding `b` (scan() and a scanner()'s function): Outcome, or kCopied.
napi_value ScanWith(napi_env env, const Binding& b, napi_value src_value) {
  napi_value result;
  napi_typedarray_type st;
  size_t slen, soff;
  void* sdata;
  napi_value sab;
  if (napi_get_typedarray_info(env, src_value, &st, &slen, &sdata, &sab, &soff) != napi_ok || st != napi_uint8_array) {
    napi_throw_type_error(env, nullptr, "headScan.scan(binding, src: Uint8Array)");
    return nullptr;
  }
  int32_t* io = b.io;
  const uint8_t* src = static_cast<const uint8_t*>(sdata);
  const int32_t start = io[kInStart];
  const int32_t end = io[kInEnd];
  const int32_t kind = io[kInKind];
  if (!g_names_set || start < 0 || end < start || static_cast<size_t>(end) > slen || kind < 0 || kind > 2 ||
      io[kInMaxHead] <= 0 || io[kInMaxCount] < 0 || io[kInMaxLine] <= 0) {
    napi_throw_range_error(env, nullptr, "headScan.scan: bad input record (init() first)");
    return nullptr;
  }
  Result r;
  r.entries = io + kEntries;
  // Room for the summary after the last entry.
  r.capacity = static_cast<int32_t>((b.io_len - kEntries - kSummaryWords) / kEntry);
  const int32_t top = io[kInSlabTop];
  const bool slab_free = top >= 0 && (top & 3) == 0;
  r.slab = slab_free ? b.slab : nullptr;
  r.slab_len = b.slab_len;
  r.slab_top = slab_free ? static_cast<size_t>(top) : 0;
  const Limits limits{io[kInMaxHead], io[kInMaxCount], io[kInMaxLine]};
  const Outcome o = Scan(src, static_cast<size_t>(start), static_cast<size_t>(end), io[kInMode] == 0,
                         static_cast<Kind>(kind), limits, &r);
  io[kOutLength] = r.length;
  io[kOutError] = static_cast<int32_t>(r.error);
  io[kOutErrorAt] = r.error_at;
  io[kOutErrorArg] = r.error_arg;
  io[kOutFieldsAt] = r.fields_at;
  io[kOutFields] = r.fields;
  io[kOutMethodEnd] = r.method_end;
  io[kOutTargetStart] = r.target_start;
  io[kOutTargetEnd] = r.target_end;
  io[kOutMinor] = r.minor;
  io[kOutForm] = r.form;
  io[kOutStatus] = r.status;
  io[kOutClCount] = r.cl_count;
  io[kOutTeFlags] = r.te_flags;
  io[kOutConnFlags] = r.conn_flags;
  io[kOutHostCount] = r.host_count;
  io[kOutExpect] = r.expect;
  io[kOutUpgrade] = r.upgrade_header;
  std::memcpy(io + kOutContentLength, &r.content_length, sizeof(double));
  // After the last entry, in the record or the slab (within the room PlaceInSlab found).
  const int32_t summary[kSummaryWords] = {r.sum_length, r.flagged_lines, r.ids_lo, r.ids_hi, r.summary_flags};
  std::memcpy(r.entries + static_cast<size_t>(r.fields) * kEntry, summary, sizeof(summary));
  int32_t ret = static_cast<int32_t>(o);
  if (o == Outcome::kOk && r.in_slab) {
    std::memcpy(b.slab + r.slab_top, src + start, static_cast<size_t>(r.length));
    ret = kCopied;
  }
  napi_create_int32(env, ret, &result);
  return result;
}

// scan(binding, src: Uint8Array): Outcome, or kCopied. Plain N-API (no wrapper objects): one call
// per head is the whole cost the decoder pays to cross, so it stays at a few tens of nanoseconds.
napi_value ScanJs(napi_env env, napi_callback_info cbinfo) {
  size_t argc = 2;
  napi_value argv[2];
  if (napi_get_cb_info(env, cbinfo, &argc, argv, nullptr, nullptr) != napi_ok || argc < 2) {
    napi_throw_type_error(env, nullptr, "headScan.scan(binding: from bind(), src: Uint8Array)");
    return nullptr;
  }
  const Binding* bound = BindingOf(env, argv[0]);
  if (bound == nullptr) return nullptr;
  return ScanWith(env, *bound, argv[1]);
}

// A scanner()'s function: its Binding is the callback's data (the function owns it: napi_wrap),
// so a call checks no tag and reads no External: scanFn(src) is scan(binding, src).
napi_value ScanBoundJs(napi_env env, napi_callback_info cbinfo) {
  size_t argc = 1;
  napi_value argv[1];
  void* data = nullptr;
  if (napi_get_cb_info(env, cbinfo, &argc, argv, nullptr, &data) != napi_ok || argc < 1 || data == nullptr) {
    napi_throw_type_error(env, nullptr, "headScan scanner: scan(src: Uint8Array)");
    return nullptr;
  }
  return ScanWith(env, *static_cast<const Binding*>(data), argv[0]);
}

}  // namespace

void Register(Napi::Env env, Napi::Object exports) {
  Napi::Object scan = Napi::Object::New(env);
  scan.Set("init", Napi::Function::New(env, Init, "init"));
  napi_value fn;
  napi_create_function(env, "bind", NAPI_AUTO_LENGTH, BindJs, nullptr, &fn);
  scan.Set("bind", Napi::Value(env, fn));
  napi_create_function(env, "setSlab", NAPI_AUTO_LENGTH, SetSlabJs, nullptr, &fn);
  scan.Set("setSlab", Napi::Value(env, fn));
  napi_create_function(env, "scan", NAPI_AUTO_LENGTH, ScanJs, nullptr, &fn);
  scan.Set("scan", Napi::Value(env, fn));
  napi_create_function(env, "scanner", NAPI_AUTO_LENGTH, ScannerJs, nullptr, &fn);
  scan.Set("scanner", Napi::Value(env, fn));
  // The layout's mark: the decoder uses a scanner whose summary it knows (a build from before the
  // summary wrote none, and its lines would read as having nothing to drop).
  scan.Set("summaryWords", Napi::Number::New(env, kSummaryWords));
  exports.Set("headScan", scan);
}

}  // namespace loch::headscan

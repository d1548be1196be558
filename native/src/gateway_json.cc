// Thrift -> JSON text by an IDL plan (gateway_json.h). The JavaScript side is the reference: every
// rule here is the rule of packages/gateway/src/codec/thrift-to-json.ts and json-text.ts, and the
// reader's checks are those of @loch/thrift's BinaryReader and CompactReader (depth, sizes,
// truncation, types, varint lengths), so that a value this code accepts is one the JavaScript
// path accepts with the same text. Where it refuses (kError) the caller reruns the JavaScript
// path, which throws the typed error; refusing more than JavaScript would only costs that rerun.
//
// Plan (Int32Array, built by packages/gateway/src/codec/native-json.ts), nodes at word offsets:
//   kBool..kBinary          [kind]
//   kEnum                   [kind, count, (value, textOff, textLen) * count]   (names as JSON text)
//   kList, kSet             [kind, elemNode, wantTType]
//   kMap                    [kind, keyNode, valueNode, keyTType, valueTType]
//   kStruct                 [kind, count, isUnion, (id, ttype, prefixOff, prefixLen, typeNode,
//                            required, defaultOff, defaultLen) * count]
// prefix is the pre-escaped `"name":`, text offsets index the plan's text (Uint8Array); a
// default is its value encoded in the plan's protocol (defaultLen -1: none), for requests.
//
// JS calls (plain N-API, one crossing per value):
//   compile(plan: Int32Array, text: Uint8Array) -> handle (an external), throws on a bad plan
//   emit(handle, root, src: Uint8Array, out: Uint8Array, io: Int32Array) -> 0 ok, 1 out is too
//     small (grow it and call again), 2 refused (run the JavaScript path)
//   io in:  [0] src pos, [1] src end, [2] protocol (0 binary, 1 compact), [3] reader depth,
//           [4] max depth, [5] out pos;  out (on 0): [6] src pos after the value, [7] out pos.
#include "gateway_json.h"

#include <emmintrin.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <string_view>
#include <utility>
#include <vector>

namespace loch::gatewayjson {
namespace {

enum Kind : int32_t {
  kBool = 1,
  kByte = 2,
  kI16 = 3,
  kI32 = 4,
  kI64Str = 5,
  kI64Num = 6,
  kDouble = 7,
  kString = 8,
  kBinary = 9,
  kEnum = 10,
  kList = 11,
  kSet = 12,
  kMap = 13,
  kStruct = 14,
};

// Thrift type ids (@loch/thrift TType).
enum TT : int32_t {
  tStop = 0,
  tBool = 2,
  tByte = 3,
  tDouble = 4,
  tI16 = 6,
  tI32 = 8,
  tI64 = 10,
  tString = 11,
  tStruct = 12,
  tMap = 13,
  tSet = 14,
  tList = 15,
  tUuid = 16,
};

bool IsValueType(int32_t t) { return (t >= 2 && t <= 4) || t == 6 || t == 8 || (t >= 10 && t <= 16); }

// Byte width of fixed-size binary values by type id (0: variable).
constexpr int8_t kFixedWidth[17] = {0, 0, 1, 1, 8, 0, 2, 0, 4, 0, 8, 0, 0, 0, 0, 0, 16};

// Thrift type by compact nibble (-1 invalid; nibble 2 is bool false).
constexpr int8_t kFromCompact[16] = {0, 2, 2, 3, 6, 8, 10, 4, 11, 15, 14, 13, 12, 16, -1, -1};

constexpr int32_t kDense = 64;
// Words per struct field in the plan.
constexpr size_t kFieldWords = 8;

struct Field {
  int32_t id;
  int32_t ttype;
  uint32_t prefix_off;
  uint32_t prefix_len;
  int32_t node;  // index into Plan::nodes
  bool required;
  int32_t default_off;  // the default's encoded value in the plan's text; -1: none
  int32_t default_len;
};

struct EnumName {
  int32_t value;
  uint32_t off;
  uint32_t len;
};

struct Node {
  int32_t kind = 0;
  int32_t a = -1;  // list/set elem, map key (node indices)
  int32_t b = -1;  // map value
  int32_t ta = 0;  // list/set want type, map key type
  int32_t tb = 0;  // map value type
  std::vector<EnumName> names;  // sorted by value
  std::vector<Field> fields;
  bool is_union = false;
  int16_t dense[kDense];
};

struct Plan {
  std::vector<Node> nodes;
  std::vector<uint8_t> text;
  std::vector<int32_t> index_of;  // word offset -> node index (-1 none)
};

// ---- plan compilation ----

bool CompilePlan(const int32_t* w, size_t n, const uint8_t* text, size_t text_len, Plan* plan) {
  plan->text.assign(text, text + text_len);
  plan->index_of.assign(n, -1);
  // First pass: find nodes and their extent.
  std::vector<size_t> starts;
  size_t i = 0;
  while (i < n) {
    const int32_t kind = w[i];
    size_t len;
    switch (kind) {
      case kBool: case kByte: case kI16: case kI32: case kI64Str: case kI64Num: case kDouble:
      case kString: case kBinary:
        len = 1;
        break;
      case kEnum:
        if (i + 1 >= n || w[i + 1] < 0) return false;
        len = 2 + static_cast<size_t>(w[i + 1]) * 3;
        break;
      case kList: case kSet:
        len = 3;
        break;
      case kMap:
        len = 5;
        break;
      case kStruct:
        if (i + 1 >= n || w[i + 1] < 0) return false;
        len = 3 + static_cast<size_t>(w[i + 1]) * kFieldWords;
        break;
      default:
        return false;
    }
    if (i + len > n) return false;
    plan->index_of[i] = static_cast<int32_t>(starts.size());
    starts.push_back(i);
    i += len;
  }
  plan->nodes.resize(starts.size());
  auto node_at = [&](int32_t off, int32_t* out) {
    if (off < 0 || static_cast<size_t>(off) >= n || plan->index_of[off] < 0) return false;
    *out = plan->index_of[off];
    return true;
  };
  auto text_ok = [&](int32_t off, int32_t len) {
    return off >= 0 && len >= 0 && static_cast<size_t>(off) + static_cast<size_t>(len) <= text_len;
  };
  for (size_t k = 0; k < starts.size(); k++) {
    const int32_t* p = w + starts[k];
    Node& node = plan->nodes[k];
    node.kind = p[0];
    switch (node.kind) {
      case kEnum: {
        for (int32_t j = 0; j < p[1]; j++) {
          const int32_t* e = p + 2 + j * 3;
          if (!text_ok(e[1], e[2])) return false;
          node.names.push_back({e[0], static_cast<uint32_t>(e[1]), static_cast<uint32_t>(e[2])});
        }
        std::sort(node.names.begin(), node.names.end(),
                  [](const EnumName& x, const EnumName& y) { return x.value < y.value; });
        break;
      }
      case kList: case kSet:
        if (!node_at(p[1], &node.a) || !IsValueType(p[2])) return false;
        node.ta = p[2];
        break;
      case kMap:
        if (!node_at(p[1], &node.a) || !node_at(p[2], &node.b) || !IsValueType(p[3]) || !IsValueType(p[4]))
          return false;
        node.ta = p[3];
        node.tb = p[4];
        break;
      case kStruct: {
        std::fill(node.dense, node.dense + kDense, -1);
        node.is_union = p[2] != 0;
        for (int32_t j = 0; j < p[1]; j++) {
          const int32_t* f = p + 3 + j * kFieldWords;
          Field field{f[0], f[1], static_cast<uint32_t>(f[2]), static_cast<uint32_t>(f[3]), -1, f[5] != 0, f[6], f[7]};
          if (!text_ok(f[2], f[3]) || f[3] < 2 || !IsValueType(f[1]) || !node_at(f[4], &field.node)) return false;
          if (f[7] != -1 && (!text_ok(f[6], f[7]) || f[7] == 0)) return false;
          if (f[0] < -32768 || f[0] > 32767) return false;
          for (const Field& other : node.fields)
            if (other.id == field.id) return false;
          if (field.id >= 0 && field.id < kDense) node.dense[field.id] = static_cast<int16_t>(node.fields.size());
          node.fields.push_back(field);
        }
        break;
      }
      default:
        break;
    }
  }
  return true;
}

// ---- output ----

enum Status : int32_t { kOk = 0, kNeedRoom = 1, kError = 2 };

struct Out {
  uint8_t* buf;
  size_t pos;
  size_t cap;
  bool Room(size_t n) const { return cap - pos >= n; }
};

constexpr char kHex[] = "0123456789abcdef";
// Escape letter of `"`, `\` and the control characters that have one (0: \u00XX).
uint8_t ShortEscape(uint8_t c) {
  switch (c) {
    case 0x08: return 'b';
    case 0x09: return 't';
    case 0x0a: return 'n';
    case 0x0c: return 'f';
    case 0x0d: return 'r';
    case 0x22: return '"';
    case 0x5c: return '\\';
    default: return 0;
  }
}

// One ASCII byte as JSON.stringify writes it inside a string (room checked by the caller: 6).
inline void PutAsciiEscaped(uint8_t* b, size_t& p, uint8_t c) {
  if (c >= 0x20 && c != 0x22 && c != 0x5c) {
    b[p++] = c;
    return;
  }
  b[p++] = '\\';
  const uint8_t s = ShortEscape(c);
  if (s != 0) {
    b[p++] = s;
  } else {
    b[p++] = 'u';
    b[p++] = '0';
    b[p++] = '0';
    b[p++] = kHex[c >> 4];
    b[p++] = kHex[c & 15];
  }
}

// Length of the well-formed UTF-8 sequence at src[i] (2-4), or 0 (json-text.ts's
// utf8SequenceLength: Unicode's table 3-7).
inline int Utf8SequenceLength(const uint8_t* src, size_t i, size_t end) {
  const uint8_t c = src[i];
  if (c < 0xc2) return 0;
  if (c < 0xe0) return i + 1 < end && (src[i + 1] & 0xc0) == 0x80 ? 2 : 0;
  if (c < 0xf0) {
    if (i + 2 >= end) return 0;
    const uint8_t c1 = src[i + 1];
    if ((src[i + 2] & 0xc0) != 0x80) return 0;
    if (c == 0xe0) return c1 >= 0xa0 && c1 <= 0xbf ? 3 : 0;
    if (c == 0xed) return c1 >= 0x80 && c1 <= 0x9f ? 3 : 0;
    return (c1 & 0xc0) == 0x80 ? 3 : 0;
  }
  if (c > 0xf4 || i + 3 >= end) return 0;
  const uint8_t c1 = src[i + 1];
  if ((src[i + 2] & 0xc0) != 0x80 || (src[i + 3] & 0xc0) != 0x80) return 0;
  if (c == 0xf0) return c1 >= 0x90 && c1 <= 0xbf ? 4 : 0;
  if (c == 0xf4) return c1 >= 0x80 && c1 <= 0x8f ? 4 : 0;
  return (c1 & 0xc0) == 0x80 ? 4 : 0;
}

inline void PutCodePoint(uint8_t* b, size_t& p, uint32_t cp) {
  if (cp < 0x80) {
    PutAsciiEscaped(b, p, static_cast<uint8_t>(cp));
  } else if (cp < 0x800) {
    b[p++] = static_cast<uint8_t>(0xc0 | (cp >> 6));
    b[p++] = static_cast<uint8_t>(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    b[p++] = static_cast<uint8_t>(0xe0 | (cp >> 12));
    b[p++] = static_cast<uint8_t>(0x80 | ((cp >> 6) & 0x3f));
    b[p++] = static_cast<uint8_t>(0x80 | (cp & 0x3f));
  } else {
    b[p++] = static_cast<uint8_t>(0xf0 | (cp >> 18));
    b[p++] = static_cast<uint8_t>(0x80 | ((cp >> 12) & 0x3f));
    b[p++] = static_cast<uint8_t>(0x80 | ((cp >> 6) & 0x3f));
    b[p++] = static_cast<uint8_t>(0x80 | (cp & 0x3f));
  }
}

// A string that is not well-formed UTF-8, from its start: decoded as the WHATWG decoder
// (TextDecoder, ignoreBOM) does, each maximal bad subpart U+FFFD, then escaped as JSON.stringify.
// Room: 6 bytes per input byte + 2 (U+FFFD is 3 bytes for at least one input byte).
void PutDecoded(uint8_t* b, size_t& p, const uint8_t* src, size_t start, size_t end) {
  b[p++] = '"';
  uint32_t cp = 0;
  int needed = 0, seen = 0;
  uint8_t lower = 0x80, upper = 0xbf;
  size_t i = start;
  while (i < end) {
    const uint8_t c = src[i];
    if (needed == 0) {
      i++;
      if (c < 0x80) {
        PutAsciiEscaped(b, p, c);
      } else if (c >= 0xc2 && c <= 0xdf) {
        needed = 1;
        cp = c & 0x1f;
      } else if (c >= 0xe0 && c <= 0xef) {
        if (c == 0xe0) lower = 0xa0;
        if (c == 0xed) upper = 0x9f;
        needed = 2;
        cp = c & 0xf;
      } else if (c >= 0xf0 && c <= 0xf4) {
        if (c == 0xf0) lower = 0x90;
        if (c == 0xf4) upper = 0x8f;
        needed = 3;
        cp = c & 7;
      } else {
        PutCodePoint(b, p, 0xfffd);
      }
      continue;
    }
    if (c < lower || c > upper) {
      cp = 0;
      needed = seen = 0;
      lower = 0x80;
      upper = 0xbf;
      PutCodePoint(b, p, 0xfffd);
      continue;  // the byte is read again
    }
    i++;
    lower = 0x80;
    upper = 0xbf;
    cp = (cp << 6) | (c & 0x3f);
    if (++seen == needed) {
      PutCodePoint(b, p, cp);
      cp = 0;
      needed = seen = 0;
    }
  }
  if (needed != 0) PutCodePoint(b, p, 0xfffd);
  b[p++] = '"';
}

// The bytes src[start, end) as the JSON string JsonText.stringAt writes.
Status PutString(Out& o, const uint8_t* src, size_t start, size_t end) {
  const size_t n = end - start;
  if (!o.Room(n + 2)) return kNeedRoom;
  uint8_t* b = o.buf;
  size_t p = o.pos;
  b[p++] = '"';
  size_t i = start;
  for (; i < end; i++) {
    const uint8_t c = src[i];
    if (c < 0x20 || c > 0x7e || c == 0x22 || c == 0x5c) break;
    b[p++] = c;
  }
  if (i == end) {
    b[p++] = '"';
    o.pos = p;
    return kOk;
  }
  const size_t open = o.pos;
  if (!o.Room((p - o.pos) + (end - i) * 6 + 1)) return kNeedRoom;
  while (i < end) {
    const uint8_t c = src[i];
    if (c < 0x80) {
      PutAsciiEscaped(b, p, c);
      i++;
      continue;
    }
    const int k = Utf8SequenceLength(src, i, end);
    if (k == 0) {
      p = open;
      if (!o.Room(n * 6 + 2)) return kNeedRoom;
      PutDecoded(b, p, src, start, end);
      o.pos = p;
      return kOk;
    }
    for (int j = 0; j < k; j++) b[p++] = src[i + j];
    i += k;
  }
  b[p++] = '"';
  o.pos = p;
  return kOk;
}

inline Status PutRaw(Out& o, const uint8_t* s, size_t n) {
  if (!o.Room(n)) return kNeedRoom;
  std::memcpy(o.buf + o.pos, s, n);
  o.pos += n;
  return kOk;
}

inline Status PutByte(Out& o, uint8_t c) {
  if (!o.Room(1)) return kNeedRoom;
  o.buf[o.pos++] = c;
  return kOk;
}

Status PutInt(Out& o, int64_t v) {
  if (!o.Room(20)) return kNeedRoom;
  auto r = std::to_chars(reinterpret_cast<char*>(o.buf + o.pos), reinterpret_cast<char*>(o.buf + o.cap), v);
  o.pos = reinterpret_cast<uint8_t*>(r.ptr) - o.buf;
  return kOk;
}

// A finite double as JavaScript's Number.prototype.toString writes it (ECMA-262
// Number::toString): the shortest digits that round-trip (std::to_chars; the closest of them,
// as ECMA-262 asks), fixed notation for decimal exponents -6 < n <= 21, else d.ddde+n.
Status PutDouble(Out& o, double v) {
  if (!o.Room(32)) return kNeedRoom;
  char* out = reinterpret_cast<char*>(o.buf + o.pos);
  if (v == 0) {  // +0 and -0 are both "0"
    *out = '0';
    o.pos += 1;
    return kOk;
  }
  char tmp[40];
  auto r = std::to_chars(tmp, tmp + sizeof(tmp), v, std::chars_format::scientific);
  // tmp: [-]d[.ddd]e(+|-)xx
  char digits[20];
  int k = 0;
  const char* s = tmp;
  bool neg = false;
  if (*s == '-') {
    neg = true;
    s++;
  }
  while (s < r.ptr && *s != 'e') {
    if (*s != '.') digits[k++] = *s;
    s++;
  }
  int e = 0;
  s++;  // 'e'
  const bool eneg = *s == '-';
  s++;
  while (s < r.ptr) e = e * 10 + (*s++ - '0');
  if (eneg) e = -e;
  const int n = e + 1;  // value = 0.digits * 10^n
  char* p = out;
  if (neg) *p++ = '-';
  if (k <= n && n <= 21) {
    std::memcpy(p, digits, k);
    p += k;
    for (int j = 0; j < n - k; j++) *p++ = '0';
  } else if (0 < n && n <= 21) {
    std::memcpy(p, digits, n);
    p += n;
    *p++ = '.';
    std::memcpy(p, digits + n, k - n);
    p += k - n;
  } else if (-6 < n && n <= 0) {
    *p++ = '0';
    *p++ = '.';
    for (int j = 0; j < -n; j++) *p++ = '0';
    std::memcpy(p, digits, k);
    p += k;
  } else {
    *p++ = digits[0];
    if (k > 1) {
      *p++ = '.';
      std::memcpy(p, digits + 1, k - 1);
      p += k - 1;
    }
    *p++ = 'e';
    const int x = n - 1;
    *p++ = x < 0 ? '-' : '+';
    auto rr = std::to_chars(p, p + 8, x < 0 ? -x : x);
    p = rr.ptr;
  }
  o.pos += p - out;
  return kOk;
}

constexpr char kBase64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

Status PutBase64(Out& o, const uint8_t* s, size_t n) {
  const size_t len = (n + 2) / 3 * 4;
  if (!o.Room(len + 2)) return kNeedRoom;
  uint8_t* b = o.buf;
  size_t p = o.pos;
  b[p++] = '"';
  size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    const uint32_t v = (uint32_t{s[i]} << 16) | (uint32_t{s[i + 1]} << 8) | s[i + 2];
    b[p++] = kBase64[v >> 18];
    b[p++] = kBase64[(v >> 12) & 63];
    b[p++] = kBase64[(v >> 6) & 63];
    b[p++] = kBase64[v & 63];
  }
  if (n - i == 1) {
    const uint32_t v = uint32_t{s[i]} << 16;
    b[p++] = kBase64[v >> 18];
    b[p++] = kBase64[(v >> 12) & 63];
    b[p++] = '=';
    b[p++] = '=';
  } else if (n - i == 2) {
    const uint32_t v = (uint32_t{s[i]} << 16) | (uint32_t{s[i + 1]} << 8);
    b[p++] = kBase64[v >> 18];
    b[p++] = kBase64[(v >> 12) & 63];
    b[p++] = kBase64[(v >> 6) & 63];
    b[p++] = '=';
  }
  b[p++] = '"';
  o.pos = p;
  return kOk;
}

// ---- reading ----

#define TRY(x)                          \
  do {                                  \
    const Status s_ = (x);              \
    if (s_ != kOk) return s_;           \
  } while (0)

template <bool kCompact>
class Emitter {
 public:
  Emitter(const Plan& plan, const uint8_t* src, size_t pos, size_t end, int32_t depth, int32_t max_depth,
          Out& out)
      : plan_(plan), src_(src), pos_(pos), end_(end), depth_(depth), max_depth_(max_depth), o_(out) {}

  size_t pos() const { return pos_; }

  Status Value(int32_t node_index) {
    const Node& node = plan_.nodes[node_index];
    switch (node.kind) {
      case kBool: {
        bool v;
        TRY(ReadBool(&v));
        return v ? PutRaw(o_, reinterpret_cast<const uint8_t*>("true"), 4)
                 : PutRaw(o_, reinterpret_cast<const uint8_t*>("false"), 5);
      }
      case kByte: {
        uint8_t v;
        TRY(U8(&v));
        return PutInt(o_, static_cast<int8_t>(v));
      }
      case kI16: {
        int32_t v;
        TRY(ReadI16(&v));
        return PutInt(o_, v);
      }
      case kI32: {
        int32_t v;
        TRY(ReadI32(&v));
        return PutInt(o_, v);
      }
      case kI64Str:
      case kI64Num: {
        int64_t v;
        TRY(ReadI64(&v));
        if (node.kind == kI64Num) return PutInt(o_, v);
        if (!o_.Room(22)) return kNeedRoom;
        o_.buf[o_.pos++] = '"';
        TRY(PutInt(o_, v));
        o_.buf[o_.pos++] = '"';
        return kOk;
      }
      case kDouble: {
        double v;
        TRY(ReadDouble(&v));
        if (v - v == 0) return PutDouble(o_, v);  // finite
        const char* s = v != v ? "\"NaN\"" : v > 0 ? "\"Infinity\"" : "\"-Infinity\"";
        return PutRaw(o_, reinterpret_cast<const uint8_t*>(s), std::strlen(s));
      }
      case kString: {
        size_t start;
        TRY(ReadBinarySpan(&start));
        return PutString(o_, src_, start, pos_);
      }
      case kBinary: {
        size_t start;
        TRY(ReadBinarySpan(&start));
        return PutBase64(o_, src_ + start, pos_ - start);
      }
      case kEnum: {
        int32_t v;
        TRY(ReadI32(&v));
        auto it = std::lower_bound(node.names.begin(), node.names.end(), v,
                                   [](const EnumName& e, int32_t x) { return e.value < x; });
        if (it == node.names.end() || it->value != v) return PutInt(o_, v);
        return PutRaw(o_, plan_.text.data() + it->off, it->len);
      }
      case kList:
      case kSet: {
        int32_t elem_type;
        int64_t n;
        TRY(ListBegin(&elem_type, &n));
        TRY(PutByte(o_, '['));
        if (elem_type != node.ta && n > 0) {
          for (int64_t i = 0; i < n; i++) TRY(Skip(elem_type));
        } else {
          for (int64_t i = 0; i < n; i++) {
            if (i > 0) TRY(PutByte(o_, ','));
            TRY(Value(node.a));
          }
        }
        depth_--;
        return PutByte(o_, ']');
      }
      case kMap: {
        int32_t kt, vt;
        int64_t n;
        TRY(MapBegin(&kt, &vt, &n));
        TRY(PutByte(o_, '{'));
        if (n > 0 && (kt != node.ta || vt != node.tb)) {
          for (int64_t i = 0; i < n; i++) {
            TRY(Skip(kt));
            TRY(Skip(vt));
          }
        } else {
          for (int64_t i = 0; i < n; i++) {
            if (i > 0) TRY(PutByte(o_, ','));
            const size_t start = o_.pos;
            TRY(Value(node.a));
            if (o_.buf[start] != '"') TRY(Requote(start));
            TRY(PutByte(o_, ':'));
            TRY(Value(node.b));
          }
        }
        depth_--;
        return PutByte(o_, '}');
      }
      case kStruct:
        return Struct(node);
      default:
        return kError;
    }
  }

 private:
  // A map key that is not a JSON string already, as JSON.stringify(its text): the text is
  // well-formed UTF-8 written here, so only `"`, `\` and control bytes change.
  Status Requote(size_t start) {
    const size_t len = o_.pos - start;
    size_t extra = 2;
    for (size_t i = start; i < o_.pos; i++) {
      const uint8_t c = o_.buf[i];
      if (c == '"' || c == '\\') extra += 1;
      else if (c < 0x20) extra += 5;
    }
    if (!o_.Room(extra)) return kNeedRoom;
    uint8_t* b = o_.buf;
    // From the end backwards, so that the text moves in place.
    size_t r = o_.pos;
    size_t w = o_.pos + extra;
    b[--w] = '"';
    while (r > start) {
      const uint8_t c = b[--r];
      if (c == '"' || c == '\\') {
        b[--w] = c;
        b[--w] = '\\';
      } else if (c < 0x20) {
        uint8_t tmp[6];
        size_t q = 0;
        PutAsciiEscaped(tmp, q, c);
        while (q > 0) b[--w] = tmp[--q];
      } else {
        b[--w] = c;
      }
    }
    b[--w] = '"';
    (void)len;
    o_.pos += extra;
    return kOk;
  }

  Status Struct(const Node& node) {
    TRY(Enter());
    int32_t saved_last = last_field_id_;
    if (kCompact) last_field_id_ = 0;
    TRY(PutByte(o_, '{'));
    bool sep = false;
    for (;;) {
      int32_t type = 0, id = 0;
      TRY(FieldBegin(&type, &id));
      if (type == tStop) break;
      const Field* f = nullptr;
      if (id >= 0 && id < kDense) {
        const int16_t k = node.dense[id];
        if (k >= 0) f = &node.fields[k];
      } else {
        for (const Field& x : node.fields)
          if (x.id == id) {
            f = &x;
            break;
          }
      }
      if (f == nullptr || f->ttype != type) {
        TRY(Skip(type));
        continue;
      }
      if (!o_.Room(f->prefix_len + 1)) return kNeedRoom;
      if (sep) o_.buf[o_.pos++] = ',';
      sep = true;
      std::memcpy(o_.buf + o_.pos, plan_.text.data() + f->prefix_off, f->prefix_len);
      o_.pos += f->prefix_len;
      TRY(Value(f->node));
    }
    depth_--;
    if (kCompact) last_field_id_ = saved_last;
    return PutByte(o_, '}');
  }

  Status Enter() { return ++depth_ > max_depth_ ? kError : kOk; }
  Status Need(int64_t n) const { return static_cast<int64_t>(end_ - pos_) < n ? kError : kOk; }

  Status U8(uint8_t* v) {
    if (pos_ >= end_) return kError;
    *v = src_[pos_++];
    return kOk;
  }

  Status BeI32(int32_t* v) {
    TRY(Need(4));
    const uint8_t* b = src_ + pos_;
    *v = static_cast<int32_t>((uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | b[3]);
    pos_ += 4;
    return kOk;
  }

  // Compact: an unsigned varint of at most 5 bytes (bits past 32 dropped, as CompactReader does).
  Status Varint32(uint32_t* v) {
    uint32_t result = 0;
    for (int i = 0; i < 5; i++) {
      if (pos_ >= end_) return kError;
      const uint8_t b = src_[pos_++];
      result |= static_cast<uint32_t>(b & 0x7f) << (7 * i);
      if (b < 0x80) {
        *v = result;
        return kOk;
      }
    }
    return kError;
  }

  Status Varint64(uint64_t* v) {
    uint64_t result = 0;
    for (int i = 0; i < 10; i++) {
      if (pos_ >= end_) return kError;
      const uint8_t b = src_[pos_++];
      result |= static_cast<uint64_t>(b & 0x7f) << (7 * i);
      if (b < 0x80) {
        *v = result;
        return kOk;
      }
    }
    return kError;
  }

  Status SkipVarint(int max) {
    for (int i = 0; i < max; i++) {
      if (pos_ >= end_) return kError;
      if (src_[pos_++] < 0x80) return kOk;
    }
    return kError;
  }

  static int32_t Zigzag32(uint32_t n) { return static_cast<int32_t>((n >> 1) ^ (0u - (n & 1))); }

  Status CompactType(uint32_t nibble, int32_t* t) {
    const int32_t x = kFromCompact[nibble & 15];
    if (x <= 0) return kError;
    *t = x;
    return kOk;
  }

  Status ReadBool(bool* v) {
    if (kCompact) {
      if (pending_bool_ >= 0) {
        *v = pending_bool_ == 1;
        pending_bool_ = -1;
        return kOk;
      }
      uint8_t b;
      TRY(U8(&b));
      *v = b == 1;
      return kOk;
    }
    uint8_t b;
    TRY(U8(&b));
    *v = b != 0;
    return kOk;
  }

  Status ReadI16(int32_t* v) {
    if (kCompact) {
      uint32_t n;
      TRY(Varint32(&n));
      *v = static_cast<int16_t>(static_cast<uint16_t>(Zigzag32(n)));
      return kOk;
    }
    TRY(Need(2));
    *v = static_cast<int16_t>(static_cast<uint16_t>((src_[pos_] << 8) | src_[pos_ + 1]));
    pos_ += 2;
    return kOk;
  }

  Status ReadI32(int32_t* v) {
    if (kCompact) {
      uint32_t n;
      TRY(Varint32(&n));
      *v = Zigzag32(n);
      return kOk;
    }
    return BeI32(v);
  }

  Status ReadI64(int64_t* v) {
    if (kCompact) {
      uint64_t n;
      TRY(Varint64(&n));
      *v = static_cast<int64_t>((n >> 1) ^ (0ull - (n & 1)));
      return kOk;
    }
    TRY(Need(8));
    uint64_t x = 0;
    for (int i = 0; i < 8; i++) x = (x << 8) | src_[pos_ + i];
    pos_ += 8;
    *v = static_cast<int64_t>(x);
    return kOk;
  }

  Status ReadDouble(double* v) {
    TRY(Need(8));
    uint64_t x = 0;
    if (kCompact) {
      for (int i = 7; i >= 0; i--) x = (x << 8) | src_[pos_ + i];
    } else {
      for (int i = 0; i < 8; i++) x = (x << 8) | src_[pos_ + i];
    }
    pos_ += 8;
    std::memcpy(v, &x, 8);
    return kOk;
  }

  Status StringLength(int64_t len) {
    if (len < 0) return kError;
    return Need(len);
  }

  Status ReadBinarySpan(size_t* start) {
    int32_t len;
    if (kCompact) {
      uint32_t n;
      TRY(Varint32(&n));
      len = static_cast<int32_t>(n);
    } else {
      TRY(BeI32(&len));
    }
    TRY(StringLength(len));
    *start = pos_;
    pos_ += static_cast<size_t>(len);
    return kOk;
  }

  Status ContainerSize(int64_t size, int64_t min_bytes) {
    if (size < 0) return kError;
    if (min_bytes > 0 && size * min_bytes > static_cast<int64_t>(end_ - pos_)) return kError;
    return kOk;
  }

  Status ListBegin(int32_t* elem_type, int64_t* size) {
    TRY(Enter());
    uint8_t b;
    TRY(U8(&b));
    if (kCompact) {
      TRY(CompactType(b & 15, elem_type));
      int64_t n = b >> 4;
      if (n == 15) {
        uint32_t v;
        TRY(Varint32(&v));
        n = static_cast<int32_t>(v);
        if (n < 0) return kError;
      }
      TRY(ContainerSize(n, 1));
      *size = n;
      return kOk;
    }
    if (!IsValueType(b)) return kError;
    *elem_type = b;
    int32_t n;
    TRY(BeI32(&n));
    TRY(ContainerSize(n, kFixedWidth[b] ? kFixedWidth[b] : 1));
    *size = n;
    return kOk;
  }

  Status MapBegin(int32_t* kt, int32_t* vt, int64_t* size) {
    TRY(Enter());
    if (kCompact) {
      uint32_t v;
      TRY(Varint32(&v));
      const int64_t n = static_cast<int32_t>(v);
      if (n == 0) {
        *kt = tStop;
        *vt = tStop;
        *size = 0;
        return kOk;
      }
      if (n < 0) return kError;
      uint8_t b;
      TRY(U8(&b));
      TRY(CompactType(b >> 4, kt));
      TRY(CompactType(b & 15, vt));
      TRY(ContainerSize(n, 2));
      *size = n;
      return kOk;
    }
    uint8_t k, w;
    TRY(U8(&k));
    if (!IsValueType(k)) return kError;
    TRY(U8(&w));
    if (!IsValueType(w)) return kError;
    int32_t n;
    TRY(BeI32(&n));
    TRY(ContainerSize(n, (kFixedWidth[k] ? kFixedWidth[k] : 1) + (kFixedWidth[w] ? kFixedWidth[w] : 1)));
    *kt = k;
    *vt = w;
    *size = n;
    return kOk;
  }

  Status FieldBegin(int32_t* type, int32_t* id) {
    uint8_t b;
    TRY(U8(&b));
    if (b == 0) {
      *type = tStop;
      return kOk;
    }
    if (kCompact) {
      const uint32_t nibble = b & 15;
      TRY(CompactType(nibble, type));
      const uint32_t delta = b >> 4;
      if (delta == 0) {
        uint32_t v;
        TRY(Varint32(&v));
        *id = static_cast<int16_t>(static_cast<uint16_t>(Zigzag32(v)));
      } else {
        *id = static_cast<int16_t>(static_cast<uint16_t>(last_field_id_ + static_cast<int32_t>(delta)));
      }
      last_field_id_ = *id;
      if (*type == tBool) pending_bool_ = nibble == 1 ? 1 : 0;
      return kOk;
    }
    if (!IsValueType(b)) return kError;
    *type = b;
    TRY(Need(2));
    *id = static_cast<int16_t>(static_cast<uint16_t>((src_[pos_] << 8) | src_[pos_ + 1]));
    pos_ += 2;
    return kOk;
  }

  Status Skip(int32_t type) {
    if (kCompact) return SkipCompact(type);
    const int w = type >= 0 && type <= 16 ? kFixedWidth[type] : 0;
    if (w) {
      TRY(Need(w));
      pos_ += w;
      return kOk;
    }
    switch (type) {
      case tString: {
        size_t start;
        return ReadBinarySpan(&start);
      }
      case tStruct: {
        TRY(Enter());
        for (;;) {
          uint8_t t;
          TRY(U8(&t));
          if (t == tStop) break;
          if (!IsValueType(t)) return kError;
          TRY(Need(2));
          pos_ += 2;
          TRY(Skip(t));
        }
        depth_--;
        return kOk;
      }
      case tList:
      case tSet: {
        int32_t et;
        int64_t n;
        TRY(ListBegin(&et, &n));
        const int ew = kFixedWidth[et];
        if (ew) {
          TRY(Need(n * ew));
          pos_ += n * ew;
        } else {
          for (int64_t i = 0; i < n; i++) TRY(Skip(et));
        }
        depth_--;
        return kOk;
      }
      case tMap: {
        int32_t kt, vt;
        int64_t n;
        TRY(MapBegin(&kt, &vt, &n));
        const int kw = kFixedWidth[kt], vw = kFixedWidth[vt];
        if (kw && vw) {
          TRY(Need(n * (kw + vw)));
          pos_ += n * (kw + vw);
        } else {
          for (int64_t i = 0; i < n; i++) {
            TRY(Skip(kt));
            TRY(Skip(vt));
          }
        }
        depth_--;
        return kOk;
      }
      default:
        return kError;
    }
  }

  Status SkipCompact(int32_t type) {
    switch (type) {
      case tBool:
        if (pending_bool_ >= 0) {
          pending_bool_ = -1;
          return kOk;
        } else {
          uint8_t b;
          return U8(&b);
        }
      case tByte: {
        uint8_t b;
        return U8(&b);
      }
      case tI16:
        return SkipVarint(3);
      case tI32:
        return SkipVarint(5);
      case tI64:
        return SkipVarint(10);
      case tDouble:
        TRY(Need(8));
        pos_ += 8;
        return kOk;
      case tUuid:
        TRY(Need(16));
        pos_ += 16;
        return kOk;
      case tString: {
        size_t start;
        return ReadBinarySpan(&start);
      }
      case tStruct: {
        TRY(Enter());
        for (;;) {
          uint8_t b;
          TRY(U8(&b));
          if (b == 0) break;
          int32_t t;
          TRY(CompactType(b & 15, &t));
          if ((b >> 4) == 0) TRY(SkipVarint(3));
          if (t == tBool) continue;
          TRY(SkipCompact(t));
        }
        depth_--;
        return kOk;
      }
      case tList:
      case tSet: {
        int32_t et;
        int64_t n;
        TRY(ListBegin(&et, &n));
        if (et == tBool || et == tByte) {
          TRY(Need(n));
          pos_ += n;
        } else if (et == tDouble || et == tUuid) {
          const int64_t w = et == tDouble ? 8 : 16;
          TRY(Need(n * w));
          pos_ += n * w;
        } else {
          for (int64_t i = 0; i < n; i++) TRY(SkipCompact(et));
        }
        depth_--;
        return kOk;
      }
      case tMap: {
        int32_t kt, vt;
        int64_t n;
        TRY(MapBegin(&kt, &vt, &n));
        for (int64_t i = 0; i < n; i++) {
          TRY(SkipElement(kt));
          TRY(SkipElement(vt));
        }
        depth_--;
        return kOk;
      }
      default:
        return kError;
    }
  }

  Status SkipElement(int32_t t) {
    if (t == tBool) {
      uint8_t b;
      return U8(&b);
    }
    return SkipCompact(t);
  }

  const Plan& plan_;
  const uint8_t* src_;
  size_t pos_;
  const size_t end_;
  int32_t depth_;
  const int32_t max_depth_;
  Out& o_;
  int32_t last_field_id_ = 0;
  int32_t pending_bool_ = -1;
};

// ---- JSON -> Thrift (requests) ----
//
// The JSON text of a request body (RFC 8259, strict) written straight into Thrift by the plan,
// as JSON.parse followed by @loch/gateway's compiled writer (json-to-thrift.ts) writes it. Only
// what that pair certainly accepts is written here; everything else is refused (kError) and the
// caller runs JSON.parse and the writer, which answer with the typed error and its path (or, for
// the rare spellings refused here that they accept, the same bytes): escaped object keys,
// duplicate keys (JSON.parse keeps the last), numbers past the double range, lone surrogate
// escapes, strings as doubles other than NaN/Infinity/-Infinity, escaped enum names and base64,
// maps keyed by structs or containers, malformed UTF-8, a leading BOM.

constexpr int32_t kMaxStructNesting = 64;  // json-to-thrift.ts MAX_DEPTH
constexpr int kMaxJsonNesting = 512;       // arrays/objects skipped by the scanner

constexpr uint8_t kToCompact[17] = {0, 0, 1, 3, 7, 0, 4, 0, 5, 0, 6, 8, 12, 11, 10, 9, 13};

inline bool IsWs(uint8_t c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

template <bool kCompact>
class Encoder {
 public:
  Encoder(const Plan& plan, const uint8_t* src, size_t end, Out& out) : plan_(plan), src_(src), end_(end), o_(out) {}

  // The body: one JSON object (whitespace around it) for the args struct at `node`.
  Status Body(int32_t node, size_t pos) {
    size_t p = pos;
    Ws(p);
    if (p >= end_ || src_[p] != '{') return kError;
    size_t after;
    TRY(Struct(plan_.nodes[node], p, &after));
    Ws(after);
    return after == end_ ? kOk : kError;
  }

 private:
  void Ws(size_t& p) const {
    while (p < end_ && IsWs(src_[p])) p++;
  }

  // A string token at src[p] == '"': its end (after the closing quote) and whether it has
  // escapes; checks escapes, control bytes and UTF-8.
  Status ScanString(size_t p, size_t* after, bool* escaped) const {
    size_t i = p + 1;
    bool esc = false;
    const __m128i quote = _mm_set1_epi8('"');
    const __m128i backslash = _mm_set1_epi8('\\');
    const __m128i space = _mm_set1_epi8(0x20);
    for (;;) {
      // Plain printable ASCII 16 bytes at a time (a signed compare puts bytes >= 0x80 below 0x20).
      while (end_ - i >= 16) {
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src_ + i));
        const __m128i hit =
            _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)), _mm_cmplt_epi8(v, space));
        const int mask = _mm_movemask_epi8(hit);
        if (mask != 0) {
          i += static_cast<size_t>(__builtin_ctz(static_cast<unsigned>(mask)));
          break;
        }
        i += 16;
      }
      if (i >= end_) return kError;
      const uint8_t c = src_[i];
      if (c == '"') {
        *after = i + 1;
        *escaped = esc;
        return kOk;
      }
      if (c < 0x20) return kError;
      if (c == '\\') {
        esc = true;
        if (i + 1 >= end_) return kError;
        const uint8_t e = src_[i + 1];
        if (e == 'u') {
          if (i + 6 > end_) return kError;
          for (int k = 2; k < 6; k++)
            if (HexValue(src_[i + k]) < 0) return kError;
          i += 6;
        } else if (e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' || e == 'n' || e == 'r' || e == 't') {
          i += 2;
        } else {
          return kError;
        }
        continue;
      }
      if (c < 0x80) {
        i++;
        continue;
      }
      const int k = Utf8SequenceLength(src_, i, end_);
      if (k == 0) return kError;
      i += k;
    }
  }

  static int HexValue(uint8_t c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }

  // A number token by RFC 8259's grammar at src[p]; its end.
  Status ScanNumber(size_t p, size_t* after) const {
    size_t i = p;
    if (i < end_ && src_[i] == '-') i++;
    if (i >= end_) return kError;
    if (src_[i] == '0') {
      i++;
    } else if (src_[i] >= '1' && src_[i] <= '9') {
      while (i < end_ && src_[i] >= '0' && src_[i] <= '9') i++;
    } else {
      return kError;
    }
    if (i < end_ && src_[i] == '.') {
      i++;
      const size_t d = i;
      while (i < end_ && src_[i] >= '0' && src_[i] <= '9') i++;
      if (i == d) return kError;
    }
    if (i < end_ && (src_[i] == 'e' || src_[i] == 'E')) {
      i++;
      if (i < end_ && (src_[i] == '+' || src_[i] == '-')) i++;
      const size_t d = i;
      while (i < end_ && src_[i] >= '0' && src_[i] <= '9') i++;
      if (i == d) return kError;
    }
    *after = i;
    return kOk;
  }

  // The double JSON.parse makes of the number at src[p] (both round correctly); numbers past
  // the double range (JSON.parse: Infinity or 0) are refused.
  Status Number(size_t p, double* v, size_t* after) const {
    TRY(ScanNumber(p, after));
    const char* b = reinterpret_cast<const char*>(src_ + p);
    const char* e = reinterpret_cast<const char*>(src_ + *after);
    auto r = std::from_chars(b, e, *v);
    if (r.ec != std::errc() || r.ptr != e) return kError;
    return kOk;
  }

  bool Literal(size_t p, const char* lit, size_t n) const {
    return end_ - p >= n && std::memcmp(src_ + p, lit, n) == 0;
  }

  // Steps over any JSON value at src[p] (checked), without recursion.
  Status SkipValue(size_t p, size_t* after) const {
    uint8_t stack[kMaxJsonNesting];
    int depth = 0;
    size_t i = p;
    for (;;) {
      Ws(i);
      if (i >= end_) return kError;
      // A value.
      const uint8_t c = src_[i];
      if (c == '"') {
        bool esc;
        TRY(ScanString(i, &i, &esc));
      } else if (c == '{' || c == '[') {
        if (depth == kMaxJsonNesting) return kError;
        stack[depth++] = c;
        i++;
        Ws(i);
        if (i < end_ && src_[i] == (c == '{' ? '}' : ']')) {
          depth--;
          i++;
        } else if (c == '{') {
          if (i >= end_ || src_[i] != '"') return kError;
          bool esc;
          TRY(ScanString(i, &i, &esc));
          Ws(i);
          if (i >= end_ || src_[i] != ':') return kError;
          i++;
          continue;
        } else {
          continue;
        }
      } else if (c == 't') {
        if (!Literal(i, "true", 4)) return kError;
        i += 4;
      } else if (c == 'f') {
        if (!Literal(i, "false", 5)) return kError;
        i += 5;
      } else if (c == 'n') {
        if (!Literal(i, "null", 4)) return kError;
        i += 4;
      } else {
        TRY(ScanNumber(i, &i));
      }
      // After a value: close containers, or the next element.
      for (;;) {
        if (depth == 0) {
          *after = i;
          return kOk;
        }
        Ws(i);
        if (i >= end_) return kError;
        const uint8_t open = stack[depth - 1];
        if (src_[i] == ',') {
          i++;
          if (open == '{') {
            Ws(i);
            if (i >= end_ || src_[i] != '"') return kError;
            bool esc;
            TRY(ScanString(i, &i, &esc));
            Ws(i);
            if (i >= end_ || src_[i] != ':') return kError;
            i++;
          }
          break;
        }
        if (src_[i] != (open == '{' ? '}' : ']')) return kError;
        i++;
        depth--;
      }
    }
  }

  // ---- Thrift output ----

  Status Byte(uint8_t b) { return PutByte(o_, b); }

  Status Varint32(uint32_t v) {
    if (!o_.Room(5)) return kNeedRoom;
    while (v >= 0x80) {
      o_.buf[o_.pos++] = static_cast<uint8_t>((v & 0x7f) | 0x80);
      v >>= 7;
    }
    o_.buf[o_.pos++] = static_cast<uint8_t>(v);
    return kOk;
  }

  Status Varint64(uint64_t v) {
    if (!o_.Room(10)) return kNeedRoom;
    while (v >= 0x80) {
      o_.buf[o_.pos++] = static_cast<uint8_t>((v & 0x7f) | 0x80);
      v >>= 7;
    }
    o_.buf[o_.pos++] = static_cast<uint8_t>(v);
    return kOk;
  }

  Status Be(uint64_t v, int bytes) {
    if (!o_.Room(bytes)) return kNeedRoom;
    for (int k = bytes - 1; k >= 0; k--) o_.buf[o_.pos++] = static_cast<uint8_t>(v >> (8 * k));
    return kOk;
  }

  static uint32_t Zigzag32(int32_t v) { return (static_cast<uint32_t>(v) << 1) ^ static_cast<uint32_t>(v >> 31); }

  Status I16(int32_t v) { return kCompact ? Varint32(Zigzag32(v)) : Be(static_cast<uint16_t>(v), 2); }
  Status I32(int32_t v) { return kCompact ? Varint32(Zigzag32(v)) : Be(static_cast<uint32_t>(v), 4); }
  Status I64(int64_t v) {
    if (kCompact) return Varint64((static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63));
    return Be(static_cast<uint64_t>(v), 8);
  }
  Status Double(double d) {
    uint64_t x;
    std::memcpy(&x, &d, 8);
    if (!kCompact) return Be(x, 8);
    if (!o_.Room(8)) return kNeedRoom;
    for (int k = 0; k < 8; k++) o_.buf[o_.pos++] = static_cast<uint8_t>(x >> (8 * k));
    return kOk;
  }
  Status Bool(bool v) { return Byte(kCompact ? (v ? 1 : 2) : (v ? 1 : 0)); }
  Status Length(uint32_t n) { return kCompact ? Varint32(n) : Be(n, 4); }

  Status FieldHeader(int32_t ttype, int32_t id, int bool_value = -1) {
    if (!kCompact) {
      TRY(Byte(static_cast<uint8_t>(ttype)));
      return Be(static_cast<uint16_t>(id), 2);
    }
    const uint8_t nibble = ttype == tBool ? (bool_value == 1 ? 1 : 2) : kToCompact[ttype];
    const int32_t delta = id - last_field_id_;
    if (delta > 0 && delta <= 15) {
      TRY(Byte(static_cast<uint8_t>((delta << 4) | nibble)));
    } else {
      TRY(Byte(nibble));
      TRY(Varint32(Zigzag32(id)));
    }
    last_field_id_ = id;
    return kOk;
  }

  Status ListHeader(int32_t elem, uint32_t n) {
    if (!kCompact) {
      TRY(Byte(static_cast<uint8_t>(elem)));
      return Be(n, 4);
    }
    const uint8_t t = kToCompact[elem];
    if (n < 15) return Byte(static_cast<uint8_t>((n << 4) | t));
    TRY(Byte(static_cast<uint8_t>(0xf0 | t)));
    return Varint32(n);
  }

  Status MapHeader(int32_t kt, int32_t vt, uint32_t n) {
    if (!kCompact) {
      TRY(Byte(static_cast<uint8_t>(kt)));
      TRY(Byte(static_cast<uint8_t>(vt)));
      return Be(n, 4);
    }
    if (n == 0) return Byte(0);
    TRY(Varint32(n));
    return Byte(static_cast<uint8_t>((kToCompact[kt] << 4) | kToCompact[vt]));
  }

  // The bytes of a JSON string's content src[s, e) (escapes decoded) as a Thrift string.
  Status StringBytes(size_t s, size_t e, bool escaped) {
    if (!escaped) {
      TRY(Length(static_cast<uint32_t>(e - s)));
      return PutRaw(o_, src_ + s, e - s);
    }
    scratch_.clear();
    size_t i = s;
    while (i < e) {
      const uint8_t c = src_[i];
      if (c != '\\') {
        scratch_.push_back(c);
        i++;
        continue;
      }
      const uint8_t x = src_[i + 1];
      i += 2;
      switch (x) {
        case 'b': scratch_.push_back(8); break;
        case 'f': scratch_.push_back(12); break;
        case 'n': scratch_.push_back(10); break;
        case 'r': scratch_.push_back(13); break;
        case 't': scratch_.push_back(9); break;
        case 'u': {
          uint32_t cp = Hex4(i);
          i += 4;
          if (cp >= 0xdc00 && cp <= 0xdfff) return kError;  // a lone low surrogate
          if (cp >= 0xd800 && cp <= 0xdbff) {
            if (i + 6 > e || src_[i] != '\\' || src_[i + 1] != 'u') return kError;
            const uint32_t lo = Hex4(i + 2);
            if (lo < 0xdc00 || lo > 0xdfff) return kError;
            i += 6;
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
          }
          uint8_t tmp[4];
          size_t q = 0;
          if (cp < 0x80) {
            tmp[q++] = static_cast<uint8_t>(cp);
          } else {
            PutCodePoint(tmp, q, cp);
          }
          scratch_.insert(scratch_.end(), tmp, tmp + q);
          break;
        }
        default: scratch_.push_back(x); break;  // " \ /
      }
    }
    TRY(Length(static_cast<uint32_t>(scratch_.size())));
    return PutRaw(o_, scratch_.data(), scratch_.size());
  }

  uint32_t Hex4(size_t i) const {
    uint32_t v = 0;
    for (int k = 0; k < 4; k++) v = (v << 4) | static_cast<uint32_t>(HexValue(src_[i + k]));
    return v;
  }

  // An integer of [min, max] from a JSON number or a decimal string (json-to-thrift.ts intOf).
  Status IntValue(size_t p, int64_t min, int64_t max, int64_t* v, size_t* after) {
    if (src_[p] == '"') {
      bool esc;
      TRY(ScanString(p, after, &esc));
      if (esc) return kError;
      return DecimalText(p + 1, *after - 1, min, max, v);
    }
    double d;
    TRY(Number(p, &d, after));
    if (!(d >= static_cast<double>(min) && d <= static_cast<double>(max)) || d != static_cast<double>(static_cast<int64_t>(d)))
      return kError;
    *v = static_cast<int64_t>(d);
    return kOk;
  }

  // `-?(0|[1-9][0-9]*)` within [min, max].
  Status DecimalText(size_t s, size_t e, int64_t min, int64_t max, int64_t* v) const {
    size_t i = s;
    const bool neg = i < e && src_[i] == '-';
    if (neg) i++;
    if (i >= e || e - i > 19) return kError;
    if (src_[i] == '0' && e - i > 1) return kError;
    unsigned __int128 m = 0;
    for (; i < e; i++) {
      const uint8_t c = src_[i];
      if (c < '0' || c > '9') return kError;
      m = m * 10 + (c - '0');
    }
    const __int128 x = neg ? -static_cast<__int128>(m) : static_cast<__int128>(m);
    if (x < min || x > max) return kError;
    *v = static_cast<int64_t>(x);
    return kOk;
  }

  Status Value(int32_t node_index, size_t p, size_t* after) {
    const Node& node = plan_.nodes[node_index];
    if (p >= end_) return kError;
    const uint8_t c = src_[p];
    switch (node.kind) {
      case kBool:
        if (Literal(p, "true", 4)) {
          *after = p + 4;
          return Bool(true);
        }
        if (Literal(p, "false", 5)) {
          *after = p + 5;
          return Bool(false);
        }
        return kError;
      case kByte: {
        int64_t v;
        TRY(IntValue(p, -128, 127, &v, after));
        return Byte(static_cast<uint8_t>(v));
      }
      case kI16: {
        int64_t v;
        TRY(IntValue(p, -32768, 32767, &v, after));
        return I16(static_cast<int32_t>(v));
      }
      case kI32: {
        int64_t v;
        TRY(IntValue(p, INT32_MIN, INT32_MAX, &v, after));
        return I32(static_cast<int32_t>(v));
      }
      case kI64Str:
      case kI64Num: {
        int64_t v;
        if (c == '"') {
          bool esc;
          TRY(ScanString(p, after, &esc));
          if (esc) return kError;
          TRY(DecimalText(p + 1, *after - 1, INT64_MIN, INT64_MAX, &v));
        } else {
          double d;
          TRY(Number(p, &d, after));
          // Number.isSafeInteger: JSON.parse already rounded anything larger.
          if (!(d >= -9007199254740991.0 && d <= 9007199254740991.0) || d != static_cast<double>(static_cast<int64_t>(d)))
            return kError;
          v = static_cast<int64_t>(d);
        }
        return I64(v);
      }
      case kDouble: {
        if (c == '"') {
          bool esc;
          TRY(ScanString(p, after, &esc));
          const size_t n = *after - p;
          double d;
          if (n == 5 && std::memcmp(src_ + p, "\"NaN\"", 5) == 0) {
            d = std::numeric_limits<double>::quiet_NaN();
          } else if (n == 10 && std::memcmp(src_ + p, "\"Infinity\"", 10) == 0) {
            d = std::numeric_limits<double>::infinity();
          } else if (n == 11 && std::memcmp(src_ + p, "\"-Infinity\"", 11) == 0) {
            d = -std::numeric_limits<double>::infinity();
          } else {
            return kError;  // Number(text) has its own grammar: left to JavaScript
          }
          return Double(d);
        }
        double d;
        TRY(Number(p, &d, after));
        return Double(d);
      }
      case kString: {
        if (c != '"') return kError;
        bool esc;
        TRY(ScanString(p, after, &esc));
        return StringBytes(p + 1, *after - 1, esc);
      }
      case kBinary: {
        if (c != '"') return kError;
        bool esc;
        TRY(ScanString(p, after, &esc));
        if (esc) return kError;
        return Base64(p + 1, *after - 1);
      }
      case kEnum: {
        if (c == '"') {
          bool esc;
          TRY(ScanString(p, after, &esc));
          if (esc) return kError;
          const size_t n = *after - p;
          for (const EnumName& e : node.names) {
            if (e.len == n && std::memcmp(plan_.text.data() + e.off, src_ + p, n) == 0) return I32(e.value);
          }
          return kError;
        }
        double d;
        TRY(Number(p, &d, after));
        for (const EnumName& e : node.names)
          if (static_cast<double>(e.value) == d) return I32(e.value);
        return kError;
      }
      case kList:
      case kSet:
        return List(node, p, after);
      case kMap:
        return Map(node, p, after);
      case kStruct:
        if (c != '{') return kError;
        return Struct(node, p, after);
      default:
        return kError;
    }
  }

  // Standard or URL-safe base64, padding optional (json-to-thrift.ts BASE64 and Buffer.from).
  Status Base64(size_t s, size_t e) {
    const size_t n = e - s;
    size_t data = n;
    if (n % 4 == 0 && n >= 4) {
      if (src_[e - 1] == '=') data--;
      if (src_[e - 2] == '=' && data == n - 1) data--;
    }
    // Padding only as the regex allows it: 2 chars + "==", or 3 chars + "=".
    const size_t rem = data % 4;
    if (rem == 1) return kError;
    if (data != n && (n % 4 != 0 || (n - data == 2 && rem != 2) || (n - data == 1 && rem != 3))) return kError;
    uint32_t acc = 0;
    int bits = 0;
    const size_t out_len = data / 4 * 3 + (rem == 2 ? 1 : rem == 3 ? 2 : 0);
    TRY(Length(static_cast<uint32_t>(out_len)));
    if (!o_.Room(out_len)) return kNeedRoom;
    for (size_t i = s; i < s + data; i++) {
      const int v = Base64Value(src_[i]);
      if (v < 0) return kError;
      acc = (acc << 6) | static_cast<uint32_t>(v);
      bits += 6;
      if (bits >= 8) {
        bits -= 8;
        o_.buf[o_.pos++] = static_cast<uint8_t>(acc >> bits);
      }
    }
    return kOk;
  }

  static int Base64Value(uint8_t c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
  }

  // Bytes kept for a container header written after its elements (the count is known then):
  // the binary headers' fixed sizes, and compact's usual ones (a list of under 15 elements, a
  // map of under 128 entries); PlaceHeader moves the elements when the header is longer.
  static constexpr size_t kListRoom = kCompact ? 1 : 5;
  static constexpr size_t kMapRoom = kCompact ? 2 : 6;
  static constexpr size_t kHeaderMax = 6;

  // Writes a container header `h` at `at`, where `room` bytes were kept before the elements
  // (from at + room to o_.pos), moving the elements to follow it.
  Status PlaceHeader(size_t at, size_t room, const uint8_t* h, size_t hn) {
    if (hn > room && !o_.Room(hn - room)) return kNeedRoom;
    uint8_t* b = o_.buf;
    const size_t body = o_.pos - (at + room);
    if (hn != room) std::memmove(b + at + hn, b + at + room, body);
    std::memcpy(b + at, h, hn);
    o_.pos = at + hn + body;
    return kOk;
  }

  static size_t VarintTo(uint8_t* h, uint32_t v) {
    size_t n = 0;
    while (v >= 0x80) {
      h[n++] = static_cast<uint8_t>((v & 0x7f) | 0x80);
      v >>= 7;
    }
    h[n++] = static_cast<uint8_t>(v);
    return n;
  }

  static constexpr uint32_t kSetScanMax = 32;

  // Whether two of the (offset, length) spans from `base` on hold the same bytes: sorted by
  // length then bytes, neighbours compared (n log n).
  bool HasDuplicateSpan(size_t base) const {
    std::vector<std::pair<size_t, size_t>> spans;
    spans.reserve((spans_.size() - base) / 2);
    for (size_t k = base; k < spans_.size(); k += 2) spans.emplace_back(spans_[k], spans_[k + 1]);
    const uint8_t* buf = o_.buf;
    const auto less = [buf](const std::pair<size_t, size_t>& a, const std::pair<size_t, size_t>& b) {
      if (a.second != b.second) return a.second < b.second;
      return std::memcmp(buf + a.first, buf + b.first, a.second) < 0;
    };
    std::sort(spans.begin(), spans.end(), less);
    for (size_t k = 1; k < spans.size(); k++)
      if (spans[k].second == spans[k - 1].second &&
          std::memcmp(buf + spans[k].first, buf + spans[k - 1].first, spans[k].second) == 0)
        return true;
    return false;
  }

  Status List(const Node& node, size_t p, size_t* after) {
    if (src_[p] != '[') return kError;
    if (!o_.Room(kListRoom)) return kNeedRoom;
    const size_t at = o_.pos;
    o_.pos += kListRoom;
    const bool is_set = node.kind == kSet;
    const size_t spans_base = spans_.size();
    uint32_t n = 0;
    size_t i = p + 1;
    Ws(i);
    if (i < end_ && src_[i] == ']') {
      i++;
    } else {
      for (;;) {
        Ws(i);
        const size_t el = o_.pos;
        TRY(Value(node.a, i, &i));
        if (++n > 0x7fffffff) return kError;
        if (is_set) {
          // A set holds each element once, by its encoding (a duplicate is JavaScript's 400):
          // compared with every earlier one while the set is small, sorted once at its end
          // past kSetScanMax (a 100,000-element set compared pairwise took 18 s).
          const size_t len = o_.pos - el;
          if (n <= kSetScanMax) {
            for (size_t k = spans_base; k < spans_.size(); k += 2)
              if (spans_[k + 1] == len && std::memcmp(o_.buf + spans_[k], o_.buf + el, len) == 0) return kError;
          }
          spans_.push_back(el);
          spans_.push_back(len);
        }
        Ws(i);
        if (i >= end_) return kError;
        if (src_[i] == ']') {
          i++;
          break;
        }
        if (src_[i] != ',') return kError;
        i++;
      }
    }
    if (is_set && n > kSetScanMax && HasDuplicateSpan(spans_base)) return kError;
    spans_.resize(spans_base);
    *after = i;
    uint8_t h[kHeaderMax];
    size_t hn = 0;
    if (!kCompact) {
      h[0] = static_cast<uint8_t>(node.ta);
      h[1] = static_cast<uint8_t>(n >> 24);
      h[2] = static_cast<uint8_t>(n >> 16);
      h[3] = static_cast<uint8_t>(n >> 8);
      h[4] = static_cast<uint8_t>(n);
      hn = 5;
    } else if (n < 15) {
      h[0] = static_cast<uint8_t>((n << 4) | kToCompact[node.ta]);
      hn = 1;
    } else {
      h[0] = static_cast<uint8_t>(0xf0 | kToCompact[node.ta]);
      hn = 1 + VarintTo(h + 1, n);
    }
    return PlaceHeader(at, kListRoom, h, hn);
  }

  // An object's members: key token spans and value starts, and the object's end. Refuses
  // escaped and duplicate keys.
  struct Member {
    size_t key;  // the key token, quotes included
    size_t key_len;
    size_t value;
  };

  Status Members(size_t p, std::vector<Member>* members, size_t* after) {
    size_t i = p + 1;
    Ws(i);
    if (i < end_ && src_[i] == '}') {
      *after = i + 1;
      return kOk;
    }
    for (;;) {
      Ws(i);
      if (i >= end_ || src_[i] != '"') return kError;
      size_t key_end;
      bool esc;
      TRY(ScanString(i, &key_end, &esc));
      if (esc) return kError;
      const Member m{i, key_end - i, 0};
      i = key_end;
      Ws(i);
      if (i >= end_ || src_[i] != ':') return kError;
      i++;
      Ws(i);
      members->push_back({m.key, m.key_len, i});
      TRY(SkipValue(i, &i));
      Ws(i);
      if (i >= end_) return kError;
      if (src_[i] == '}') {
        *after = i + 1;
        break;
      }
      if (src_[i] != ',') return kError;
      i++;
    }
    return kOk;
  }

  bool SameKey(const Member& a, const Member& b) const {
    return a.key_len == b.key_len && std::memcmp(src_ + a.key, src_ + b.key, a.key_len) == 0;
  }

  // A key that JavaScript stores as an array index (canonical decimal below 2^32 - 1): such keys
  // come first in Object.keys, in ascending order.
  bool ArrayIndex(const Member& m, uint64_t* index) const {
    const size_t n = m.key_len - 2;
    const uint8_t* k = src_ + m.key + 1;
    if (n == 0 || n > 10 || (k[0] == '0' && n > 1)) return false;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
      if (k[i] < '0' || k[i] > '9') return false;
      v = v * 10 + (k[i] - '0');
    }
    if (v >= 0xffffffffULL) return false;
    *index = v;
    return true;
  }

  // A map whose keys need Object.keys' reordering (array indices), from its members.
  Status MapOrdered(const Node& node, size_t p, size_t* after) {
    if (src_[p] != '{') return kError;
    std::vector<Member> members;
    TRY(Members(p, &members, after));
    const size_t n = members.size();
    if (n > 16) {
      std::vector<std::pair<std::string_view, int>> keys;
      keys.reserve(n);
      for (const Member& m : members)
        keys.emplace_back(std::string_view(reinterpret_cast<const char*>(src_ + m.key), m.key_len), 0);
      std::sort(keys.begin(), keys.end());
      for (size_t i = 1; i < n; i++)
        if (keys[i].first == keys[i - 1].first) return kError;
    } else {
      for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < i; j++)
          if (SameKey(members[i], members[j])) return kError;
    }
    // Object.keys order: array indices ascending, then the other keys as written.
    std::vector<std::pair<uint64_t, size_t>> indices;
    std::vector<size_t> order;
    order.reserve(n);
    for (size_t i = 0; i < n; i++) {
      uint64_t index;
      if (ArrayIndex(members[i], &index)) indices.emplace_back(index, i);
    }
    if (!indices.empty()) {
      std::sort(indices.begin(), indices.end());
      for (const auto& x : indices) order.push_back(x.second);
      for (size_t i = 0; i < n; i++) {
        uint64_t index;
        if (!ArrayIndex(members[i], &index)) order.push_back(i);
      }
    } else {
      for (size_t i = 0; i < n; i++) order.push_back(i);
    }
    if (n > 0x7fffffff) return kError;
    TRY(MapHeader(node.ta, node.tb, static_cast<uint32_t>(n)));
    for (size_t i : order) {
      TRY(Key(node.a, members[i]));
      size_t end;
      TRY(Value(node.b, members[i].value, &end));
    }
    return kOk;
  }

  // A map in one pass, its entries in the order written; one with array-index keys (which
  // Object.keys puts first) is written again by MapOrdered.
  Status Map(const Node& node, size_t p, size_t* after) {
    if (src_[p] != '{') return kError;
    if (!o_.Room(kMapRoom)) return kNeedRoom;
    const size_t at = o_.pos;
    o_.pos += kMapRoom;
    const size_t keys_base = spans_.size();
    uint32_t n = 0;
    size_t i = p + 1;
    Ws(i);
    if (i < end_ && src_[i] == '}') {
      i++;
    } else {
      for (;;) {
        Ws(i);
        if (i >= end_ || src_[i] != '"') return kError;
        size_t key_end;
        bool esc;
        TRY(ScanString(i, &key_end, &esc));
        if (esc) return kError;
        const Member m{i, key_end - i, 0};
        uint64_t index;
        if (ArrayIndex(m, &index)) {
          spans_.resize(keys_base);
          o_.pos = at;
          TRY(Restart());
          return MapOrdered(node, p, after);
        }
        spans_.push_back(m.key);
        spans_.push_back(m.key_len);
        TRY(Key(node.a, m));
        i = key_end;
        Ws(i);
        if (i >= end_ || src_[i] != ':') return kError;
        i++;
        Ws(i);
        TRY(Value(node.b, i, &i));
        if (++n > 0x7fffffff) return kError;
        Ws(i);
        if (i >= end_) return kError;
        if (src_[i] == '}') {
          i++;
          break;
        }
        if (src_[i] != ',') return kError;
        i++;
      }
    }
    // Duplicate keys (JSON.parse keeps the last): refused.
    if (n > 1) {
      const size_t* k0 = spans_.data() + keys_base;
      if (n <= 32) {
        for (uint32_t a = 1; a < n; a++)
          for (uint32_t b = 0; b < a; b++)
            if (k0[2 * a + 1] == k0[2 * b + 1] && std::memcmp(src_ + k0[2 * a], src_ + k0[2 * b], k0[2 * a + 1]) == 0)
              return kError;
      } else {
        std::vector<std::string_view> keys;
        keys.reserve(n);
        for (uint32_t a = 0; a < n; a++)
          keys.emplace_back(reinterpret_cast<const char*>(src_ + k0[2 * a]), k0[2 * a + 1]);
        std::sort(keys.begin(), keys.end());
        for (uint32_t a = 1; a < n; a++)
          if (keys[a] == keys[a - 1]) return kError;
      }
    }
    spans_.resize(keys_base);
    *after = i;
    uint8_t h[kHeaderMax];
    size_t hn = 0;
    if (!kCompact) {
      h[0] = static_cast<uint8_t>(node.ta);
      h[1] = static_cast<uint8_t>(node.tb);
      h[2] = static_cast<uint8_t>(n >> 24);
      h[3] = static_cast<uint8_t>(n >> 16);
      h[4] = static_cast<uint8_t>(n >> 8);
      h[5] = static_cast<uint8_t>(n);
      hn = 6;
    } else if (n == 0) {
      h[0] = 0;
      hn = 1;
    } else {
      hn = VarintTo(h, n);
      h[hn++] = static_cast<uint8_t>((kToCompact[node.ta] << 4) | kToCompact[node.tb]);
    }
    return PlaceHeader(at, kMapRoom, h, hn);
  }

  // A map key (json-to-thrift.ts mapKeyReader): the key text as the key type's value.
  Status Key(int32_t node_index, const Member& m) {
    const Node& node = plan_.nodes[node_index];
    const size_t s = m.key + 1, e = m.key + m.key_len - 1;
    size_t after;
    switch (node.kind) {
      case kString:
      case kBinary:
      case kEnum:
      case kI64Str:
      case kI64Num:
        if (node.kind == kEnum) {
          for (const EnumName& x : node.names)
            if (x.len == m.key_len && std::memcmp(plan_.text.data() + x.off, src_ + m.key, m.key_len) == 0)
              return I32(x.value);
          return kError;
        }
        return Value(node_index, m.key, &after);
      case kBool:
        if (e - s == 4 && std::memcmp(src_ + s, "true", 4) == 0) return Bool(true);
        if (e - s == 5 && std::memcmp(src_ + s, "false", 5) == 0) return Bool(false);
        return kError;
      case kByte:
      case kI16:
      case kI32: {
        int64_t v;
        const int64_t min = node.kind == kByte ? -128 : node.kind == kI16 ? -32768 : INT32_MIN;
        const int64_t max = node.kind == kByte ? 127 : node.kind == kI16 ? 32767 : INT32_MAX;
        TRY(DecimalText(s, e, min, max, &v));
        if (node.kind == kByte) return Byte(static_cast<uint8_t>(v));
        return node.kind == kI16 ? I16(static_cast<int32_t>(v)) : I32(static_cast<int32_t>(v));
      }
      case kDouble: {
        if (e - s == 3 && std::memcmp(src_ + s, "NaN", 3) == 0) return Double(std::numeric_limits<double>::quiet_NaN());
        if (e - s == 8 && std::memcmp(src_ + s, "Infinity", 8) == 0) return Double(std::numeric_limits<double>::infinity());
        if (e - s == 9 && std::memcmp(src_ + s, "-Infinity", 9) == 0)
          return Double(-std::numeric_limits<double>::infinity());
        // Keys in JSON's number grammar only (Number(text) has its own; left to JavaScript).
        size_t end;
        if (s == e || ScanNumber(s, &end) != kOk || end != e) return kError;
        double d;
        TRY(Number(s, &d, &end));
        return Double(d);
      }
      default:
        return kError;  // structs and containers as keys: JSON.parse of the key, in JavaScript
    }
  }

  // A field absent from the object (or null): its default, or nothing (a required one refused).
  Status Absent(const Node& node, const Field& f, int* present) {
    if (f.default_len < 0) return f.required ? kError : kOk;
    if (node.is_union) return kOk;  // a union's default never selects its member
    const uint8_t* d = plan_.text.data() + f.default_off;
    if (kCompact && f.ttype == tBool) {
      TRY(FieldHeader(f.ttype, f.id, d[0] == 1 ? 1 : 0));
    } else {
      TRY(FieldHeader(f.ttype, f.id));
      TRY(PutRaw(o_, d, static_cast<size_t>(f.default_len)));
    }
    (*present)++;
    return kOk;
  }

  // A present field's header and value (compact bools in the header).
  Status Present(const Field& f, size_t v, size_t* after) {
    if (kCompact && f.ttype == tBool) {
      if (Literal(v, "true", 4)) {
        *after = v + 4;
        return FieldHeader(f.ttype, f.id, 1);
      }
      if (Literal(v, "false", 5)) {
        *after = v + 5;
        return FieldHeader(f.ttype, f.id, 0);
      }
      return kError;
    }
    TRY(FieldHeader(f.ttype, f.id));
    return Value(f.node, v, after);
  }

  // A struct in one pass while its keys come in IDL order (as clients built from the IDL send
  // them); at the first key out of order it is written again by StructTwoPass.
  Status Struct(const Node& node, size_t p, size_t* after) {
    if (++struct_depth_ > kMaxStructNesting) return kError;
    const size_t out_start = o_.pos;
    const int32_t saved_last = last_field_id_;
    last_field_id_ = 0;
    const size_t nf = node.fields.size();
    size_t next = 0;  // fields before it are written or absent
    int present = 0;
    size_t i = p + 1;
    Ws(i);
    if (i < end_ && src_[i] == '}') {
      i++;
    } else {
      for (;;) {
        Ws(i);
        if (i >= end_ || src_[i] != '"') return kError;
        size_t key_end;
        bool esc;
        TRY(ScanString(i, &key_end, &esc));
        if (esc) return kError;
        const size_t key_len = key_end - i;
        size_t k = next;
        for (; k < nf; k++) {
          const Field& f = node.fields[k];
          if (f.prefix_len - 1 == key_len && std::memcmp(plan_.text.data() + f.prefix_off, src_ + i, key_len) == 0)
            break;
        }
        bool reorder = k == nf;  // out of IDL order, repeated, or unknown
        for (; next < k && !reorder; next++) {
          // A required field skipped here may still come later, out of order.
          const Status st = Absent(node, node.fields[next], &present);
          if (st == kError) reorder = true;
          else if (st != kOk) return st;
        }
        if (reorder) {
          // The two-pass writer decides.
          o_.pos = out_start;
          last_field_id_ = saved_last;
          struct_depth_--;
          TRY(Restart());
          return StructTwoPass(node, p, after);
        }
        next = k + 1;
        i = key_end;
        Ws(i);
        if (i >= end_ || src_[i] != ':') return kError;
        i++;
        Ws(i);
        if (Literal(i, "null", 4)) {
          TRY(Absent(node, node.fields[k], &present));
          i += 4;
        } else {
          present++;
          TRY(Present(node.fields[k], i, &i));
        }
        Ws(i);
        if (i >= end_) return kError;
        if (src_[i] == '}') {
          i++;
          break;
        }
        if (src_[i] != ',') return kError;
        i++;
      }
    }
    for (; next < nf; next++) TRY(Absent(node, node.fields[next], &present));
    TRY(Byte(0));
    last_field_id_ = saved_last;
    struct_depth_--;
    if (node.is_union && present != 1) return kError;
    *after = i;
    return kOk;
  }

  // A struct whose keys are not in IDL order: its members first, then the fields in IDL order.
  Status StructTwoPass(const Node& node, size_t p, size_t* after) {
    if (++struct_depth_ > kMaxStructNesting) return kError;
    std::vector<Member> members;
    TRY(Members(p, &members, after));
    const size_t nf = node.fields.size();
    // Value start per field (0: absent; src[0] is never a member's value).
    std::vector<size_t> at(nf, 0);
    for (const Member& m : members) {
      size_t k = 0;
      for (; k < nf; k++) {
        const Field& f = node.fields[k];
        if (f.prefix_len - 1 == m.key_len && std::memcmp(plan_.text.data() + f.prefix_off, src_ + m.key, m.key_len) == 0)
          break;
      }
      if (k == nf || at[k] != 0) return kError;  // unknown or duplicate key
      at[k] = m.value;
    }
    const int32_t saved_last = last_field_id_;
    last_field_id_ = 0;
    int present = 0;
    for (size_t k = 0; k < nf; k++) {
      const Field& f = node.fields[k];
      const size_t v = at[k];
      if (v == 0 || Literal(v, "null", 4)) {
        if (f.default_len < 0) {
          if (f.required) return kError;
          continue;
        }
        if (node.is_union) continue;  // a union's default never selects its member
        const uint8_t* d = plan_.text.data() + f.default_off;
        if (kCompact && f.ttype == tBool) {
          TRY(FieldHeader(f.ttype, f.id, d[0] == 1 ? 1 : 0));
        } else {
          TRY(FieldHeader(f.ttype, f.id));
          TRY(PutRaw(o_, d, static_cast<size_t>(f.default_len)));
        }
        present++;
        continue;
      }
      present++;
      size_t end;
      if (kCompact && f.ttype == tBool) {
        if (Literal(v, "true", 4)) {
          TRY(FieldHeader(f.ttype, f.id, 1));
        } else if (Literal(v, "false", 5)) {
          TRY(FieldHeader(f.ttype, f.id, 0));
        } else {
          return kError;
        }
        continue;
      }
      TRY(FieldHeader(f.ttype, f.id));
      TRY(Value(f.node, v, &end));
    }
    TRY(Byte(0));
    last_field_id_ = saved_last;
    struct_depth_--;
    if (node.is_union && present != 1) return kError;
    return kOk;
  }

  const Plan& plan_;
  const uint8_t* src_;
  const size_t end_;
  Out& o_;
  int32_t last_field_id_ = 0;
  int32_t struct_depth_ = 0;
  // Restarts (a struct written again in two passes, a map again in key order) throw away the
  // work done inside them, and nested ones multiply: a hostile body nested 30 deep with every
  // level out of order would cost 2^30 passes. With at most kMaxRestarts per body the work stays
  // within (kMaxRestarts + 1) times one pass; past it the JavaScript path (linear) decides.
  static constexpr int32_t kMaxRestarts = 8;
  int32_t restarts_ = 0;
  Status Restart() { return ++restarts_ > kMaxRestarts ? kError : kOk; }
  std::vector<uint8_t> scratch_;
  // Set element spans and map key spans (offset, length pairs), a stack shared by nesting.
  std::vector<size_t> spans_;
};

#undef TRY

// ---- JS glue ----

void FinalizePlan(napi_env, void* data, void*) { delete static_cast<Plan*>(data); }

// Tags plan Externals, so that another External (a head-scan binding, a key) is refused.
constexpr napi_type_tag kPlanTag = {0x6c6f6368676a736fULL, 0x6e706c616e763031ULL};

bool TypedArrayOf(napi_env env, napi_value v, napi_typedarray_type want, void** data, size_t* len) {
  napi_typedarray_type t;
  napi_value ab;
  size_t off;
  if (napi_get_typedarray_info(env, v, &t, len, data, &ab, &off) != napi_ok || t != want) return false;
  return true;
}

napi_value CompileJs(napi_env env, napi_callback_info cbinfo) {
  size_t argc = 2;
  napi_value argv[2];
  if (napi_get_cb_info(env, cbinfo, &argc, argv, nullptr, nullptr) != napi_ok || argc < 2) {
    napi_throw_type_error(env, nullptr, "gatewayJson.compile(plan: Int32Array, text: Uint8Array)");
    return nullptr;
  }
  void* words;
  size_t n;
  void* text;
  size_t text_len;
  if (!TypedArrayOf(env, argv[0], napi_int32_array, &words, &n) ||
      !TypedArrayOf(env, argv[1], napi_uint8_array, &text, &text_len)) {
    napi_throw_type_error(env, nullptr, "gatewayJson.compile(plan: Int32Array, text: Uint8Array)");
    return nullptr;
  }
  std::unique_ptr<Plan> plan(new Plan());
  if (!CompilePlan(static_cast<const int32_t*>(words), n, static_cast<const uint8_t*>(text), text_len,
                   plan.get())) {
    napi_throw_range_error(env, nullptr, "gatewayJson.compile: malformed plan");
    return nullptr;
  }
  napi_value ext;
  if (napi_create_external(env, plan.get(), FinalizePlan, nullptr, &ext) != napi_ok) {
    napi_throw_error(env, nullptr, "gatewayJson.compile: out of memory");
    return nullptr;
  }
  plan.release();
  if (napi_type_tag_object(env, ext, &kPlanTag) != napi_ok) {
    napi_throw_error(env, nullptr, "gatewayJson.compile: cannot tag the plan");
    return nullptr;
  }
  return ext;
}

napi_value EmitJs(napi_env env, napi_callback_info cbinfo) {
  size_t argc = 5;
  napi_value argv[5];
  constexpr const char* kUsage =
      "gatewayJson.emit(plan, root: number, src: Uint8Array, out: Uint8Array, io: Int32Array)";
  if (napi_get_cb_info(env, cbinfo, &argc, argv, nullptr, nullptr) != napi_ok || argc < 5) {
    napi_throw_type_error(env, nullptr, kUsage);
    return nullptr;
  }
  void* data = nullptr;
  napi_valuetype vt;
  bool tagged = false;
  if (napi_typeof(env, argv[0], &vt) != napi_ok || vt != napi_external ||
      napi_check_object_type_tag(env, argv[0], &kPlanTag, &tagged) != napi_ok || !tagged ||
      napi_get_value_external(env, argv[0], &data) != napi_ok || data == nullptr) {
    napi_throw_type_error(env, nullptr, kUsage);
    return nullptr;
  }
  const Plan& plan = *static_cast<const Plan*>(data);
  int32_t root;
  void* src;
  size_t src_len;
  void* out;
  size_t out_len;
  void* io_data;
  size_t io_len;
  if (napi_get_value_int32(env, argv[1], &root) != napi_ok ||
      !TypedArrayOf(env, argv[2], napi_uint8_array, &src, &src_len) ||
      !TypedArrayOf(env, argv[3], napi_uint8_array, &out, &out_len) ||
      !TypedArrayOf(env, argv[4], napi_int32_array, &io_data, &io_len) || io_len < 8) {
    napi_throw_type_error(env, nullptr, kUsage);
    return nullptr;
  }
  int32_t* io = static_cast<int32_t*>(io_data);
  const int32_t pos = io[0], end = io[1], protocol = io[2], depth = io[3], max_depth = io[4], out_pos = io[5];
  if (root < 0 || static_cast<size_t>(root) >= plan.index_of.size() || plan.index_of[root] < 0 || pos < 0 ||
      end < pos || static_cast<size_t>(end) > src_len || (protocol != 0 && protocol != 1) || depth < 0 ||
      max_depth < 0 || max_depth > 256 || out_pos < 0 || static_cast<size_t>(out_pos) > out_len) {
    napi_throw_range_error(env, nullptr, "gatewayJson.emit: bad arguments");
    return nullptr;
  }
  Out o{static_cast<uint8_t*>(out), static_cast<size_t>(out_pos), out_len};
  const int32_t node = plan.index_of[root];
  Status s;
  size_t after;
  if (protocol == 0) {
    Emitter<false> e(plan, static_cast<const uint8_t*>(src), pos, end, depth, max_depth, o);
    s = e.Value(node);
    after = e.pos();
  } else {
    Emitter<true> e(plan, static_cast<const uint8_t*>(src), pos, end, depth, max_depth, o);
    s = e.Value(node);
    after = e.pos();
  }
  if (s == kOk) {
    io[6] = static_cast<int32_t>(after);
    io[7] = static_cast<int32_t>(o.pos);
  }
  napi_value result;
  napi_create_int32(env, s, &result);
  return result;
}

// encode(plan, root, src: Uint8Array, out: Uint8Array, io: Int32Array): a request body's JSON
// text src[io[0], io[1]) (one object) as the Thrift fields of the args struct at `root` (fields
// and stop, no message header) at out[io[3]]; io[2] protocol. 0: written, io[4] the end in out;
// 1: out too small; 2: refused (JSON.parse and the JavaScript writer decide).
napi_value EncodeJs(napi_env env, napi_callback_info cbinfo) {
  size_t argc = 5;
  napi_value argv[5];
  constexpr const char* kUsage =
      "gatewayJson.encode(plan, root: number, src: Uint8Array, out: Uint8Array, io: Int32Array)";
  if (napi_get_cb_info(env, cbinfo, &argc, argv, nullptr, nullptr) != napi_ok || argc < 5) {
    napi_throw_type_error(env, nullptr, kUsage);
    return nullptr;
  }
  void* data = nullptr;
  napi_valuetype vt;
  bool tagged = false;
  if (napi_typeof(env, argv[0], &vt) != napi_ok || vt != napi_external ||
      napi_check_object_type_tag(env, argv[0], &kPlanTag, &tagged) != napi_ok || !tagged ||
      napi_get_value_external(env, argv[0], &data) != napi_ok || data == nullptr) {
    napi_throw_type_error(env, nullptr, kUsage);
    return nullptr;
  }
  const Plan& plan = *static_cast<const Plan*>(data);
  int32_t root;
  void* src;
  size_t src_len;
  void* out;
  size_t out_len;
  void* io_data;
  size_t io_len;
  if (napi_get_value_int32(env, argv[1], &root) != napi_ok ||
      !TypedArrayOf(env, argv[2], napi_uint8_array, &src, &src_len) ||
      !TypedArrayOf(env, argv[3], napi_uint8_array, &out, &out_len) ||
      !TypedArrayOf(env, argv[4], napi_int32_array, &io_data, &io_len) || io_len < 5) {
    napi_throw_type_error(env, nullptr, kUsage);
    return nullptr;
  }
  int32_t* io = static_cast<int32_t*>(io_data);
  const int32_t pos = io[0], end = io[1], protocol = io[2], out_pos = io[3];
  if (root < 0 || static_cast<size_t>(root) >= plan.index_of.size() || plan.index_of[root] < 0 ||
      plan.nodes[plan.index_of[root]].kind != kStruct || pos < 0 || end < pos ||
      static_cast<size_t>(end) > src_len || (protocol != 0 && protocol != 1) || out_pos < 0 ||
      static_cast<size_t>(out_pos) > out_len) {
    napi_throw_range_error(env, nullptr, "gatewayJson.encode: bad arguments");
    return nullptr;
  }
  Out o{static_cast<uint8_t*>(out), static_cast<size_t>(out_pos), out_len};
  const uint8_t* s = static_cast<const uint8_t*>(src);
  Status st;
  if (protocol == 0) {
    Encoder<false> e(plan, s, static_cast<size_t>(end), o);
    st = e.Body(plan.index_of[root], static_cast<size_t>(pos));
  } else {
    Encoder<true> e(plan, s, static_cast<size_t>(end), o);
    st = e.Body(plan.index_of[root], static_cast<size_t>(pos));
  }
  if (st == kOk) io[4] = static_cast<int32_t>(o.pos);
  napi_value result;
  napi_create_int32(env, st, &result);
  return result;
}

}  // namespace

void Register(Napi::Env env, Napi::Object exports) {
  Napi::Object api = Napi::Object::New(env);
  napi_value fn;
  napi_create_function(env, "compile", NAPI_AUTO_LENGTH, CompileJs, nullptr, &fn);
  api.Set("compile", Napi::Value(env, fn));
  napi_create_function(env, "emit", NAPI_AUTO_LENGTH, EmitJs, nullptr, &fn);
  api.Set("emit", Napi::Value(env, fn));
  napi_create_function(env, "encode", NAPI_AUTO_LENGTH, EncodeJs, nullptr, &fn);
  api.Set("encode", Napi::Value(env, fn));
  exports.Set("gatewayJson", api);
}

}  // namespace loch::gatewayjson

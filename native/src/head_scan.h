// HTTP/1.1 head scanner: finds the end of a message head, checks it by the rules of @loch/http's
// decoder (RFC 9112, strict where smuggling lives) and writes the offsets of its start line and
// field lines into caller memory. No allocation per call, no JavaScript objects: the decoder
// builds the message from the offsets. Not an incremental parser (a head split across reads is
// framed by the decoder's own line scan, then handed here whole) and not for bodies or chunk
// lines. See head_scan.cc for the rules and the JS-facing layout.
#pragma once

#include <napi.h>

#include <cstddef>
#include <cstdint>

namespace loch::headscan {

// What is scanned: a request head, a response head, or a chunked message's trailer block.
enum class Kind : int32_t { kRequest = 0, kResponse = 1, kTrailers = 2 };

// The decoder's limits that decide whether a head is whole and within bounds (find mode).
struct Limits {
  int32_t max_head_size;
  int32_t max_header_count;
  int32_t max_line_length;
};

// Rule a head broke; the decoder turns each into its HttpParseError code and message (the
// order here is the order of HEAD_SCAN_ERRORS in packages/http/src/h1/decoder.ts).
enum class Error : int32_t {
  kNone = 0,
  kInvalidMethod,
  kInvalidTarget,        // bad request target
  kInvalidTargetForm,    // the target's form is not allowed for the method
  kInvalidVersion,
  kUnsupportedVersion,   // arg: major * 10 + minor
  kBareCr,
  kShortStatusLine,
  kBadStatusLine,
  kBadStatusCode,
  kBadReasonPhrase,
  kObsFold,
  kWhitespaceBeforeColon,
  kInvalidHeaderName,
  kInvalidHeaderValue,
  kForbiddenTrailer,     // arg: the known-name id
  kDuplicateContentLength,
  kInvalidContentLength,
  kInvalidTransferEncoding,
  kInvalidHost,
};

// Where the results of one scan go: the start line, the framing facts and one entry per field
// line (name start, name end, value start, value end, meta = known-name id | kCanonical), all
// offsets relative to the head's first byte. `entries` holds room for `capacity` fields.
struct Result {
  int32_t length;          // bytes of the head, final CRLF included
  Error error;
  int32_t error_at;        // offset of the offending byte, -1 when none
  int32_t error_arg;
  int32_t fields_at;       // offset of the first field line
  int32_t fields;          // number of field lines
  // Request: method end, target start/end, form (0 origin, 1 absolute, 2 authority, 3 asterisk).
  // Response: status, reason start/end. Both: the version's minor digit (0-9).
  int32_t method_end;
  int32_t target_start;
  int32_t target_end;
  int32_t minor;
  int32_t form;
  int32_t status;
  // Framing facts the decoder decides from (the same flags as its listFlags()).
  int32_t cl_count;
  int32_t te_flags;
  int32_t conn_flags;
  int32_t host_count;
  int32_t expect;          // 0 none, 1 100-continue, 2 anything else
  int32_t upgrade_header;  // an Upgrade field was present
  double content_length;   // -1 when none
  int32_t* entries;
  int32_t capacity;
};

// Outcome of Scan.
enum class Outcome : int32_t {
  // Find mode: the head is not whole in the input or breaks a framing rule that the decoder's
  // line scan reports precisely (bare CR or LF, controls, line length, field count, size).
  // Block mode: more fields than `capacity`.
  kFallback = 0,
  kOk = 1,
  kError = 2,  // result.error says which rule, result.error_at where
};

// Field meta flag: the line is exactly `name: value\r\n` (one SP after the colon, no trailing
// whitespace), so an encoder may copy it as is.
constexpr int32_t kCanonical = 0x100;

// Sets the known header names (lowercase, ids 1..n in order). Process-wide; a second call with
// a different list fails. Returns false on a bad or conflicting list.
bool SetKnownNames(const char* const* names, size_t count);

// Scans `src[start, end)`. `find_end`: the head starts at `start` and its end is to be found
// (end = end of input); otherwise `src[start, end)` is a whole block ending in an empty line.
Outcome Scan(const uint8_t* src, size_t start, size_t end, bool find_end, Kind kind,
             const Limits& limits, Result* out);

// Adds `headScan: { init(names), bind(io, slab), setSlab(binding, slab), scan(binding, src),
// scanner(io, slab) }`: scanner() returns a function `scan(src)` of its own binding (which
// setSlab also takes), one argument and no binding check per call.
void Register(Napi::Env env, Napi::Object exports);

}  // namespace loch::headscan

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

// Where the results of one scan go: the start line, the framing facts, one entry per field line
// (name start, name end, value start, value end, meta = known-name id | kCanonical), all offsets
// relative to the head's first byte, and the summary of the lines (below). `entries` holds room
// for `capacity` fields; when `slab` is set and has room (see slab_top), the entries go there
// instead, `entries` is moved to them and `in_slab` is 1.
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
  // The summary of the field lines for @loch/http's removeHopByHop and its encoder measure
  // (packages/http/src/internal/head-summary.ts, which computes the same from the entries where
  // this addon does not load). A line is "flagged" when its id is hop-by-hop (RFC 9110 7.6.1:
  // connection, proxy-connection, keep-alive, te, transfer-encoding, trailer, upgrade) or
  // content-length.
  int32_t sum_length;      // encoded bytes of the lines not flagged (canonical: as is; else name: value CRLF)
  int32_t flagged_lines;   // bit k: line k (k < 32) is flagged
  int32_t ids_lo;          // bit id & 31 of every line's known-name id (0: none) with (id & 32) == 0
  int32_t ids_hi;          // the same for the ids with (id & 32) != 0: a filter, exact for ids 1-63
  int32_t summary_flags;   // kSummaryDate | kSummaryMore | kSummaryConnectionHopOnly
  int32_t* entries;
  int32_t capacity;
  // The decoder's HeadSlab (null for none) and its first free byte (4-aligned). When the head's
  // length and a bound on its field count are known and slab[slab_top...] has room for the head
  // (4-aligned), that many entries and the summary, Scan writes the entries straight after the
  // head's place with offsets in the slab (offset + slab_top) and sets `in_slab` and `entries`
  // to them; the caller copies the head's bytes there on kOk. A scan that does not end in kOk
  // may have written past slab_top: free space the slab's owner has not reserved.
  uint8_t* slab;
  size_t slab_len;
  size_t slab_top;
  int32_t in_slab;
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

// Result::summary_flags: a Date line is present; a flagged line is at index 32 or later; (a head's)
// every Connection line lists only bare `keep-alive` and `upgrade` (no other element, no
// parameters: conn_flags has no other bit).
constexpr int32_t kSummaryDate = 1;
constexpr int32_t kSummaryMore = 2;
constexpr int32_t kSummaryConnectionHopOnly = 4;
// Words of the summary as the record and the slab hold it, after the field entries: sum_length,
// flagged_lines, ids_lo, ids_hi, summary_flags.
constexpr int kSummaryWords = 5;

// Sets the known header names (lowercase, ids 1..n in order). Process-wide; a second call with
// a different list fails. Returns false on a bad or conflicting list.
bool SetKnownNames(const char* const* names, size_t count);

// Scans `src[start, end)`. `find_end`: the head starts at `start` and its end is to be found
// (end = end of input); otherwise `src[start, end)` is a whole block ending in an empty line.
Outcome Scan(const uint8_t* src, size_t start, size_t end, bool find_end, Kind kind,
             const Limits& limits, Result* out);

// Adds `headScan: { init(names), bind(io, slab), setSlab(binding, slab), scan(binding, src),
// scanner(io, slab), summaryWords }`: scanner() returns a function `scan(src)` of its own binding
// (which setSlab also takes), one argument and no binding check per call; summaryWords is
// kSummaryWords (the record's layout: the decoder uses no scanner without it).
void Register(Napi::Env env, Napi::Object exports);

}  // namespace loch::headscan

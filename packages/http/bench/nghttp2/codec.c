/*
 * nghttp2's HPACK and frame decoding on the bytes of h2-codec.bench.ts (fixtures.ts writes them):
 * the C floor Loch's TypeScript HTTP/2 codec is compared with (issue 14: "decide the codec by
 * measurement"). Each case runs for about a second, five times; the median ns per operation is
 * printed. Called from C directly, so no JavaScript crossing and no JavaScript string is made: what
 * Loch would pay on top if nghttp2 were its codec (see the README's HTTP/2 decisions).
 * Build and run: see run.sh.
 */
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
  unsigned char *data;
  size_t len;
} blob;

static blob read_file(const char *dir, const char *name) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    perror(path);
    exit(1);
  }
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  blob b = {malloc((size_t)n), (size_t)n};
  if (fread(b.data, 1, b.len, f) != b.len) {
    perror(path);
    exit(1);
  }
  fclose(f);
  return b;
}

static double now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static size_t sink;
static blob first, later, fields_blob, wire;
static nghttp2_nv fields[64];
static size_t nfields;
static nghttp2_hd_inflater *warm_inflater;
static nghttp2_hd_deflater *warm_deflater;

static void inflate_block(nghttp2_hd_inflater *in, const blob *b) {
  const uint8_t *p = b->data;
  size_t left = b->len;
  for (;;) {
    nghttp2_nv nv;
    int flags = 0;
    ssize_t r = nghttp2_hd_inflate_hd2(in, &nv, &flags, p, left, 1);
    if (r < 0) {
      fprintf(stderr, "inflate: %s\n", nghttp2_strerror((int)r));
      exit(1);
    }
    p += r;
    left -= (size_t)r;
    if (flags & NGHTTP2_HD_INFLATE_EMIT) sink += nv.namelen + nv.valuelen;
    if (flags & NGHTTP2_HD_INFLATE_FINAL) {
      nghttp2_hd_inflate_end_headers(in);
      break;
    }
    if ((flags & NGHTTP2_HD_INFLATE_EMIT) == 0 && left == 0) break;
  }
}

static void case_inflate_first(void) {
  nghttp2_hd_inflater *in;
  nghttp2_hd_inflate_new(&in);
  inflate_block(in, &first);
  nghttp2_hd_inflate_del(in);
}

static void case_inflate_later(void) { inflate_block(warm_inflater, &later); }

static uint8_t out[8192];

static void case_deflate_first(void) {
  nghttp2_hd_deflater *d;
  nghttp2_hd_deflate_new(&d, 4096);
  ssize_t r = nghttp2_hd_deflate_hd(d, out, sizeof out, fields, nfields);
  if (r < 0) exit(1);
  sink += (size_t)r;
  nghttp2_hd_deflate_del(d);
}

static void case_deflate_later(void) {
  ssize_t r = nghttp2_hd_deflate_hd(warm_deflater, out, sizeof out, fields, nfields);
  if (r < 0) exit(1);
  sink += (size_t)r;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t namelen,
                     const uint8_t *value, size_t valuelen, uint8_t flags, void *u) {
  (void)s, (void)f, (void)name, (void)value, (void)flags, (void)u;
  sink += namelen + valuelen;
  return 0;
}

static int on_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data, size_t len, void *u) {
  (void)s, (void)flags, (void)id, (void)data, (void)u;
  sink += len;
  return 0;
}

static nghttp2_session_callbacks *callbacks;

static void case_session_read(void) {
  nghttp2_session *s;
  nghttp2_session_server_new(&s, callbacks, NULL);
  for (size_t at = 0; at < wire.len; at += 1460) {
    size_t n = wire.len - at < 1460 ? wire.len - at : 1460;
    ssize_t r = nghttp2_session_mem_recv(s, wire.data + at, n);
    if (r < 0 || (size_t)r != n) {
      fprintf(stderr, "mem_recv: %s\n", nghttp2_strerror((int)r));
      exit(1);
    }
  }
  nghttp2_session_del(s);
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static void run(const char *name, void (*fn)(void)) {
  long iterations = 1000;
  for (;;) {  // calibrate to ~1 s
    double t0 = now_ns();
    for (long i = 0; i < iterations; i++) fn();
    double t = now_ns() - t0;
    if (t > 2e8) {
      iterations = (long)(iterations * 1e9 / t);
      break;
    }
    iterations *= 4;
  }
  double ns[5];
  for (int r = 0; r < 5; r++) {
    double t0 = now_ns();
    for (long i = 0; i < iterations; i++) fn();
    ns[r] = (now_ns() - t0) / (double)iterations;
  }
  qsort(ns, 5, sizeof ns[0], cmp);
  printf("%-58s %10.1f ns/op  (median of 5, %ld ops each; range %.1f-%.1f)\n", name, ns[2], iterations, ns[0], ns[4]);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: codec DIR (fixtures.ts output)\n");
    return 2;
  }
  first = read_file(argv[1], "first.hpack");
  later = read_file(argv[1], "later.hpack");
  fields_blob = read_file(argv[1], "fields.bin");
  wire = read_file(argv[1], "wire.bin");
  for (size_t at = 0; at < fields_blob.len && nfields < 64;) {
    char *name = (char *)fields_blob.data + at;
    size_t nl = strlen(name);
    char *value = name + nl + 1;
    size_t vl = strlen(value);
    fields[nfields++] = (nghttp2_nv){(uint8_t *)name, (uint8_t *)value, nl, vl, NGHTTP2_NV_FLAG_NONE};
    at += nl + vl + 2;
  }
  nghttp2_hd_inflate_new(&warm_inflater);
  inflate_block(warm_inflater, &first);
  nghttp2_hd_deflate_new(&warm_deflater, 4096);
  nghttp2_hd_deflate_hd(warm_deflater, out, sizeof out, fields, nfields);
  nghttp2_session_callbacks_new(&callbacks);
  nghttp2_session_callbacks_set_on_header_callback(callbacks, on_header);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, on_data);

  printf("nghttp2 %s; %zu fields; first block %zu B, later %zu B; wire %zu B\n", nghttp2_version(0)->version_str,
         nfields, first.len, later.len, wire.len);
  run("HPACK decode: first block on a connection", case_inflate_first);
  run("HPACK decode: later block (dynamic-table indexes)", case_inflate_later);
  run("HPACK encode: first block on a connection", case_deflate_first);
  run("HPACK encode: later block", case_deflate_later);
  run("server read: nghttp2_session_mem_recv (preface + 20 requests)", case_session_read);
  return sink == 0;
}

// openloop: an open-loop HTTP/2 (h2c, prior knowledge) gRPC load generator on libnghttp2.
//
// Request i is scheduled at t0 + i/R on CLOCK_MONOTONIC, whatever happened to earlier requests,
// and its latency runs from that scheduled time to its stream's close, so a stalled server is
// charged for every request it delayed (no coordinated omission). One thread: epoll over the
// connections plus a timerfd armed for the next scheduled send.
//
// Build: bench/openloop/build.sh. Usage: see usage() below. Prints one JSON line on stdout.
#define _GNU_SOURCE // memmem
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define MARKER "x-agent-authz-reason" // a deny response carries this header name in its body
#define MLEN (sizeof(MARKER) - 1)
#define DRAIN_NS 5000000000LL  // wait at most this long for answers after the last send
#define OUT_HIGH (256 * 1024)  // stop pulling frames from nghttp2 above this many unsent bytes
#define MAX_REQUESTS 50000000u // memory guard: R * (W + S)
#define TIMER_ID UINT32_MAX

enum { R_IDLE, R_SENT, R_DONE };                 // request state
enum { K_OK, K_DENIED, K_GRPC, K_TRANSPORT };    // outcome of a finished request

typedef struct { const uint8_t *p; size_t len; } frame_t;

typedef struct {
  int64_t submit_ns;           // when it was handed to nghttp2
  uint32_t frame, off;         // which body, and how many of its bytes nghttp2 has taken
  int http_status, grpc_status; // -1 until seen
  uint8_t state, marker, carry_len;
  char carry[MLEN - 1];        // tail of the body so far, for a marker split across DATA frames
} req_t;

struct gen;
typedef struct {
  int fd, alive, pollout;
  uint32_t idx;                // index in the conns array, the epoll tag
  nghttp2_session *s;
  uint32_t *ids;               // stream id -> request index: ids[(id - 1) / 2]
  size_t nids, capids;
  uint8_t *out;                // serialized frames not yet accepted by the socket
  size_t olen, ocap;
  struct gen *g;
} conn_t;

typedef struct gen {
  double rate, warmup, duration;
  frame_t *frames;
  size_t nframes;
  nghttp2_nv nva[6];
  req_t *reqs;
  size_t total, first_measured, inflight;
  int64_t t0, late_max_ns;
  int64_t *lat_us;             // latencies of answered measured requests
  size_t nlat, sent, n[4];     // n[] is indexed by K_*; all counters cover measured requests only
} gen_t;

static int64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts); // cannot fail for CLOCK_MONOTONIC
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int64_t sched_ns(const gen_t *g, size_t i) { return g->t0 + (int64_t)((double)i * 1e9 / g->rate); }

static req_t *req_of(conn_t *c, int32_t id) {
  size_t k = (size_t)(id - 1) / 2;
  return (id > 0 && (id & 1) && k < c->nids) ? &c->g->reqs[c->ids[k]] : NULL;
}

// Mark a request finished (once) and, if it is measured, count it and record its latency.
static void finish(gen_t *g, req_t *r, int kind) {
  if (r->state == R_DONE) return;
  if (r->state == R_SENT) g->inflight--;
  r->state = R_DONE;
  size_t i = (size_t)(r - g->reqs);
  if (i < g->first_measured) return;
  g->n[kind]++;
  if (kind != K_TRANSPORT) g->lat_us[g->nlat++] = (mono_ns() - sched_ns(g, i)) / 1000;
}

// Look for MARKER in the body, including across chunk boundaries, without buffering the body.
static void scan_marker(req_t *r, const uint8_t *d, size_t n) {
  if (r->marker) return;
  uint8_t seam[2 * (MLEN - 1)];
  size_t k = n < MLEN - 1 ? n : MLEN - 1;
  memcpy(seam, r->carry, r->carry_len);
  memcpy(seam + r->carry_len, d, k);
  if (memmem(seam, r->carry_len + k, MARKER, MLEN) || memmem(d, n, MARKER, MLEN)) {
    r->marker = 1;
    return;
  }
  size_t tot = r->carry_len + n, keep = tot < MLEN - 1 ? tot : MLEN - 1;
  if (n >= keep) {
    memcpy(r->carry, d + n - keep, keep);
  } else { // keep the last (keep - n) carried bytes, then all of d
    memmove(r->carry, r->carry + r->carry_len - (keep - n), keep - n);
    memcpy(r->carry + keep - n, d, n);
  }
  r->carry_len = (uint8_t)keep;
}

// ---- nghttp2 callbacks (user_data is the conn_t) ----

static ssize_t read_body(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                         nghttp2_data_source *src, void *ud) {
  (void)s, (void)id;
  req_t *r = src->ptr;
  const frame_t *f = &((conn_t *)ud)->g->frames[r->frame];
  size_t n = f->len - r->off < len ? f->len - r->off : len;
  memcpy(buf, f->p + r->off, n);
  r->off += (uint32_t)n;
  if (r->off == f->len) *flags |= NGHTTP2_DATA_FLAG_EOF;
  return (ssize_t)n;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *fr, const uint8_t *name, size_t nlen,
                     const uint8_t *value, size_t vlen, uint8_t flags, void *ud) {
  (void)s, (void)flags, (void)vlen; // nghttp2 NUL-terminates value
  req_t *r = fr->hd.type == NGHTTP2_HEADERS ? req_of(ud, fr->hd.stream_id) : NULL;
  if (r == NULL) return 0;
  if (nlen == 7 && memcmp(name, ":status", 7) == 0) r->http_status = atoi((const char *)value);
  if (nlen == 11 && memcmp(name, "grpc-status", 11) == 0) r->grpc_status = atoi((const char *)value);
  return 0;
}

static int on_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *d, size_t n, void *ud) {
  (void)s, (void)flags;
  req_t *r = req_of(ud, id);
  if (r != NULL) scan_marker(r, d, n);
  return 0;
}

static int on_close(nghttp2_session *s, int32_t id, uint32_t err, void *ud) {
  (void)s;
  req_t *r = req_of(ud, id);
  if (r == NULL) return 0;
  int kind = err != NGHTTP2_NO_ERROR                         ? K_TRANSPORT
             : r->http_status == 200 && r->grpc_status == 0 ? (r->marker ? K_DENIED : K_OK)
                                                            : K_GRPC;
  finish(((conn_t *)ud)->g, r, kind);
  return 0;
}

// A HEADERS frame that never left (e.g. after GOAWAY) has no stream, so on_close won't fire.
static int on_not_sent(nghttp2_session *s, const nghttp2_frame *fr, int lib_err, void *ud) {
  (void)s, (void)lib_err;
  req_t *r = fr->hd.type == NGHTTP2_HEADERS ? req_of(ud, fr->hd.stream_id) : NULL;
  if (r != NULL) finish(((conn_t *)ud)->g, r, K_TRANSPORT);
  return 0;
}

// ---- connections ----

static int conn_open(conn_t *c, gen_t *g, const struct addrinfo *ai) {
  int one = 1;
  c->g = g;
  c->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (c->fd < 0 || connect(c->fd, ai->ai_addr, ai->ai_addrlen) != 0 ||
      setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0 ||
      fcntl(c->fd, F_SETFL, O_NONBLOCK) != 0) {
    perror("openloop: connect");
    return -1;
  }
  nghttp2_session_callbacks *cb;
  nghttp2_option *opt;
  if (nghttp2_session_callbacks_new(&cb) != 0) return -1;
  if (nghttp2_option_new(&opt) != 0) { nghttp2_session_callbacks_del(cb); return -1; }
  nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_close);
  nghttp2_session_callbacks_set_on_frame_not_send_callback(cb, on_not_sent);
  // Don't assume 100 streams before the server's SETTINGS arrive: only the server's limit counts.
  nghttp2_option_set_peer_max_concurrent_streams(opt, INT32_MAX);
  int rv = nghttp2_session_client_new2(&c->s, cb, c, opt);
  nghttp2_session_callbacks_del(cb);
  nghttp2_option_del(opt);
  if (rv != 0) return -1;
  // No push; the largest receive windows, so our flow control never throttles responses.
  nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
                                 {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, NGHTTP2_MAX_WINDOW_SIZE}};
  if (nghttp2_submit_settings(c->s, NGHTTP2_FLAG_NONE, iv, 2) != 0 ||
      nghttp2_session_set_local_window_size(c->s, NGHTTP2_FLAG_NONE, 0, NGHTTP2_MAX_WINDOW_SIZE) != 0)
    return -1;
  c->alive = 1;
  return 0;
}

// Connection lost: every request still open on it is a transport error.
static void conn_fail(conn_t *c, int ep) {
  if (!c->alive) return;
  c->alive = 0;
  (void)epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL); // closing the fd removes it anyway
  close(c->fd);
  c->fd = -1;
  for (size_t k = 0; k < c->nids; k++) finish(c->g, &c->g->reqs[c->ids[k]], K_TRANSPORT);
}

// Serialize whatever nghttp2 has queued and write it; keep the unsent rest for EPOLLOUT.
static int conn_flush(conn_t *c, int ep) {
  for (;;) {
    size_t before = c->olen;
    while (c->olen < OUT_HIGH) {
      const uint8_t *d;
      ssize_t n = nghttp2_session_mem_send(c->s, &d);
      if (n < 0) return -1;
      if (n == 0) break;
      if (c->olen + (size_t)n > c->ocap) {
        size_t cap = c->ocap ? c->ocap : 65536;
        while (cap < c->olen + (size_t)n) cap *= 2;
        uint8_t *p = realloc(c->out, cap);
        if (p == NULL) return -1;
        c->out = p, c->ocap = cap;
      }
      memcpy(c->out + c->olen, d, (size_t)n);
      c->olen += (size_t)n;
    }
    size_t off = 0;
    while (off < c->olen) {
      ssize_t w = send(c->fd, c->out + off, c->olen - off, MSG_NOSIGNAL);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      if (w < 0) return -1;
      off += (size_t)w;
    }
    memmove(c->out, c->out + off, c->olen - off);
    c->olen -= off;
    if (c->olen > 0 || before == c->olen) break; // socket full, or nothing new to send
  }
  if (c->olen == 0 && !nghttp2_session_want_read(c->s) && !nghttp2_session_want_write(c->s))
    return -1; // e.g. after GOAWAY with no streams left
  int want = c->olen > 0;
  if (want != c->pollout) {
    struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0), .data.u32 = c->idx};
    if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) != 0) return -1;
    c->pollout = want;
  }
  return 0;
}

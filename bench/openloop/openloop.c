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
#define TIMER_ID UINT32_MAX     // epoll tag of the timerfd (connections are tagged by index)
// A header whose name and value outlive the session, so nghttp2 need not copy them.
#define NV(n, v) {(uint8_t *)(n), (uint8_t *)(v), strlen(n), strlen(v), \
                  NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE}

enum { R_IDLE, R_SENT, R_DONE };                 // request state
enum { K_OK, K_DENIED, K_GRPC, K_TRANSPORT };    // outcome of a finished request

typedef struct { const uint8_t *p; size_t len; } frame_t;

typedef struct {
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
  double rate;
  frame_t *frames;
  size_t nframes;
  nghttp2_nv nva[6];
  req_t *reqs;
  size_t total, first_measured, inflight;
  int64_t t0, late_max_ns;
  int64_t *lat_us;             // latencies of answered measured requests
  int64_t *by_index_us;        // the same by request index (-1: no answer), for a timeline dump
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
  if (kind != K_TRANSPORT) {
    int64_t us = (mono_ns() - sched_ns(g, i)) / 1000;
    g->lat_us[g->nlat++] = us;
    g->by_index_us[i - g->first_measured] = us;
  }
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

static int conn_open(conn_t *c, const struct addrinfo *ai) {
  int one = 1;
  for (; ai != NULL && c->fd < 0; ai = ai->ai_next) { // blocking connect, first address that works
    c->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd >= 0 && connect(c->fd, ai->ai_addr, ai->ai_addrlen) != 0) {
      perror("openloop: connect");
      close(c->fd);
      c->fd = -1;
    }
  }
  if (c->fd < 0 || setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0 ||
      fcntl(c->fd, F_SETFL, O_NONBLOCK) != 0)
    return -1;
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

static int conn_read(conn_t *c) {
  uint8_t buf[65536];
  for (;;) {
    ssize_t n = recv(c->fd, buf, sizeof buf, 0);
    if (n == 0) return -1; // peer closed
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
    }
    if (nghttp2_session_mem_recv(c->s, buf, (size_t)n) < 0) return -1;
  }
}

// Hand request i to the next live connection (round-robin). nghttp2 never refuses a request for
// the peer's SETTINGS_MAX_CONCURRENT_STREAMS: it keeps the HEADERS queued until a stream slot
// frees up, and the latency still runs from the scheduled time.
static void submit(gen_t *g, conn_t *conns, int nconn, int *rr, size_t i) {
  req_t *r = &g->reqs[i];
  r->frame = (uint32_t)(i % g->nframes);
  r->http_status = r->grpc_status = -1;
  for (int t = 0; t < nconn; t++) {
    conn_t *c = &conns[(*rr + t) % nconn];
    if (!c->alive) continue;
    *rr = (*rr + t + 1) % nconn;
    if (c->nids == c->capids) { // make room in the id map first, so a submitted stream is tracked
      size_t cap = c->capids ? c->capids * 2 : 1024;
      uint32_t *p = realloc(c->ids, cap * sizeof *p);
      if (p == NULL) break;
      c->ids = p, c->capids = cap;
    }
    nghttp2_data_provider dp = {.source.ptr = r, .read_callback = read_body};
    int32_t id = nghttp2_submit_request(c->s, NULL, g->nva, 6, &dp, r);
    if (id < 0 || (size_t)id != 2 * c->nids + 1) { // ids go 1, 3, 5, ... on a client session
      fprintf(stderr, "openloop: submit: %s\n", id < 0 ? nghttp2_strerror(id) : "unexpected stream id");
      break;
    }
    c->ids[c->nids++] = (uint32_t)i;
    r->state = R_SENT;
    g->inflight++;
    if (i >= g->first_measured) { // how late the generator itself was
      int64_t late = mono_ns() - sched_ns(g, i);
      if (late > g->late_max_ns) g->late_max_ns = late;
      g->sent++;
    }
    return;
  }
  finish(g, r, K_TRANSPORT); // no live connection, or nghttp2 refused it
}

// FILE holds gRPC frames back to back: flag byte, 4-byte big-endian length, message.
static int load_frames(gen_t *g, const char *path, uint8_t **file) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) { perror(path); return -1; }
  long size = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
  uint8_t *b = size > 0 && fseek(f, 0, SEEK_SET) == 0 ? malloc((size_t)size) : NULL;
  size_t len = b ? fread(b, 1, (size_t)size, f) : 0;
  int bad = b == NULL || len != (size_t)size;
  fclose(f);
  *file = b;
  for (int pass = 0; pass < 2 && !bad; pass++) { // count, then fill
    size_t off = 0, k = 0;
    while (off < len) {
      if (len - off < 5) { bad = 1; break; }
      size_t m = (size_t)b[off + 1] << 24 | (size_t)b[off + 2] << 16 | (size_t)b[off + 3] << 8 | b[off + 4];
      if (len - off - 5 < m) { bad = 1; break; }
      if (pass == 1) g->frames[k] = (frame_t){b + off, 5 + m};
      k++, off += 5 + m;
    }
    if (pass == 0 && !bad && (k == 0 || (g->frames = calloc(k, sizeof *g->frames)) == NULL)) bad = 1;
    g->nframes = k;
  }
  if (bad) fprintf(stderr, "openloop: %s: unreadable, empty, or not gRPC frames back to back\n", path);
  return bad ? -1 : 0;
}

static int num(const char *s, double *out) {
  char *end;
  errno = 0;
  *out = strtod(s, &end);
  return errno == 0 && end != s && *end == '\0' && isfinite(*out) ? 0 : -1;
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

// Nearest-rank percentile in ms with 3 decimals, or null if nothing was answered.
static void pct(char *out, size_t sz, const gen_t *g, double p) {
  if (g->nlat == 0) { snprintf(out, sz, "null"); return; }
  size_t k = (size_t)ceil(p * (double)g->nlat);
  snprintf(out, sz, "%.3f", (double)g->lat_us[k ? k - 1 : 0] / 1000.0);
}

static void usage(void) {
  fprintf(stderr, "usage: openloop --target HOST:PORT --frames FILE --rate R --duration S"
                  " [--warmup W (2)] [--connections C (1)] [--path P]\n");
}

int main(int argc, char **argv) {
  const char *target = NULL, *frames_path = NULL, *path = "/envoy.service.auth.v3.Authorization/Check";
  double rate = 0, duration = 0, warmup = 2, nconn_d = 1;
  static const struct option opts[] = {
      {"target", 1, 0, 't'}, {"frames", 1, 0, 'f'},      {"rate", 1, 0, 'r'}, {"duration", 1, 0, 'd'},
      {"warmup", 1, 0, 'w'}, {"connections", 1, 0, 'c'}, {"path", 1, 0, 'p'}, {0, 0, 0, 0}};
  int o, bad = 0;
  while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    if (o == 't') target = optarg;
    else if (o == 'f') frames_path = optarg;
    else if (o == 'p') path = optarg;
    else if (o == 'r') bad |= num(optarg, &rate);
    else if (o == 'd') bad |= num(optarg, &duration);
    else if (o == 'w') bad |= num(optarg, &warmup);
    else if (o == 'c') bad |= num(optarg, &nconn_d);
    else bad = 1;
  }
  if (bad || optind != argc || !target || !frames_path || !(rate > 0 && rate <= 1e7) || !(duration > 0) ||
      !(warmup >= 0) || !(nconn_d >= 1 && nconn_d <= 1024) || nconn_d != (int)nconn_d || path[0] != '/') {
    usage();
    return 1;
  }
  // HOST:PORT, HOST may be [v6]; the authority header is the target as given.
  const char *authority = target;
  char host[256];
  const char *colon = strrchr(target, ':');
  size_t hlen = colon ? (size_t)(colon - target) : 0;
  if (hlen >= 2 && target[0] == '[' && target[hlen - 1] == ']') target++, hlen -= 2;
  if (colon == NULL || hlen == 0 || hlen >= sizeof host) { usage(); return 1; }
  memcpy(host, target, hlen);
  host[hlen] = '\0';
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV}, *ai = NULL;
  int gai = getaddrinfo(host, colon + 1, &hints, &ai);
  if (gai != 0) { fprintf(stderr, "openloop: %s: %s\n", host, gai_strerror(gai)); return 1; }

  int nconn = (int)nconn_d;
  gen_t g = {.rate = rate};
  uint8_t *file = NULL;
  conn_t *conns = NULL;
  int rc = 1, ep = -1, tfd = -1;
  g.first_measured = (size_t)ceil(warmup * rate - 1e-9); // i/R < W is warm-up
  size_t measured = (size_t)ceil(duration * rate - 1e-9);
  g.total = g.first_measured + measured;
  if (measured == 0 || g.total > MAX_REQUESTS) { fprintf(stderr, "openloop: bad rate * duration\n"); goto out; }
  if (load_frames(&g, frames_path, &file) != 0) goto out;
  g.reqs = calloc(g.total, sizeof *g.reqs);
  g.lat_us = calloc(measured, sizeof *g.lat_us);
  g.by_index_us = malloc(measured * sizeof *g.by_index_us);
  for (size_t i = 0; g.by_index_us && i < measured; i++) g.by_index_us[i] = -1;
  conns = calloc((size_t)nconn, sizeof *conns);
  ep = epoll_create1(EPOLL_CLOEXEC);
  tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (!g.reqs || !g.lat_us || !g.by_index_us || !conns || ep < 0 || tfd < 0) { perror("openloop: setup"); goto out; }
  for (int k = 0; k < nconn; k++) conns[k].fd = -1, conns[k].idx = (uint32_t)k, conns[k].g = &g;
  struct epoll_event tev = {.events = EPOLLIN, .data.u32 = TIMER_ID};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &tev) != 0) { perror("openloop: epoll"); goto out; }
  if (prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0) != 0) perror("openloop: timerslack (ignored)");
  const nghttp2_nv nva[6] = {
      NV(":method", "POST"), NV(":scheme", "http"), NV(":authority", authority),
      NV(":path", path), NV("content-type", "application/grpc"), NV("te", "trailers")};
  memcpy(g.nva, nva, sizeof nva);
  for (int k = 0; k < nconn; k++) {
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)k};
    if (conn_open(&conns[k], ai) != 0 || epoll_ctl(ep, EPOLL_CTL_ADD, conns[k].fd, &ev) != 0 ||
        conn_flush(&conns[k], ep) != 0) { // sends the preface and our SETTINGS
      fprintf(stderr, "openloop: cannot connect to %s\n", authority);
      goto out;
    }
  }

  // Main loop: submit everything due, flush, sleep until the next send (or an answer).
  g.t0 = mono_ns();
  size_t next = 0;
  int rr = 0;
  int64_t drain_end = 0;
  for (;;) {
    while (next < g.total && sched_ns(&g, next) <= mono_ns()) submit(&g, conns, nconn, &rr, next++);
    int alive = 0;
    for (int k = 0; k < nconn; k++) {
      if (conns[k].alive && conn_flush(&conns[k], ep) != 0) {
        fprintf(stderr, "openloop: connection %d lost\n", k);
        conn_fail(&conns[k], ep);
      }
      alive += conns[k].alive;
    }
    if (alive == 0) { // nothing left to send on: the rest fail without being sent
      while (next < g.total) finish(&g, &g.reqs[next++], K_TRANSPORT);
      break;
    }
    int64_t now = mono_ns();
    if (next == g.total) {
      if (drain_end == 0) drain_end = now + DRAIN_NS;
      if (g.inflight == 0 || now >= drain_end) break;
    }
    int64_t wake = next < g.total ? sched_ns(&g, next) : drain_end;
    struct itimerspec its = {.it_value = {.tv_sec = wake / 1000000000LL, .tv_nsec = wake % 1000000000LL}};
    if (timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL) != 0) { perror("openloop: timerfd"); goto out; }
    struct epoll_event evs[64];
    int n = epoll_wait(ep, evs, 64, -1);
    if (n < 0 && errno != EINTR) { perror("openloop: epoll_wait"); goto out; }
    for (int e = 0; e < n; e++) {
      uint32_t id = evs[e].data.u32;
      if (id == TIMER_ID) {
        uint64_t expirations;
        if (read(tfd, &expirations, sizeof expirations) < 0 && errno != EAGAIN) { perror("openloop: timerfd"); goto out; }
      } else if (conns[id].alive && (evs[e].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) && conn_read(&conns[id]) != 0) {
        fprintf(stderr, "openloop: connection %u lost\n", id);
        conn_fail(&conns[id], ep);
      } // EPOLLOUT: the flush at the top of the loop writes the rest
    }
  }

  // Whatever is still open after the drain is unanswered (and a transport error).
  size_t unanswered = 0;
  for (size_t i = g.first_measured; i < g.total; i++) unanswered += g.reqs[i].state == R_SENT;
  // OPENLOOP_TIMELINE=FILE: "<scheduled ms since measuring began> <latency us>" per measured
  // request, to see when the slow ones happened (e.g. beside the server's --trace-gc). The first
  // line, "# start_mono_ns N", is when measuring began on CLOCK_MONOTONIC, the clock V8's CPU
  // profiles (--cpu-prof) time their samples with, so the two can be laid side by side.
  const char *timeline = getenv("OPENLOOP_TIMELINE");
  if (timeline && *timeline) {
    FILE *tf = fopen(timeline, "w");
    if (!tf) perror("openloop: timeline");
    if (tf) fprintf(tf, "# start_mono_ns %lld\n", (long long)sched_ns(&g, g.first_measured));
    for (size_t i = 0; tf && i < measured; i++)
      fprintf(tf, "%.3f %lld\n", (double)i * 1e3 / rate, (long long)g.by_index_us[i]);
    if (tf) fclose(tf);
  }
  qsort(g.lat_us, g.nlat, sizeof *g.lat_us, cmp_i64);
  char p50[32], p90[32], p99[32], p999[32], pmax[32];
  pct(p50, sizeof p50, &g, 0.50), pct(p90, sizeof p90, &g, 0.90), pct(p99, sizeof p99, &g, 0.99);
  pct(p999, sizeof p999, &g, 0.999), pct(pmax, sizeof pmax, &g, 1.0);
  printf("{\"mode\":\"open\",\"offered_per_s\":%.3f,\"measured_requests\":%zu,\"achieved_per_s\":%.3f,"
         "\"sent\":%zu,\"ok\":%zu,\"denied\":%zu,\"grpcErrors\":%zu,\"transportErrors\":%zu,\"unanswered\":%zu,"
         "\"late_sends_max_ms\":%.3f,\"p50_ms\":%s,\"p90_ms\":%s,\"p99_ms\":%s,\"p999_ms\":%s,\"max_ms\":%s}\n",
         rate, measured, (double)g.nlat / duration, g.sent, g.n[K_OK], g.n[K_DENIED], g.n[K_GRPC],
         g.n[K_TRANSPORT] + unanswered, unanswered, (double)g.late_max_ns / 1e6, p50, p90, p99, p999, pmax);
  rc = fflush(stdout) == 0 ? 0 : 1;
out:
  for (int k = 0; conns && k < nconn; k++) {
    if (conns[k].fd >= 0) close(conns[k].fd);
    if (conns[k].s) nghttp2_session_del(conns[k].s);
    free(conns[k].ids);
    free(conns[k].out);
  }
  free(conns);
  free(g.reqs);
  free(g.lat_us);
  free(g.by_index_us);
  free(g.frames);
  free(file);
  freeaddrinfo(ai);
  if (tfd >= 0) close(tfd);
  if (ep >= 0) close(ep);
  return rc;
}

/*
 * noise: how often the core it runs on is taken away from it. Busy-reads CLOCK_MONOTONIC for
 * SECONDS and counts the gaps between consecutive reads: a gap is time this thread did not run
 * (another task on the core, an interrupt, or the hypervisor not running the vCPU). Prints one
 * JSON object. Run it pinned (taskset -c N) on an otherwise idle core.
 *
 *   noise SECONDS
 */
#define _POSIX_C_SOURCE 199309L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static uint64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

int main(int argc, char **argv) {
  double seconds = argc > 1 ? atof(argv[1]) : 0;
  if (!(seconds > 0 && seconds <= 600)) {
    fprintf(stderr, "usage: noise SECONDS (0 < SECONDS <= 600)\n");
    return 2;
  }
  const uint64_t start = now_ns();
  const uint64_t end = start + (uint64_t)(seconds * 1e9);
  uint64_t prev = start, lost_ns = 0, max_ns = 0;
  long over_100us = 0, over_1ms = 0, over_2ms = 0, over_5ms = 0;
  for (;;) {
    const uint64_t t = now_ns();
    const uint64_t gap = t - prev;
    prev = t;
    if (gap > 100000) {
      over_100us++;
      lost_ns += gap;
      if (gap > 1000000) over_1ms++;
      if (gap > 2000000) over_2ms++;
      if (gap > 5000000) over_5ms++;
      if (gap > max_ns) max_ns = gap;
    }
    if (t >= end) break;
  }
  const double elapsed = (double)(prev - start) / 1e9;
  printf("{\"seconds\":%.3f,\"gaps_over_100us\":%ld,\"gaps_over_1ms\":%ld,\"gaps_over_2ms\":%ld,"
         "\"gaps_over_5ms\":%ld,\"max_gap_ms\":%.3f,\"lost_ms_per_s\":%.3f}\n",
         elapsed, over_100us, over_1ms, over_2ms, over_5ms, (double)max_ns / 1e6,
         (double)lost_ns / 1e6 / elapsed);
  return 0;
}

/*
 * awake: keeps the core it runs on from going idle, without taking it from anything else.
 *
 * On a VM with no guest cpuidle driver (the bench's Firecracker VMs: cpuidle driver "none"), an
 * idle vCPU executes HLT and leaves the host's run queue, and waking it again — a packet for the
 * server, the load generator's next timer — can take milliseconds. This process spins (PAUSE in a
 * loop) under SCHED_IDLE, the lowest scheduling class: any other runnable thread on the core
 * preempts it at once, so the core never halts but nobody waits for it. That is what `idle=poll`
 * or the guest `cpuidle-haltpoll` driver give a latency-sensitive host; see bench/README.md.
 * It runs until killed, and dies with its parent (PR_SET_PDEATHSIG). Pin it with taskset.
 *
 *   awake
 */
#define _GNU_SOURCE
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <unistd.h>

int main(void) {
  const pid_t parent = getppid();
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent) return 1;
  const struct sched_param p = {0};
  if (sched_setscheduler(0, SCHED_IDLE, &p) != 0) {
    perror("awake: SCHED_IDLE");
    return 1;
  }
  for (;;) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
  }
}

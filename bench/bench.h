/* bench.h — the small vtable every benchmarked event loop implements
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Each workload in iops-bench.c is written once against BenchSystem; one
 * sys-*.c file per event loop maps it onto that loop's own API.
 *
 * Contract of a system:
 * - io_arm() watches the fd for @flags. Unless the system is persistent,
 *   the watch is disarmed before its callback runs, and the workload arms
 *   it again for the next delivery. A persistent system keeps it armed
 *   until io_disarm(); the workload then never re-arms.
 * - timer_arm() (re)schedules a one-shot timer @usecs µs from now;
 *   timer_cancel() guarantees no callback once it returns.
 * - run() dispatches until stop() is called from a callback.
 * - run_once() performs one iteration that does not block.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

typedef struct _BenchLoop  BenchLoop;
typedef struct _BenchIO    BenchIO;
typedef struct _BenchTimer BenchTimer;

enum {
  BENCH_READ  = 1 << 0,
  BENCH_WRITE = 1 << 1,
};

typedef void (*BenchIOFunc)    (BenchIO    *io,
                                unsigned    ready,
                                void       *data);
typedef void (*BenchTimerFunc) (BenchTimer *timer,
                                void       *data);

typedef struct
{
  const char *name;
  bool        persistent;
  /* Timers never fire before their due time as measured by the caller's
   * CLOCK_MONOTONIC; checked by the workloads where claimed. */
  bool        never_early;

  BenchLoop  *(*loop_new)     (void);
  void        (*loop_free)    (BenchLoop  *loop);
  void        (*run)          (BenchLoop  *loop);
  void        (*stop)         (BenchLoop  *loop);
  void        (*run_once)     (BenchLoop  *loop);
  /* Optional: the implementation actually in use, for the record. */
  const char *(*backend)      (BenchLoop  *loop);

  BenchIO    *(*io_new)       (BenchLoop  *loop,
                               int         fd,
                               BenchIOFunc func,
                               void       *data);
  void        (*io_arm)       (BenchIO    *io,
                               unsigned    flags);
  void        (*io_disarm)    (BenchIO    *io);
  void        (*io_free)      (BenchIO    *io);

  BenchTimer *(*timer_new)    (BenchLoop     *loop,
                               BenchTimerFunc func,
                               void          *data);
  void        (*timer_arm)    (BenchTimer *timer,
                               int64_t     usecs);
  void        (*timer_cancel) (BenchTimer *timer);
  void        (*timer_free)   (BenchTimer *timer);
} BenchSystem;

/* Milliseconds for loops whose timers only take whole milliseconds:
 * rounded up, so that they never fire before the requested delay. */
static inline uint64_t
bench_usec_to_msec_ceil (int64_t usecs)
{
  return (uint64_t) (usecs + 999) / 1000;
}

extern const BenchSystem bench_sys_iops_oneshot;
extern const BenchSystem bench_sys_iops_persistent;
extern const BenchSystem bench_sys_gsource;
extern const BenchSystem bench_sys_fdadd;
extern const BenchSystem bench_sys_libev;
extern const BenchSystem bench_sys_libev_cached;
extern const BenchSystem bench_sys_libevent;
extern const BenchSystem bench_sys_libuv;
extern const BenchSystem bench_sys_verto;
extern const BenchSystem bench_sys_epoll;

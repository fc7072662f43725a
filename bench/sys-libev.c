/* sys-libev.c — libev: ev_io stopped before each callback, started to re-arm
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdlib.h>

#include <ev.h>

#include "bench.h"

struct _BenchLoop
{
  struct ev_loop *ev;
};

typedef struct
{
  ev_io        watcher;   /* first: the callback gets a pointer to it */
  BenchLoop   *loop;
  int          fd;
  BenchIOFunc  func;
  void        *data;
} LibevIO;

typedef struct
{
  ev_timer        watcher;
  BenchLoop      *loop;
  BenchTimerFunc  func;
  void           *data;
} LibevTimer;

static void
libev_io_ready (struct ev_loop *ev,
                ev_io          *watcher,
                int             revents)
{
  LibevIO *self = (LibevIO *) watcher;
  unsigned ready = ((revents & EV_READ) ? BENCH_READ : 0) |
                   ((revents & EV_WRITE) ? BENCH_WRITE : 0);

  ev_io_stop (ev, watcher);
  self->func ((BenchIO *) self, ready, self->data);
}

static void
libev_timer_ready (struct ev_loop *ev,
                   ev_timer       *watcher,
                   int             revents)
{
  LibevTimer *self = (LibevTimer *) watcher;

  self->func ((BenchTimer *) self, self->data);
}

static BenchLoop *
libev_loop_new (void)
{
  BenchLoop *loop = calloc (1, sizeof (BenchLoop));

  loop->ev = ev_loop_new (EVFLAG_AUTO);
  return loop;
}

static void
libev_loop_free (BenchLoop *loop)
{
  ev_loop_destroy (loop->ev);
  free (loop);
}

static void
libev_run (BenchLoop *loop)
{
  ev_run (loop->ev, 0);
}

static void
libev_stop (BenchLoop *loop)
{
  ev_break (loop->ev, EVBREAK_ALL);
}

static void
libev_run_once (BenchLoop *loop)
{
  ev_run (loop->ev, EVRUN_NOWAIT);
}

static BenchIO *
libev_io_new (BenchLoop   *loop,
              int          fd,
              BenchIOFunc  func,
              void        *data)
{
  LibevIO *self = calloc (1, sizeof (LibevIO));

  self->loop = loop;
  self->fd = fd;
  self->func = func;
  self->data = data;
  ev_io_init (&self->watcher, libev_io_ready, fd, EV_READ);
  return (BenchIO *) self;
}

static void
libev_io_arm (BenchIO  *io,
              unsigned  flags)
{
  LibevIO *self = (LibevIO *) io;
  int events = ((flags & BENCH_READ) ? EV_READ : 0) | ((flags & BENCH_WRITE) ? EV_WRITE : 0);

  if (ev_is_active (&self->watcher))
    {
      if ((self->watcher.events & (EV_READ | EV_WRITE)) == events)
        return;
      ev_io_stop (self->loop->ev, &self->watcher);
    }
  ev_io_set (&self->watcher, self->fd, events);
  ev_io_start (self->loop->ev, &self->watcher);
}

static void
libev_io_disarm (BenchIO *io)
{
  LibevIO *self = (LibevIO *) io;

  ev_io_stop (self->loop->ev, &self->watcher);
}

static void
libev_io_free (BenchIO *io)
{
  libev_io_disarm (io);
  free (io);
}

static BenchTimer *
libev_timer_new (BenchLoop      *loop,
                 BenchTimerFunc  func,
                 void           *data)
{
  LibevTimer *self = calloc (1, sizeof (LibevTimer));

  self->loop = loop;
  self->func = func;
  self->data = data;
  ev_timer_init (&self->watcher, libev_timer_ready, 0., 0.);
  return (BenchTimer *) self;
}

static void
libev_timer_arm (BenchTimer *timer,
                 int64_t     usecs)
{
  LibevTimer *self = (LibevTimer *) timer;
  struct ev_loop *ev = self->loop->ev;

  ev_timer_stop (ev, &self->watcher);
  /* libev counts from the time cached at the start of the iteration;
   * refresh it so the timer cannot fire before the caller's due time. */
  ev_now_update (ev);
  ev_timer_set (&self->watcher, (double) usecs / 1e6, 0.);
  ev_timer_start (ev, &self->watcher);
}

/* libev's usual use: the time cached at the start of the iteration, read
 * once per loop iteration instead of once per arm. A timer armed late in an
 * iteration may then fire that much early by the wall clock; this driver
 * measures what that saves. */
static void
libev_cached_timer_arm (BenchTimer *timer,
                        int64_t     usecs)
{
  LibevTimer *self = (LibevTimer *) timer;
  struct ev_loop *ev = self->loop->ev;

  ev_timer_stop (ev, &self->watcher);
  ev_timer_set (&self->watcher, (double) usecs / 1e6, 0.);
  ev_timer_start (ev, &self->watcher);
}

static void
libev_timer_cancel (BenchTimer *timer)
{
  LibevTimer *self = (LibevTimer *) timer;

  ev_timer_stop (self->loop->ev, &self->watcher);
}

static void
libev_timer_free (BenchTimer *timer)
{
  libev_timer_cancel (timer);
  free (timer);
}

/* The two drivers differ only in how they arm a timer. */
#define LIBEV_SYSTEM(system_name, arm)       \
  {                                          \
    .name = system_name,                     \
    .loop_new = libev_loop_new,              \
    .loop_free = libev_loop_free,            \
    .run = libev_run,                        \
    .stop = libev_stop,                      \
    .run_once = libev_run_once,              \
    .io_new = libev_io_new,                  \
    .io_arm = libev_io_arm,                  \
    .io_disarm = libev_io_disarm,            \
    .io_free = libev_io_free,                \
    .timer_new = libev_timer_new,            \
    .timer_arm = arm,                        \
    .timer_cancel = libev_timer_cancel,      \
    .timer_free = libev_timer_free,          \
  }

const BenchSystem bench_sys_libev = LIBEV_SYSTEM ("libev", libev_timer_arm);
const BenchSystem bench_sys_libev_cached = LIBEV_SYSTEM ("libev-cached", libev_cached_timer_arm);

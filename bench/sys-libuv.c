/* sys-libuv.c — libuv: uv_poll_t stopped before each callback, started to
 * re-arm; uv_timer_t (whole milliseconds)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdlib.h>

#include <uv.h>

#include "bench.h"

struct _BenchLoop
{
  uv_loop_t uv;
};

typedef struct
{
  uv_poll_t    handle;    /* first: callbacks get a pointer to it */
  int          events;    /* UV_READABLE | UV_WRITABLE asked for */
  BenchIOFunc  func;
  void        *data;
} LibuvIO;

typedef struct
{
  uv_timer_t      handle;
  BenchTimerFunc  func;
  void           *data;
} LibuvTimer;

static void
libuv_io_ready (uv_poll_t *handle,
                int        status,
                int        events)
{
  LibuvIO *self = (LibuvIO *) handle;
  int watched = self->events;
  /* An error is reported as readiness for every watched direction, so the
   * workload's own read() or write() finds it. */
  int ready = status < 0 ? watched : (events & watched);

  uv_poll_stop (handle);
  self->events = 0;
  self->func ((BenchIO *) self,
              ((ready & UV_READABLE) ? BENCH_READ : 0) | ((ready & UV_WRITABLE) ? BENCH_WRITE : 0),
              self->data);
}

static void
libuv_timer_ready (uv_timer_t *handle)
{
  LibuvTimer *self = (LibuvTimer *) handle;

  self->func ((BenchTimer *) self, self->data);
}

static void
libuv_free_on_close (uv_handle_t *handle)
{
  free (handle);
}

static BenchLoop *
libuv_loop_new (void)
{
  BenchLoop *loop = calloc (1, sizeof (BenchLoop));

  uv_loop_init (&loop->uv);
  return loop;
}

static void
libuv_loop_free (BenchLoop *loop)
{
  /* Closed handles are only released by an iteration of the loop. */
  while (uv_loop_close (&loop->uv) == UV_EBUSY)
    uv_run (&loop->uv, UV_RUN_NOWAIT);
  free (loop);
}

static void
libuv_run (BenchLoop *loop)
{
  uv_run (&loop->uv, UV_RUN_DEFAULT);
}

static void
libuv_stop (BenchLoop *loop)
{
  uv_stop (&loop->uv);
}

static void
libuv_run_once (BenchLoop *loop)
{
  uv_run (&loop->uv, UV_RUN_NOWAIT);
}

static BenchIO *
libuv_io_new (BenchLoop   *loop,
              int          fd,
              BenchIOFunc  func,
              void        *data)
{
  LibuvIO *self = calloc (1, sizeof (LibuvIO));

  self->func = func;
  self->data = data;
  uv_poll_init (&loop->uv, &self->handle, fd);
  return (BenchIO *) self;
}

static void
libuv_io_arm (BenchIO  *io,
              unsigned  flags)
{
  LibuvIO *self = (LibuvIO *) io;
  int events = ((flags & BENCH_READ) ? UV_READABLE : 0) | ((flags & BENCH_WRITE) ? UV_WRITABLE : 0);

  if (self->events == events)
    return;
  self->events = events;
  uv_poll_start (&self->handle, events, libuv_io_ready);
}

static void
libuv_io_disarm (BenchIO *io)
{
  LibuvIO *self = (LibuvIO *) io;

  uv_poll_stop (&self->handle);
  self->events = 0;
}

static void
libuv_io_free (BenchIO *io)
{
  uv_close ((uv_handle_t *) io, libuv_free_on_close);
}

static BenchTimer *
libuv_timer_new (BenchLoop      *loop,
                 BenchTimerFunc  func,
                 void           *data)
{
  LibuvTimer *self = calloc (1, sizeof (LibuvTimer));

  self->func = func;
  self->data = data;
  uv_timer_init (&loop->uv, &self->handle);
  return (BenchTimer *) self;
}

static void
libuv_timer_arm (BenchTimer *timer,
                 int64_t     usecs)
{
  LibuvTimer *self = (LibuvTimer *) timer;

  /* libuv counts from the time cached at the start of the iteration;
   * refresh it so the timer cannot fire before the caller's due time. */
  uv_update_time (self->handle.loop);
  uv_timer_start (&self->handle, libuv_timer_ready, bench_usec_to_msec_ceil (usecs), 0);
}

static void
libuv_timer_cancel (BenchTimer *timer)
{
  uv_timer_stop (&((LibuvTimer *) timer)->handle);
}

static void
libuv_timer_free (BenchTimer *timer)
{
  uv_close ((uv_handle_t *) timer, libuv_free_on_close);
}

const BenchSystem bench_sys_libuv = {
  .name = "libuv",
  .loop_new = libuv_loop_new,
  .loop_free = libuv_loop_free,
  .run = libuv_run,
  .stop = libuv_stop,
  .run_once = libuv_run_once,
  .io_new = libuv_io_new,
  .io_arm = libuv_io_arm,
  .io_disarm = libuv_io_disarm,
  .io_free = libuv_io_free,
  .timer_new = libuv_timer_new,
  .timer_arm = libuv_timer_arm,
  .timer_cancel = libuv_timer_cancel,
  .timer_free = libuv_timer_free,
};

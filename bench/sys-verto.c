/* sys-verto.c — libverto on its GLib backend
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * libverto's one-shot events are non-persistent verto_ev objects, freed by
 * libverto after their callback: every arm is a verto_add_io() (with a new
 * GSource underneath) and every timer arm a verto_add_timeout() in whole
 * milliseconds. There is no way to re-arm an existing event.
 */
#include <stdlib.h>

#include <verto-glib.h>

#include "bench.h"

struct _BenchLoop
{
  verto_ctx    *ctx;
  GMainContext *context;   /* owned by ctx */
};

typedef struct
{
  verto_ev     *ev;        /* the current one-shot event, NULL when disarmed */
  BenchLoop    *loop;
  int           fd;
  BenchIOFunc   func;
  void         *data;
} VertoIO;

typedef struct
{
  verto_ev       *ev;
  BenchLoop      *loop;
  BenchTimerFunc  func;
  void           *data;
} VertoTimer;

static void
verto_io_ready (verto_ctx *ctx,
                verto_ev  *ev)
{
  VertoIO *self = verto_get_private (ev);
  verto_ev_flag state = verto_get_fd_state (ev);
  verto_ev_flag watched = verto_get_flags (ev) & (VERTO_EV_FLAG_IO_READ | VERTO_EV_FLAG_IO_WRITE);
  verto_ev_flag ready = (state & VERTO_EV_FLAG_IO_ERROR) ? watched : (state & watched);

  /* libverto frees @ev once this returns. */
  self->ev = NULL;
  self->func ((BenchIO *) self,
              ((ready & VERTO_EV_FLAG_IO_READ) ? BENCH_READ : 0) |
              ((ready & VERTO_EV_FLAG_IO_WRITE) ? BENCH_WRITE : 0),
              self->data);
}

static void
verto_timer_ready (verto_ctx *ctx,
                   verto_ev  *ev)
{
  VertoTimer *self = verto_get_private (ev);

  self->ev = NULL;
  self->func ((BenchTimer *) self, self->data);
}

static BenchLoop *
verto_loop_new (void)
{
  BenchLoop *loop = calloc (1, sizeof (BenchLoop));

  /* Our own context, so that run_once() can iterate it without blocking
   * (verto_run_once() blocks); libverto takes both references. */
  loop->context = g_main_context_new ();
  loop->ctx = verto_convert_glib (loop->context, g_main_loop_new (loop->context, FALSE));
  return loop;
}

static void
verto_loop_free (BenchLoop *loop)
{
  verto_free (loop->ctx);
  free (loop);
}

static void
verto_loop_run (BenchLoop *loop)
{
  verto_run (loop->ctx);
}

static void
verto_loop_stop (BenchLoop *loop)
{
  verto_break (loop->ctx);
}

static void
verto_loop_run_once (BenchLoop *loop)
{
  g_main_context_iteration (loop->context, FALSE);
}

static BenchIO *
verto_io_new (BenchLoop   *loop,
              int          fd,
              BenchIOFunc  func,
              void        *data)
{
  VertoIO *self = calloc (1, sizeof (VertoIO));

  self->loop = loop;
  self->fd = fd;
  self->func = func;
  self->data = data;
  return (BenchIO *) self;
}

static void
verto_io_disarm (BenchIO *io)
{
  VertoIO *self = (VertoIO *) io;

  if (self->ev != NULL)
    verto_del (self->ev);
  self->ev = NULL;
}

static void
verto_io_arm (BenchIO  *io,
              unsigned  flags)
{
  VertoIO *self = (VertoIO *) io;
  verto_ev_flag vflags = ((flags & BENCH_READ) ? VERTO_EV_FLAG_IO_READ : 0) |
                         ((flags & BENCH_WRITE) ? VERTO_EV_FLAG_IO_WRITE : 0);

  verto_io_disarm (io);
  self->ev = verto_add_io (self->loop->ctx, vflags, verto_io_ready, self->fd);
  verto_set_private (self->ev, self, NULL);
}

static void
verto_io_free (BenchIO *io)
{
  verto_io_disarm (io);
  free (io);
}

static BenchTimer *
verto_timer_new (BenchLoop      *loop,
                 BenchTimerFunc  func,
                 void           *data)
{
  VertoTimer *self = calloc (1, sizeof (VertoTimer));

  self->loop = loop;
  self->func = func;
  self->data = data;
  return (BenchTimer *) self;
}

static void
verto_timer_cancel (BenchTimer *timer)
{
  VertoTimer *self = (VertoTimer *) timer;

  if (self->ev != NULL)
    verto_del (self->ev);
  self->ev = NULL;
}

static void
verto_timer_arm (BenchTimer *timer,
                 int64_t     usecs)
{
  VertoTimer *self = (VertoTimer *) timer;

  verto_timer_cancel (timer);
  self->ev = verto_add_timeout (self->loop->ctx, VERTO_EV_FLAG_NONE, verto_timer_ready,
                                (time_t) bench_usec_to_msec_ceil (usecs));
  verto_set_private (self->ev, self, NULL);
}

static void
verto_timer_free (BenchTimer *timer)
{
  verto_timer_cancel (timer);
  free (timer);
}

const BenchSystem bench_sys_verto = {
  .name = "libverto-glib",
  .loop_new = verto_loop_new,
  .loop_free = verto_loop_free,
  .run = verto_loop_run,
  .stop = verto_loop_stop,
  .run_once = verto_loop_run_once,
  .io_new = verto_io_new,
  .io_arm = verto_io_arm,
  .io_disarm = verto_io_disarm,
  .io_free = verto_io_free,
  .timer_new = verto_timer_new,
  .timer_arm = verto_timer_arm,
  .timer_cancel = verto_timer_cancel,
  .timer_free = verto_timer_free,
};

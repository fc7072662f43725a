/* sys-iops.c — iops-glib through its public API only
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Events are IopsIOEvent / IopsTimerEvent subclasses overriding ready_r,
 * ready_w, ready_rw and ready: the fastest documented path (no signal
 * emission). The backend is whatever IOPS_GLIB_BACKEND selects; an unknown
 * name makes the library warn, which the driver turns into a failure.
 */
#include <iops-glib.h>

#include "bench.h"

struct _BenchLoop
{
  GMainContext *context;
  IopsGLibIOPS *glib_iops;
  IopsIOPS     *iops;       /* the same object, cast once */
};

/* -- fd watches --------------------------------------------------------- */

#define BENCH_TYPE_IOPS_IO (bench_iops_io_get_type ())
G_DECLARE_FINAL_TYPE (BenchIopsIO, bench_iops_io, BENCH, IOPS_IO, IopsIOEvent)

struct _BenchIopsIO
{
  IopsIOEvent  parent_instance;
  BenchLoop   *loop;
  BenchIOFunc  func;
  void        *data;
};

G_DEFINE_FINAL_TYPE (BenchIopsIO, bench_iops_io, IOPS_TYPE_IO_EVENT)

static void
bench_iops_io_ready_r (IopsIOEvent *event)
{
  BenchIopsIO *self = (BenchIopsIO *) event;

  self->func ((BenchIO *) self, BENCH_READ, self->data);
}

static void
bench_iops_io_ready_w (IopsIOEvent *event)
{
  BenchIopsIO *self = (BenchIopsIO *) event;

  self->func ((BenchIO *) self, BENCH_WRITE, self->data);
}

static void
bench_iops_io_ready_rw (IopsIOEvent *event)
{
  BenchIopsIO *self = (BenchIopsIO *) event;

  self->func ((BenchIO *) self, BENCH_READ | BENCH_WRITE, self->data);
}

static void
bench_iops_io_class_init (BenchIopsIOClass *klass)
{
  IopsIOEventClass *event_class = IOPS_IO_EVENT_CLASS (klass);

  event_class->ready_r = bench_iops_io_ready_r;
  event_class->ready_w = bench_iops_io_ready_w;
  event_class->ready_rw = bench_iops_io_ready_rw;
}

static void
bench_iops_io_init (BenchIopsIO *self)
{
}

/* -- timers ------------------------------------------------------------- */

#define BENCH_TYPE_IOPS_TIMER (bench_iops_timer_get_type ())
G_DECLARE_FINAL_TYPE (BenchIopsTimer, bench_iops_timer, BENCH, IOPS_TIMER, IopsTimerEvent)

struct _BenchIopsTimer
{
  IopsTimerEvent  parent_instance;
  BenchLoop      *loop;
  BenchTimerFunc  func;
  void           *data;
};

G_DEFINE_FINAL_TYPE (BenchIopsTimer, bench_iops_timer, IOPS_TYPE_TIMER_EVENT)

static void
bench_iops_timer_ready (IopsTimerEvent *event,
                        int             flags)
{
  BenchIopsTimer *self = (BenchIopsTimer *) event;

  self->func ((BenchTimer *) self, self->data);
}

static void
bench_iops_timer_class_init (BenchIopsTimerClass *klass)
{
  IOPS_TIMER_EVENT_CLASS (klass)->ready = bench_iops_timer_ready;
}

static void
bench_iops_timer_init (BenchIopsTimer *self)
{
}

/* -- the vtable --------------------------------------------------------- */

static BenchLoop *
loop_new (gboolean persistent)
{
  BenchLoop *loop = g_new0 (BenchLoop, 1);

  loop->context = g_main_context_new ();
  loop->glib_iops = iops_glib_iops_new (loop->context);
  iops_glib_iops_set_persistent (loop->glib_iops, persistent);
  loop->iops = IOPS_IOPS (loop->glib_iops);
  return loop;
}

static BenchLoop *
oneshot_loop_new (void)
{
  return loop_new (FALSE);
}

static BenchLoop *
persistent_loop_new (void)
{
  return loop_new (TRUE);
}

static void
iops_loop_free (BenchLoop *loop)
{
  g_object_unref (loop->glib_iops);
  g_main_context_unref (loop->context);
  g_free (loop);
}

static void
iops_run (BenchLoop *loop)
{
  iops_iops_start_watching (loop->iops);
}

static void
iops_stop (BenchLoop *loop)
{
  iops_iops_stop_watching (loop->iops);
}

static void
iops_run_once (BenchLoop *loop)
{
  g_main_context_iteration (loop->context, FALSE);
}

static const char *
iops_backend (BenchLoop *loop)
{
  return iops_glib_iops_get_backend (loop->glib_iops);
}

static BenchIO *
iops_io_new (BenchLoop   *loop,
             int          fd,
             BenchIOFunc  func,
             void        *data)
{
  BenchIopsIO *io = g_object_new (BENCH_TYPE_IOPS_IO, "fd", fd, NULL);

  io->loop = loop;
  io->func = func;
  io->data = data;
  return (BenchIO *) io;
}

static void
iops_io_arm (BenchIO  *io,
             unsigned  flags)
{
  BenchIopsIO *self = (BenchIopsIO *) io;
  IopsEventFlags want = ((flags & BENCH_READ) ? IOPS_READ_EVENT : 0) |
                        ((flags & BENCH_WRITE) ? IOPS_WRITE_EVENT : 0);

  iops_iops_update_event (self->loop->iops, (IopsIOEvent *) self,
                          IOPS_EVACTION_WATCH, want);
}

static void
iops_io_disarm (BenchIO *io)
{
  BenchIopsIO *self = (BenchIopsIO *) io;

  iops_iops_update_event (self->loop->iops, (IopsIOEvent *) self,
                          IOPS_EVACTION_UNWATCH, 0);
}

static void
iops_io_free (BenchIO *io)
{
  BenchIopsIO *self = (BenchIopsIO *) io;

  iops_iops_update_event (self->loop->iops, (IopsIOEvent *) self,
                          IOPS_EVACTION_CLEANUP, 0);
  g_object_unref (self);
}

static BenchTimer *
iops_timer_new (BenchLoop      *loop,
                BenchTimerFunc  func,
                void           *data)
{
  BenchIopsTimer *timer = g_object_new (BENCH_TYPE_IOPS_TIMER, NULL);

  timer->loop = loop;
  timer->func = func;
  timer->data = data;
  return (BenchTimer *) timer;
}

static void
iops_timer_arm (BenchTimer *timer,
                int64_t     usecs)
{
  BenchIopsTimer *self = (BenchIopsTimer *) timer;

  iops_iops_update_timer (self->loop->iops, (IopsTimerEvent *) self,
                          IOPS_EVACTION_WATCH, usecs);
}

static void
iops_timer_cancel (BenchTimer *timer)
{
  BenchIopsTimer *self = (BenchIopsTimer *) timer;

  iops_iops_update_timer (self->loop->iops, (IopsTimerEvent *) self,
                          IOPS_EVACTION_UNWATCH, 0);
}

static void
iops_timer_free (BenchTimer *timer)
{
  BenchIopsTimer *self = (BenchIopsTimer *) timer;

  iops_iops_update_timer (self->loop->iops, (IopsTimerEvent *) self,
                          IOPS_EVACTION_CLEANUP, 0);
  g_object_unref (self);
}

#define IOPS_SYSTEM_FUNCS              \
  .loop_free = iops_loop_free,         \
  .run = iops_run,                     \
  .stop = iops_stop,                   \
  .run_once = iops_run_once,           \
  .backend = iops_backend,             \
  .io_new = iops_io_new,               \
  .io_arm = iops_io_arm,               \
  .io_disarm = iops_io_disarm,         \
  .io_free = iops_io_free,             \
  .timer_new = iops_timer_new,         \
  .timer_arm = iops_timer_arm,         \
  .timer_cancel = iops_timer_cancel,   \
  .timer_free = iops_timer_free

const BenchSystem bench_sys_iops_oneshot = {
  .name = "iops-glib-oneshot",
  .never_early = true,
  .loop_new = oneshot_loop_new,
  IOPS_SYSTEM_FUNCS,
};

const BenchSystem bench_sys_iops_persistent = {
  .name = "iops-glib-persistent",
  .persistent = true,
  .never_early = true,
  .loop_new = persistent_loop_new,
  IOPS_SYSTEM_FUNCS,
};

/* sys-fdadd.c — GLib the quick way: a new GSource for every one-shot arm
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * g_unix_fd_add() per fd arm and g_timeout_add() per timer arm, each
 * callback returning G_SOURCE_REMOVE; cancelling is g_source_remove(). This
 * is the code most GLib programs contain, and the cost iops-glib's
 * keep-the-source design avoids. GLib timeouts take whole milliseconds.
 */
#include <glib.h>
#include <glib-unix.h>

#include "bench.h"

#define ERROR_CONDITIONS (G_IO_ERR | G_IO_HUP | G_IO_NVAL)

struct _BenchLoop
{
  GMainLoop *main_loop;
};

typedef struct
{
  int           fd;
  guint         id;        /* the current one-shot source, 0 when disarmed */
  GIOCondition  cond;
  BenchIOFunc   func;
  void         *data;
} FdAddIO;

typedef struct
{
  guint           id;
  BenchTimerFunc  func;
  void           *data;
} FdAddTimer;

static unsigned
condition_to_flags (GIOCondition cond)
{
  return ((cond & G_IO_IN) ? BENCH_READ : 0) | ((cond & G_IO_OUT) ? BENCH_WRITE : 0);
}

static gboolean
fdadd_io_ready (int           fd,
                GIOCondition  revents,
                gpointer      user_data)
{
  FdAddIO *self = user_data;
  unsigned watched = condition_to_flags (self->cond);
  unsigned ready = (revents & ERROR_CONDITIONS) ? watched
                                                : condition_to_flags (revents) & watched;

  self->id = 0;
  self->func ((BenchIO *) self, ready, self->data);
  return G_SOURCE_REMOVE;
}

static gboolean
fdadd_timer_ready (gpointer user_data)
{
  FdAddTimer *self = user_data;

  self->id = 0;
  self->func ((BenchTimer *) self, self->data);
  return G_SOURCE_REMOVE;
}

/* g_unix_fd_add() and g_timeout_add() attach to the global default
 * context, as in most programs; each run is a fresh process. */
static BenchLoop *
fdadd_loop_new (void)
{
  BenchLoop *loop = g_new0 (BenchLoop, 1);

  loop->main_loop = g_main_loop_new (NULL, FALSE);
  return loop;
}

static void
fdadd_loop_free (BenchLoop *loop)
{
  g_main_loop_unref (loop->main_loop);
  g_free (loop);
}

static void
fdadd_run (BenchLoop *loop)
{
  g_main_loop_run (loop->main_loop);
}

static void
fdadd_stop (BenchLoop *loop)
{
  g_main_loop_quit (loop->main_loop);
}

static void
fdadd_run_once (BenchLoop *loop)
{
  g_main_context_iteration (NULL, FALSE);
}

static BenchIO *
fdadd_io_new (BenchLoop   *loop,
              int          fd,
              BenchIOFunc  func,
              void        *data)
{
  FdAddIO *self = g_new0 (FdAddIO, 1);

  self->fd = fd;
  self->func = func;
  self->data = data;
  return (BenchIO *) self;
}

static void
fdadd_io_disarm (BenchIO *io)
{
  FdAddIO *self = (FdAddIO *) io;

  if (self->id != 0)
    g_source_remove (self->id);
  self->id = 0;
}

static void
fdadd_io_arm (BenchIO  *io,
              unsigned  flags)
{
  FdAddIO *self = (FdAddIO *) io;

  fdadd_io_disarm (io);
  self->cond = ((flags & BENCH_READ) ? G_IO_IN : 0) | ((flags & BENCH_WRITE) ? G_IO_OUT : 0);
  self->id = g_unix_fd_add (self->fd, self->cond, fdadd_io_ready, self);
}

static void
fdadd_io_free (BenchIO *io)
{
  fdadd_io_disarm (io);
  g_free (io);
}

static BenchTimer *
fdadd_timer_new (BenchLoop      *loop,
                 BenchTimerFunc  func,
                 void           *data)
{
  FdAddTimer *self = g_new0 (FdAddTimer, 1);

  self->func = func;
  self->data = data;
  return (BenchTimer *) self;
}

static void
fdadd_timer_cancel (BenchTimer *timer)
{
  FdAddTimer *self = (FdAddTimer *) timer;

  if (self->id != 0)
    g_source_remove (self->id);
  self->id = 0;
}

static void
fdadd_timer_arm (BenchTimer *timer,
                 int64_t     usecs)
{
  FdAddTimer *self = (FdAddTimer *) timer;

  fdadd_timer_cancel (timer);
  self->id = g_timeout_add ((guint) bench_usec_to_msec_ceil (usecs), fdadd_timer_ready, self);
}

static void
fdadd_timer_free (BenchTimer *timer)
{
  fdadd_timer_cancel (timer);
  g_free (timer);
}

const BenchSystem bench_sys_fdadd = {
  .name = "glib-fd-add",
  .loop_new = fdadd_loop_new,
  .loop_free = fdadd_loop_free,
  .run = fdadd_run,
  .stop = fdadd_stop,
  .run_once = fdadd_run_once,
  .io_new = fdadd_io_new,
  .io_arm = fdadd_io_arm,
  .io_disarm = fdadd_io_disarm,
  .io_free = fdadd_io_free,
  .timer_new = fdadd_timer_new,
  .timer_arm = fdadd_timer_arm,
  .timer_cancel = fdadd_timer_cancel,
  .timer_free = fdadd_timer_free,
};

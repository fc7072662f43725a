/* sys-gsource.c — GLib by hand: one persistent GSource per fd and per timer
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * What a careful GLib programmer writes without iops-glib: each fd gets one
 * GSource for its whole life (g_source_add_unix_fd once) and arming only
 * changes the GPollFD's events with g_source_modify_unix_fd. Careful means
 * that a delivery whose callback re-arms the same condition leaves the
 * GPollFD alone: with GLib 2.74, each g_source_modify_unix_fd() from a
 * callback signals the context's wake-up eventfd, a write() now and a
 * read() in the next iteration. Each timer is one GSource re-armed with
 * g_source_set_ready_time.
 */
#include <glib.h>

#include "bench.h"

#define ERROR_CONDITIONS (G_IO_ERR | G_IO_HUP | G_IO_NVAL)

struct _BenchLoop
{
  GMainContext *context;
  GMainLoop    *main_loop;
};

typedef struct
{
  GSource       source;
  gpointer      tag;
  GIOCondition  polled;    /* what the GPollFD asks for */
  GIOCondition  armed;     /* what the caller armed; 0 when disarmed */
  BenchIOFunc   func;
  void         *data;
} FdSource;

typedef struct
{
  GSource         source;
  BenchTimerFunc  func;
  void           *data;
} TimerSource;

static unsigned
condition_to_flags (GIOCondition cond)
{
  return ((cond & G_IO_IN) ? BENCH_READ : 0) | ((cond & G_IO_OUT) ? BENCH_WRITE : 0);
}

static void
fd_source_poll (FdSource     *self,
                GIOCondition  cond)
{
  if (self->polled == cond)
    return;
  g_source_modify_unix_fd (&self->source, self->tag, cond);
  self->polled = cond;
}

static gboolean
fd_source_dispatch (GSource     *source,
                    GSourceFunc  callback,
                    gpointer     user_data)
{
  FdSource *self = (FdSource *) source;
  GIOCondition revents = g_source_query_unix_fd (source, self->tag);
  unsigned watched = condition_to_flags (self->armed);
  unsigned ready = (revents & ERROR_CONDITIONS) ? watched
                                                : condition_to_flags (revents) & watched;

  /* Disarmed by another callback of this iteration: not ready any more. */
  if (ready == 0)
    return G_SOURCE_CONTINUE;

  /* One-shot: disarmed before the callback, which re-arms if it wants more.
   * Only if it does not is the GPollFD told to stop asking. */
  self->armed = 0;
  self->func ((BenchIO *) self, ready, self->data);
  if (self->armed == 0 && !g_source_is_destroyed (source))
    fd_source_poll (self, 0);
  return G_SOURCE_CONTINUE;
}

static GSourceFuncs fd_source_funcs = {
  .dispatch = fd_source_dispatch,
};

static gboolean
timer_source_dispatch (GSource     *source,
                       GSourceFunc  callback,
                       gpointer     user_data)
{
  TimerSource *self = (TimerSource *) source;

  g_source_set_ready_time (source, -1);
  self->func ((BenchTimer *) self, self->data);
  return G_SOURCE_CONTINUE;
}

static GSourceFuncs timer_source_funcs = {
  .dispatch = timer_source_dispatch,
};

static BenchLoop *
gsource_loop_new (void)
{
  BenchLoop *loop = g_new0 (BenchLoop, 1);

  loop->context = g_main_context_new ();
  loop->main_loop = g_main_loop_new (loop->context, FALSE);
  return loop;
}

static void
gsource_loop_free (BenchLoop *loop)
{
  g_main_loop_unref (loop->main_loop);
  g_main_context_unref (loop->context);
  g_free (loop);
}

static void
gsource_run (BenchLoop *loop)
{
  g_main_loop_run (loop->main_loop);
}

static void
gsource_stop (BenchLoop *loop)
{
  g_main_loop_quit (loop->main_loop);
}

static void
gsource_run_once (BenchLoop *loop)
{
  g_main_context_iteration (loop->context, FALSE);
}

static BenchIO *
gsource_io_new (BenchLoop   *loop,
                int          fd,
                BenchIOFunc  func,
                void        *data)
{
  GSource *source = g_source_new (&fd_source_funcs, sizeof (FdSource));
  FdSource *self = (FdSource *) source;

  self->func = func;
  self->data = data;
  self->tag = g_source_add_unix_fd (source, fd, 0);
  /* A callback may run a nested loop that must keep dispatching this fd. */
  g_source_set_can_recurse (source, TRUE);
  g_source_attach (source, loop->context);
  return (BenchIO *) self;
}

static void
gsource_io_arm (BenchIO  *io,
                unsigned  flags)
{
  FdSource *self = (FdSource *) io;

  self->armed = ((flags & BENCH_READ) ? G_IO_IN : 0) | ((flags & BENCH_WRITE) ? G_IO_OUT : 0);
  fd_source_poll (self, self->armed);
}

static void
gsource_io_disarm (BenchIO *io)
{
  FdSource *self = (FdSource *) io;

  self->armed = 0;
  fd_source_poll (self, 0);
}

static void
gsource_io_free (BenchIO *io)
{
  g_source_destroy ((GSource *) io);
  g_source_unref ((GSource *) io);
}

static BenchTimer *
gsource_timer_new (BenchLoop      *loop,
                   BenchTimerFunc  func,
                   void           *data)
{
  GSource *source = g_source_new (&timer_source_funcs, sizeof (TimerSource));
  TimerSource *self = (TimerSource *) source;

  self->func = func;
  self->data = data;
  g_source_set_can_recurse (source, TRUE);
  g_source_attach (source, loop->context);
  return (BenchTimer *) self;
}

static void
gsource_timer_arm (BenchTimer *timer,
                   int64_t     usecs)
{
  g_source_set_ready_time ((GSource *) timer, g_get_monotonic_time () + usecs);
}

static void
gsource_timer_cancel (BenchTimer *timer)
{
  g_source_set_ready_time ((GSource *) timer, -1);
}

static void
gsource_timer_free (BenchTimer *timer)
{
  g_source_destroy ((GSource *) timer);
  g_source_unref ((GSource *) timer);
}

const BenchSystem bench_sys_gsource = {
  .name = "glib-gsource",
  .loop_new = gsource_loop_new,
  .loop_free = gsource_loop_free,
  .run = gsource_run,
  .stop = gsource_stop,
  .run_once = gsource_run_once,
  .io_new = gsource_io_new,
  .io_arm = gsource_io_arm,
  .io_disarm = gsource_io_disarm,
  .io_free = gsource_io_free,
  .timer_new = gsource_timer_new,
  .timer_arm = gsource_timer_arm,
  .timer_cancel = gsource_timer_cancel,
  .timer_free = gsource_timer_free,
};

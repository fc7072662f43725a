/* sys-libevent.c — libevent: non-persistent events, event_add() to re-arm
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The base uses EVENT_BASE_FLAG_PRECISE_TIMER: by default libevent reads a
 * coarse clock on Linux, which would put whole jiffies into the timer
 * lateness figures.
 */
#include <stdlib.h>

#include <event2/event.h>

#include "bench.h"

struct _BenchLoop
{
  struct event_base *base;
};

typedef struct
{
  struct event *event;     /* created at the first arm, with its flags */
  BenchLoop    *loop;
  int           fd;
  short         what;
  BenchIOFunc   func;
  void         *data;
} LibeventIO;

typedef struct
{
  struct event   *event;
  BenchLoop      *loop;
  BenchTimerFunc  func;
  void           *data;
} LibeventTimer;

static void
libevent_io_ready (evutil_socket_t  fd,
                   short            what,
                   void            *user_data)
{
  LibeventIO *self = user_data;
  unsigned ready = ((what & EV_READ) ? BENCH_READ : 0) | ((what & EV_WRITE) ? BENCH_WRITE : 0);

  self->func ((BenchIO *) self, ready, self->data);
}

static void
libevent_timer_ready (evutil_socket_t  fd,
                      short            what,
                      void            *user_data)
{
  LibeventTimer *self = user_data;

  self->func ((BenchTimer *) self, self->data);
}

static BenchLoop *
libevent_loop_new (void)
{
  BenchLoop *loop = calloc (1, sizeof (BenchLoop));
  struct event_config *config = event_config_new ();

  event_config_set_flag (config, EVENT_BASE_FLAG_PRECISE_TIMER);
  loop->base = event_base_new_with_config (config);
  event_config_free (config);
  return loop;
}

static void
libevent_loop_free (BenchLoop *loop)
{
  event_base_free (loop->base);
  free (loop);
}

static void
libevent_run (BenchLoop *loop)
{
  event_base_loop (loop->base, 0);
}

static void
libevent_stop (BenchLoop *loop)
{
  event_base_loopbreak (loop->base);
}

static void
libevent_run_once (BenchLoop *loop)
{
  event_base_loop (loop->base, EVLOOP_NONBLOCK | EVLOOP_ONCE);
}

static BenchIO *
libevent_io_new (BenchLoop   *loop,
                 int          fd,
                 BenchIOFunc  func,
                 void        *data)
{
  LibeventIO *self = calloc (1, sizeof (LibeventIO));

  self->loop = loop;
  self->fd = fd;
  self->func = func;
  self->data = data;
  return (BenchIO *) self;
}

static void
libevent_io_arm (BenchIO  *io,
                 unsigned  flags)
{
  LibeventIO *self = (LibeventIO *) io;
  short what = (short) (((flags & BENCH_READ) ? EV_READ : 0) | ((flags & BENCH_WRITE) ? EV_WRITE : 0));

  if (self->event != NULL && self->what != what)
    {
      event_free (self->event);
      self->event = NULL;
    }
  if (self->event == NULL)
    {
      self->event = event_new (self->loop->base, self->fd, what, libevent_io_ready, self);
      self->what = what;
    }
  event_add (self->event, NULL);
}

static void
libevent_io_disarm (BenchIO *io)
{
  LibeventIO *self = (LibeventIO *) io;

  if (self->event != NULL)
    event_del (self->event);
}

static void
libevent_io_free (BenchIO *io)
{
  LibeventIO *self = (LibeventIO *) io;

  if (self->event != NULL)
    event_free (self->event);
  free (self);
}

static BenchTimer *
libevent_timer_new (BenchLoop      *loop,
                    BenchTimerFunc  func,
                    void           *data)
{
  LibeventTimer *self = calloc (1, sizeof (LibeventTimer));

  self->loop = loop;
  self->func = func;
  self->data = data;
  self->event = evtimer_new (loop->base, libevent_timer_ready, self);
  return (BenchTimer *) self;
}

static void
libevent_timer_arm (BenchTimer *timer,
                    int64_t     usecs)
{
  LibeventTimer *self = (LibeventTimer *) timer;
  struct timeval tv = { .tv_sec = usecs / 1000000, .tv_usec = usecs % 1000000 };

  /* Inside a callback libevent counts from the time cached at the start of
   * the iteration; refresh it so the timer cannot fire before the caller's
   * due time. */
  event_base_update_cache_time (self->loop->base);
  evtimer_add (self->event, &tv);
}

static void
libevent_timer_cancel (BenchTimer *timer)
{
  evtimer_del (((LibeventTimer *) timer)->event);
}

static void
libevent_timer_free (BenchTimer *timer)
{
  LibeventTimer *self = (LibeventTimer *) timer;

  event_free (self->event);
  free (self);
}

const BenchSystem bench_sys_libevent = {
  .name = "libevent",
  .loop_new = libevent_loop_new,
  .loop_free = libevent_loop_free,
  .run = libevent_run,
  .stop = libevent_stop,
  .run_once = libevent_run_once,
  .io_new = libevent_io_new,
  .io_arm = libevent_io_arm,
  .io_disarm = libevent_io_disarm,
  .io_free = libevent_io_free,
  .timer_new = libevent_timer_new,
  .timer_arm = libevent_timer_arm,
  .timer_cancel = libevent_timer_cancel,
  .timer_free = libevent_timer_free,
};

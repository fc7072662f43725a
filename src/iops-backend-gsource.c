/* iops-backend-gsource.c — one GSource per fd watch, one for all timers
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The portable backend. Each registered watch owns a GSource, created at its
 * first WATCH and kept until CLEANUP, with one GPollFD of its own that is
 * modified in place on every re-arm: re-arming allocates nothing and calls
 * nothing. An UNWATCH takes the GPollFD out of the poll set, as GLib would
 * otherwise report an error or hang-up on it again and again. Timers live in the
 * core's heap; one source wakes the context for the earliest of them.
 */
#include "config.h"

#include "iops-backend.h"

typedef struct
{
  IopsBackend   parent;
  IopsGLibIOPS *owner;
  GMainContext *context;
  GHashTable   *timer_sources;  /* priority → TimerSource, while it has timers */
} GSourceBackend;

typedef struct
{
  GSource      source;
  IopsWatch    watch;
  GPollFD      pfd;          /* ours (g_source_add_poll): GLib reads events
                              * and writes revents on every iteration */
  gboolean     polled;       /* pfd is in the poll set */
  int          priority;     /* of the source, cached off the re-arm path */
} WatchSource;

typedef struct
{
  GSource       source;
  IopsGLibIOPS *owner;
  int           priority;     /* fires the timers armed at this priority */
} TimerSource;

#define WATCH_SOURCE(w) ((WatchSource *) (void *) ((char *) (w) - G_STRUCT_OFFSET (WatchSource, watch)))

static inline GIOCondition
flags_to_condition (IopsEventFlags flags)
{
  return ((flags & IOPS_READ_EVENT) ? G_IO_IN : 0) |
         ((flags & IOPS_WRITE_EVENT) ? G_IO_OUT : 0);
}

static void
watch_source_unpoll (WatchSource *ws)
{
  if (!ws->polled)
    return;
  g_source_remove_poll (&ws->source, &ws->pfd);
  ws->polled = FALSE;
  ws->pfd.revents = 0;  /* GLib no longer updates it */
}

static gboolean
watch_source_check (GSource *source)
{
  WatchSource *ws = (WatchSource *) source;

  return ws->polled && ws->pfd.revents != 0;
}

static gboolean
watch_source_dispatch (GSource     *source,
                       GSourceFunc  callback,
                       gpointer     user_data)
{
  WatchSource *ws = (WatchSource *) source;
  GIOCondition revents = ws->pfd.revents;

  if (!ws->polled || revents == 0)
    return G_SOURCE_CONTINUE;  /* unwatched, or re-armed, since the poll */

  if (ws->watch.flags == 0)
    {
      /* Suspended and not re-armed: an error or hang-up would keep waking
       * it (or a nested loop run by the callback that disarmed it). */
      watch_source_unpoll (ws);
      return G_SOURCE_CONTINUE;
    }

  iops_glib_iops_deliver_io (&ws->watch, revents);

  /* A one-shot delivery left the GPollFD asking for readiness, so that a
   * callback re-arming the same flags costs nothing. If it did not re-arm,
   * stop asking now: only an error or a hang-up will still wake it. GLib's
   * reference keeps @ws valid even if the callback cleaned the watch up
   * (which leaves its flags at 0), so the usual re-arm is one load. */
  if (ws->watch.flags == 0 && !g_source_is_destroyed (source))
    ws->pfd.events = 0;
  return G_SOURCE_CONTINUE;
}

static GSourceFuncs watch_source_funcs = {
  .check = watch_source_check,
  .dispatch = watch_source_dispatch,
};

static IopsWatch *
gsource_watch_new (IopsBackend *backend)
{
  GSourceBackend *self = (GSourceBackend *) backend;
  GSource *source = g_source_new (&watch_source_funcs, sizeof (WatchSource));
  WatchSource *ws = (WatchSource *) source;

  ws->priority = g_source_get_priority (source);
  g_source_set_static_name (source, "IopsIOEvent");
  /* A nested start_watching() from a callback keeps dispatching this
   * source, and GLib does not rewrite its poll set around each dispatch. */
  g_source_set_can_recurse (source, TRUE);
  g_source_attach (source, self->context);
  return &ws->watch;
}

/* Any arm but the usual re-arm: a first one, another fd or priority. */
static G_GNUC_NO_INLINE void
watch_arm_slow (WatchSource    *ws,
                int             fd,
                GIOCondition    condition,
                int             priority)
{
  if (ws->polled && ws->pfd.fd != fd)
    watch_source_unpoll (ws);
  if (ws->priority != priority)
    {
      g_source_set_priority (&ws->source, priority);
      ws->priority = priority;
    }

  ws->pfd.events = condition;
  ws->pfd.revents = 0;
  if (!ws->polled)
    {
      ws->pfd.fd = fd;
      g_source_add_poll (&ws->source, &ws->pfd);
      ws->polled = TRUE;
    }
}

static void
gsource_watch_arm (IopsBackend    *backend,
                   IopsWatch      *watch,
                   int             fd,
                   IopsEventFlags  flags,
                   int             priority)
{
  WatchSource *ws = WATCH_SOURCE (watch);

  /* Re-arming is two stores. Readiness polled before this WATCH was for
   * what the event watched then, maybe another file with the same number:
   * the next poll tells. */
  if (G_LIKELY (ws->polled && ws->pfd.fd == fd && ws->priority == priority))
    {
      ws->pfd.events = flags_to_condition (flags);
      ws->pfd.revents = 0;
      return;
    }
  watch_arm_slow (ws, fd, flags_to_condition (flags), priority);
}

static void
gsource_watch_disarm (IopsBackend *backend,
                      IopsWatch   *watch)
{
  watch_source_unpoll (WATCH_SOURCE (watch));
}

static void
gsource_watch_free (IopsBackend *backend,
                    IopsWatch   *watch)
{
  WatchSource *ws = WATCH_SOURCE (watch);

  /* During the watch's own dispatch GLib holds a reference, so the
   * structure stays valid until that dispatch returns. */
  watch_source_unpoll (ws);
  g_source_destroy (&ws->source);
  g_source_unref (&ws->source);
}

static gboolean
timer_source_prepare (GSource *source,
                      int     *timeout)
{
  TimerSource *ts = (TimerSource *) source;
  gint64 next = iops_glib_iops_next_deadline (ts->owner, ts->priority);
  gint64 now;

  *timeout = -1;
  if (next < 0)
    return FALSE;

  now = g_get_monotonic_time ();
  if (next <= now)
    return TRUE;

  /* Round up: waking before the deadline would only cost another poll,
   * and a timer never fires early anyway. */
  *timeout = (int) MIN ((next - now + 999) / 1000, G_MAXINT);
  return FALSE;
}

static gboolean
timer_source_check (GSource *source)
{
  TimerSource *ts = (TimerSource *) source;
  gint64 next = iops_glib_iops_next_deadline (ts->owner, ts->priority);

  return next >= 0 && next <= g_get_monotonic_time ();
}

static gboolean
timer_source_dispatch (GSource     *source,
                       GSourceFunc  callback,
                       gpointer     user_data)
{
  TimerSource *ts = (TimerSource *) source;

  iops_glib_iops_fire_timers (ts->owner, ts->priority, g_get_monotonic_time ());
  return G_SOURCE_CONTINUE;
}

static GSourceFuncs timer_source_funcs = {
  .prepare = timer_source_prepare,
  .check = timer_source_check,
  .dispatch = timer_source_dispatch,
};

static void
gsource_timers_armed (IopsBackend *backend,
                      int          priority)
{
  GSourceBackend *self = (GSourceBackend *) backend;
  TimerSource *ts;

  /* prepare() reads the heap on every iteration, so arming needs no
   * rescheduling here — and no wake-up syscall. */
  if (g_hash_table_contains (self->timer_sources, GINT_TO_POINTER (priority)))
    return;

  ts = (TimerSource *) g_source_new (&timer_source_funcs, sizeof (TimerSource));
  ts->owner = self->owner;
  ts->priority = priority;
  g_source_set_static_name (&ts->source, "IopsTimerEvent");
  g_source_set_can_recurse (&ts->source, TRUE);
  g_source_set_priority (&ts->source, priority);
  g_source_attach (&ts->source, self->context);
  g_hash_table_insert (self->timer_sources, GINT_TO_POINTER (priority), ts);
}

static void
gsource_timers_idle (IopsBackend *backend,
                     int          priority)
{
  GSourceBackend *self = (GSourceBackend *) backend;

  /* Safe from inside the source's own dispatch: GLib holds it until then. */
  g_hash_table_remove (self->timer_sources, GINT_TO_POINTER (priority));
}

/* Watches make their sources at their first WATCH, and no fd: nothing to
 * prepare per priority, and nothing shared with another process. */
static void
gsource_use_priority (IopsBackend *backend,
                      int          priority)
{
}

static void
gsource_disposing (IopsBackend *backend)
{
}

static void
destroy_source (gpointer source)
{
  g_source_destroy (source);
  g_source_unref (source);
}

static IopsBackend *
gsource_create (IopsGLibIOPS *owner,
                GMainContext *context)
{
  GSourceBackend *self = g_new0 (GSourceBackend, 1);

  self->parent.klass = &iops_backend_gsource_class;
  self->owner = owner;
  self->context = g_main_context_ref (context);
  self->timer_sources = g_hash_table_new_full (NULL, NULL, NULL, destroy_source);
  return &self->parent;
}

static void
gsource_destroy (IopsBackend *backend)
{
  GSourceBackend *self = (GSourceBackend *) backend;

  g_hash_table_unref (self->timer_sources);
  g_main_context_unref (self->context);
  g_free (self);
}

const IopsBackendClass iops_backend_gsource_class = {
  .name = "gsource",
  .create = gsource_create,
  .destroy = gsource_destroy,
  .watch_new = gsource_watch_new,
  .watch_arm = gsource_watch_arm,
  .watch_disarm = gsource_watch_disarm,
  .watch_free = gsource_watch_free,
  .use_priority = gsource_use_priority,
  .timers_armed = gsource_timers_armed,
  .timers_idle = gsource_timers_idle,
  .disposing = gsource_disposing,
};

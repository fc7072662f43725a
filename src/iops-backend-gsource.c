/* iops-backend-gsource.c — one GSource per fd watch
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The portable backend. Each registration owns a GSource, created at its
 * first WATCH and kept until CLEANUP, with one GPollFD of its own that is
 * modified in place: re-arming allocates nothing and calls nothing. A
 * suspended watch keeps its GPollFD in the poll set, asking for nothing, so
 * that the usual re-arm is a store; an error or hang-up would still wake
 * it, and then it leaves the poll set. An UNWATCH takes it out at once.
 */
#include "config.h"

#include "iops-backend.h"

typedef struct
{
  IopsBackend   parent;
  GMainContext *context;
} GSourceBackend;

typedef struct
{
  GSource    source;
  IopsWatch *watch;     /* the core's registration, reported to */
  GPollFD    pfd;       /* ours (g_source_add_poll): GLib reads events and
                         * writes revents on every iteration */
  gboolean   polled;    /* pfd is in the poll set */
  gboolean   armed;     /* asking for pfd.events; FALSE when suspended */
  int        priority;  /* of the source, cached off the re-arm path */
} WatchSource;

static inline GIOCondition
flags_to_condition (IopsEventFlags flags)
{
  return ((flags & IOPS_READ_EVENT) ? G_IO_IN : 0) |
         ((flags & IOPS_WRITE_EVENT) ? G_IO_OUT : 0);
}

static void
watch_unpoll (WatchSource *ws)
{
  ws->armed = FALSE;
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
  if (!ws->armed)
    {
      /* Suspended and not re-armed: an error or hang-up would keep waking
       * it (or a nested loop run by the callback that suspended it). */
      watch_unpoll (ws);
      return G_SOURCE_CONTINUE;
    }
  /* The core tells us whatever the callback changed; if it cleaned the
   * watch up, GLib's reference keeps @ws valid until this returns. */
  iops_watch_deliver (ws->watch, revents);
  return G_SOURCE_CONTINUE;
}

static GSourceFuncs watch_source_funcs = {
  .check = watch_source_check,
  .dispatch = watch_source_dispatch,
};

static gpointer
gsource_watch_new (IopsBackend *backend,
                   IopsWatch   *watch)
{
  GSourceBackend *self = (GSourceBackend *) backend;
  GSource *source = g_source_new (&watch_source_funcs, sizeof (WatchSource));
  WatchSource *ws = (WatchSource *) source;

  ws->watch = watch;
  ws->priority = g_source_get_priority (source);
  g_source_set_static_name (source, "IopsIOEvent");
  /* A nested start_watching() from a callback keeps dispatching this
   * source, and GLib does not rewrite its poll set around each dispatch. */
  g_source_set_can_recurse (source, TRUE);
  g_source_attach (source, self->context);
  return ws;
}

static void
gsource_watch_free (IopsBackend *backend,
                    gpointer     poll)
{
  WatchSource *ws = poll;

  watch_unpoll (ws);
  g_source_destroy (&ws->source);
  g_source_unref (&ws->source);
}

/* Any arm but the usual re-arm: a first one, another fd or priority. */
static G_GNUC_NO_INLINE void
watch_arm_slow (WatchSource  *ws,
                int           fd,
                GIOCondition  condition,
                int           priority)
{
  if (ws->polled && ws->pfd.fd != fd)
    watch_unpoll (ws);
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
  ws->armed = TRUE;
}

static void
gsource_watch_arm (IopsBackend    *backend,
                   gpointer        poll,
                   int             fd,
                   IopsEventFlags  flags,
                   int             priority)
{
  WatchSource *ws = poll;

  /* Re-arming is stores. Readiness polled before this WATCH was for what
   * the event watched then, maybe another file with the same number: the
   * next poll tells. */
  if (G_LIKELY (ws->polled && ws->pfd.fd == fd && ws->priority == priority))
    {
      ws->pfd.events = flags_to_condition (flags);
      ws->pfd.revents = 0;
      ws->armed = TRUE;
      return;
    }
  watch_arm_slow (ws, fd, flags_to_condition (flags), priority);
}

static void
gsource_watch_disarm (IopsBackend *backend,
                      gpointer     poll)
{
  watch_unpoll (poll);
}

static void
gsource_watch_suspend (IopsBackend *backend,
                       gpointer     poll)
{
  WatchSource *ws = poll;

  ws->armed = FALSE;
  ws->pfd.events = 0;
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

static IopsBackend *
gsource_create (GMainContext *context)
{
  GSourceBackend *self = g_new0 (GSourceBackend, 1);

  self->parent.klass = &iops_backend_gsource_class;
  self->context = g_main_context_ref (context);
  return &self->parent;
}

static void
gsource_destroy (IopsBackend *backend)
{
  GSourceBackend *self = (GSourceBackend *) backend;

  /* Every watch was freed first, with its source. */
  g_main_context_unref (self->context);
  g_free (self);
}

const IopsBackendClass iops_backend_gsource_class = {
  .name = "gsource",
  .precise_timers = FALSE,
  .create = gsource_create,
  .destroy = gsource_destroy,
  .use_priority = gsource_use_priority,
  .disposing = gsource_disposing,
  .watch_new = gsource_watch_new,
  .watch_free = gsource_watch_free,
  .watch_arm = gsource_watch_arm,
  .watch_disarm = gsource_watch_disarm,
  .watch_suspend = gsource_watch_suspend,
};

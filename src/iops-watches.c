/* iops-watches.c — the fd watch registrations of one IopsGLibIOPS
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * One rule of ownership: a registration holds one reference on its event
 * from the event's first WATCH until its CLEANUP or the IOPS's disposal
 * (rule 6 allows it), armed or not. So re-arming takes no reference, and
 * no thread that drops the consumer's reference can finalize a registered
 * event. A delivery holds one more around the callback, which may CLEANUP.
 *
 * A registration cleaned up from inside its own callback is unlinked at
 * once, but its memory stays until the callback returns (delivering > 0):
 * the delivery then sees that it is gone.
 */
#include "config.h"

#include "iops-backend.h"
#include "iops-context.h"
#include "iops-io-event-private.h"
#include "iops-watches.h"

#define ERROR_CONDITIONS (G_IO_ERR | G_IO_HUP | G_IO_NVAL)

struct _IopsWatches
{
  GMainContext *context;
  IopsBackend  *backend;
  IopsWatch    *list;      /* every registration */
  guint         n_armed;
};

/* Small, and from GSlice: there is one per watched fd, idle ones included,
 * and a slice has no malloc header. */
struct _IopsWatch
{
  IopsWatch   *prev, *next;
  IopsWatches *set;
  IopsIOEvent *event;             /* the registration's reference */
  gpointer     poll;              /* the backend's state for it */
  guint        flags        : 3;  /* IopsEventFlags armed; 0 when disarmed */
  guint        persistent   : 1;  /* the mode of its latest WATCH */
  guint        unregistered : 1;  /* cleaned up while delivering */
  guint        delivering   : 27; /* its callbacks running, nested ones too */
};

IopsWatches *
iops_watches_new (GMainContext *context,
                  IopsBackend  *backend)
{
  IopsWatches *self = g_new0 (IopsWatches, 1);

  self->context = g_main_context_ref (context);
  self->backend = backend;
  return self;
}

guint
iops_watches_n_armed (IopsWatches *self)
{
  return self->n_armed;
}

/* -- registrations ------------------------------------------------------ */

static IopsWatch *
watch_register (IopsWatches *self,
                IopsIOEvent *event)
{
  IopsWatch *watch = g_slice_new0 (IopsWatch);

  watch->set = self;
  watch->event = g_object_ref (event);
  watch->poll = self->backend->klass->watch_new (self->backend, watch);
  watch->next = self->list;
  if (self->list != NULL)
    self->list->prev = watch;
  self->list = watch;
  iops_io_event_set_registration (event, watch, NULL);
  return watch;
}

/* Forgets @watch; returns the event reference it held, for the caller to
 * drop once everything is consistent (dropping it may run any code). */
static IopsIOEvent *
watch_unregister (IopsWatches *self,
                  IopsWatch   *watch)
{
  IopsIOEvent *event = g_steal_pointer (&watch->event);

  if (watch->flags != 0)
    self->n_armed--;
  watch->flags = 0;
  iops_io_event_set_registration (event, NULL, NULL);
  if (watch->prev != NULL)
    watch->prev->next = watch->next;
  else
    self->list = watch->next;
  if (watch->next != NULL)
    watch->next->prev = watch->prev;
  self->backend->klass->watch_free (self->backend, g_steal_pointer (&watch->poll));
  if (watch->delivering > 0)
    watch->unregistered = TRUE;
  else
    g_slice_free (IopsWatch, watch);
  return event;
}

/* The registration of @event with this set, in *@watch (NULL if none);
 * FALSE, with a critical, when another IOPS has it. */
static gboolean
watch_lookup (IopsWatches  *self,
              IopsIOEvent  *event,
              IopsWatch   **watch)
{
  *watch = iops_io_event_get_registration (event);
  if (G_LIKELY (*watch == NULL || (*watch)->set == self))
    return TRUE;
  g_critical ("%s: this IopsIOEvent is registered with another IOPS; "
              "clean it up there first", G_STRFUNC);
  return FALSE;
}

void
iops_watches_watch (IopsWatches    *self,
                    IopsIOEvent    *event,
                    int             fd,
                    IopsEventFlags  flags,
                    int             priority,
                    gboolean        persistent)
{
  IopsWatch *watch;

  if (!watch_lookup (self, event, &watch))
    return;
  if (watch == NULL)
    {
      if (!iops_context_check_thread (self->context, G_STRFUNC))
        return;
      watch = watch_register (self, event);
    }
  if (watch->flags == 0)
    self->n_armed++;
  watch->flags = flags;
  watch->persistent = !!persistent;
  self->backend->klass->watch_arm (self->backend, watch->poll, fd, flags, priority);
}

void
iops_watches_unwatch (IopsWatches *self,
                      IopsIOEvent *event)
{
  IopsWatch *watch;

  if (!watch_lookup (self, event, &watch) || watch == NULL)
    return;
  self->backend->klass->watch_disarm (self->backend, watch->poll);
  if (watch->flags != 0)
    self->n_armed--;
  watch->flags = 0;
}

void
iops_watches_cleanup (IopsWatches *self,
                      IopsIOEvent *event)
{
  IopsWatch *watch;

  if (watch_lookup (self, event, &watch) && watch != NULL)
    g_object_unref (watch_unregister (self, watch));
}

void
iops_watches_free (IopsWatches *self,
                   GPtrArray   *held)
{
  while (self->list != NULL)
    g_ptr_array_add (held, watch_unregister (self, self->list));
  g_assert (self->n_armed == 0);
  g_main_context_unref (self->context);
  g_free (self);
}

/* -- delivery ----------------------------------------------------------- */

static inline IopsEventFlags
ready_flags (IopsEventFlags watched,
             GIOCondition   revents)
{
  IopsEventFlags ready = 0;

  if (revents & ERROR_CONDITIONS)
    return watched;
  if (revents & G_IO_IN)
    ready |= IOPS_READ_EVENT;
  if (revents & G_IO_OUT)
    ready |= IOPS_WRITE_EVENT;
  return ready & watched;
}

/* Rule 2: exactly one of ready_r, ready_w, ready_rw. */
static inline void
call_ready (IopsIOEvent    *event,
            IopsEventFlags  ready)
{
  IopsIOEventClass *klass = IOPS_IO_EVENT_GET_CLASS (event);

  if (ready == IOPS_READ_EVENT)
    klass->ready_r (event);
  else if (ready == IOPS_WRITE_EVENT)
    klass->ready_w (event);
  else
    klass->ready_rw (event);
}

gboolean
iops_watch_deliver (IopsWatch    *watch,
                    GIOCondition  revents)
{
  IopsWatches *self = watch->set;
  IopsIOEvent *event = watch->event;
  IopsEventFlags ready = ready_flags (watch->flags, revents);

  if (ready == 0)
    return TRUE;

  /* Rule 3: a one-shot watch is disarmed before its callback, in the
   * backend too (a nested loop run by the callback must not see it ready
   * again); so is one whose fd is invalid, in either mode. An error or
   * hang-up would be reported again at once: that one stops now. */
  if (!watch->persistent || (revents & G_IO_NVAL))
    {
      watch->flags = 0;
      self->n_armed--;
      if (revents & ERROR_CONDITIONS)
        self->backend->klass->watch_disarm (self->backend, watch->poll);
      else
        self->backend->klass->watch_suspend (self->backend, watch->poll);
    }

  g_object_ref (event);
  watch->delivering++;
  call_ready (event, ready);
  watch->delivering--;
  g_object_unref (event);

  /* The callback may have cleaned the watch up or disposed the IOPS. */
  if (watch->unregistered)
    {
      if (watch->delivering == 0)
        g_slice_free (IopsWatch, watch);
      return FALSE;
    }
  return TRUE;
}

/* iops-timers.c — the timer registrations of one IopsGLibIOPS
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * One rule of ownership: a registration holds one reference on its timer
 * event from the first WATCH until CLEANUP or disposal (rule 6 allows it),
 * armed or not; so arming and cancelling take no reference, and no thread
 * dropping the consumer's reference can finalize a registered timer. A
 * firing holds one more reference around ready(), which may CLEANUP.
 *
 * The registration itself (IopsTimer) may outlive its CLEANUP while queue
 * nodes still name it, stale: the last node to go frees it.
 */
#include "config.h"

#include "iops-context.h"
#include "iops-timer-event-private.h"
#include "iops-timer-queue.h"
#include "iops-timers.h"

struct _IopsTimers
{
  GMainContext   *context;
  gboolean        precise;
  GHashTable     *queues;     /* priority → IopsTimerQueue, while in use */
  IopsTimerQueue *current;    /* of the priority later WATCHes use, or NULL */
  int             priority;
  IopsTimer      *list;       /* every registration */
  guint64         seq;        /* of the latest WATCH */
  guint           n_armed;
};

IopsTimers *
iops_timers_new (GMainContext *context,
                 gboolean      precise)
{
  IopsTimers *self = g_new0 (IopsTimers, 1);

  self->context = g_main_context_ref (context);
  self->precise = precise;
  self->queues = g_hash_table_new (NULL, NULL);
  self->priority = G_PRIORITY_DEFAULT;
  return self;
}

/* -- queues ------------------------------------------------------------- */

static IopsTimerQueue *
queue_for_current (IopsTimers *self)
{
  if (G_UNLIKELY (self->current == NULL))
    {
      self->current = iops_timer_queue_new (self, self->context, self->priority, self->precise);
      g_hash_table_insert (self->queues, GINT_TO_POINTER (self->priority), self->current);
    }
  return self->current;
}

/* A queue with nothing armed goes, unless later WATCHes will use it. */
static void
queue_release_if_idle (IopsTimers     *self,
                       IopsTimerQueue *queue)
{
  if (queue == self->current || iops_timer_queue_n_live (queue) > 0)
    return;
  g_hash_table_remove (self->queues, GINT_TO_POINTER (iops_timer_queue_priority (queue)));
  iops_timer_queue_destroy (queue);
}

void
iops_timers_queue_idle (IopsTimers     *self,
                        IopsTimerQueue *queue)
{
  queue_release_if_idle (self, queue);
}

void
iops_timers_use_priority (IopsTimers *self,
                          int         priority)
{
  IopsTimerQueue *old = self->current;

  self->priority = priority;
  self->current = g_hash_table_lookup (self->queues, GINT_TO_POINTER (priority));
  if (old != NULL && old != self->current)
    queue_release_if_idle (self, old);
}

/* -- registrations ------------------------------------------------------ */

static IopsTimer *
timer_register (IopsTimers     *self,
                IopsTimerEvent *event)
{
  IopsTimer *timer = g_slice_new0 (IopsTimer);

  timer->set = self;
  timer->event = g_object_ref (event);
  timer->next = self->list;
  if (self->list != NULL)
    self->list->prev = timer;
  self->list = timer;
  iops_timer_event_set_registration (event, timer, NULL);
  return timer;
}

/* The registration of @event with this set; NULL if it has none, and NULL
 * with a critical if another IOPS has it. */
static IopsTimer *
timer_lookup (IopsTimers     *self,
              IopsTimerEvent *event,
              gboolean       *foreign)
{
  IopsTimer *timer = iops_timer_event_get_registration (event);

  *foreign = timer != NULL && timer->set != self;
  if (G_UNLIKELY (*foreign))
    {
      g_critical ("%s: this IopsTimerEvent is registered with another IOPS; "
                  "clean it up there first", G_STRFUNC);
      return NULL;
    }
  return timer;
}

void
iops_timers_free_timer (IopsTimer *timer)
{
  g_slice_free (IopsTimer, timer);
}

/* Takes @timer out of its queue, if armed: its node stays, stale. */
static void
timer_disarm (IopsTimer *timer)
{
  IopsTimerQueue *queue = timer->queue;

  if (queue == NULL)
    return;
  timer->queue = NULL;
  timer->seq = 0;
  timer->set->n_armed--;
  iops_timer_queue_stale (queue);
  queue_release_if_idle (timer->set, queue);
}

/* Forgets @timer; returns the event reference it held. */
static IopsTimerEvent *
timer_unregister (IopsTimers *self,
                  IopsTimer  *timer)
{
  IopsTimerEvent *event = g_steal_pointer (&timer->event);

  timer_disarm (timer);
  iops_timer_event_set_registration (event, NULL, NULL);
  if (timer->prev != NULL)
    timer->prev->next = timer->next;
  else
    self->list = timer->next;
  if (timer->next != NULL)
    timer->next->prev = timer->prev;
  timer->unregistered = TRUE;
  if (timer->n_nodes == 0)
    g_slice_free (IopsTimer, timer);
  return event;
}

void
iops_timers_arm (IopsTimers     *self,
                 IopsTimerEvent *event,
                 gint64          usecs)
{
  gboolean foreign;
  IopsTimer *timer = timer_lookup (self, event, &foreign);
  IopsTimerQueue *queue, *old;
  gint64 now;

  if (timer == NULL)
    {
      if (foreign || !iops_context_check_thread (self->context, G_STRFUNC))
        return;
      timer = timer_register (self, event);
    }

  /* Rule 13: a timer takes the priority in force at its latest WATCH. */
  queue = queue_for_current (self);
  old = timer->queue;
  if (old == NULL)
    self->n_armed++;
  else
    {
      timer->seq = 0;  /* rescheduled: its node is stale */
      iops_timer_queue_stale (old);
    }

  now = g_get_monotonic_time ();
  timer->queue = queue;
  timer->seq = ++self->seq;
  timer->n_nodes++;
  iops_timer_queue_push (queue, timer, usecs > G_MAXINT64 - now ? G_MAXINT64 : now + usecs,
                         timer->seq);
  if (old != NULL && old != queue)
    queue_release_if_idle (self, old);
}

void
iops_timers_unwatch (IopsTimers     *self,
                     IopsTimerEvent *event)
{
  gboolean foreign;
  IopsTimer *timer = timer_lookup (self, event, &foreign);

  if (timer != NULL)
    timer_disarm (timer);
}

void
iops_timers_cleanup (IopsTimers     *self,
                     IopsTimerEvent *event)
{
  gboolean foreign;
  IopsTimer *timer = timer_lookup (self, event, &foreign);

  if (timer != NULL)
    g_object_unref (timer_unregister (self, timer));
}

guint
iops_timers_n_armed (IopsTimers *self)
{
  return self->n_armed;
}

guint64
iops_timers_last_seq (IopsTimers *self)
{
  return self->seq;
}

/* Its live node left the queue, which counted it already. Rule 7: the
 * timer is disarmed before the call, so ready() may arm it again. */
void
iops_timers_fire (IopsTimer *timer)
{
  IopsTimerEvent *event = g_object_ref (timer->event);

  timer->queue = NULL;
  timer->seq = 0;
  timer->set->n_armed--;
  iops_timers_node_gone (timer);  /* cannot free it: it is registered */
  IOPS_TIMER_EVENT_GET_CLASS (event)->ready (event, 0);
  g_object_unref (event);
}

void
iops_timers_free (IopsTimers *self,
                  GPtrArray  *held)
{
  GHashTableIter iter;
  gpointer queue;

  /* The queues first: their nodes name the registrations. */
  g_hash_table_iter_init (&iter, self->queues);
  while (g_hash_table_iter_next (&iter, NULL, &queue))
    {
      g_hash_table_iter_remove (&iter);
      iops_timer_queue_destroy (queue);
    }
  self->current = NULL;
  while (self->list != NULL)
    {
      IopsTimer *timer = self->list;

      /* Disarmed already: the queue counted the timer out, not us. */
      timer->queue = NULL;
      if (timer->seq != 0)
        self->n_armed--;
      timer->seq = 0;
      g_ptr_array_add (held, timer_unregister (self, timer));
    }
  g_assert (self->n_armed == 0);
  g_hash_table_unref (self->queues);
  g_main_context_unref (self->context);
  g_free (self);
}

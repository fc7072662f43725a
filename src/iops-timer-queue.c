/* iops-timer-queue.c — the armed timers of one priority, as a GSource
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>
#include <unistd.h>
#ifdef HAVE_TIMERFD
#include <sys/timerfd.h>
#endif

#include "iops-timer-heap.h"
#include "iops-timer-queue.h"

/* Cancelling is O(1): the node stays, stale. Stale nodes go when they
 * surface, all at once when nothing is armed any more, and before the heap
 * would grow to make room while they are at least as many as the live
 * ones: so the heap grows to less than four nodes per timer ever armed at
 * once, and each node is dropped once. */

#define TFD_UNKNOWN (-2)  /* what the timerfd is set to is not known */

struct _IopsTimerQueue
{
  GSource        source;
  IopsTimers    *owner;
  int            priority;
  IopsTimerHeap  heap;
  guint          n_live;
  int            tfd;           /* -1: milliseconds from GLib's poll */
  GPollFD        tfd_poll;
  gint64         tfd_deadline;  /* what the timerfd is set to, -1 unset */
};

static inline gboolean
node_is_live (const IopsTimerNode *node)
{
  return node->seq == ((IopsTimer *) node->item)->seq;
}

static gboolean
keep_live (const IopsTimerNode *node,
           gpointer             data)
{
  return node_is_live (node);
}

static gboolean
drop_node (const IopsTimerNode *node,
           gpointer             data)
{
  iops_timers_node_gone (node->item);
  return TRUE;
}

static void
drop_all (IopsTimerQueue *self)
{
  for (guint i = 0; i < self->heap.len; i++)
    iops_timers_node_gone (self->heap.nodes[i].item);
  self->heap.len = 0;
}

/* The first live node, dropping the stale ones above it; NULL if none. */
static const IopsTimerNode *
first_live (IopsTimerQueue *self)
{
  const IopsTimerNode *top;
  IopsTimerNode stale;

  while ((top = iops_timer_heap_peek (&self->heap)) != NULL && !node_is_live (top))
    {
      iops_timer_heap_pop (&self->heap, &stale);
      iops_timers_node_gone (stale.item);
    }
  return top;
}

static void
timerfd_set (IopsTimerQueue *self,
             gint64          deadline)
{
#ifdef HAVE_TIMERFD
  struct itimerspec its;

  if (self->tfd < 0 || self->tfd_deadline == deadline)
    return;
  memset (&its, 0, sizeof its);
  if (deadline >= 0)
    {
      /* 0 would disarm; g_get_monotonic_time() is CLOCK_MONOTONIC. */
      gint64 at = MAX (deadline, 1);

      its.it_value.tv_sec = at / G_USEC_PER_SEC;
      its.it_value.tv_nsec = (at % G_USEC_PER_SEC) * 1000;
    }
  self->tfd_deadline = timerfd_settime (self->tfd, TFD_TIMER_ABSTIME, &its, NULL) == 0
                       ? deadline : TFD_UNKNOWN;
#endif
}

static gboolean
queue_prepare (GSource *source,
               int     *timeout)
{
  IopsTimerQueue *self = (IopsTimerQueue *) source;
  const IopsTimerNode *first = first_live (self);
  gint64 now;

  *timeout = -1;
  if (first == NULL)
    {
      timerfd_set (self, -1);
      return FALSE;
    }
  /* The iteration's cached time: older than now, so never early. */
  now = g_source_get_time (source);
  if (first->deadline <= now)
    return TRUE;
  if (self->tfd >= 0)
    timerfd_set (self, first->deadline);
  else
    /* Rounded up: waking early would only cost another poll. */
    *timeout = (int) MIN ((first->deadline - now + 999) / 1000, G_MAXINT);
  return FALSE;
}

static gboolean
queue_check (GSource *source)
{
  IopsTimerQueue *self = (IopsTimerQueue *) source;
  const IopsTimerNode *first;

  /* A timerfd that fired stays readable until it is set again. */
  if (self->tfd >= 0 && self->tfd_poll.revents != 0)
    self->tfd_deadline = TFD_UNKNOWN;
  first = first_live (self);
  return first != NULL && first->deadline <= g_get_monotonic_time ();
}

static gboolean
queue_dispatch (GSource     *source,
                GSourceFunc  callback,
                gpointer     user_data)
{
  IopsTimerQueue *self = (IopsTimerQueue *) source;
  /* Timers armed from inside these callbacks wait for the next dispatch,
   * so one re-armed with 0 µs cannot starve the rest of the context. */
  guint64 limit = iops_timers_last_seq (self->owner);
  gint64 now = g_get_monotonic_time ();
  const IopsTimerNode *first;
  IopsTimerNode due;

  while ((first = first_live (self)) != NULL && first->deadline <= now && first->seq <= limit)
    {
      iops_timer_heap_pop (&self->heap, &due);
      self->n_live--;
      iops_timers_fire (due.item);
      /* The callback may have disposed the IOPS, which destroys us. */
      if (g_source_is_destroyed (source))
        return G_SOURCE_REMOVE;
    }
  if (self->n_live == 0)
    iops_timers_queue_idle (self->owner, self);
  return G_SOURCE_CONTINUE;
}

static void
queue_finalize (GSource *source)
{
  IopsTimerQueue *self = (IopsTimerQueue *) source;

  iops_timer_heap_clear (&self->heap);
  if (self->tfd >= 0)
    close (self->tfd);
}

static GSourceFuncs queue_funcs = {
  .prepare = queue_prepare,
  .check = queue_check,
  .dispatch = queue_dispatch,
  .finalize = queue_finalize,
};

IopsTimerQueue *
iops_timer_queue_new (IopsTimers   *owner,
                      GMainContext *context,
                      int           priority,
                      gboolean      precise)
{
  IopsTimerQueue *self = (IopsTimerQueue *) g_source_new (&queue_funcs, sizeof (IopsTimerQueue));

  self->owner = owner;
  self->priority = priority;
  self->tfd = -1;
  self->tfd_deadline = -1;
#ifdef HAVE_TIMERFD
  /* Without one (EMFILE too), timers wait in whole milliseconds. */
  if (precise)
    self->tfd = timerfd_create (CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (self->tfd >= 0)
    {
      self->tfd_poll.fd = self->tfd;
      self->tfd_poll.events = G_IO_IN;
      g_source_add_poll (&self->source, &self->tfd_poll);
    }
#endif
  g_source_set_static_name (&self->source, "IopsTimerEvent");
  g_source_set_priority (&self->source, priority);
  /* A nested start_watching() from a callback keeps firing timers. */
  g_source_set_can_recurse (&self->source, TRUE);
  g_source_attach (&self->source, context);
  return self;
}

void
iops_timer_queue_destroy (IopsTimerQueue *self)
{
  drop_all (self);
  self->n_live = 0;
  g_source_destroy (&self->source);
  g_source_unref (&self->source);
}

int
iops_timer_queue_priority (IopsTimerQueue *self)
{
  return self->priority;
}

guint
iops_timer_queue_n_live (IopsTimerQueue *self)
{
  return self->n_live;
}

void
iops_timer_queue_push (IopsTimerQueue *self,
                       IopsTimer      *timer,
                       gint64          deadline,
                       guint64         seq)
{
  IopsTimerNode node = { deadline, seq, timer };

  if (G_UNLIKELY (self->heap.len == self->heap.allocated) &&
      self->heap.len - self->n_live >= self->n_live)
    iops_timer_heap_filter (&self->heap, keep_live, drop_node, NULL);
  iops_timer_heap_push (&self->heap, &node);
  self->n_live++;
}

void
iops_timer_queue_stale (IopsTimerQueue *self)
{
  /* With nothing armed any more, no order is left to keep. */
  if (--self->n_live == 0)
    drop_all (self);
}

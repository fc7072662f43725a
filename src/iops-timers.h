/* iops-timers.h — the timer registrations of one IopsGLibIOPS
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Ownership: a registration holds one reference on its IopsTimerEvent from
 * the first WATCH until CLEANUP or disposal; a firing holds one more around
 * ready(). Armed timers wait in the queue of their priority (one GSource per
 * priority in use, iops-timer-queue.c).
 */
#pragma once

#include "iops-glib.h"

G_BEGIN_DECLS

typedef struct _IopsTimers     IopsTimers;
typedef struct _IopsTimer      IopsTimer;
typedef struct _IopsTimerQueue IopsTimerQueue;

struct _IopsTimer
{
  IopsTimer      *prev, *next;   /* the registrations of its IopsTimers */
  IopsTimers     *set;
  IopsTimerEvent *event;         /* the registration's reference */
  IopsTimerQueue *queue;         /* armed in it, or NULL */
  guint64         seq;           /* of its latest WATCH while armed, else 0 */
  guint           n_nodes;       /* queue nodes naming it, live or stale */
  gboolean        unregistered;  /* CLEANUP came; freed once n_nodes is 0 */
};

/* @precise: wake at the exact microsecond (a timerfd) rather than in GLib's
 * whole milliseconds. */
IopsTimers *iops_timers_new          (GMainContext   *context,
                                      gboolean        precise);
/* Disarms and forgets every timer, appending the events' references to
 * @held for the caller to drop once it is consistent. No callback. */
void        iops_timers_free         (IopsTimers     *self,
                                      GPtrArray      *held);

void        iops_timers_arm          (IopsTimers     *self,
                                      IopsTimerEvent *event,
                                      gint64          usecs);
void        iops_timers_unwatch      (IopsTimers     *self,
                                      IopsTimerEvent *event);
void        iops_timers_cleanup      (IopsTimers     *self,
                                      IopsTimerEvent *event);

/* Later WATCHes use @priority (rule 13). */
void        iops_timers_use_priority (IopsTimers     *self,
                                      int             priority);
guint       iops_timers_n_armed      (IopsTimers     *self);

/* Queue → core. */
guint64     iops_timers_last_seq     (IopsTimers     *self);
void        iops_timers_fire         (IopsTimer      *timer);
void        iops_timers_free_timer   (IopsTimer      *timer);

/* One queue node naming @timer is gone; the last one frees a registration
 * that CLEANUP left. Inline: queues drop stale nodes by the thousand. */
static inline void
iops_timers_node_gone (IopsTimer *timer)
{
  if (--timer->n_nodes == 0 && G_UNLIKELY (timer->unregistered))
    iops_timers_free_timer (timer);
}
void        iops_timers_queue_idle   (IopsTimers     *self,
                                      IopsTimerQueue *queue);

G_END_DECLS

/* iops-timer-queue.h — the armed timers of one priority, as a GSource
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The one timer source of both backends: it wakes the context for the
 * earliest deadline — at the exact microsecond through a timerfd where
 * there is one and the IOPS asks for it, else rounded up to GLib's
 * milliseconds — and fires what is due, in deadline order.
 *
 * Cancelling is O(1): a timer's node stays in the heap, stale, until it
 * surfaces or until stale nodes outnumber live ones, when one pass drops
 * them all. A node is live while its sequence is its timer's.
 */
#pragma once

#include "iops-timers.h"

G_BEGIN_DECLS

IopsTimerQueue *iops_timer_queue_new      (IopsTimers     *owner,
                                           GMainContext   *context,
                                           int             priority,
                                           gboolean        precise);
/* Drops every node and destroys the source; safe from inside its own
 * dispatch, which stops. */
void            iops_timer_queue_destroy  (IopsTimerQueue *self);

int             iops_timer_queue_priority (IopsTimerQueue *self);
guint           iops_timer_queue_n_live   (IopsTimerQueue *self);

/* @timer is armed here now, due at @deadline, with sequence @seq. */
void            iops_timer_queue_push     (IopsTimerQueue *self,
                                           IopsTimer      *timer,
                                           gint64          deadline,
                                           guint64         seq);
/* A node of this queue went stale: its timer was cancelled or armed
 * again. */
void            iops_timer_queue_stale    (IopsTimerQueue *self);

G_END_DECLS

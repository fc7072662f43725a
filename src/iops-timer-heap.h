/* iops-timer-heap.h — armed timers ordered by deadline, then by arm order
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "iops-glib-iops-private.h"

G_BEGIN_DECLS

#define IOPS_TIMER_NOT_QUEUED G_MAXUINT

struct _IopsTimer
{
  IopsTimer      *prev, *next;  /* the owner's list of registrations */
  IopsGLibIOPS   *owner;
  IopsTimerEvent *event;        /* strong reference while armed */
  gint64          deadline;     /* monotonic µs */
  guint64         seq;          /* order of the latest WATCH, breaks ties */
  IopsTimerHeap  *heap;         /* the queue it is armed in, or NULL */
  guint           heap_index;   /* IOPS_TIMER_NOT_QUEUED when disarmed */
};

/* The armed timers of one source priority. */
struct _IopsTimerHeap
{
  int         priority;
  guint       firing;     /* running fire_timers() loops over it */
  IopsTimer **items;
  guint       len;
  guint       allocated;
};

void       iops_timer_heap_clear  (IopsTimerHeap *heap);
/* Queues @timer, or moves it if it is queued in @heap already. */
void       iops_timer_heap_insert (IopsTimerHeap *heap,
                                   IopsTimer     *timer);
void       iops_timer_heap_remove (IopsTimerHeap *heap,
                                   IopsTimer     *timer);

static inline IopsTimer *
iops_timer_heap_peek (const IopsTimerHeap *heap)
{
  return heap->len > 0 ? heap->items[0] : NULL;
}

static inline gboolean
iops_timer_is_queued (const IopsTimer *timer)
{
  return timer->heap_index != IOPS_TIMER_NOT_QUEUED;
}

G_END_DECLS

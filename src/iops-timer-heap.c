/* iops-timer-heap.c — a binary min-heap of timers
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Each timer knows its index, so cancelling and rescheduling are O(log n)
 * and, once the array has grown to the number of timers, allocate nothing.
 */
#include "config.h"

#include "iops-timer-heap.h"

static inline gboolean
timer_before (const IopsTimer *a,
              const IopsTimer *b)
{
  if (a->deadline != b->deadline)
    return a->deadline < b->deadline;
  return a->seq < b->seq;
}

static inline void
heap_place (IopsTimerHeap *heap,
            guint          index,
            IopsTimer     *timer)
{
  heap->items[index] = timer;
  timer->heap_index = index;
}

static void
sift_up (IopsTimerHeap *heap,
         guint          index)
{
  IopsTimer *timer = heap->items[index];

  while (index > 0)
    {
      guint parent = (index - 1) / 2;

      if (!timer_before (timer, heap->items[parent]))
        break;
      heap_place (heap, index, heap->items[parent]);
      index = parent;
    }
  heap_place (heap, index, timer);
}

static void
sift_down (IopsTimerHeap *heap,
           guint          index)
{
  IopsTimer *timer = heap->items[index];

  for (;;)
    {
      guint child = 2 * index + 1;

      if (child >= heap->len)
        break;
      if (child + 1 < heap->len && timer_before (heap->items[child + 1], heap->items[child]))
        child++;
      if (!timer_before (heap->items[child], timer))
        break;
      heap_place (heap, index, heap->items[child]);
      index = child;
    }
  heap_place (heap, index, timer);
}

/* Restores the order around @index after its item changed. */
static void
heap_fix (IopsTimerHeap *heap,
          guint          index)
{
  if (index > 0 && timer_before (heap->items[index], heap->items[(index - 1) / 2]))
    sift_up (heap, index);
  else
    sift_down (heap, index);
}

void
iops_timer_heap_insert (IopsTimerHeap *heap,
                        IopsTimer     *timer)
{
  if (iops_timer_is_queued (timer))
    {
      heap_fix (heap, timer->heap_index);
      return;
    }

  if (heap->len == heap->allocated)
    {
      heap->allocated = MAX (16, heap->allocated * 2);
      heap->items = g_renew (IopsTimer *, heap->items, heap->allocated);
    }
  heap_place (heap, heap->len++, timer);
  sift_up (heap, timer->heap_index);
}

void
iops_timer_heap_remove (IopsTimerHeap *heap,
                        IopsTimer     *timer)
{
  guint index = timer->heap_index;
  IopsTimer *last;

  g_assert (index < heap->len && heap->items[index] == timer);

  timer->heap_index = IOPS_TIMER_NOT_QUEUED;
  last = heap->items[--heap->len];
  if (last == timer)
    return;
  heap_place (heap, index, last);
  heap_fix (heap, index);
}

void
iops_timer_heap_clear (IopsTimerHeap *heap)
{
  for (guint i = 0; i < heap->len; i++)
    heap->items[i]->heap_index = IOPS_TIMER_NOT_QUEUED;
  g_clear_pointer (&heap->items, g_free);
  heap->len = heap->allocated = 0;
}

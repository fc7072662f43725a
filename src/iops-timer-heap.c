/* iops-timer-heap.c — a 4-ary min-heap of inline nodes
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Four children per node, as in libev: half the depth of a binary heap, and
 * the children of a node side by side in memory. The array only grows, to
 * the most nodes ever held, so pushing allocates nothing in a steady state.
 */
#include "config.h"

#include "iops-timer-heap.h"

#define ARITY 4

static inline gboolean
node_before (const IopsTimerNode *a,
             const IopsTimerNode *b)
{
  return a->deadline < b->deadline || (a->deadline == b->deadline && a->seq < b->seq);
}

static void
sift_up (IopsTimerHeap *heap,
         guint          index)
{
  IopsTimerNode node = heap->nodes[index];

  while (index > 0)
    {
      guint parent = (index - 1) / ARITY;

      if (!node_before (&node, &heap->nodes[parent]))
        break;
      heap->nodes[index] = heap->nodes[parent];
      index = parent;
    }
  heap->nodes[index] = node;
}

static void
sift_down (IopsTimerHeap *heap,
           guint          index)
{
  IopsTimerNode node = heap->nodes[index];

  for (;;)
    {
      guint first = index * ARITY + 1;
      guint last = MIN (first + ARITY, heap->len);
      guint best = index;
      const IopsTimerNode *best_node = &node;

      for (guint child = first; child < last; child++)
        if (node_before (&heap->nodes[child], best_node))
          best = child, best_node = &heap->nodes[child];
      if (best == index)
        break;
      heap->nodes[index] = heap->nodes[best];
      index = best;
    }
  heap->nodes[index] = node;
}

void
iops_timer_heap_push (IopsTimerHeap       *heap,
                      const IopsTimerNode *node)
{
  if (G_UNLIKELY (heap->len == heap->allocated))
    {
      heap->allocated = MAX (16, heap->allocated * 2);
      heap->nodes = g_renew (IopsTimerNode, heap->nodes, heap->allocated);
    }
  heap->nodes[heap->len++] = *node;
  sift_up (heap, heap->len - 1);
}

gboolean
iops_timer_heap_pop (IopsTimerHeap *heap,
                     IopsTimerNode *node)
{
  if (heap->len == 0)
    return FALSE;
  *node = heap->nodes[0];
  if (--heap->len > 0)
    {
      heap->nodes[0] = heap->nodes[heap->len];
      sift_down (heap, 0);
    }
  return TRUE;
}

void
iops_timer_heap_filter (IopsTimerHeap     *heap,
                        IopsTimerNodeFunc  keep,
                        IopsTimerNodeFunc  drop,
                        gpointer           data)
{
  guint kept = 0;

  for (guint i = 0; i < heap->len; i++)
    {
      if (keep (&heap->nodes[i], data))
        heap->nodes[kept++] = heap->nodes[i];
      else
        drop (&heap->nodes[i], data);
    }
  heap->len = kept;
  /* Floyd: sift down every parent, the last one first. */
  for (guint i = kept / ARITY + 1; i-- > 0;)
    if (i < kept)
      sift_down (heap, i);
}

void
iops_timer_heap_clear (IopsTimerHeap *heap)
{
  g_clear_pointer (&heap->nodes, g_free);
  heap->len = heap->allocated = 0;
}

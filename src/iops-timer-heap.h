/* iops-timer-heap.h — deadlines in a 4-ary min-heap of inline nodes
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Each node holds its deadline and sequence next to the pointer it orders,
 * so sifting compares neighbouring memory, four children to a cache line
 * or two, and never follows a pointer. Nodes only enter at the bottom and
 * leave at the top (or all at once, through iops_timer_heap_filter()): a
 * cancelled timer's node stays until it surfaces, so nothing outside the
 * heap tracks where a node is.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct
{
  gint64   deadline;  /* monotonic µs */
  guint64  seq;       /* breaks ties: the order of the WATCHes */
  gpointer item;
} IopsTimerNode;

typedef struct
{
  IopsTimerNode *nodes;
  guint          len;
  guint          allocated;
} IopsTimerHeap;

void     iops_timer_heap_clear  (IopsTimerHeap       *heap);
void     iops_timer_heap_push   (IopsTimerHeap       *heap,
                                 const IopsTimerNode *node);
/* Removes the first node into *@node; FALSE when the heap is empty. */
gboolean iops_timer_heap_pop    (IopsTimerHeap       *heap,
                                 IopsTimerNode       *node);

/* Keeps the nodes @keep accepts, hands the others to @drop, and restores
 * the order: O(n). */
typedef gboolean (*IopsTimerNodeFunc) (const IopsTimerNode *node,
                                       gpointer             data);
void     iops_timer_heap_filter (IopsTimerHeap       *heap,
                                 IopsTimerNodeFunc    keep,
                                 IopsTimerNodeFunc    drop,
                                 gpointer             data);

static inline const IopsTimerNode *
iops_timer_heap_peek (const IopsTimerHeap *heap)
{
  return heap->len > 0 ? &heap->nodes[0] : NULL;
}

G_END_DECLS

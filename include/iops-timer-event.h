/* iops-timer-event.h — one timer
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(IOPS_GLIB_INSIDE) && !defined(IOPS_GLIB_COMPILATION)
# error "Only <iops-glib.h> can be included directly."
#endif

#include <glib-object.h>

#include "iops-version-macros.h"

G_BEGIN_DECLS

#define IOPS_TYPE_TIMER_EVENT (iops_timer_event_get_type ())

IOPS_AVAILABLE_IN_ALL
G_DECLARE_DERIVABLE_TYPE (IopsTimerEvent, iops_timer_event, IOPS, TIMER_EVENT, GObject)

/**
 * IopsTimerEventClass:
 * @parent_class: the parent class
 * @ready: the timer fired; @flags is always 0. The default emits
 *   [signal@Iops.TimerEvent::ready].
 *
 * The virtual methods of [class@Iops.TimerEvent].
 *
 * Since: 1.0
 */
struct _IopsTimerEventClass
{
  GObjectClass parent_class;

  void (*ready) (IopsTimerEvent *self,
                 int             flags);
};

IOPS_AVAILABLE_IN_ALL
IopsTimerEvent *iops_timer_event_new   (void);
IOPS_AVAILABLE_IN_ALL
void            iops_timer_event_ready (IopsTimerEvent *self,
                                        int             flags);

G_END_DECLS

/* iops-timer-event-private.h — the registration an IOPS keeps on a timer
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "iops-glib-iops-private.h"

G_BEGIN_DECLS

/* Where the registration pointer sits in an IopsTimerEvent instance; set
 * at class initialization, before any instance exists. */
extern gssize iops_timer_event_timer_offset;

/* The IopsGLibIOPS registration of @self, or NULL: inline, as every arm
 * and cancel reads it. */
static inline IopsTimer *
iops_timer_event_get_timer (IopsTimerEvent *self)
{
  return *(IopsTimer **) G_STRUCT_MEMBER_P (self, iops_timer_event_timer_offset);
}

void       iops_timer_event_set_timer (IopsTimerEvent *self,
                                       IopsTimer      *timer);

G_END_DECLS

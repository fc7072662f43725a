/* iops-timer-event-private.h — the registration an IOPS keeps on a timer
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "iops-glib-iops-private.h"

G_BEGIN_DECLS

IopsTimer *iops_timer_event_get_timer (IopsTimerEvent *self);
void       iops_timer_event_set_timer (IopsTimerEvent *self,
                                       IopsTimer      *timer);

G_END_DECLS

/* iops-timer-event-private.h — what an IOPS keeps on a timer event
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "iops-glib.h"

G_BEGIN_DECLS

/* One slot, for the registration of the IOPS that watches @self, if any.
 * @destroy, if not NULL, runs should the event be finalized with the slot
 * still set; an IOPS that holds a reference while registered never lets
 * that happen. */
gpointer iops_timer_event_get_registration (IopsTimerEvent *self);
void     iops_timer_event_set_registration (IopsTimerEvent *self,
                                            gpointer        registration,
                                            GDestroyNotify  destroy);

G_END_DECLS

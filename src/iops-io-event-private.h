/* iops-io-event-private.h — the registration an IOPS keeps on an event
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "iops-glib-iops-private.h"

G_BEGIN_DECLS

/* The IopsGLibIOPS registration of @self, or NULL. Stored on the event so
 * that every WATCH finds it without a lookup. */
IopsWatch *iops_io_event_get_watch (IopsIOEvent *self);
void       iops_io_event_set_watch (IopsIOEvent *self,
                                    IopsWatch   *watch);

G_END_DECLS

/* iops-io-event-private.h — the registration an IOPS keeps on an event
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "iops-glib-iops-private.h"

G_BEGIN_DECLS

/* Where the registration pointer sits in an IopsIOEvent instance; set at
 * class initialization, before any instance exists. */
extern gssize iops_io_event_watch_offset;

/* The IopsGLibIOPS registration of @self, or NULL. Stored on the event so
 * that every WATCH finds it without a lookup — inline, as every re-arm
 * reads it. */
static inline IopsWatch *
iops_io_event_get_watch (IopsIOEvent *self)
{
  return *(IopsWatch **) G_STRUCT_MEMBER_P (self, iops_io_event_watch_offset);
}

void       iops_io_event_set_watch (IopsIOEvent *self,
                                    IopsWatch   *watch);

G_END_DECLS

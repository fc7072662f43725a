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

/* The default `fileno`, and where the fd it returns sits. */
extern gssize iops_io_event_fd_offset;
int iops_io_event_real_fileno (IopsIOEvent *self);

/* `fileno` as every WATCH reads it: the default one without a call. */
static inline int
iops_io_event_read_fileno (IopsIOEvent *self)
{
  IopsIOEventClass *klass = IOPS_IO_EVENT_GET_CLASS (self);

  if (G_LIKELY (klass->fileno == iops_io_event_real_fileno))
    return *(int *) G_STRUCT_MEMBER_P (self, iops_io_event_fd_offset);
  return klass->fileno (self);
}

G_END_DECLS

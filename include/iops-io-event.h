/* iops-io-event.h — one file descriptor watch
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

#define IOPS_TYPE_IO_EVENT (iops_io_event_get_type ())

IOPS_AVAILABLE_IN_ALL
G_DECLARE_DERIVABLE_TYPE (IopsIOEvent, iops_io_event, IOPS, IO_EVENT, GObject)

/**
 * IopsIOEventClass:
 * @parent_class: the parent class
 * @fileno: returns the fd to watch; the default returns [property@Iops.IOEvent:fd]
 * @ready_r: the fd is readable (or failed); the default emits
 *   [signal@Iops.IOEvent::ready] with %IOPS_READ_EVENT
 * @ready_w: the fd is writable (or failed); the default emits
 *   [signal@Iops.IOEvent::ready] with %IOPS_WRITE_EVENT
 * @ready_rw: the fd is readable and writable (or failed); the default emits
 *   [signal@Iops.IOEvent::ready] with %IOPS_RW_EVENT
 *
 * The virtual methods of [class@Iops.IOEvent]. Subclasses override the
 * `ready_*` methods to be called directly, which is the fastest path.
 *
 * Since: 1.0
 */
struct _IopsIOEventClass
{
  GObjectClass parent_class;

  int  (*fileno)   (IopsIOEvent *self);
  void (*ready_r)  (IopsIOEvent *self);
  void (*ready_w)  (IopsIOEvent *self);
  void (*ready_rw) (IopsIOEvent *self);
};

IOPS_AVAILABLE_IN_ALL
IopsIOEvent *iops_io_event_new      (int fd);
IOPS_AVAILABLE_IN_ALL
int          iops_io_event_get_fd   (IopsIOEvent *self);
IOPS_AVAILABLE_IN_ALL
void         iops_io_event_set_fd   (IopsIOEvent *self,
                                     int          fd);
IOPS_AVAILABLE_IN_ALL
int          iops_io_event_fileno   (IopsIOEvent *self);
IOPS_AVAILABLE_IN_ALL
void         iops_io_event_ready_r  (IopsIOEvent *self);
IOPS_AVAILABLE_IN_ALL
void         iops_io_event_ready_w  (IopsIOEvent *self);
IOPS_AVAILABLE_IN_ALL
void         iops_io_event_ready_rw (IopsIOEvent *self);

G_END_DECLS

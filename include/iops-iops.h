/* iops-iops.h — the IOPS interface consumers program against
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(IOPS_GLIB_INSIDE) && !defined(IOPS_GLIB_COMPILATION)
# error "Only <iops-glib.h> can be included directly."
#endif

#include <glib-object.h>

#include "iops-version-macros.h"
#include "iops-enums.h"
#include "iops-io-event.h"
#include "iops-timer-event.h"

G_BEGIN_DECLS

#define IOPS_TYPE_IOPS (iops_iops_get_type ())

IOPS_AVAILABLE_IN_ALL
G_DECLARE_INTERFACE (IopsIOPS, iops_iops, IOPS, IOPS, GObject)

/**
 * IopsIOPSInterface:
 * @parent_iface: the parent interface
 * @update_event: watch, unwatch or clean up an fd watch
 * @update_timer: arm, cancel or clean up a timer
 * @io_event_factory: create a new fd watch object; optional, the default
 *   returns a plain [class@Iops.IOEvent]
 * @timer_event_factory: create a new timer object; optional, the default
 *   returns a plain [class@Iops.TimerEvent]
 * @start_watching: run the event loop until stopped or until nothing is armed
 * @stop_watching: end the innermost running level of @start_watching
 *
 * The virtual methods of the IOPS contract. @update_event, @update_timer,
 * @start_watching and @stop_watching must be implemented.
 *
 * Since: 1.0
 */
struct _IopsIOPSInterface
{
  GTypeInterface parent_iface;

  void            (*update_event)        (IopsIOPS       *self,
                                          IopsIOEvent    *event,
                                          IopsEvAction    action,
                                          IopsEventFlags  flags);
  void            (*update_timer)        (IopsIOPS       *self,
                                          IopsTimerEvent *timer,
                                          IopsEvAction    action,
                                          gint64          usecs);
  IopsIOEvent    *(*io_event_factory)    (IopsIOPS       *self);
  IopsTimerEvent *(*timer_event_factory) (IopsIOPS       *self);
  void            (*start_watching)      (IopsIOPS       *self);
  void            (*stop_watching)       (IopsIOPS       *self);
};

IOPS_AVAILABLE_IN_ALL
void            iops_iops_update_event        (IopsIOPS       *self,
                                               IopsIOEvent    *event,
                                               IopsEvAction    action,
                                               IopsEventFlags  flags);
IOPS_AVAILABLE_IN_ALL
void            iops_iops_update_timer        (IopsIOPS       *self,
                                               IopsTimerEvent *timer,
                                               IopsEvAction    action,
                                               gint64          usecs);
IOPS_AVAILABLE_IN_ALL
IopsIOEvent    *iops_iops_io_event_factory    (IopsIOPS       *self);
IOPS_AVAILABLE_IN_ALL
IopsTimerEvent *iops_iops_timer_event_factory (IopsIOPS       *self);
IOPS_AVAILABLE_IN_ALL
void            iops_iops_start_watching      (IopsIOPS       *self);
IOPS_AVAILABLE_IN_ALL
void            iops_iops_stop_watching       (IopsIOPS       *self);

G_END_DECLS

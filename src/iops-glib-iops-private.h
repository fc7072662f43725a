/* iops-glib-iops-private.h — what backends and events call into
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "iops-glib.h"

G_BEGIN_DECLS

typedef struct _IopsWatch IopsWatch;
typedef struct _IopsTimer IopsTimer;
typedef struct _IopsTimerHeap IopsTimerHeap;

/* The class of IopsGLibIOPS and its IopsIOPS vtable, set once at class
 * initialization: the invokers skip the interface lookup for it. */
extern GTypeClass        *iops_glib_iops_class_ptr;
extern IopsIOPSInterface *iops_glib_iops_iface_ptr;

/* WATCH of IopsGLibIOPS's update_event, for @flags within READ|WRITE: the
 * invoker calls it directly, once it checked the types and arguments, for
 * the re-arm every delivery's callback makes. */
void iops_glib_iops_watch (IopsIOPS       *iops,
                           IopsIOEvent    *event,
                           IopsEventFlags  flags);
/* IopsGLibIOPS's update_timer, which the invoker calls directly once it
 * checked the types and arguments. */
void iops_glib_iops_update_timer (IopsIOPS       *iops,
                                  IopsTimerEvent *timer,
                                  IopsEvAction    action,
                                  gint64          usecs);

/* Backend → core: @watch's fd polled @revents. Handles disarming, references
 * and the choice of ready_r/ready_w/ready_rw. A one-shot delivery sets
 * watch->flags to 0 without asking the backend to stop polling (unless the
 * fd failed): if the callback did not re-arm, the backend stops polling the
 * fd once this returns. @watch may be freed when it returns, and so may its
 * owner: the caller must not touch either unless it knows they are alive. */
void iops_glib_iops_deliver_io   (IopsWatch    *watch,
                                  GIOCondition  revents);

/* Backend → core: fire every timer of @priority due at @now that was armed
 * before this call, in deadline order. A callback may drop the last reference to the
 * IOPS: the caller must check that its own source survived before touching
 * the IOPS again. */
void iops_glib_iops_fire_timers  (IopsGLibIOPS *self,
                                  int           priority,
                                  gint64        now);

/* The earliest deadline of the timers armed at @priority, or -1. Timers
 * keep the priority of their latest WATCH (rule 13), so a backend runs
 * one timer source per priority in use. */
gint64 iops_glib_iops_next_deadline     (IopsGLibIOPS *self,
                                         int           priority);
/* The earliest deadline of all armed timers, or -1. */
gint64 iops_glib_iops_earliest_deadline (IopsGLibIOPS *self);

G_END_DECLS

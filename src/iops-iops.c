/* iops-iops.c — the IOPS interface, its invokers and default factories
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "iops-glib.h"

/**
 * IopsIOPS:
 *
 * The event-loop contract a consumer (a database driver, an HTTP or DNS
 * client) programs against: watch an fd for readiness once, fire a timer
 * once, run until told to stop.
 *
 * The interface comes from the Couchbase client family
 * (`couchbase.iops.base.IOPS`, libcouchbase's event plugins).
 * [class@Iops.GLibIOPS] implements it on a [struct@GLib.MainContext]; it can
 * also be implemented from a binding.
 *
 * Since: 1.0
 */

G_DEFINE_INTERFACE (IopsIOPS, iops_iops, G_TYPE_OBJECT)

/* The interface vtable of @self, or NULL when @self is no IopsIOPS: one
 * lookup is the type check and the vtable fetch of every call. */
static inline IopsIOPSInterface *
iface_of (IopsIOPS *self)
{
  GTypeClass *klass = self != NULL ? ((GTypeInstance *) self)->g_class : NULL;

  return klass != NULL ? g_type_interface_peek (klass, IOPS_TYPE_IOPS) : NULL;
}

#define FLAGS_VALID(f) (((f) & ~(IopsEventFlags) IOPS_RW_EVENT) == 0)
#define ACTION_VALID(a) ((a) == IOPS_EVACTION_WATCH || \
                         (a) == IOPS_EVACTION_UNWATCH || \
                         (a) == IOPS_EVACTION_CLEANUP)

static IopsIOEvent *
iops_iops_real_io_event_factory (IopsIOPS *self)
{
  return iops_io_event_new (-1);
}

static IopsTimerEvent *
iops_iops_real_timer_event_factory (IopsIOPS *self)
{
  return iops_timer_event_new ();
}

static void
iops_iops_default_init (IopsIOPSInterface *iface)
{
  iface->io_event_factory = iops_iops_real_io_event_factory;
  iface->timer_event_factory = iops_iops_real_timer_event_factory;
}

/**
 * iops_iops_update_event: (virtual update_event)
 * @self: an #IopsIOPS
 * @event: the fd watch
 * @action: what to do
 * @flags: with %IOPS_EVACTION_WATCH, what to watch for; 0 means UNWATCH.
 *   Ignored by the other actions.
 *
 * Watches, unwatches or cleans up @event.
 *
 * %IOPS_EVACTION_WATCH reads the event's `fileno` now and watches that fd
 * for @flags, replacing whatever @event watched before. When the fd is
 * ready, exactly one of the event's `ready_r`, `ready_w` or `ready_rw`
 * methods is called from the main loop, never from inside this function.
 * The watch is disarmed before that call: watch again for the next event.
 * Errors and hang-ups count as ready for every watched flag.
 *
 * %IOPS_EVACTION_UNWATCH disarms: no callback is made for @event once it
 * returns. %IOPS_EVACTION_CLEANUP also releases every reference the IOPS
 * holds on @event.
 *
 * Since: 1.0
 */
void
iops_iops_update_event (IopsIOPS       *self,
                        IopsIOEvent    *event,
                        IopsEvAction    action,
                        IopsEventFlags  flags)
{
  IopsIOPSInterface *iface = iface_of (self);

  if (G_UNLIKELY (iface == NULL))
    {
      g_return_if_fail (IOPS_IS_IOPS (self));  /* the usual critical */
      return;
    }
  g_return_if_fail (IOPS_IS_IO_EVENT (event));
  g_return_if_fail (ACTION_VALID (action));
  g_return_if_fail (action != IOPS_EVACTION_WATCH || FLAGS_VALID (flags));
  g_return_if_fail (iface->update_event != NULL);
  iface->update_event (self, event, action, flags);
}

/**
 * iops_iops_update_timer: (virtual update_timer)
 * @self: an #IopsIOPS
 * @timer: the timer
 * @action: what to do
 * @usecs: with %IOPS_EVACTION_WATCH, the delay in microseconds (not
 *   negative). Ignored by the other actions.
 *
 * Arms, cancels or cleans up @timer.
 *
 * %IOPS_EVACTION_WATCH arms a one-shot timer due @usecs microseconds from
 * now on the monotonic clock, rescheduling it if it was armed. It fires
 * `ready (0)` once, never early, from the main loop. Timers fire in deadline
 * order, and timers with equal deadlines in the order of their latest WATCH.
 *
 * %IOPS_EVACTION_UNWATCH cancels; %IOPS_EVACTION_CLEANUP also releases every
 * reference the IOPS holds on @timer.
 *
 * Since: 1.0
 */
void
iops_iops_update_timer (IopsIOPS       *self,
                        IopsTimerEvent *timer,
                        IopsEvAction    action,
                        gint64          usecs)
{
  IopsIOPSInterface *iface = iface_of (self);

  if (G_UNLIKELY (iface == NULL))
    {
      g_return_if_fail (IOPS_IS_IOPS (self));  /* the usual critical */
      return;
    }
  g_return_if_fail (IOPS_IS_TIMER_EVENT (timer));
  g_return_if_fail (ACTION_VALID (action));
  g_return_if_fail (action != IOPS_EVACTION_WATCH || usecs >= 0);
  g_return_if_fail (iface->update_timer != NULL);
  iface->update_timer (self, timer, action, usecs);
}

/**
 * iops_iops_io_event_factory: (virtual io_event_factory)
 * @self: an #IopsIOPS
 *
 * Creates an fd watch object suited to @self. The IOPS keeps no reference
 * on it until its first WATCH.
 *
 * Returns: (transfer full): a new #IopsIOEvent
 *
 * Since: 1.0
 */
IopsIOEvent *
iops_iops_io_event_factory (IopsIOPS *self)
{
  g_return_val_if_fail (IOPS_IS_IOPS (self), NULL);

  return IOPS_IOPS_GET_IFACE (self)->io_event_factory (self);
}

/**
 * iops_iops_timer_event_factory: (virtual timer_event_factory)
 * @self: an #IopsIOPS
 *
 * Creates a timer object suited to @self. The IOPS keeps no reference on it
 * until its first WATCH.
 *
 * Returns: (transfer full): a new #IopsTimerEvent
 *
 * Since: 1.0
 */
IopsTimerEvent *
iops_iops_timer_event_factory (IopsIOPS *self)
{
  g_return_val_if_fail (IOPS_IS_IOPS (self), NULL);

  return IOPS_IOPS_GET_IFACE (self)->timer_event_factory (self);
}

/**
 * iops_iops_start_watching: (virtual start_watching)
 * @self: an #IopsIOPS
 *
 * Runs the event loop until [method@Iops.IOPS.stop_watching] is called or
 * until @self has nothing armed. Calls may nest.
 *
 * Since: 1.0
 */
void
iops_iops_start_watching (IopsIOPS *self)
{
  IopsIOPSInterface *iface;

  g_return_if_fail (IOPS_IS_IOPS (self));

  iface = IOPS_IOPS_GET_IFACE (self);
  g_return_if_fail (iface->start_watching != NULL);
  iface->start_watching (self);
}

/**
 * iops_iops_stop_watching: (virtual stop_watching)
 * @self: an #IopsIOPS
 *
 * Ends the innermost running [method@Iops.IOPS.start_watching]. Does
 * nothing, and is not remembered, when none is running.
 *
 * [class@Iops.GLibIOPS] lets any thread call this, but it takes a lock: it
 * is not async-signal-safe. To stop on a POSIX signal, use
 * [func@GLib.unix_signal_add] and call this from its callback.
 *
 * Since: 1.0
 */
void
iops_iops_stop_watching (IopsIOPS *self)
{
  IopsIOPSInterface *iface;

  g_return_if_fail (IOPS_IS_IOPS (self));

  iface = IOPS_IOPS_GET_IFACE (self);
  g_return_if_fail (iface->stop_watching != NULL);
  iface->stop_watching (self);
}

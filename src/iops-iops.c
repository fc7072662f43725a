/* iops-iops.c — the IOPS interface, its invokers and default factories
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "iops-glib-iops-private.h"

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

#define FLAGS_VALID(f) (((f) & ~(IopsEventFlags) IOPS_RW_EVENT) == 0)
#define ACTION_VALID(a) ((a) == IOPS_EVACTION_WATCH || \
                         (a) == IOPS_EVACTION_UNWATCH || \
                         (a) == IOPS_EVACTION_CLEANUP)

/* The interface vtable of @self, or NULL when @self is not an IopsIOPS.
 * One lookup is both the type check and the vtable fetch: the re-arm path
 * runs through here on every delivery. */
static inline IopsIOPSInterface *
iface_of (gpointer self)
{
  GTypeClass *klass;

  if (self == NULL || (klass = ((GTypeInstance *) self)->g_class) == NULL)
    return NULL;
  if (G_LIKELY (klass == iops_glib_iops_class_ptr))  /* a final class */
    return iops_glib_iops_iface_ptr;
  return g_type_interface_peek (klass, IOPS_TYPE_IOPS);
}

/* The last class that passed the IopsIOEvent, and the IopsTimerEvent,
 * check (a class never stops passing). Consumers pass instances of their
 * own subclasses, for which the GLib macro takes its slow path on every
 * call. Each starts at an address no instance has as its class, so one
 * comparison is the whole check. */
static gpointer known_io_event_class = &known_io_event_class;
static gpointer known_timer_event_class = &known_timer_event_class;

static inline gboolean
is_known_class (gpointer  instance,
                gpointer *known)
{
  return instance != NULL &&
         ((GTypeInstance *) instance)->g_class == g_atomic_pointer_get (known);
}

/* Whether @instance is a @type, remembering its class in @known. */
static gboolean
instance_is_a (gpointer  instance,
               GType     type,
               gpointer *known)
{
  if (is_known_class (instance, known))
    return TRUE;
  if (instance == NULL || ((GTypeInstance *) instance)->g_class == NULL ||
      !G_TYPE_CHECK_INSTANCE_TYPE (instance, type))
    return FALSE;
  g_atomic_pointer_set (known, ((GTypeInstance *) instance)->g_class);
  return TRUE;
}

#define RETURN_UNLESS_IOPS(iface) G_STMT_START {                          \
  if (G_UNLIKELY ((iface) == NULL))                                        \
    {                                                                      \
      g_return_if_fail_warning (G_LOG_DOMAIN, G_STRFUNC, "IOPS_IS_IOPS (self)"); \
      return;                                                              \
    }                                                                      \
} G_STMT_END

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

/* The invoker's path for anything but a re-arm of an IopsGLibIOPS watch. */
static G_GNUC_NO_INLINE void
update_event_checked (IopsIOPS       *self,
                      IopsIOEvent    *event,
                      IopsEvAction    action,
                      IopsEventFlags  flags)
{
  IopsIOPSInterface *iface = iface_of (self);

  RETURN_UNLESS_IOPS (iface);
  if (G_UNLIKELY (!instance_is_a (event, IOPS_TYPE_IO_EVENT, &known_io_event_class)))
    {
      g_return_if_fail_warning (G_LOG_DOMAIN, G_STRFUNC, "IOPS_IS_IO_EVENT (event)");
      return;
    }
  g_return_if_fail (ACTION_VALID (action));
  g_return_if_fail (action != IOPS_EVACTION_WATCH || FLAGS_VALID (flags));
  g_return_if_fail (iface->update_event != NULL);
  iface->update_event (self, event, action, flags);
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
  /* Every delivery's callback re-arms through here: a WATCH of an
   * IopsGLibIOPS (a final class) with an event of a known class is checked
   * with a few comparisons and goes straight to the implementation. */
  if (G_LIKELY (self != NULL &&
                ((GTypeInstance *) self)->g_class == iops_glib_iops_class_ptr &&
                is_known_class (event, &known_io_event_class) &&
                action == IOPS_EVACTION_WATCH && FLAGS_VALID (flags)))
    iops_glib_iops_watch (self, event, flags);
  else
    update_event_checked (self, event, action, flags);
}

/* The invoker's path for anything but an IopsGLibIOPS and a known timer
 * class with valid arguments. */
static G_GNUC_NO_INLINE void
update_timer_checked (IopsIOPS       *self,
                      IopsTimerEvent *timer,
                      IopsEvAction    action,
                      gint64          usecs)
{
  IopsIOPSInterface *iface = iface_of (self);

  RETURN_UNLESS_IOPS (iface);
  if (G_UNLIKELY (!instance_is_a (timer, IOPS_TYPE_TIMER_EVENT, &known_timer_event_class)))
    {
      g_return_if_fail_warning (G_LOG_DOMAIN, G_STRFUNC, "IOPS_IS_TIMER_EVENT (timer)");
      return;
    }
  g_return_if_fail (ACTION_VALID (action));
  g_return_if_fail (action != IOPS_EVACTION_WATCH || usecs >= 0);
  g_return_if_fail (iface->update_timer != NULL);
  iface->update_timer (self, timer, action, usecs);
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
  /* Consumers arm and cancel a timeout per request: for an IopsGLibIOPS
   * and a timer of a known class, valid arguments go straight to the
   * implementation. */
  if (G_LIKELY (self != NULL &&
                ((GTypeInstance *) self)->g_class == iops_glib_iops_class_ptr &&
                is_known_class (timer, &known_timer_event_class) &&
                ACTION_VALID (action) && (action != IOPS_EVACTION_WATCH || usecs >= 0)))
    iops_glib_iops_update_timer (self, timer, action, usecs);
  else
    update_timer_checked (self, timer, action, usecs);
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

/* iops-timer-event.c — one timer
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "iops-timer-event-private.h"

/**
 * IopsTimerEvent:
 *
 * One timer of the IOPS contract.
 *
 * [method@Iops.IOPS.update_timer] arms it to fire once, a number of
 * microseconds from now; the IOPS then calls the `ready` virtual method,
 * whose default implementation emits [signal@Iops.TimerEvent::ready].
 *
 * Since: 1.0
 */

typedef struct
{
  gpointer       registration;          /* an IOPS's, see the private header */
  GDestroyNotify registration_destroy;
} IopsTimerEventPrivate;

G_DEFINE_TYPE_WITH_PRIVATE (IopsTimerEvent, iops_timer_event, G_TYPE_OBJECT)

enum {
  SIGNAL_READY,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

static void
iops_timer_event_real_ready (IopsTimerEvent *self,
                             int             flags)
{
  g_signal_emit (self, signals[SIGNAL_READY], 0, flags);
}

static void
iops_timer_event_finalize (GObject *object)
{
  IopsTimerEventPrivate *priv = iops_timer_event_get_instance_private (IOPS_TIMER_EVENT (object));

  if (priv->registration != NULL && priv->registration_destroy != NULL)
    priv->registration_destroy (g_steal_pointer (&priv->registration));

  G_OBJECT_CLASS (iops_timer_event_parent_class)->finalize (object);
}

static void
iops_timer_event_class_init (IopsTimerEventClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = iops_timer_event_finalize;

  klass->ready = iops_timer_event_real_ready;

  /**
   * IopsTimerEvent::ready:
   * @self: the timer
   * @flags: always 0
   *
   * Emitted by the default `ready` implementation when the timer fires.
   *
   * Since: 1.0
   */
  signals[SIGNAL_READY] =
    g_signal_new ("ready",
                  G_TYPE_FROM_CLASS (klass),
                  G_SIGNAL_RUN_LAST,
                  0,
                  NULL, NULL,
                  NULL,
                  G_TYPE_NONE, 1, G_TYPE_INT);
}

static void
iops_timer_event_init (IopsTimerEvent *self)
{
}

/**
 * iops_timer_event_new:
 *
 * Creates a plain timer object; connect to [signal@Iops.TimerEvent::ready]
 * to be told when it fires.
 *
 * Returns: (transfer full): a new #IopsTimerEvent
 *
 * Since: 1.0
 */
IopsTimerEvent *
iops_timer_event_new (void)
{
  return g_object_new (IOPS_TYPE_TIMER_EVENT, NULL);
}

/**
 * iops_timer_event_ready: (virtual ready)
 * @self: an #IopsTimerEvent
 * @flags: always 0 when called by an IOPS
 *
 * Called by the IOPS when the timer fires.
 *
 * Since: 1.0
 */
void
iops_timer_event_ready (IopsTimerEvent *self,
                        int             flags)
{
  g_return_if_fail (IOPS_IS_TIMER_EVENT (self));

  IOPS_TIMER_EVENT_GET_CLASS (self)->ready (self, flags);
}

gpointer
iops_timer_event_get_registration (IopsTimerEvent *self)
{
  IopsTimerEventPrivate *priv = iops_timer_event_get_instance_private (self);

  return priv->registration;
}

void
iops_timer_event_set_registration (IopsTimerEvent *self,
                                   gpointer        registration,
                                   GDestroyNotify  destroy)
{
  IopsTimerEventPrivate *priv = iops_timer_event_get_instance_private (self);

  priv->registration = registration;
  priv->registration_destroy = destroy;
}

/* relay-iops.c — an IopsIOPS that forwards to another, for the bridges' tests
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The relay holds no reference on the events it is given (the inner IOPS
 * holds what the contract says): it follows each with a weak reference,
 * from the first call that names it until it is finalized.
 */
#include "relay-iops.h"

struct _RelayIOPS
{
  GObject          parent_instance;
  IopsIOPS        *inner;
  GHashTable      *last_action;   /* alive event or timer → its latest IopsEvAction */
  RelayIOPSCounts  counts;
};

static void relay_iops_iface_init (IopsIOPSInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (RelayIOPS, relay_iops, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (IOPS_TYPE_IOPS, relay_iops_iface_init))

static void
relay_forget (gpointer  data,
              GObject  *gone)
{
  RelayIOPS *self = data;
  gpointer action = g_hash_table_lookup (self->last_action, gone);

  self->counts.n_finalized++;
  if (GPOINTER_TO_INT (action) != IOPS_EVACTION_CLEANUP)
    self->counts.n_finalized_armed++;
  g_hash_table_remove (self->last_action, gone);
}

static void
relay_note (RelayIOPS    *self,
            gpointer      object,
            IopsEvAction  action,
            guint        *n_distinct)
{
  if (!g_hash_table_contains (self->last_action, object))
    {
      g_object_weak_ref (object, relay_forget, self);
      (*n_distinct)++;
    }
  g_hash_table_insert (self->last_action, object, GINT_TO_POINTER (action));
}

static void
relay_update_event (IopsIOPS       *iops,
                    IopsIOEvent    *event,
                    IopsEvAction    action,
                    IopsEventFlags  flags)
{
  RelayIOPS *self = RELAY_IOPS (iops);

  relay_note (self, event, action, &self->counts.n_events);
  if (action == IOPS_EVACTION_UNWATCH)
    self->counts.n_unwatches++;
  iops_iops_update_event (self->inner, event, action, flags);
}

static void
relay_update_timer (IopsIOPS       *iops,
                    IopsTimerEvent *timer,
                    IopsEvAction    action,
                    gint64          usecs)
{
  RelayIOPS *self = RELAY_IOPS (iops);

  relay_note (self, timer, action, &self->counts.n_timers);
  if (action == IOPS_EVACTION_WATCH)
    self->counts.n_timer_watches++;
  iops_iops_update_timer (self->inner, timer, action, usecs);
}

static void
relay_start_watching (IopsIOPS *iops)
{
  iops_iops_start_watching (RELAY_IOPS (iops)->inner);
}

static void
relay_stop_watching (IopsIOPS *iops)
{
  iops_iops_stop_watching (RELAY_IOPS (iops)->inner);
}

static void
relay_iops_iface_init (IopsIOPSInterface *iface)
{
  iface->update_event = relay_update_event;
  iface->update_timer = relay_update_timer;
  iface->start_watching = relay_start_watching;
  iface->stop_watching = relay_stop_watching;
}

static void
relay_iops_finalize (GObject *object)
{
  RelayIOPS *self = RELAY_IOPS (object);
  GHashTableIter iter;
  gpointer alive;

  g_hash_table_iter_init (&iter, self->last_action);
  while (g_hash_table_iter_next (&iter, &alive, NULL))
    g_object_weak_unref (alive, relay_forget, self);
  g_hash_table_unref (self->last_action);
  g_clear_object (&self->inner);
  G_OBJECT_CLASS (relay_iops_parent_class)->finalize (object);
}

static void
relay_iops_class_init (RelayIOPSClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = relay_iops_finalize;
}

static void
relay_iops_init (RelayIOPS *self)
{
  self->last_action = g_hash_table_new (NULL, NULL);
}

RelayIOPS *
relay_iops_new (IopsIOPS *inner)
{
  RelayIOPS *self;

  g_return_val_if_fail (IOPS_IS_IOPS (inner), NULL);

  self = g_object_new (RELAY_TYPE_IOPS, NULL);
  self->inner = g_object_ref (inner);
  return self;
}

guint
relay_iops_n_alive (RelayIOPS *self)
{
  return g_hash_table_size (self->last_action);
}

const RelayIOPSCounts *
relay_iops_get_counts (RelayIOPS *self)
{
  return &self->counts;
}

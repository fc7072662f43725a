/* relay-iops.h — an IopsIOPS that forwards to another, for the bridges' tests
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A second implementation of the interface in front of a real one: every
 * call goes on to the inner IOPS unchanged, so the bridge runs as usual,
 * and on the way the relay notes what it was given. A bridge run through
 * it is shown to use nothing but the interface, and a test can check that
 * every event the bridge gave the IOPS was cleaned up and finalized once
 * the bridge is gone.
 */
#pragma once

#include <iops-glib.h>

G_BEGIN_DECLS

#define RELAY_TYPE_IOPS (relay_iops_get_type ())
G_DECLARE_FINAL_TYPE (RelayIOPS, relay_iops, RELAY, IOPS, GObject)

typedef struct
{
  guint n_events;           /* distinct fd events given */
  guint n_timers;           /* distinct timers given */
  guint n_unwatches;        /* UNWATCH of fd events */
  guint n_timer_watches;    /* WATCH of timers */
  guint n_finalized;        /* events and timers given, finalized since */
  guint n_finalized_armed;  /* of those, finalized with another last action than CLEANUP */
} RelayIOPSCounts;

/* Forwards to @inner, and holds a reference on it. */
RelayIOPS             *relay_iops_new        (IopsIOPS  *inner);
/* Events and timers given that are not finalized yet. */
guint                  relay_iops_n_alive    (RelayIOPS *self);
const RelayIOPSCounts *relay_iops_get_counts (RelayIOPS *self);

G_END_DECLS

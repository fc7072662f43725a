/* mock-iops.h — a second IopsIOPS implementation, for the bridge's tests
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A plain poll() loop with one-shot watches and a list of timers, written
 * only against the IopsIOPS interface and no GMainContext: a bridge that
 * runs on it runs on any implementation, not only on IopsGLibIOPS. It
 * counts what it is asked and what it delivers, so tests can check that
 * nothing is left armed or held and that the loop never spins.
 */
#pragma once

#include <iops-glib.h>

G_BEGIN_DECLS

#define MOCK_TYPE_IOPS (mock_iops_get_type ())
G_DECLARE_FINAL_TYPE (MockIOPS, mock_iops, MOCK, IOPS, GObject)

typedef struct
{
  guint watches;      /* WATCH of fd events */
  guint timer_arms;   /* WATCH of timers */
  guint deliveries;   /* ready_r / ready_w / ready_rw calls */
  guint timer_fires;  /* ready (0) calls */
  guint wakeups;      /* poll() calls that returned */
  guint max_events;   /* most fd events registered at once */
} MockIOPSCounts;

/* start_watching fails the test when one level runs longer than this. */
#define MOCK_IOPS_MAX_RUN_MS 60000

MockIOPS             *mock_iops_new            (void);
/* Armed fd watches and timers. */
guint                 mock_iops_n_armed        (MockIOPS *self);
/* Events and timers the IOPS holds a reference on (watched, not cleaned up). */
guint                 mock_iops_n_registered   (MockIOPS *self);
/* Events and timers it was ever given that are not finalized yet. */
guint                 mock_iops_n_alive        (MockIOPS *self);
const MockIOPSCounts *mock_iops_get_counts     (MockIOPS *self);

G_END_DECLS

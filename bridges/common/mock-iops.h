/* mock-iops.h — a second IopsIOPS implementation, for the bridges' tests
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A plain poll() loop with one-shot watches and timers, written only
 * against the IopsIOPS interface and with no GMainContext at all: a bridge
 * shown to work on it uses nothing but the interface, so it runs on any
 * implementation, not only on IopsGLibIOPS. It counts what it is asked and
 * what it delivers, and shows what is armed and held, so that tests can
 * check that nothing is left armed or held and that the loop never spins.
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

/* start_watching fails the test when one level runs longer than this
 * without a deadline (mock_iops_set_deadline ()). */
#define MOCK_IOPS_MAX_RUN_MS 60000

MockIOPS             *mock_iops_new          (void);

/* Armed fd watches and timers. */
guint                 mock_iops_n_armed      (MockIOPS *self);
/* Events and timers the IOPS holds a reference on (watched, not cleaned up). */
guint                 mock_iops_n_registered (MockIOPS *self);
/* Events and timers it was ever given that are not finalized yet. */
guint                 mock_iops_n_alive      (MockIOPS *self);
const MockIOPSCounts *mock_iops_get_counts   (MockIOPS *self);

/* What @event is armed for now; 0 when it is not. */
IopsEventFlags        mock_iops_get_flags    (MockIOPS *self,
                                              gpointer  event);
/* The fd @event was watched on at its latest WATCH, or -1. */
int                   mock_iops_get_fd       (MockIOPS *self,
                                              gpointer  event);
gboolean              mock_iops_timer_armed  (MockIOPS *self,
                                              gpointer  timer);
/* The first registered event or timer of @type, or NULL. */
gpointer              mock_iops_find         (MockIOPS *self,
                                              GType     type);

/* Polls once, for up to @timeout_ms (-1: until something is due), and
 * makes the callbacks that are due: timers in deadline order, then fd
 * watches. Returns how many it made. */
guint                 mock_iops_iterate      (MockIOPS *self,
                                              int       timeout_ms);

/* From now on start_watching () also returns @ms from now, whatever is
 * armed; mock_iops_deadline_hit () then says so. */
void                  mock_iops_set_deadline (MockIOPS *self,
                                              guint     ms);
gboolean              mock_iops_deadline_hit (MockIOPS *self);

G_END_DECLS

/* mock-iops.h — a second IopsIOPS implementation, for the bridge's tests
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A small poll() loop with one-shot watches and timers and no GMainContext
 * at all, so that a bridge shown to work on it uses nothing but the
 * IopsIOPS interface. It also lets a test look at what is armed.
 */
#pragma once

#include <iops-glib.h>

G_BEGIN_DECLS

#define MOCK_TYPE_IOPS (mock_iops_get_type ())
G_DECLARE_FINAL_TYPE (MockIOPS, mock_iops, MOCK, IOPS, GObject)

MockIOPS       *mock_iops_new         (void);

/* What @event is armed for now; 0 when it is not. */
IopsEventFlags  mock_iops_get_flags   (MockIOPS *self,
                                       gpointer  event);
/* The fd @event was watched on at its latest WATCH, or -1. */
int             mock_iops_get_fd      (MockIOPS *self,
                                       gpointer  event);
gboolean        mock_iops_timer_armed (MockIOPS *self,
                                       gpointer  timer);
/* Watches and timers armed. */
guint           mock_iops_n_armed     (MockIOPS *self);
/* The first event or timer of @type the IOPS was given, or NULL. */
gpointer        mock_iops_find        (MockIOPS *self,
                                       GType     type);

/* Polls once, for up to @timeout_ms (-1: until something is due), and
 * makes the callbacks that are due. Returns how many it made. */
guint           mock_iops_iterate     (MockIOPS *self,
                                       int       timeout_ms);

/* From now on start_watching() also returns after @ms; see
 * mock_iops_deadline_hit(). */
void            mock_iops_set_deadline (MockIOPS *self,
                                        guint     ms);
gboolean        mock_iops_deadline_hit (MockIOPS *self);

G_END_DECLS

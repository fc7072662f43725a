/* iops-test-util.h — shared helpers of the C tests
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <iops-glib.h>

G_BEGIN_DECLS

/* Generous: only a broken library ever waits this long. */
#define TEST_DEADLINE_MS 5000

/* An IopsIOEvent that counts its callbacks and can run a hook in them. */
#define TEST_TYPE_IO_EVENT (test_io_event_get_type ())
G_DECLARE_FINAL_TYPE (TestIOEvent, test_io_event, TEST, IO_EVENT, IopsIOEvent)

typedef void (*TestIOHook) (TestIOEvent *event, IopsEventFlags ready, gpointer data);

struct _TestIOEvent
{
  IopsIOEvent    parent_instance;
  guint          n_r, n_w, n_rw;     /* calls of ready_r, ready_w, ready_rw */
  IopsEventFlags last;               /* what the latest call reported */
  TestIOHook     hook;
  gpointer       hook_data;
};

TestIOEvent *test_io_event_new (int fd);
guint        test_io_event_total (TestIOEvent *self);

/* An IopsTimerEvent that records when it fired. */
#define TEST_TYPE_TIMER_EVENT (test_timer_event_get_type ())
G_DECLARE_FINAL_TYPE (TestTimerEvent, test_timer_event, TEST, TIMER_EVENT, IopsTimerEvent)

typedef void (*TestTimerHook) (TestTimerEvent *timer, gpointer data);

struct _TestTimerEvent
{
  IopsTimerEvent parent_instance;
  guint          n_fired;
  int            last_flags;
  gint64         fired_at;           /* monotonic µs of the latest call */
  TestTimerHook  hook;
  gpointer       hook_data;
};

TestTimerEvent *test_timer_event_new (void);

/* Iterates @context until *@flag is TRUE or @timeout_ms passed; returns
 * *@flag. Never sleeps: a timeout source bounds the wait. */
gboolean test_iterate_until (GMainContext   *context,
                             const gboolean *flag,
                             guint           timeout_ms);

/* Iterates @context for @ms milliseconds of wall time, counting the
 * iterations that dispatched something. */
guint    test_iterate_for    (GMainContext   *context,
                              guint           ms);

/* A non-blocking socketpair. */
void     test_socketpair     (int fds[2]);

G_END_DECLS

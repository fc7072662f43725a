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

/* -- a fresh IOPS on a fresh context, for g_test_add -------------------- */

typedef struct
{
  GMainContext *context;
  IopsGLibIOPS *glib_iops;
  IopsIOPS     *iops;      /* glib_iops, as the interface */
  gpointer      weak[8];   /* objects that must be gone once the IOPS is */
  guint         n_weak;
} TestFixture;

/* A new context and an IopsGLibIOPS on it; @data is not used. */
void test_fixture_setup           (TestFixture   *f,
                                   gconstpointer  data);
/* The same, persistent mode GPOINTER_TO_INT (@data). */
void test_fixture_setup_mode      (TestFixture   *f,
                                   gconstpointer  data);

/* Drops the IOPS if a test left one, drains the context and frees it. */
void test_fixture_teardown        (TestFixture   *f,
                                   gconstpointer  data);
/* Asserts the IOPS (if a test left one) is finalized by dropping it, then
 * drains the context and frees it. */
void test_fixture_teardown_finalize (TestFixture   *f,
                                     gconstpointer  data);
/* Asserts the IOPS (if a test left one) is finalized by dropping it, that
 * every object of test_fixture_track() went with it, and that nothing
 * the IOPS attached to the context outlives it. */
void test_fixture_teardown_quiet  (TestFixture   *f,
                                   gconstpointer  data);

/* Checks at test_fixture_teardown_quiet() that @object was finalized. */
void test_fixture_track           (TestFixture   *f,
                                   gpointer       object);

/* -- update_event / update_timer, spelled short ------------------------- */

void test_update        (IopsIOPS       *iops,
                         gpointer        event,
                         IopsEvAction    action,
                         IopsEventFlags  flags);
void test_watch         (IopsIOPS       *iops,
                         gpointer        event,
                         IopsEventFlags  flags);
void test_unwatch       (IopsIOPS       *iops,
                         gpointer        event);
void test_cleanup       (IopsIOPS       *iops,
                         gpointer        event);
void test_arm           (IopsIOPS       *iops,
                         gpointer        timer,
                         gint64          usecs);
void test_unwatch_timer (IopsIOPS       *iops,
                         gpointer        timer);
void test_cleanup_timer (IopsIOPS       *iops,
                         gpointer        timer);

/* -- small callbacks and fd helpers ------------------------------------- */

/* A GSourceFunc: sets the gboolean at @data, once. */
gboolean test_set_flag        (gpointer data);
/* A TestIOHook and a TestTimerHook that set the gboolean at @data. */
void     test_io_flag_hook    (TestIOEvent    *event,
                               IopsEventFlags  ready,
                               gpointer        data);
void     test_timer_flag_hook (TestTimerEvent *timer,
                               gpointer        data);

/* Writes one byte, asserting it went. */
void     test_write_byte     (int fd);
/* Closes both ends. */
void     test_close_pair     (int fds[2]);

G_END_DECLS

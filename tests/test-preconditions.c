/* test-preconditions.c — rule 12 of DESIGN.md (bad input), and the edges
 * of rules 5 and 6 that bad input touches
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Every case runs on every backend (IOPS_GLIB_BACKEND). Flags 0 at WATCH
 * (an UNWATCH, not bad input) is tested in test-watch.c, the default
 * factories (rule 6) in test-refs.c.
 */
#include <unistd.h>

#include "iops-test-util.h"

typedef struct
{
  GMainContext *context;
  IopsGLibIOPS *glib;
  IopsIOPS     *iops;
  int           fds[2];
} Fixture;

static void
fixture_setup (Fixture       *f,
               gconstpointer  data)
{
  f->context = g_main_context_new ();
  f->glib = iops_glib_iops_new (f->context);
  f->iops = IOPS_IOPS (f->glib);
  test_socketpair (f->fds);
}

static void
fixture_teardown (Fixture       *f,
                  gconstpointer  data)
{
  f->iops = NULL;
  g_clear_object (&f->glib);
  while (g_main_context_iteration (f->context, FALSE))
    ;
  g_main_context_unref (f->context);
  test_close_pair (f->fds);
}

/* Every precondition failure is a g_return_if_fail() critical of the
 * library's log domain; anything else logged at that level fails the test
 * (criticals are fatal under g_test_init). */
#define EXPECT_CRITICAL(...) G_STMT_START {                            \
    g_test_expect_message ("Iops", G_LOG_LEVEL_CRITICAL, "*assert*");  \
    __VA_ARGS__;                                                       \
    g_test_assert_expected_messages ();                                \
  } G_STMT_END

static void
update_event (Fixture     *f,
              TestIOEvent *event,
              int          action,
              int          flags)
{
  iops_iops_update_event (f->iops, IOPS_IO_EVENT (event),
                          (IopsEvAction) action, (IopsEventFlags) flags);
}

static void
update_timer (Fixture        *f,
              TestTimerEvent *timer,
              int             action,
              gint64          usecs)
{
  iops_iops_update_timer (f->iops, IOPS_TIMER_EVENT (timer), (IopsEvAction) action, usecs);
}

/* Arms a timer @usecs from now and iterates until it fired; timers fire in
 * deadline order, and an fd that is ready by then has been polled. */
static void
run_past (Fixture *f,
          gint64   usecs)
{
  test_run_past (f->context, f->iops, usecs);
}

/* Rule 8 as a probe: start_watching returns at once when nothing is armed,
 * while an event left armed on a silent fd would keep it running. */
static void
assert_nothing_armed (Fixture *f)
{
  g_assert_true (test_start_watching_bounded (f->context, f->iops));
}

/* A watch on the fixture's first fd whose callbacks set @ready. */
static TestIOEvent *
flagged_event_new (Fixture  *f,
                   gboolean *ready)
{
  return test_io_event_new_flagged (f->fds[0], ready);
}

/* Rejected calls armed nothing and kept no reference on @event. */
static void
assert_event_untouched (Fixture     *f,
                        TestIOEvent *event)
{
  assert_nothing_armed (f);
  run_past (f, 1000);
  g_assert_cmpuint (test_io_event_total (event), ==, 0);
  g_assert_cmpuint (G_OBJECT (event)->ref_count, ==, 1);
}

/* Rejected calls left @event watching READ on the fixture's first fd, as
 * it was: nothing is reported while that fd is silent (a WATCH for WRITE
 * would report the writable socket), one READ once it is not. */
static void
assert_still_watching_read (Fixture     *f,
                            TestIOEvent *event,
                            gboolean    *ready)
{
  run_past (f, 1000);
  g_assert_cmpuint (test_io_event_total (event), ==, 0);

  g_assert_cmpint (write (f->fds[1], "x", 1), ==, 1);
  g_assert_true (test_iterate_until (f->context, ready, TEST_DEADLINE_MS));
  g_assert_cmpuint (event->n_r, ==, 1);
  g_assert_cmpuint (test_io_event_total (event), ==, 1);
}

/* Rejected calls left @timer armed as it was, due @usecs after @armed_at:
 * neither cancelled nor moved, it fires once and not early. */
static void
assert_timer_kept (Fixture        *f,
                   TestTimerEvent *timer,
                   gboolean       *fired,
                   gint64          armed_at,
                   gint64          usecs)
{
  g_assert_true (test_iterate_until (f->context, fired, TEST_DEADLINE_MS));
  g_assert_cmpint (timer->fired_at - armed_at, >=, usecs);
  run_past (f, 10000);
  g_assert_cmpuint (timer->n_fired, ==, 1);
}

/* -- NULL and wrongly typed objects ------------------------------------- */

static void
test_null_iops (Fixture       *f,
                gconstpointer  data)
{
  g_autoptr(TestIOEvent) event = test_io_event_new (f->fds[0]);
  g_autoptr(TestTimerEvent) timer = test_timer_event_new ();

  EXPECT_CRITICAL (iops_iops_update_event (NULL, IOPS_IO_EVENT (event),
                                           IOPS_EVACTION_WATCH, IOPS_WRITE_EVENT));
  EXPECT_CRITICAL (iops_iops_update_timer (NULL, IOPS_TIMER_EVENT (timer),
                                           IOPS_EVACTION_WATCH, 0));
  EXPECT_CRITICAL (iops_iops_start_watching (NULL));
  EXPECT_CRITICAL (iops_iops_stop_watching (NULL));
  EXPECT_CRITICAL (g_assert_null (iops_iops_io_event_factory (NULL)));
  EXPECT_CRITICAL (g_assert_null (iops_iops_timer_event_factory (NULL)));

  /* Nobody took a reference. */
  g_assert_cmpuint (G_OBJECT (event)->ref_count, ==, 1);
  g_assert_cmpuint (G_OBJECT (timer)->ref_count, ==, 1);
}

static void
test_wrong_type_iops (Fixture       *f,
                      gconstpointer  data)
{
  g_autoptr(GObject) plain = g_object_new (G_TYPE_OBJECT, NULL);
  g_autoptr(TestIOEvent) event = test_io_event_new (f->fds[0]);
  g_autoptr(TestTimerEvent) timer = test_timer_event_new ();
  IopsIOPS *not_iops = (IopsIOPS *) plain;
  IopsIOPS *event_as_iops = (IopsIOPS *) event;

  EXPECT_CRITICAL (iops_iops_update_event (not_iops, IOPS_IO_EVENT (event),
                                           IOPS_EVACTION_WATCH, IOPS_WRITE_EVENT));
  EXPECT_CRITICAL (iops_iops_update_timer (not_iops, IOPS_TIMER_EVENT (timer),
                                           IOPS_EVACTION_WATCH, 0));
  EXPECT_CRITICAL (iops_iops_start_watching (not_iops));
  EXPECT_CRITICAL (iops_iops_stop_watching (not_iops));
  EXPECT_CRITICAL (g_assert_null (iops_iops_io_event_factory (not_iops)));
  EXPECT_CRITICAL (g_assert_null (iops_iops_timer_event_factory (not_iops)));
  EXPECT_CRITICAL (iops_iops_update_event (event_as_iops, IOPS_IO_EVENT (event),
                                           IOPS_EVACTION_WATCH, IOPS_WRITE_EVENT));

  g_assert_cmpuint (plain->ref_count, ==, 1);
  g_assert_cmpuint (G_OBJECT (event)->ref_count, ==, 1);
  g_assert_cmpuint (G_OBJECT (timer)->ref_count, ==, 1);
}

static void
test_glib_iops_api (Fixture       *f,
                    gconstpointer  data)
{
  g_autoptr(GObject) plain = g_object_new (G_TYPE_OBJECT, NULL);
  IopsGLibIOPS *not_glib = (IopsGLibIOPS *) plain;

  EXPECT_CRITICAL (g_assert_null (iops_glib_iops_get_context (NULL)));
  EXPECT_CRITICAL (g_assert_null (iops_glib_iops_get_context (not_glib)));
  EXPECT_CRITICAL (iops_glib_iops_get_priority (NULL));
  EXPECT_CRITICAL (iops_glib_iops_set_priority (NULL, G_PRIORITY_LOW));
  EXPECT_CRITICAL (iops_glib_iops_set_priority (not_glib, G_PRIORITY_LOW));
  EXPECT_CRITICAL (g_assert_false (iops_glib_iops_get_persistent (NULL)));
  EXPECT_CRITICAL (iops_glib_iops_set_persistent (NULL, TRUE));
  EXPECT_CRITICAL (iops_glib_iops_set_persistent (not_glib, TRUE));

  /* The real one is untouched. */
  g_assert_cmpint (iops_glib_iops_get_priority (f->glib), ==, G_PRIORITY_DEFAULT);
  g_assert_false (iops_glib_iops_get_persistent (f->glib));
}

static void
test_event_api (Fixture       *f,
                gconstpointer  data)
{
  g_autoptr(GObject) plain = g_object_new (G_TYPE_OBJECT, NULL);

  EXPECT_CRITICAL (iops_io_event_fileno (NULL));
  EXPECT_CRITICAL (iops_io_event_fileno ((IopsIOEvent *) plain));
  EXPECT_CRITICAL (iops_io_event_get_fd (NULL));
  EXPECT_CRITICAL (iops_io_event_set_fd (NULL, 3));
  EXPECT_CRITICAL (iops_io_event_ready_r (NULL));
  EXPECT_CRITICAL (iops_io_event_ready_w ((IopsIOEvent *) plain));
  EXPECT_CRITICAL (iops_io_event_ready_rw (NULL));
  EXPECT_CRITICAL (iops_timer_event_ready (NULL, 0));
  EXPECT_CRITICAL (iops_timer_event_ready ((IopsTimerEvent *) plain, 0));
}

static void
test_null_event (Fixture       *f,
                 gconstpointer  data)
{
  EXPECT_CRITICAL (iops_iops_update_event (f->iops, NULL, IOPS_EVACTION_WATCH, IOPS_READ_EVENT));
  EXPECT_CRITICAL (iops_iops_update_event (f->iops, NULL, IOPS_EVACTION_UNWATCH, 0));
  EXPECT_CRITICAL (iops_iops_update_event (f->iops, NULL, IOPS_EVACTION_CLEANUP, 0));
  EXPECT_CRITICAL (iops_iops_update_timer (f->iops, NULL, IOPS_EVACTION_WATCH, 0));
  EXPECT_CRITICAL (iops_iops_update_timer (f->iops, NULL, IOPS_EVACTION_UNWATCH, 0));
  EXPECT_CRITICAL (iops_iops_update_timer (f->iops, NULL, IOPS_EVACTION_CLEANUP, 0));

  assert_nothing_armed (f);
}

static void
test_wrong_type_event (Fixture       *f,
                       gconstpointer  data)
{
  g_autoptr(GObject) plain = g_object_new (G_TYPE_OBJECT, NULL);
  g_autoptr(TestIOEvent) event = test_io_event_new (f->fds[0]);
  g_autoptr(TestTimerEvent) timer = test_timer_event_new ();

  EXPECT_CRITICAL (iops_iops_update_event (f->iops, (IopsIOEvent *) plain,
                                           IOPS_EVACTION_WATCH, IOPS_WRITE_EVENT));
  EXPECT_CRITICAL (iops_iops_update_timer (f->iops, (IopsTimerEvent *) plain,
                                           IOPS_EVACTION_WATCH, 0));
  /* An event of the other kind is just as wrong. */
  EXPECT_CRITICAL (iops_iops_update_event (f->iops, (IopsIOEvent *) timer,
                                           IOPS_EVACTION_WATCH, IOPS_WRITE_EVENT));
  EXPECT_CRITICAL (iops_iops_update_timer (f->iops, (IopsTimerEvent *) event,
                                           IOPS_EVACTION_WATCH, 0));
  EXPECT_CRITICAL (iops_iops_update_timer (f->iops, (IopsTimerEvent *) event,
                                           IOPS_EVACTION_CLEANUP, 0));

  assert_nothing_armed (f);
  run_past (f, 1000);
  g_assert_cmpuint (test_io_event_total (event), ==, 0);
  g_assert_cmpuint (timer->n_fired, ==, 0);
  g_assert_cmpuint (plain->ref_count, ==, 1);
  g_assert_cmpuint (G_OBJECT (event)->ref_count, ==, 1);
  g_assert_cmpuint (G_OBJECT (timer)->ref_count, ==, 1);
}

static void
test_critical_message (void)
{
  /* The same check in a child process: a critical on stderr, not a crash. */
  if (g_test_subprocess ())
    {
      g_autoptr(IopsGLibIOPS) glib = iops_glib_iops_new (NULL);
      g_autoptr(TestTimerEvent) timer = test_timer_event_new ();

      iops_iops_update_timer (IOPS_IOPS (glib), IOPS_TIMER_EVENT (timer),
                              IOPS_EVACTION_WATCH, -1);
      return;
    }

  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_failed ();
  g_test_trap_assert_stderr ("*CRITICAL*assertion*failed*");
}

static void
test_critical_message_null_iops (void)
{
  if (g_test_subprocess ())
    {
      iops_iops_start_watching (NULL);
      return;
    }

  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_failed ();
  g_test_trap_assert_stderr ("*CRITICAL*assertion*failed*");
}

/* An IopsIOPS of the test's own: it lets the invokers run before any
 * IopsGLibIOPS exists in the process. */
#define MOCK_TYPE_IOPS (mock_iops_get_type ())
G_DECLARE_FINAL_TYPE (MockIops, mock_iops, MOCK, IOPS, GObject)

struct _MockIops
{
  GObject parent_instance;
  guint   n_updates;
};

static void
mock_iops_update_event (IopsIOPS       *iops,
                        IopsIOEvent    *event,
                        IopsEvAction    action,
                        IopsEventFlags  flags)
{
  ((MockIops *) iops)->n_updates++;
}

static void
mock_iops_iface_init (IopsIOPSInterface *iface)
{
  iface->update_event = mock_iops_update_event;
}

G_DEFINE_FINAL_TYPE_WITH_CODE (MockIops, mock_iops, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (IOPS_TYPE_IOPS, mock_iops_iface_init))

static void
mock_iops_class_init (MockIopsClass *klass)
{
}

static void
mock_iops_init (MockIops *self)
{
}

static void
test_critical_message_classless_iops (void)
{
  /* Before IopsGLibIOPS's class exists, an instance without a class must
   * not pass for one on the invoker's quick path: a critical, not a crash.
   * The mock's call first teaches the invoker the event's class. */
  if (g_test_subprocess ())
    {
      g_autoptr(MockIops) mock = g_object_new (MOCK_TYPE_IOPS, NULL);
      g_autoptr(IopsIOEvent) event = iops_io_event_new (0);
      GTypeInstance classless = { NULL };

      iops_iops_update_event (IOPS_IOPS (mock), event, IOPS_EVACTION_WATCH, IOPS_READ_EVENT);
      g_assert_cmpuint (mock->n_updates, ==, 1);
      iops_iops_update_event ((IopsIOPS *) &classless, event,
                              IOPS_EVACTION_WATCH, IOPS_READ_EVENT);
      return;
    }

  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_failed ();
  g_test_trap_assert_stderr ("*CRITICAL*IOPS_IS_IOPS*failed*");
}

/* -- unknown actions and flags ------------------------------------------ */

static const int bad_actions[] = { 0, 3, 4, 17, 18, 32, -1 };
static const int bad_flags[] = { 0x01, 0x08, 0x0A, 0x0C, 0x0F, 0x100, -1 };

static void
test_unknown_action (Fixture       *f,
                     gconstpointer  data)
{
  g_autoptr(TestIOEvent) event = test_io_event_new (f->fds[0]);
  g_autoptr(TestTimerEvent) timer = test_timer_event_new ();

  /* The socket is writable and a 0 µs timer is due at once: had any of
   * these armed something, it would be delivered. */
  for (guint i = 0; i < G_N_ELEMENTS (bad_actions); i++)
    {
      EXPECT_CRITICAL (update_event (f, event, bad_actions[i], IOPS_WRITE_EVENT));
      EXPECT_CRITICAL (update_timer (f, timer, bad_actions[i], 0));
    }

  assert_event_untouched (f, event);
  g_assert_cmpuint (timer->n_fired, ==, 0);
  g_assert_cmpuint (G_OBJECT (timer)->ref_count, ==, 1);
}

static void
test_unknown_action_keeps_watch (Fixture       *f,
                                 gconstpointer  data)
{
  gboolean ready = FALSE;
  g_autoptr(TestIOEvent) event = flagged_event_new (f, &ready);

  /* Armed for READ; nothing written yet. Taken as a WATCH, the rejected
   * calls would report the writable socket; taken as an UNWATCH, the
   * write below would go unreported. */
  update_event (f, event, IOPS_EVACTION_WATCH, IOPS_READ_EVENT);
  for (guint i = 0; i < G_N_ELEMENTS (bad_actions); i++)
    EXPECT_CRITICAL (update_event (f, event, bad_actions[i], IOPS_WRITE_EVENT));

  assert_still_watching_read (f, event, &ready);
  update_event (f, event, IOPS_EVACTION_CLEANUP, 0);
}

static void
test_unknown_action_keeps_timer (Fixture       *f,
                                 gconstpointer  data)
{
  gboolean fired = FALSE;
  g_autoptr(TestTimerEvent) timer = test_timer_event_new_flagged (&fired);
  gint64 armed_at;

  armed_at = g_get_monotonic_time ();
  update_timer (f, timer, IOPS_EVACTION_WATCH, 20000);
  for (guint i = 0; i < G_N_ELEMENTS (bad_actions); i++)
    EXPECT_CRITICAL (update_timer (f, timer, bad_actions[i], 0));

  assert_timer_kept (f, timer, &fired, armed_at, 20000);
}

static void
test_unknown_flags (Fixture       *f,
                    gconstpointer  data)
{
  g_autoptr(TestIOEvent) event = test_io_event_new (f->fds[0]);

  /* Writable at once, and readable too after this write. */
  g_assert_cmpint (write (f->fds[1], "x", 1), ==, 1);
  for (guint i = 0; i < G_N_ELEMENTS (bad_flags); i++)
    EXPECT_CRITICAL (update_event (f, event, IOPS_EVACTION_WATCH, bad_flags[i]));

  assert_event_untouched (f, event);
}

static void
test_unknown_flags_keep_watch (Fixture       *f,
                               gconstpointer  data)
{
  gboolean ready = FALSE;
  g_autoptr(TestIOEvent) event = flagged_event_new (f, &ready);

  update_event (f, event, IOPS_EVACTION_WATCH, IOPS_READ_EVENT);
  /* With WRITE in them: accepted even in part, they would report the
   * writable socket. */
  EXPECT_CRITICAL (update_event (f, event, IOPS_EVACTION_WATCH, IOPS_WRITE_EVENT | 0x08));
  EXPECT_CRITICAL (update_event (f, event, IOPS_EVACTION_WATCH, IOPS_RW_EVENT | 0x01));
  EXPECT_CRITICAL (update_event (f, event, IOPS_EVACTION_WATCH, 0x08));

  /* Still armed, for READ only. */
  assert_still_watching_read (f, event, &ready);

  update_event (f, event, IOPS_EVACTION_CLEANUP, 0);
}

/* -- fd < 0 and usecs < 0 at WATCH -------------------------------------- */

static void
test_negative_fd (Fixture       *f,
                  gconstpointer  data)
{
  g_autoptr(TestIOEvent) event = test_io_event_new (-1);

  EXPECT_CRITICAL (update_event (f, event, IOPS_EVACTION_WATCH, IOPS_READ_EVENT));
  EXPECT_CRITICAL (update_event (f, event, IOPS_EVACTION_WATCH, IOPS_RW_EVENT));
  /* Disarming one is fine: it never was armed. */
  update_event (f, event, IOPS_EVACTION_UNWATCH, 0);
  update_event (f, event, IOPS_EVACTION_CLEANUP, 0);

  assert_event_untouched (f, event);
}

static void
test_negative_fd_keeps_watch (Fixture       *f,
                              gconstpointer  data)
{
  gboolean ready = FALSE;
  g_autoptr(TestIOEvent) event = flagged_event_new (f, &ready);

  update_event (f, event, IOPS_EVACTION_WATCH, IOPS_READ_EVENT);
  iops_io_event_set_fd (IOPS_IO_EVENT (event), -1);
  EXPECT_CRITICAL (update_event (f, event, IOPS_EVACTION_WATCH, IOPS_WRITE_EVENT));

  /* The old fd, the old flags. */
  assert_still_watching_read (f, event, &ready);

  /* CLEANUP uses what the IOPS stored, not the fd of now (rule 5). */
  update_event (f, event, IOPS_EVACTION_CLEANUP, 0);
}

static void
test_negative_usecs (Fixture       *f,
                     gconstpointer  data)
{
  g_autoptr(TestTimerEvent) timer = test_timer_event_new ();

  EXPECT_CRITICAL (update_timer (f, timer, IOPS_EVACTION_WATCH, -1));
  EXPECT_CRITICAL (update_timer (f, timer, IOPS_EVACTION_WATCH, -G_USEC_PER_SEC));
  EXPECT_CRITICAL (update_timer (f, timer, IOPS_EVACTION_WATCH, G_MININT64));

  assert_nothing_armed (f);
  run_past (f, 1000);
  g_assert_cmpuint (timer->n_fired, ==, 0);
  g_assert_cmpuint (G_OBJECT (timer)->ref_count, ==, 1);
}

static void
test_negative_usecs_keeps_timer (Fixture       *f,
                                 gconstpointer  data)
{
  gboolean fired = FALSE;
  g_autoptr(TestTimerEvent) timer = test_timer_event_new_flagged (&fired);
  gint64 armed_at;

  armed_at = g_get_monotonic_time ();
  update_timer (f, timer, IOPS_EVACTION_WATCH, 20000);
  EXPECT_CRITICAL (update_timer (f, timer, IOPS_EVACTION_WATCH, -1));
  EXPECT_CRITICAL (update_timer (f, timer, IOPS_EVACTION_WATCH, G_MININT64));

  assert_timer_kept (f, timer, &fired, armed_at, 20000);
}

/* -- UNWATCH and CLEANUP ignore flags and usecs ------------------------- */

static void
test_unwatch_ignores_flags (Fixture       *f,
                            gconstpointer  data)
{
  gboolean ready = FALSE;
  g_autoptr(TestIOEvent) event = flagged_event_new (f, &ready);

  /* No critical expected: an unexpected one aborts the test. */
  update_event (f, event, IOPS_EVACTION_WATCH, IOPS_READ_EVENT);
  update_event (f, event, IOPS_EVACTION_UNWATCH, 0x09);
  update_event (f, event, IOPS_EVACTION_UNWATCH, -1);

  g_assert_cmpint (write (f->fds[1], "x", 1), ==, 1);
  assert_nothing_armed (f);
  run_past (f, 1000);
  g_assert_cmpuint (test_io_event_total (event), ==, 0);

  /* Disarmed, not broken. */
  update_event (f, event, IOPS_EVACTION_WATCH, IOPS_READ_EVENT);
  g_assert_true (test_iterate_until (f->context, &ready, TEST_DEADLINE_MS));
  g_assert_cmpuint (event->n_r, ==, 1);

  update_event (f, event, IOPS_EVACTION_CLEANUP, 0);
}

static void
test_cleanup_ignores_flags (Fixture       *f,
                            gconstpointer  data)
{
  TestIOEvent *event = test_io_event_new (f->fds[0]);
  gpointer alive = event;

  g_object_add_weak_pointer (G_OBJECT (event), &alive);
  update_event (f, event, IOPS_EVACTION_WATCH, IOPS_READ_EVENT);
  update_event (f, event, IOPS_EVACTION_CLEANUP, 0xFF);

  g_assert_cmpint (write (f->fds[1], "x", 1), ==, 1);
  assert_nothing_armed (f);
  run_past (f, 1000);
  g_assert_cmpuint (test_io_event_total (event), ==, 0);

  /* The IOPS let go of it: ours is the last reference. */
  g_object_unref (event);
  g_assert_null (alive);
}

static void
test_unwatch_ignores_usecs (Fixture       *f,
                            gconstpointer  data)
{
  gboolean fired = FALSE;
  g_autoptr(TestTimerEvent) timer = test_timer_event_new_flagged (&fired);

  update_timer (f, timer, IOPS_EVACTION_WATCH, 1000);
  update_timer (f, timer, IOPS_EVACTION_UNWATCH, -1);
  update_timer (f, timer, IOPS_EVACTION_UNWATCH, G_MININT64);

  assert_nothing_armed (f);
  run_past (f, 10000);
  g_assert_cmpuint (timer->n_fired, ==, 0);

  update_timer (f, timer, IOPS_EVACTION_WATCH, 100);
  g_assert_true (test_iterate_until (f->context, &fired, TEST_DEADLINE_MS));
  g_assert_cmpuint (timer->n_fired, ==, 1);
}

static void
test_cleanup_ignores_usecs (Fixture       *f,
                            gconstpointer  data)
{
  TestTimerEvent *timer = test_timer_event_new ();
  gpointer alive = timer;

  g_object_add_weak_pointer (G_OBJECT (timer), &alive);
  update_timer (f, timer, IOPS_EVACTION_WATCH, 1000);
  update_timer (f, timer, IOPS_EVACTION_CLEANUP, G_MININT64);

  assert_nothing_armed (f);
  run_past (f, 10000);
  g_assert_cmpuint (timer->n_fired, ==, 0);

  g_object_unref (timer);
  g_assert_null (alive);
}

static void
test_disarm_never_watched (Fixture       *f,
                           gconstpointer  data)
{
  TestIOEvent *event = test_io_event_new (f->fds[0]);
  TestTimerEvent *timer = test_timer_event_new ();
  gpointer event_alive = event, timer_alive = timer;

  g_object_add_weak_pointer (G_OBJECT (event), &event_alive);
  g_object_add_weak_pointer (G_OBJECT (timer), &timer_alive);

  /* Harmless, with any flags and usecs, and takes no reference. */
  update_event (f, event, IOPS_EVACTION_UNWATCH, 0x08);
  update_event (f, event, IOPS_EVACTION_CLEANUP, 0x01);
  update_timer (f, timer, IOPS_EVACTION_UNWATCH, -5);
  update_timer (f, timer, IOPS_EVACTION_CLEANUP, -5);
  assert_nothing_armed (f);

  g_object_unref (event);
  g_object_unref (timer);
  g_assert_null (event_alive);
  g_assert_null (timer_alive);
}

/* -- constructors -------------------------------------------------------- */

static void
test_io_event_new_negative (void)
{
  g_autoptr(IopsIOEvent) event = iops_io_event_new (-1);
  g_autoptr(IopsIOEvent) plain = g_object_new (IOPS_TYPE_IO_EVENT, NULL);
  int fd = 0;

  g_assert_true (G_OBJECT_TYPE (event) == IOPS_TYPE_IO_EVENT);
  g_assert_cmpint (iops_io_event_get_fd (event), ==, -1);
  g_assert_cmpint (iops_io_event_fileno (event), ==, -1);
  g_object_get (event, "fd", &fd, NULL);
  g_assert_cmpint (fd, ==, -1);

  /* -1 is the default as well. */
  g_assert_cmpint (iops_io_event_get_fd (plain), ==, -1);
  g_assert_cmpint (iops_io_event_fileno (plain), ==, -1);
}

int
main (int   argc,
      char *argv[])
{
  test_init (&argc, &argv);

#define ADD(path, func) \
  g_test_add ("/iops/glib/preconditions/" path, Fixture, NULL, fixture_setup, func, fixture_teardown)

  ADD ("null-iops", test_null_iops);
  ADD ("wrong-type-iops", test_wrong_type_iops);
  ADD ("glib-iops-api", test_glib_iops_api);
  ADD ("event-api", test_event_api);
  ADD ("null-event", test_null_event);
  ADD ("wrong-type-event", test_wrong_type_event);
  g_test_add_func ("/iops/glib/preconditions/critical-message", test_critical_message);
  g_test_add_func ("/iops/glib/preconditions/critical-message-null-iops",
                   test_critical_message_null_iops);
  g_test_add_func ("/iops/glib/preconditions/critical-message-classless-iops",
                   test_critical_message_classless_iops);
  ADD ("unknown-action", test_unknown_action);
  ADD ("unknown-action-keeps-watch", test_unknown_action_keeps_watch);
  ADD ("unknown-action-keeps-timer", test_unknown_action_keeps_timer);
  ADD ("unknown-flags", test_unknown_flags);
  ADD ("unknown-flags-keep-watch", test_unknown_flags_keep_watch);
  ADD ("negative-fd", test_negative_fd);
  ADD ("negative-fd-keeps-watch", test_negative_fd_keeps_watch);
  ADD ("negative-usecs", test_negative_usecs);
  ADD ("negative-usecs-keeps-timer", test_negative_usecs_keeps_timer);
  ADD ("unwatch-ignores-flags", test_unwatch_ignores_flags);
  ADD ("cleanup-ignores-flags", test_cleanup_ignores_flags);
  ADD ("unwatch-ignores-usecs", test_unwatch_ignores_usecs);
  ADD ("cleanup-ignores-usecs", test_cleanup_ignores_usecs);
  ADD ("disarm-never-watched", test_disarm_never_watched);
  g_test_add_func ("/iops/glib/preconditions/io-event-new-negative", test_io_event_new_negative);

#undef ADD

  return g_test_run ();
}

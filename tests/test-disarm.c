/* test-disarm.c — rules 4 and 5 of DESIGN.md: UNWATCH and CLEANUP of fd
 * watches
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Every case runs on every backend (IOPS_GLIB_BACKEND) and asserts only
 * what DESIGN.md promises; a case whose rule holds in both watch modes
 * runs in each (its persistent run ends in "/persistent"). Cases that
 * were written for a bug say so in their comment.
 */
#include <unistd.h>

#include "iops-test-util.h"

typedef TestFixture Fixture;

/* -- rule 4: UNWATCH ---------------------------------------------------------- */

static void
test_unwatch_no_callback (Fixture       *f,
                          gconstpointer  data)
{
  int s[2];
  TestIOEvent *ev;

  test_socketpair (s);
  ev = test_io_event_new (s[0]);
  test_write_byte (s[1]);
  test_watch (f->iops, ev, IOPS_RW_EVENT);
  test_unwatch (f->iops, ev);
  test_assert_quiet (f->context);
  g_assert_cmpuint (test_io_event_total (ev), ==, 0);

  test_cleanup (f->iops, ev);
  g_assert_finalize_object (ev);
  test_close_pair (s);
}

static void
test_unwatch_repeated (Fixture       *f,
                       gconstpointer  data)
{
  int s[2];
  TestIOEvent *ev;

  test_socketpair (s);
  ev = test_io_event_new (s[0]);
  ev->hook = test_drain_hook;

  test_watch (f->iops, ev, IOPS_READ_EVENT);
  test_unwatch (f->iops, ev);
  test_unwatch (f->iops, ev);
  test_write_byte (s[1]);
  test_assert_quiet (f->context);
  g_assert_cmpuint (test_io_event_total (ev), ==, 0);

  test_watch (f->iops, ev, IOPS_READ_EVENT);
  test_wait_calls (f->context, ev, 1);

  /* After a delivery too. */
  test_unwatch (f->iops, ev);
  test_unwatch (f->iops, ev);
  test_write_byte (s[1]);
  test_assert_quiet (f->context);
  g_assert_cmpuint (test_io_event_total (ev), ==, 1);

  test_watch (f->iops, ev, IOPS_READ_EVENT);
  test_wait_calls (f->context, ev, 2);
  test_assert_calls (ev, 2, 0, 0);

  test_cleanup (f->iops, ev);
  g_assert_finalize_object (ev);
  test_close_pair (s);
}

static void
test_unwatch_never_watched (Fixture       *f,
                            gconstpointer  data)
{
  int s[2];
  gpointer events[4];

  test_socketpair (s);
  events[0] = test_io_event_new (s[0]);
  events[1] = iops_io_event_new (s[0]);
  events[2] = iops_io_event_new (-1);
  events[3] = iops_iops_io_event_factory (f->iops);

  for (guint i = 0; i < G_N_ELEMENTS (events); i++)
    {
      test_unwatch (f->iops, events[i]);
      test_watch (f->iops, events[i], 0);
      test_cleanup (f->iops, events[i]);
      test_cleanup (f->iops, events[i]);
      test_unwatch (f->iops, events[i]);
    }
  test_write_byte (s[1]);
  test_assert_quiet (f->context);
  g_assert_cmpuint (test_io_event_total (events[0]), ==, 0);

  for (guint i = 0; i < G_N_ELEMENTS (events); i++)
    g_assert_finalize_object (events[i]);
  test_close_pair (s);
}

/* -- rules 4 and 5: a delivery already found ready is suppressed ------------- */

/* @n watches, all ready in the same iteration; whichever callback runs
 * first disarms every other one with @action, and with @unref_others also
 * drops the test's reference to each. */
typedef struct
{
  Fixture       *f;
  guint          n;
  TestIOEvent  **events;
  gpointer      *alive;      /* weak pointers to events[] */
  TestPair      *fds;
  IopsEvAction   action;
  gboolean       unref_others;
  guint          calls;
  TestIOEvent   *first;
} Suppress;

static void
hook_disarm_others (TestIOEvent    *event,
                    IopsEventFlags  ready,
                    gpointer        data)
{
  Suppress *s = data;

  s->calls++;
  if (s->first == NULL)
    s->first = event;
  /* Persistent watches would report the data again. */
  test_drain (test_io_event_fd (event));

  for (guint i = 0; i < s->n; i++)
    {
      if (s->events[i] == NULL || s->events[i] == event)
        continue;
      test_update (s->f->iops, s->events[i], s->action, 0);
      if (s->unref_others)
        g_clear_object (&s->events[i]);
    }
}

static TestIOEvent *
suppress_some_other (Suppress *s)
{
  for (guint i = 0; i < s->n; i++)
    if (s->events[i] != NULL && s->events[i] != s->first)
      return s->events[i];
  return NULL;
}

/* Rules 4, 5 and 6: once UNWATCH or CLEANUP returns, the event gets no
 * callback, also when the loop already found its fd ready in this
 * iteration; nothing is used after it is freed. @hot_set_full: the epoll
 * backend's hot set is full first, so that the watches stay cold and are
 * re-armed with EPOLL_CTL_MOD. */
static void
check_pending_delivery_suppressed (Fixture      *f,
                                   guint         n,
                                   IopsEvAction  action,
                                   gboolean      unref_others,
                                   gboolean      hot_set_full)
{
  Suppress s = { f, n, g_new0 (TestIOEvent *, n), g_new0 (gpointer, n), g_new (TestPair, n),
                 action, unref_others, 0, NULL };
  TestHotFill fill;

  if (hot_set_full)
    test_hot_fill_setup (&fill, f);

  for (guint i = 0; i < n; i++)
    {
      test_socketpair (s.fds[i]);
      s.events[i] = test_io_event_new (s.fds[i][0]);
      s.events[i]->hook = hook_disarm_others;
      s.events[i]->hook_data = &s;
      s.alive[i] = s.events[i];
      g_object_add_weak_pointer (G_OBJECT (s.events[i]), &s.alive[i]);
      test_watch (f->iops, s.events[i], IOPS_READ_EVENT);
    }
  /* All ready before the loop polls: the first dispatch disarms watches
   * that the same iteration already found ready. */
  for (guint i = 0; i < n; i++)
    test_write_byte (s.fds[i][1]);
  g_assert_true (test_iterate_until_count (f->context, &s.calls, 1, TEST_DEADLINE_MS));
  test_assert_quiet (f->context);
  g_assert_cmpuint (s.calls, ==, 1);

  if (unref_others)
    {
      /* CLEANUP and the last unref: gone at once, pending dispatch or not. */
      for (guint i = 0; i < n; i++)
        if (s.alive[i] != s.first)
          {
            g_assert_null (s.events[i]);
            g_assert_null (s.alive[i]);
          }
    }
  else
    {
      /* A suppressed event is intact: its data still waits. */
      TestIOEvent *other = suppress_some_other (&s);

      g_assert_nonnull (other);
      test_watch (f->iops, other, IOPS_READ_EVENT);
      test_wait_calls (f->context, other, 1);
    }

  for (guint i = 0; i < n; i++)
    {
      if (s.events[i] != NULL)
        test_cleanup (f->iops, s.events[i]);
      g_clear_object (&s.events[i]);
      /* CLEANUP released the IOPS's references: ours were the last. */
      g_assert_null (s.alive[i]);
      test_close_pair (s.fds[i]);
    }
  if (hot_set_full)
    test_hot_fill_teardown (&fill);
  g_free (s.events);
  g_free (s.alive);
  g_free (s.fds);
}

/* Many: more than the epoll backend keeps hot, so some are cold. */
#define N_SUPPRESSED 260

static void
test_unwatch_pending_suppressed (Fixture       *f,
                                 gconstpointer  data)
{
  check_pending_delivery_suppressed (f, 2, IOPS_EVACTION_UNWATCH, FALSE, FALSE);
}

/* Regression: the first callback of many unwatches all the others. */
static void
test_unwatch_pending_suppressed_many (Fixture       *f,
                                      gconstpointer  data)
{
  check_pending_delivery_suppressed (f, N_SUPPRESSED, IOPS_EVACTION_UNWATCH, FALSE, FALSE);
}

static void
test_cleanup_pending_suppressed (Fixture       *f,
                                 gconstpointer  data)
{
  check_pending_delivery_suppressed (f, 2, IOPS_EVACTION_CLEANUP, TRUE, FALSE);
}

/* Regression: the first callback of many cleans up and unrefs all the
 * others. */
static void
test_cleanup_pending_suppressed_many (Fixture       *f,
                                      gconstpointer  data)
{
  check_pending_delivery_suppressed (f, N_SUPPRESSED, IOPS_EVACTION_CLEANUP, TRUE, FALSE);
}

/* Regression: the same after the hot set is full. */
static void
test_cleanup_pending_suppressed_many_cold (Fixture       *f,
                                           gconstpointer  data)
{
  check_pending_delivery_suppressed (f, N_SUPPRESSED, IOPS_EVACTION_CLEANUP, TRUE, TRUE);
}

typedef struct
{
  Fixture      *f;
  TestIOEvent **event;
} TimerKill;

static void
timer_kills_watch (TestTimerEvent *timer,
                   gpointer        data)
{
  TimerKill *tk = data;

  test_cleanup (tk->f->iops, *tk->event);
  g_clear_object (tk->event);
}

/* Regression: a timer due in the same iteration as a readable fd cleans
 * the watch up and drops it: no callback, no use after free — for a cold
 * watch, and for one that fired before (hot on the epoll backend). */
static void
test_cleanup_pending_suppressed_by_timer (Fixture       *f,
                                          gconstpointer  data)
{
  for (guint round = 0; round < 2; round++)
    {
      int s[2];
      TestIOEvent *event;
      TestIOEvent *probe;
      g_autoptr(TestTimerEvent) timer = test_timer_event_new ();
      TimerKill tk = { f, &event };

      test_socketpair (s);
      event = test_io_event_new (s[0]);
      probe = event;
      g_object_add_weak_pointer (G_OBJECT (probe), (gpointer *) &probe);
      if (round == 1)
        {
          /* Make it hot first. */
          test_watch (f->iops, event, IOPS_READ_EVENT);
          test_write_byte (s[1]);
          g_assert_true (test_iterate_until_count (f->context, &event->n_r, 1, TEST_DEADLINE_MS));
          test_drain (s[0]);
          event->n_r = 0;
        }
      test_watch (f->iops, event, IOPS_READ_EVENT);
      test_write_byte (s[1]);
      timer->hook = timer_kills_watch;
      timer->hook_data = &tk;
      test_arm (f->iops, timer, 0);
      /* Wait until poll () would see the data. */
      g_main_context_iteration (f->context, TRUE);
      test_iterate_for (f->context, 50);
      g_assert_cmpuint (timer->n_fired, ==, 1);
      g_assert_null (event);
      g_assert_null (probe);
      test_cleanup_timer (f->iops, timer);
      test_close_pair (s);
    }
}

/* -- rule 5: CLEANUP ------------------------------------------------------------ */

static void
test_cleanup_finalizes_event (Fixture       *f,
                              gconstpointer  data)
{
  int s[2];
  TestIOEvent *ev;

  test_socketpair (s);
  test_write_byte (s[1]);

  /* Armed on a ready fd. */
  ev = test_io_event_new (s[0]);
  test_watch (f->iops, ev, IOPS_READ_EVENT);
  test_cleanup (f->iops, ev);
  test_assert_quiet (f->context);
  g_assert_cmpuint (test_io_event_total (ev), ==, 0);
  g_assert_finalize_object (ev);

  /* After a delivery. */
  ev = test_io_event_new (s[0]);
  ev->hook = test_drain_hook;
  test_watch (f->iops, ev, IOPS_READ_EVENT);
  test_wait_calls (f->context, ev, 1);
  test_cleanup (f->iops, ev);
  g_assert_finalize_object (ev);

  /* After an UNWATCH. */
  ev = test_io_event_new (s[0]);
  test_watch (f->iops, ev, IOPS_RW_EVENT);
  test_unwatch (f->iops, ev);
  test_cleanup (f->iops, ev);
  g_assert_finalize_object (ev);

  test_close_pair (s);
}

static void
test_cleanup_uses_stored_fd (Fixture       *f,
                             gconstpointer  data)
{
  int s[2];
  TestIOEvent *ev;
  TestFilenoEvent *fev;

  test_socketpair (s);

  /* fileno () no longer names the fd: CLEANUP and UNWATCH still disarm it,
   * without a precondition failure (those are fatal here). */
  ev = test_io_event_new (s[0]);
  test_watch (f->iops, ev, IOPS_READ_EVENT);
  iops_io_event_set_fd (IOPS_IO_EVENT (ev), -1);
  test_unwatch (f->iops, ev);
  test_write_byte (s[1]);
  test_assert_quiet (f->context);
  test_watch (f->iops, ev, 0);
  test_cleanup (f->iops, ev);
  test_assert_quiet (f->context);
  g_assert_cmpuint (test_io_event_total (ev), ==, 0);
  g_assert_finalize_object (ev);

  /* It does not even ask. */
  fev = test_fileno_event_new (s[0]);
  test_watch (f->iops, fev, IOPS_READ_EVENT);
  fev->fd = -1;
  fev->n_fileno = 0;
  test_cleanup (f->iops, fev);
  g_assert_cmpuint (fev->n_fileno, ==, 0);
  g_assert_finalize_object (fev);

  test_close_pair (s);
}

static void
test_cleanup_then_watch (Fixture       *f,
                         gconstpointer  data)
{
  int s[2];
  TestIOEvent *ev;

  test_socketpair (s);
  ev = test_io_event_new (s[0]);
  ev->hook = test_drain_hook;

  test_watch (f->iops, ev, IOPS_READ_EVENT);
  test_cleanup (f->iops, ev);
  test_cleanup (f->iops, ev);
  /* A fresh registration. */
  test_watch (f->iops, ev, IOPS_READ_EVENT);
  test_write_byte (s[1]);
  test_wait_calls (f->context, ev, 1);
  test_assert_calls (ev, 1, 0, 0);

  test_cleanup (f->iops, ev);
  test_watch (f->iops, ev, IOPS_READ_EVENT);
  test_write_byte (s[1]);
  test_wait_calls (f->context, ev, 2);
  test_assert_calls (ev, 2, 0, 0);

  test_cleanup (f->iops, ev);
  g_assert_finalize_object (ev);
  test_close_pair (s);
}

int
main (int   argc,
      char *argv[])
{
  test_init (&argc, &argv);

  /* Rule 4: UNWATCH. */
  test_add_both_modes ("/iops/glib/unwatch/no-callback", test_unwatch_no_callback);
  test_add_both_modes ("/iops/glib/unwatch/pending-delivery-suppressed", test_unwatch_pending_suppressed);
  test_add_mode ("/iops/glib/unwatch/pending-delivery-suppressed/many", TEST_ONE_SHOT,
                 test_unwatch_pending_suppressed_many);
  test_add_mode ("/iops/glib/unwatch/repeated", TEST_ONE_SHOT, test_unwatch_repeated);
  test_add_mode ("/iops/glib/unwatch/never-watched", TEST_ONE_SHOT, test_unwatch_never_watched);

  /* Rule 5: CLEANUP. */
  test_add_both_modes ("/iops/glib/cleanup/finalizes-event", test_cleanup_finalizes_event);
  test_add_both_modes ("/iops/glib/cleanup/pending-delivery-suppressed", test_cleanup_pending_suppressed);
  test_add_mode ("/iops/glib/cleanup/pending-delivery-suppressed/many", TEST_ONE_SHOT,
                 test_cleanup_pending_suppressed_many);
  test_add_mode ("/iops/glib/cleanup/pending-delivery-suppressed/many-cold", TEST_ONE_SHOT,
                 test_cleanup_pending_suppressed_many_cold);
  test_add_mode ("/iops/glib/cleanup/pending-delivery-suppressed/by-timer", TEST_ONE_SHOT,
                 test_cleanup_pending_suppressed_by_timer);
  test_add_mode ("/iops/glib/cleanup/uses-stored-fd", TEST_ONE_SHOT, test_cleanup_uses_stored_fd);
  test_add_mode ("/iops/glib/cleanup/then-watch", TEST_ONE_SHOT, test_cleanup_then_watch);

  return g_test_run ();
}

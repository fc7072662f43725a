/* test-refs.c — rule 6 of DESIGN.md: the references the IOPS keeps on fd
 * watches, and what callbacks may do with their own event and others
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Every case runs on every backend (IOPS_GLIB_BACKEND) and asserts only
 * what DESIGN.md promises; a case whose rule holds in both watch modes
 * runs in each (its persistent run ends in "/persistent"). Timers' side
 * of the rule is in test-timer.c, disposal's in test-loop.c.
 */
#include <unistd.h>

#include "iops-test-util.h"

typedef TestFixture Fixture;

/* An event that was never watched is never held: factories, constructors
 * and creating an event arm nothing and keep no reference. */
static void
test_factory_event_not_held (Fixture       *f,
                             gconstpointer  data)
{
  IopsIOEvent *event = iops_iops_io_event_factory (f->iops);
  IopsTimerEvent *timer = iops_iops_timer_event_factory (f->iops);

  g_assert_nonnull (event);
  g_assert_nonnull (timer);
  /* The interface's default factories: plain events. */
  g_assert_true (G_OBJECT_TYPE (event) == IOPS_TYPE_IO_EVENT);
  g_assert_true (G_OBJECT_TYPE (timer) == IOPS_TYPE_TIMER_EVENT);
  g_assert_cmpuint (G_OBJECT (event)->ref_count, ==, 1);
  g_assert_cmpuint (G_OBJECT (timer)->ref_count, ==, 1);
  g_assert_cmpint (iops_io_event_get_fd (event), ==, -1);

  /* Two calls, two objects. */
  {
    g_autoptr(IopsIOEvent) another = iops_iops_io_event_factory (f->iops);
    g_autoptr(IopsTimerEvent) another_timer = iops_iops_timer_event_factory (f->iops);

    g_assert_true (another != event);
    g_assert_true (another_timer != timer);
  }

  /* Creating arms nothing (start_watching returns at once, rule 8), and
   * the IOPS holds neither. */
  g_assert_true (test_start_watching_bounded (f->context, f->iops));
  g_assert_finalize_object (event);
  g_assert_finalize_object (timer);

  /* Nor a plain or derived one that never saw a WATCH. */
  g_assert_finalize_object (iops_io_event_new (-1));
  g_assert_finalize_object (test_io_event_new (-1));
}

typedef struct
{
  Fixture  *f;
  gboolean  done;
} Done;

static void
hook_cleanup_self (TestIOEvent    *event,
                   IopsEventFlags  ready,
                   gpointer        data)
{
  Done *d = data;

  test_cleanup (d->f->iops, event);
  d->done = TRUE;
}

static void
test_armed_survives_unref (Fixture       *f,
                           gconstpointer  data)
{
  int s[2];
  TestIOEvent *ev;
  Done d = { f, FALSE };
  gpointer weak;

  test_socketpair (s);
  ev = test_io_event_new (s[0]);
  ev->hook = hook_cleanup_self;
  ev->hook_data = &d;
  weak = ev;
  g_object_add_weak_pointer (G_OBJECT (ev), &weak);

  test_watch (f->iops, ev, IOPS_READ_EVENT);
  g_object_unref (ev);
  g_assert_nonnull (weak);

  /* Delivered to an event only the IOPS holds; its CLEANUP frees it. */
  test_write_byte (s[1]);
  g_assert_true (test_iterate_until (f->context, &d.done, TEST_DEADLINE_MS));
  g_assert_null (weak);

  test_close_pair (s);
}

static void
test_armed_released_at_dispose (Fixture       *f,
                                gconstpointer  data)
{
  int s[2];
  TestIOEvent *ev;

  test_socketpair (s);
  ev = test_io_event_new (s[0]);
  test_fixture_track (f, ev);
  test_watch (f->iops, ev, IOPS_READ_EVENT);
  g_object_unref (ev);
  /* Held while armed; teardown checks that the IOPS's disposal frees it. */
  g_assert_nonnull (f->weak[0]);
  test_close_pair (s);
}

typedef struct
{
  Fixture  *f;
  gpointer  weak;
  gboolean  cleanup;    /* CLEANUP before the unref */
  gboolean  done;
} UnrefInCallback;

static void
hook_unref_self (TestIOEvent    *event,
                 IopsEventFlags  ready,
                 gpointer        data)
{
  UnrefInCallback *u = data;

  g_assert_false (u->done);
  test_drain (test_io_event_fd (event));
  if (u->cleanup)
    test_cleanup (u->f->iops, event);
  g_object_unref (event);
  /* The IOPS holds the event for the length of its callback. */
  g_assert_nonnull (u->weak);
  u->done = TRUE;
}

static void
check_unref_in_callback (Fixture  *f,
                         gboolean  do_cleanup)
{
  int s[2];
  TestIOEvent *ev;
  UnrefInCallback u = { f, NULL, do_cleanup, FALSE };

  test_socketpair (s);
  ev = test_io_event_new (s[0]);
  ev->hook = hook_unref_self;
  ev->hook_data = &u;
  u.weak = ev;
  g_object_add_weak_pointer (G_OBJECT (ev), &u.weak);
  test_fixture_track (f, ev);

  test_watch (f->iops, ev, IOPS_READ_EVENT);
  test_write_byte (s[1]);
  g_assert_true (test_iterate_until (f->context, &u.done, TEST_DEADLINE_MS));

  /* After CLEANUP nothing holds it once the callback returned; without,
   * the IOPS may keep it until its disposal (checked in teardown). */
  if (do_cleanup)
    g_assert_null (u.weak);
  else if (u.weak != NULL)
    g_object_remove_weak_pointer (u.weak, &u.weak);

  test_close_pair (s);
}

static void
test_unref_in_callback (Fixture       *f,
                        gconstpointer  data)
{
  check_unref_in_callback (f, FALSE);
}

static void
test_cleanup_and_unref_in_callback (Fixture       *f,
                                    gconstpointer  data)
{
  check_unref_in_callback (f, TRUE);
}

typedef struct
{
  Fixture  *f;
  int       peer;
  gboolean  done;
} Rewatch;

/* First call: drop the consumer's reference and watch again; second call:
 * clean up. */
static void
hook_unref_rewatch_cleanup (TestIOEvent    *event,
                            IopsEventFlags  ready,
                            gpointer        data)
{
  Rewatch *r = data;

  test_drain (test_io_event_fd (event));
  if (test_io_event_total (event) == 1)
    {
      g_object_unref (event);
      test_watch (r->f->iops, event, IOPS_READ_EVENT);
      test_write_byte (r->peer);
    }
  else
    {
      test_cleanup (r->f->iops, event);
      r->done = TRUE;
    }
}

static void
test_rewatch_after_unref_in_callback (Fixture       *f,
                                      gconstpointer  data)
{
  int s[2];
  TestIOEvent *ev;
  Rewatch r = { f, -1, FALSE };
  gpointer weak;

  test_socketpair (s);
  r.peer = s[1];
  ev = test_io_event_new (s[0]);
  ev->hook = hook_unref_rewatch_cleanup;
  ev->hook_data = &r;
  weak = ev;
  g_object_add_weak_pointer (G_OBJECT (ev), &weak);

  test_watch (f->iops, ev, IOPS_READ_EVENT);
  test_write_byte (s[1]);
  /* The second callback's CLEANUP drops the last reference. */
  g_assert_true (test_iterate_until (f->context, &r.done, TEST_DEADLINE_MS));
  g_assert_null (weak);

  test_close_pair (s);
}

typedef struct
{
  Fixture     *f;
  TestIOEvent *other;
  gpointer     other_weak;
} Other;

static void
hook_watch_other (TestIOEvent    *event,
                  IopsEventFlags  ready,
                  gpointer        data)
{
  Other *o = data;

  test_watch (o->f->iops, o->other, IOPS_READ_EVENT);
}

static void
test_callback_watches_other (Fixture       *f,
                             gconstpointer  data)
{
  int sa[2], sb[2];
  TestIOEvent *a, *b;
  Other o = { f, NULL, NULL };

  test_socketpair (sa);
  test_socketpair (sb);
  a = test_io_event_new (sa[0]);
  b = test_io_event_new (sb[0]);
  o.other = b;
  a->hook = hook_watch_other;
  a->hook_data = &o;
  test_write_byte (sb[1]);

  test_watch (f->iops, a, IOPS_READ_EVENT);
  test_write_byte (sa[1]);
  test_wait_calls (f->context, a, 1);
  g_assert_cmpuint (test_io_event_total (b), ==, 0);
  test_wait_calls (f->context, b, 1);
  test_assert_calls (b, 1, 0, 0);

  test_cleanup (f->iops, a);
  test_cleanup (f->iops, b);
  g_assert_finalize_object (a);
  g_assert_finalize_object (b);
  test_close_pair (sa);
  test_close_pair (sb);
}

static void
hook_cleanup_other (TestIOEvent    *event,
                    IopsEventFlags  ready,
                    gpointer        data)
{
  Other *o = data;

  test_cleanup (o->f->iops, o->other);
  g_clear_object (&o->other);
  /* Not in a callback of its own: nothing may hold it now. */
  g_assert_null (o->other_weak);
}

static void
test_callback_cleans_up_other (Fixture       *f,
                               gconstpointer  data)
{
  int sa[2], sb[2];
  TestIOEvent *a;
  Other o = { f, NULL, NULL };

  test_socketpair (sa);
  test_socketpair (sb);
  a = test_io_event_new (sa[0]);
  o.other = test_io_event_new (sb[0]);
  o.other_weak = o.other;
  g_object_add_weak_pointer (G_OBJECT (o.other), &o.other_weak);
  a->hook = hook_cleanup_other;
  a->hook_data = &o;

  test_watch (f->iops, o.other, IOPS_READ_EVENT);
  test_watch (f->iops, a, IOPS_READ_EVENT);
  test_write_byte (sa[1]);
  test_wait_calls (f->context, a, 1);
  g_assert_null (o.other);
  g_assert_null (o.other_weak);

  /* The freed event's fd turning ready is nobody's business. */
  test_write_byte (sb[1]);
  test_assert_quiet (f->context);

  test_cleanup (f->iops, a);
  g_assert_finalize_object (a);
  test_close_pair (sa);
  test_close_pair (sb);
}

int
main (int   argc,
      char *argv[])
{
  test_init (&argc, &argv);

  test_add_mode ("/iops/glib/refs/factory-event-not-held", TEST_ONE_SHOT, test_factory_event_not_held);
  test_add_both_modes ("/iops/glib/refs/armed-survives-unref", test_armed_survives_unref);
  test_add_both_modes ("/iops/glib/refs/armed-released-at-dispose", test_armed_released_at_dispose);
  test_add_both_modes ("/iops/glib/refs/unref-in-callback", test_unref_in_callback);
  test_add_both_modes ("/iops/glib/refs/cleanup-and-unref-in-callback", test_cleanup_and_unref_in_callback);
  test_add_mode ("/iops/glib/refs/rewatch-after-unref-in-callback", TEST_ONE_SHOT,
                 test_rewatch_after_unref_in_callback);
  test_add_mode ("/iops/glib/refs/callback-watches-other", TEST_ONE_SHOT, test_callback_watches_other);
  test_add_mode ("/iops/glib/refs/callback-cleans-up-other", TEST_ONE_SHOT, test_callback_cleans_up_other);

  return g_test_run ();
}

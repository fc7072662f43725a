/* test-properties.c — rule 13 of DESIGN.md: the priority and persistent
 * properties apply from each event's next WATCH; and the properties'
 * defaults, notifications and the backend in use
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Every case runs on every backend (IOPS_GLIB_BACKEND) and asserts only
 * what DESIGN.md promises. A source's priority is observed without timing:
 * against an idle source ready at the same time, or a G_PRIORITY_DEFAULT
 * idle that is always ready and so starves every lower priority. Cases
 * that were written for a bug say so in their comment.
 */
#include <string.h>
#include <unistd.h>

#include "iops-test-util.h"

typedef TestFixture Fixture;

/* -- defaults, notifications, the backend ------------------------------------ */


static void
test_property_defaults (Fixture       *f,
                        gconstpointer  data)
{
  GMainContext *context = NULL;
  int priority = 42;
  gboolean persistent = TRUE;

  g_assert_cmpint (iops_glib_iops_get_priority (f->glib_iops), ==, G_PRIORITY_DEFAULT);
  g_assert_false (iops_glib_iops_get_persistent (f->glib_iops));
  g_assert_true (iops_glib_iops_get_context (f->glib_iops) == f->context);

  g_object_get (f->glib_iops,
                "context", &context,
                "priority", &priority,
                "persistent", &persistent,
                NULL);
  g_assert_true (context == f->context);
  g_assert_cmpint (priority, ==, G_PRIORITY_DEFAULT);
  g_assert_false (persistent);
  g_main_context_unref (context);
}

typedef struct
{
  guint priority;
  guint persistent;
} Notifies;

static void
on_notify (GObject    *object,
           GParamSpec *pspec,
           gpointer    data)
{
  Notifies *notifies = data;

  if (g_str_equal (pspec->name, "priority"))
    notifies->priority++;
  else if (g_str_equal (pspec->name, "persistent"))
    notifies->persistent++;
}

static void
test_property_notify (Fixture       *f,
                      gconstpointer  data)
{
  Notifies notifies = { 0, 0 };
  int priority;
  gboolean persistent;

  g_signal_connect (f->glib_iops, "notify", G_CALLBACK (on_notify), &notifies);

  iops_glib_iops_set_priority (f->glib_iops, G_PRIORITY_LOW);
  g_assert_cmpuint (notifies.priority, ==, 1);
  g_assert_cmpint (iops_glib_iops_get_priority (f->glib_iops), ==, G_PRIORITY_LOW);
  /* No change, no notification. */
  iops_glib_iops_set_priority (f->glib_iops, G_PRIORITY_LOW);
  g_assert_cmpuint (notifies.priority, ==, 1);
  g_object_set (f->glib_iops, "priority", G_PRIORITY_HIGH, NULL);
  g_assert_cmpuint (notifies.priority, ==, 2);
  g_object_set (f->glib_iops, "priority", G_PRIORITY_HIGH, NULL);
  g_assert_cmpuint (notifies.priority, ==, 2);
  g_object_get (f->glib_iops, "priority", &priority, NULL);
  g_assert_cmpint (priority, ==, G_PRIORITY_HIGH);

  iops_glib_iops_set_persistent (f->glib_iops, TRUE);
  g_assert_cmpuint (notifies.persistent, ==, 1);
  g_assert_true (iops_glib_iops_get_persistent (f->glib_iops));
  iops_glib_iops_set_persistent (f->glib_iops, TRUE);
  g_assert_cmpuint (notifies.persistent, ==, 1);
  g_object_set (f->glib_iops, "persistent", FALSE, NULL);
  g_assert_cmpuint (notifies.persistent, ==, 2);
  g_object_set (f->glib_iops, "persistent", FALSE, NULL);
  g_assert_cmpuint (notifies.persistent, ==, 2);
  g_object_get (f->glib_iops, "persistent", &persistent, NULL);
  g_assert_false (persistent);

  /* Neither setter notifies the other property. */
  g_assert_cmpuint (notifies.priority, ==, 2);
}


/* The backend property names what is in use; the environment chose it. */
static void
test_property_backend (Fixture       *f,
                       gconstpointer  data)
{
  const char *env = g_getenv ("IOPS_GLIB_BACKEND");
  g_autofree char *name = NULL;
  IopsGLibIOPS *forced;

  g_object_get (f->glib_iops, "backend", &name, NULL);
  g_assert_nonnull (name);
  g_assert_cmpstr (name, ==, iops_glib_iops_get_backend (f->glib_iops));
  if (env != NULL && *env != '\0')
    g_assert_cmpstr (name, ==, env);

  forced = g_object_new (IOPS_TYPE_GLIB_IOPS, "context", f->context,
                         "backend", "gsource", NULL);
  g_assert_cmpstr (iops_glib_iops_get_backend (forced), ==, "gsource");
  g_assert_finalize_object (forced);
}

/* -- priority: against a source ready at the same time ------------------------ */

typedef struct
{
  char     seq[4];
  guint    len;
  gboolean done;
} Order;

static void
order_add (Order *order,
           char   c)
{
  g_assert_cmpuint (order->len, <, 2);
  order->seq[order->len++] = c;
  order->done = order->len == 2;
}

static gboolean
on_idle (gpointer data)
{
  order_add (data, 'i');
  return G_SOURCE_REMOVE;
}

static void
hook_order (TestIOEvent    *event,
            IopsEventFlags  ready,
            gpointer        data)
{
  test_drain (test_io_event_fd (event));
  order_add (data, 'w');
}

/* Makes @peer's socket readable and a G_PRIORITY_DEFAULT idle ready at the
 * same time; returns which of them dispatched first ("wi" or "iw"). */
static const char *
race_against_idle (Fixture *f,
                   Order   *order,
                   int      peer)
{
  GSource *idle;

  memset (order, 0, sizeof *order);
  test_write_byte (peer);
  idle = test_add_idle (f->context, G_PRIORITY_DEFAULT, on_idle, order);
  g_assert_true (test_iterate_until (f->context, &order->done, TEST_DEADLINE_MS));
  g_source_unref (idle);
  return order->seq;
}

static void
test_priority_orders_against_other_sources (Fixture       *f,
                                            gconstpointer  data)
{
  int s[2];
  TestIOEvent *ev;
  Order order;

  test_socketpair (s);
  ev = test_io_event_new (s[0]);
  ev->hook = hook_order;
  ev->hook_data = &order;

  iops_glib_iops_set_priority (f->glib_iops, G_PRIORITY_HIGH);
  test_watch (f->iops, ev, IOPS_READ_EVENT);
  g_assert_cmpstr (race_against_idle (f, &order, s[1]), ==, "wi");

  iops_glib_iops_set_priority (f->glib_iops, G_PRIORITY_LOW);
  test_watch (f->iops, ev, IOPS_READ_EVENT);
  g_assert_cmpstr (race_against_idle (f, &order, s[1]), ==, "iw");

  test_cleanup (f->iops, ev);
  g_assert_finalize_object (ev);
  test_close_pair (s);
}

/* -- priority: against an idle that is always ready --------------------------- */


/* A G_PRIORITY_DEFAULT idle that is always ready starves every source of a
 * lower priority, and runs side by side with sources of its own priority.
 * That makes a source's priority observable without timing. */
typedef struct
{
  Fixture        *f;
  TestIOEvent    *event;
  TestTimerEvent *timer;
  guint           runs_after_first;
  gboolean        busy;            /* the idle is still attached */
  gboolean        first_while_busy;
  gboolean        second_while_busy;
  gboolean        done;
} Busy;

#define BUSY_RUNS_AFTER 50

static guint
busy_count (Busy *busy)
{
  return busy->event != NULL ? test_io_event_total (busy->event) : busy->timer->n_fired;
}

static gboolean
busy_idle (gpointer data)
{
  Busy *busy = data;

  if (busy_count (busy) == 0)
    return G_SOURCE_CONTINUE;
  if (++busy->runs_after_first < BUSY_RUNS_AFTER)
    return G_SOURCE_CONTINUE;
  busy->busy = FALSE;
  return G_SOURCE_REMOVE;
}

static void
busy_record (Busy *busy)
{
  if (busy_count (busy) == 1)
    busy->first_while_busy = busy->busy;
  else
    {
      busy->second_while_busy = busy->busy;
      busy->done = TRUE;
    }
}

static void
busy_io_hook (TestIOEvent    *event,
              IopsEventFlags  ready,
              gpointer        data)
{
  Busy *busy = data;

  busy_record (busy);
  if (busy_count (busy) == 1)
    test_watch (busy->f->iops, event, IOPS_WRITE_EVENT);
}

static void
busy_timer_hook (TestTimerEvent *timer,
                 gpointer        data)
{
  Busy *busy = data;

  busy_record (busy);
  if (busy_count (busy) == 1)
    test_arm (busy->f->iops, timer, 0);
}

static GSource *
busy_attach (Busy *busy)
{
  busy->busy = TRUE;
  return test_add_idle (busy->f->context, G_PRIORITY_DEFAULT, busy_idle, busy);
}

static void
busy_run (Busy *busy)
{
  GSource *idle = busy_attach (busy);

  g_assert_true (test_iterate_until (busy->f->context, &busy->done, TEST_DEADLINE_MS));
  g_source_destroy (idle);
  g_source_unref (idle);

  /* Armed at G_PRIORITY_DEFAULT: delivered alongside the busy idle. */
  g_assert_true (busy->first_while_busy);
  /* Re-armed after the change to G_PRIORITY_LOW: only once it is idle. */
  g_assert_false (busy->second_while_busy);
}


/* A watch keeps the priority in force at its WATCH; its next WATCH takes
 * the new one, both ways. */
static void
test_priority_watch_from_next_watch (Fixture       *f,
                                     gconstpointer  data)
{
  int s[2];
  TestIOEvent *ev;
  Order order;
  Busy busy = { .f = f };

  test_socketpair (s);
  ev = test_io_event_new (s[0]);
  ev->hook = hook_order;
  ev->hook_data = &order;

  /* An armed watch keeps the priority of its WATCH ... */
  iops_glib_iops_set_priority (f->glib_iops, G_PRIORITY_LOW);
  test_watch (f->iops, ev, IOPS_READ_EVENT);
  iops_glib_iops_set_priority (f->glib_iops, G_PRIORITY_HIGH);
  g_assert_cmpstr (race_against_idle (f, &order, s[1]), ==, "iw");

  /* ... and the next WATCH takes the new one, both ways. */
  test_watch (f->iops, ev, IOPS_READ_EVENT);
  iops_glib_iops_set_priority (f->glib_iops, G_PRIORITY_LOW);
  g_assert_cmpstr (race_against_idle (f, &order, s[1]), ==, "wi");

  test_watch (f->iops, ev, IOPS_READ_EVENT);
  g_assert_cmpstr (race_against_idle (f, &order, s[1]), ==, "iw");

  /* The same from G_PRIORITY_DEFAULT, which runs side by side with a busy
   * idle of its priority, to G_PRIORITY_LOW, which it starves; the
   * callback re-arms (writable at once). */
  ev->n_r = ev->n_w = ev->n_rw = 0;
  ev->hook = busy_io_hook;
  ev->hook_data = &busy;
  busy.event = ev;
  iops_glib_iops_set_priority (f->glib_iops, G_PRIORITY_DEFAULT);
  test_watch (f->iops, ev, IOPS_WRITE_EVENT);
  /* Applies from the event's next WATCH, not to the armed one. */
  iops_glib_iops_set_priority (f->glib_iops, G_PRIORITY_LOW);
  busy_run (&busy);
  g_assert_cmpuint (ev->n_w, ==, 2);

  test_cleanup (f->iops, ev);
  g_assert_finalize_object (ev);
  test_close_pair (s);
}


static void
test_priority_timer_from_next_watch (Fixture       *f,
                     gconstpointer  data)
{
  g_autoptr(TestTimerEvent) timer = test_timer_event_new ();
  Busy busy = { .f = f };

  timer->hook = busy_timer_hook;
  timer->hook_data = &busy;
  busy.timer = timer;

  test_arm (f->iops, timer, 0);
  iops_glib_iops_set_priority (f->glib_iops, G_PRIORITY_LOW);
  busy_run (&busy);
  g_assert_cmpuint (timer->n_fired, ==, 2);
}


typedef struct
{
  gboolean        busy;
  TestTimerEvent *high;
  TestTimerEvent *low;
  gboolean        high_while_busy;
  gboolean        low_while_busy;
  gboolean        high_fired;
  gboolean        low_fired;
} TwoTimers;

static gboolean
always_continue (gpointer data)
{
  return G_SOURCE_CONTINUE;
}

static void
two_timers_hook (TestTimerEvent *timer,
                 gpointer        data)
{
  TwoTimers *two = data;

  if (timer == two->high)
    {
      two->high_while_busy = two->busy;
      two->high_fired = TRUE;
    }
  else
    {
      two->low_while_busy = two->busy;
      two->low_fired = TRUE;
    }
}

static void
test_priority_per_timer (Fixture       *f,
                         gconstpointer  data)
{
  g_autoptr(TestTimerEvent) high = test_timer_event_new ();
  g_autoptr(TestTimerEvent) low = test_timer_event_new ();
  TwoTimers two = { .busy = TRUE, .high = high, .low = low };
  GSource *idle;
  guint busy_runs = 0;

  high->hook = two_timers_hook;
  high->hook_data = &two;
  low->hook = two_timers_hook;
  low->hook_data = &two;

  /* Two armed timers with different priorities: each keeps the priority
   * of its own latest WATCH. */
  test_arm (f->iops, high, 0);
  iops_glib_iops_set_priority (f->glib_iops, G_PRIORITY_LOW);
  test_arm (f->iops, low, 0);

  idle = test_add_idle (f->context, G_PRIORITY_DEFAULT, always_continue, NULL);

  g_assert_true (test_iterate_until (f->context, &two.high_fired, TEST_DEADLINE_MS));
  /* Let the idle run on for a while with the low timer due. */
  while (two.busy && busy_runs++ < BUSY_RUNS_AFTER)
    g_main_context_iteration (f->context, FALSE);
  g_source_destroy (idle);
  g_source_unref (idle);
  two.busy = FALSE;
  g_assert_true (test_iterate_until (f->context, &two.low_fired, TEST_DEADLINE_MS));

  g_assert_true (two.high_while_busy);
  g_assert_false (two.low_while_busy);
}


/* Regression: a timer at another priority than the first one armed still
 * fires, never early; moving an armed timer to another priority fires it
 * once (rules 7 and 13). */
static void
test_priority_timers_across_priorities (Fixture       *f,
                                        gconstpointer  data)
{
  g_autoptr(TestTimerEvent) far = test_timer_event_new ();
  g_autoptr(TestTimerEvent) near = test_timer_event_new ();
  g_autoptr(TestTimerEvent) moved = test_timer_event_new ();
  gint64 armed;

  iops_glib_iops_set_priority (f->glib_iops, G_PRIORITY_LOW);
  test_arm (f->iops, far, 60 * G_USEC_PER_SEC);
  iops_glib_iops_set_priority (f->glib_iops, G_PRIORITY_HIGH);
  armed = g_get_monotonic_time ();
  test_arm (f->iops, near, 2000);
  g_assert_true (test_iterate_until_count (f->context, &near->n_fired, 1, TEST_DEADLINE_MS));
  g_assert_cmpint (near->fired_at - armed, >=, 2000);

  iops_glib_iops_set_priority (f->glib_iops, G_PRIORITY_DEFAULT);
  test_arm (f->iops, moved, 50 * G_USEC_PER_SEC);
  iops_glib_iops_set_priority (f->glib_iops, G_PRIORITY_DEFAULT_IDLE);
  armed = g_get_monotonic_time ();
  test_arm (f->iops, moved, 3000);
  g_assert_true (test_iterate_until_count (f->context, &moved->n_fired, 1, TEST_DEADLINE_MS));
  g_assert_cmpint (moved->fired_at - armed, >=, 3000);
  test_iterate_for (f->context, 20);
  g_assert_cmpuint (moved->n_fired, ==, 1);
  g_assert_cmpuint (near->n_fired, ==, 1);
  g_assert_cmpuint (far->n_fired, ==, 0);

  test_cleanup_timer (f->iops, far);
  test_cleanup_timer (f->iops, near);
  test_cleanup_timer (f->iops, moved);
}

typedef struct
{
  Fixture     *f;
  TestHotFill *fill;
  GString     *order;
  int          fd;
} PrioChange;

static void
prio_change_hook (TestIOEvent    *event,
                  IopsEventFlags  ready,
                  gpointer        data)
{
  PrioChange *pc = data;

  test_drain (pc->fd);
  if (event->n_r == 1)
    {
      /* Re-arm at a lower priority, then let go of another watch. */
      iops_glib_iops_set_priority (pc->f->glib_iops, G_PRIORITY_LOW);
      test_watch (pc->f->iops, event, IOPS_READ_EVENT);
      test_cleanup (pc->f->iops, pc->fill->events[0]);
      g_clear_object (&pc->fill->events[0]);
      iops_glib_iops_set_priority (pc->f->glib_iops, G_PRIORITY_DEFAULT);
    }
  else
    {
      g_string_append_c (pc->order, 'X');
    }
}

static gboolean
prio_idle (gpointer data)
{
  g_string_append_c (data, 'I');
  return G_SOURCE_REMOVE;
}

static gboolean
order_has_two (gconstpointer data)
{
  return ((const GString *) data)->len >= 2;
}

/* Regression, with the epoll backend's hot set full: the callback re-arms
 * its own event at G_PRIORITY_LOW, then cleans up another event; the next
 * delivery must come at G_PRIORITY_LOW, after a source of
 * G_PRIORITY_DEFAULT_IDLE ready at the same time. */
static void
test_priority_rearm_then_cleanup_other (Fixture       *f,
                                        gconstpointer  data)
{
  TestHotFill fill;
  PrioChange pc;
  int s[2];
  g_autoptr(TestIOEvent) event = NULL;

  test_hot_fill_setup (&fill, f);

  test_socketpair (s);
  event = test_io_event_new (s[0]);
  pc = (PrioChange) { f, &fill, g_string_new (NULL), s[0] };
  event->hook = prio_change_hook;
  event->hook_data = &pc;

  test_watch (f->iops, event, IOPS_READ_EVENT);
  test_write_byte (s[1]);
  g_assert_true (test_iterate_until_count (f->context, &event->n_r, 1, TEST_DEADLINE_MS));
  g_assert_cmpuint (event->n_r, ==, 1);

  /* Ready at the same time: the idle (200) must run before the watch (300). */
  test_write_byte (s[1]);
  g_source_unref (test_add_idle (f->context, G_PRIORITY_DEFAULT_IDLE, prio_idle, pc.order));
  test_iterate_until_done (f->context, order_has_two, pc.order, TEST_DEADLINE_MS);
  g_assert_cmpstr (pc.order->str, ==, "IX");

  test_cleanup (f->iops, event);
  g_string_free (pc.order, TRUE);
  test_close_pair (s);
  test_hot_fill_teardown (&fill);
}


#define N_PRIORITIES_USED 3000

/* Bug: every priority ever used kept a source (on epoll, an epoll fd too)
 * and a timer heap until disposal, and heaps were found by a linear scan:
 * 3,000 priorities used once held 3,000 extra fds and made an idle
 * iteration take milliseconds. What a priority no longer uses is released. */
static void
test_priority_unused_released (Fixture       *f,
                               gconstpointer  data)
{
  int s[2];
  guint fds_before, sources_before;

  test_socketpair (s);
  test_write_byte (s[1]);   /* never read: the watch is ready at once */
  fds_before = test_count_open_fds ();
  sources_before = test_count_sources (f->context);

  for (int p = 0; p < N_PRIORITIES_USED; p++)
    {
      gboolean ready, fired;
      TestIOEvent *event = test_io_event_new_flagged (s[0], &ready);
      TestTimerEvent *timer = test_timer_event_new_flagged (&fired);

      iops_glib_iops_set_priority (f->glib_iops, G_PRIORITY_HIGH + p);
      test_watch (f->iops, event, IOPS_READ_EVENT);
      test_arm (f->iops, timer, 0);
      g_assert_true (test_iterate_until (f->context, &ready, TEST_DEADLINE_MS));
      g_assert_true (test_iterate_until (f->context, &fired, TEST_DEADLINE_MS));
      test_cleanup (f->iops, event);
      test_cleanup_timer (f->iops, timer);
      g_assert_finalize_object (event);
      g_assert_finalize_object (timer);
    }
  iops_glib_iops_set_priority (f->glib_iops, G_PRIORITY_DEFAULT);

  g_assert_cmpuint (test_count_open_fds (), ==, fds_before);
  g_assert_cmpuint (test_count_sources (f->context), ==, sources_before);
  test_close_pair (s);
}

/* -- persistent ------------------------------------------------------------------ */

/* What the merged case's event is watched for: READ with a byte written and
 * never read, or WRITE on a writable socket; ready all along either way. */
static guint
watched_calls (TestIOEvent    *event,
               IopsEventFlags  flags)
{
  return flags == IOPS_READ_EVENT ? event->n_r : event->n_w;
}

/* An armed watch keeps the mode of its WATCH when the property changes,
 * both ways; its next WATCH takes the new one. */
static void
test_persistent_from_next_watch (Fixture       *f,
                                 gconstpointer  data)
{
  IopsEventFlags flags = GPOINTER_TO_UINT (data);
  int s[2];
  TestIOEvent *ev;
  guint n;

  test_socketpair (s);
  ev = test_io_event_new (s[0]);
  if (flags == IOPS_READ_EVENT)
    test_write_byte (s[1]);

  /* Armed one-shot, then the mode changes: this watch stays one-shot. */
  test_watch (f->iops, ev, flags);
  iops_glib_iops_set_persistent (f->glib_iops, TRUE);
  test_wait_calls (f->context, ev, 1);
  test_assert_quiet (f->context);
  g_assert_cmpuint (test_io_event_total (ev), ==, 1);

  /* The next WATCH is persistent: delivered again and again ... */
  test_watch (f->iops, ev, flags);
  test_wait_calls (f->context, ev, 4);

  /* ... and stays so when the mode changes back. */
  iops_glib_iops_set_persistent (f->glib_iops, FALSE);
  test_wait_calls (f->context, ev, test_io_event_total (ev) + 3);

  /* The next WATCH is one-shot again. */
  test_watch (f->iops, ev, flags);
  n = test_io_event_total (ev);
  test_wait_calls (f->context, ev, n + 1);
  test_assert_quiet (f->context);
  g_assert_cmpuint (test_io_event_total (ev), ==, n + 1);
  g_assert_cmpuint (test_io_event_total (ev), ==, watched_calls (ev, flags));

  test_cleanup (f->iops, ev);
  g_assert_finalize_object (ev);
  test_close_pair (s);
}

int
main (int   argc,
      char *argv[])
{
  test_init (&argc, &argv);

#define ADD(path, func, data) \
  g_test_add ("/iops/glib/properties/" path, Fixture, data, test_fixture_setup, func, \
              test_fixture_teardown_quiet)

  ADD ("defaults", test_property_defaults, NULL);
  ADD ("notify", test_property_notify, NULL);
  ADD ("backend", test_property_backend, NULL);
  ADD ("priority-orders-against-other-sources", test_priority_orders_against_other_sources, NULL);
  ADD ("priority-from-next-watch/watch", test_priority_watch_from_next_watch, NULL);
  ADD ("priority-from-next-watch/timer", test_priority_timer_from_next_watch, NULL);
  ADD ("priority-per-timer", test_priority_per_timer, NULL);
  ADD ("priority-timers-across-priorities", test_priority_timers_across_priorities, NULL);
  ADD ("priority-rearm-then-cleanup-other", test_priority_rearm_then_cleanup_other, NULL);
  ADD ("priority-unused-released", test_priority_unused_released, NULL);
  ADD ("persistent-from-next-watch/read", test_persistent_from_next_watch,
       GUINT_TO_POINTER (IOPS_READ_EVENT));
  ADD ("persistent-from-next-watch/write", test_persistent_from_next_watch,
       GUINT_TO_POINTER (IOPS_WRITE_EVENT));

#undef ADD

  return g_test_run ();
}

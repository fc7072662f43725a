/* test-timer.c — rule 7 of DESIGN.md: one-shot timers, and the timers'
 * side of rules 2, 4, 5 and 6
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Every case runs on every backend (IOPS_GLIB_BACKEND) and asserts only
 * what DESIGN.md promises. Timers across priorities (rule 13) are in
 * test-properties.c.
 */
#include "iops-test-util.h"

typedef TestFixture Fixture;

/* Arms a timer @usecs from now and iterates until it fired: every timer
 * due earlier has had its chance by then. */
static void
run_past (Fixture *f,
          gint64   usecs)
{
  test_run_past (f->context, f->iops, usecs);
}

/* Lets the monotonic clock pass @when without iterating the context, so the
 * next iteration finds every timer due by then at once. This waits for time
 * itself, not for another party. */
static void
let_clock_pass (gint64 when)
{
  gint64 now;

  while ((now = g_get_monotonic_time ()) <= when)
    g_usleep (when - now + 1);
}

/* Records the firing order of a set of timers. */
typedef struct
{
  GPtrArray *fired;
  guint      expected;
  gboolean   done;
} Order;

static void
order_hook (TestTimerEvent *timer,
            gpointer        data)
{
  Order *order = data;

  g_ptr_array_add (order->fired, timer);
  order->done = order->fired->len >= order->expected;
}

static void
order_init (Order           *order,
            TestTimerEvent **timers,
            guint            n)
{
  order->fired = g_ptr_array_new ();
  order->expected = n;
  order->done = FALSE;
  for (guint i = 0; i < n; i++)
    {
      timers[i] = test_timer_event_new ();
      timers[i]->hook = order_hook;
      timers[i]->hook_data = order;
    }
}

static void
order_reset (Order *order)
{
  g_ptr_array_set_size (order->fired, 0);
  order->done = FALSE;
}

static void
order_clear (Fixture         *f,
             Order           *order,
             TestTimerEvent **timers,
             guint            n)
{
  for (guint i = 0; i < n; i++)
    {
      test_cleanup_timer (f->iops, timers[i]);
      g_object_unref (timers[i]);
    }
  g_ptr_array_unref (order->fired);
}

/* Asserts that the timers fired exactly in the order @expected (indices
 * into @timers). */
static void
assert_order (Order           *order,
              TestTimerEvent **timers,
              const guint     *expected,
              guint            n)
{
  g_assert_cmpuint (order->fired->len, ==, n);
  for (guint i = 0; i < n; i++)
    {
      if (order->fired->pdata[i] != timers[expected[i]])
        {
          guint got = G_MAXUINT;

          for (guint j = 0; j < n; j++)
            if (order->fired->pdata[i] == timers[j])
              got = j;
          g_error ("firing %u: expected timer %u, got timer %u", i, expected[i], got);
        }
    }
}

/* Where a timer's deadline lies: the IOPS reads the clock during the
 * WATCH, so between the readings taken just before and just after it. */
typedef struct
{
  gint64 earliest;
  gint64 latest;
} Deadline;

static void
arm_measured (Fixture        *f,
              TestTimerEvent *timer,
              gint64          usecs,
              Deadline       *deadline)
{
  deadline->earliest = g_get_monotonic_time () + usecs;
  test_arm (f->iops, timer, usecs);
  deadline->latest = g_get_monotonic_time () + usecs;
}

/* Asserts that each timer fired once, and that of every two timers whose
 * deadlines certainly differ, the earlier fired first. Only overlapping
 * pairs are left open: a slow WATCH (valgrind) may really swap them. */
static void
assert_deadline_order (Order           *order,
                       TestTimerEvent **timers,
                       const Deadline  *deadlines,
                       guint            n)
{
  g_autofree guint *pos = g_new (guint, n);
  guint decided = 0;

  g_assert_cmpuint (order->fired->len, ==, n);
  for (guint i = 0; i < n; i++)
    {
      guint found = 0;

      for (guint j = 0; j < n; j++)
        if (order->fired->pdata[j] == timers[i])
          {
            pos[i] = j;
            found++;
          }
      g_assert_cmpuint (found, ==, 1);
    }

  for (guint a = 0; a < n; a++)
    for (guint b = 0; b < n; b++)
      if (deadlines[a].latest < deadlines[b].earliest)
        {
          if (pos[a] > pos[b])
            g_error ("timer %u (due by %" G_GINT64_FORMAT ") fired after timer %u "
                     "(due from %" G_GINT64_FORMAT ")",
                     a, deadlines[a].latest, b, deadlines[b].earliest);
          decided++;
        }
  g_test_message ("%u of %u pairs had certainly different deadlines",
                  decided, n * (n - 1) / 2);
}

/* -- tests -------------------------------------------------------------- */

static void
test_fires_once (Fixture       *f,
                 gconstpointer  data)
{
  gboolean fired;
  g_autoptr(TestTimerEvent) timer = test_timer_event_new_flagged (&fired);

  test_arm (f->iops, timer, 1000);
  /* Rule 2: never from inside update_timer, only from the loop. */
  g_assert_cmpuint (timer->n_fired, ==, 0);

  g_assert_true (test_iterate_until (f->context, &fired, TEST_DEADLINE_MS));
  g_assert_cmpuint (timer->n_fired, ==, 1);
  g_assert_cmpint (timer->last_flags, ==, 0);

  run_past (f, 20000);
  g_assert_cmpuint (timer->n_fired, ==, 1);
}

static void
test_zero_not_from_update (Fixture       *f,
                           gconstpointer  data)
{
  gboolean fired;
  g_autoptr(TestTimerEvent) timer = test_timer_event_new_flagged (&fired);

  /* A 0 µs timer is due at once, yet still only the loop may fire it. */
  test_arm (f->iops, timer, 0);
  g_assert_cmpuint (timer->n_fired, ==, 0);
  test_arm (f->iops, timer, 0);
  g_assert_cmpuint (timer->n_fired, ==, 0);

  g_assert_true (test_iterate_until (f->context, &fired, TEST_DEADLINE_MS));
  g_assert_cmpuint (timer->n_fired, ==, 1);
  g_assert_cmpint (timer->last_flags, ==, 0);
}

static const gint64 delays[] = { 0, 1, 100, 1500, 20000 };

static void
test_never_early (Fixture       *f,
                  gconstpointer  data)
{
  for (guint i = 0; i < G_N_ELEMENTS (delays); i++)
    {
      gboolean fired;
      g_autoptr(TestTimerEvent) timer = test_timer_event_new_flagged (&fired);
      gint64 armed_at;

      /* Read before the call: the IOPS's "now" is no earlier. */
      armed_at = g_get_monotonic_time ();
      test_arm (f->iops, timer, delays[i]);
      g_assert_true (test_iterate_until (f->context, &fired, TEST_DEADLINE_MS));

      g_test_message ("delay %" G_GINT64_FORMAT " us fired after %" G_GINT64_FORMAT " us",
                      delays[i], timer->fired_at - armed_at);
      g_assert_cmpint (timer->fired_at - armed_at, >=, delays[i]);
      g_assert_cmpuint (timer->n_fired, ==, 1);
      g_assert_cmpint (timer->last_flags, ==, 0);
      test_cleanup_timer (f->iops, timer);
    }

  /* Microsecond deadlines, again and again on one timer: a 100 µs timer
   * never fires early. (How late it fires is for the benchmarks.) */
  {
    g_autoptr(TestTimerEvent) timer = test_timer_event_new ();

    for (guint i = 0; i < 20; i++)
      {
        gint64 armed = g_get_monotonic_time ();

        test_arm (f->iops, timer, 100);
        g_assert_true (test_iterate_until_count (f->context, &timer->n_fired, i + 1,
                                                 TEST_DEADLINE_MS));
        g_assert_cmpint (timer->fired_at - armed, >=, 100);
      }
    test_cleanup_timer (f->iops, timer);
  }
}

static void
test_never_early_together (Fixture       *f,
                           gconstpointer  data)
{
  TestTimerEvent *timers[G_N_ELEMENTS (delays)];
  gint64 armed_at[G_N_ELEMENTS (delays)];
  gboolean fired[G_N_ELEMENTS (delays)];

  /* All armed at once, so the early ones are delivered while the late ones
   * are pending: none of the late ones may come along too soon. */
  for (guint i = 0; i < G_N_ELEMENTS (delays); i++)
    {
      timers[i] = test_timer_event_new_flagged (&fired[i]);
      armed_at[i] = g_get_monotonic_time ();
      test_arm (f->iops, timers[i], delays[i]);
    }

  for (guint i = 0; i < G_N_ELEMENTS (delays); i++)
    g_assert_true (test_iterate_until (f->context, &fired[i], TEST_DEADLINE_MS));

  for (guint i = 0; i < G_N_ELEMENTS (delays); i++)
    {
      g_assert_cmpint (timers[i]->fired_at - armed_at[i], >=, delays[i]);
      g_assert_cmpuint (timers[i]->n_fired, ==, 1);
      g_assert_cmpint (timers[i]->last_flags, ==, 0);
      test_cleanup_timer (f->iops, timers[i]);
      g_object_unref (timers[i]);
    }
}

/* A WATCH on an armed timer reschedules it: it fires once, counting from
 * the latest WATCH, and the first deadline does not linger as a second
 * firing. */
typedef struct
{
  gint64   first;       /* the first WATCH */
  gboolean first_due;   /* let it fall due, undelivered, before the second */
  gint64   second;      /* the WATCH that reschedules it */
} Reschedule;

static const Reschedule reschedule_later = { 1000, FALSE, 30000 };
/* A minute: only a reschedule can make it fire within the test deadline. */
static const Reschedule reschedule_earlier = { 60 * G_USEC_PER_SEC, FALSE, 1000 };
/* Already due but not yet delivered: a WATCH still moves it. */
static const Reschedule reschedule_due = { 0, TRUE, 20000 };

static void
test_reschedule (Fixture       *f,
                 gconstpointer  data)
{
  const Reschedule *r = data;
  gboolean fired;
  g_autoptr(TestTimerEvent) timer = test_timer_event_new_flagged (&fired);
  gint64 rearmed_at;

  test_arm (f->iops, timer, r->first);
  if (r->first_due)
    let_clock_pass (g_get_monotonic_time ());
  rearmed_at = g_get_monotonic_time ();
  test_arm (f->iops, timer, r->second);

  g_assert_true (test_iterate_until (f->context, &fired, TEST_DEADLINE_MS));
  g_assert_cmpint (timer->fired_at - rearmed_at, >=, r->second);
  g_assert_cmpuint (timer->n_fired, ==, 1);

  run_past (f, 20000);
  g_assert_cmpuint (timer->n_fired, ==, 1);
}

typedef struct
{
  Fixture  *f;
  guint     target;
  gint64    usecs;
  gint64    armed_at;
  gint64    shortest;   /* smallest fired_at - armed_at seen */
  guint     fired_in_chain;
  gboolean  done;
} Chain;

static void
chain_hook (TestTimerEvent *timer,
            gpointer        data)
{
  Chain *chain = data;

  chain->shortest = MIN (chain->shortest, timer->fired_at - chain->armed_at);
  chain->fired_in_chain++;
  if (chain->fired_in_chain < chain->target)
    {
      /* Rule 7: disarmed before the call, so this is a fresh arming. */
      chain->armed_at = g_get_monotonic_time ();
      test_arm (chain->f->iops, timer, chain->usecs);
    }
  else
    {
      chain->done = TRUE;
    }
}

static void
test_rearm_in_callback (Fixture       *f,
                        gconstpointer  data)
{
  g_autoptr(TestTimerEvent) timer = test_timer_event_new ();
  Chain chain = { f, 20, 100, 0, G_MAXINT64, 0, FALSE };

  timer->hook = chain_hook;
  timer->hook_data = &chain;

  chain.armed_at = g_get_monotonic_time ();
  test_arm (f->iops, timer, chain.usecs);
  g_assert_true (test_iterate_until (f->context, &chain.done, TEST_DEADLINE_MS));

  g_assert_cmpuint (timer->n_fired, ==, chain.target);
  g_assert_cmpint (chain.shortest, >=, chain.usecs);
  g_assert_cmpint (timer->last_flags, ==, 0);

  run_past (f, 20000);
  g_assert_cmpuint (timer->n_fired, ==, chain.target);
}

static void
rearm_zero_hook (TestTimerEvent *timer,
                 gpointer        data)
{
  Chain *chain = data;

  chain->fired_in_chain++;
  if (chain->fired_in_chain < chain->target)
    test_arm (chain->f->iops, timer, 0);
  else
    chain->done = TRUE;
}

static void
test_rearm_zero_in_callback (Fixture       *f,
                             gconstpointer  data)
{
  g_autoptr(TestTimerEvent) timer = test_timer_event_new ();
  Chain chain = { f, 50, 0, 0, 0, 0, FALSE };
  gboolean other_fired;
  g_autoptr(TestTimerEvent) other = test_timer_event_new_flagged (&other_fired);

  timer->hook = rearm_zero_hook;
  timer->hook_data = &chain;

  /* A timer that keeps re-arming itself with 0 µs must still let a later
   * timer run, and must complete its own chain. */
  test_arm (f->iops, timer, 0);
  test_arm (f->iops, other, 1000);
  g_assert_true (test_iterate_until (f->context, &chain.done, TEST_DEADLINE_MS));
  g_assert_cmpuint (timer->n_fired, ==, chain.target);
  g_assert_true (test_iterate_until (f->context, &other_fired, TEST_DEADLINE_MS));
  g_assert_cmpuint (other->n_fired, ==, 1);
}

static void
test_unwatch_cancels (Fixture       *f,
                      gconstpointer  data)
{
  gboolean fired;
  g_autoptr(TestTimerEvent) timer = test_timer_event_new_flagged (&fired);

  test_arm (f->iops, timer, 1000);
  test_unwatch_timer (f->iops, timer);
  test_unwatch_timer (f->iops, timer);   /* repeating it is harmless */

  run_past (f, 20000);
  g_assert_cmpuint (timer->n_fired, ==, 0);

  /* Still usable: a WATCH after UNWATCH arms it again. */
  test_arm (f->iops, timer, 0);
  g_assert_true (test_iterate_until (f->context, &fired, TEST_DEADLINE_MS));
  g_assert_cmpuint (timer->n_fired, ==, 1);
}

static void
test_unwatch_due (Fixture       *f,
                  gconstpointer  data)
{
  gboolean fired;
  g_autoptr(TestTimerEvent) timer = test_timer_event_new_flagged (&fired);

  /* Due but not yet delivered: UNWATCH still wins. */
  test_arm (f->iops, timer, 0);
  let_clock_pass (g_get_monotonic_time ());
  test_unwatch_timer (f->iops, timer);

  run_past (f, 10000);
  g_assert_cmpuint (timer->n_fired, ==, 0);
}

typedef struct
{
  Fixture        *f;
  TestTimerEvent *victim;
  IopsEvAction    action;
  gboolean        done;
} Canceller;

static void
cancel_hook (TestTimerEvent *timer,
             gpointer        data)
{
  Canceller *canceller = data;

  iops_iops_update_timer (canceller->f->iops, IOPS_TIMER_EVENT (canceller->victim),
                          canceller->action, 0);
  canceller->done = TRUE;
}

static void
test_unwatch_from_other_callback (Fixture       *f,
                                  gconstpointer  data)
{
  g_autoptr(TestTimerEvent) first = test_timer_event_new ();
  g_autoptr(TestTimerEvent) second = test_timer_event_new ();
  Canceller canceller = { f, second, IOPS_EVACTION_UNWATCH, FALSE };

  first->hook = cancel_hook;
  first->hook_data = &canceller;

  /* The second is not due yet when the first fires. */
  test_arm (f->iops, first, 1000);
  test_arm (f->iops, second, 10000);
  g_assert_true (test_iterate_until (f->context, &canceller.done, TEST_DEADLINE_MS));

  run_past (f, 20000);
  g_assert_cmpuint (first->n_fired, ==, 1);
  g_assert_cmpuint (second->n_fired, ==, 0);
}

static void
test_unwatch_due_same_iteration (Fixture       *f,
                                 gconstpointer  data)
{
  const gint64 usecs = GPOINTER_TO_INT (data);
  g_autoptr(TestTimerEvent) first = test_timer_event_new ();
  g_autoptr(TestTimerEvent) second = test_timer_event_new ();
  Canceller canceller = { f, second, IOPS_EVACTION_UNWATCH, FALSE };

  first->hook = cancel_hook;
  first->hook_data = &canceller;

  /* Both due before the context is iterated at all: the loop finds them
   * due together, and the first one's callback cancels the second. */
  test_arm (f->iops, first, usecs);
  test_arm (f->iops, second, usecs);
  let_clock_pass (g_get_monotonic_time () + usecs);

  g_assert_true (test_iterate_until (f->context, &canceller.done, TEST_DEADLINE_MS));
  run_past (f, 20000);
  g_assert_cmpuint (first->n_fired, ==, 1);
  g_assert_cmpuint (second->n_fired, ==, 0);
}

static void
test_cleanup_due_same_iteration (Fixture       *f,
                                 gconstpointer  data)
{
  g_autoptr(TestTimerEvent) first = test_timer_event_new ();
  TestTimerEvent *second = test_timer_event_new ();
  Canceller canceller = { f, second, IOPS_EVACTION_CLEANUP, FALSE };
  gpointer second_alive = second;

  g_object_add_weak_pointer (G_OBJECT (second), &second_alive);
  first->hook = cancel_hook;
  first->hook_data = &canceller;

  test_arm (f->iops, first, 0);
  test_arm (f->iops, second, 0);
  /* The IOPS now holds the only reference to the second timer. */
  g_object_unref (second);
  g_assert_nonnull (second_alive);
  let_clock_pass (g_get_monotonic_time ());

  g_assert_true (test_iterate_until (f->context, &canceller.done, TEST_DEADLINE_MS));
  /* CLEANUP dropped the IOPS's references, so the timer is gone; had it
   * fired anyway, valgrind or ASan would see a use after free. */
  g_assert_null (second_alive);
  run_past (f, 20000);
  g_assert_cmpuint (first->n_fired, ==, 1);
}

static void
test_unwatch_after_firing (Fixture       *f,
                           gconstpointer  data)
{
  gboolean fired;
  g_autoptr(TestTimerEvent) timer = test_timer_event_new_flagged (&fired);

  test_arm (f->iops, timer, 100);
  g_assert_true (test_iterate_until (f->context, &fired, TEST_DEADLINE_MS));
  test_unwatch_timer (f->iops, timer);
  test_unwatch_timer (f->iops, timer);
  g_assert_cmpuint (timer->n_fired, ==, 1);

  fired = FALSE;
  test_arm (f->iops, timer, 100);
  g_assert_true (test_iterate_until (f->context, &fired, TEST_DEADLINE_MS));
  g_assert_cmpuint (timer->n_fired, ==, 2);
}

static void
test_cleanup_cancels (Fixture       *f,
                      gconstpointer  data)
{
  gboolean fired;
  TestTimerEvent *timer = test_timer_event_new_flagged (&fired);
  gpointer alive = timer;

  g_object_add_weak_pointer (G_OBJECT (timer), &alive);
  test_arm (f->iops, timer, 1000);
  test_cleanup_timer (f->iops, timer);
  test_cleanup_timer (f->iops, timer);   /* repeating it is harmless */

  run_past (f, 20000);
  g_assert_cmpuint (timer->n_fired, ==, 0);

  /* The IOPS keeps nothing: ours was the last reference. */
  g_assert_nonnull (alive);
  g_object_unref (timer);
  g_assert_null (alive);
}

static void
test_cleanup_then_watch (Fixture       *f,
                         gconstpointer  data)
{
  gboolean fired;
  g_autoptr(TestTimerEvent) timer = test_timer_event_new_flagged (&fired);

  test_arm (f->iops, timer, 1000);
  test_cleanup_timer (f->iops, timer);

  /* Rule 5: a later WATCH is a fresh registration. */
  test_arm (f->iops, timer, 100);
  g_assert_true (test_iterate_until (f->context, &fired, TEST_DEADLINE_MS));
  g_assert_cmpuint (timer->n_fired, ==, 1);
}

static void
cleanup_self_hook (TestTimerEvent *timer,
                   gpointer        data)
{
  Canceller *canceller = data;

  /* Re-arm, then destroy: CLEANUP must cancel the new arming too. */
  test_arm (canceller->f->iops, timer, 0);
  test_cleanup_timer (canceller->f->iops, timer);
  canceller->done = TRUE;
}

static void
test_cleanup_in_own_callback (Fixture       *f,
                              gconstpointer  data)
{
  TestTimerEvent *timer = test_timer_event_new ();
  Canceller canceller = { f, NULL, IOPS_EVACTION_CLEANUP, FALSE };
  gpointer alive = timer;

  g_object_add_weak_pointer (G_OBJECT (timer), &alive);
  timer->hook = cleanup_self_hook;
  timer->hook_data = &canceller;

  test_arm (f->iops, timer, 100);
  g_object_unref (timer);
  g_assert_nonnull (alive);

  g_assert_true (test_iterate_until (f->context, &canceller.done, TEST_DEADLINE_MS));
  g_assert_null (alive);
  run_past (f, 10000);
}

static void
test_deadline_order (Fixture       *f,
                     gconstpointer  data)
{
  TestTimerEvent *timers[5];
  Deadline deadlines[G_N_ELEMENTS (timers)];
  Order order;

  order_init (&order, timers, G_N_ELEMENTS (timers));

  /* Armed latest-deadline first. */
  for (guint i = 0; i < G_N_ELEMENTS (timers); i++)
    arm_measured (f, timers[i], (G_N_ELEMENTS (timers) - i) * 5000, &deadlines[i]);

  g_assert_true (test_iterate_until (f->context, &order.done, TEST_DEADLINE_MS));
  assert_deadline_order (&order, timers, deadlines, G_N_ELEMENTS (timers));

  order_clear (f, &order, timers, G_N_ELEMENTS (timers));
}

#define N_FIFO 32

/* Arms timers[arms[0]], timers[arms[1]], … with 0 µs, and fills @expected
 * with the timers in the order of their latest WATCH. */
static void
arm_zero_sequence (Fixture         *f,
                   TestTimerEvent **timers,
                   const guint     *arms,
                   guint            n_arms,
                   guint           *expected)
{
  int last[N_FIFO];
  guint n = 0;

  for (guint i = 0; i < N_FIFO; i++)
    last[i] = -1;
  for (guint i = 0; i < n_arms; i++)
    {
      test_arm (f->iops, timers[arms[i]], 0);
      last[arms[i]] = i;
    }
  for (guint i = 0; i < n_arms; i++)
    if (last[arms[i]] == (int) i)
      expected[n++] = arms[i];
  g_assert_cmpuint (n, ==, N_FIFO);
}

/* Every timer once in index order, then the re-WATCHes in @moves. */
static guint
fifo_arms (guint       *arms,
           const guint *moves,
           guint        n_moves)
{
  guint n = 0;

  for (guint i = 0; i < N_FIFO; i++)
    arms[n++] = i;
  for (guint i = 0; i < n_moves; i++)
    arms[n++] = moves[i];
  return n;
}

static void
test_equal_deadlines_fifo (Fixture       *f,
                           gconstpointer  data)
{
  TestTimerEvent *timers[N_FIFO];
  static const guint move_one[] = { 1 };
  static const guint move_some[] = { 1, 0, 3, 30, 1 };
  guint arms[N_FIFO + G_N_ELEMENTS (move_some)];
  guint expected[N_FIFO];
  guint n_arms;
  Order order;

  order_init (&order, timers, N_FIFO);

  /* Armed back to back with 0 µs, many share a deadline to the
   * microsecond; those must keep the order of their WATCH. */
  n_arms = fifo_arms (arms, NULL, 0);
  arm_zero_sequence (f, timers, arms, n_arms, expected);
  g_assert_true (test_iterate_until (f->context, &order.done, TEST_DEADLINE_MS));
  assert_order (&order, timers, expected, N_FIFO);

  /* A second WATCH moves a timer behind the others. */
  order_reset (&order);
  n_arms = fifo_arms (arms, move_one, G_N_ELEMENTS (move_one));
  arm_zero_sequence (f, timers, arms, n_arms, expected);
  g_assert_true (test_iterate_until (f->context, &order.done, TEST_DEADLINE_MS));
  assert_order (&order, timers, expected, N_FIFO);

  order_reset (&order);
  n_arms = fifo_arms (arms, move_some, G_N_ELEMENTS (move_some));
  arm_zero_sequence (f, timers, arms, n_arms, expected);
  g_assert_true (test_iterate_until (f->context, &order.done, TEST_DEADLINE_MS));
  assert_order (&order, timers, expected, N_FIFO);

  order_clear (f, &order, timers, N_FIFO);
}

static void
test_same_iteration_deadline_order (Fixture       *f,
                                    gconstpointer  data)
{
  TestTimerEvent *timers[4];
  static const gint64 usecs[] = { 3000, 1000, 4000, 2000 };
  Deadline deadlines[G_N_ELEMENTS (timers)];
  gint64 last = 0;
  Order order;

  order_init (&order, timers, G_N_ELEMENTS (timers));

  /* All become due before the context is iterated, so one iteration finds
   * them due together; they must still come in deadline order, not in the
   * order they were armed. */
  for (guint i = 0; i < G_N_ELEMENTS (timers); i++)
    {
      arm_measured (f, timers[i], usecs[i], &deadlines[i]);
      last = MAX (last, deadlines[i].latest);
    }
  let_clock_pass (last);

  g_assert_true (test_iterate_until (f->context, &order.done, TEST_DEADLINE_MS));
  assert_deadline_order (&order, timers, deadlines, G_N_ELEMENTS (timers));

  order_clear (f, &order, timers, G_N_ELEMENTS (timers));
}

static void
test_same_iteration_equal_fifo (Fixture       *f,
                                gconstpointer  data)
{
  TestTimerEvent *timers[N_FIFO];
  static const guint moves[] = { 0, 2, 17, 2 };
  guint arms[N_FIFO + G_N_ELEMENTS (moves)];
  guint expected[N_FIFO];
  guint n_arms;
  Order order;

  order_init (&order, timers, N_FIFO);

  /* All due before the first iteration, so they are found due together. */
  n_arms = fifo_arms (arms, moves, G_N_ELEMENTS (moves));
  arm_zero_sequence (f, timers, arms, n_arms, expected);
  let_clock_pass (g_get_monotonic_time ());

  g_assert_true (test_iterate_until (f->context, &order.done, TEST_DEADLINE_MS));
  assert_order (&order, timers, expected, N_FIFO);

  order_clear (f, &order, timers, N_FIFO);
}

static void
test_survives_consumer_unref (Fixture       *f,
                              gconstpointer  data)
{
  gboolean fired;
  TestTimerEvent *timer = test_timer_event_new_flagged (&fired);
  gpointer alive = timer;

  g_object_add_weak_pointer (G_OBJECT (timer), &alive);
  test_arm (f->iops, timer, 1000);
  g_object_unref (timer);
  /* Rule 6: the IOPS keeps an armed timer alive. */
  g_assert_nonnull (alive);

  g_assert_true (test_iterate_until (f->context, &fired, TEST_DEADLINE_MS));
  /* Fired and not re-armed, it stays registered: the IOPS keeps it until
   * CLEANUP (rule 6), so no thread that drops a reference can finalize a
   * registered timer. CLEANUP lets go of it. */
  g_assert_nonnull (alive);
  test_cleanup_timer (f->iops, timer);
  g_assert_null (alive);
}

typedef struct
{
  guint n;
  int   flags;
} SignalRecord;

static void
on_timer_ready (IopsTimerEvent *timer,
                int             flags,
                gpointer        data)
{
  SignalRecord *record = data;

  record->n++;
  record->flags = flags;
}

static void
test_ready_signal (Fixture       *f,
                   gconstpointer  data)
{
  g_autoptr(IopsTimerEvent) timer = iops_timer_event_new ();
  SignalRecord record = { 0, -1 };
  gboolean fired;
  g_autoptr(TestTimerEvent) later = test_timer_event_new_flagged (&fired);

  g_assert_true (G_OBJECT_TYPE (timer) == IOPS_TYPE_TIMER_EVENT);
  g_signal_connect (timer, "ready", G_CALLBACK (on_timer_ready), &record);

  iops_iops_update_timer (f->iops, timer, IOPS_EVACTION_WATCH, 100);
  test_arm (f->iops, later, 20000);
  g_assert_true (test_iterate_until (f->context, &fired, TEST_DEADLINE_MS));

  g_assert_cmpuint (record.n, ==, 1);
  g_assert_cmpint (record.flags, ==, 0);
}

int
main (int   argc,
      char *argv[])
{
  test_init (&argc, &argv);

#define ADD(path, func, data) \
  g_test_add ("/iops/glib/timer/" path, Fixture, data, test_fixture_setup, func, test_fixture_teardown_quiet)

  ADD ("fires-once", test_fires_once, NULL);
  ADD ("zero-not-from-update", test_zero_not_from_update, NULL);
  ADD ("never-early", test_never_early, NULL);
  ADD ("never-early-together", test_never_early_together, NULL);
  ADD ("reschedule-later", test_reschedule, &reschedule_later);
  ADD ("reschedule-earlier", test_reschedule, &reschedule_earlier);
  ADD ("reschedule-due", test_reschedule, &reschedule_due);
  ADD ("rearm-in-callback", test_rearm_in_callback, NULL);
  ADD ("rearm-zero-in-callback", test_rearm_zero_in_callback, NULL);
  ADD ("unwatch-cancels", test_unwatch_cancels, NULL);
  ADD ("unwatch-due", test_unwatch_due, NULL);
  ADD ("unwatch-from-other-callback", test_unwatch_from_other_callback, NULL);
  ADD ("unwatch-due-same-iteration/zero", test_unwatch_due_same_iteration, GINT_TO_POINTER (0));
  ADD ("unwatch-due-same-iteration/1ms", test_unwatch_due_same_iteration, GINT_TO_POINTER (1000));
  ADD ("cleanup-due-same-iteration", test_cleanup_due_same_iteration, NULL);
  ADD ("unwatch-after-firing", test_unwatch_after_firing, NULL);
  ADD ("cleanup-cancels", test_cleanup_cancels, NULL);
  ADD ("cleanup-then-watch", test_cleanup_then_watch, NULL);
  ADD ("cleanup-in-own-callback", test_cleanup_in_own_callback, NULL);
  ADD ("deadline-order", test_deadline_order, NULL);
  ADD ("equal-deadlines-fifo", test_equal_deadlines_fifo, NULL);
  ADD ("same-iteration-deadline-order", test_same_iteration_deadline_order, NULL);
  ADD ("same-iteration-equal-fifo", test_same_iteration_equal_fifo, NULL);
  ADD ("survives-consumer-unref", test_survives_consumer_unref, NULL);
  ADD ("ready-signal", test_ready_signal, NULL);

#undef ADD

  return g_test_run ();
}

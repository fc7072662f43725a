/* test-regress.c — regression tests found by review: epoll lanes, hot and
 * cold watches, lazily disarmed registrations, nested levels, references
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Every test runs on every backend (IOPS_GLIB_BACKEND) and asserts only
 * what DESIGN.md promises, so both backends must pass all of them.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "iops-test-util.h"

/* As many as the epoll backend keeps as direct GPollFDs (its HOT_LIMIT is
 * 256), so that further watches stay in the epoll set. */
#define N_HOT_FILL 256

typedef TestFixture Fixture;

static void
drain (int fd)
{
  char buf[256];

  while (read (fd, buf, sizeof buf) > 0)
    ;
}

/* -- a set of watches made hot ------------------------------------------ */

/* N_HOT_FILL socketpairs, each watched for READ, delivered once and re-armed
 * from its own callback: on the epoll backend that makes every one of them
 * a direct ("hot") GPollFD, which fills the hot set. */
typedef struct
{
  Fixture     *f;
  int          fds[N_HOT_FILL][2];
  TestIOEvent *events[N_HOT_FILL];
  guint        n_delivered;
} HotFill;

static void
hot_fill_hook (TestIOEvent    *event,
               IopsEventFlags  ready,
               gpointer        data)
{
  HotFill *fill = data;

  drain (iops_io_event_fileno (IOPS_IO_EVENT (event)));
  test_watch (fill->f->iops, event, IOPS_READ_EVENT);
  fill->n_delivered++;
}

static void
hot_fill_setup (HotFill *fill,
                Fixture *f)
{
  gboolean expired = FALSE;
  GSource *deadline;

  fill->f = f;
  fill->n_delivered = 0;
  for (guint i = 0; i < N_HOT_FILL; i++)
    {
      test_socketpair (fill->fds[i]);
      fill->events[i] = test_io_event_new (fill->fds[i][0]);
      fill->events[i]->hook = hot_fill_hook;
      fill->events[i]->hook_data = fill;
      test_watch (f->iops, fill->events[i], IOPS_READ_EVENT);
      test_write_byte (fill->fds[i][1]);
    }

  deadline = g_timeout_source_new (TEST_DEADLINE_MS);
  g_source_set_callback (deadline, test_set_flag, &expired, NULL);
  g_source_attach (deadline, f->context);
  while (fill->n_delivered < N_HOT_FILL && !expired)
    g_main_context_iteration (f->context, TRUE);
  g_source_destroy (deadline);
  g_source_unref (deadline);
  g_assert_cmpuint (fill->n_delivered, ==, N_HOT_FILL);
}

static void
hot_fill_teardown (HotFill *fill)
{
  for (guint i = 0; i < N_HOT_FILL; i++)
    {
      if (fill->events[i] != NULL)
        {
          test_cleanup (fill->f->iops, fill->events[i]);
          g_clear_object (&fill->events[i]);
        }
      close (fill->fds[i][0]);
      close (fill->fds[i][1]);
    }
}

/* -- a due timer must not starve fd watches ------------------------------ */

static void
rearm_write (TestIOEvent    *event,
             IopsEventFlags  ready,
             gpointer        data)
{
  test_watch (((Fixture *) data)->iops, event, IOPS_WRITE_EVENT);
}

static void
rearm_timer_zero (TestTimerEvent *timer,
                  gpointer        data)
{
  test_arm (((Fixture *) data)->iops, timer, 0);
}

/* Rules 2 and 9: an fd that stays ready is delivered whenever the context
 * is iterated, also while a timer of the same IOPS is due on every
 * iteration (a 0 µs timer re-armed from its callback: a common "call me
 * soon" idiom). Each must get its turn. */
static void
test_due_timer_starves_watch (Fixture       *f,
                              gconstpointer  data)
{
  int s[2];
  g_autoptr(TestIOEvent) event = NULL;
  g_autoptr(TestTimerEvent) timer = test_timer_event_new ();

  test_socketpair (s);
  event = test_io_event_new (s[0]);
  event->hook = rearm_write;
  event->hook_data = f;
  timer->hook = rearm_timer_zero;
  timer->hook_data = f;

  test_watch (f->iops, event, IOPS_WRITE_EVENT);
  test_arm (f->iops, timer, 0);

  for (guint i = 0; i < 200; i++)
    g_main_context_iteration (f->context, TRUE);

  g_assert_cmpuint (timer->n_fired, >, 10);
  g_assert_cmpuint (event->n_w, >, 10);

  test_cleanup_timer (f->iops, timer);
  test_cleanup (f->iops, event);
  test_close_pair (s);
}

/* Same, with a timer that merely happens to be due when a readable fd was
 * re-armed: the read must come no later than the iteration after. */
static void
test_due_timer_delays_read (Fixture       *f,
                            gconstpointer  data)
{
  int s[2];
  g_autoptr(TestIOEvent) event = NULL;
  g_autoptr(TestTimerEvent) timer = test_timer_event_new ();
  gboolean expired = FALSE;
  GSource *deadline;

  test_socketpair (s);
  event = test_io_event_new (s[0]);
  timer->hook = rearm_timer_zero;
  timer->hook_data = f;

  /* One delivery, re-armed from outside: a watch that fired before. */
  test_watch (f->iops, event, IOPS_READ_EVENT);
  test_write_byte (s[1]);
  g_assert_true (test_iterate_until (f->context, (gboolean *) &event->n_r, TEST_DEADLINE_MS));
  drain (s[0]);
  test_watch (f->iops, event, IOPS_READ_EVENT);
  g_main_context_iteration (f->context, FALSE);
  test_watch (f->iops, event, IOPS_READ_EVENT);
  g_main_context_iteration (f->context, FALSE);

  /* Now a timer due on every iteration, and data to read. */
  test_arm (f->iops, timer, 0);
  test_write_byte (s[1]);

  deadline = g_timeout_source_new (TEST_DEADLINE_MS);
  g_source_set_callback (deadline, test_set_flag, &expired, NULL);
  g_source_attach (deadline, f->context);
  while (event->n_r < 2 && !expired)
    g_main_context_iteration (f->context, TRUE);
  g_source_destroy (deadline);
  g_source_unref (deadline);

  g_assert_cmpuint (event->n_r, ==, 2);

  test_cleanup_timer (f->iops, timer);
  test_cleanup (f->iops, event);
  test_close_pair (s);
}

/* -- rule 13 with a full hot set ---------------------------------------- */

typedef struct
{
  Fixture *f;
  HotFill *fill;
  GString *order;
  int      fd;
} PrioChange;

static void
prio_change_hook (TestIOEvent    *event,
                  IopsEventFlags  ready,
                  gpointer        data)
{
  PrioChange *pc = data;

  drain (pc->fd);
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

/* Rule 13: a watch takes the priority in force at its latest WATCH. Here
 * the callback re-arms its own event at G_PRIORITY_LOW, then cleans up
 * another event; the next delivery must come at G_PRIORITY_LOW, after a
 * source of G_PRIORITY_DEFAULT_IDLE ready at the same time. */
static void
test_rearm_priority_then_cleanup_other (Fixture       *f,
                                        gconstpointer  data)
{
  HotFill fill;
  PrioChange pc;
  int s[2];
  g_autoptr(TestIOEvent) event = NULL;
  GSource *idle;
  gboolean expired = FALSE;
  GSource *deadline;

  hot_fill_setup (&fill, f);

  test_socketpair (s);
  event = test_io_event_new (s[0]);
  pc = (PrioChange) { f, &fill, g_string_new (NULL), s[0] };
  event->hook = prio_change_hook;
  event->hook_data = &pc;

  test_watch (f->iops, event, IOPS_READ_EVENT);
  test_write_byte (s[1]);
  g_assert_true (test_iterate_until (f->context, (gboolean *) &event->n_r, TEST_DEADLINE_MS));
  g_assert_cmpuint (event->n_r, ==, 1);

  /* Ready at the same time: the idle (200) must run before the watch (300). */
  idle = g_idle_source_new ();
  g_source_set_priority (idle, G_PRIORITY_DEFAULT_IDLE);
  g_source_set_callback (idle, prio_idle, pc.order, NULL);
  test_write_byte (s[1]);
  g_source_attach (idle, f->context);
  g_source_unref (idle);

  deadline = g_timeout_source_new (TEST_DEADLINE_MS);
  g_source_set_callback (deadline, test_set_flag, &expired, NULL);
  g_source_attach (deadline, f->context);
  while (pc.order->len < 2 && !expired)
    g_main_context_iteration (f->context, TRUE);
  g_source_destroy (deadline);
  g_source_unref (deadline);

  g_assert_cmpstr (pc.order->str, ==, "IX");

  test_cleanup (f->iops, event);
  g_string_free (pc.order, TRUE);
  test_close_pair (s);
  hot_fill_teardown (&fill);
}

/* -- closed fds -------------------------------------------------------- */

static void
count_only (TestIOEvent    *event,
            IopsEventFlags  ready,
            gpointer        data)
{
  /* The consumer reads its own fd number: the new socket, nothing there. */
  drain (GPOINTER_TO_INT (data));
}

/* Rule 2: an fd the consumer closes while it is armed is reported at most
 * once and never spins — here in persistent mode, with the closed file
 * kept open by a dup (a forked child does the same) and its number reused
 * by a new socket, as a reconnect does. The closed file's readiness is not
 * the consumer's to drain. */
static void
run_persistent_closed_reused (Fixture *f,
                              gboolean fill_hot)
{
  HotFill fill;
  int a[2], b[2], keep;
  g_autoptr(TestIOEvent) event = NULL;
  guint before;

  if (fill_hot)
    hot_fill_setup (&fill, f);

  iops_glib_iops_set_persistent (f->glib_iops, TRUE);
  test_socketpair (a);
  event = test_io_event_new (a[0]);
  event->hook = count_only;
  event->hook_data = GINT_TO_POINTER (a[0]);
  test_watch (f->iops, event, IOPS_READ_EVENT);
  iops_glib_iops_set_persistent (f->glib_iops, FALSE);
  g_main_context_iteration (f->context, FALSE);
  g_assert_cmpuint (test_io_event_total (event), ==, 0);

  keep = dup (a[0]);
  g_assert_cmpint (keep, >=, 0);
  test_socketpair (b);
  g_assert_cmpint (dup3 (b[0], a[0], O_CLOEXEC), ==, a[0]);  /* closes the old one */
  close (b[0]);

  test_write_byte (a[1]);  /* the closed file is readable now */
  test_iterate_for (f->context, 200);
  before = test_io_event_total (event);
  g_assert_cmpuint (before, <=, 1);
  test_iterate_for (f->context, 200);
  g_assert_cmpuint (test_io_event_total (event), ==, before);

  test_cleanup (f->iops, event);
  test_close_pair (a);
  close (b[1]);
  close (keep);
  if (fill_hot)
    hot_fill_teardown (&fill);
}

static void
test_persistent_closed_reused (Fixture       *f,
                               gconstpointer  data)
{
  run_persistent_closed_reused (f, FALSE);
}

static void
test_persistent_closed_reused_full (Fixture       *f,
                                    gconstpointer  data)
{
  run_persistent_closed_reused (f, TRUE);
}

/* -- lazily disarmed watches ------------------------------------------- */

/* Rule 3: a one-shot watch is disarmed before its callback. Hundreds of
 * them (beyond what epoll keeps hot), each delivered once and neither
 * drained nor re-armed, must leave the context idle. */
static void
test_many_lazy_no_spin (Fixture       *f,
                        gconstpointer  data)
{
  enum { N = 300 };
  int fds[N][2];
  TestIOEvent *events[N];
  guint delivered = 0, n;

  for (guint i = 0; i < N; i++)
    {
      test_socketpair (fds[i]);
      events[i] = test_io_event_new (fds[i][0]);
      test_watch (f->iops, events[i], i % 2 ? IOPS_READ_EVENT : IOPS_RW_EVENT);
      test_write_byte (fds[i][1]);
    }
  for (guint k = 0; k < 1000 && delivered < N; k++)
    {
      g_main_context_iteration (f->context, TRUE);
      delivered = 0;
      for (guint i = 0; i < N; i++)
        delivered += test_io_event_total (events[i]);
    }
  g_assert_cmpuint (delivered, ==, N);

  n = test_iterate_for (f->context, 200);
  g_assert_cmpuint (n, <, 20);
  for (guint i = 0; i < N; i++)
    g_assert_cmpuint (test_io_event_total (events[i]), ==, 1);

  /* Hang up every peer: still no callback, still idle. */
  for (guint i = 0; i < N; i++)
    close (fds[i][1]);
  n = test_iterate_for (f->context, 200);
  g_assert_cmpuint (n, <, 20);
  for (guint i = 0; i < N; i++)
    g_assert_cmpuint (test_io_event_total (events[i]), ==, 1);

  for (guint i = 0; i < N; i++)
    {
      test_cleanup (f->iops, events[i]);
      g_object_unref (events[i]);
      close (fds[i][0]);
    }
}

/* -- callbacks that change other events -------------------------------- */

typedef struct
{
  Fixture      *f;
  TestIOEvent **events;
  guint         n;
  guint         calls;
  gboolean      use_cleanup;
} Others;

static void
disarm_others (TestIOEvent    *event,
               IopsEventFlags  ready,
               gpointer        data)
{
  Others *o = data;

  o->calls++;
  for (guint i = 0; i < o->n; i++)
    {
      if (o->events[i] == NULL || o->events[i] == event)
        continue;
      if (o->use_cleanup)
        {
          test_cleanup (o->f->iops, o->events[i]);
          g_clear_object (&o->events[i]);
        }
      else
        {
          test_unwatch (o->f->iops, o->events[i]);
        }
    }
}

/* Rules 4, 5 and 6: many watches ready in the same iteration (hot and
 * cold); the first callback unwatches, or cleans up and unrefs, all the
 * others: no other callback is made, nothing is used after free. */
static void
run_first_disarms_others (Fixture  *f,
                          gboolean  use_cleanup)
{
  enum { N = 260 };
  int fds[N][2];
  TestIOEvent *events[N];
  Others o = { f, events, N, 0, use_cleanup };

  for (guint i = 0; i < N; i++)
    {
      test_socketpair (fds[i]);
      events[i] = test_io_event_new (fds[i][0]);
      events[i]->hook = disarm_others;
      events[i]->hook_data = &o;
      test_watch (f->iops, events[i], IOPS_READ_EVENT);
    }
  for (guint i = 0; i < N; i++)
    test_write_byte (fds[i][1]);

  test_iterate_for (f->context, 100);
  g_assert_cmpuint (o.calls, ==, 1);

  for (guint i = 0; i < N; i++)
    {
      if (events[i] != NULL)
        {
          test_cleanup (f->iops, events[i]);
          g_object_unref (events[i]);
        }
      close (fds[i][0]);
      close (fds[i][1]);
    }
}

static void
test_first_unwatches_others (Fixture       *f,
                             gconstpointer  data)
{
  run_first_disarms_others (f, FALSE);
}

static void
test_first_cleans_up_others (Fixture       *f,
                             gconstpointer  data)
{
  run_first_disarms_others (f, TRUE);
}

/* Same after the hot set is full, so that the later ones are cold and
 * re-armed with EPOLL_CTL_MOD. */
static void
test_first_cleans_up_others_full (Fixture       *f,
                                  gconstpointer  data)
{
  HotFill fill;

  hot_fill_setup (&fill, f);
  run_first_disarms_others (f, TRUE);
  hot_fill_teardown (&fill);
}

/* A timer due in the same iteration as a readable fd cleans the watch up
 * and drops it: no callback, no use after free. */
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

static void
test_timer_cleans_up_ready_watch (Fixture       *f,
                                  gconstpointer  data)
{
  for (guint round = 0; round < 2; round++)
    {
      int s[2];
      TestIOEvent *event;
      TestIOEvent *probe;
      g_autoptr(TestTimerEvent) timer = test_timer_event_new ();
      TimerKill tk = { f, &event };
      gboolean fired = FALSE;

      test_socketpair (s);
      event = test_io_event_new (s[0]);
      probe = event;
      g_object_add_weak_pointer (G_OBJECT (probe), (gpointer *) &probe);
      if (round == 1)
        {
          /* Make it hot first. */
          test_watch (f->iops, event, IOPS_READ_EVENT);
          test_write_byte (s[1]);
          g_assert_true (test_iterate_until (f->context, (gboolean *) &event->n_r, TEST_DEADLINE_MS));
          drain (s[0]);
          event->n_r = 0;
        }
      test_watch (f->iops, event, IOPS_READ_EVENT);
      test_write_byte (s[1]);
      timer->hook = timer_kills_watch;
      timer->hook_data = &tk;
      test_arm (f->iops, timer, 0);
      /* Wait until poll() would see the data. */
      g_main_context_iteration (f->context, TRUE);
      (void) fired;
      test_iterate_for (f->context, 50);
      g_assert_cmpuint (timer->n_fired, ==, 1);
      g_assert_null (event);
      g_assert_null (probe);
      test_cleanup_timer (f->iops, timer);
      test_close_pair (s);
    }
}

/* -- nested levels ----------------------------------------------------- */

typedef struct
{
  Fixture     *f;
  TestIOEvent *outer;
  TestIOEvent *inner;
  gboolean     drop_iops;
  gboolean     outer_done;
  guint        inner_calls;
  int          inner_peer;
} Nest;

static void
nest_inner (TestIOEvent    *event,
            IopsEventFlags  ready,
            gpointer        data)
{
  Nest *n = data;

  n->inner_calls++;
  if (n->drop_iops)
    {
      /* Drop the IOPS from inside the nested level. */
      g_clear_object (&n->f->glib_iops);
      n->f->iops = NULL;
      return;
    }
  /* Clean up and drop the event whose callback started this level. */
  test_cleanup (n->f->iops, n->outer);
  g_clear_object (&n->outer);
  test_cleanup (n->f->iops, event);
}

static void
nest_outer (TestIOEvent    *event,
            IopsEventFlags  ready,
            gpointer        data)
{
  Nest *n = data;
  IopsIOPS *iops = IOPS_IOPS (n->f->glib_iops);

  drain (iops_io_event_fileno (IOPS_IO_EVENT (event)));
  if (n->outer_done)
    return;
  /* Re-arm (shares the delivery's reference), make the inner one ready,
   * then nest. */
  test_watch (n->f->iops, event, IOPS_READ_EVENT);
  test_write_byte (n->inner_peer);
  iops_iops_start_watching (iops);
  n->outer_done = TRUE;
}

static void
run_nested (Fixture  *f,
            gboolean  drop_iops)
{
  int a[2], b[2];
  Nest n = { f, NULL, NULL, drop_iops, FALSE, 0, -1 };
  gpointer probe;

  test_socketpair (a);
  test_socketpair (b);
  n.inner_peer = b[1];
  n.outer = test_io_event_new (a[0]);
  n.inner = test_io_event_new (b[0]);
  probe = n.outer;
  g_object_add_weak_pointer (G_OBJECT (probe), &probe);

  test_watch (f->iops, n.outer, IOPS_READ_EVENT);
  test_write_byte (a[1]);
  g_assert_true (test_iterate_until (f->context, (gboolean *) &n.outer->n_r, TEST_DEADLINE_MS));
  drain (a[0]);
  n.outer->hook = nest_outer;
  n.outer->hook_data = &n;
  n.inner->hook = nest_inner;
  n.inner->hook_data = &n;
  /* Hot now; arm the inner one and make both ready. */
  test_watch (f->iops, n.outer, IOPS_READ_EVENT);
  test_watch (f->iops, n.inner, IOPS_READ_EVENT);
  test_write_byte (a[1]);

  g_assert_true (test_iterate_until (f->context, &n.outer_done, TEST_DEADLINE_MS));
  g_assert_cmpuint (n.inner_calls, ==, 1);
  if (!drop_iops)
    g_assert_null (probe);
  else
    {
      g_assert_null (f->glib_iops);
      g_clear_object (&n.outer);
    }
  test_iterate_for (f->context, 50);
  g_assert_cmpuint (n.inner_calls, ==, 1);
  g_clear_object (&n.inner);
  if (probe != NULL)
    g_object_remove_weak_pointer (G_OBJECT (probe), &probe);
  test_close_pair (a);
  test_close_pair (b);
}

static void
test_nested_cleans_up_outer (Fixture       *f,
                             gconstpointer  data)
{
  run_nested (f, FALSE);
}

static void
test_nested_drops_iops (Fixture       *f,
                        gconstpointer  data)
{
  run_nested (f, TRUE);
}

/* -- timers across priorities ------------------------------------------ */

/* Rule 7 and 13: a timer at another priority than the first one armed
 * still fires, never early; moving an armed timer to another priority
 * fires it once. */
static void
test_timers_across_priorities (Fixture       *f,
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
  g_assert_true (test_iterate_until (f->context, (gboolean *) &near->n_fired, TEST_DEADLINE_MS));
  g_assert_cmpint (near->fired_at - armed, >=, 2000);

  iops_glib_iops_set_priority (f->glib_iops, G_PRIORITY_DEFAULT);
  test_arm (f->iops, moved, 50 * G_USEC_PER_SEC);
  iops_glib_iops_set_priority (f->glib_iops, G_PRIORITY_DEFAULT_IDLE);
  armed = g_get_monotonic_time ();
  test_arm (f->iops, moved, 3000);
  g_assert_true (test_iterate_until (f->context, (gboolean *) &moved->n_fired, TEST_DEADLINE_MS));
  g_assert_cmpint (moved->fired_at - armed, >=, 3000);
  test_iterate_for (f->context, 20);
  g_assert_cmpuint (moved->n_fired, ==, 1);
  g_assert_cmpuint (near->n_fired, ==, 1);
  g_assert_cmpuint (far->n_fired, ==, 0);

  test_cleanup_timer (f->iops, far);
  test_cleanup_timer (f->iops, near);
  test_cleanup_timer (f->iops, moved);
}

/* -- stop_watching from another thread ---------------------------------- */

typedef struct
{
  IopsIOPS *iops;
  int       done;
} Stopper;

static gpointer
stopper_thread (gpointer data)
{
  Stopper *s = data;

  while (!g_atomic_int_get (&s->done))
    iops_iops_stop_watching (s->iops);
  return NULL;
}

static void
rearm_some (TestTimerEvent *timer,
            gpointer        data)
{
  if (timer->n_fired % 3 != 0)
    test_arm (((Fixture *) data)->iops, timer, 0);
}

/* Rule 8: stop_watching may be called from any thread, also while levels
 * start and end all the time. */
static void
test_stop_from_thread_hammer (Fixture       *f,
                              gconstpointer  data)
{
  g_autoptr(TestTimerEvent) timer = test_timer_event_new ();
  Stopper s = { IOPS_IOPS (f->glib_iops), 0 };
  GThread *thread;

  timer->hook = rearm_some;
  timer->hook_data = f;
  thread = g_thread_new ("stopper", stopper_thread, &s);
  for (guint i = 0; i < 2000; i++)
    {
      test_arm (f->iops, timer, 0);
      iops_iops_start_watching (IOPS_IOPS (f->glib_iops));
    }
  g_atomic_int_set (&s.done, 1);
  g_thread_join (thread);
  test_cleanup_timer (f->iops, timer);
}

/* -- dup'd fds --------------------------------------------------------- */

/* Rule 2: two events on the same file through two fd numbers (a dup);
 * the consumer closes one while armed. The other keeps its deliveries,
 * the closed one is reported at most once, nothing spins. */
static void
test_dup_close_one (Fixture       *f,
                    gconstpointer  data)
{
  int s[2], d;
  g_autoptr(TestIOEvent) a = NULL;
  g_autoptr(TestIOEvent) b = NULL;
  guint n;

  test_socketpair (s);
  d = dup (s[0]);
  a = test_io_event_new (s[0]);
  b = test_io_event_new (d);
  test_watch (f->iops, a, IOPS_READ_EVENT);
  test_watch (f->iops, b, IOPS_READ_EVENT);
  g_main_context_iteration (f->context, FALSE);

  close (s[0]);
  test_write_byte (s[1]);
  g_assert_true (test_iterate_until (f->context, (gboolean *) &b->n_r, TEST_DEADLINE_MS));
  n = test_iterate_for (f->context, 200);
  g_assert_cmpuint (n, <, 20);
  g_assert_cmpuint (test_io_event_total (a), <=, 1);
  g_assert_cmpuint (b->n_r, ==, 1);

  /* The other still works after its fd is re-armed. */
  drain (d);
  test_watch (f->iops, b, IOPS_READ_EVENT);
  test_write_byte (s[1]);
  {
    gboolean expired = FALSE;
    GSource *deadline = g_timeout_source_new (TEST_DEADLINE_MS);

    g_source_set_callback (deadline, test_set_flag, &expired, NULL);
    g_source_attach (deadline, f->context);
    while (b->n_r < 2 && !expired)
      g_main_context_iteration (f->context, TRUE);
    g_source_destroy (deadline);
    g_source_unref (deadline);
  }
  g_assert_cmpuint (b->n_r, ==, 2);

  test_cleanup (f->iops, a);
  test_cleanup (f->iops, b);
  close (d);
  close (s[1]);
}

/* A watch on a closed-but-dup'd file is cleaned up; a new event then gets
 * its registration slot and the same fd number for a new socket. The old
 * file's readiness must neither reach the new event nor spin. */
static void
test_cleanup_dup_then_reuse (Fixture       *f,
                             gconstpointer  data)
{
  int a[2], b[2], keep;
  g_autoptr(TestIOEvent) old = NULL;
  g_autoptr(TestIOEvent) fresh = NULL;
  guint n;

  test_socketpair (a);
  old = test_io_event_new (a[0]);
  test_watch (f->iops, old, IOPS_READ_EVENT);
  g_main_context_iteration (f->context, FALSE);
  keep = dup (a[0]);
  close (a[0]);
  test_cleanup (f->iops, old);

  test_socketpair (b);
  if (b[0] != a[0])
    {
      g_assert_cmpint (dup3 (b[0], a[0], O_CLOEXEC), ==, a[0]);
      close (b[0]);
      b[0] = a[0];
    }
  fresh = test_io_event_new (b[0]);
  test_watch (f->iops, fresh, IOPS_READ_EVENT);

  test_write_byte (a[1]);  /* the old file only */
  n = test_iterate_for (f->context, 200);
  g_assert_cmpuint (n, <, 20);
  g_assert_cmpuint (test_io_event_total (old), ==, 0);
  g_assert_cmpuint (test_io_event_total (fresh), ==, 0);

  test_write_byte (b[1]);
  g_assert_true (test_iterate_until (f->context, (gboolean *) &fresh->n_r, TEST_DEADLINE_MS));
  g_assert_cmpuint (fresh->n_r, ==, 1);

  test_cleanup (f->iops, fresh);
  test_close_pair (b);
  close (a[1]);
  close (keep);
}

int
main (int   argc,
      char *argv[])
{
  /* Some tests fill the hot set and add hundreds more socketpairs. */
  struct rlimit rl;

  if (getrlimit (RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 4096)
    {
      rl.rlim_cur = MIN (rl.rlim_max, 4096);
      setrlimit (RLIMIT_NOFILE, &rl);
    }

  g_test_init (&argc, &argv, NULL);
  /* Report every regression, not only the first one. */
  g_test_set_nonfatal_assertions ();

#define ADD(path, fn) \
  g_test_add ("/iops/glib/regress/" path, Fixture, NULL, test_fixture_setup, fn, test_fixture_teardown_finalize)

  ADD ("due-timer-starves-watch", test_due_timer_starves_watch);
  ADD ("due-timer-delays-read", test_due_timer_delays_read);
  ADD ("rearm-priority-then-cleanup-other", test_rearm_priority_then_cleanup_other);
  ADD ("persistent-closed-reused", test_persistent_closed_reused);
  ADD ("persistent-closed-reused-full", test_persistent_closed_reused_full);
  ADD ("many-lazy-no-spin", test_many_lazy_no_spin);
  ADD ("first-unwatches-others", test_first_unwatches_others);
  ADD ("first-cleans-up-others", test_first_cleans_up_others);
  ADD ("first-cleans-up-others-full", test_first_cleans_up_others_full);
  ADD ("timer-cleans-up-ready-watch", test_timer_cleans_up_ready_watch);
  ADD ("nested-cleans-up-outer", test_nested_cleans_up_outer);
  ADD ("nested-drops-iops", test_nested_drops_iops);
  ADD ("timers-across-priorities", test_timers_across_priorities);
  ADD ("stop-from-thread-hammer", test_stop_from_thread_hammer);
  ADD ("dup-close-one", test_dup_close_one);
  ADD ("cleanup-dup-then-reuse", test_cleanup_dup_then_reuse);

  return g_test_run ();
}

/* test-loop.c — rules 8, 9, 10 and 11 of DESIGN.md: running the loop,
 * any loop delivering (and sharing it), threads, and disposal
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Every case runs on every backend (IOPS_GLIB_BACKEND) and asserts only
 * what DESIGN.md promises. Cases that were written for a bug say so in
 * their comment.
 */
#include <sys/wait.h>
#include <unistd.h>

#include "iops-test-util.h"

typedef TestFixture Fixture;

/* -- rule 8: start_watching --------------------------------------------- */

static void
test_returns_when_nothing_armed (Fixture       *f,
                                 gconstpointer  data)
{
  int fds[2];
  g_autoptr(TestIOEvent) event = NULL;
  g_autoptr(TestTimerEvent) timer = test_timer_event_new ();

  g_assert_true (test_start_watching_bounded (f->context, f->iops));

  /* Registered but disarmed events do not count as armed. */
  test_socketpair (fds);
  event = test_io_event_new (fds[0]);
  test_watch (f->iops, event, IOPS_READ_EVENT);
  test_unwatch (f->iops, event);
  test_arm (f->iops, timer, 60 * G_USEC_PER_SEC);
  test_unwatch_timer (f->iops, timer);

  g_assert_true (test_start_watching_bounded (f->context, f->iops));
  g_assert_cmpuint (test_io_event_total (event), ==, 0);
  g_assert_cmpuint (timer->n_fired, ==, 0);

  test_cleanup (f->iops, event);
  test_close_pair (fds);
}

typedef struct
{
  IopsIOPS *iops;
  guint     target;
  guint     n;
} Rearm;

static void
rearm_timer_hook (TestTimerEvent *timer,
                  gpointer        data)
{
  Rearm *rearm = data;

  if (++rearm->n < rearm->target)
    test_arm (rearm->iops, timer, 100);
}

static void
test_returns_when_last_delivered (Fixture       *f,
                                  gconstpointer  data)
{
  int fds[2];
  g_autoptr(TestIOEvent) event = NULL;
  g_autoptr(TestTimerEvent) timer = test_timer_event_new ();
  Rearm rearm = { f->iops, 5, 0 };

  test_socketpair (fds);
  event = test_io_event_new (fds[0]);
  timer->hook = rearm_timer_hook;
  timer->hook_data = &rearm;

  /* The socket is writable at once; the timer re-arms itself four times.
   * start_watching must neither return before the last delivery nor stay
   * after it. */
  test_watch (f->iops, event, IOPS_WRITE_EVENT);
  test_arm (f->iops, timer, 100);
  g_assert_true (test_start_watching_bounded (f->context, f->iops));

  g_assert_cmpuint (event->n_w, ==, 1);
  g_assert_cmpuint (test_io_event_total (event), ==, 1);
  g_assert_cmpuint (timer->n_fired, ==, rearm.target);

  test_cleanup (f->iops, event);
  test_close_pair (fds);
}

typedef struct
{
  IopsIOPS       *iops;
  TestIOEvent    *event;
  TestTimerEvent *timer;
  gboolean        unwatched;
  gboolean        cleaned_up;
} Disarmer;

static gboolean
idle_unwatch (gpointer data)
{
  Disarmer *disarmer = data;

  test_unwatch (disarmer->iops, disarmer->event);
  disarmer->unwatched = TRUE;
  return G_SOURCE_REMOVE;
}

static gboolean
timeout_cleanup (gpointer data)
{
  Disarmer *disarmer = data;

  test_cleanup_timer (disarmer->iops, disarmer->timer);
  disarmer->cleaned_up = TRUE;
  return G_SOURCE_REMOVE;
}

static void
test_returns_when_disarmed_by_other_source (Fixture       *f,
                                            gconstpointer  data)
{
  int fds[2];
  g_autoptr(TestIOEvent) event = NULL;
  g_autoptr(TestTimerEvent) timer = test_timer_event_new ();
  Disarmer disarmer = { f->iops, NULL, timer, FALSE, FALSE };
  GSource *idle = g_idle_source_new ();
  GSource *timeout = g_timeout_source_new (5);

  test_socketpair (fds);
  event = test_io_event_new (fds[0]);
  disarmer.event = event;

  /* Neither would ever be delivered within the test: nothing is written,
   * and a minute is beyond the deadline. */
  test_watch (f->iops, event, IOPS_READ_EVENT);
  test_arm (f->iops, timer, 60 * G_USEC_PER_SEC);

  g_source_set_callback (idle, idle_unwatch, &disarmer, NULL);
  g_source_attach (idle, f->context);
  g_source_set_callback (timeout, timeout_cleanup, &disarmer, NULL);
  g_source_attach (timeout, f->context);

  g_assert_true (test_start_watching_bounded (f->context, f->iops));
  /* Not before both were disarmed. */
  g_assert_true (disarmer.unwatched);
  g_assert_true (disarmer.cleaned_up);
  g_assert_cmpuint (test_io_event_total (event), ==, 0);
  g_assert_cmpuint (timer->n_fired, ==, 0);

  g_source_destroy (idle);
  g_source_unref (idle);
  g_source_destroy (timeout);
  g_source_unref (timeout);
  test_cleanup (f->iops, event);
  test_close_pair (fds);
}

static void
disarm_others_hook (TestTimerEvent *timer,
                    gpointer        data)
{
  Disarmer *disarmer = data;

  idle_unwatch (disarmer);
  timeout_cleanup (disarmer);
}

static void
test_returns_when_disarmed_by_event_callback (Fixture       *f,
                                              gconstpointer  data)
{
  int fds[2];
  g_autoptr(TestIOEvent) event = NULL;
  g_autoptr(TestTimerEvent) timer = test_timer_event_new ();
  g_autoptr(TestTimerEvent) trigger = test_timer_event_new ();
  Disarmer disarmer = { f->iops, NULL, timer, FALSE, FALSE };

  test_socketpair (fds);
  event = test_io_event_new (fds[0]);
  disarmer.event = event;
  trigger->hook = disarm_others_hook;
  trigger->hook_data = &disarmer;

  test_watch (f->iops, event, IOPS_READ_EVENT);
  test_arm (f->iops, timer, 60 * G_USEC_PER_SEC);
  test_arm (f->iops, trigger, 1000);

  g_assert_true (test_start_watching_bounded (f->context, f->iops));
  g_assert_cmpuint (trigger->n_fired, ==, 1);
  g_assert_cmpuint (test_io_event_total (event), ==, 0);
  g_assert_cmpuint (timer->n_fired, ==, 0);

  test_cleanup (f->iops, event);
  test_close_pair (fds);
}

static void
stop_hook (TestTimerEvent *timer,
           gpointer        data)
{
  iops_iops_stop_watching (data);
}

static void
test_stop_from_callback (Fixture       *f,
                         gconstpointer  data)
{
  int fds[2];
  gboolean read_ready;
  g_autoptr(TestIOEvent) event = NULL;
  g_autoptr(TestTimerEvent) stopper = test_timer_event_new ();

  test_socketpair (fds);
  event = test_io_event_new_flagged (fds[0], &read_ready);
  stopper->hook = stop_hook;
  stopper->hook_data = f->iops;

  test_watch (f->iops, event, IOPS_READ_EVENT);
  test_arm (f->iops, stopper, 1000);
  g_assert_true (test_start_watching_bounded (f->context, f->iops));
  g_assert_cmpuint (stopper->n_fired, ==, 1);
  g_assert_cmpuint (test_io_event_total (event), ==, 0);

  /* Stopping is not disarming: the watch is still there. */
  g_assert_cmpint (write (fds[1], "x", 1), ==, 1);
  g_assert_true (test_iterate_until (f->context, &read_ready, TEST_DEADLINE_MS));
  g_assert_cmpuint (event->n_r, ==, 1);

  test_close_pair (fds);
}

static gboolean
idle_stop (gpointer data)
{
  iops_iops_stop_watching (data);
  return G_SOURCE_REMOVE;
}

static void
test_stop_not_remembered (Fixture       *f,
                          gconstpointer  data)
{
  gboolean fired;
  g_autoptr(TestTimerEvent) timer = test_timer_event_new_flagged (&fired);

  /* Nothing running: from the test itself, and from a plain iteration. */
  iops_iops_stop_watching (f->iops);
  iops_iops_stop_watching (f->iops);
  g_source_unref (test_add_idle (f->context, G_PRIORITY_DEFAULT_IDLE, idle_stop, f->iops));
  while (g_main_context_iteration (f->context, FALSE))
    ;

  test_arm (f->iops, timer, 20000);
  g_assert_true (test_start_watching_bounded (f->context, f->iops));
  /* It ran until the timer fired instead of returning at once. */
  g_assert_true (fired);
  g_assert_cmpuint (timer->n_fired, ==, 1);
}

typedef struct
{
  IopsIOPS *iops;
  GMutex    lock;
  GCond     cond;
  gboolean  running;
} ThreadStop;

static gboolean
signal_running (gpointer data)
{
  ThreadStop *ts = data;

  g_mutex_lock (&ts->lock);
  ts->running = TRUE;
  g_cond_signal (&ts->cond);
  g_mutex_unlock (&ts->lock);
  return G_SOURCE_REMOVE;
}

static gpointer
stop_thread (gpointer data)
{
  ThreadStop *ts = data;

  g_mutex_lock (&ts->lock);
  while (!ts->running)
    g_cond_wait (&ts->cond, &ts->lock);
  g_mutex_unlock (&ts->lock);

  iops_iops_stop_watching (ts->iops);
  return NULL;
}

static void
test_stop_from_other_thread (Fixture       *f,
                             gconstpointer  data)
{
  int fds[2];
  gboolean read_ready;
  g_autoptr(TestIOEvent) event = NULL;
  ThreadStop ts = { .iops = f->iops };
  GThread *thread;

  g_mutex_init (&ts.lock);
  g_cond_init (&ts.cond);
  test_socketpair (fds);
  event = test_io_event_new_flagged (fds[0], &read_ready);

  /* Nothing will ever be written: the loop can only block in poll. The
   * idle runs inside start_watching, so the thread stops a running level. */
  test_watch (f->iops, event, IOPS_READ_EVENT);
  thread = g_thread_new ("stopper", stop_thread, &ts);
  g_source_unref (test_add_idle (f->context, G_PRIORITY_DEFAULT_IDLE, signal_running, &ts));

  g_assert_true (test_start_watching_bounded (f->context, f->iops));
  g_thread_join (thread);
  g_assert_true (ts.running);
  g_assert_cmpuint (test_io_event_total (event), ==, 0);

  /* Still armed. */
  g_assert_cmpint (write (fds[1], "x", 1), ==, 1);
  g_assert_true (test_iterate_until (f->context, &read_ready, TEST_DEADLINE_MS));
  g_assert_cmpuint (event->n_r, ==, 1);

  g_mutex_clear (&ts.lock);
  g_cond_clear (&ts.cond);
  test_close_pair (fds);
}

/* Nesting: which level each callback ran in. */
typedef struct
{
  IopsIOPS       *iops;
  guint           depth;           /* running start_watching levels */
  guint           fired_depth[4];
  guint           n;
  gboolean        nested_returned;
  guint           other_depth;
  gboolean        other_after_nested;
  TestIOEvent    *unwatch_me;
  GMainContext   *context;
  TestTimerEvent *other;
} Nest;

static void
nest_timer_hook (TestTimerEvent *timer,
                 gpointer        data)
{
  Nest *nest = data;
  guint n = nest->n++;

  nest->fired_depth[n] = nest->depth;
  if (n == 0)
    {
      /* Re-arm the event whose callback this is, then nest. */
      test_arm (nest->iops, timer, 0);
      nest->depth++;
      iops_iops_start_watching (nest->iops);
      nest->depth--;
      nest->nested_returned = TRUE;
      /* Due now: only a level that is still running delivers it. */
      test_arm (nest->iops, nest->other, 0);
    }
  else if (n == 1)
    {
      iops_iops_stop_watching (nest->iops);
    }
}

static void
nest_other_hook (TestTimerEvent *timer,
                 gpointer        data)
{
  Nest *nest = data;

  nest->other_depth = nest->depth;
  nest->other_after_nested = nest->nested_returned;
}

static void
test_nested_timer (Fixture       *f,
                   gconstpointer  data)
{
  g_autoptr(TestTimerEvent) timer = test_timer_event_new ();
  g_autoptr(TestTimerEvent) other = test_timer_event_new ();
  Nest nest = { .iops = f->iops, .other = other };

  timer->hook = nest_timer_hook;
  timer->hook_data = &nest;
  other->hook = nest_other_hook;
  other->hook_data = &nest;

  test_arm (f->iops, timer, 0);
  /* Keeps both levels running until the inner one is stopped. */
  test_arm (f->iops, other, 60 * G_USEC_PER_SEC);

  nest.depth = 1;
  g_assert_true (test_start_watching_bounded (f->context, f->iops));
  nest.depth = 0;

  g_assert_cmpuint (timer->n_fired, ==, 2);
  g_assert_cmpuint (nest.fired_depth[0], ==, 1);
  g_assert_cmpuint (nest.fired_depth[1], ==, 2);
  g_assert_true (nest.nested_returned);
  /* stop_watching ended only the inner level: the outer one went on. */
  g_assert_cmpuint (other->n_fired, ==, 1);
  g_assert_cmpuint (nest.other_depth, ==, 1);
  g_assert_true (nest.other_after_nested);
}

static void
nest_io_hook (TestIOEvent    *event,
              IopsEventFlags  ready,
              gpointer        data)
{
  Nest *nest = data;
  guint n = nest->n++;

  nest->fired_depth[n] = nest->depth;
  if (n == 0)
    {
      test_watch (nest->iops, event, IOPS_WRITE_EVENT);
      nest->depth++;
      iops_iops_start_watching (nest->iops);
      nest->depth--;
      nest->nested_returned = TRUE;
    }
}

static void
test_nested_watch (Fixture       *f,
                   gconstpointer  data)
{
  int fds[2];
  g_autoptr(TestIOEvent) event = NULL;
  Nest nest = { .iops = f->iops };

  test_socketpair (fds);
  event = test_io_event_new (fds[0]);
  event->hook = nest_io_hook;
  event->hook_data = &nest;

  /* Second delivery inside the nested level, not re-armed: nothing is
   * armed, so both levels return by themselves. */
  test_watch (f->iops, event, IOPS_WRITE_EVENT);
  nest.depth = 1;
  g_assert_true (test_start_watching_bounded (f->context, f->iops));
  nest.depth = 0;

  g_assert_cmpuint (event->n_w, ==, 2);
  g_assert_cmpuint (test_io_event_total (event), ==, 2);
  g_assert_cmpuint (nest.fired_depth[0], ==, 1);
  g_assert_cmpuint (nest.fired_depth[1], ==, 2);
  g_assert_true (nest.nested_returned);

  test_cleanup (f->iops, event);
  test_close_pair (fds);
}

static gboolean
idle_unwatch_nested (gpointer data)
{
  Nest *nest = data;

  test_unwatch (nest->iops, nest->unwatch_me);
  return G_SOURCE_REMOVE;
}

static void
nest_then_idle_hook (TestTimerEvent *timer,
                     gpointer        data)
{
  Nest *nest = data;

  GSource *idle = g_idle_source_new ();

  nest->fired_depth[nest->n++] = nest->depth;
  g_source_set_callback (idle, idle_unwatch_nested, nest, NULL);
  g_source_attach (idle, nest->context);
  g_source_unref (idle);
  nest->depth++;
  iops_iops_start_watching (nest->iops);
  nest->depth--;
  nest->nested_returned = TRUE;
}

static void
test_nested_all_return (Fixture       *f,
                        gconstpointer  data)
{
  int fds[2];
  g_autoptr(TestIOEvent) event = NULL;
  g_autoptr(TestTimerEvent) timer = test_timer_event_new ();
  Nest nest = { .iops = f->iops, .context = f->context };

  test_socketpair (fds);
  event = test_io_event_new (fds[0]);
  nest.unwatch_me = event;
  timer->hook = nest_then_idle_hook;
  timer->hook_data = &nest;

  /* The watch never becomes ready; an idle source unwatches it from inside
   * the nested level, after which nothing is armed: every level returns. */
  test_watch (f->iops, event, IOPS_READ_EVENT);
  test_arm (f->iops, timer, 0);
  nest.depth = 1;
  g_assert_true (test_start_watching_bounded (f->context, f->iops));
  nest.depth = 0;

  g_assert_true (nest.nested_returned);
  g_assert_cmpuint (nest.fired_depth[0], ==, 1);
  g_assert_cmpuint (test_io_event_total (event), ==, 0);

  test_cleanup (f->iops, event);
  test_close_pair (fds);
}

typedef struct
{
  Fixture        *f;
  GMainLoop      *loop;
  gboolean        returned;
  guint           depth;
  guint           fired_depth;
  TestTimerEvent *timer;
} AppLoop;

static void
app_timer_hook (TestTimerEvent *timer,
                gpointer        data)
{
  AppLoop *app = data;

  app->fired_depth = app->depth;
}

static gboolean
app_idle (gpointer data)
{
  AppLoop *app = data;

  /* Like a GTK handler that runs a consumer's blocking call. */
  test_arm (app->f->iops, app->timer, 1000);
  app->depth++;
  app->returned = test_start_watching_bounded (app->f->context, app->f->iops);
  app->depth--;
  g_main_loop_quit (app->loop);
  return G_SOURCE_REMOVE;
}

static void
test_nested_in_application_loop (Fixture       *f,
                                 gconstpointer  data)
{
  g_autoptr(TestTimerEvent) timer = test_timer_event_new ();
  AppLoop app = { f, g_main_loop_new (f->context, FALSE), FALSE, 0, 0, timer };
  GSource *idle = g_idle_source_new ();

  timer->hook = app_timer_hook;
  timer->hook_data = &app;

  g_source_set_callback (idle, app_idle, &app, NULL);
  g_source_attach (idle, f->context);
  g_main_loop_run (app.loop);

  g_assert_true (app.returned);
  g_assert_cmpuint (timer->n_fired, ==, 1);
  g_assert_cmpuint (app.fired_depth, ==, 1);

  g_source_unref (idle);
  g_main_loop_unref (app.loop);
}

/* Regression: a callback in a nested level cleans up and drops the event
 * whose callback started that level, or drops the IOPS itself. */
typedef struct
{
  Fixture     *f;
  TestIOEvent *outer;
  TestIOEvent *inner;
  gboolean     drop_iops;
  gboolean     outer_done;
  guint        inner_calls;
  int          inner_peer;
} NestedDrop;

static void
nested_drop_inner (TestIOEvent    *event,
                   IopsEventFlags  ready,
                   gpointer        data)
{
  NestedDrop *n = data;

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
nested_drop_outer (TestIOEvent    *event,
                   IopsEventFlags  ready,
                   gpointer        data)
{
  NestedDrop *n = data;
  IopsIOPS *iops = IOPS_IOPS (n->f->glib_iops);

  test_drain (test_io_event_fd (event));
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
check_nested_drop (Fixture  *f,
                   gboolean  drop_iops)
{
  int a[2], b[2];
  NestedDrop n = { f, NULL, NULL, drop_iops, FALSE, 0, -1 };
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
  g_assert_true (test_iterate_until_count (f->context, &n.outer->n_r, 1, TEST_DEADLINE_MS));
  test_drain (a[0]);
  n.outer->hook = nested_drop_outer;
  n.outer->hook_data = &n;
  n.inner->hook = nested_drop_inner;
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
  check_nested_drop (f, FALSE);
}

typedef struct
{
  IopsIOPS *iops;
  int       done;
} Hammer;

static gpointer
hammer_thread (gpointer data)
{
  Hammer *h = data;

  while (!g_atomic_int_get (&h->done))
    iops_iops_stop_watching (h->iops);
  return NULL;
}

static void
rearm_some (TestTimerEvent *timer,
            gpointer        data)
{
  if (timer->n_fired % 3 != 0)
    test_arm (((Fixture *) data)->iops, timer, 0);
}

/* Regression: stop_watching may be called from any thread, also while
 * levels start and end all the time (some by the stop, some because
 * nothing is armed any more). */
static void
test_stop_from_other_thread_hammer (Fixture       *f,
                                    gconstpointer  data)
{
  g_autoptr(TestTimerEvent) timer = test_timer_event_new ();
  Hammer h = { f->iops, 0 };
  GThread *thread;

  timer->hook = rearm_some;
  timer->hook_data = f;
  thread = g_thread_new ("stopper", hammer_thread, &h);
  for (guint i = 0; i < 2000; i++)
    {
      test_arm (f->iops, timer, 0);
      iops_iops_start_watching (f->iops);
    }
  g_atomic_int_set (&h.done, 1);
  g_thread_join (thread);
  test_cleanup_timer (f->iops, timer);
}

/* -- rule 9: any loop delivers ------------------------------------------ */

typedef struct
{
  IopsIOPS  *iops;
  GMainLoop *loop;
  guint      ticks;
  guint      io;
  gboolean   done;
} AnyLoop;

static void
any_loop_check (AnyLoop *any)
{
  any->done = any->ticks == 3 && any->io == 1;
  if (any->done && any->loop != NULL)
    g_main_loop_quit (any->loop);
}

static void
any_timer_hook (TestTimerEvent *timer,
                gpointer        data)
{
  AnyLoop *any = data;

  if (++any->ticks < 3)
    test_arm (any->iops, timer, 500);
  any_loop_check (any);
}

static void
any_io_hook (TestIOEvent    *event,
             IopsEventFlags  ready,
             gpointer        data)
{
  AnyLoop *any = data;

  any->io++;
  any_loop_check (any);
}

static void
any_loop_prepare (Fixture         *f,
                  AnyLoop         *any,
                  int              fds[2],
                  TestIOEvent    **event,
                  TestTimerEvent **timer)
{
  test_socketpair (fds);
  *event = test_io_event_new (fds[0]);
  (*event)->hook = any_io_hook;
  (*event)->hook_data = any;
  *timer = test_timer_event_new ();
  (*timer)->hook = any_timer_hook;
  (*timer)->hook_data = any;

  test_watch (f->iops, *event, IOPS_WRITE_EVENT);
  test_arm (f->iops, *timer, 500);
}

static void
test_any_loop_iteration (Fixture       *f,
                         gconstpointer  data)
{
  AnyLoop any = { f->iops, NULL, 0, 0, FALSE };
  int fds[2];
  g_autoptr(TestIOEvent) event = NULL;
  g_autoptr(TestTimerEvent) timer = NULL;

  any_loop_prepare (f, &any, fds, &event, &timer);
  g_assert_true (test_iterate_until (f->context, &any.done, TEST_DEADLINE_MS));
  g_assert_cmpuint (timer->n_fired, ==, 3);
  g_assert_cmpuint (event->n_w, ==, 1);

  test_cleanup (f->iops, event);
  test_close_pair (fds);
}

static gboolean
quit_expired (gpointer data)
{
  AnyLoop *any = data;

  g_main_loop_quit (any->loop);
  return G_SOURCE_REMOVE;
}

static void
test_any_loop_main_loop (Fixture       *f,
                         gconstpointer  data)
{
  AnyLoop any = { f->iops, g_main_loop_new (f->context, FALSE), 0, 0, FALSE };
  int fds[2];
  g_autoptr(TestIOEvent) event = NULL;
  g_autoptr(TestTimerEvent) timer = NULL;
  GSource *deadline = g_timeout_source_new (TEST_DEADLINE_MS);

  g_source_set_callback (deadline, quit_expired, &any, NULL);
  g_source_attach (deadline, f->context);
  any_loop_prepare (f, &any, fds, &event, &timer);

  g_main_loop_run (any.loop);
  g_assert_true (any.done);
  g_assert_cmpuint (timer->n_fired, ==, 3);
  g_assert_cmpuint (event->n_w, ==, 1);

  g_source_destroy (deadline);
  g_source_unref (deadline);
  g_main_loop_unref (any.loop);
  test_cleanup (f->iops, event);
  test_close_pair (fds);
}

/* -- rule 9: sharing the loop ------------------------------------------ */

/* Whatever keeps an IOPS busy — an fd that is always ready and re-armed
 * from every callback, a 0 µs timer re-armed from its own callback (a
 * common "call me soon" idiom) — must not starve other sources of its
 * context and priority, nor its own other events: no delivery loops
 * without bound inside one dispatch, each gets its turn. */
typedef struct
{
  gboolean watch;   /* an always-writable fd, re-armed from its callback */
  gboolean timer;   /* a 0 µs timer, re-armed from its callback */
  gboolean idle;    /* a G_PRIORITY_DEFAULT idle of the test's own */
} Busy;

static const Busy busy_watch = { TRUE, FALSE, TRUE };
static const Busy busy_timer = { FALSE, TRUE, TRUE };
/* Regression: an fd that stays ready next to a timer of the same IOPS due
 * on every iteration; each must get its turn. */
static const Busy busy_timer_and_watch = { TRUE, TRUE, FALSE };

#define BUSY_ITERATIONS 200
#define BUSY_FAIR_SHARE 10

static gboolean
count_idle (gpointer data)
{
  (*(guint *) data)++;
  return G_SOURCE_CONTINUE;
}

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

static void
test_busy_shares_loop (Fixture       *f,
                       gconstpointer  data)
{
  const Busy *busy = data;
  int s[2];
  g_autoptr(TestIOEvent) event = NULL;
  g_autoptr(TestTimerEvent) timer = test_timer_event_new ();
  GSource *idle = NULL;
  guint n_idle = 0;

  test_socketpair (s);
  event = test_io_event_new (s[0]);
  event->hook = rearm_write;
  event->hook_data = f;
  timer->hook = rearm_timer_zero;
  timer->hook_data = f;

  if (busy->idle)
    idle = test_add_idle (f->context, G_PRIORITY_DEFAULT, count_idle, &n_idle);
  if (busy->watch)
    test_watch (f->iops, event, IOPS_WRITE_EVENT);
  if (busy->timer)
    test_arm (f->iops, timer, 0);

  for (guint i = 0; i < BUSY_ITERATIONS; i++)
    g_main_context_iteration (f->context, TRUE);

  if (busy->watch)
    g_assert_cmpuint (event->n_w, >, BUSY_FAIR_SHARE);
  if (busy->timer)
    g_assert_cmpuint (timer->n_fired, >, BUSY_FAIR_SHARE);
  if (busy->idle)
    {
      g_assert_cmpuint (n_idle, >, BUSY_FAIR_SHARE);
      g_source_destroy (idle);
      g_source_unref (idle);
    }

  test_cleanup_timer (f->iops, timer);
  test_cleanup (f->iops, event);
  test_close_pair (s);
}

/* Regression: a readable fd re-armed while a timer of the same IOPS is due
 * on every iteration: the read must still come. */
static void
test_due_timer_delays_read (Fixture       *f,
                            gconstpointer  data)
{
  int s[2];
  g_autoptr(TestIOEvent) event = NULL;
  g_autoptr(TestTimerEvent) timer = test_timer_event_new ();

  test_socketpair (s);
  event = test_io_event_new (s[0]);
  timer->hook = rearm_timer_zero;
  timer->hook_data = f;

  /* One delivery, re-armed from outside: a watch that fired before. */
  test_watch (f->iops, event, IOPS_READ_EVENT);
  test_write_byte (s[1]);
  g_assert_true (test_iterate_until_count (f->context, &event->n_r, 1, TEST_DEADLINE_MS));
  test_drain (s[0]);
  test_watch (f->iops, event, IOPS_READ_EVENT);
  g_main_context_iteration (f->context, FALSE);
  test_watch (f->iops, event, IOPS_READ_EVENT);
  g_main_context_iteration (f->context, FALSE);

  /* Now a timer due on every iteration, and data to read. */
  test_arm (f->iops, timer, 0);
  test_write_byte (s[1]);
  test_iterate_until_count (f->context, &event->n_r, 2, TEST_DEADLINE_MS);
  g_assert_cmpuint (event->n_r, ==, 2);

  test_cleanup_timer (f->iops, timer);
  test_cleanup (f->iops, event);
  test_close_pair (s);
}

/* -- NULL context ------------------------------------------------------- */

static void
test_null_context_thread_default (void)
{
  GMainContext *context = g_main_context_new ();
  IopsGLibIOPS *glib;
  GMainContext *property = NULL;
  gboolean fired;
  g_autoptr(TestTimerEvent) timer = test_timer_event_new_flagged (&fired);

  g_main_context_push_thread_default (context);
  glib = iops_glib_iops_new (NULL);
  /* Captured at construction, not looked up later. */
  g_main_context_pop_thread_default (context);

  g_assert_true (iops_glib_iops_get_context (glib) == context);
  g_object_get (glib, "context", &property, NULL);
  g_assert_true (property == context);
  g_main_context_unref (property);

  test_arm (IOPS_IOPS (glib), timer, 100);
  g_assert_true (test_iterate_until (context, &fired, TEST_DEADLINE_MS));
  g_assert_cmpuint (timer->n_fired, ==, 1);

  g_object_unref (glib);
  g_main_context_unref (context);
}

static void
test_null_context_global_default (void)
{
  g_autoptr(IopsGLibIOPS) glib = iops_glib_iops_new (NULL);
  gboolean fired;
  g_autoptr(TestTimerEvent) timer = test_timer_event_new_flagged (&fired);

  g_assert_true (iops_glib_iops_get_context (glib) == g_main_context_default ());

  test_arm (IOPS_IOPS (glib), timer, 100);
  g_assert_true (test_iterate_until (g_main_context_default (), &fired, TEST_DEADLINE_MS));
  g_assert_cmpuint (timer->n_fired, ==, 1);
}

/* -- rule 10: independent IOPS in threads -------------------------------- */

#define PING_PONGS 200
#define TICKS      50

typedef struct
{
  GMutex lock;
  GCond  cond;
  guint  waiting;
} Barrier;

static void
barrier_wait (Barrier *barrier,
              guint    n)
{
  g_mutex_lock (&barrier->lock);
  if (++barrier->waiting == n)
    g_cond_broadcast (&barrier->cond);
  while (barrier->waiting < n)
    g_cond_wait (&barrier->cond, &barrier->lock);
  g_mutex_unlock (&barrier->lock);
}

typedef struct
{
  Barrier        *barrier;
  GMainContext   *context;
  IopsIOPS       *iops;
  gboolean        own_context;
  int             fds[2];
  guint           pings, pongs, ticks;
  guint           io_errors;
  gint64          tick_armed_at;
  gint64          shortest_tick;
  gboolean        returned;
} Side;

static void
ping_hook (TestIOEvent    *event,
           IopsEventFlags  ready,
           gpointer        data)
{
  Side *side = data;
  char c;

  if (read (side->fds[0], &c, 1) != 1 || write (side->fds[0], "p", 1) != 1)
    side->io_errors++;
  if (++side->pings < PING_PONGS)
    test_watch (side->iops, event, IOPS_READ_EVENT);
}

static void
pong_hook (TestIOEvent    *event,
           IopsEventFlags  ready,
           gpointer        data)
{
  Side *side = data;
  char c;

  if (read (side->fds[1], &c, 1) != 1)
    side->io_errors++;
  if (++side->pongs < PING_PONGS)
    {
      if (write (side->fds[1], "q", 1) != 1)
        side->io_errors++;
      test_watch (side->iops, event, IOPS_READ_EVENT);
    }
}

static void
tick_hook (TestTimerEvent *timer,
           gpointer        data)
{
  Side *side = data;

  side->shortest_tick = MIN (side->shortest_tick, timer->fired_at - side->tick_armed_at);
  if (++side->ticks < TICKS)
    {
      side->tick_armed_at = g_get_monotonic_time ();
      test_arm (side->iops, timer, 200);
    }
}

static gpointer
side_thread (gpointer data)
{
  Side *side = data;
  IopsGLibIOPS *glib;
  TestIOEvent *ping, *pong;
  TestTimerEvent *tick;

  side->context = g_main_context_new ();
  g_main_context_push_thread_default (side->context);
  glib = iops_glib_iops_new (NULL);
  side->own_context = iops_glib_iops_get_context (glib) == side->context;
  side->iops = IOPS_IOPS (glib);

  test_socketpair (side->fds);
  ping = test_io_event_new (side->fds[0]);
  ping->hook = ping_hook;
  ping->hook_data = side;
  pong = test_io_event_new (side->fds[1]);
  pong->hook = pong_hook;
  pong->hook_data = side;
  tick = test_timer_event_new ();
  tick->hook = tick_hook;
  tick->hook_data = side;

  test_watch (side->iops, ping, IOPS_READ_EVENT);
  test_watch (side->iops, pong, IOPS_READ_EVENT);
  side->tick_armed_at = g_get_monotonic_time ();
  test_arm (side->iops, tick, 200);
  if (write (side->fds[1], "q", 1) != 1)
    side->io_errors++;

  /* Both threads run their loops at the same time. */
  barrier_wait (side->barrier, 2);
  side->returned = test_start_watching_bounded (side->context, side->iops);

  test_cleanup (side->iops, ping);
  test_cleanup (side->iops, pong);
  test_cleanup_timer (side->iops, tick);
  g_object_unref (ping);
  g_object_unref (pong);
  g_object_unref (tick);
  g_object_unref (glib);
  test_close_pair (side->fds);
  g_main_context_pop_thread_default (side->context);
  g_main_context_unref (side->context);
  return NULL;
}

static void
test_threads_independent (void)
{
  Barrier barrier = { 0 };
  Side sides[2] = { { 0 } };
  GThread *threads[2];

  g_mutex_init (&barrier.lock);
  g_cond_init (&barrier.cond);

  for (guint i = 0; i < 2; i++)
    {
      sides[i].barrier = &barrier;
      sides[i].shortest_tick = G_MAXINT64;
      threads[i] = g_thread_new ("side", side_thread, &sides[i]);
    }
  for (guint i = 0; i < 2; i++)
    g_thread_join (threads[i]);

  for (guint i = 0; i < 2; i++)
    {
      g_assert_true (sides[i].own_context);
      g_assert_true (sides[i].returned);
      g_assert_cmpuint (sides[i].io_errors, ==, 0);
      g_assert_cmpuint (sides[i].pings, ==, PING_PONGS);
      g_assert_cmpuint (sides[i].pongs, ==, PING_PONGS);
      g_assert_cmpuint (sides[i].ticks, ==, TICKS);
      g_assert_cmpint (sides[i].shortest_tick, >=, 200);
    }

  g_mutex_clear (&barrier.lock);
  g_cond_clear (&barrier.cond);
}

/* -- rule 11: disposal -------------------------------------------------- */

/* Two fd watches, two timers: one of each ready at once, one later. */
typedef struct
{
  int             fds[2];
  TestIOEvent    *ready_now;     /* fds[0] for WRITE: writable at once */
  TestIOEvent    *ready_later;   /* fds[1] for READ: when fds[0] writes */
  TestTimerEvent *due_now;
  TestTimerEvent *due_later;
  gpointer        alive[4];
} Armed;

static void
armed_init (Armed    *armed,
            IopsIOPS *iops)
{
  GObject *objects[4];

  test_socketpair (armed->fds);
  armed->ready_now = test_io_event_new (armed->fds[0]);
  armed->ready_later = test_io_event_new (armed->fds[1]);
  armed->due_now = test_timer_event_new ();
  armed->due_later = test_timer_event_new ();

  objects[0] = G_OBJECT (armed->ready_now);
  objects[1] = G_OBJECT (armed->ready_later);
  objects[2] = G_OBJECT (armed->due_now);
  objects[3] = G_OBJECT (armed->due_later);
  for (guint i = 0; i < 4; i++)
    {
      armed->alive[i] = objects[i];
      g_object_add_weak_pointer (objects[i], &armed->alive[i]);
    }

  test_watch (iops, armed->ready_now, IOPS_WRITE_EVENT);
  test_watch (iops, armed->ready_later, IOPS_READ_EVENT);
  test_arm (iops, armed->due_now, 0);
  test_arm (iops, armed->due_later, 5000);
}

static guint
armed_callbacks (Armed *armed)
{
  return test_io_event_total (armed->ready_now) +
         test_io_event_total (armed->ready_later) +
         armed->due_now->n_fired + armed->due_later->n_fired;
}

/* Drops the test's own references. */
static void
armed_unref (Armed *armed)
{
  g_clear_object (&armed->ready_now);
  g_clear_object (&armed->ready_later);
  g_clear_object (&armed->due_now);
  g_clear_object (&armed->due_later);
}

static void
armed_assert_finalized (Armed *armed)
{
  for (guint i = 0; i < 4; i++)
    g_assert_null (armed->alive[i]);
}

static void
test_dispose_no_callback (Fixture       *f,
                          gconstpointer  data)
{
  Armed armed;

  armed_init (&armed, f->iops);
  f->iops = NULL;
  g_clear_object (&f->glib_iops);

  /* Everything that was armed becomes ready or due now. */
  g_assert_cmpint (write (armed.fds[0], "x", 1), ==, 1);
  test_iterate_for (f->context, 30);
  g_assert_cmpuint (armed_callbacks (&armed), ==, 0);

  /* The IOPS kept no reference: ours were the last. */
  for (guint i = 0; i < 4; i++)
    g_assert_nonnull (armed.alive[i]);
  armed_unref (&armed);
  armed_assert_finalized (&armed);
  test_close_pair (armed.fds);
}

static void
test_dispose_releases_references (Fixture       *f,
                                  gconstpointer  data)
{
  Armed armed;
  g_autoptr(TestTimerEvent) disarmed = test_timer_event_new ();
  gpointer disarmed_alive = disarmed;

  g_object_add_weak_pointer (G_OBJECT (disarmed), &disarmed_alive);
  armed_init (&armed, f->iops);
  /* Registered, then disarmed: the IOPS holds it until disposal. */
  test_arm (f->iops, disarmed, 60 * G_USEC_PER_SEC);
  test_unwatch_timer (f->iops, disarmed);

  /* Rule 6: armed events are kept alive by the IOPS alone. */
  armed_unref (&armed);
  for (guint i = 0; i < 4; i++)
    g_assert_nonnull (armed.alive[i]);

  f->iops = NULL;
  g_clear_object (&f->glib_iops);
  armed_assert_finalized (&armed);

  /* The disarmed one outlives the IOPS and is still usable. */
  g_assert_nonnull (disarmed_alive);
  g_clear_object (&disarmed);
  g_assert_null (disarmed_alive);

  test_iterate_for (f->context, 10);
  test_close_pair (armed.fds);
}

static void
test_dispose_events_reusable (Fixture       *f,
                              gconstpointer  data)
{
  Armed armed;
  IopsGLibIOPS *second;
  gboolean ready_now, due_now;

  armed_init (&armed, f->iops);
  f->iops = NULL;
  g_clear_object (&f->glib_iops);

  /* The events were registered with the disposed IOPS; they are fresh
   * registrations for a new one. */
  second = iops_glib_iops_new (f->context);
  armed.ready_now->hook = test_io_flag_hook;
  armed.ready_now->hook_data = &ready_now;
  armed.due_now->hook = test_timer_flag_hook;
  armed.due_now->hook_data = &due_now;
  ready_now = due_now = FALSE;
  test_watch (IOPS_IOPS (second), armed.ready_now, IOPS_WRITE_EVENT);
  test_arm (IOPS_IOPS (second), armed.due_now, 0);

  g_assert_true (test_iterate_until (f->context, &ready_now, TEST_DEADLINE_MS));
  g_assert_true (test_iterate_until (f->context, &due_now, TEST_DEADLINE_MS));
  g_assert_cmpuint (armed.ready_now->n_w, ==, 1);
  g_assert_cmpuint (armed.due_now->n_fired, ==, 1);
  g_assert_cmpuint (armed.ready_later->n_r, ==, 0);
  g_assert_cmpuint (armed.due_later->n_fired, ==, 0);

  iops_iops_update_event (IOPS_IOPS (second), IOPS_IO_EVENT (armed.ready_now),
                          IOPS_EVACTION_CLEANUP, 0);
  iops_iops_update_timer (IOPS_IOPS (second), IOPS_TIMER_EVENT (armed.due_now),
                          IOPS_EVACTION_CLEANUP, 0);
  g_object_unref (second);
  armed_unref (&armed);
  armed_assert_finalized (&armed);
  test_close_pair (armed.fds);
}

/* Drops the IOPS from a callback, the first time one runs; counts the
 * callbacks that come after. */
typedef struct
{
  Fixture  *f;
  Armed    *armed;
  guint     at_drop;   /* callbacks of @armed up to the drop, this one included */
  gpointer  glib_alive;
  gboolean  dropped;
  guint     after;     /* drop hooks run after the drop */
} Dropper;

static void
drop_iops (Dropper *dropper)
{
  if (dropper->dropped)
    {
      dropper->after++;
      return;
    }
  if (dropper->armed != NULL)
    dropper->at_drop = armed_callbacks (dropper->armed);
  dropper->f->iops = NULL;
  g_clear_object (&dropper->f->glib_iops);
  dropper->dropped = TRUE;
}

static void
drop_io_hook (TestIOEvent    *event,
              IopsEventFlags  ready,
              gpointer        data)
{
  drop_iops (data);
}

static void
drop_timer_hook (TestTimerEvent *timer,
                 gpointer        data)
{
  drop_iops (data);
}

static void
dropper_init (Dropper *dropper,
              Fixture *f,
              Armed   *armed)
{
  dropper->f = f;
  dropper->armed = armed;
  dropper->at_drop = 0;
  dropper->glib_alive = f->glib_iops;
  dropper->dropped = FALSE;
  dropper->after = 0;
  g_object_add_weak_pointer (G_OBJECT (f->glib_iops), &dropper->glib_alive);
}

static void
test_dispose_in_io_callback (Fixture       *f,
                             gconstpointer  data)
{
  Armed armed;
  Dropper dropper;

  dropper_init (&dropper, f, &armed);
  armed_init (&armed, f->iops);
  armed.ready_now->hook = drop_io_hook;
  armed.ready_now->hook_data = &dropper;

  g_assert_true (test_iterate_until (f->context, &dropper.dropped, TEST_DEADLINE_MS));
  g_assert_null (dropper.glib_alive);

  /* Whatever was not delivered before the drop never is: not due_now if
   * it was due in the same iteration, not ready_later once readable, not
   * due_later. */
  g_assert_cmpint (write (armed.fds[0], "x", 1), ==, 1);
  test_iterate_for (f->context, 30);
  g_assert_cmpuint (armed.ready_now->n_w, ==, 1);
  g_assert_cmpuint (armed.ready_later->n_r, ==, 0);
  g_assert_cmpuint (armed_callbacks (&armed), ==, dropper.at_drop);

  armed_unref (&armed);
  armed_assert_finalized (&armed);
  test_close_pair (armed.fds);
}

static void
test_dispose_in_timer_callback (Fixture       *f,
                                gconstpointer  data)
{
  Armed armed;
  Dropper dropper;
  g_autoptr(TestTimerEvent) first = test_timer_event_new ();

  dropper_init (&dropper, f, &armed);
  first->hook = drop_timer_hook;
  first->hook_data = &dropper;
  /* Armed before the others: it fires first, and due_now (0 µs) is due in
   * the same iteration when the IOPS goes away. */
  test_arm (f->iops, first, 0);
  armed_init (&armed, f->iops);
  iops_iops_update_event (f->iops, IOPS_IO_EVENT (armed.ready_now),
                          IOPS_EVACTION_UNWATCH, 0);

  g_assert_true (test_iterate_until (f->context, &dropper.dropped, TEST_DEADLINE_MS));
  g_assert_cmpuint (first->n_fired, ==, 1);

  g_assert_cmpint (write (armed.fds[0], "x", 1), ==, 1);
  test_iterate_for (f->context, 30);
  g_assert_null (dropper.glib_alive);
  g_assert_cmpuint (armed_callbacks (&armed), ==, 0);

  armed_unref (&armed);
  armed_assert_finalized (&armed);
  test_close_pair (armed.fds);
}

static void
test_dispose_in_callback_last_armed (Fixture       *f,
                                     gconstpointer  data)
{
  Dropper dropper;
  g_autoptr(TestTimerEvent) timer = test_timer_event_new ();
  IopsIOPS *iops = f->iops;

  dropper_init (&dropper, f, NULL);
  timer->hook = drop_timer_hook;
  timer->hook_data = &dropper;

  /* The callback drops the last reference while start_watching runs; the
   * call must return without touching a dead IOPS. */
  test_arm (iops, timer, 100);
  g_assert_true (test_start_watching_bounded (f->context, iops));
  g_assert_true (dropper.dropped);
  g_assert_cmpuint (timer->n_fired, ==, 1);
  g_assert_null (dropper.glib_alive);
}

static void
test_dispose_in_callback_while_watching (Fixture       *f,
                                         gconstpointer  data)
{
  Armed armed;
  Dropper dropper;
  IopsIOPS *iops = f->iops;

  dropper_init (&dropper, f, &armed);
  armed_init (&armed, iops);
  iops_iops_update_timer (iops, IOPS_TIMER_EVENT (armed.due_now), IOPS_EVACTION_WATCH,
                          60 * G_USEC_PER_SEC);
  armed.ready_now->hook = drop_io_hook;
  armed.ready_now->hook_data = &dropper;

  /* The consumer drops its last reference from a callback while other
   * events are armed (rule 11: they are disarmed, nothing more is
   * delivered); with nothing armed any more, start_watching returns
   * (rule 8). */
  g_assert_true (test_start_watching_bounded (f->context, iops));
  g_assert_true (dropper.dropped);
  g_assert_null (dropper.glib_alive);

  g_assert_cmpint (write (armed.fds[0], "x", 1), ==, 1);
  test_iterate_for (f->context, 30);
  g_assert_cmpuint (armed.ready_later->n_r, ==, 0);
  g_assert_cmpuint (armed.due_now->n_fired, ==, 0);
  g_assert_cmpuint (armed_callbacks (&armed), ==, dropper.at_drop);

  armed_unref (&armed);
  armed_assert_finalized (&armed);
  test_close_pair (armed.fds);
}

/* Every event and timer is ready at once, each with a callback that drops
 * the IOPS, and the IOPS holds the only references to them: whichever runs
 * first drops it, its references go with it (the events are finalized in
 * the middle of the dispatch), no other callback comes, and start_watching
 * returns without touching the IOPS again. */
static void
test_dispose_in_callback_last_references (Fixture       *f,
                                          gconstpointer  data)
{
  Dropper dropper;
  TestIOEvent *events[3];
  TestTimerEvent *timers[3];
  int fds[G_N_ELEMENTS (events)][2];
  IopsIOPS *iops = f->iops;

  dropper_init (&dropper, f, NULL);
  for (guint i = 0; i < G_N_ELEMENTS (events); i++)
    {
      test_socketpair (fds[i]);
      events[i] = test_io_event_new (fds[i][0]);
      events[i]->hook = drop_io_hook;
      events[i]->hook_data = &dropper;
      g_object_add_weak_pointer (G_OBJECT (events[i]), (gpointer *) &events[i]);
      test_watch (iops, events[i], IOPS_RW_EVENT);
      g_object_unref (events[i]);
      timers[i] = test_timer_event_new ();
      timers[i]->hook = drop_timer_hook;
      timers[i]->hook_data = &dropper;
      g_object_add_weak_pointer (G_OBJECT (timers[i]), (gpointer *) &timers[i]);
      test_arm (iops, timers[i], 0);
      g_object_unref (timers[i]);
    }
  /* Rule 6: the IOPS holds the only references now. */
  for (guint i = 0; i < G_N_ELEMENTS (events); i++)
    {
      g_assert_nonnull (events[i]);
      g_assert_nonnull (timers[i]);
    }

  g_assert_true (test_start_watching_bounded (f->context, iops));
  g_assert_true (dropper.dropped);
  g_assert_cmpuint (dropper.after, ==, 0);
  g_assert_null (dropper.glib_alive);
  g_assert_null (f->glib_iops);
  for (guint i = 0; i < G_N_ELEMENTS (events); i++)
    {
      /* Its references went with it. */
      g_assert_null (events[i]);
      g_assert_null (timers[i]);
      test_close_pair (fds[i]);
    }
  test_iterate_for (f->context, 20);
  g_assert_cmpuint (dropper.after, ==, 0);
}

static void
test_dispose_in_nested_level_other_event (Fixture       *f,
                                          gconstpointer  data)
{
  check_nested_drop (f, TRUE);
}

/* The callback of an event re-arms it and nests; inside the nested level
 * (which keeps dispatching the event whose callback started it, rule 8)
 * the next delivery drops the IOPS. Both levels return; the timer armed
 * beyond the test's deadline, which kept them running, never fires. */
static void
nest_then_drop_hook (TestIOEvent    *event,
                     IopsEventFlags  ready,
                     gpointer        data)
{
  Dropper *dropper = data;

  event->hook = drop_io_hook;
  test_watch (dropper->f->iops, event, IOPS_WRITE_EVENT);
  iops_iops_start_watching (dropper->f->iops);
}

static void
test_dispose_in_nested_level_own_event (Fixture       *f,
                                        gconstpointer  data)
{
  Dropper dropper;
  g_autoptr(TestIOEvent) event = NULL;
  g_autoptr(TestTimerEvent) timer = test_timer_event_new ();
  int fds[2];

  dropper_init (&dropper, f, NULL);
  test_socketpair (fds);
  event = test_io_event_new (fds[0]);
  event->hook = nest_then_drop_hook;
  event->hook_data = &dropper;
  timer->hook = drop_timer_hook;
  timer->hook_data = &dropper;
  test_watch (f->iops, event, IOPS_WRITE_EVENT);
  test_arm (f->iops, timer, 2 * TEST_DEADLINE_MS * G_TIME_SPAN_MILLISECOND);

  g_assert_true (test_start_watching_bounded (f->context, f->iops));

  g_assert_true (dropper.dropped);
  g_assert_null (dropper.glib_alive);
  g_assert_cmpuint (dropper.after, ==, 0);
  g_assert_cmpuint (timer->n_fired, ==, 0);
  g_assert_cmpuint (test_io_event_total (event), ==, 2);
  test_close_pair (fds);
}

/* Bug: on epoll, an IOPS dropped in a forked child removed its watches
 * from the epoll set the child shares with its parent, and the parent's
 * watches went deaf. Dropping an inherited IOPS in a child — what a Python
 * child's garbage collector does — leaves the parent alone. */
static void
test_dispose_in_forked_child (Fixture       *f,
                              gconstpointer  data)
{
  int s[2];
  gboolean ready, fired;
  g_autoptr(TestIOEvent) event = NULL;
  g_autoptr(TestTimerEvent) timer = test_timer_event_new_flagged (&fired);
  int status;
  pid_t pid;

  test_socketpair (s);
  event = test_io_event_new_flagged (s[0], &ready);
  test_watch (f->iops, event, IOPS_READ_EVENT);
  test_arm (f->iops, timer, 20 * G_TIME_SPAN_MILLISECOND);
  /* Polled once, so that whatever the backend registers with the kernel
   * is registered before the fork. */
  g_main_context_iteration (f->context, FALSE);

  pid = fork ();
  g_assert_cmpint (pid, >=, 0);
  if (pid == 0)
    {
      /* What the child's garbage collector would do; the events too, so
       * that valgrind's leak check in the child finds nothing. */
      g_object_unref (f->glib_iops);
      g_clear_object (&event);
      g_clear_object (&timer);
      _exit (0);
    }
  g_assert_cmpint (waitpid (pid, &status, 0), ==, pid);
  g_assert_true (WIFEXITED (status));
  g_assert_cmpint (WEXITSTATUS (status), ==, 0);

  test_write_byte (s[1]);
  g_assert_true (test_iterate_until (f->context, &ready, TEST_DEADLINE_MS));
  g_assert_true (test_iterate_until (f->context, &fired, TEST_DEADLINE_MS));

  test_cleanup (f->iops, event);
  test_cleanup_timer (f->iops, timer);
  test_close_pair (s);
}

/* The sources attached to @context: its ids are its own, handed out in
 * turn, so every one lies below the id a new source gets. */

int
main (int   argc,
      char *argv[])
{
  test_init (&argc, &argv);

#define ADD(path, func) \
  g_test_add ("/iops/glib/" path, Fixture, NULL, test_fixture_setup, func, test_fixture_teardown)
#define ADD_DATA(path, func, data) \
  g_test_add ("/iops/glib/" path, Fixture, data, test_fixture_setup, func, test_fixture_teardown)

  /* Rule 8: start_watching and stop_watching. */
  ADD ("start-watching/returns-when-nothing-armed", test_returns_when_nothing_armed);
  ADD ("start-watching/returns-when-last-delivered", test_returns_when_last_delivered);
  ADD ("start-watching/returns-when-disarmed-by-other-source",
       test_returns_when_disarmed_by_other_source);
  ADD ("start-watching/returns-when-disarmed-by-event-callback",
       test_returns_when_disarmed_by_event_callback);
  ADD ("start-watching/stop-from-callback", test_stop_from_callback);
  ADD ("start-watching/stop-not-remembered", test_stop_not_remembered);
  ADD ("start-watching/stop-from-other-thread", test_stop_from_other_thread);
  ADD ("start-watching/stop-from-other-thread/hammer", test_stop_from_other_thread_hammer);
  ADD ("start-watching/nested-timer", test_nested_timer);
  ADD ("start-watching/nested-watch", test_nested_watch);
  ADD ("start-watching/nested-all-return", test_nested_all_return);
  ADD ("start-watching/nested-in-application-loop", test_nested_in_application_loop);
  ADD ("start-watching/nested-cleans-up-outer", test_nested_cleans_up_outer);

  /* Rule 9: any loop delivers, and the IOPS shares it. */
  ADD ("any-loop/context-iteration", test_any_loop_iteration);
  ADD ("any-loop/main-loop", test_any_loop_main_loop);
  ADD_DATA ("any-loop/shares/busy-watch", test_busy_shares_loop, &busy_watch);
  ADD_DATA ("any-loop/shares/busy-timer", test_busy_shares_loop, &busy_timer);
  ADD_DATA ("any-loop/shares/busy-timer-and-watch", test_busy_shares_loop, &busy_timer_and_watch);
  ADD ("any-loop/shares/due-timer-delays-read", test_due_timer_delays_read);

  /* Rules 9 and 10: the context, and threads. */
  g_test_add_func ("/iops/glib/context/null-is-thread-default", test_null_context_thread_default);
  g_test_add_func ("/iops/glib/context/null-is-global-default", test_null_context_global_default);
  g_test_add_func ("/iops/glib/threads/independent", test_threads_independent);

  /* Rule 11: disposal. */
  ADD ("dispose/no-callback", test_dispose_no_callback);
  ADD ("dispose/releases-references", test_dispose_releases_references);
  ADD ("dispose/events-reusable", test_dispose_events_reusable);
  ADD ("dispose/in-io-callback", test_dispose_in_io_callback);
  ADD ("dispose/in-timer-callback", test_dispose_in_timer_callback);
  ADD ("dispose/in-callback-last-armed", test_dispose_in_callback_last_armed);
  ADD ("dispose/in-callback-while-watching", test_dispose_in_callback_while_watching);
  ADD ("dispose/in-callback-last-references", test_dispose_in_callback_last_references);
  ADD ("dispose/in-nested-level/other-event", test_dispose_in_nested_level_other_event);
  ADD ("dispose/in-nested-level/own-event", test_dispose_in_nested_level_own_event);
  ADD ("dispose/in-forked-child", test_dispose_in_forked_child);

#undef ADD
#undef ADD_DATA

  return g_test_run ();
}

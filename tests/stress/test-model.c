/* test-model.c — random operation sequences checked against the model of
 * DESIGN.md (iops-model.c)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Every run draws new seeds and prints them. To replay a failure:
 *
 *   IOPS_GLIB_BACKEND=epoll IOPS_MODEL_SEED=<seed> IOPS_MODEL_OPS=<ops> \
 *     build/tests/stress/test-model
 *
 * IOPS_MODEL_SEED runs that one seed only; IOPS_MODEL_OPS is the number of
 * operations per seed, IOPS_MODEL_SEEDS the number of seeds per run. Timer
 * deadlines are real time, so a replay takes the same course unless the
 * machine's timing differs a lot. IOPS_MODEL_DISABLE=CROWD,FILENO,... turns
 * operations off (see model_disable()), to tell which one finds a bug.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <iops-glib.h>

#include "iops-model.h"

#ifdef HAVE_VALGRIND_H
# include <valgrind/valgrind.h>
#endif

#define DEFAULT_SEEDS           4
#define DEFAULT_OPS_PER_SEED    500000   /* 4 × 500k = 2M per backend, ~2 s a seed */
#define SLOW_OPS_PER_SEED       50000    /* under valgrind or ThreadSanitizer */

#if defined(__SANITIZE_THREAD__)
# define UNDER_TSAN 1
#elif defined(__has_feature)
# if __has_feature(thread_sanitizer)
#  define UNDER_TSAN 1
# endif
#endif

/* Seeds that once found a bug, replayed on every run. Timer deadlines are
 * real time, so a seed retraces its steps only as far as timing allows,
 * and only in the byte language it was found in: these three predate the
 * crowd, fileno() and worker-thread operations, which gave some of their
 * bytes other meanings. The directed tests below pin the bugs down
 * deterministically. */
static const struct { guint64 seed; guint64 ops; } regressions[] = {
  /* epoll: a direct watch armed after the lane's last check() was never
   * delivered while timers kept the lane ready in prepare(); and a watch
   * moved to another priority inside its own callback was promoted into
   * the delivering lane, at the old priority. */
  { 1, 20000 },
  { 2, 20000 },
  /* epoll: the timerfd was disarmed when a timer of another lane fell due
   * between that lane's prepare() and the host lane's: the poll slept. */
  { G_GUINT64_CONSTANT (6415939143731330962), 250000 },
};

/* Valgrind, or a ThreadSanitizer build: ten times fewer operations. */
static gboolean
running_slow (void)
{
#ifdef UNDER_TSAN
  return TRUE;
#endif
#ifdef HAVE_VALGRIND_H
  if (RUNNING_ON_VALGRIND)
    return TRUE;
#endif
  return strstr (g_getenv ("LD_PRELOAD") ?: "", "vgpreload") != NULL;
}

static guint64
env_u64 (const char *name,
         guint64     fallback)
{
  const char *value = g_getenv (name);

  return value != NULL && *value != '\0' ? g_ascii_strtoull (value, NULL, 0) : fallback;
}

typedef struct
{
  guint64 seed;
  guint64 ops;
} Run;

static void
disable_from_env (Model *model)
{
  g_auto(GStrv) names = g_strsplit (g_getenv ("IOPS_MODEL_DISABLE") ?: "", ",", -1);

  for (guint i = 0; names[i] != NULL; i++)
    if (*g_strstrip (names[i]) != '\0' && !model_disable (model, names[i]))
      g_error ("IOPS_MODEL_DISABLE: no operation is called %s", names[i]);
}

static void
test_run (gconstpointer data)
{
  const Run *run = data;
  Model *model;
  gint64 start;
  double secs;
  char *stats;

  g_test_message ("seed %" G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT " operations, backend %s "
                  "(replay: IOPS_MODEL_SEED=%" G_GUINT64_FORMAT " IOPS_MODEL_OPS=%" G_GUINT64_FORMAT ")",
                  run->seed, run->ops, g_getenv ("IOPS_GLIB_BACKEND") ?: "default",
                  run->seed, run->ops);

  start = g_get_monotonic_time ();
  model = model_new_random (run->seed);
  disable_from_env (model);
  if (!model_run (model, run->ops))
    {
      g_printerr ("replay: IOPS_GLIB_BACKEND=%s IOPS_MODEL_SEED=%" G_GUINT64_FORMAT
                  " IOPS_MODEL_OPS=%" G_GUINT64_FORMAT "%s%s %s\n",
                  g_getenv ("IOPS_GLIB_BACKEND") ?: "", run->seed, run->ops,
                  g_getenv ("IOPS_MODEL_DISABLE") ? " IOPS_MODEL_DISABLE=" : "",
                  g_getenv ("IOPS_MODEL_DISABLE") ?: "", g_get_prgname ());
      g_test_fail_printf ("model violation with seed %" G_GUINT64_FORMAT, run->seed);
    }
  secs = (g_get_monotonic_time () - start) / 1e6;
  stats = model_get_stats (model);
  g_test_message ("%s; %.1f s, %.0f ops/s", stats, secs, model_get_n_ops (model) / MAX (secs, 1e-6));
  g_free (stats);
  model_free (model);
}

/* -- directed regressions ------------------------------------------------ */

typedef struct
{
  IopsIOPS *iops;
  int       fd;
  guint     n_ready;
  gboolean  rearm;
} Watcher;

static void
on_io_ready (IopsIOEvent    *event,
             IopsEventFlags  flags,
             gpointer        data)
{
  Watcher *w = data;
  char buf[64];

  w->n_ready++;
  while (read (w->fd, buf, sizeof buf) > 0)
    ;
  if (w->rearm)
    iops_iops_update_event (w->iops, event, IOPS_EVACTION_WATCH, IOPS_READ_EVENT);
}

static void
on_timer_ready (IopsTimerEvent *timer,
                int             flags,
                gpointer        data)
{
  /* Due again at once: the lane is ready in every prepare(). */
  iops_iops_update_timer (data, timer, IOPS_EVACTION_WATCH, 0);
}

static void
iterate_until (GMainContext *context,
               const guint  *counter,
               guint         target)
{
  for (guint i = 0; i < 1000 && *counter < target; i++)
    g_main_context_iteration (context, FALSE);
}

/* A watch that fired before (epoll polls it directly) and is armed again
 * while a timer is due at every iteration must still be delivered. */
static void
test_due_timers_direct_watch (void)
{
  GMainContext *context = g_main_context_new ();
  IopsGLibIOPS *glib_iops = iops_glib_iops_new (context);
  IopsIOEvent *event;
  IopsTimerEvent *timer = iops_timer_event_new ();
  Watcher w = { IOPS_IOPS (glib_iops), -1, 0, TRUE };
  int sv[2];

  g_assert_cmpint (socketpair (AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), ==, 0);
  w.fd = sv[0];
  event = iops_io_event_new (sv[0]);
  g_signal_connect (event, "ready", G_CALLBACK (on_io_ready), &w);
  g_signal_connect (timer, "ready", G_CALLBACK (on_timer_ready), w.iops);

  /* Fire twice: re-armed from the callback the first time (which makes it
   * a hot, directly polled watch), left disarmed the second. */
  iops_iops_update_event (w.iops, event, IOPS_EVACTION_WATCH, IOPS_READ_EVENT);
  g_assert_cmpint (write (sv[1], "a", 1), ==, 1);
  iterate_until (context, &w.n_ready, 1);
  g_assert_cmpuint (w.n_ready, ==, 1);
  w.rearm = FALSE;
  g_assert_cmpint (write (sv[1], "b", 1), ==, 1);
  iterate_until (context, &w.n_ready, 2);
  g_assert_cmpuint (w.n_ready, ==, 2);

  iops_iops_update_timer (w.iops, timer, IOPS_EVACTION_WATCH, 0);
  g_main_context_iteration (context, FALSE);

  iops_iops_update_event (w.iops, event, IOPS_EVACTION_WATCH, IOPS_READ_EVENT);
  g_assert_cmpint (write (sv[1], "c", 1), ==, 1);
  iterate_until (context, &w.n_ready, 3);
  g_assert_cmpuint (w.n_ready, ==, 3);

  iops_iops_update_timer (w.iops, timer, IOPS_EVACTION_CLEANUP, 0);
  iops_iops_update_event (w.iops, event, IOPS_EVACTION_CLEANUP, 0);
  g_assert_finalize_object (event);
  g_assert_finalize_object (timer);
  g_assert_finalize_object (glib_iops);
  close (sv[0]);
  close (sv[1]);
  g_main_context_unref (context);
}

/* A watch moved to a better priority (and another fd) inside its own
 * callback must be dispatched at that priority, not left behind a source of
 * its old priority's betters that is always ready. */
typedef struct
{
  IopsGLibIOPS   *glib_iops;
  IopsTimerEvent *timer;
  int             fds[2];   /* the first watched, then the second */
  guint           n_ready;
} Mover;

static void
on_io_move (IopsIOEvent    *event,
            IopsEventFlags  flags,
            gpointer        data)
{
  Mover *mv = data;
  IopsIOPS *iops = IOPS_IOPS (mv->glib_iops);
  char buf[64];

  if (mv->n_ready++ > 0)
    return;
  while (read (mv->fds[0], buf, sizeof buf) > 0)
    ;
  /* A timer due at every iteration at the default priority... */
  iops_glib_iops_set_priority (mv->glib_iops, G_PRIORITY_DEFAULT);
  iops_iops_update_timer (iops, mv->timer, IOPS_EVACTION_WATCH, 0);
  /* ...and the watch moved above it, re-armed, then pointed elsewhere. */
  iops_glib_iops_set_priority (mv->glib_iops, G_PRIORITY_HIGH);
  iops_iops_update_event (iops, event, IOPS_EVACTION_WATCH, IOPS_READ_EVENT);
  iops_io_event_set_fd (event, mv->fds[1]);
  iops_iops_update_event (iops, event, IOPS_EVACTION_WATCH, IOPS_READ_EVENT);
}

static void
test_priority_change_in_callback (void)
{
  GMainContext *context = g_main_context_new ();
  Mover mv = { iops_glib_iops_new (context), iops_timer_event_new (), { -1, -1 }, 0 };
  IopsIOPS *iops = IOPS_IOPS (mv.glib_iops);
  IopsIOEvent *event;
  int sv[2], other[2];

  g_assert_cmpint (socketpair (AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), ==, 0);
  g_assert_cmpint (socketpair (AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, other), ==, 0);
  mv.fds[0] = sv[0];
  mv.fds[1] = other[0];
  event = iops_io_event_new (sv[0]);
  g_signal_connect (event, "ready", G_CALLBACK (on_io_move), &mv);
  g_signal_connect (mv.timer, "ready", G_CALLBACK (on_timer_ready), iops);

  iops_glib_iops_set_priority (mv.glib_iops, G_PRIORITY_DEFAULT_IDLE);
  iops_iops_update_event (iops, event, IOPS_EVACTION_WATCH, IOPS_READ_EVENT);
  g_assert_cmpint (write (sv[1], "a", 1), ==, 1);
  iterate_until (context, &mv.n_ready, 1);
  g_assert_cmpuint (mv.n_ready, ==, 1);

  g_assert_cmpint (write (other[1], "b", 1), ==, 1);
  iterate_until (context, &mv.n_ready, 2);
  g_assert_cmpuint (mv.n_ready, ==, 2);

  iops_iops_update_timer (iops, mv.timer, IOPS_EVACTION_CLEANUP, 0);
  iops_iops_update_event (iops, event, IOPS_EVACTION_CLEANUP, 0);
  g_assert_finalize_object (event);
  g_assert_finalize_object (mv.timer);
  g_assert_finalize_object (mv.glib_iops);
  close (sv[0]);
  close (sv[1]);
  close (other[0]);
  close (other[1]);
  g_main_context_unref (context);
}

int
main (int   argc,
      char *argv[])
{
  g_autoptr(GPtrArray) runs = g_ptr_array_new_with_free_func (g_free);
  gboolean slow = running_slow ();
  guint64 ops = env_u64 ("IOPS_MODEL_OPS", slow ? SLOW_OPS_PER_SEED : DEFAULT_OPS_PER_SEED);
  const char *seed_env = g_getenv ("IOPS_MODEL_SEED");

  g_test_init (&argc, &argv, NULL);

  if (seed_env != NULL && *seed_env != '\0')
    {
      Run *run = g_new0 (Run, 1);

      run->seed = g_ascii_strtoull (seed_env, NULL, 0);
      run->ops = ops;
      g_ptr_array_add (runs, run);
      g_test_add_data_func ("/model/replay", run, test_run);
      return g_test_run ();
    }

  g_test_add_func ("/model/regress/due-timers-direct-watch", test_due_timers_direct_watch);
  g_test_add_func ("/model/regress/priority-change-in-callback", test_priority_change_in_callback);

  for (guint i = 0; i < G_N_ELEMENTS (regressions); i++)
    {
      Run *run = g_new0 (Run, 1);
      char *path;

      run->seed = regressions[i].seed;
      run->ops = slow ? MIN (regressions[i].ops, SLOW_OPS_PER_SEED) : regressions[i].ops;
      g_ptr_array_add (runs, run);
      path = g_strdup_printf ("/model/regress/%" G_GUINT64_FORMAT, run->seed);
      g_test_add_data_func (path, run, test_run);
      g_free (path);
    }

  for (guint64 i = 0, n = env_u64 ("IOPS_MODEL_SEEDS", DEFAULT_SEEDS); i < n; i++)
    {
      Run *run = g_new0 (Run, 1);
      char *path;

      /* New seeds on every run: the suite keeps exploring. */
      run->seed = ((guint64) g_random_int () << 32) | g_random_int ();
      run->ops = ops;
      g_ptr_array_add (runs, run);
      path = g_strdup_printf ("/model/random/%" G_GUINT64_FORMAT, i);
      g_test_add_data_func (path, run, test_run);
      g_free (path);
    }

  return g_test_run ();
}

/* test-backend.c — edge cases where the backends differ inside: epoll's
 * (fd, file) registrations, fds epoll refuses, many idle fds, fairness
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Every test runs on every backend (IOPS_GLIB_BACKEND), so each asserts
 * only what DESIGN.md promises.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "iops-test-util.h"

typedef TestFixture Fixture;

/* The backend property names what is in use; the environment chose it. */
static void
test_backend_property (Fixture       *f,
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

/* Rule 1: the same number, a new socket. epoll registers (fd, file): the
 * kernel dropped the old registration at close(), so WATCH must register
 * the new file even though the number and flags did not change. */
static void
test_fd_number_reused (Fixture       *f,
                       gconstpointer  data)
{
  int a[2], b[2];
  gboolean fired = FALSE;
  g_autoptr(TestIOEvent) event = NULL;

  test_socketpair (a);
  event = test_io_event_new (a[0]);
  event->hook = test_io_flag_hook;
  event->hook_data = &fired;
  test_watch (f->iops, event, IOPS_READ_EVENT);
  g_main_context_iteration (f->context, FALSE);
  g_assert_cmpuint (test_io_event_total (event), ==, 0);

  test_close_pair (a);
  test_socketpair (b);
  if (b[0] != a[0])
    {
      /* Put the new socket on the old number. */
      g_assert_cmpint (dup3 (b[0], a[0], O_CLOEXEC), ==, a[0]);
      close (b[0]);
      b[0] = a[0];
    }

  test_watch (f->iops, event, IOPS_READ_EVENT);
  test_write_byte (b[1]);
  g_assert_true (test_iterate_until (f->context, &fired, TEST_DEADLINE_MS));
  g_assert_cmpuint (event->n_r, ==, 1);

  test_cleanup (f->iops, event);
  test_close_pair (b);
}

/* Rule 2: an fd closed while armed is reported at most once and never
 * spins — also when a dup keeps the file open, which is where epoll goes
 * on reporting a registration whose number is gone. */
static void
test_closed_dup_fd_no_spin (Fixture       *f,
                            gconstpointer  data)
{
  int s[2], keep;
  g_autoptr(TestIOEvent) event = NULL;
  guint iterations;

  test_socketpair (s);
  keep = dup (s[0]);
  g_assert_cmpint (keep, >=, 0);
  event = test_io_event_new (s[0]);
  g_object_set (f->glib_iops, "persistent", TRUE, NULL);
  test_watch (f->iops, event, IOPS_READ_EVENT);
  g_main_context_iteration (f->context, FALSE);

  close (s[0]);
  test_write_byte (s[1]);  /* the file behind the closed number is readable */

  iterations = test_iterate_for (f->context, 200);
  g_assert_cmpuint (test_io_event_total (event), <=, 1);
  g_assert_cmpuint (iterations, <, 50);

  test_cleanup (f->iops, event);
  iterations = test_iterate_for (f->context, 100);
  g_assert_cmpuint (iterations, <, 20);
  close (keep);
  close (s[1]);
}

/* Same, for a one-shot watch disarmed before the close: the stale
 * registration must not keep waking the loop. */
static void
test_unwatched_dup_fd_no_spin (Fixture       *f,
                               gconstpointer  data)
{
  int s[2], keep;
  g_autoptr(TestIOEvent) event = NULL;
  gboolean fired = FALSE;
  guint iterations;

  test_socketpair (s);
  keep = dup (s[0]);
  event = test_io_event_new (s[0]);
  event->hook = test_io_flag_hook;
  event->hook_data = &fired;
  test_watch (f->iops, event, IOPS_READ_EVENT);
  test_write_byte (s[1]);
  g_assert_true (test_iterate_until (f->context, &fired, TEST_DEADLINE_MS));

  close (s[0]);
  test_write_byte (s[1]);
  iterations = test_iterate_for (f->context, 200);
  g_assert_cmpuint (event->n_r, ==, 1);
  g_assert_cmpuint (iterations, <, 20);

  test_cleanup (f->iops, event);
  close (keep);
  close (s[1]);
}

/* epoll refuses regular files (EPERM); poll() calls them always ready. */
static void
test_regular_file (Fixture       *f,
                   gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *path = NULL;
  int fd = g_file_open_tmp ("iops-test-XXXXXX", &path, &error);
  g_autoptr(TestIOEvent) event = NULL;
  gboolean fired = FALSE;

  g_assert_no_error (error);
  event = test_io_event_new (fd);
  event->hook = test_io_flag_hook;
  event->hook_data = &fired;
  test_watch (f->iops, event, IOPS_RW_EVENT);
  g_assert_true (test_iterate_until (f->context, &fired, TEST_DEADLINE_MS));
  g_assert_cmpuint (event->n_rw, ==, 1);

  /* One-shot: no second call without a WATCH. */
  test_iterate_for (f->context, 50);
  g_assert_cmpuint (test_io_event_total (event), ==, 1);

  test_cleanup (f->iops, event);
  close (fd);
  g_unlink (path);
}

/* Two events on one fd: epoll holds one registration per (fd, file). */
static void
test_two_events_one_fd (Fixture       *f,
                        gconstpointer  data)
{
  int s[2];
  g_autoptr(TestIOEvent) reader = NULL;
  g_autoptr(TestIOEvent) writer = NULL;
  gboolean read_fired = FALSE, write_fired = FALSE;

  test_socketpair (s);
  reader = test_io_event_new (s[0]);
  writer = test_io_event_new (s[0]);
  reader->hook = test_io_flag_hook;
  reader->hook_data = &read_fired;
  writer->hook = test_io_flag_hook;
  writer->hook_data = &write_fired;

  test_watch (f->iops, reader, IOPS_READ_EVENT);
  test_watch (f->iops, writer, IOPS_WRITE_EVENT);
  g_assert_true (test_iterate_until (f->context, &write_fired, TEST_DEADLINE_MS));
  g_assert_cmpuint (writer->n_w, ==, 1);
  g_assert_cmpuint (reader->n_r, ==, 0);

  test_write_byte (s[1]);
  g_assert_true (test_iterate_until (f->context, &read_fired, TEST_DEADLINE_MS));
  g_assert_cmpuint (reader->n_r, ==, 1);
  g_assert_cmpuint (writer->n_w, ==, 1);

  test_cleanup (f->iops, reader);
  test_cleanup (f->iops, writer);
  test_close_pair (s);
}

typedef struct
{
  Fixture *f;
  int      fd;
  guint    rounds;
} PingPong;

static void
pong (TestIOEvent    *event,
      IopsEventFlags  ready,
      gpointer        data)
{
  PingPong *pp = data;
  char c;

  g_assert_cmpint (read (pp->fd, &c, 1), ==, 1);
  if (--pp->rounds == 0)
    return;
  test_write_byte (pp->fd);
  test_watch (pp->f->iops, event, IOPS_READ_EVENT);
}

/* A bounded number of idle fds stay watched and never fire while a busy
 * one ping-pongs past them; cold fds must not get its deliveries. */
static void
test_many_idle_fds (Fixture       *f,
                    gconstpointer  data)
{
  enum { N_IDLE = 2000 };
  struct rlimit rl;
  int busy[2];
  typedef struct { int fd[2]; } Pair;
  Pair *idle = g_new (Pair, N_IDLE);
  TestIOEvent **idle_events = g_new (TestIOEvent *, N_IDLE);
  g_autoptr(TestIOEvent) event = NULL;
  PingPong pp = { f, 0, 500 };
  gboolean expired = FALSE;
  GSource *deadline;

  getrlimit (RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur < 2 * N_IDLE + 64)
    {
      rl.rlim_cur = MIN (rl.rlim_max, (rlim_t) 2 * N_IDLE + 64);
      setrlimit (RLIMIT_NOFILE, &rl);
    }
  if (rl.rlim_cur < 2 * N_IDLE + 64)
    {
      g_test_skip ("RLIMIT_NOFILE too low");
      g_free (idle);
      g_free (idle_events);
      return;
    }

  for (guint i = 0; i < N_IDLE; i++)
    {
      test_socketpair (idle[i].fd);
      idle_events[i] = test_io_event_new (idle[i].fd[0]);
      test_watch (f->iops, idle_events[i], IOPS_READ_EVENT);
    }

  test_socketpair (busy);
  pp.fd = busy[0];
  event = test_io_event_new (busy[0]);
  event->hook = pong;
  event->hook_data = &pp;
  test_watch (f->iops, event, IOPS_READ_EVENT);
  test_write_byte (busy[1]);

  /* Echo from the test itself, between iterations; a deadline source
   * bounds the wait should a wakeup be lost. */
  deadline = g_timeout_source_new (TEST_DEADLINE_MS);
  g_source_set_callback (deadline, test_set_flag, &expired, NULL);
  g_source_attach (deadline, f->context);
  while (pp.rounds > 0 && !expired)
    {
      char c;

      g_main_context_iteration (f->context, TRUE);
      while (read (busy[1], &c, 1) == 1)
        test_write_byte (busy[1]);
    }
  g_source_destroy (deadline);
  g_source_unref (deadline);
  g_assert_cmpuint (event->n_r, ==, 500);

  for (guint i = 0; i < N_IDLE; i++)
    {
      g_assert_cmpuint (test_io_event_total (idle_events[i]), ==, 0);
      test_cleanup (f->iops, idle_events[i]);
      g_object_unref (idle_events[i]);
      close (idle[i].fd[0]);
      close (idle[i].fd[1]);
    }
  test_cleanup (f->iops, event);
  test_close_pair (busy);
  g_free (idle);
  g_free (idle_events);
}

static gboolean
count_idle (gpointer data)
{
  (*(guint *) data)++;
  return G_SOURCE_CONTINUE;
}

static void
rearm_forever (TestIOEvent    *event,
               IopsEventFlags  ready,
               gpointer        data)
{
  test_watch (((Fixture *) data)->iops, event, IOPS_WRITE_EVENT);
}

/* A saturated IOPS (an fd that is always writable, re-armed from every
 * callback) must not starve other sources of its context and priority:
 * no delivery loops without bound inside one dispatch. */
static void
test_saturated_is_fair (Fixture       *f,
                        gconstpointer  data)
{
  int s[2];
  g_autoptr(TestIOEvent) event = NULL;
  GSource *idle = g_idle_source_new ();
  guint n_idle = 0;

  test_socketpair (s);
  event = test_io_event_new (s[0]);
  event->hook = rearm_forever;
  event->hook_data = f;

  g_source_set_priority (idle, G_PRIORITY_DEFAULT);
  g_source_set_callback (idle, count_idle, &n_idle, NULL);
  g_source_attach (idle, f->context);
  test_watch (f->iops, event, IOPS_WRITE_EVENT);

  for (guint i = 0; i < 200; i++)
    g_main_context_iteration (f->context, TRUE);

  g_assert_cmpuint (event->n_w, >, 10);
  g_assert_cmpuint (n_idle, >, 10);

  g_source_destroy (idle);
  g_source_unref (idle);
  test_cleanup (f->iops, event);
  test_close_pair (s);
}

static void
timer_rearm_forever (TestTimerEvent *timer,
                     gpointer        data)
{
  test_arm (((Fixture *) data)->iops, timer, 0);
}

/* Same for a timer re-armed with 0 µs from its own callback. */
static void
test_zero_timer_is_fair (Fixture       *f,
                         gconstpointer  data)
{
  g_autoptr(TestTimerEvent) timer = test_timer_event_new ();
  GSource *idle = g_idle_source_new ();
  guint n_idle = 0;

  timer->hook = timer_rearm_forever;
  timer->hook_data = f;
  g_source_set_priority (idle, G_PRIORITY_DEFAULT);
  g_source_set_callback (idle, count_idle, &n_idle, NULL);
  g_source_attach (idle, f->context);
  test_arm (f->iops, timer, 0);

  for (guint i = 0; i < 200; i++)
    g_main_context_iteration (f->context, TRUE);

  g_assert_cmpuint (timer->n_fired, >, 10);
  g_assert_cmpuint (n_idle, >, 10);

  g_source_destroy (idle);
  g_source_unref (idle);
  test_cleanup_timer (f->iops, timer);
}

/* Timers keep microsecond deadlines: a 100 µs timer never fires early.
 * (How late it fires is for the benchmarks, not for a unit test.) */
static void
test_short_timer_never_early (Fixture       *f,
                              gconstpointer  data)
{
  g_autoptr(TestTimerEvent) timer = test_timer_event_new ();

  for (guint i = 0; i < 20; i++)
    {
      gint64 armed = g_get_monotonic_time ();
      guint before = timer->n_fired;

      test_arm (f->iops, timer, 100);
      while (timer->n_fired == before)
        g_main_context_iteration (f->context, TRUE);
      g_assert_cmpint (timer->fired_at - armed, >=, 100);
    }
  test_cleanup_timer (f->iops, timer);
}

/* Many watches that fired once and went idle, then a new busy one, then
 * the idle ones again: on the epoll backend this turns the set of directly
 * polled watches over. Every delivery must still arrive exactly once. */
static void
count_hook (TestIOEvent    *event,
            IopsEventFlags  ready,
            gpointer        data)
{
  char c;

  (*(guint *) data)++;
  g_assert_cmpint (read (iops_io_event_fileno (IOPS_IO_EVENT (event)), &c, 1), ==, 1);
}

static void
test_hot_set_turnover (Fixture       *f,
                       gconstpointer  data)
{
  enum { N = 300 };
  typedef struct { int fd[2]; } Pair;
  Pair *pairs = g_new (Pair, N + 1);
  TestIOEvent **events = g_new (TestIOEvent *, N + 1);
  guint delivered = 0;
  gboolean expired = FALSE;
  GSource *deadline = g_timeout_source_new (TEST_DEADLINE_MS);
  struct rlimit rl;

  getrlimit (RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur < 4 * N)
    {
      rl.rlim_cur = MIN (rl.rlim_max, (rlim_t) 4 * N);
      setrlimit (RLIMIT_NOFILE, &rl);
    }

  g_source_set_callback (deadline, test_set_flag, &expired, NULL);
  g_source_attach (deadline, f->context);

  for (guint round = 0; round < 3; round++)
    {
      guint expected = delivered + N + 1;

      /* Backwards in the last round: the cold ones first, while the hot
       * ones are disarmed and can make room. */
      for (guint k = 0; k <= N; k++)
        {
          guint i = round == 2 ? N - k : k;

          if (round == 0)
            {
              test_socketpair (pairs[i].fd);
              events[i] = test_io_event_new (pairs[i].fd[0]);
              events[i]->hook = count_hook;
              events[i]->hook_data = &delivered;
            }
          test_watch (f->iops, events[i], IOPS_READ_EVENT);
          test_write_byte (pairs[i].fd[1]);
        }
      while (delivered < expected && !expired)
        g_main_context_iteration (f->context, TRUE);
      g_assert_cmpuint (delivered, ==, expected);
    }
  for (guint i = 0; i <= N; i++)
    g_assert_cmpuint (events[i]->n_r, ==, 3);

  /* Nothing is armed or readable: the loop must be quiet. */
  g_assert_cmpuint (test_iterate_for (f->context, 100), <, 20);

  g_source_destroy (deadline);
  g_source_unref (deadline);
  for (guint i = 0; i <= N; i++)
    {
      test_cleanup (f->iops, events[i]);
      g_object_unref (events[i]);
      close (pairs[i].fd[0]);
      close (pairs[i].fd[1]);
    }
  g_free (pairs);
  g_free (events);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

#define ADD(path, fn) \
  g_test_add (path, Fixture, NULL, test_fixture_setup, fn, test_fixture_teardown_finalize)

  ADD ("/iops/glib/backend/property", test_backend_property);
  ADD ("/iops/glib/backend/fd-number-reused", test_fd_number_reused);
  ADD ("/iops/glib/backend/closed-dup-fd-no-spin", test_closed_dup_fd_no_spin);
  ADD ("/iops/glib/backend/unwatched-dup-fd-no-spin", test_unwatched_dup_fd_no_spin);
  ADD ("/iops/glib/backend/regular-file", test_regular_file);
  ADD ("/iops/glib/backend/two-events-one-fd", test_two_events_one_fd);
  ADD ("/iops/glib/backend/many-idle-fds", test_many_idle_fds);
  ADD ("/iops/glib/backend/hot-set-turnover", test_hot_set_turnover);
  ADD ("/iops/glib/backend/saturated-is-fair", test_saturated_is_fair);
  ADD ("/iops/glib/backend/zero-timer-is-fair", test_zero_timer_is_fair);
  ADD ("/iops/glib/backend/short-timer-never-early", test_short_timer_never_early);

  return g_test_run ();
}

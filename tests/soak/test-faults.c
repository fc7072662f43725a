/* test-faults.c — faults a real consumer meets: a TCP peer that resets or
 * half-closes its connection, and fd exhaustion (EMFILE)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * An fd closed or reused under a watch is tested in tests/test-watch.c
 * (rules 1 and 2), a callback that drops the IOPS in tests/test-loop.c
 * (rule 11).
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "iops-test-util.h"

/* The soft fd limit of the EMFILE subprocesses: low, so exhausting it is
 * quick, yet above what a test process has open at start. */
#define EMFILE_LIMIT         64

typedef TestFixture Fixture;

/* A connected TCP pair over loopback: @fds[0] is the client side. */
static void
tcp_pair (int fds[2])
{
  struct sockaddr_in addr = { .sin_family = AF_INET };
  socklen_t len = sizeof addr;
  int listener = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

  addr.sin_addr.s_addr = g_htonl (INADDR_LOOPBACK);
  g_assert_cmpint (bind (listener, (struct sockaddr *) &addr, sizeof addr), ==, 0);
  g_assert_cmpint (listen (listener, 1), ==, 0);
  g_assert_cmpint (getsockname (listener, (struct sockaddr *) &addr, &len), ==, 0);

  fds[0] = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  g_assert_cmpint (connect (fds[0], (struct sockaddr *) &addr, sizeof addr), ==, 0);
  fds[1] = accept4 (listener, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
  g_assert_cmpint (fds[1], >=, 0);
  g_assert_cmpint (fcntl (fds[0], F_SETFL, O_NONBLOCK), ==, 0);
  close (listener);
}

/* -- peer reset ------------------------------------------------------------ */

static void
test_peer_reset (Fixture       *f,
                 gconstpointer  data)
{
  struct linger lg = { .l_onoff = 1, .l_linger = 0 };
  g_autoptr(TestIOEvent) event = NULL;
  char buf[16];
  int fds[2];

  tcp_pair (fds);
  event = test_io_event_new (fds[0]);
  test_update (f->iops, event, IOPS_EVACTION_WATCH, IOPS_READ_EVENT);

  /* Linger 0: close() sends RST instead of FIN. */
  g_assert_cmpint (setsockopt (fds[1], SOL_SOCKET, SO_LINGER, &lg, sizeof lg), ==, 0);
  close (fds[1]);

  test_wait_calls (f->context, event, 1);
  g_assert_cmpuint (event->n_r, ==, 1);
  g_assert_cmpint (read (fds[0], buf, sizeof buf), ==, -1);
  g_assert_cmpint (errno, ==, ECONNRESET);

  /* The reset socket is now at EOF: one more WATCH, one more delivery. */
  test_update (f->iops, event, IOPS_EVACTION_WATCH, IOPS_RW_EVENT);
  test_wait_calls (f->context, event, 2);
  g_assert_cmpint (read (fds[0], buf, sizeof buf), ==, 0);
  /* Persistent mode reports a dead socket until it is unwatched (rule 3);
   * one-shot mode reported it once and is quiet already. */
  if (iops_glib_iops_get_persistent (f->glib_iops))
    test_update (f->iops, event, IOPS_EVACTION_UNWATCH, 0);
  test_assert_quiet (f->context);
  g_assert_cmpuint (test_io_event_total (event), ==, 2);

  test_update (f->iops, event, IOPS_EVACTION_CLEANUP, 0);
  close (fds[0]);
}

/* -- half close ------------------------------------------------------------ */

static void
test_half_close (Fixture       *f,
                 gconstpointer  data)
{
  g_autoptr(TestIOEvent) event = NULL;
  char buf[16];
  int fds[2];

  tcp_pair (fds);
  event = test_io_event_new (fds[0]);
  test_update (f->iops, event, IOPS_EVACTION_WATCH, IOPS_READ_EVENT);

  g_assert_cmpint (shutdown (fds[1], SHUT_WR), ==, 0);
  test_wait_calls (f->context, event, 1);
  g_assert_cmpuint (event->n_r, ==, 1);
  g_assert_cmpint (read (fds[0], buf, sizeof buf), ==, 0);

  /* Our direction still works. */
  test_update (f->iops, event, IOPS_EVACTION_WATCH, IOPS_WRITE_EVENT);
  test_wait_calls (f->context, event, 2);
  g_assert_cmpuint (event->n_w, ==, 1);
  g_assert_cmpint (write (fds[0], "pong", 4), ==, 4);
  test_update (f->iops, event, IOPS_EVACTION_UNWATCH, 0);

  /* The peer, whose write side is shut, still reads it. */
  {
    g_autoptr(TestIOEvent) peer = test_io_event_new (fds[1]);

    test_update (f->iops, peer, IOPS_EVACTION_WATCH, IOPS_READ_EVENT);
    test_wait_calls (f->context, peer, 1);
    g_assert_cmpint (read (fds[1], buf, sizeof buf), ==, 4);
    g_assert_cmpmem (buf, 4, "pong", 4);
    test_update (f->iops, peer, IOPS_EVACTION_CLEANUP, 0);
  }

  test_update (f->iops, event, IOPS_EVACTION_CLEANUP, 0);
  test_close_pair (fds);
}

/* -- EMFILE ----------------------------------------------------------------- */

typedef struct
{
  GArray *fds;
} Exhaustion;

/* Lowers the soft fd limit and opens files until EMFILE. */
static void
exhaust_fds (Exhaustion *ex)
{
  struct rlimit rl;
  int fd;

  g_assert_cmpint (getrlimit (RLIMIT_NOFILE, &rl), ==, 0);
  rl.rlim_cur = EMFILE_LIMIT;
  g_assert_cmpint (setrlimit (RLIMIT_NOFILE, &rl), ==, 0);

  ex->fds = g_array_new (FALSE, FALSE, sizeof (int));
  while ((fd = open ("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0)
    g_array_append_val (ex->fds, fd);
  g_assert_cmpint (errno, ==, EMFILE);
  /* Nothing else gets one either. */
  g_assert_cmpint (socket (AF_UNIX, SOCK_STREAM, 0), ==, -1);
}

static void
release_fds (Exhaustion *ex)
{
  for (guint i = 0; i < ex->fds->len; i++)
    close (g_array_index (ex->fds, int, i));
  g_clear_pointer (&ex->fds, g_array_unref);
}

/* Subprocesses must not abort on the warnings a failed syscall may give:
 * only a crash or a broken contract fails them. */
static void
subprocess_init (void)
{
  g_log_set_always_fatal (G_LOG_FATAL_MASK);
}

static void
ping (Fixture     *f,
      TestIOEvent *event,
      int          writer)
{
  guint before = test_io_event_total (event);

  test_update (f->iops, event, IOPS_EVACTION_WATCH, IOPS_READ_EVENT);
  g_assert_cmpint (write (writer, "p", 1), ==, 1);
  test_wait_calls (f->context, event, before + 1);
}

static void
fire_timer (Fixture        *f,
            TestTimerEvent *timer)
{
  guint before = timer->n_fired;

  test_arm (f->iops, timer, 500);
  g_assert_true (test_iterate_until_count (f->context, &timer->n_fired, before + 1, TEST_DEADLINE_MS));
  g_assert_cmpuint (timer->n_fired, ==, before + 1);
}

/* Runs the test in a subprocess; a failure there fails only this test, so
 * every EMFILE case reports. */
static void
trap_run (void)
{
  g_test_trap_subprocess (NULL, 30 * G_USEC_PER_SEC, G_TEST_SUBPROCESS_INHERIT_STDERR);
  if (!g_test_trap_has_passed ())
    g_test_fail_printf ("the subprocess failed under EMFILE; an Iops-ERROR "
                        "above means the library aborted");
}

/* Existing watches and timers go on working while no fd can be opened. */
static void
test_emfile_existing (Fixture       *f,
                      gconstpointer  data)
{
  if (g_test_subprocess ())
    {
      g_autoptr(TestIOEvent) event = NULL, spare = NULL;
      g_autoptr(TestTimerEvent) timer = test_timer_event_new ();
      Exhaustion ex = { 0 };
      int fds[2], spare_fds[2];

      subprocess_init ();
      test_socketpair (fds);
      test_socketpair (spare_fds);
      event = test_io_event_new (fds[0]);
      spare = test_io_event_new (spare_fds[0]);
      event->hook = spare->hook = test_drain_hook;
      ping (f, event, fds[1]);
      fire_timer (f, timer);

      exhaust_fds (&ex);
      for (guint i = 0; i < 100; i++)
        {
          ping (f, event, fds[1]);
          fire_timer (f, timer);
        }
      /* A first WATCH of another event on an existing lane. */
      ping (f, spare, spare_fds[1]);
      /* start_watching() with a timer armed returns when it fired. */
      test_arm (f->iops, timer, 1000);
      iops_iops_start_watching (f->iops);
      g_assert_cmpuint (timer->n_fired, ==, 102);
      release_fds (&ex);

      test_update (f->iops, event, IOPS_EVACTION_CLEANUP, 0);
      test_update (f->iops, spare, IOPS_EVACTION_CLEANUP, 0);
      test_close_pair (fds);
      test_close_pair (spare_fds);
      return;
    }

  trap_run ();
}

/* A new priority needs a new epoll lane (an epoll fd) on the epoll backend:
 * failing to get one must not crash, and the IOPS must work again once fds
 * are available. */
static void
test_emfile_new_priority (Fixture       *f,
                          gconstpointer  data)
{
  if (g_test_subprocess ())
    {
      g_autoptr(TestIOEvent) event = NULL;
      g_autoptr(TestTimerEvent) timer = test_timer_event_new ();
      Exhaustion ex = { 0 };
      int fds[2];

      subprocess_init ();
      test_socketpair (fds);
      event = test_io_event_new (fds[0]);
      event->hook = test_drain_hook;
      ping (f, event, fds[1]);

      exhaust_fds (&ex);
      iops_glib_iops_set_priority (f->glib_iops, G_PRIORITY_HIGH);
      /* May fail to watch, but must not crash. */
      test_update (f->iops, event, IOPS_EVACTION_WATCH, IOPS_READ_EVENT);
      test_arm (f->iops, timer, 100);
      test_iterate_for (f->context, 50);
      test_update (f->iops, event, IOPS_EVACTION_UNWATCH, 0);
      test_unwatch_timer (f->iops, timer);
      release_fds (&ex);

      /* Recovered. */
      ping (f, event, fds[1]);
      fire_timer (f, timer);

      test_update (f->iops, event, IOPS_EVACTION_CLEANUP, 0);
      test_close_pair (fds);
      return;
    }

  trap_run ();
}

/* A new IOPS on an existing context while no fd can be opened (the epoll
 * backend wants an epoll fd and a timerfd): no crash; its timers still fire;
 * its watches work once fds are back. */
static void
test_emfile_new_iops (Fixture       *f,
                      gconstpointer  data)
{
  if (g_test_subprocess ())
    {
      g_autoptr(TestIOEvent) event = NULL;
      g_autoptr(TestTimerEvent) timer = test_timer_event_new ();
      Exhaustion ex = { 0 };
      int fds[2];

      subprocess_init ();
      test_socketpair (fds);
      event = test_io_event_new (fds[0]);
      event->hook = test_drain_hook;

      g_assert_finalize_object (f->glib_iops);
      exhaust_fds (&ex);
      f->glib_iops = iops_glib_iops_new (f->context);
      f->iops = IOPS_IOPS (f->glib_iops);
      fire_timer (f, timer);
      test_update (f->iops, event, IOPS_EVACTION_WATCH, IOPS_READ_EVENT);
      test_iterate_for (f->context, 20);
      test_update (f->iops, event, IOPS_EVACTION_UNWATCH, 0);
      release_fds (&ex);

      ping (f, event, fds[1]);
      fire_timer (f, timer);

      test_update (f->iops, event, IOPS_EVACTION_CLEANUP, 0);
      test_close_pair (fds);
      return;
    }

  trap_run ();
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

#define ADD(path, func, mode) \
  g_test_add ("/iops/soak/faults/" path, Fixture, GINT_TO_POINTER (mode), \
              test_fixture_setup_mode, func, test_fixture_teardown_quiet)

  ADD ("peer-reset", test_peer_reset, FALSE);
  ADD ("peer-reset/persistent", test_peer_reset, TRUE);
  ADD ("half-close", test_half_close, FALSE);
  ADD ("half-close/persistent", test_half_close, TRUE);
  ADD ("emfile/existing", test_emfile_existing, FALSE);
  ADD ("emfile/new-priority", test_emfile_new_priority, FALSE);
  ADD ("emfile/new-iops", test_emfile_new_iops, FALSE);

#undef ADD

  return g_test_run ();
}

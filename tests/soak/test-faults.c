/* test-faults.c — faults a real consumer meets: peer reset, half close, an
 * fd closed or reused under a watch, fd exhaustion, and a callback that
 * drops the IOPS itself
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "iops-test-util.h"

/* Over this much idle iterating a loop that sleeps in poll () runs a
 * handful of iterations; one that spins runs thousands. */
#define QUIET_MS             200
#define MAX_QUIET_ITERATIONS 20

/* The soft fd limit of the EMFILE subprocesses: low, so exhausting it is
 * quick, yet above what a test process has open at start. */
#define EMFILE_LIMIT         64

typedef TestFixture Fixture;

typedef gboolean (*DoneFunc) (gconstpointer object,
                              guint         n);

/* Iterates one dispatch at a time until @done, bounded: stopping as soon
 * as it is true keeps counts exact, even for a level-triggered watch. */
static gboolean
wait_for (Fixture       *f,
          DoneFunc       done,
          gconstpointer  object,
          guint          n)
{
  gboolean expired = FALSE;
  GSource *deadline = g_timeout_source_new (TEST_DEADLINE_MS);

  g_source_set_callback (deadline, test_set_flag, &expired, NULL);
  g_source_attach (deadline, f->context);
  while (!done (object, n) && !expired)
    g_main_context_iteration (f->context, TRUE);
  g_source_destroy (deadline);
  g_source_unref (deadline);
  return done (object, n);
}

static gboolean
io_done (gconstpointer object,
         guint         n)
{
  return test_io_event_total ((TestIOEvent *) object) >= n;
}

static gboolean
timer_done (gconstpointer object,
            guint         n)
{
  return ((const TestTimerEvent *) object)->n_fired >= n;
}

static gboolean
wait_total (Fixture     *f,
            TestIOEvent *event,
            guint        n)
{
  return wait_for (f, io_done, event, n);
}

/* Asserts the context goes quiet: no busy loop over a reported fd. */
static void
assert_no_spin (Fixture *f)
{
  guint n = test_iterate_for (f->context, QUIET_MS);

  g_assert_cmpuint (n, <=, MAX_QUIET_ITERATIONS);
}

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

  g_assert_true (wait_total (f, event, 1));
  g_assert_cmpuint (event->n_r, ==, 1);
  g_assert_cmpint (read (fds[0], buf, sizeof buf), ==, -1);
  g_assert_cmpint (errno, ==, ECONNRESET);

  /* The reset socket is now at EOF: one more WATCH, one more delivery. */
  test_update (f->iops, event, IOPS_EVACTION_WATCH, IOPS_RW_EVENT);
  g_assert_true (wait_total (f, event, 2));
  g_assert_cmpint (read (fds[0], buf, sizeof buf), ==, 0);
  /* Persistent mode reports a dead socket until it is unwatched (rule 3);
   * one-shot mode reported it once and is quiet already. */
  if (iops_glib_iops_get_persistent (f->glib_iops))
    test_update (f->iops, event, IOPS_EVACTION_UNWATCH, 0);
  assert_no_spin (f);
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
  g_assert_true (wait_total (f, event, 1));
  g_assert_cmpuint (event->n_r, ==, 1);
  g_assert_cmpint (read (fds[0], buf, sizeof buf), ==, 0);

  /* Our direction still works. */
  test_update (f->iops, event, IOPS_EVACTION_WATCH, IOPS_WRITE_EVENT);
  g_assert_true (wait_total (f, event, 2));
  g_assert_cmpuint (event->n_w, ==, 1);
  g_assert_cmpint (write (fds[0], "pong", 4), ==, 4);
  test_update (f->iops, event, IOPS_EVACTION_UNWATCH, 0);

  /* The peer, whose write side is shut, still reads it. */
  {
    g_autoptr(TestIOEvent) peer = test_io_event_new (fds[1]);

    test_update (f->iops, peer, IOPS_EVACTION_WATCH, IOPS_READ_EVENT);
    g_assert_true (wait_total (f, peer, 1));
    g_assert_cmpint (read (fds[1], buf, sizeof buf), ==, 4);
    g_assert_cmpmem (buf, 4, "pong", 4);
    test_update (f->iops, peer, IOPS_EVACTION_CLEANUP, 0);
  }

  test_update (f->iops, event, IOPS_EVACTION_CLEANUP, 0);
  test_close_pair (fds);
}

/* -- an fd closed while watched ------------------------------------------- */

static void
test_closed_while_watched (Fixture       *f,
                           gconstpointer  data)
{
  g_autoptr(TestIOEvent) event = NULL;
  int fds[2];

  test_socketpair (fds);
  event = test_io_event_new (fds[0]);
  test_update (f->iops, event, IOPS_EVACTION_WATCH, IOPS_RW_EVENT);
  close (fds[0]);

  assert_no_spin (f);
  g_assert_cmpuint (test_io_event_total (event), <=, 1);

  test_update (f->iops, event, IOPS_EVACTION_CLEANUP, 0);
  close (fds[1]);
}

/* The same, while a dup keeps the file open: epoll goes on reporting the
 * file under the closed number. */
static void
test_closed_while_watched_dup (Fixture       *f,
                               gconstpointer  data)
{
  g_autoptr(TestIOEvent) event = NULL;
  int fds[2], dup_fd;

  test_socketpair (fds);
  event = test_io_event_new (fds[0]);
  test_update (f->iops, event, IOPS_EVACTION_WATCH, IOPS_READ_EVENT);
  /* Let it fire once first on the fd, then arm again and close. */
  g_assert_cmpint (write (fds[1], "x", 1), ==, 1);
  g_assert_true (wait_total (f, event, 1));
  test_update (f->iops, event, IOPS_EVACTION_WATCH, IOPS_READ_EVENT);

  dup_fd = dup (fds[0]);
  close (fds[0]);
  g_assert_cmpint (write (fds[1], "y", 1), ==, 1);

  assert_no_spin (f);
  g_assert_cmpuint (test_io_event_total (event), <=, 2);

  test_update (f->iops, event, IOPS_EVACTION_CLEANUP, 0);
  close (dup_fd);
  close (fds[1]);
}

/* -- an fd number reused by a new socket ----------------------------------- */

/* Moves a fresh socketpair's first end onto @number. */
static void
socketpair_at (int number,
               int fds[2])
{
  test_socketpair (fds);
  if (fds[1] == number)
    {
      /* Ends of a socketpair are alike: take the one the number went to. */
      fds[1] = fds[0];
      fds[0] = number;
    }
  if (fds[0] != number)
    {
      g_assert_cmpint (dup3 (fds[0], number, O_CLOEXEC), ==, number);
      close (fds[0]);
      fds[0] = number;
    }
  g_assert_cmpint (fcntl (number, F_SETFL, O_NONBLOCK), ==, 0);
}

static void
check_reused (Fixture     *f,
              TestIOEvent *event,
              int          number,
              guint        before)
{
  char buf[8];
  int fresh[2];

  socketpair_at (number, fresh);
  /* Rule 1: the WATCH reads fileno() again; same number, new socket. */
  test_update (f->iops, event, IOPS_EVACTION_WATCH, IOPS_READ_EVENT);
  assert_no_spin (f);
  g_assert_cmpuint (test_io_event_total (event), ==, before);

  g_assert_cmpint (write (fresh[1], "new", 3), ==, 3);
  g_assert_true (wait_total (f, event, before + 1));
  g_assert_cmpuint (event->last, ==, IOPS_READ_EVENT);
  g_assert_cmpint (read (number, buf, sizeof buf), ==, 3);
  g_assert_cmpmem (buf, 3, "new", 3);

  test_update (f->iops, event, IOPS_EVACTION_CLEANUP, 0);
  test_close_pair (fresh);
}

static void
test_fd_reused_disarmed (Fixture       *f,
                         gconstpointer  data)
{
  g_autoptr(TestIOEvent) event = NULL;
  int fds[2];

  test_socketpair (fds);
  event = test_io_event_new (fds[0]);
  test_update (f->iops, event, IOPS_EVACTION_WATCH, IOPS_READ_EVENT);
  g_assert_cmpint (write (fds[1], "old", 3), ==, 3);
  g_assert_true (wait_total (f, event, 1));
  test_update (f->iops, event, IOPS_EVACTION_UNWATCH, 0);

  test_close_pair (fds);
  check_reused (f, event, fds[0], 1);
}

static void
test_fd_reused_armed (Fixture       *f,
                      gconstpointer  data)
{
  g_autoptr(TestIOEvent) event = NULL;
  int fds[2];

  test_socketpair (fds);
  event = test_io_event_new (fds[0]);
  test_update (f->iops, event, IOPS_EVACTION_WATCH, IOPS_READ_EVENT);
  /* Closed and replaced while armed, without any iteration between. */
  test_close_pair (fds);
  check_reused (f, event, fds[0], 0);
}

/* The old file stays open through a dup and becomes readable: only the new
 * socket under the number may be reported. */
static void
test_fd_reused_old_file_alive (Fixture       *f,
                               gconstpointer  data)
{
  g_autoptr(TestIOEvent) event = NULL;
  int fds[2], dup_fd;

  test_socketpair (fds);
  event = test_io_event_new (fds[0]);
  test_update (f->iops, event, IOPS_EVACTION_WATCH, IOPS_READ_EVENT);

  dup_fd = dup (fds[0]);
  close (fds[0]);
  g_assert_cmpint (write (fds[1], "old", 3), ==, 3);  /* the old file is readable */
  check_reused (f, event, fds[0], 0);
  close (dup_fd);
  close (fds[1]);
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
echo_hook (TestIOEvent    *event,
           IopsEventFlags  ready,
           gpointer        data)
{
  char buf[8];

  /* Drain what came in; the test re-arms. */
  while (read (iops_io_event_get_fd (IOPS_IO_EVENT (event)), buf, sizeof buf) > 0)
    ;
}

static void
ping (Fixture     *f,
      TestIOEvent *event,
      int          writer)
{
  guint before = test_io_event_total (event);

  test_update (f->iops, event, IOPS_EVACTION_WATCH, IOPS_READ_EVENT);
  g_assert_cmpint (write (writer, "p", 1), ==, 1);
  g_assert_true (wait_total (f, event, before + 1));
}

static void
fire_timer (Fixture        *f,
            TestTimerEvent *timer)
{
  guint before = timer->n_fired;

  test_arm (f->iops, timer, 500);
  g_assert_true (wait_for (f, timer_done, timer, before + 1));
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
      event->hook = spare->hook = echo_hook;
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
      event->hook = echo_hook;
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
      event->hook = echo_hook;

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

/* -- a callback drops the last reference to the IOPS ---------------------- */

typedef struct
{
  Fixture  *f;
  gboolean  dropped;
  guint     after;     /* callbacks after the drop */
} Drop;

static void
drop_iops (Drop *d)
{
  if (d->dropped)
    {
      d->after++;
      return;
    }
  d->dropped = TRUE;
  g_object_unref (g_steal_pointer (&d->f->glib_iops));
  d->f->iops = NULL;
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

/* Every event is ready at once; whichever runs first drops the IOPS. */
static void
test_drop_iops_in_callback (Fixture       *f,
                            gconstpointer  data)
{
  Drop d = { f, FALSE, 0 };
  gpointer weak = f->glib_iops;
  TestIOEvent *events[3];
  TestTimerEvent *timers[3];
  int fds[G_N_ELEMENTS (events)][2];

  g_object_add_weak_pointer (weak, &weak);
  for (guint i = 0; i < G_N_ELEMENTS (events); i++)
    {
      test_socketpair (fds[i]);
      events[i] = test_io_event_new (fds[i][0]);
      events[i]->hook = drop_io_hook;
      events[i]->hook_data = &d;
      test_update (f->iops, events[i], IOPS_EVACTION_WATCH, IOPS_RW_EVENT);
      /* The IOPS holds the only reference now. */
      g_object_unref (events[i]);
      timers[i] = test_timer_event_new ();
      timers[i]->hook = drop_timer_hook;
      timers[i]->hook_data = &d;
      g_object_add_weak_pointer (G_OBJECT (timers[i]), (gpointer *) &timers[i]);
      g_object_add_weak_pointer (G_OBJECT (events[i]), (gpointer *) &events[i]);
      iops_iops_update_timer (f->iops, IOPS_TIMER_EVENT (timers[i]), IOPS_EVACTION_WATCH, 0);
      g_object_unref (timers[i]);
    }

  /* The consumer's reference is the last one; start_watching() must
   * return without touching the IOPS again. */
  iops_iops_start_watching (f->iops);

  g_assert_true (d.dropped);
  g_assert_cmpuint (d.after, ==, 0);
  g_assert_null (weak);
  g_assert_null (f->glib_iops);
  for (guint i = 0; i < G_N_ELEMENTS (events); i++)
    {
      /* Its references went with it. */
      g_assert_null (events[i]);
      g_assert_null (timers[i]);
      close (fds[i][0]);
      close (fds[i][1]);
    }
  test_iterate_for (f->context, 20);
  g_assert_cmpuint (d.after, ==, 0);
}

/* The same from a nested start_watching() level. */
static void
nested_hook (TestIOEvent    *event,
             IopsEventFlags  ready,
             gpointer        data)
{
  Drop *d = data;

  event->hook = drop_io_hook;
  iops_iops_update_event (d->f->iops, IOPS_IO_EVENT (event), IOPS_EVACTION_WATCH,
                          IOPS_WRITE_EVENT);
  iops_iops_start_watching (d->f->iops);
}

static void
test_drop_iops_nested (Fixture       *f,
                       gconstpointer  data)
{
  Drop d = { f, FALSE, 0 };
  g_autoptr(TestIOEvent) event = NULL;
  g_autoptr(TestTimerEvent) timer = test_timer_event_new ();
  int fds[2];

  test_socketpair (fds);
  event = test_io_event_new (fds[0]);
  event->hook = nested_hook;
  event->hook_data = &d;
  timer->hook = drop_timer_hook;
  timer->hook_data = &d;
  test_update (f->iops, event, IOPS_EVACTION_WATCH, IOPS_WRITE_EVENT);
  iops_iops_update_timer (f->iops, IOPS_TIMER_EVENT (timer), IOPS_EVACTION_WATCH,
                          10 * G_USEC_PER_SEC);

  iops_iops_start_watching (f->iops);

  g_assert_true (d.dropped);
  g_assert_cmpuint (d.after, ==, 0);
  g_assert_cmpuint (timer->n_fired, ==, 0);
  g_assert_cmpuint (test_io_event_total (event), ==, 2);
  test_close_pair (fds);
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
  ADD ("closed-while-watched", test_closed_while_watched, FALSE);
  ADD ("closed-while-watched/persistent", test_closed_while_watched, TRUE);
  ADD ("closed-while-watched/dup", test_closed_while_watched_dup, FALSE);
  ADD ("fd-reused/disarmed", test_fd_reused_disarmed, FALSE);
  ADD ("fd-reused/armed", test_fd_reused_armed, FALSE);
  ADD ("fd-reused/armed/persistent", test_fd_reused_armed, TRUE);
  ADD ("fd-reused/old-file-alive", test_fd_reused_old_file_alive, FALSE);
  ADD ("emfile/existing", test_emfile_existing, FALSE);
  ADD ("emfile/new-priority", test_emfile_new_priority, FALSE);
  ADD ("emfile/new-iops", test_emfile_new_iops, FALSE);
  ADD ("drop-iops-in-callback", test_drop_iops_in_callback, FALSE);
  ADD ("drop-iops-nested", test_drop_iops_nested, FALSE);

#undef ADD

  return g_test_run ();
}

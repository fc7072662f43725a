/* iops-test-util.c — shared helpers of the C tests
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "iops-test-util.h"

void
test_init (int    *argc,
           char ***argv)
{
  g_test_init (argc, argv, NULL);
  g_test_set_nonfatal_assertions ();
  test_raise_fd_limit (TEST_FD_LIMIT);
}

guint
test_raise_fd_limit (guint wanted)
{
  struct rlimit rl;

  if (getrlimit (RLIMIT_NOFILE, &rl) != 0)
    return 0;
  if (rl.rlim_cur < wanted)
    {
      rl.rlim_cur = MIN (rl.rlim_max, (rlim_t) wanted);
      if (setrlimit (RLIMIT_NOFILE, &rl) != 0)
        getrlimit (RLIMIT_NOFILE, &rl);
    }
  return (guint) MIN (rl.rlim_cur, G_MAXUINT);
}

/* -- TestIOEvent ----------------------------------------------------------- */

G_DEFINE_FINAL_TYPE (TestIOEvent, test_io_event, IOPS_TYPE_IO_EVENT)

static void
test_io_event_record (TestIOEvent   *self,
                      IopsEventFlags ready)
{
  self->last = ready;
  if (self->hook != NULL)
    self->hook (self, ready, self->hook_data);
}

static void
test_io_event_ready_r (IopsIOEvent *event)
{
  TEST_IO_EVENT (event)->n_r++;
  test_io_event_record (TEST_IO_EVENT (event), IOPS_READ_EVENT);
}

static void
test_io_event_ready_w (IopsIOEvent *event)
{
  TEST_IO_EVENT (event)->n_w++;
  test_io_event_record (TEST_IO_EVENT (event), IOPS_WRITE_EVENT);
}

static void
test_io_event_ready_rw (IopsIOEvent *event)
{
  TEST_IO_EVENT (event)->n_rw++;
  test_io_event_record (TEST_IO_EVENT (event), IOPS_RW_EVENT);
}

static void
test_io_event_class_init (TestIOEventClass *klass)
{
  IopsIOEventClass *event_class = IOPS_IO_EVENT_CLASS (klass);

  event_class->ready_r = test_io_event_ready_r;
  event_class->ready_w = test_io_event_ready_w;
  event_class->ready_rw = test_io_event_ready_rw;
}

static void
test_io_event_init (TestIOEvent *self)
{
}

TestIOEvent *
test_io_event_new (int fd)
{
  return g_object_new (TEST_TYPE_IO_EVENT, "fd", fd, NULL);
}

TestIOEvent *
test_io_event_new_flagged (int       fd,
                           gboolean *flag)
{
  TestIOEvent *event = test_io_event_new (fd);

  *flag = FALSE;
  event->hook = test_io_flag_hook;
  event->hook_data = flag;
  return event;
}

guint
test_io_event_total (TestIOEvent *self)
{
  return self->n_r + self->n_w + self->n_rw;
}

int
test_io_event_fd (TestIOEvent *self)
{
  return iops_io_event_get_fd (IOPS_IO_EVENT (self));
}

void
test_assert_calls (TestIOEvent *event,
                   guint        n_r,
                   guint        n_w,
                   guint        n_rw)
{
  g_assert_cmpuint (event->n_r, ==, n_r);
  g_assert_cmpuint (event->n_w, ==, n_w);
  g_assert_cmpuint (event->n_rw, ==, n_rw);
}

/* -- TestTimerEvent -------------------------------------------------------- */

G_DEFINE_FINAL_TYPE (TestTimerEvent, test_timer_event, IOPS_TYPE_TIMER_EVENT)

static void
test_timer_event_ready (IopsTimerEvent *timer,
                        int             flags)
{
  TestTimerEvent *self = TEST_TIMER_EVENT (timer);

  self->n_fired++;
  self->last_flags = flags;
  self->fired_at = g_get_monotonic_time ();
  if (self->hook != NULL)
    self->hook (self, self->hook_data);
}

static void
test_timer_event_class_init (TestTimerEventClass *klass)
{
  IOPS_TIMER_EVENT_CLASS (klass)->ready = test_timer_event_ready;
}

static void
test_timer_event_init (TestTimerEvent *self)
{
  self->last_flags = -1;
}

TestTimerEvent *
test_timer_event_new (void)
{
  return g_object_new (TEST_TYPE_TIMER_EVENT, NULL);
}

TestTimerEvent *
test_timer_event_new_flagged (gboolean *flag)
{
  TestTimerEvent *timer = test_timer_event_new ();

  *flag = FALSE;
  timer->hook = test_timer_flag_hook;
  timer->hook_data = flag;
  return timer;
}

/* -- TestFilenoEvent ------------------------------------------------------- */

G_DEFINE_FINAL_TYPE (TestFilenoEvent, test_fileno_event, IOPS_TYPE_IO_EVENT)

static int
test_fileno_event_fileno (IopsIOEvent *event)
{
  TestFilenoEvent *self = TEST_FILENO_EVENT (event);
  TestFilenoHook reenter = g_steal_pointer (&self->reenter);

  self->n_fileno++;
  if (reenter != NULL)
    reenter (self, self->reenter_data);
  return self->fd;
}

static void
test_fileno_event_class_init (TestFilenoEventClass *klass)
{
  IOPS_IO_EVENT_CLASS (klass)->fileno = test_fileno_event_fileno;
}

static void
test_fileno_event_init (TestFilenoEvent *self)
{
  self->fd = -1;
}

TestFilenoEvent *
test_fileno_event_new (int fd)
{
  TestFilenoEvent *self = g_object_new (TEST_TYPE_FILENO_EVENT, NULL);

  self->fd = fd;
  return self;
}

/* -- small callbacks ------------------------------------------------------- */

gboolean
test_set_flag (gpointer data)
{
  *(gboolean *) data = TRUE;
  return G_SOURCE_REMOVE;
}

void
test_io_flag_hook (TestIOEvent    *event,
                   IopsEventFlags  ready,
                   gpointer        data)
{
  *(gboolean *) data = TRUE;
}

void
test_timer_flag_hook (TestTimerEvent *timer,
                      gpointer        data)
{
  *(gboolean *) data = TRUE;
}

void
test_drain_hook (TestIOEvent    *event,
                 IopsEventFlags  ready,
                 gpointer        data)
{
  test_drain (test_io_event_fd (event));
}

GSource *
test_add_idle (GMainContext *context,
               int           priority,
               GSourceFunc   func,
               gpointer      data)
{
  GSource *idle = g_idle_source_new ();

  g_source_set_priority (idle, priority);
  g_source_set_callback (idle, func, data, NULL);
  g_source_attach (idle, context);
  return idle;
}

/* A context's source ids are its own, handed out in turn, so every source
 * attached to it has an id below the one a new source gets. */
guint
test_count_sources (GMainContext *context)
{
  GSource *probe = g_idle_source_new ();
  guint last = g_source_attach (probe, context);
  guint n = 0;

  g_source_destroy (probe);
  g_source_unref (probe);
  for (guint id = 1; id < last; id++)
    if (g_main_context_find_source_by_id (context, id) != NULL)
      n++;
  return n;
}

guint
test_count_open_fds (void)
{
  g_autoptr(GDir) dir = g_dir_open ("/proc/self/fd", 0, NULL);
  guint n = 0;

  g_assert_nonnull (dir);
  while (dir != NULL && g_dir_read_name (dir) != NULL)
    n++;
  return n;
}

/* -- bounded waits --------------------------------------------------------- */

/* A timeout source on @context that sets *@expired. */
static GSource *
deadline_attach (GMainContext *context,
                 guint         ms,
                 gboolean     *expired)
{
  GSource *deadline = g_timeout_source_new (ms);

  *expired = FALSE;
  g_source_set_callback (deadline, test_set_flag, expired, NULL);
  g_source_attach (deadline, context);
  return deadline;
}

static void
deadline_remove (GSource *deadline)
{
  g_source_destroy (deadline);
  g_source_unref (deadline);
}

gboolean
test_iterate_until_done (GMainContext  *context,
                         TestDoneFunc   done,
                         gconstpointer  data,
                         guint          timeout_ms)
{
  gboolean expired;
  GSource *deadline = deadline_attach (context, timeout_ms, &expired);

  while (!done (data) && !expired)
    g_main_context_iteration (context, TRUE);
  deadline_remove (deadline);
  return done (data);
}

static gboolean
flag_is_set (gconstpointer data)
{
  return *(const gboolean *) data;
}

gboolean
test_iterate_until (GMainContext   *context,
                    const gboolean *flag,
                    guint           timeout_ms)
{
  return test_iterate_until_done (context, flag_is_set, flag, timeout_ms);
}

typedef struct
{
  const guint *counter;
  guint        n;
} CountReached;

static gboolean
count_reached (gconstpointer data)
{
  const CountReached *reached = data;

  return *reached->counter >= reached->n;
}

gboolean
test_iterate_until_count (GMainContext *context,
                          const guint  *counter,
                          guint         n,
                          guint         timeout_ms)
{
  CountReached reached = { counter, n };

  return test_iterate_until_done (context, count_reached, &reached, timeout_ms);
}

typedef struct
{
  TestIOEvent *event;
  guint        n;
} CallsReached;

static gboolean
calls_reached (gconstpointer data)
{
  const CallsReached *reached = data;

  return test_io_event_total (reached->event) >= reached->n;
}

void
test_wait_calls (GMainContext *context,
                 TestIOEvent  *event,
                 guint         n)
{
  CallsReached reached = { event, n };

  test_iterate_until_done (context, calls_reached, &reached, TEST_DEADLINE_MS);
  g_assert_cmpuint (test_io_event_total (event), >=, n);
}

guint
test_iterate_for (GMainContext *context,
                  guint         ms)
{
  gboolean expired;
  guint n = 0;
  GSource *deadline = deadline_attach (context, ms, &expired);

  while (!expired)
    if (g_main_context_iteration (context, TRUE) && !expired)
      n++;
  deadline_remove (deadline);
  return n;
}

guint
test_count_iterations (GMainContext *context,
                       guint         ms)
{
  gboolean expired;
  guint n = 0;
  GSource *deadline = deadline_attach (context, ms, &expired);

  while (!expired)
    {
      g_main_context_iteration (context, TRUE);
      n++;
    }
  deadline_remove (deadline);
  return n;
}

void
test_assert_quiet (GMainContext *context)
{
  g_assert_cmpuint (test_count_iterations (context, TEST_QUIET_MS), <, TEST_MAX_QUIET_ITERATIONS);
}

typedef struct
{
  gpointer iops;      /* weak: a test may drop the IOPS while it runs */
  gboolean expired;
} Guard;

static gboolean
guard_expired (gpointer data)
{
  Guard *guard = data;

  guard->expired = TRUE;
  if (guard->iops != NULL)
    iops_iops_stop_watching (guard->iops);
  return G_SOURCE_CONTINUE;  /* and again for any outer level */
}

gboolean
test_start_watching_bounded (GMainContext *context,
                             IopsIOPS     *iops)
{
  Guard guard = { iops, FALSE };
  GSource *source = g_timeout_source_new (TEST_DEADLINE_MS);

  g_object_add_weak_pointer (G_OBJECT (iops), &guard.iops);
  g_source_set_callback (source, guard_expired, &guard, NULL);
  g_source_attach (source, context);

  iops_iops_start_watching (iops);

  deadline_remove (source);
  if (guard.iops != NULL)
    g_object_remove_weak_pointer (G_OBJECT (guard.iops), &guard.iops);
  return !guard.expired;
}

void
test_run_past (GMainContext *context,
               IopsIOPS     *iops,
               gint64        usecs)
{
  gboolean fired;
  g_autoptr(TestTimerEvent) sentinel = test_timer_event_new_flagged (&fired);

  test_arm (iops, sentinel, usecs);
  g_assert_true (test_iterate_until (context, &fired, TEST_DEADLINE_MS));
  test_cleanup_timer (iops, sentinel);
}

/* -- fds ------------------------------------------------------------------- */

void
test_socketpair (int fds[2])
{
  g_assert_cmpint (socketpair (AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), ==, 0);
}

void
test_socketpair_at (int number,
                    int fds[2])
{
  test_socketpair (fds);
  if (fds[1] == number)
    {
      /* The ends of a socketpair are alike: take the one the number went to. */
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

void
test_write_byte (int fd)
{
  g_assert_cmpint (write (fd, "x", 1), ==, 1);
}

void
test_close_pair (int fds[2])
{
  close (fds[0]);
  close (fds[1]);
}

gsize
test_drain (int fd)
{
  char buf[4096];
  gsize total = 0;
  ssize_t n;

  while ((n = read (fd, buf, sizeof buf)) > 0)
    total += n;
  g_assert_true (n == 0 || errno == EAGAIN);
  return total;
}

void
test_fill (int fd)
{
  static const char block[4096];
  struct pollfd pfd = { fd, POLLOUT, 0 };

  while (write (fd, block, sizeof block) > 0)
    ;
  g_assert_cmpint (errno, ==, EAGAIN);
  g_assert_cmpint (poll (&pfd, 1, 0), ==, 0);
}

int
test_closed_fd (void)
{
  int fds[2];
  int fd;

  test_socketpair (fds);
  fd = fcntl (fds[0], F_DUPFD_CLOEXEC, 200);
  g_assert_cmpint (fd, >=, 200);
  close (fd);
  test_close_pair (fds);
  return fd;
}

int
test_lowest_free_fd (void)
{
  int fd = open ("/dev/null", O_RDONLY | O_CLOEXEC);

  g_assert_cmpint (fd, >=, 0);
  close (fd);
  return fd;
}

/* -- the fixture ----------------------------------------------------------- */

void
test_fixture_setup (TestFixture   *f,
                    gconstpointer  data)
{
  f->context = g_main_context_new ();
  f->glib_iops = iops_glib_iops_new (f->context);
  f->iops = IOPS_IOPS (f->glib_iops);
}

void
test_fixture_setup_mode (TestFixture   *f,
                         gconstpointer  data)
{
  test_fixture_setup (f, data);
  iops_glib_iops_set_persistent (f->glib_iops, GPOINTER_TO_INT (data));
}

static void
test_fixture_drain (TestFixture *f)
{
  while (g_main_context_iteration (f->context, FALSE))
    ;
  g_main_context_unref (f->context);
}

void
test_fixture_teardown (TestFixture   *f,
                       gconstpointer  data)
{
  f->iops = NULL;
  g_clear_object (&f->glib_iops);
  test_fixture_drain (f);
}

void
test_fixture_teardown_finalize (TestFixture   *f,
                                gconstpointer  data)
{
  if (f->glib_iops != NULL)
    g_assert_finalize_object (f->glib_iops);
  test_fixture_drain (f);
}

void
test_fixture_teardown_quiet (TestFixture   *f,
                             gconstpointer  data)
{
  if (f->glib_iops != NULL)
    g_assert_finalize_object (f->glib_iops);

  /* Rule 6: whatever the IOPS still held is released with it. */
  for (guint i = 0; i < f->n_weak; i++)
    g_assert_null (f->weak[i]);

  /* Nothing the IOPS attached to the context outlives it. */
  g_assert_false (g_main_context_iteration (f->context, FALSE));
  g_main_context_unref (f->context);
}

void
test_fixture_track (TestFixture *f,
                    gpointer     object)
{
  g_assert_cmpuint (f->n_weak, <, G_N_ELEMENTS (f->weak));
  f->weak[f->n_weak] = object;
  g_object_add_weak_pointer (object, &f->weak[f->n_weak]);
  f->n_weak++;
}

void
test_add_mode (const char      *path,
               gconstpointer    mode,
               TestFixtureFunc  func)
{
  g_test_add (path, TestFixture, mode, test_fixture_setup_mode, func, test_fixture_teardown_quiet);
}

void
test_add_both_modes (const char      *path,
                     TestFixtureFunc  func)
{
  g_autofree char *persistent = g_strconcat (path, "/persistent", NULL);

  test_add_mode (path, TEST_ONE_SHOT, func);
  test_add_mode (persistent, TEST_PERSISTENT, func);
}

/* -- update_event / update_timer ------------------------------------------- */

void
test_update (IopsIOPS       *iops,
             gpointer        event,
             IopsEvAction    action,
             IopsEventFlags  flags)
{
  iops_iops_update_event (iops, IOPS_IO_EVENT (event), action, flags);
}

void
test_watch (IopsIOPS       *iops,
            gpointer        event,
            IopsEventFlags  flags)
{
  test_update (iops, event, IOPS_EVACTION_WATCH, flags);
}

void
test_unwatch (IopsIOPS *iops,
              gpointer  event)
{
  test_update (iops, event, IOPS_EVACTION_UNWATCH, 0);
}

void
test_cleanup (IopsIOPS *iops,
              gpointer  event)
{
  test_update (iops, event, IOPS_EVACTION_CLEANUP, 0);
}

void
test_arm (IopsIOPS *iops,
          gpointer  timer,
          gint64    usecs)
{
  iops_iops_update_timer (iops, IOPS_TIMER_EVENT (timer), IOPS_EVACTION_WATCH, usecs);
}

void
test_unwatch_timer (IopsIOPS *iops,
                    gpointer  timer)
{
  iops_iops_update_timer (iops, IOPS_TIMER_EVENT (timer), IOPS_EVACTION_UNWATCH, 0);
}

void
test_cleanup_timer (IopsIOPS *iops,
                    gpointer  timer)
{
  iops_iops_update_timer (iops, IOPS_TIMER_EVENT (timer), IOPS_EVACTION_CLEANUP, 0);
}

/* -- a full set of hot watches ----------------------------------------------- */

static void
hot_fill_hook (TestIOEvent    *event,
               IopsEventFlags  ready,
               gpointer        data)
{
  TestHotFill *fill = data;

  test_drain (test_io_event_fd (event));
  test_watch (fill->f->iops, event, IOPS_READ_EVENT);
  fill->n_delivered++;
}

void
test_hot_fill_setup (TestHotFill *fill,
                     TestFixture *f)
{
  fill->f = f;
  fill->n_delivered = 0;
  for (guint i = 0; i < TEST_HOT_FILL; i++)
    {
      test_socketpair (fill->fds[i]);
      fill->events[i] = test_io_event_new (fill->fds[i][0]);
      fill->events[i]->hook = hot_fill_hook;
      fill->events[i]->hook_data = fill;
      test_watch (f->iops, fill->events[i], IOPS_READ_EVENT);
      test_write_byte (fill->fds[i][1]);
    }
  test_iterate_until_count (f->context, &fill->n_delivered, TEST_HOT_FILL, TEST_DEADLINE_MS);
  g_assert_cmpuint (fill->n_delivered, ==, TEST_HOT_FILL);
}

void
test_hot_fill_teardown (TestHotFill *fill)
{
  for (guint i = 0; i < TEST_HOT_FILL; i++)
    {
      if (fill->events[i] != NULL)
        {
          test_cleanup (fill->f->iops, fill->events[i]);
          g_clear_object (&fill->events[i]);
        }
      test_close_pair (fill->fds[i]);
    }
}

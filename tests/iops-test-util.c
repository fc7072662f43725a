/* iops-test-util.c — shared helpers of the C tests
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "iops-test-util.h"

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

guint
test_io_event_total (TestIOEvent *self)
{
  return self->n_r + self->n_w + self->n_rw;
}

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
}

TestTimerEvent *
test_timer_event_new (void)
{
  return g_object_new (TEST_TYPE_TIMER_EVENT, NULL);
}

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

gboolean
test_iterate_until (GMainContext   *context,
                    const gboolean *flag,
                    guint           timeout_ms)
{
  gboolean expired = FALSE;
  GSource *deadline = g_timeout_source_new (timeout_ms);

  g_source_set_callback (deadline, test_set_flag, &expired, NULL);
  g_source_attach (deadline, context);
  while (!*flag && !expired)
    g_main_context_iteration (context, TRUE);
  g_source_destroy (deadline);
  g_source_unref (deadline);
  return *flag;
}

guint
test_iterate_for (GMainContext *context,
                  guint         ms)
{
  gboolean expired = FALSE;
  guint n = 0;
  GSource *deadline = g_timeout_source_new (ms);

  g_source_set_callback (deadline, test_set_flag, &expired, NULL);
  g_source_attach (deadline, context);
  while (!expired)
    if (g_main_context_iteration (context, TRUE))
      n++;
  g_source_destroy (deadline);
  g_source_unref (deadline);
  return n;
}

void
test_socketpair (int fds[2])
{
  g_assert_cmpint (socketpair (AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), ==, 0);
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

/* -- the fixture --------------------------------------------------------- */

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

/* -- update_event / update_timer ----------------------------------------- */

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

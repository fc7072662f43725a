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

static gboolean
set_flag (gpointer data)
{
  *(gboolean *) data = TRUE;
  return G_SOURCE_REMOVE;
}

gboolean
test_iterate_until (GMainContext   *context,
                    const gboolean *flag,
                    guint           timeout_ms)
{
  gboolean expired = FALSE;
  GSource *deadline = g_timeout_source_new (timeout_ms);

  g_source_set_callback (deadline, set_flag, &expired, NULL);
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

  g_source_set_callback (deadline, set_flag, &expired, NULL);
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

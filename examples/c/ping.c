/* ping.c — the smallest IopsIOPS program: one fd watch and one timer
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The "first look" of README.md, kept building and running: a socketpair
 * ping read in a "ready" handler and a 50 ms timer, both through the IopsIOPS
 * interface, and start_watching() returning once nothing is armed.
 *
 *   cc ping.c -o ping $(pkg-config --cflags --libs iops-glib-1.0)
 */
#include <iops-glib.h>
#include <sys/socket.h>
#include <unistd.h>

static void
on_readable (IopsIOEvent    *event,
             IopsEventFlags  flags,
             gpointer        user_data)
{
  IopsIOPS *iops = user_data;
  char buf[16];
  ssize_t n = read (iops_io_event_get_fd (event), buf, sizeof buf);

  g_print ("read %zd bytes\n", n);
  /* The one-shot watch is already disarmed: WATCH again for more, or
   * CLEANUP to make the IOPS let go of the event. */
  iops_iops_update_event (iops, event, IOPS_EVACTION_CLEANUP, 0);
}

static void
on_timer (IopsTimerEvent *timer,
          int             flags,
          gpointer        user_data)
{
  g_print ("50 ms later\n");
}

int
main (void)
{
  g_autoptr(IopsGLibIOPS) glib_iops = iops_glib_iops_new (NULL);
  IopsIOPS *iops = IOPS_IOPS (glib_iops);
  g_autoptr(IopsIOEvent) event = iops_iops_io_event_factory (iops);
  g_autoptr(IopsTimerEvent) timer = iops_iops_timer_event_factory (iops);
  int fds[2];

  if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds) < 0)
    return 1;

  iops_io_event_set_fd (event, fds[1]);
  g_signal_connect (event, "ready", G_CALLBACK (on_readable), iops);
  iops_iops_update_event (iops, event, IOPS_EVACTION_WATCH, IOPS_READ_EVENT);

  g_signal_connect (timer, "ready", G_CALLBACK (on_timer), NULL);
  iops_iops_update_timer (iops, timer, IOPS_EVACTION_WATCH,
                          50 * G_TIME_SPAN_MILLISECOND);

  if (write (fds[0], "ping", 4) != 4)
    return 1;

  /* Runs the context until nothing is armed any more. */
  iops_iops_start_watching (iops);

  close (fds[0]);
  close (fds[1]);
  return 0;
}

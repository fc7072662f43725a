/* test-watch.c — rules 1, 2 and 3 of DESIGN.md: WATCH, delivery, and the
 * one-shot and persistent modes of fd watches
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Every case runs on every backend (IOPS_GLIB_BACKEND) and asserts only
 * what DESIGN.md promises; a case whose rule holds in both watch modes
 * runs in each (its persistent run ends in "/persistent"). Cases that
 * were written for a bug say so in their comment.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "iops-test-util.h"

#define PING_PONG_ROUNDS 1000

typedef TestFixture Fixture;

/* What the ::ready signal reported. */
typedef struct
{
  guint          n;
  IopsEventFlags last;
  gboolean       got;
} SignalLog;

static void
on_ready (IopsIOEvent    *event,
          IopsEventFlags  flags,
          gpointer        data)
{
  SignalLog *log = data;

  log->n++;
  log->last = flags;
  log->got = TRUE;
}

static void
wait_signal (Fixture   *f,
             SignalLog *log)
{
  g_assert_true (test_iterate_until (f->context, &log->got, TEST_DEADLINE_MS));
  log->got = FALSE;
}

/* -- rule 2: delivery ------------------------------------------------------ */

static void
test_read_delivered (Fixture       *f,
                     gconstpointer  data)
{
  int s[2];
  TestIOEvent *ev;

  test_socketpair (s);
  ev = test_io_event_new (s[0]);
  test_watch (f->iops, ev, IOPS_READ_EVENT);
  test_write_byte (s[1]);
  test_wait_calls (f->context, ev, 1);

  /* The socket is writable as well, but only READ was asked for. */
  test_assert_calls (ev, 1, 0, 0);
  g_assert_cmpint (ev->last, ==, IOPS_READ_EVENT);
  g_assert_cmpuint (test_drain (s[0]), ==, 1);

  test_cleanup (f->iops, ev);
  g_assert_finalize_object (ev);
  test_close_pair (s);
}

static void
test_write_delivered (Fixture       *f,
                      gconstpointer  data)
{
  int s[2];
  TestIOEvent *ev;

  test_socketpair (s);
  /* Readable too, but only WRITE is watched. */
  test_write_byte (s[1]);
  ev = test_io_event_new (s[0]);
  test_watch (f->iops, ev, IOPS_WRITE_EVENT);
  test_wait_calls (f->context, ev, 1);

  test_assert_calls (ev, 0, 1, 0);
  g_assert_cmpint (ev->last, ==, IOPS_WRITE_EVENT);

  test_cleanup (f->iops, ev);
  g_assert_finalize_object (ev);
  test_close_pair (s);
}

static void
test_rw_delivered (Fixture       *f,
                   gconstpointer  data)
{
  int s[2];
  TestIOEvent *ev;

  test_socketpair (s);
  test_write_byte (s[1]);
  ev = test_io_event_new (s[0]);
  test_watch (f->iops, ev, IOPS_RW_EVENT);
  test_wait_calls (f->context, ev, 1);

  /* One ready_rw, not a ready_r and a ready_w. */
  test_assert_calls (ev, 0, 0, 1);
  g_assert_cmpint (ev->last, ==, IOPS_RW_EVENT);

  test_cleanup (f->iops, ev);
  g_assert_finalize_object (ev);
  test_close_pair (s);
}

static void
test_rw_reports_what_is_ready (Fixture       *f,
                               gconstpointer  data)
{
  int s[2];
  TestIOEvent *ev;

  test_socketpair (s);
  ev = test_io_event_new (s[0]);

  /* Writable, nothing to read. */
  test_watch (f->iops, ev, IOPS_RW_EVENT);
  test_wait_calls (f->context, ev, 1);
  test_assert_calls (ev, 0, 1, 0);

  /* Readable, send buffer full. */
  test_fill (s[0]);
  test_write_byte (s[1]);
  test_watch (f->iops, ev, IOPS_RW_EVENT);
  test_wait_calls (f->context, ev, 2);
  test_assert_calls (ev, 1, 1, 0);
  g_assert_cmpint (ev->last, ==, IOPS_READ_EVENT);

  test_cleanup (f->iops, ev);
  g_assert_finalize_object (ev);
  test_close_pair (s);
}

static void
test_no_callback_inside_update_event (Fixture       *f,
                                      gconstpointer  data)
{
  int s[2];
  TestIOEvent *ev, *invalid;

  test_socketpair (s);
  test_write_byte (s[1]);
  ev = test_io_event_new (s[0]);
  invalid = test_io_event_new (test_closed_fd ());

  /* Both fds are ready before WATCH returns; the calls must wait for the
   * loop. */
  test_watch (f->iops, ev, IOPS_READ_EVENT);
  g_assert_cmpuint (test_io_event_total (ev), ==, 0);
  test_watch (f->iops, ev, IOPS_RW_EVENT);
  g_assert_cmpuint (test_io_event_total (ev), ==, 0);
  test_watch (f->iops, invalid, IOPS_READ_EVENT);
  g_assert_cmpuint (test_io_event_total (invalid), ==, 0);

  test_wait_calls (f->context, ev, 1);
  test_wait_calls (f->context, invalid, 1);
  test_assert_calls (ev, 0, 0, 1);
  test_assert_calls (invalid, 1, 0, 0);

  /* Nor from inside UNWATCH and CLEANUP of a ready fd. */
  test_watch (f->iops, ev, IOPS_READ_EVENT);
  test_unwatch (f->iops, ev);
  test_watch (f->iops, ev, IOPS_READ_EVENT);
  test_cleanup (f->iops, ev);
  g_assert_cmpuint (test_io_event_total (ev), ==, 1);

  test_cleanup (f->iops, invalid);
  g_assert_finalize_object (invalid);
  g_assert_finalize_object (ev);
  test_close_pair (s);
}

static void
test_ready_signal (Fixture       *f,
                   gconstpointer  data)
{
  int s[2];
  IopsIOEvent *ev;
  SignalLog log = { 0, 0, FALSE };

  test_socketpair (s);
  ev = iops_io_event_new (s[0]);
  g_signal_connect (ev, "ready", G_CALLBACK (on_ready), &log);

  test_watch (f->iops, ev, IOPS_READ_EVENT);
  test_write_byte (s[1]);
  wait_signal (f, &log);
  g_assert_cmpint (log.last, ==, IOPS_READ_EVENT);

  /* Still readable: each WATCH gets what it asked for. */
  test_watch (f->iops, ev, IOPS_WRITE_EVENT);
  wait_signal (f, &log);
  g_assert_cmpint (log.last, ==, IOPS_WRITE_EVENT);

  test_watch (f->iops, ev, IOPS_RW_EVENT);
  wait_signal (f, &log);
  g_assert_cmpint (log.last, ==, IOPS_RW_EVENT);

  test_assert_quiet (f->context);
  g_assert_cmpuint (log.n, ==, 3);

  test_cleanup (f->iops, ev);
  g_assert_finalize_object (ev);
  test_close_pair (s);
}

static void
test_factory_event (Fixture       *f,
                    gconstpointer  data)
{
  int s[2];
  IopsIOEvent *ev;
  SignalLog log = { 0, 0, FALSE };

  test_socketpair (s);
  ev = iops_iops_io_event_factory (f->iops);
  g_assert_true (IOPS_IS_IO_EVENT (ev));
  g_object_set (ev, "fd", s[0], NULL);
  g_signal_connect (ev, "ready", G_CALLBACK (on_ready), &log);

  test_watch (f->iops, ev, IOPS_READ_EVENT);
  test_write_byte (s[1]);
  wait_signal (f, &log);
  g_assert_cmpint (log.last, ==, IOPS_READ_EVENT);
  g_assert_cmpuint (log.n, ==, 1);

  test_cleanup (f->iops, ev);
  g_assert_finalize_object (ev);
  test_close_pair (s);
}

/* epoll refuses regular files (EPERM); poll () calls them always ready. */
static void
test_regular_file (Fixture       *f,
                   gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *path = NULL;
  int fd = g_file_open_tmp ("iops-test-XXXXXX", &path, &error);
  g_autoptr(TestIOEvent) event = NULL;
  gboolean fired;

  g_assert_no_error (error);
  event = test_io_event_new_flagged (fd, &fired);
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

/* -- rule 1: WATCH replaces what the event watched --------------------------- */

static void
test_rewatch_while_armed (Fixture       *f,
                          gconstpointer  data)
{
  int s[2];
  TestIOEvent *ev;

  test_socketpair (s);
  ev = test_io_event_new (s[0]);

  /* The same WATCH twice is one registration: one callback. */
  test_watch (f->iops, ev, IOPS_READ_EVENT);
  test_watch (f->iops, ev, IOPS_READ_EVENT);
  test_write_byte (s[1]);
  test_wait_calls (f->context, ev, 1);
  test_assert_quiet (f->context);
  test_assert_calls (ev, 1, 0, 0);

  test_cleanup (f->iops, ev);
  g_assert_finalize_object (ev);
  test_close_pair (s);
}

static void
test_other_flags_replace (Fixture       *f,
                          gconstpointer  data)
{
  int s[2];
  TestIOEvent *ev;

  test_socketpair (s);
  ev = test_io_event_new (s[0]);

  /* Writable and not readable: a WRITE watch left behind would fire. */
  test_watch (f->iops, ev, IOPS_WRITE_EVENT);
  test_watch (f->iops, ev, IOPS_READ_EVENT);
  test_assert_quiet (f->context);
  g_assert_cmpuint (test_io_event_total (ev), ==, 0);

  test_write_byte (s[1]);
  test_wait_calls (f->context, ev, 1);
  test_assert_calls (ev, 1, 0, 0);

  /* Readable and writable: only the latest flags count. */
  test_watch (f->iops, ev, IOPS_READ_EVENT);
  test_watch (f->iops, ev, IOPS_WRITE_EVENT);
  test_wait_calls (f->context, ev, 2);
  test_assert_quiet (f->context);
  test_assert_calls (ev, 1, 1, 0);

  test_cleanup (f->iops, ev);
  g_assert_finalize_object (ev);
  test_close_pair (s);
}

/* Flags 0 with WATCH means UNWATCH: no precondition failure (criticals are
 * fatal here), nothing armed. */
static void
test_zero_flags_unwatch (Fixture       *f,
                         gconstpointer  data)
{
  int s[2];
  TestIOEvent *ev;

  test_socketpair (s);
  ev = test_io_event_new (s[0]);
  test_write_byte (s[1]);

  test_watch (f->iops, ev, IOPS_READ_EVENT);
  test_watch (f->iops, ev, 0);
  test_assert_quiet (f->context);
  g_assert_cmpuint (test_io_event_total (ev), ==, 0);
  /* Nothing armed: start_watching returns at once (rule 8). */
  g_assert_true (test_start_watching_bounded (f->context, f->iops));

  /* Disarmed, not broken. */
  test_watch (f->iops, ev, IOPS_READ_EVENT);
  test_wait_calls (f->context, ev, 1);
  test_watch (f->iops, ev, 0);
  test_assert_quiet (f->context);
  test_assert_calls (ev, 1, 0, 0);

  test_cleanup (f->iops, ev);
  g_assert_finalize_object (ev);
  test_close_pair (s);
}

static void
test_fd_change (Fixture       *f,
                gconstpointer  data)
{
  int old[2], new[2];
  TestIOEvent *ev;

  test_socketpair (old);
  test_socketpair (new);
  ev = test_io_event_new (old[0]);
  ev->hook = test_drain_hook;

  /* Armed on the old fd, then moved without an UNWATCH in between. */
  test_watch (f->iops, ev, IOPS_READ_EVENT);
  iops_io_event_set_fd (IOPS_IO_EVENT (ev), new[0]);
  test_watch (f->iops, ev, IOPS_READ_EVENT);

  test_write_byte (old[1]);
  test_assert_quiet (f->context);
  g_assert_cmpuint (test_io_event_total (ev), ==, 0);

  test_write_byte (new[1]);
  test_wait_calls (f->context, ev, 1);
  test_assert_quiet (f->context);
  test_assert_calls (ev, 1, 0, 0);
  /* The old fd was never read, the new one was drained by the hook. */
  g_assert_cmpuint (test_drain (old[0]), ==, 1);

  test_cleanup (f->iops, ev);
  g_assert_finalize_object (ev);
  test_close_pair (old);
  test_close_pair (new);
}

static void
test_fd_read_at_watch (Fixture       *f,
                       gconstpointer  data)
{
  int first[2], second[2];
  TestIOEvent *ev;

  test_socketpair (first);
  test_socketpair (second);
  ev = test_io_event_new (first[0]);

  /* fileno () is read at WATCH: changing the fd alone moves nothing. */
  test_watch (f->iops, ev, IOPS_READ_EVENT);
  iops_io_event_set_fd (IOPS_IO_EVENT (ev), second[0]);
  test_write_byte (second[1]);
  test_assert_quiet (f->context);
  g_assert_cmpuint (test_io_event_total (ev), ==, 0);

  test_write_byte (first[1]);
  test_wait_calls (f->context, ev, 1);
  test_assert_calls (ev, 1, 0, 0);
  g_assert_cmpuint (test_drain (first[0]), ==, 1);
  g_assert_cmpuint (test_drain (second[0]), ==, 1);

  test_cleanup (f->iops, ev);
  g_assert_finalize_object (ev);
  test_close_pair (first);
  test_close_pair (second);
}

static void
test_fileno_override (Fixture       *f,
                      gconstpointer  data)
{
  int first[2], second[2];
  TestFilenoEvent *ev;
  SignalLog log = { 0, 0, FALSE };

  test_socketpair (first);
  test_socketpair (second);
  ev = test_fileno_event_new (-1);
  g_signal_connect (ev, "ready", G_CALLBACK (on_ready), &log);

  /* The fd property stays -1: only fileno () knows the fd. */
  ev->fd = first[0];
  test_watch (f->iops, ev, IOPS_READ_EVENT);
  g_assert_cmpuint (ev->n_fileno, >, 0);
  test_write_byte (first[1]);
  wait_signal (f, &log);
  g_assert_cmpint (log.last, ==, IOPS_READ_EVENT);

  /* Each WATCH asks again. The first fd is still readable. */
  ev->fd = second[0];
  test_watch (f->iops, ev, IOPS_READ_EVENT);
  test_assert_quiet (f->context);
  g_assert_cmpuint (log.n, ==, 1);
  test_write_byte (second[1]);
  wait_signal (f, &log);
  g_assert_cmpuint (log.n, ==, 2);

  test_cleanup (f->iops, ev);
  g_assert_finalize_object (ev);
  test_close_pair (first);
  test_close_pair (second);
}

/* Each event is its own watch, even on a shared fd (epoll holds one
 * registration per (fd, file)). */
static void
test_two_events_one_fd (Fixture       *f,
                        gconstpointer  data)
{
  int s[2];
  TestIOEvent *reader, *writer;

  test_socketpair (s);
  reader = test_io_event_new (s[0]);
  writer = test_io_event_new (s[0]);
  test_watch (f->iops, reader, IOPS_READ_EVENT);
  test_watch (f->iops, writer, IOPS_WRITE_EVENT);
  test_wait_calls (f->context, writer, 1);
  g_assert_cmpuint (test_io_event_total (reader), ==, 0);
  test_write_byte (s[1]);
  test_wait_calls (f->context, reader, 1);
  test_assert_calls (reader, 1, 0, 0);
  test_assert_calls (writer, 0, 1, 0);

  /* Letting go of one leaves the other armed. */
  test_watch (f->iops, reader, IOPS_READ_EVENT);
  test_watch (f->iops, writer, IOPS_WRITE_EVENT);
  test_cleanup (f->iops, writer);
  g_assert_finalize_object (writer);
  test_wait_calls (f->context, reader, 2);
  test_assert_calls (reader, 2, 0, 0);

  test_cleanup (f->iops, reader);
  g_assert_finalize_object (reader);
  test_close_pair (s);
}

/* fileno () that calls back into the IOPS ----------------------------------- */

typedef struct
{
  Fixture        *f;
  IopsEventFlags  flags;
} Reenter;

static void
reenter_cleanup (TestFilenoEvent *event,
                 gpointer         data)
{
  Reenter *r = data;

  test_cleanup (r->f->iops, event);
}

static void
reenter_watch (TestFilenoEvent *event,
               gpointer         data)
{
  Reenter *r = data;

  test_watch (r->f->iops, event, r->flags);
}

static void
reenter_unref (TestFilenoEvent *event,
               gpointer         data)
{
  g_object_unref (event);
}

/* One read callback for @event, then none: the WATCH made one registration
 * that delivers once. */
static void
assert_one_read_delivery (Fixture         *f,
                          TestFilenoEvent *event,
                          int              fds[2],
                          SignalLog       *log)
{
  test_write_byte (fds[1]);
  wait_signal (f, log);
  g_assert_cmpint (log->last, ==, IOPS_READ_EVENT);
  test_assert_quiet (f->context);
  g_assert_cmpuint (log->n, ==, 1);
}

/* Bug: the registration was looked up before fileno () was called, so a
 * fileno that cleaned up its own event made the WATCH go on with freed
 * memory. The WATCH is then a fresh registration. */
static void
test_fileno_cleans_up_own_event (Fixture       *f,
                                 gconstpointer  data)
{
  int s[2];
  TestFilenoEvent *ev;
  SignalLog log = { 0, 0, FALSE };
  Reenter r = { f, 0 };

  test_socketpair (s);
  ev = test_fileno_event_new (s[0]);
  g_signal_connect (ev, "ready", G_CALLBACK (on_ready), &log);
  test_watch (f->iops, ev, IOPS_WRITE_EVENT);   /* registered, armed */

  ev->reenter = reenter_cleanup;
  ev->reenter_data = &r;
  test_watch (f->iops, ev, IOPS_READ_EVENT);
  assert_one_read_delivery (f, ev, s, &log);

  test_cleanup (f->iops, ev);
  g_assert_finalize_object (ev);
  test_close_pair (s);
}

/* Bug: a fileno that watched its own, not yet registered, event made two
 * registrations, and one leaked. The outer WATCH wins, on one registration
 * that CLEANUP releases. */
static void
test_fileno_watches_own_event (Fixture       *f,
                               gconstpointer  data)
{
  int s[2];
  TestFilenoEvent *ev;
  SignalLog log = { 0, 0, FALSE };
  Reenter r = { f, IOPS_WRITE_EVENT };

  test_socketpair (s);
  ev = test_fileno_event_new (s[0]);
  g_signal_connect (ev, "ready", G_CALLBACK (on_ready), &log);
  ev->reenter = reenter_watch;
  ev->reenter_data = &r;
  test_watch (f->iops, ev, IOPS_READ_EVENT);
  /* Writable all along: a WRITE watch left behind would report it. */
  assert_one_read_delivery (f, ev, s, &log);

  test_cleanup (f->iops, ev);
  g_assert_finalize_object (ev);
  test_close_pair (s);
}

/* A fileno that drops the consumer's last reference: the WATCH goes on
 * safely, and the registration keeps the event until CLEANUP (rule 6). */
static void
test_fileno_drops_last_reference (Fixture       *f,
                                  gconstpointer  data)
{
  int s[2];
  TestFilenoEvent *ev;
  gpointer weak;
  SignalLog log = { 0, 0, FALSE };

  test_socketpair (s);
  ev = test_fileno_event_new (s[0]);
  weak = ev;
  g_object_add_weak_pointer (G_OBJECT (ev), &weak);
  g_signal_connect (ev, "ready", G_CALLBACK (on_ready), &log);
  ev->reenter = reenter_unref;
  test_watch (f->iops, ev, IOPS_READ_EVENT);
  g_assert_nonnull (weak);
  assert_one_read_delivery (f, ev, s, &log);
  g_assert_nonnull (weak);

  test_cleanup (f->iops, ev);
  g_assert_null (weak);
  test_close_pair (s);
}

/* -- rule 1: the same fd number, a new socket -------------------------------- */

/* What the event's old fd went through before its number went to a new
 * socket. */
typedef enum
{
  REUSED_ARMED,            /* armed, never polled */
  REUSED_POLLED,           /* armed, and the loop polled it once */
  REUSED_DELIVERED,        /* delivered and disarmed */
  REUSED_OLD_FILE_ALIVE,   /* armed; a dup keeps the old file open, readable */
} Reused;

/* The consumer closes the event's fd and gets a new socket under the same
 * number, as a reconnect does; its next WATCH must watch the new socket.
 * epoll registers (fd, file): the kernel dropped the old registration at
 * close () (or kept it, for a file a dup holds open), so the WATCH must
 * register the new file even though the number and flags did not change.
 * Only the new socket's readiness may be reported. */
static void
check_fd_reused (Fixture *f,
                 Reused   how)
{
  int old[2], fresh[2], keep = -1, number;
  guint before = how == REUSED_DELIVERED ? 1 : 0;
  TestIOEvent *ev;
  char buf[8];

  test_socketpair (old);
  number = old[0];
  ev = test_io_event_new (number);
  test_watch (f->iops, ev, IOPS_READ_EVENT);

  switch (how)
    {
    case REUSED_ARMED:
      break;
    case REUSED_POLLED:
      g_main_context_iteration (f->context, FALSE);
      g_assert_cmpuint (test_io_event_total (ev), ==, 0);
      break;
    case REUSED_DELIVERED:
      g_assert_cmpint (write (old[1], "old", 3), ==, 3);
      test_wait_calls (f->context, ev, 1);
      test_unwatch (f->iops, ev);
      break;
    case REUSED_OLD_FILE_ALIVE:
      keep = dup (number);
      g_assert_cmpint (keep, >=, 0);
      break;
    }

  close (number);
  if (how == REUSED_OLD_FILE_ALIVE)
    g_assert_cmpint (write (old[1], "old", 3), ==, 3);  /* the old file is readable */
  test_socketpair_at (number, fresh);

  test_watch (f->iops, ev, IOPS_READ_EVENT);
  /* The new socket is neither readable nor hung up. */
  test_assert_quiet (f->context);
  g_assert_cmpuint (test_io_event_total (ev), ==, before);

  g_assert_cmpint (write (fresh[1], "new", 3), ==, 3);
  test_wait_calls (f->context, ev, before + 1);
  test_assert_calls (ev, before + 1, 0, 0);
  g_assert_cmpint (ev->last, ==, IOPS_READ_EVENT);
  g_assert_cmpint (read (number, buf, sizeof buf), ==, 3);
  g_assert_cmpmem (buf, 3, "new", 3);

  test_cleanup (f->iops, ev);
  g_assert_finalize_object (ev);
  test_close_pair (fresh);
  close (old[1]);
  if (keep >= 0)
    close (keep);
}

static void
test_fd_reused_armed (Fixture       *f,
                      gconstpointer  data)
{
  check_fd_reused (f, REUSED_ARMED);
}

static void
test_fd_reused_polled (Fixture       *f,
                       gconstpointer  data)
{
  check_fd_reused (f, REUSED_POLLED);
}

static void
test_fd_reused_delivered (Fixture       *f,
                          gconstpointer  data)
{
  check_fd_reused (f, REUSED_DELIVERED);
}

static void
test_fd_reused_old_file_alive (Fixture       *f,
                               gconstpointer  data)
{
  check_fd_reused (f, REUSED_OLD_FILE_ALIVE);
}

/* How an event whose fd number went to a new socket lets go of it. */
typedef enum
{
  STALE_CLEANUP,
  STALE_WATCH_ELSEWHERE,
  STALE_UNWATCH_AND_UNREF,
} StaleEnd;

static void
check_stale_fd_number (Fixture  *f,
                       StaleEnd  end)
{
  int s[2], elsewhere[2], number;
  TestIOEvent *stale, *owner;

  /* The consumer closes an armed fd without unwatching it, the number goes
   * to a new socket that another event watches, then the first event lets
   * go of its registration: the new owner must keep its watch. */
  test_socketpair (s);
  test_socketpair (elsewhere);
  number = s[0];
  stale = test_io_event_new (number);
  test_watch (f->iops, stale, IOPS_READ_EVENT);
  test_close_pair (s);
  test_socketpair_at (number, s);
  owner = test_io_event_new (number);
  test_watch (f->iops, owner, IOPS_READ_EVENT);

  switch (end)
    {
    case STALE_CLEANUP:
      test_unwatch (f->iops, stale);
      test_cleanup (f->iops, stale);
      g_assert_finalize_object (g_steal_pointer (&stale));
      break;
    case STALE_WATCH_ELSEWHERE:
      iops_io_event_set_fd (IOPS_IO_EVENT (stale), elsewhere[0]);
      test_watch (f->iops, stale, IOPS_READ_EVENT);
      break;
    case STALE_UNWATCH_AND_UNREF:
      /* The IOPS may keep it until its disposal; teardown checks that. */
      test_fixture_track (f, stale);
      test_unwatch (f->iops, stale);
      g_clear_object (&stale);
      break;
    }

  test_write_byte (s[1]);
  test_wait_calls (f->context, owner, 1);
  test_assert_calls (owner, 1, 0, 0);

  if (stale != NULL)
    {
      /* Its new fd is not ready: the data went to the owner's socket. */
      g_assert_cmpuint (test_io_event_total (stale), ==, 0);
      test_cleanup (f->iops, stale);
      g_assert_finalize_object (stale);
    }
  test_cleanup (f->iops, owner);
  g_assert_finalize_object (owner);
  test_close_pair (s);
  test_close_pair (elsewhere);
}

static void
test_stale_fd_number_cleanup (Fixture       *f,
                              gconstpointer  data)
{
  check_stale_fd_number (f, STALE_CLEANUP);
}

static void
test_stale_fd_number_watch_elsewhere (Fixture       *f,
                                      gconstpointer  data)
{
  check_stale_fd_number (f, STALE_WATCH_ELSEWHERE);
}

static void
test_stale_fd_number_unwatch_unref (Fixture       *f,
                                    gconstpointer  data)
{
  check_stale_fd_number (f, STALE_UNWATCH_AND_UNREF);
}

/* Regression: a watch on a closed-but-dup'd file is cleaned up; a new
 * event then gets its registration slot and the same fd number for a new
 * socket. The old file's readiness must neither reach the new event nor
 * spin. */
static void
test_fd_reused_after_cleanup_old_file_alive (Fixture       *f,
                                             gconstpointer  data)
{
  int a[2], b[2], keep;
  g_autoptr(TestIOEvent) old = NULL;
  g_autoptr(TestIOEvent) fresh = NULL;

  test_socketpair (a);
  old = test_io_event_new (a[0]);
  test_watch (f->iops, old, IOPS_READ_EVENT);
  g_main_context_iteration (f->context, FALSE);
  keep = dup (a[0]);
  close (a[0]);
  test_cleanup (f->iops, old);

  test_socketpair_at (a[0], b);
  fresh = test_io_event_new (b[0]);
  test_watch (f->iops, fresh, IOPS_READ_EVENT);

  test_write_byte (a[1]);  /* the old file only */
  test_assert_quiet (f->context);
  g_assert_cmpuint (test_io_event_total (old), ==, 0);
  g_assert_cmpuint (test_io_event_total (fresh), ==, 0);

  test_write_byte (b[1]);
  g_assert_true (test_iterate_until_count (f->context, &fresh->n_r, 1, TEST_DEADLINE_MS));
  g_assert_cmpuint (fresh->n_r, ==, 1);

  test_cleanup (f->iops, fresh);
  test_close_pair (b);
  close (a[1]);
  close (keep);
}

/* Stale numbers that fds of the library took since the consumer's files
 * were closed (an IOPS created in between, with whatever fds its backend
 * keeps: an epoll fd, a timerfd) no longer name the consumer's files. The
 * backend may find them invalid (epoll refuses to watch its own fd) or
 * watch whatever they are now; either way each is reported at most once,
 * and nothing hangs or spins. */
static void
test_stale_numbers_taken_by_iops (Fixture       *f,
                                  gconstpointer  data)
{
  int held = open ("/dev/null", O_RDONLY | O_CLOEXEC);
  int stale[2];
  IopsGLibIOPS *other;
  TestIOEvent *events[2];

  /* The two lowest free numbers, which the new IOPS's fds take. */
  g_assert_cmpint (held, >=, 0);
  stale[0] = held;
  stale[1] = test_lowest_free_fd ();
  close (held);

  other = iops_glib_iops_new (f->context);
  iops_glib_iops_set_persistent (other, iops_glib_iops_get_persistent (f->glib_iops));
  for (guint i = 0; i < 2; i++)
    {
      events[i] = test_io_event_new (stale[i]);
      test_watch (IOPS_IOPS (other), events[i], IOPS_READ_EVENT);
    }
  test_assert_quiet (f->context);
  for (guint i = 0; i < 2; i++)
    {
      g_assert_cmpuint (test_io_event_total (events[i]), <=, 1);
      test_cleanup (IOPS_IOPS (other), events[i]);
      g_assert_finalize_object (events[i]);
    }
  g_assert_finalize_object (other);
}

/* -- rule 2: errors, hang-ups, invalid and closed fds ------------------------ */

/* Errors and hang-ups count as ready for every watched flag. */
static void
check_hup_once (Fixture        *f,
                IopsEventFlags  flags)
{
  int s[2];
  TestIOEvent *ev;
  char c;

  test_socketpair (s);
  ev = test_io_event_new (s[0]);
  test_watch (f->iops, ev, flags);
  close (s[1]);
  test_wait_calls (f->context, ev, 1);
  g_assert_cmpint (ev->last, ==, flags);

  /* Reported once: the one-shot watch is gone, the loop sleeps. */
  test_assert_quiet (f->context);
  g_assert_cmpuint (test_io_event_total (ev), ==, 1);

  /* The consumer's own I/O finds the hang-up. */
  if (flags & IOPS_READ_EVENT)
    g_assert_cmpint (read (s[0], &c, 1), ==, 0);
  if (flags & IOPS_WRITE_EVENT)
    {
      g_assert_cmpint (send (s[0], "x", 1, MSG_NOSIGNAL), ==, -1);
      g_assert_cmpint (errno, ==, EPIPE);
    }

  test_cleanup (f->iops, ev);
  g_assert_finalize_object (ev);
  close (s[0]);
}

static void
test_hup_read (Fixture       *f,
               gconstpointer  data)
{
  check_hup_once (f, IOPS_READ_EVENT);
}

static void
test_hup_write (Fixture       *f,
                gconstpointer  data)
{
  check_hup_once (f, IOPS_WRITE_EVENT);
}

static void
test_hup_rw (Fixture       *f,
             gconstpointer  data)
{
  check_hup_once (f, IOPS_RW_EVENT);
}

/* Also run in persistent mode: an invalid fd is still disarmed after one
 * delivery. */
static void
check_invalid_fd_once (Fixture        *f,
                       IopsEventFlags  flags)
{
  TestIOEvent *ev = test_io_event_new (test_closed_fd ());

  test_watch (f->iops, ev, flags);
  test_wait_calls (f->context, ev, 1);
  /* Invalid means ready for every watched flag. */
  g_assert_cmpint (ev->last, ==, flags);
  test_assert_quiet (f->context);
  g_assert_cmpuint (test_io_event_total (ev), ==, 1);

  test_cleanup (f->iops, ev);
  g_assert_finalize_object (ev);
}

static void
test_invalid_fd_read (Fixture       *f,
                      gconstpointer  data)
{
  check_invalid_fd_once (f, IOPS_READ_EVENT);
}

static void
test_invalid_fd_rw (Fixture       *f,
                    gconstpointer  data)
{
  check_invalid_fd_once (f, IOPS_RW_EVENT);
}

/* An fd the consumer closes while it is armed: poll () reports it once
 * (G_IO_NVAL), epoll forgets it; at most once, for the watched flags
 * only, and no spin. */
static void
check_closed_while_armed (Fixture        *f,
                          IopsEventFlags  flags)
{
  int s[2];
  TestIOEvent *ev;

  test_socketpair (s);
  ev = test_io_event_new (s[0]);
  test_watch (f->iops, ev, flags);
  close (s[0]);

  test_assert_quiet (f->context);
  g_assert_cmpuint (test_io_event_total (ev), <=, 1);
  if (!(flags & IOPS_WRITE_EVENT))
    {
      g_assert_cmpuint (ev->n_w, ==, 0);
      g_assert_cmpuint (ev->n_rw, ==, 0);
    }

  test_cleanup (f->iops, ev);
  g_assert_finalize_object (ev);
  close (s[1]);
}

static void
test_closed_while_armed_read (Fixture       *f,
                              gconstpointer  data)
{
  check_closed_while_armed (f, IOPS_READ_EVENT);
}

static void
test_closed_while_armed_rw (Fixture       *f,
                            gconstpointer  data)
{
  check_closed_while_armed (f, IOPS_RW_EVENT);
}

/* Where a watch stands when its fd is closed while a dup keeps the file
 * open and readable — which is where epoll goes on reporting a
 * registration whose number is gone. */
typedef enum
{
  DUP_COLD,       /* armed and polled, never delivered: in the epoll set */
  DUP_HOT,        /* delivered once and armed again: polled directly */
  DUP_DISARMED,   /* delivered once, then disarmed (one-shot: not re-armed;
                   * persistent: unwatched) */
} DupState;

static void
check_closed_dup (Fixture  *f,
                  DupState  state)
{
  gboolean persistent = iops_glib_iops_get_persistent (f->glib_iops);
  guint delivered = state == DUP_COLD ? 0 : 1;
  int s[2], keep;
  TestIOEvent *ev;

  test_socketpair (s);
  keep = dup (s[0]);
  g_assert_cmpint (keep, >=, 0);
  ev = test_io_event_new (s[0]);
  test_watch (f->iops, ev, IOPS_READ_EVENT);
  if (state == DUP_COLD)
    {
      g_main_context_iteration (f->context, FALSE);
    }
  else
    {
      test_write_byte (s[1]);
      test_wait_calls (f->context, ev, 1);
      g_assert_cmpuint (test_drain (s[0]), ==, 1);
    }
  if (state == DUP_HOT)
    test_watch (f->iops, ev, IOPS_READ_EVENT);
  else if (state == DUP_DISARMED && persistent)
    test_unwatch (f->iops, ev);

  close (s[0]);
  test_write_byte (s[1]);   /* the file behind the closed number is readable */
  test_assert_quiet (f->context);
  if (state == DUP_DISARMED)
    test_assert_calls (ev, 1, 0, 0);
  else
    g_assert_cmpuint (test_io_event_total (ev), <=, delivered + 1);

  /* Nor does the stale registration keep waking the loop once the event
   * is gone. */
  test_cleanup (f->iops, ev);
  test_assert_quiet (f->context);
  g_assert_finalize_object (ev);
  close (keep);
  close (s[1]);
}

static void
test_closed_while_armed_dup_cold (Fixture       *f,
                                  gconstpointer  data)
{
  check_closed_dup (f, DUP_COLD);
}

static void
test_closed_while_armed_dup_hot (Fixture       *f,
                                 gconstpointer  data)
{
  check_closed_dup (f, DUP_HOT);
}

static void
test_closed_after_delivery_dup (Fixture       *f,
                                gconstpointer  data)
{
  check_closed_dup (f, DUP_DISARMED);
}

static void
drain_own_number (TestIOEvent    *event,
                  IopsEventFlags  ready,
                  gpointer        data)
{
  /* The consumer reads its own fd number: the new socket, nothing there. */
  test_drain (GPOINTER_TO_INT (data));
}

/* Regression: an fd the consumer closes while it is armed is reported at
 * most once and never spins — with the closed file kept open by a dup (a
 * forked child does the same) and its number reused by a new socket, as a
 * reconnect does, but no WATCH of the new socket. The closed file's
 * readiness is not the consumer's to drain. @fill_hot: with the epoll
 * backend's hot set full, so that the watch stays in the epoll set. */
static void
check_closed_number_reused (Fixture  *f,
                            gboolean  fill_hot)
{
  TestHotFill fill;
  int a[2], b[2], keep;
  g_autoptr(TestIOEvent) event = NULL;
  guint before;

  if (fill_hot)
    test_hot_fill_setup (&fill, f);

  test_socketpair (a);
  event = test_io_event_new (a[0]);
  event->hook = drain_own_number;
  event->hook_data = GINT_TO_POINTER (a[0]);
  test_watch (f->iops, event, IOPS_READ_EVENT);
  g_main_context_iteration (f->context, FALSE);
  g_assert_cmpuint (test_io_event_total (event), ==, 0);

  keep = dup (a[0]);
  g_assert_cmpint (keep, >=, 0);
  close (a[0]);
  test_socketpair_at (a[0], b);

  test_write_byte (a[1]);  /* the closed file is readable now */
  test_iterate_for (f->context, TEST_QUIET_MS);
  before = test_io_event_total (event);
  g_assert_cmpuint (before, <=, 1);
  test_assert_quiet (f->context);
  g_assert_cmpuint (test_io_event_total (event), ==, before);

  test_cleanup (f->iops, event);
  test_close_pair (b);
  close (a[1]);
  close (keep);
  if (fill_hot)
    test_hot_fill_teardown (&fill);
}

static void
test_closed_number_reused (Fixture       *f,
                           gconstpointer  data)
{
  check_closed_number_reused (f, FALSE);
}

static void
test_closed_number_reused_hot_set_full (Fixture       *f,
                                        gconstpointer  data)
{
  check_closed_number_reused (f, TRUE);
}

/* Regression: two events on the same file through two fd numbers (a dup);
 * the consumer closes one while armed. The other keeps its deliveries, the
 * closed one is reported at most once, nothing spins. */
static void
test_closed_one_number_of_file (Fixture       *f,
                                gconstpointer  data)
{
  int s[2], d;
  g_autoptr(TestIOEvent) a = NULL;
  g_autoptr(TestIOEvent) b = NULL;

  test_socketpair (s);
  d = dup (s[0]);
  a = test_io_event_new (s[0]);
  b = test_io_event_new (d);
  test_watch (f->iops, a, IOPS_READ_EVENT);
  test_watch (f->iops, b, IOPS_READ_EVENT);
  g_main_context_iteration (f->context, FALSE);

  close (s[0]);
  test_write_byte (s[1]);
  g_assert_true (test_iterate_until_count (f->context, &b->n_r, 1, TEST_DEADLINE_MS));
  test_assert_quiet (f->context);
  g_assert_cmpuint (test_io_event_total (a), <=, 1);
  g_assert_cmpuint (b->n_r, ==, 1);

  /* The other still works after its fd is re-armed. */
  test_drain (d);
  test_watch (f->iops, b, IOPS_READ_EVENT);
  test_write_byte (s[1]);
  test_iterate_until_count (f->context, &b->n_r, 2, TEST_DEADLINE_MS);
  g_assert_cmpuint (b->n_r, ==, 2);

  test_cleanup (f->iops, a);
  test_cleanup (f->iops, b);
  close (d);
  close (s[1]);
}

/* Bug: the epoll fd was created inside an IOPS's first WATCH, after
 * fileno () was read, and took the number the consumer had just closed;
 * the backend then added its own epoll fd to itself (EINVAL) and the watch
 * was never reported. */
static void
test_closed_at_first_watch (Fixture       *f,
                            gconstpointer  data)
{
  TestIOEvent *ev = test_io_event_new (test_lowest_free_fd ());

  test_watch (f->iops, ev, IOPS_READ_EVENT);
  test_wait_calls (f->context, ev, 1);
  g_assert_cmpint (ev->last, ==, IOPS_READ_EVENT);
  /* Invalid: disarmed after one report in either mode. */
  test_assert_quiet (f->context);
  g_assert_cmpuint (test_io_event_total (ev), ==, 1);

  test_cleanup (f->iops, ev);
  g_assert_finalize_object (ev);
}

/* The same at the first WATCH of a new priority, which may need state of
 * its own in the backend. */
static void
test_closed_at_first_watch_of_priority (Fixture       *f,
                                        gconstpointer  data)
{
  TestIOEvent *ev;

  iops_glib_iops_set_priority (f->glib_iops, G_PRIORITY_HIGH);
  ev = test_io_event_new (test_lowest_free_fd ());
  test_watch (f->iops, ev, IOPS_RW_EVENT);
  test_wait_calls (f->context, ev, 1);
  g_assert_cmpint (ev->last, ==, IOPS_RW_EVENT);
  test_assert_quiet (f->context);
  g_assert_cmpuint (test_io_event_total (ev), ==, 1);

  test_cleanup (f->iops, ev);
  g_assert_finalize_object (ev);
}

/* -- rule 2: many fds --------------------------------------------------------- */

#define CROWD            1000
#define CROWD_ITERATIONS 20

/* Re-arms a one-shot watch from its callback, as a busy consumer does. */
static void
hook_rewatch_read (TestIOEvent    *event,
                   IopsEventFlags  ready,
                   gpointer        data)
{
  Fixture *f = data;

  if (!iops_glib_iops_get_persistent (f->glib_iops))
    test_watch (f->iops, event, IOPS_READ_EVENT);
}

/* Runs @n iterations; returns the fewest callbacks any of @events got. */
static guint
crowd_fewest_calls (Fixture      *f,
                    TestIOEvent **events,
                    guint         n_events,
                    guint         n)
{
  guint fewest = G_MAXUINT;

  for (guint i = 0; i < n_events; i++)
    events[i]->n_r = 0;
  for (guint i = 0; i < n; i++)
    g_main_context_iteration (f->context, FALSE);
  for (guint i = 0; i < n_events; i++)
    fewest = MIN (fewest, events[i]->n_r);
  return fewest;
}

/* Bug: on epoll, the directly polled fds were collected up to a fixed cap,
 * always from index 0, after the epoll events: with 400 always-ready fds
 * 80 never got a callback, and with 1,000 busy sockets about 190 starved.
 * Every ready fd is delivered within a bounded number of iterations. */
static void
check_crowd_all_delivered (Fixture *f,
                           int     *fds)
{
  TestIOEvent **events = g_new0 (TestIOEvent *, CROWD);

  for (guint i = 0; i < CROWD; i++)
    {
      events[i] = test_io_event_new (fds[i]);
      events[i]->hook = hook_rewatch_read;
      events[i]->hook_data = f;
      test_watch (f->iops, events[i], IOPS_READ_EVENT);
    }

  /* Cold fds may need a few iterations to be found; then every one is
   * served again and again. */
  g_assert_cmpuint (crowd_fewest_calls (f, events, CROWD, CROWD_ITERATIONS), >, 0);
  g_assert_cmpuint (crowd_fewest_calls (f, events, CROWD, CROWD_ITERATIONS), >, 0);

  for (guint i = 0; i < CROWD; i++)
    {
      test_cleanup (f->iops, events[i]);
      g_assert_finalize_object (events[i]);
    }
  g_free (events);
}

static void
test_crowd_always_ready_files (Fixture       *f,
                               gconstpointer  data)
{
  int fds[CROWD];

  /* /dev/null is always readable, and epoll refuses it: polled directly. */
  for (guint i = 0; i < CROWD; i++)
    g_assert_cmpint ((fds[i] = open ("/dev/null", O_RDONLY | O_CLOEXEC)), >=, 0);
  check_crowd_all_delivered (f, fds);
  for (guint i = 0; i < CROWD; i++)
    close (fds[i]);
}

static void
test_crowd_busy_sockets (Fixture       *f,
                         gconstpointer  data)
{
  int readers[CROWD], writers[CROWD];

  /* A byte never read: readable on every iteration. */
  for (guint i = 0; i < CROWD; i++)
    {
      int s[2];

      test_socketpair (s);
      test_write_byte (s[1]);
      readers[i] = s[0];
      writers[i] = s[1];
    }
  check_crowd_all_delivered (f, readers);
  for (guint i = 0; i < CROWD; i++)
    {
      close (readers[i]);
      close (writers[i]);
    }
}

typedef struct
{
  Fixture *f;
  int      fd;
  guint    rounds;
} Echo;

static void
echo_back (TestIOEvent    *event,
           IopsEventFlags  ready,
           gpointer        data)
{
  Echo *echo = data;
  char c;

  g_assert_cmpint (read (echo->fd, &c, 1), ==, 1);
  if (--echo->rounds == 0)
    return;
  test_write_byte (echo->fd);
  test_watch (echo->f->iops, event, IOPS_READ_EVENT);
}

static gboolean
echo_done (gconstpointer data)
{
  return ((const Echo *) data)->rounds == 0;
}

/* A bounded number of idle fds stay watched and never fire while a busy
 * one ping-pongs past them; cold fds must not get its deliveries. */
static void
test_many_idle_fds (Fixture       *f,
                    gconstpointer  data)
{
  enum { N_IDLE = 2000 };
  int busy[2];
  TestPair *idle;
  TestIOEvent **idle_events;
  g_autoptr(TestIOEvent) event = NULL;
  Echo echo = { f, -1, 500 };

  if (test_raise_fd_limit (2 * N_IDLE + 64) < 2 * N_IDLE + 64)
    {
      g_test_skip ("RLIMIT_NOFILE too low");
      return;
    }
  idle = g_new (TestPair, N_IDLE);
  idle_events = g_new (TestIOEvent *, N_IDLE);

  for (guint i = 0; i < N_IDLE; i++)
    {
      test_socketpair (idle[i]);
      idle_events[i] = test_io_event_new (idle[i][0]);
      test_watch (f->iops, idle_events[i], IOPS_READ_EVENT);
    }

  test_socketpair (busy);
  echo.fd = busy[0];
  event = test_io_event_new (busy[0]);
  event->hook = echo_back;
  event->hook_data = &echo;
  test_watch (f->iops, event, IOPS_READ_EVENT);
  test_write_byte (busy[1]);

  /* Echo from the test itself, between iterations; a deadline bounds the
   * wait should a wakeup be lost. */
  {
    gboolean expired = FALSE;
    GSource *deadline = g_timeout_source_new (TEST_DEADLINE_MS);

    g_source_set_callback (deadline, test_set_flag, &expired, NULL);
    g_source_attach (deadline, f->context);
    while (!echo_done (&echo) && !expired)
      {
        char c;

        g_main_context_iteration (f->context, TRUE);
        while (read (busy[1], &c, 1) == 1)
          test_write_byte (busy[1]);
      }
    g_source_destroy (deadline);
    g_source_unref (deadline);
  }
  g_assert_cmpuint (event->n_r, ==, 500);

  for (guint i = 0; i < N_IDLE; i++)
    {
      g_assert_cmpuint (test_io_event_total (idle_events[i]), ==, 0);
      test_cleanup (f->iops, idle_events[i]);
      g_object_unref (idle_events[i]);
      test_close_pair (idle[i]);
    }
  test_cleanup (f->iops, event);
  test_close_pair (busy);
  g_free (idle);
  g_free (idle_events);
}

static void
read_one_and_count (TestIOEvent    *event,
                    IopsEventFlags  ready,
                    gpointer        data)
{
  char c;

  (*(guint *) data)++;
  g_assert_cmpint (read (test_io_event_fd (event), &c, 1), ==, 1);
}

/* Many watches that fired once and went idle, then a new busy one, then
 * the idle ones again: on the epoll backend this turns the set of directly
 * polled watches over. Every delivery must still arrive exactly once. */
static void
test_hot_set_turnover (Fixture       *f,
                       gconstpointer  data)
{
  enum { N = 300 };
  TestPair *pairs = g_new (TestPair, N + 1);
  TestIOEvent **events = g_new (TestIOEvent *, N + 1);
  guint delivered = 0;

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
              test_socketpair (pairs[i]);
              events[i] = test_io_event_new (pairs[i][0]);
              events[i]->hook = read_one_and_count;
              events[i]->hook_data = &delivered;
            }
          test_watch (f->iops, events[i], IOPS_READ_EVENT);
          test_write_byte (pairs[i][1]);
        }
      test_iterate_until_count (f->context, &delivered, expected, TEST_DEADLINE_MS);
      g_assert_cmpuint (delivered, ==, expected);
    }
  for (guint i = 0; i <= N; i++)
    g_assert_cmpuint (events[i]->n_r, ==, 3);

  /* Nothing is armed or readable: the loop must be quiet. */
  test_assert_quiet (f->context);

  for (guint i = 0; i <= N; i++)
    {
      test_cleanup (f->iops, events[i]);
      g_object_unref (events[i]);
      test_close_pair (pairs[i]);
    }
  g_free (pairs);
  g_free (events);
}

/* -- rule 3: one-shot watches ------------------------------------------------- */

static void
test_one_shot_disarms (Fixture       *f,
                       gconstpointer  data)
{
  int s[2];
  TestIOEvent *reader, *writer;

  test_socketpair (s);
  reader = test_io_event_new (s[0]);
  writer = test_io_event_new (s[1]);
  test_watch (f->iops, reader, IOPS_READ_EVENT);
  test_watch (f->iops, writer, IOPS_WRITE_EVENT);
  test_write_byte (s[1]);
  test_wait_calls (f->context, reader, 1);
  test_wait_calls (f->context, writer, 1);

  /* Still readable and writable, but nobody watched again. */
  test_assert_quiet (f->context);
  test_assert_calls (reader, 1, 0, 0);
  test_assert_calls (writer, 0, 1, 0);
  g_assert_cmpuint (test_drain (s[0]), ==, 1);

  /* Watching again is all it takes. */
  test_write_byte (s[1]);
  test_watch (f->iops, reader, IOPS_READ_EVENT);
  test_wait_calls (f->context, reader, 2);
  test_assert_calls (reader, 2, 0, 0);

  test_cleanup (f->iops, reader);
  test_cleanup (f->iops, writer);
  g_assert_finalize_object (reader);
  g_assert_finalize_object (writer);
  test_close_pair (s);
}

/* Regression: hundreds of one-shot watches (beyond what epoll keeps hot),
 * each delivered once and neither drained nor re-armed, must leave the
 * context idle — also once every peer hangs up. */
static void
test_one_shot_disarms_many (Fixture       *f,
                            gconstpointer  data)
{
  enum { N = 300 };
  int fds[N][2];
  TestIOEvent *events[N];
  guint delivered = 0;

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

  test_assert_quiet (f->context);
  for (guint i = 0; i < N; i++)
    g_assert_cmpuint (test_io_event_total (events[i]), ==, 1);

  /* Hang up every peer: still no callback, still idle. */
  for (guint i = 0; i < N; i++)
    close (fds[i][1]);
  test_assert_quiet (f->context);
  for (guint i = 0; i < N; i++)
    g_assert_cmpuint (test_io_event_total (events[i]), ==, 1);

  for (guint i = 0; i < N; i++)
    {
      test_cleanup (f->iops, events[i]);
      g_object_unref (events[i]);
      close (fds[i][0]);
    }
}

typedef struct
{
  Fixture     *f;
  TestIOEvent *ping;   /* counts the round trips */
  guint        rounds;
  gboolean     done;
} PingPong;

/* Each side reads the one byte in flight, sends it back and watches again:
 * the consumer's usual cycle. */
static void
hook_ping_pong (TestIOEvent    *event,
                IopsEventFlags  ready,
                gpointer        data)
{
  PingPong *pp = data;
  int fd = test_io_event_fd (event);
  char c;

  g_assert_cmpint (ready, ==, IOPS_READ_EVENT);
  g_assert_cmpint (read (fd, &c, 1), ==, 1);
  g_assert_cmpint (read (fd, &c, 1), ==, -1);

  if (event == pp->ping && ++pp->rounds == PING_PONG_ROUNDS)
    {
      pp->done = TRUE;
      return;
    }
  test_write_byte (fd);
  test_watch (pp->f->iops, event, IOPS_READ_EVENT);
}

static void
test_rewatch_in_callback (Fixture       *f,
                          gconstpointer  data)
{
  int s[2];
  TestIOEvent *ping, *pong;
  PingPong pp = { f, NULL, 0, FALSE };

  test_socketpair (s);
  ping = test_io_event_new (s[0]);
  pong = test_io_event_new (s[1]);
  pp.ping = ping;
  ping->hook = pong->hook = hook_ping_pong;
  ping->hook_data = pong->hook_data = &pp;

  test_watch (f->iops, ping, IOPS_READ_EVENT);
  test_watch (f->iops, pong, IOPS_READ_EVENT);
  test_write_byte (s[0]);
  g_assert_true (test_iterate_until (f->context, &pp.done, TEST_DEADLINE_MS * 4));

  g_assert_cmpuint (pp.rounds, ==, PING_PONG_ROUNDS);
  test_assert_calls (ping, PING_PONG_ROUNDS, 0, 0);
  test_assert_calls (pong, PING_PONG_ROUNDS, 0, 0);

  test_cleanup (f->iops, ping);
  test_cleanup (f->iops, pong);
  g_assert_finalize_object (ping);
  g_assert_finalize_object (pong);
  test_close_pair (s);
}

/* -- rule 3: persistent watches ----------------------------------------------- */

static void
test_persistent_stays_armed (Fixture       *f,
                             gconstpointer  data)
{
  int s[2];
  TestIOEvent *ev;

  test_socketpair (s);
  ev = test_io_event_new (s[0]);
  ev->hook = test_drain_hook;
  test_watch (f->iops, ev, IOPS_READ_EVENT);

  /* One WATCH, many deliveries. */
  for (guint i = 1; i <= 5; i++)
    {
      test_write_byte (s[1]);
      test_wait_calls (f->context, ev, i);
      g_assert_cmpuint (test_io_event_total (ev), ==, i);
    }
  /* Drained: nothing is ready, nothing is reported. */
  test_assert_quiet (f->context);
  test_assert_calls (ev, 5, 0, 0);

  test_cleanup (f->iops, ev);
  g_assert_finalize_object (ev);
  test_close_pair (s);
}

static void
test_persistent_level_triggered (Fixture       *f,
                                 gconstpointer  data)
{
  int s[2];
  TestIOEvent *ev;

  test_socketpair (s);
  ev = test_io_event_new (s[0]);
  test_watch (f->iops, ev, IOPS_READ_EVENT);
  test_write_byte (s[1]);

  /* Not drained: reported again and again, until UNWATCH. */
  test_wait_calls (f->context, ev, 3);
  test_unwatch (f->iops, ev);
  test_assert_quiet (f->context);
  test_assert_calls (ev, 3, 0, 0);
  g_assert_cmpuint (test_drain (s[0]), ==, 1);

  test_cleanup (f->iops, ev);
  g_assert_finalize_object (ev);
  test_close_pair (s);
}

static void
test_persistent_rw_one_callback (Fixture       *f,
                                 gconstpointer  data)
{
  int s[2];
  TestIOEvent *ev;

  test_socketpair (s);
  ev = test_io_event_new (s[0]);
  test_write_byte (s[1]);
  test_watch (f->iops, ev, IOPS_RW_EVENT);

  /* Each delivery is one ready_rw, never a ready_r and a ready_w. */
  test_wait_calls (f->context, ev, 3);
  test_cleanup (f->iops, ev);
  test_assert_calls (ev, 0, 0, 3);

  g_assert_finalize_object (ev);
  test_close_pair (s);
}

static void
test_persistent_other_flags_replace (Fixture       *f,
                                     gconstpointer  data)
{
  int s[2];
  TestIOEvent *ev;
  guint n_r;

  test_socketpair (s);
  ev = test_io_event_new (s[0]);
  test_write_byte (s[1]);

  test_watch (f->iops, ev, IOPS_READ_EVENT);
  test_wait_calls (f->context, ev, 2);
  n_r = ev->n_r;

  /* Readable and writable: from now on only WRITE is reported. */
  test_watch (f->iops, ev, IOPS_WRITE_EVENT);
  test_wait_calls (f->context, ev, n_r + 3);
  test_unwatch (f->iops, ev);
  test_assert_calls (ev, n_r, 3, 0);

  test_cleanup (f->iops, ev);
  g_assert_finalize_object (ev);
  test_close_pair (s);
}

typedef struct
{
  Fixture *f;
  guint    stop_at;
} StopAt;

/* Reads the end of the stream and unwatches after a number of reports. */
static void
hook_eof_unwatch_at (TestIOEvent    *event,
                     IopsEventFlags  ready,
                     gpointer        data)
{
  StopAt *stop = data;
  char c;

  g_assert_cmpint (read (test_io_event_fd (event), &c, 1), ==, 0);
  if (test_io_event_total (event) == stop->stop_at)
    test_unwatch (stop->f->iops, event);
}

static void
test_persistent_hup_until_unwatch (Fixture       *f,
                                   gconstpointer  data)
{
  int s[2];
  TestIOEvent *ev;
  StopAt stop = { f, 5 };

  test_socketpair (s);
  ev = test_io_event_new (s[0]);
  ev->hook = hook_eof_unwatch_at;
  ev->hook_data = &stop;
  test_watch (f->iops, ev, IOPS_READ_EVENT);
  close (s[1]);

  /* Level-triggered: the hang-up is reported until the consumer unwatches,
   * then the loop sleeps. */
  test_wait_calls (f->context, ev, stop.stop_at);
  test_assert_quiet (f->context);
  test_assert_calls (ev, stop.stop_at, 0, 0);

  test_cleanup (f->iops, ev);
  g_assert_finalize_object (ev);
  close (s[0]);
}

int
main (int   argc,
      char *argv[])
{
  test_init (&argc, &argv);

  /* Rule 2: delivery. */
  test_add_mode ("/iops/glib/watch/read-delivered", TEST_ONE_SHOT, test_read_delivered);
  test_add_mode ("/iops/glib/watch/write-delivered", TEST_ONE_SHOT, test_write_delivered);
  test_add_mode ("/iops/glib/watch/rw-delivered", TEST_ONE_SHOT, test_rw_delivered);
  test_add_mode ("/iops/glib/watch/rw-reports-what-is-ready", TEST_ONE_SHOT, test_rw_reports_what_is_ready);
  test_add_mode ("/iops/glib/watch/no-callback-inside-update-event", TEST_ONE_SHOT,
                 test_no_callback_inside_update_event);
  test_add_mode ("/iops/glib/watch/ready-signal", TEST_ONE_SHOT, test_ready_signal);
  test_add_mode ("/iops/glib/watch/factory-event", TEST_ONE_SHOT, test_factory_event);
  test_add_mode ("/iops/glib/watch/regular-file", TEST_ONE_SHOT, test_regular_file);

  /* Rule 1: WATCH replaces what the event watched; fileno () is read then. */
  test_add_mode ("/iops/glib/watch/rewatch-while-armed", TEST_ONE_SHOT, test_rewatch_while_armed);
  test_add_mode ("/iops/glib/watch/other-flags-replace", TEST_ONE_SHOT, test_other_flags_replace);
  test_add_both_modes ("/iops/glib/watch/zero-flags-unwatch", test_zero_flags_unwatch);
  test_add_both_modes ("/iops/glib/watch/fd-change", test_fd_change);
  test_add_both_modes ("/iops/glib/watch/fd-read-at-watch", test_fd_read_at_watch);
  test_add_mode ("/iops/glib/watch/fileno-override", TEST_ONE_SHOT, test_fileno_override);
  test_add_mode ("/iops/glib/watch/two-events-one-fd", TEST_ONE_SHOT, test_two_events_one_fd);
  test_add_mode ("/iops/glib/watch/fileno-cleans-up-own-event", TEST_ONE_SHOT,
                 test_fileno_cleans_up_own_event);
  test_add_mode ("/iops/glib/watch/fileno-watches-own-event", TEST_ONE_SHOT,
                 test_fileno_watches_own_event);
  test_add_mode ("/iops/glib/watch/fileno-drops-last-reference", TEST_ONE_SHOT,
                 test_fileno_drops_last_reference);

  /* Rule 1: the same number, a new socket. */
  test_add_both_modes ("/iops/glib/watch/fd-reused/armed", test_fd_reused_armed);
  test_add_both_modes ("/iops/glib/watch/fd-reused/polled", test_fd_reused_polled);
  test_add_both_modes ("/iops/glib/watch/fd-reused/delivered", test_fd_reused_delivered);
  test_add_both_modes ("/iops/glib/watch/fd-reused/old-file-alive", test_fd_reused_old_file_alive);
  test_add_mode ("/iops/glib/watch/fd-reused/after-cleanup-old-file-alive", TEST_ONE_SHOT,
                 test_fd_reused_after_cleanup_old_file_alive);
  test_add_mode ("/iops/glib/watch/fd-reused/stale-cleanup", TEST_ONE_SHOT,
                 test_stale_fd_number_cleanup);
  test_add_mode ("/iops/glib/watch/fd-reused/stale-watch-elsewhere", TEST_ONE_SHOT,
                 test_stale_fd_number_watch_elsewhere);
  test_add_mode ("/iops/glib/watch/fd-reused/stale-unwatch-unref", TEST_ONE_SHOT,
                 test_stale_fd_number_unwatch_unref);
  test_add_both_modes ("/iops/glib/watch/fd-reused/stale-numbers-taken-by-iops",
                       test_stale_numbers_taken_by_iops);

  /* Rule 2: errors, hang-ups, invalid and closed fds. */
  test_add_mode ("/iops/glib/watch/hup-read", TEST_ONE_SHOT, test_hup_read);
  test_add_mode ("/iops/glib/watch/hup-write", TEST_ONE_SHOT, test_hup_write);
  test_add_mode ("/iops/glib/watch/hup-rw", TEST_ONE_SHOT, test_hup_rw);
  test_add_both_modes ("/iops/glib/watch/invalid-fd-read", test_invalid_fd_read);
  test_add_both_modes ("/iops/glib/watch/invalid-fd-rw", test_invalid_fd_rw);
  test_add_both_modes ("/iops/glib/watch/closed-while-armed/read", test_closed_while_armed_read);
  test_add_both_modes ("/iops/glib/watch/closed-while-armed/rw", test_closed_while_armed_rw);
  test_add_both_modes ("/iops/glib/watch/closed-while-armed/dup-cold", test_closed_while_armed_dup_cold);
  test_add_both_modes ("/iops/glib/watch/closed-while-armed/dup-hot", test_closed_while_armed_dup_hot);
  test_add_both_modes ("/iops/glib/watch/closed-while-armed/number-reused", test_closed_number_reused);
  test_add_both_modes ("/iops/glib/watch/closed-while-armed/number-reused-hot-set-full",
                       test_closed_number_reused_hot_set_full);
  test_add_mode ("/iops/glib/watch/closed-while-armed/one-number-of-file", TEST_ONE_SHOT,
                 test_closed_one_number_of_file);
  test_add_both_modes ("/iops/glib/watch/closed-after-delivery/dup", test_closed_after_delivery_dup);
  test_add_both_modes ("/iops/glib/watch/closed-at-first-watch", test_closed_at_first_watch);
  test_add_both_modes ("/iops/glib/watch/closed-at-first-watch-of-priority",
                       test_closed_at_first_watch_of_priority);

  /* Rule 2: many fds. */
  test_add_both_modes ("/iops/glib/watch/crowd-always-ready-files", test_crowd_always_ready_files);
  test_add_both_modes ("/iops/glib/watch/crowd-busy-sockets", test_crowd_busy_sockets);
  test_add_mode ("/iops/glib/watch/many-idle-fds", TEST_ONE_SHOT, test_many_idle_fds);
  test_add_mode ("/iops/glib/watch/hot-set-turnover", TEST_ONE_SHOT, test_hot_set_turnover);

  /* Rule 3: one-shot and persistent watches. */
  test_add_mode ("/iops/glib/watch/one-shot-disarms", TEST_ONE_SHOT, test_one_shot_disarms);
  test_add_mode ("/iops/glib/watch/one-shot-disarms/many", TEST_ONE_SHOT, test_one_shot_disarms_many);
  test_add_both_modes ("/iops/glib/watch/rewatch-in-callback", test_rewatch_in_callback);
  test_add_mode ("/iops/glib/persistent/stays-armed", TEST_PERSISTENT, test_persistent_stays_armed);
  test_add_mode ("/iops/glib/persistent/level-triggered", TEST_PERSISTENT, test_persistent_level_triggered);
  test_add_mode ("/iops/glib/persistent/rw-one-callback", TEST_PERSISTENT, test_persistent_rw_one_callback);
  test_add_mode ("/iops/glib/persistent/other-flags-replace", TEST_PERSISTENT,
                 test_persistent_other_flags_replace);
  test_add_mode ("/iops/glib/persistent/hup-until-unwatch", TEST_PERSISTENT,
                 test_persistent_hup_until_unwatch);

  return g_test_run ();
}

/* test-alloc.c — re-arming allocates nothing (DESIGN.md, performance
 * expectations): a delivery re-armed from its callback, and timers armed
 * and cancelled, count no malloc() once the structures have grown
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The executable defines malloc() and friends, which take the place of
 * libc's for every library of the process (GLib's g_malloc included), and
 * counts the calls made while a measured loop runs. Memory checkers replace
 * them too: under valgrind or AddressSanitizer the test is skipped.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef HAVE_VALGRIND_H
#include <valgrind/valgrind.h>
#else
#define RUNNING_ON_VALGRIND 0
#endif

#include "iops-test-util.h"

#if defined(__SANITIZE_ADDRESS__)
#define HAVE_OWN_MALLOC 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HAVE_OWN_MALLOC 0
#endif
#endif
#ifndef HAVE_OWN_MALLOC
#define HAVE_OWN_MALLOC 1
#endif

#define ROUNDS   20000
#define N_TIMERS 1000

typedef TestFixture Fixture;

/* -- counting malloc -------------------------------------------------------- */

static int counting;  /* atomic: GLib's threads allocate too */
static int n_allocations;

#if HAVE_OWN_MALLOC
extern void *__libc_malloc (size_t size);
extern void *__libc_calloc (size_t n, size_t size);
extern void *__libc_realloc (void *ptr, size_t size);

static inline void
count (void)
{
  if (__atomic_load_n (&counting, __ATOMIC_RELAXED))
    __atomic_fetch_add (&n_allocations, 1, __ATOMIC_RELAXED);
}

void *
malloc (size_t size)
{
  count ();
  return __libc_malloc (size);
}

void *
calloc (size_t n,
        size_t size)
{
  count ();
  return __libc_calloc (n, size);
}

void *
realloc (void   *ptr,
         size_t  size)
{
  count ();
  return __libc_realloc (ptr, size);
}
#endif

static void
count_start (void)
{
  __atomic_store_n (&n_allocations, 0, __ATOMIC_RELAXED);
  __atomic_store_n (&counting, 1, __ATOMIC_RELAXED);
}

static int
count_stop (void)
{
  __atomic_store_n (&counting, 0, __ATOMIC_RELAXED);
  return __atomic_load_n (&n_allocations, __ATOMIC_RELAXED);
}

/* Valgrind, also where valgrind.h was missing when the build was
 * configured: it preloads its own malloc(). */
static gboolean
under_valgrind (void)
{
  const char *preload = g_getenv ("LD_PRELOAD");

  return RUNNING_ON_VALGRIND || (preload != NULL && strstr (preload, "vgpreload") != NULL);
}

/* Skips under a memory checker; else checks that the counter sees what
 * GLib allocates, so that a zero below means something. */
static gboolean
skip_if_checked (void)
{
  if (!HAVE_OWN_MALLOC || under_valgrind ())
    {
      g_test_skip ("a memory checker replaces malloc()");
      return TRUE;
    }
  count_start ();
  g_free (g_malloc (64));
  g_assert_cmpint (count_stop (), ==, 1);
  return FALSE;
}

/* -- a ping-pong re-armed from its callbacks ------------------------------ */

typedef struct
{
  Fixture     *f;
  TestIOEvent *ends[2];
  int          fds[2];
  guint        rounds;
} PingPong;

static void
ping_pong_hook (TestIOEvent    *event,
                IopsEventFlags  ready,
                gpointer        data)
{
  PingPong *pp = data;
  int side = event == pp->ends[0] ? 0 : 1;
  char byte;

  g_assert_cmpint (read (pp->fds[side], &byte, 1), ==, 1);
  pp->rounds++;
  /* Wait for the ball again, and hand it back. */
  test_watch (pp->f->iops, event, IOPS_READ_EVENT);
  g_assert_cmpint (write (pp->fds[side], &byte, 1), ==, 1);
}

static void
run_rounds (PingPong *pp,
            guint     rounds)
{
  guint until = pp->rounds + rounds;

  while (pp->rounds < until)
    g_main_context_iteration (pp->f->context, TRUE);
}

static void
test_rearm_allocates_nothing (Fixture       *f,
                              gconstpointer  data)
{
  PingPong pp = { f, { NULL, NULL }, { -1, -1 }, 0 };

  if (skip_if_checked ())
    return;

  test_socketpair (pp.fds);
  for (guint i = 0; i < 2; i++)
    {
      pp.ends[i] = test_io_event_new (pp.fds[i]);
      pp.ends[i]->hook = ping_pong_hook;
      pp.ends[i]->hook_data = &pp;
      test_watch (f->iops, pp.ends[i], IOPS_READ_EVENT);
    }
  g_assert_cmpint (write (pp.fds[0], "x", 1), ==, 1);

  /* Whatever grows grows now: poll arrays, a hot watch's place. */
  run_rounds (&pp, 1000);
  count_start ();
  run_rounds (&pp, ROUNDS);
  g_assert_cmpint (count_stop (), ==, 0);

  for (guint i = 0; i < 2; i++)
    {
      test_cleanup (f->iops, pp.ends[i]);
      g_assert_finalize_object (pp.ends[i]);
    }
  test_close_pair (pp.fds);
}

/* -- timers ----------------------------------------------------------------- */

static void
arm_and_cancel (Fixture         *f,
                TestTimerEvent **timers)
{
  for (guint i = 0; i < N_TIMERS; i++)
    test_arm (f->iops, timers[i], G_USEC_PER_SEC + (i * 7919) % 1000);
  for (guint i = 0; i < N_TIMERS; i++)
    test_unwatch_timer (f->iops, timers[i]);
}

static void
test_timer_churn_allocates_nothing (Fixture       *f,
                                    gconstpointer  data)
{
  TestTimerEvent *timers[N_TIMERS];

  if (skip_if_checked ())
    return;

  for (guint i = 0; i < N_TIMERS; i++)
    timers[i] = test_timer_event_new ();
  /* Registrations and the queue's heap are made by the first rounds. */
  for (guint round = 0; round < 4; round++)
    arm_and_cancel (f, timers);
  count_start ();
  for (guint round = 0; round < ROUNDS / N_TIMERS; round++)
    arm_and_cancel (f, timers);
  g_assert_cmpint (count_stop (), ==, 0);

  for (guint i = 0; i < N_TIMERS; i++)
    {
      g_assert_cmpuint (timers[i]->n_fired, ==, 0);
      test_cleanup_timer (f->iops, timers[i]);
      g_assert_finalize_object (timers[i]);
    }
}

static void
rearm_hook (TestTimerEvent *timer,
            gpointer        data)
{
  Fixture *f = data;

  test_arm (f->iops, timer, 0);
}

static void
test_timer_rearm_allocates_nothing (Fixture       *f,
                                    gconstpointer  data)
{
  TestTimerEvent *timer = test_timer_event_new ();

  if (skip_if_checked ())
    {
      g_object_unref (timer);
      return;
    }

  timer->hook = rearm_hook;
  timer->hook_data = f;
  test_arm (f->iops, timer, 0);
  while (timer->n_fired < 1000)
    g_main_context_iteration (f->context, TRUE);
  count_start ();
  while (timer->n_fired < 1000 + ROUNDS / 10)
    g_main_context_iteration (f->context, TRUE);
  g_assert_cmpint (count_stop (), ==, 0);

  test_cleanup_timer (f->iops, timer);
  g_assert_finalize_object (timer);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

#define ADD(path, func, mode) \
  g_test_add ("/iops/glib/alloc/" path, Fixture, GINT_TO_POINTER (mode), \
              test_fixture_setup_mode, func, test_fixture_teardown_quiet)

  ADD ("rearm-one-shot", test_rearm_allocates_nothing, FALSE);
  ADD ("rearm-persistent", test_rearm_allocates_nothing, TRUE);
  ADD ("timer-churn", test_timer_churn_allocates_nothing, FALSE);
  ADD ("timer-rearm-in-ready", test_timer_rearm_allocates_nothing, FALSE);

#undef ADD

  return g_test_run ();
}

/* test-threads.c — several IOPS, each on its own context and thread, under
 * load while other threads hammer stop_watching() on them
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Each owner thread runs ping-pong over socketpairs and self-re-arming
 * timers on its own IopsGLibIOPS, calling start_watching() again whenever
 * it returns before the work is done. Hammer threads call stop_watching()
 * on random IOPS in a loop (rule 8: from any thread). Every count must come
 * out exact, and everything is bounded by a deadline.
 *
 * Built with -Db_sanitize=thread this is the ThreadSanitizer test; see
 * meson.build in this folder for the command and tsan.supp for why each
 * suppression is there.
 */
#include <errno.h>
#include <pthread.h>
#include <unistd.h>

#ifdef HAVE_VALGRIND_H
#include <valgrind/valgrind.h>
#else
#define RUNNING_ON_VALGRIND 0
#endif

#include "iops-test-util.h"

#define N_OWNERS     4
#define N_HAMMERS    2
#define N_PAIRS      4       /* ping-pong socketpairs per owner */
#define N_TIMERS     4       /* self-re-arming timers per owner */
#define DEADLINE_S   60      /* only a hang ever gets near it */

typedef struct _Owner Owner;

typedef struct
{
  TestIOEvent *ends[2];
  int          fds[2];
  guint        rounds;       /* bytes that went back and forth */
} Pair;

struct _Owner
{
  guint         index;
  GMainContext *context;
  IopsGLibIOPS *glib_iops;
  IopsIOPS     *iops;
  GThread      *thread;

  Pair          pairs[N_PAIRS];
  TestTimerEvent *timers[N_TIMERS];
  guint         rounds, fires;   /* per pair / per timer */
  guint         pairs_done, timers_done;
  guint         starts;          /* start_watching() calls */
  gboolean      failed;
  int           finished;        /* atomic */
};

typedef struct
{
  Owner   owners[N_OWNERS];
  GThread *hammers[N_HAMMERS];
  int      stop_hammers;         /* atomic */
  int      stops[N_HAMMERS];     /* stop_watching() calls, per hammer */
} Run;

static void
pair_hook (TestIOEvent    *event,
           IopsEventFlags  ready,
           gpointer        data)
{
  Owner *owner = data;
  Pair *pair = NULL;
  guint side = 0;
  char byte;

  for (guint i = 0; i < N_PAIRS && pair == NULL; i++)
    for (guint s = 0; s < 2; s++)
      if (owner->pairs[i].ends[s] == event)
        pair = &owner->pairs[i], side = s;
  g_assert_nonnull (pair);

  if (read (pair->fds[side], &byte, 1) != 1)
    {
      owner->failed = TRUE;
      return;
    }
  if (++pair->rounds == owner->rounds)
    {
      /* The other end waits for a ball that will not come. */
      owner->pairs_done++;
      for (guint s = 0; s < 2; s++)
        iops_iops_update_event (owner->iops, IOPS_IO_EVENT (pair->ends[s]),
                                IOPS_EVACTION_UNWATCH, 0);
      return;
    }
  /* Hand the ball back, and wait for it on this end again. */
  iops_iops_update_event (owner->iops, IOPS_IO_EVENT (event), IOPS_EVACTION_WATCH,
                          IOPS_READ_EVENT);
  if (write (pair->fds[side], &byte, 1) != 1)
    owner->failed = TRUE;
}

static void
timer_hook (TestTimerEvent *timer,
            gpointer        data)
{
  Owner *owner = data;

  if (timer->n_fired == owner->fires)
    {
      owner->timers_done++;
      return;
    }
  /* 0–300 µs: short enough to overlap the ping-pong all the time. */
  iops_iops_update_timer (owner->iops, IOPS_TIMER_EVENT (timer), IOPS_EVACTION_WATCH,
                          g_random_int_range (0, 300));
}

static gboolean
owner_work_done (Owner *owner)
{
  return owner->pairs_done == N_PAIRS && owner->timers_done == N_TIMERS;
}

static gpointer
owner_thread (gpointer data)
{
  Owner *owner = data;
  gint64 deadline = g_get_monotonic_time () + DEADLINE_S * G_USEC_PER_SEC;

  g_main_context_push_thread_default (owner->context);

  for (guint i = 0; i < N_PAIRS; i++)
    {
      Pair *pair = &owner->pairs[i];

      test_socketpair (pair->fds);
      for (guint s = 0; s < 2; s++)
        {
          pair->ends[s] = test_io_event_new (pair->fds[s]);
          pair->ends[s]->hook = pair_hook;
          pair->ends[s]->hook_data = owner;
          iops_iops_update_event (owner->iops, IOPS_IO_EVENT (pair->ends[s]),
                                  IOPS_EVACTION_WATCH, IOPS_READ_EVENT);
        }
      g_assert_cmpint (write (pair->fds[0], "b", 1), ==, 1);
    }
  for (guint i = 0; i < N_TIMERS; i++)
    {
      owner->timers[i] = test_timer_event_new ();
      owner->timers[i]->hook = timer_hook;
      owner->timers[i]->hook_data = owner;
      iops_iops_update_timer (owner->iops, IOPS_TIMER_EVENT (owner->timers[i]),
                              IOPS_EVACTION_WATCH, 0);
    }

  /* A stop from a hammer ends one level early; go on until the work is
   * done and nothing is armed, which ends the last level by itself. */
  while (!owner_work_done (owner) && !owner->failed &&
         g_get_monotonic_time () < deadline)
    {
      owner->starts++;
      iops_iops_start_watching (owner->iops);
    }

  for (guint i = 0; i < N_PAIRS; i++)
    for (guint s = 0; s < 2; s++)
      {
        iops_iops_update_event (owner->iops, IOPS_IO_EVENT (owner->pairs[i].ends[s]),
                                IOPS_EVACTION_CLEANUP, 0);
        g_clear_object (&owner->pairs[i].ends[s]);
        close (owner->pairs[i].fds[s]);
      }
  for (guint i = 0; i < N_TIMERS; i++)
    {
      iops_iops_update_timer (owner->iops, IOPS_TIMER_EVENT (owner->timers[i]),
                              IOPS_EVACTION_CLEANUP, 0);
      g_clear_object (&owner->timers[i]);
    }

  g_main_context_pop_thread_default (owner->context);
  g_atomic_int_set (&owner->finished, TRUE);
  return NULL;
}

typedef struct
{
  Run  *run;
  guint index;
} Hammer;

static gpointer
hammer_thread (gpointer data)
{
  Hammer *hammer = data;
  Run *run = hammer->run;
  GRand *rand = g_rand_new ();

  while (!g_atomic_int_get (&run->stop_hammers))
    {
      Owner *owner = &run->owners[g_rand_int_range (rand, 0, N_OWNERS)];

      iops_iops_stop_watching (owner->iops);
      run->stops[hammer->index]++;
      /* Valgrind runs one thread at a time: a spinning hammer would starve
       * the owners. */
      if (RUNNING_ON_VALGRIND)
        g_thread_yield ();
    }
  g_rand_free (rand);
  return NULL;
}

static void
test_threads_hammer (gconstpointer data)
{
  Run run = { 0 };
  Hammer hammers[N_HAMMERS];
  guint rounds = g_test_slow () ? 400000 : RUNNING_ON_VALGRIND ? 2000 : 20000;
  guint fires = g_test_slow () ? 100000 : RUNNING_ON_VALGRIND ? 500 : 5000;
  guint starts = 0, stops = 0;
  GType types[] = { IOPS_TYPE_GLIB_IOPS, TEST_TYPE_IO_EVENT, TEST_TYPE_TIMER_EVENT };

  /* Class initialisation is GLib's business, and its locking is invisible
   * to ThreadSanitizer (GLib is not instrumented): do it before the
   * threads exist. */
  for (guint i = 0; i < G_N_ELEMENTS (types); i++)
    g_type_class_unref (g_type_class_ref (types[i]));

  for (guint i = 0; i < N_OWNERS; i++)
    {
      Owner *owner = &run.owners[i];

      owner->index = i;
      owner->context = g_main_context_new ();
      owner->glib_iops = iops_glib_iops_new (owner->context);
      owner->iops = IOPS_IOPS (owner->glib_iops);
      /* Both modes under the same hammering. */
      iops_glib_iops_set_persistent (owner->glib_iops, i % 2);
      owner->rounds = rounds;
      owner->fires = fires;
    }

  /* Hammers start first, so they also hit IOPS that run nothing yet. */
  for (guint i = 0; i < N_HAMMERS; i++)
    {
      hammers[i] = (Hammer) { &run, i };
      run.hammers[i] = g_thread_new ("hammer", hammer_thread, &hammers[i]);
    }
  for (guint i = 0; i < N_OWNERS; i++)
    run.owners[i].thread = g_thread_new ("owner", owner_thread, &run.owners[i]);

  for (guint i = 0; i < N_OWNERS; i++)
    g_thread_join (run.owners[i].thread);
  g_atomic_int_set (&run.stop_hammers, TRUE);
  for (guint i = 0; i < N_HAMMERS; i++)
    {
      g_thread_join (run.hammers[i]);
      stops += run.stops[i];
    }

  for (guint i = 0; i < N_OWNERS; i++)
    {
      Owner *owner = &run.owners[i];

      g_assert_false (owner->failed);
      g_assert_cmpuint (owner->pairs_done, ==, N_PAIRS);
      g_assert_cmpuint (owner->timers_done, ==, N_TIMERS);
      for (guint p = 0; p < N_PAIRS; p++)
        g_assert_cmpuint (owner->pairs[p].rounds, ==, rounds);
      starts += owner->starts;

      g_assert_finalize_object (owner->glib_iops);
      /* Nothing left on the context. */
      g_assert_false (g_main_context_iteration (owner->context, FALSE));
      g_main_context_unref (owner->context);
    }
  g_test_message ("%u start_watching() calls, %u stop_watching() calls", starts, stops);
}

/* -- events finalized on other threads ----------------------------------- */

/* Rule 6 lets a consumer drop its reference at any time, and rule 10
 * restricts only update_*: a garbage collector's thread may drop the last
 * reference to an event. Bug: dropping the last reference to a fired,
 * disarmed event from a worker ran the IOPS's bookkeeping there, unlocked
 * (lost deliveries on epoll, a corrupt watch list on gsource). */

#define N_HANDED    64
#define N_DROPPERS  4
#define N_CHAIN     2000   /* firings of the timer that keeps the loop busy */

/* The hand-over between the context's thread and the droppers. pthread
 * primitives, which ThreadSanitizer sees through, unlike GCond. */
typedef struct
{
  pthread_mutex_t lock;
  pthread_cond_t  cond;
  GPtrArray      *queue;     /* events whose reference is handed over */
  gboolean        quit;
  int             dropped;   /* atomic */
} Handover;

typedef struct
{
  IopsIOPS     *iops;
  Handover     *handover;
  TestIOEvent  *events[N_HANDED];
  int           fds[N_HANDED][2];
  GWeakRef      alive[N_HANDED];
  guint         chain_fired;
} Handing;

static gpointer
dropper_thread (gpointer data)
{
  Handover *h = data;

  for (;;)
    {
      gpointer event = NULL;

      pthread_mutex_lock (&h->lock);
      while (h->queue->len == 0 && !h->quit)
        pthread_cond_wait (&h->cond, &h->lock);
      if (h->queue->len > 0)
        event = g_ptr_array_steal_index_fast (h->queue, h->queue->len - 1);
      pthread_mutex_unlock (&h->lock);
      if (event == NULL)
        return NULL;
      g_object_unref (event);
      g_atomic_int_inc (&h->dropped);
    }
}

static void
handover_push (Handover *h,
               gpointer  event)
{
  pthread_mutex_lock (&h->lock);
  g_ptr_array_add (h->queue, event);
  pthread_cond_signal (&h->cond);
  pthread_mutex_unlock (&h->lock);
}

static guint
handed_index (Handing     *handing,
              TestIOEvent *event)
{
  for (guint i = 0; i < N_HANDED; i++)
    if (handing->events[i] == event)
      return i;
  g_assert_not_reached ();
}

/* Fired once, not re-armed: half are cleaned up first (the dropper's
 * reference is then the last), half stay registered, disarmed. */
static void
hand_over_hook (TestIOEvent    *event,
                IopsEventFlags  ready,
                gpointer        data)
{
  Handing *handing = data;
  guint i = handed_index (handing, event);
  char byte;

  g_assert_cmpint (read (handing->fds[i][0], &byte, 1), ==, 1);
  if (i % 2 == 0)
    iops_iops_update_event (handing->iops, IOPS_IO_EVENT (event), IOPS_EVACTION_CLEANUP, 0);
  handover_push (handing->handover, event);  /* the test's reference */
}

static void
chain_hook (TestTimerEvent *timer,
            gpointer        data)
{
  Handing *handing = data;

  if (++handing->chain_fired < N_CHAIN)
    iops_iops_update_timer (handing->iops, IOPS_TIMER_EVENT (timer), IOPS_EVACTION_WATCH,
                            g_random_int_range (0, 200));
}

static void
test_threads_finalize_elsewhere (gconstpointer data)
{
  Handover h = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, g_ptr_array_new (), FALSE, 0 };
  Handing handing = { 0 };
  GMainContext *context = g_main_context_new ();
  IopsGLibIOPS *glib_iops = iops_glib_iops_new (context);
  g_autoptr(TestTimerEvent) chain = test_timer_event_new ();
  GThread *droppers[N_DROPPERS];
  gboolean expired = FALSE;
  GSource *deadline;

  g_type_class_unref (g_type_class_ref (TEST_TYPE_IO_EVENT));
  handing.iops = IOPS_IOPS (glib_iops);
  handing.handover = &h;
  for (guint i = 0; i < N_DROPPERS; i++)
    droppers[i] = g_thread_new ("dropper", dropper_thread, &h);

  /* The loop stays busy with a timer chain all along. */
  chain->hook = chain_hook;
  chain->hook_data = &handing;
  iops_iops_update_timer (handing.iops, IOPS_TIMER_EVENT (chain), IOPS_EVACTION_WATCH, 0);

  for (guint i = 0; i < N_HANDED; i++)
    {
      test_socketpair (handing.fds[i]);
      handing.events[i] = test_io_event_new (handing.fds[i][0]);
      handing.events[i]->hook = hand_over_hook;
      handing.events[i]->hook_data = &handing;
      g_weak_ref_init (&handing.alive[i], handing.events[i]);
      iops_iops_update_event (handing.iops, IOPS_IO_EVENT (handing.events[i]),
                              IOPS_EVACTION_WATCH, IOPS_READ_EVENT);
      g_assert_cmpint (write (handing.fds[i][1], "x", 1), ==, 1);
    }

  deadline = g_timeout_source_new_seconds (DEADLINE_S);
  g_source_set_callback (deadline, test_set_flag, &expired, NULL);
  g_source_attach (deadline, context);
  while ((g_atomic_int_get (&h.dropped) < N_HANDED || handing.chain_fired < N_CHAIN) && !expired)
    g_main_context_iteration (context, TRUE);
  g_source_destroy (deadline);
  g_source_unref (deadline);
  g_assert_false (expired);
  g_assert_cmpuint (handing.chain_fired, ==, N_CHAIN);

  for (guint i = 0; i < N_HANDED; i++)
    {
      GObject *event = g_weak_ref_get (&handing.alive[i]);

      if (i % 2 == 0)
        {
          /* Cleaned up, then finalized by a dropper. */
          g_assert_null (event);
          continue;
        }
      /* Still registered: the IOPS's reference kept it alive. */
      g_assert_nonnull (event);
      g_assert_cmpuint (test_io_event_total (TEST_IO_EVENT (event)), ==, 1);
      iops_iops_update_event (handing.iops, IOPS_IO_EVENT (event), IOPS_EVACTION_CLEANUP, 0);
      g_assert_finalize_object (event);
    }

  pthread_mutex_lock (&h.lock);
  h.quit = TRUE;
  pthread_cond_broadcast (&h.cond);
  pthread_mutex_unlock (&h.lock);
  for (guint i = 0; i < N_DROPPERS; i++)
    g_thread_join (droppers[i]);
  for (guint i = 0; i < N_HANDED; i++)
    {
      g_weak_ref_clear (&handing.alive[i]);
      test_close_pair (handing.fds[i]);
    }
  g_ptr_array_unref (h.queue);

  iops_iops_update_timer (handing.iops, IOPS_TIMER_EVENT (chain), IOPS_EVACTION_CLEANUP, 0);
  g_assert_finalize_object (glib_iops);
  g_assert_false (g_main_context_iteration (context, FALSE));
  g_main_context_unref (context);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_data_func ("/iops/soak/threads/hammer-stop-watching", NULL, test_threads_hammer);
  g_test_add_data_func ("/iops/soak/threads/finalize-elsewhere", NULL, test_threads_finalize_elsewhere);

  return g_test_run ();
}

/* iops-test-util.h — shared helpers of the C tests
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Everything two test files would otherwise write twice lives here: the
 * counting event types, the fixture, bounded waits (never a sleep: a
 * timeout source bounds every wait), the quiet-loop check, and fd helpers.
 */
#pragma once

#include <iops-glib.h>

G_BEGIN_DECLS

/* Generous: only a broken library ever waits this long. */
#define TEST_DEADLINE_MS 5000

/* Over this much idle iterating a loop that sleeps in poll () runs a
 * handful of iterations; one that spins runs thousands. */
#define TEST_QUIET_MS             200
#define TEST_MAX_QUIET_ITERATIONS 20

/* The soft fd limit test_init () asks for: some tests watch a thousand
 * socketpairs. */
#define TEST_FD_LIMIT 4096

/* g_test_init (), with assertions that fail the test case instead of
 * aborting the program (every failing case reports, not only the first),
 * and the soft fd limit raised to TEST_FD_LIMIT where the hard one allows. */
void test_init (int    *argc,
                char ***argv);

/* Raises the soft fd limit to @wanted where the hard limit allows; returns
 * the soft limit in force afterwards. */
guint test_raise_fd_limit (guint wanted);

/* -- an IopsIOEvent that counts its callbacks and can run a hook in them -- */

#define TEST_TYPE_IO_EVENT (test_io_event_get_type ())
G_DECLARE_FINAL_TYPE (TestIOEvent, test_io_event, TEST, IO_EVENT, IopsIOEvent)

typedef void (*TestIOHook) (TestIOEvent *event, IopsEventFlags ready, gpointer data);

struct _TestIOEvent
{
  IopsIOEvent    parent_instance;
  guint          n_r, n_w, n_rw;     /* calls of ready_r, ready_w, ready_rw */
  IopsEventFlags last;               /* what the latest call reported */
  TestIOHook     hook;
  gpointer       hook_data;
};

TestIOEvent *test_io_event_new         (int          fd);
/* One whose callbacks set *@flag, which starts FALSE. */
TestIOEvent *test_io_event_new_flagged (int          fd,
                                        gboolean    *flag);
guint        test_io_event_total       (TestIOEvent *self);
int          test_io_event_fd          (TestIOEvent *self);

/* Asserts how often each of ready_r, ready_w and ready_rw was called. */
void         test_assert_calls         (TestIOEvent *event,
                                        guint        n_r,
                                        guint        n_w,
                                        guint        n_rw);

/* -- an IopsTimerEvent that records when it fired ------------------------ */

#define TEST_TYPE_TIMER_EVENT (test_timer_event_get_type ())
G_DECLARE_FINAL_TYPE (TestTimerEvent, test_timer_event, TEST, TIMER_EVENT, IopsTimerEvent)

typedef void (*TestTimerHook) (TestTimerEvent *timer, gpointer data);

struct _TestTimerEvent
{
  IopsTimerEvent parent_instance;
  guint          n_fired;
  int            last_flags;         /* -1 until it fired: "0" is observed */
  gint64         fired_at;           /* monotonic µs of the latest call */
  TestTimerHook  hook;
  gpointer       hook_data;
};

TestTimerEvent *test_timer_event_new         (void);
/* One whose callback sets *@flag, which starts FALSE. */
TestTimerEvent *test_timer_event_new_flagged (gboolean *flag);

/* -- an IopsIOEvent whose fd comes from an overridden fileno () ----------- */

#define TEST_TYPE_FILENO_EVENT (test_fileno_event_get_type ())
G_DECLARE_FINAL_TYPE (TestFilenoEvent, test_fileno_event, TEST, FILENO_EVENT, IopsIOEvent)

typedef void (*TestFilenoHook) (TestFilenoEvent *event, gpointer data);

struct _TestFilenoEvent
{
  IopsIOEvent    parent_instance;
  int            fd;                 /* what fileno () returns; the fd property stays -1 */
  guint          n_fileno;
  /* Run once, from inside the next fileno (), then cleared: a binding's
   * fileno may call back into the IOPS. */
  TestFilenoHook reenter;
  gpointer       reenter_data;
};

TestFilenoEvent *test_fileno_event_new (int fd);

/* -- bounded waits -------------------------------------------------------- */

typedef gboolean (*TestDoneFunc) (gconstpointer data);

/* Iterates @context, one iteration at a time, until @done (@data) is TRUE
 * or @timeout_ms passed; returns what @done says then. Stopping as soon as
 * it is true keeps counts exact, even for a level-triggered watch. */
gboolean test_iterate_until_done  (GMainContext   *context,
                                   TestDoneFunc    done,
                                   gconstpointer   data,
                                   guint           timeout_ms);
/* The same until *@flag is TRUE. */
gboolean test_iterate_until       (GMainContext   *context,
                                   const gboolean *flag,
                                   guint           timeout_ms);
/* The same until *@counter >= @n. */
gboolean test_iterate_until_count (GMainContext   *context,
                                   const guint    *counter,
                                   guint           n,
                                   guint           timeout_ms);
/* Iterates until @event had at least @n callbacks; fails the test (and
 * returns) at TEST_DEADLINE_MS. */
void     test_wait_calls          (GMainContext   *context,
                                   TestIOEvent    *event,
                                   guint           n);

/* Iterates @context for @ms milliseconds of wall time; returns how many
 * iterations dispatched something. The iteration that dispatched the
 * deadline of this wait itself is not counted: a quiet loop reads 0. */
guint    test_iterate_for         (GMainContext   *context,
                                   guint           ms);
/* The same, counting every iteration, dispatching or not, so that a loop
 * woken in vain counts too. */
guint    test_count_iterations    (GMainContext   *context,
                                   guint           ms);
/* Iterates for TEST_QUIET_MS and asserts the loop slept: fewer than
 * TEST_MAX_QUIET_ITERATIONS iterations of any kind. */
void     test_assert_quiet        (GMainContext   *context);

/* Runs start_watching on @iops; returns TRUE if it returned by itself,
 * FALSE if it had to be stopped after TEST_DEADLINE_MS. @iops may be
 * dropped while it runs. */
gboolean test_start_watching_bounded (GMainContext *context,
                                      IopsIOPS     *iops);

/* Arms a timer @usecs from now on @iops and iterates until it fired.
 * Timers fire in deadline order, so every timer due earlier has had its
 * chance by then, and an fd that was ready has been polled. */
void     test_run_past            (GMainContext   *context,
                                   IopsIOPS       *iops,
                                   gint64          usecs);

/* -- a fresh IOPS on a fresh context, for g_test_add -------------------- */

typedef struct
{
  GMainContext *context;
  IopsGLibIOPS *glib_iops;
  IopsIOPS     *iops;      /* glib_iops, as the interface */
  gpointer      weak[8];   /* objects that must be gone once the IOPS is */
  guint         n_weak;
} TestFixture;

typedef void (*TestFixtureFunc) (TestFixture *f, gconstpointer data);

/* Test data of test_fixture_setup_mode (): the IOPS's persistent mode. */
#define TEST_ONE_SHOT   GINT_TO_POINTER (FALSE)
#define TEST_PERSISTENT GINT_TO_POINTER (TRUE)

/* A new context and an IopsGLibIOPS on it; @data is not used. */
void test_fixture_setup           (TestFixture   *f,
                                   gconstpointer  data);
/* The same, persistent mode GPOINTER_TO_INT (@data). */
void test_fixture_setup_mode      (TestFixture   *f,
                                   gconstpointer  data);

/* Drops the IOPS if a test left one, drains the context and frees it. */
void test_fixture_teardown        (TestFixture   *f,
                                   gconstpointer  data);
/* Asserts the IOPS (if a test left one) is finalized by dropping it, then
 * drains the context and frees it. */
void test_fixture_teardown_finalize (TestFixture   *f,
                                     gconstpointer  data);
/* Asserts the IOPS (if a test left one) is finalized by dropping it, that
 * every object of test_fixture_track() went with it, and that nothing
 * the IOPS attached to the context outlives it. */
void test_fixture_teardown_quiet  (TestFixture   *f,
                                   gconstpointer  data);

/* Checks at test_fixture_teardown_quiet() that @object was finalized. */
void test_fixture_track           (TestFixture   *f,
                                   gpointer       object);

/* Adds @path with test_fixture_setup_mode () for @mode (TEST_ONE_SHOT or
 * TEST_PERSISTENT) and test_fixture_teardown_quiet (). */
void test_add_mode                (const char      *path,
                                   gconstpointer    mode,
                                   TestFixtureFunc  func);
/* Adds @path in one-shot mode and "@path/persistent" in persistent mode:
 * a rule that holds in both. */
void test_add_both_modes          (const char      *path,
                                   TestFixtureFunc  func);

/* -- update_event / update_timer, spelled short ------------------------- */

void test_update        (IopsIOPS       *iops,
                         gpointer        event,
                         IopsEvAction    action,
                         IopsEventFlags  flags);
void test_watch         (IopsIOPS       *iops,
                         gpointer        event,
                         IopsEventFlags  flags);
void test_unwatch       (IopsIOPS       *iops,
                         gpointer        event);
void test_cleanup       (IopsIOPS       *iops,
                         gpointer        event);
void test_arm           (IopsIOPS       *iops,
                         gpointer        timer,
                         gint64          usecs);
void test_unwatch_timer (IopsIOPS       *iops,
                         gpointer        timer);
void test_cleanup_timer (IopsIOPS       *iops,
                         gpointer        timer);

/* -- small callbacks ---------------------------------------------------- */

/* A GSourceFunc: sets the gboolean at @data, once. */
gboolean test_set_flag        (gpointer data);
/* A TestIOHook and a TestTimerHook that set the gboolean at @data. */
void     test_io_flag_hook    (TestIOEvent    *event,
                               IopsEventFlags  ready,
                               gpointer        data);
void     test_timer_flag_hook (TestTimerEvent *timer,
                               gpointer        data);
/* A TestIOHook that reads everything the event's fd has. */
void     test_drain_hook      (TestIOEvent    *event,
                               IopsEventFlags  ready,
                               gpointer        data);

/* An idle source of @priority on @context calling @func (@data); returns
 * a reference the caller drops. */
GSource *test_add_idle        (GMainContext   *context,
                               int             priority,
                               GSourceFunc     func,
                               gpointer        data);

/* The sources attached to @context. */
guint    test_count_sources   (GMainContext   *context);
/* The fds this process has open. */
guint    test_count_open_fds  (void);

/* -- fds ------------------------------------------------------------------ */

/* Both ends of a socketpair, for arrays of them. */
typedef int TestPair[2];

/* A non-blocking socketpair. */
void     test_socketpair     (int fds[2]);
/* A non-blocking socketpair whose first end is on fd number @number (which
 * must not be open): a new socket under an old number, as a reconnect
 * gets. */
void     test_socketpair_at  (int number,
                              int fds[2]);
/* Writes one byte, asserting it went. */
void     test_write_byte     (int fd);
/* Closes both ends. */
void     test_close_pair     (int fds[2]);
/* Reads everything @fd has; returns the number of bytes. */
gsize    test_drain          (int fd);
/* Writes until the send buffer is full, so that @fd polls as not writable. */
void     test_fill           (int fd);
/* An fd number that no open file has. High, so that nothing the test
 * opens afterwards takes it. */
int      test_closed_fd      (void);
/* The lowest fd number no open file has: the one the next fd anyone
 * creates takes. */
int      test_lowest_free_fd (void);

/* -- a full set of hot watches -------------------------------------------- */

/* As many as the epoll backend keeps as direct GPollFDs (its HOT_LIMIT is
 * 256), so that further watches stay in the epoll set. */
#define TEST_HOT_FILL 256

/* TEST_HOT_FILL socketpairs, each watched for READ, delivered once and
 * re-armed from its own callback: on the epoll backend that makes every
 * one of them a direct ("hot") GPollFD, which fills the hot set. The other
 * backend runs the same calls. */
typedef struct
{
  TestFixture *f;
  int          fds[TEST_HOT_FILL][2];
  TestIOEvent *events[TEST_HOT_FILL];   /* a test may clean one up and clear it */
  guint        n_delivered;
} TestHotFill;

void test_hot_fill_setup    (TestHotFill *fill,
                             TestFixture *f);
void test_hot_fill_teardown (TestHotFill *fill);

G_END_DECLS

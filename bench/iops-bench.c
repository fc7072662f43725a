/* iops-bench.c — one benchmark run: one system, one workload, one cell
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Prints one JSON line with the figures and exits 0, or exits 1 when the
 * workload's own result is wrong (a lost or duplicated token, a delivery to
 * an idle fd, a spurious wakeup, a cancelled timer that fired, an early
 * timer where the system promises none), 3 when the watchdog saw no
 * progress (a lost wakeup), 77 when this machine cannot run the cell.
 * bench/run.py runs it once per (system, cell, repetition), each in a fresh
 * process, so heap and RSS effects never leak from one run to the next.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <glib.h>

#include "bench.h"

#define EXIT_CHECK_FAILED 1
#define EXIT_USAGE        2
#define EXIT_WATCHDOG     3
#define EXIT_SKIPPED      77

/* fds the process needs besides the workload's: stdio, loop internals. */
#define SPARE_FDS 64

/* The systems of this executable. libev exports libevent's event_*()
 * names too, so libev gets an executable of its own (BENCH_CORE unset). */
static const BenchSystem *const all_systems[] = {
#ifdef BENCH_CORE
  &bench_sys_iops_oneshot,
  &bench_sys_iops_persistent,
  &bench_sys_gsource,
  &bench_sys_fdadd,
  &bench_sys_epoll,
#endif
#ifdef HAVE_LIBEV
  &bench_sys_libev,
  &bench_sys_libev_cached,
#endif
#ifdef HAVE_LIBEVENT
  &bench_sys_libevent,
#endif
#ifdef HAVE_LIBUV
  &bench_sys_libuv,
#endif
#ifdef HAVE_LIBVERTO
  &bench_sys_verto,
#endif
};

/* -- options ------------------------------------------------------------ */

static gboolean opt_list;
static char    *opt_system;
static char    *opt_workload;
static int      opt_pairs = 1;
static int      opt_idle;
static int      opt_timers = 1;
static int      opt_delay;
static int      opt_events = 10000;
static double   opt_seconds = 0.2;
static double   opt_warmup = 0.05;
static gint64   opt_count;
static int      opt_watchdog = 60;
static gint64   opt_seed = 1;

static const GOptionEntry option_entries[] = {
  { "list", 0, 0, G_OPTION_ARG_NONE, &opt_list, "List the systems of this executable", NULL },
  { "system", 's', 0, G_OPTION_ARG_STRING, &opt_system, "System to run", "NAME" },
  { "workload", 'w', 0, G_OPTION_ARG_STRING, &opt_workload,
    "pingpong, write, churn, chain, memory-io or memory-timer", "NAME" },
  { "pairs", 0, 0, G_OPTION_ARG_INT, &opt_pairs, "pingpong: socketpairs with a token", "P" },
  { "idle", 0, 0, G_OPTION_ARG_INT, &opt_idle, "pingpong: watched fds never ready", "N" },
  { "timers", 0, 0, G_OPTION_ARG_INT, &opt_timers, "churn: timers armed and cancelled", "K" },
  { "delay", 0, 0, G_OPTION_ARG_INT, &opt_delay, "chain: timer delay in µs", "US" },
  { "events", 0, 0, G_OPTION_ARG_INT, &opt_events, "memory-*: armed events", "E" },
  { "seconds", 0, 0, G_OPTION_ARG_DOUBLE, &opt_seconds, "Measure at most this long", "S" },
  { "warmup", 0, 0, G_OPTION_ARG_DOUBLE, &opt_warmup, "Run this long before measuring", "S" },
  { "count", 0, 0, G_OPTION_ARG_INT64, &opt_count, "Measure at most this many operations (0: no bound)", "C" },
  { "watchdog", 0, 0, G_OPTION_ARG_INT, &opt_watchdog, "Fail after this many seconds", "S" },
  { "seed", 0, 0, G_OPTION_ARG_INT64, &opt_seed, "Seed of the random timer delays", "X" },
  G_OPTION_ENTRY_NULL
};

/* -- helpers ------------------------------------------------------------ */

static const BenchSystem *sys;
static BenchLoop         *loop;

static G_GNUC_PRINTF (1, 2) G_GNUC_NORETURN void
fail (const char *format,
      ...)
{
  va_list args;

  fprintf (stderr, "iops-bench: %s/%s: check failed: ", opt_system, opt_workload);
  va_start (args, format);
  vfprintf (stderr, format, args);
  va_end (args);
  fputc ('\n', stderr);
  exit (EXIT_CHECK_FAILED);
}

static G_GNUC_PRINTF (1, 2) G_GNUC_NORETURN void
skip (const char *format,
      ...)
{
  va_list args;
  g_autofree char *reason = NULL;

  va_start (args, format);
  reason = g_strdup_vprintf (format, args);
  va_end (args);
  printf ("{\"system\": \"%s\", \"workload\": \"%s\", \"skipped\": \"%s\"}\n",
          opt_system, opt_workload, reason);
  exit (EXIT_SKIPPED);
}

static void
on_watchdog (int signum)
{
  static const char message[] = "iops-bench: watchdog: the run did not finish (a lost wakeup?)\n";
  G_GNUC_UNUSED ssize_t written = write (STDERR_FILENO, message, sizeof message - 1);

  _exit (EXIT_WATCHDOG);
}

static int64_t
now_ns (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Raises the soft fd limit to what the cell needs, or skips the cell. */
static void
need_fds (int n)
{
  struct rlimit limit;
  rlim_t want = (rlim_t) n + SPARE_FDS;

  getrlimit (RLIMIT_NOFILE, &limit);
  if (limit.rlim_cur >= want)
    return;
  limit.rlim_cur = want;
  if (limit.rlim_max < want)
    {
      limit.rlim_max = want;
      if (setrlimit (RLIMIT_NOFILE, &limit) == 0)
        return;
      getrlimit (RLIMIT_NOFILE, &limit);
      skip ("needs %lu fds, RLIMIT_NOFILE hard limit is %lu",
            (unsigned long) want, (unsigned long) limit.rlim_max);
    }
  if (setrlimit (RLIMIT_NOFILE, &limit) < 0)
    skip ("cannot raise RLIMIT_NOFILE to %lu", (unsigned long) want);
}

static void
make_socketpair (int fds[2])
{
  if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) < 0)
    fail ("socketpair: %s", g_strerror (errno));
}

/* Both ends of socketpairs nobody writes to: never ready, and kept open
 * so that neither end hangs up. Makes @n rounded up to even; the caller
 * watches @n of them and closes them all with close_idle_fds(). */
static int *
make_idle_fds (int n)
{
  int *fds = g_new (int, n + 1);

  for (int i = 0; i < n; i += 2)
    make_socketpair (fds + i);
  return fds;
}

static void
close_idle_fds (int *fds,
                int  n)
{
  for (int i = 0; i < n + n % 2; i++)
    close (fds[i]);
  g_free (fds);
}

static long
proc_status_kib (const char *field)
{
  g_autofree char *status = NULL;
  const char *line;

  if (!g_file_get_contents ("/proc/self/status", &status, NULL, NULL))
    return -1;
  line = strstr (status, field);
  return line != NULL ? strtol (line + strlen (field) + 1, NULL, 10) : -1;
}

static uint64_t
random_next (uint64_t *state)
{
  /* xorshift64*: reproducible delays without a libc PRNG's hidden state. */
  *state ^= *state >> 12;
  *state ^= *state << 25;
  *state ^= *state >> 27;
  return *state * 0x2545F4914F6CDD1DULL;
}

/* -- measuring ---------------------------------------------------------- */

typedef enum { WARMUP, MEASURE, DONE } Phase;

/* Counts operations; a measurement ends after opt_seconds or opt_count
 * operations, whichever comes first. The clock is read every 32
 * operations at most, so that reading it costs nothing measurable. */
typedef struct
{
  Phase    phase;
  int64_t  started, t0, t1;
  uint64_t n, unchecked;
} Meter;

static Meter meter;

static void
meter_start (void)
{
  meter = (Meter) { .phase = opt_warmup > 0 ? WARMUP : MEASURE };
  meter.started = meter.t0 = now_ns ();
}

static bool
meter_stop (void)
{
  meter.t1 = now_ns ();
  meter.phase = DONE;
  return false;
}

/* Records @units operations; returns whether measuring goes on. */
static bool
meter_tick (uint64_t units)
{
  int64_t now;

  switch (meter.phase)
    {
    case WARMUP:
      now = now_ns ();
      if (now - meter.started >= (int64_t) (opt_warmup * 1e9))
        {
          meter.phase = MEASURE;
          meter.t0 = now;
        }
      return true;

    case MEASURE:
      meter.n += units;
      meter.unchecked += units;
      if (opt_count > 0 && meter.n >= (uint64_t) opt_count)
        return meter_stop ();
      if (meter.unchecked < 32)
        return true;
      meter.unchecked = 0;
      if (now_ns () - meter.t0 < (int64_t) (opt_seconds * 1e9))
        return true;
      return meter_stop ();

    case DONE:
    default:
      return false;
    }
}

static double
meter_rate (void)
{
  return meter.t1 > meter.t0 ? meter.n / ((meter.t1 - meter.t0) / 1e9) : 0.;
}

static void
print_result (const char *params,
              const char *unit,
              double      value,
              const char *extra)
{
  const char *backend = sys->backend != NULL ? sys->backend (loop) : "";

  printf ("{\"system\": \"%s\", \"backend\": \"%s\", \"workload\": \"%s\", \"params\": {%s}, "
          "\"value\": %.6g, \"unit\": \"%s\", \"measured\": %" G_GUINT64_FORMAT
          ", \"seconds\": %.6f%s%s}\n",
          opt_system, backend, opt_workload, params, value, unit,
          meter.n, (meter.t1 - meter.t0) / 1e9, extra != NULL ? ", " : "", extra != NULL ? extra : "");
}

/* -- ping-pong ---------------------------------------------------------- */

typedef struct
{
  BenchIO  *io;
  int       fd;
  bool      idle;
  uint64_t  reads;
} End;

static struct
{
  End     *ends;      /* 2 per pair, then the idle ones */
  int      n_ends;
  int      parked;    /* tokens that stopped moving once measuring ended */
} pp;

static void
idle_ready (BenchIO  *io,
            unsigned  ready,
            void     *data)
{
  const int *fd = data;

  fail ("delivery to idle fd %d (ready %u)", *fd, ready);
}

static void
pingpong_ready (BenchIO  *io,
                unsigned  ready,
                void     *data)
{
  End *end = data;
  char token[8];
  ssize_t n;

  if (ready != BENCH_READ)
    fail ("fd %d reported ready %u, not READ", end->fd, ready);
  n = read (end->fd, token, sizeof token);
  if (n != 1)
    fail ("fd %d: read %zd bytes (%s), not the one token", end->fd, n,
          n < 0 ? g_strerror (errno) : "more than one token");
  end->reads++;

  if (!meter_tick (1))
    {
      /* The token parks here; the loop ends when every token has. */
      sys->io_disarm (io);
      if (++pp.parked == opt_pairs)
        sys->stop (loop);
      return;
    }

  /* Back to the peer end, which is watched too. */
  if (write (end->fd, "t", 1) != 1)
    fail ("fd %d: write: %s", end->fd, g_strerror (errno));
  if (!sys->persistent)
    sys->io_arm (io, BENCH_READ);
}

static void
pingpong_verify (void)
{
  uint64_t total = 0;

  if (pp.parked != opt_pairs)
    fail ("%d tokens parked, expected %d", pp.parked, opt_pairs);
  for (int i = 0; i < pp.n_ends; i++)
    {
      End *end = &pp.ends[i];
      char byte;

      if (read (end->fd, &byte, 1) != -1 || errno != EAGAIN)
        fail ("fd %d still holds data after the run: a token was duplicated", end->fd);
      total += end->reads;
    }
  for (int p = 0; p < opt_pairs; p++)
    {
      /* The token starts at the second end of its pair and alternates. */
      uint64_t first = pp.ends[2 * p].reads, second = pp.ends[2 * p + 1].reads;

      if (second != first && second != first + 1)
        fail ("pair %d: %" G_GUINT64_FORMAT " and %" G_GUINT64_FORMAT
              " deliveries, the token cannot have alternated", p, first, second);
    }
  if (total < meter.n)
    fail ("%" G_GUINT64_FORMAT " deliveries counted, %" G_GUINT64_FORMAT " measured", total, meter.n);
}

static void
run_pingpong (void)
{
  int n_pair_fds = 2 * opt_pairs;
  int *idle_fds;
  g_autofree char *params = NULL;
  g_autofree char *hwm = NULL;

  if (opt_pairs < 1 || opt_idle < 0)
    skip ("--pairs must be >= 1 and --idle >= 0");
  need_fds (n_pair_fds + opt_idle + 1);

  pp.n_ends = n_pair_fds + opt_idle;
  pp.ends = g_new0 (End, pp.n_ends);
  for (int p = 0; p < opt_pairs; p++)
    {
      int fds[2];

      make_socketpair (fds);
      pp.ends[2 * p].fd = fds[0];
      pp.ends[2 * p + 1].fd = fds[1];
    }
  idle_fds = make_idle_fds (opt_idle);
  for (int i = 0; i < opt_idle; i++)
    {
      pp.ends[n_pair_fds + i].fd = idle_fds[i];
      pp.ends[n_pair_fds + i].idle = true;
    }

  for (int i = 0; i < pp.n_ends; i++)
    {
      End *end = &pp.ends[i];

      end->io = end->idle ? sys->io_new (loop, end->fd, idle_ready, &end->fd)
                          : sys->io_new (loop, end->fd, pingpong_ready, end);
      sys->io_arm (end->io, BENCH_READ);
    }
  for (int p = 0; p < opt_pairs; p++)
    if (write (pp.ends[2 * p].fd, "t", 1) != 1)
      fail ("write: %s", g_strerror (errno));

  meter_start ();
  sys->run (loop);
  pingpong_verify ();

  params = g_strdup_printf ("\"pairs\": %d, \"idle\": %d", opt_pairs, opt_idle);
  hwm = g_strdup_printf ("\"hwm_kib\": %ld", proc_status_kib ("VmHWM:"));
  print_result (params, "deliveries/s", meter_rate (), hwm);

  for (int i = 0; i < pp.n_ends; i++)
    sys->io_free (pp.ends[i].io);
  for (int i = 0; i < n_pair_fds; i++)
    close (pp.ends[i].fd);
  close_idle_fds (idle_fds, opt_idle);
  g_free (pp.ends);
}

/* -- write readiness ---------------------------------------------------- */

/* A small send buffer makes each fill a few writes, so the figure is about
 * readiness, not memcpy. */
#define WRITE_SNDBUF  8192
#define WRITE_CHUNK   2048
#define READ_BUFFER   65536

static struct
{
  End      writer, reader;
  uint64_t written, read;
  uint64_t fills, drains;
  bool     writer_done;
} wr;

static void
writer_ready (BenchIO  *io,
              unsigned  ready,
              void     *data)
{
  static const char chunk[WRITE_CHUNK];
  ssize_t n;

  if (ready != BENCH_WRITE)
    fail ("writer reported ready %u, not WRITE", ready);

  if (!meter_tick (1))
    {
      wr.writer_done = true;
      sys->io_disarm (io);
      if (wr.read == wr.written)
        sys->stop (loop);
      return;
    }

  n = write (wr.writer.fd, chunk, sizeof chunk);
  if (n <= 0)
    fail ("writable reported, but write: %s", n < 0 ? g_strerror (errno) : "0 bytes");
  do
    wr.written += (uint64_t) n;
  while ((n = write (wr.writer.fd, chunk, sizeof chunk)) > 0);
  if (errno != EAGAIN)
    fail ("write: %s", g_strerror (errno));
  wr.fills++;

  if (!sys->persistent)
    sys->io_arm (io, BENCH_WRITE);
}

static void
reader_ready (BenchIO  *io,
              unsigned  ready,
              void     *data)
{
  static char buffer[READ_BUFFER];
  uint64_t drained = 0;
  ssize_t n;

  if (ready != BENCH_READ)
    fail ("reader reported ready %u, not READ", ready);

  /* A short read empties a stream socket; EAGAIN ends an exact fit. */
  while ((n = read (wr.reader.fd, buffer, sizeof buffer)) > 0)
    {
      drained += (uint64_t) n;
      if (n < (ssize_t) sizeof buffer)
        break;
    }
  if (n < 0 && errno != EAGAIN)
    fail ("read: %s", g_strerror (errno));
  if (n == 0)
    fail ("read: end of file");
  if (drained == 0)
    fail ("readable reported, but nothing to read");
  wr.read += drained;
  wr.drains++;

  if (wr.read > wr.written)
    fail ("read %" G_GUINT64_FORMAT " bytes, only %" G_GUINT64_FORMAT " written", wr.read, wr.written);
  if (wr.writer_done && wr.read == wr.written)
    {
      sys->io_disarm (io);
      sys->stop (loop);
      return;
    }
  if (!sys->persistent)
    sys->io_arm (io, BENCH_READ);
}

static void
run_write (void)
{
  int fds[2];
  int sndbuf = WRITE_SNDBUF;
  g_autofree char *extra = NULL;

  need_fds (2);
  make_socketpair (fds);
  setsockopt (fds[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
  wr.writer.fd = fds[0];
  wr.reader.fd = fds[1];
  wr.writer.io = sys->io_new (loop, wr.writer.fd, writer_ready, &wr.writer);
  wr.reader.io = sys->io_new (loop, wr.reader.fd, reader_ready, &wr.reader);
  sys->io_arm (wr.writer.io, BENCH_WRITE);
  sys->io_arm (wr.reader.io, BENCH_READ);

  meter_start ();
  sys->run (loop);

  if (!wr.writer_done || wr.read != wr.written)
    fail ("stopped with %" G_GUINT64_FORMAT " bytes written and %" G_GUINT64_FORMAT " read",
          wr.written, wr.read);
  if (read (wr.reader.fd, fds, 1) != -1 || errno != EAGAIN)
    fail ("data left in the socket after the reader drained it");

  extra = g_strdup_printf ("\"fills\": %" G_GUINT64_FORMAT ", \"drains\": %" G_GUINT64_FORMAT
                           ", \"bytes\": %" G_GUINT64_FORMAT,
                           wr.fills, wr.drains, wr.written);
  print_result ("", "fills/s", meter_rate (), extra);

  sys->io_free (wr.writer.io);
  sys->io_free (wr.reader.io);
  close (fds[0]);
  close (fds[1]);
}

/* -- timer churn -------------------------------------------------------- */

#define N_DELAYS 4096

static struct
{
  BenchTimer **timers;
  uint64_t    *fired;
  BenchTimer  *sentinel;
  uint64_t     n_fired, expected;
  int          sentinel_rounds;
} tc;

static void
churn_timer_ready (BenchTimer *timer,
                   void       *data)
{
  int i = GPOINTER_TO_INT (data);

  if (i % 2 == 1)
    fail ("cancelled timer %d fired", i);
  if (tc.fired[i]++ != 0)
    fail ("timer %d fired twice", i);
  tc.n_fired++;
}

static void
churn_sentinel_ready (BenchTimer *timer,
                      void       *data)
{
  if (tc.n_fired == tc.expected)
    {
      sys->stop (loop);
      return;
    }
  /* Allows for loops that fire due timers over several iterations. */
  if (++tc.sentinel_rounds > 1000)
    fail ("%" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT " armed timers fired after 1 s",
          tc.n_fired, tc.expected);
  sys->timer_arm (timer, 1000);
}

static void
run_churn (void)
{
  int k = opt_timers;
  int64_t delays[N_DELAYS];
  uint64_t state = (uint64_t) opt_seed * 2 + 1;
  unsigned d = 0;
  g_autofree char *params = NULL;

  if (k < 1)
    skip ("--timers must be >= 1");
  for (int i = 0; i < N_DELAYS; i++)
    delays[i] = (int64_t) (random_next (&state) % 1001);

  tc.timers = g_new (BenchTimer *, k);
  tc.fired = g_new0 (uint64_t, k);
  for (int i = 0; i < k; i++)
    tc.timers[i] = sys->timer_new (loop, churn_timer_ready, GINT_TO_POINTER (i));

  meter_start ();
  do
    {
      for (int i = 0; i < k; i++)
        sys->timer_arm (tc.timers[i], delays[d++ % N_DELAYS]);
      for (int i = 0; i < k; i++)
        sys->timer_cancel (tc.timers[i]);
    }
  while (meter_tick ((uint64_t) k));

  /* The check: arm all once more, cancel the odd ones, and let the loop run
   * past every deadline. Exactly the even ones must fire. */
  for (int i = 0; i < k; i++)
    sys->timer_arm (tc.timers[i], delays[d++ % N_DELAYS]);
  for (int i = 1; i < k; i += 2)
    sys->timer_cancel (tc.timers[i]);
  tc.expected = (uint64_t) (k + 1) / 2;
  tc.sentinel = sys->timer_new (loop, churn_sentinel_ready, NULL);
  sys->timer_arm (tc.sentinel, 5000);
  sys->run (loop);

  params = g_strdup_printf ("\"timers\": %d", k);
  print_result (params, "arm+cancel/s", meter_rate (), NULL);

  sys->timer_free (tc.sentinel);
  for (int i = 0; i < k; i++)
    sys->timer_free (tc.timers[i]);
  g_free (tc.timers);
  g_free (tc.fired);
}

/* -- timer fire chain --------------------------------------------------- */

static struct
{
  int64_t  due;
  int64_t *late;       /* ns, measured fires only */
  size_t   n_late, size;
  uint64_t early;
} ch;

static int
compare_int64 (const void *a,
               const void *b)
{
  int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;

  return (x > y) - (x < y);
}

/* The due time counts from the arm time truncated to whole µs, the
 * resolution of g_get_monotonic_time(): a loop that reads that clock may
 * fire up to 1 µs before a due time computed in nanoseconds, and still be
 * on time by its own clock. */
static void
chain_arm (BenchTimer *timer)
{
  ch.due = now_ns () / 1000 * 1000 + (int64_t) opt_delay * 1000;
  sys->timer_arm (timer, opt_delay);
}

static void
chain_timer_ready (BenchTimer *timer,
                   void       *data)
{
  int64_t late = now_ns () - ch.due;
  bool measured = meter.phase == MEASURE;

  if (late < 0)
    {
      if (sys->never_early)
        fail ("timer fired %" G_GINT64_FORMAT " ns before its due time", -late);
      ch.early++;
    }
  if (measured)
    {
      if (ch.n_late == ch.size)
        {
          ch.size *= 2;
          ch.late = g_renew (int64_t, ch.late, ch.size);
        }
      ch.late[ch.n_late++] = late;
    }
  if (!meter_tick (1))
    {
      sys->stop (loop);
      return;
    }
  chain_arm (timer);
}

static void
run_chain (void)
{
  BenchTimer *timer;
  double sum = 0.;
  g_autofree char *params = NULL;
  g_autofree char *extra = NULL;

  if (opt_delay < 0)
    skip ("--delay must be >= 0");
  ch.size = 65536;
  ch.late = g_new (int64_t, ch.size);
  timer = sys->timer_new (loop, chain_timer_ready, NULL);

  meter_start ();
  chain_arm (timer);
  sys->run (loop);

  if (ch.n_late == 0)
    fail ("no timer fired while measuring");
  qsort (ch.late, ch.n_late, sizeof *ch.late, compare_int64);
  for (size_t i = 0; i < ch.n_late; i++)
    sum += (double) ch.late[i];

  params = g_strdup_printf ("\"delay_us\": %d", opt_delay);
  extra = g_strdup_printf ("\"p50_us\": %.3f, \"p99_us\": %.3f, \"max_us\": %.3f, "
                           "\"fires_per_s\": %.6g, \"early\": %" G_GUINT64_FORMAT,
                           ch.late[ch.n_late / 2] / 1e3,
                           ch.late[(ch.n_late * 99) / 100] / 1e3,
                           ch.late[ch.n_late - 1] / 1e3,
                           meter_rate (), ch.early);
  print_result (params, "mean lateness us", sum / ch.n_late / 1e3, extra);

  sys->timer_free (timer);
  g_free (ch.late);
}

/* -- memory ------------------------------------------------------------- */

static void
never_ready (BenchTimer *timer,
             void       *data)
{
  fail ("a timer due in an hour fired");
}

static void
print_memory (long rss_before,
              long rss_after,
              long hwm_after)
{
  g_autofree char *params = g_strdup_printf ("\"events\": %d", opt_events);
  g_autofree char *extra = g_strdup_printf ("\"rss_before_kib\": %ld, \"rss_after_kib\": %ld, "
                                            "\"hwm_after_kib\": %ld",
                                            rss_before, rss_after, hwm_after);

  print_result (params, "bytes/event",
                (double) (rss_after - rss_before) * 1024. / opt_events, extra);
}

static void
run_memory_io (void)
{
  int n = opt_events;
  int *fds;
  BenchIO **ios;
  long rss_before;

  if (n < 1)
    skip ("--events must be >= 1");
  need_fds (n + 1);
  fds = make_idle_fds (n);
  /* Our own bookkeeping is allocated and touched (calloc'd pages are not
   * resident until written) before the baseline. */
  ios = g_new0 (BenchIO *, n);
  memset (ios, 0, sizeof (BenchIO *) * (size_t) n);

  rss_before = proc_status_kib ("VmRSS:");
  for (int i = 0; i < n; i++)
    {
      ios[i] = sys->io_new (loop, fds[i], idle_ready, &fds[i]);
      sys->io_arm (ios[i], BENCH_READ);
    }
  /* Loops that register lazily do it in their next iteration. */
  sys->run_once (loop);
  print_memory (rss_before, proc_status_kib ("VmRSS:"), proc_status_kib ("VmHWM:"));

  for (int i = 0; i < n; i++)
    sys->io_free (ios[i]);
  close_idle_fds (fds, n);
  g_free (ios);
}

static void
run_memory_timer (void)
{
  int n = opt_events;
  BenchTimer **timers;
  long rss_before;

  if (n < 1)
    skip ("--events must be >= 1");
  timers = g_new0 (BenchTimer *, n);
  memset (timers, 0, sizeof (BenchTimer *) * (size_t) n);

  rss_before = proc_status_kib ("VmRSS:");
  for (int i = 0; i < n; i++)
    {
      timers[i] = sys->timer_new (loop, never_ready, NULL);
      sys->timer_arm (timers[i], (int64_t) 3600 * G_USEC_PER_SEC + i);
    }
  sys->run_once (loop);
  print_memory (rss_before, proc_status_kib ("VmRSS:"), proc_status_kib ("VmHWM:"));

  for (int i = 0; i < n; i++)
    sys->timer_free (timers[i]);
  g_free (timers);
}

/* -- main --------------------------------------------------------------- */

static const struct
{
  const char *name;
  void      (*run) (void);
} workloads[] = {
  { "pingpong",     run_pingpong },
  { "write",        run_write },
  { "churn",        run_churn },
  { "chain",        run_chain },
  { "memory-io",    run_memory_io },
  { "memory-timer", run_memory_timer },
};

static int
list_systems (void)
{
  for (size_t i = 0; i < G_N_ELEMENTS (all_systems); i++)
    printf ("%s\n", all_systems[i]->name);
  return 0;
}

int
main (int    argc,
      char **argv)
{
  g_autoptr(GOptionContext) context = g_option_context_new ("- one iops-glib benchmark run");
  g_autoptr(GError) error = NULL;
  void (*workload) (void) = NULL;

  g_option_context_add_main_entries (context, option_entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      fprintf (stderr, "iops-bench: %s\n", error->message);
      return EXIT_USAGE;
    }
  if (opt_list)
    return list_systems ();

  for (size_t i = 0; opt_system != NULL && i < G_N_ELEMENTS (all_systems); i++)
    if (strcmp (opt_system, all_systems[i]->name) == 0)
      sys = all_systems[i];
  for (size_t i = 0; opt_workload != NULL && i < G_N_ELEMENTS (workloads); i++)
    if (strcmp (opt_workload, workloads[i].name) == 0)
      workload = workloads[i].run;
  if (sys == NULL || workload == NULL)
    {
      fprintf (stderr, "iops-bench: need --system (one of --list) and --workload\n");
      return EXIT_USAGE;
    }

  /* A warning or critical from any library means the run is not what it
   * claims to be (an unknown IOPS_GLIB_BACKEND, a misused API): abort. */
  g_log_set_always_fatal (G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING);
  signal (SIGPIPE, SIG_IGN);
  signal (SIGALRM, on_watchdog);
  alarm ((unsigned) opt_watchdog);

  loop = sys->loop_new ();
  workload ();
  sys->loop_free (loop);
  g_free (opt_system);
  g_free (opt_workload);
  return 0;
}

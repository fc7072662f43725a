/* sys-epoll.c — raw epoll: the practical limit
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * EPOLLONESHOT registrations re-armed with EPOLL_CTL_MOD (one syscall per
 * re-arm, the honest price of one-shot semantics on epoll), and a binary
 * heap of deadlines behind one timerfd: epoll_wait's own timeout is in
 * milliseconds and gets the process's timer slack, a timerfd neither.
 * No allocation after set-up, no callbacks beyond what the workload needs.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#define MAX_EVENTS 256
#define NOT_QUEUED ((size_t) -1)

typedef struct _EpollTimer EpollTimer;

struct _BenchLoop
{
  int          epfd;
  int          tfd;
  int64_t      tfd_due_ns;  /* what the timerfd is set to, -1 disarmed */
  bool         stop;
  EpollTimer **heap;
  size_t       n_timers, heap_size;
  struct epoll_event events[MAX_EVENTS];
};

typedef struct
{
  BenchLoop   *loop;
  int          fd;
  bool         registered;
  uint32_t     armed;      /* EPOLLIN | EPOLLOUT asked for; 0 when disarmed */
  BenchIOFunc  func;
  void        *data;
} EpollIO;

struct _EpollTimer
{
  BenchLoop      *loop;
  int64_t         due_ns;
  size_t          index;   /* in the heap, or NOT_QUEUED */
  BenchTimerFunc  func;
  void           *data;
};

static int64_t
now_ns (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* -- the timer heap ----------------------------------------------------- */

static void
heap_set (BenchLoop  *loop,
          size_t      i,
          EpollTimer *timer)
{
  loop->heap[i] = timer;
  timer->index = i;
}

static void
heap_sift_up (BenchLoop *loop,
              size_t     i)
{
  EpollTimer *timer = loop->heap[i];

  while (i > 0 && loop->heap[(i - 1) / 2]->due_ns > timer->due_ns)
    {
      heap_set (loop, i, loop->heap[(i - 1) / 2]);
      i = (i - 1) / 2;
    }
  heap_set (loop, i, timer);
}

static void
heap_sift_down (BenchLoop *loop,
                size_t     i)
{
  EpollTimer *timer = loop->heap[i];

  for (;;)
    {
      size_t child = 2 * i + 1;

      if (child >= loop->n_timers)
        break;
      if (child + 1 < loop->n_timers && loop->heap[child + 1]->due_ns < loop->heap[child]->due_ns)
        child++;
      if (loop->heap[child]->due_ns >= timer->due_ns)
        break;
      heap_set (loop, i, loop->heap[child]);
      i = child;
    }
  heap_set (loop, i, timer);
}

static void
heap_remove (BenchLoop  *loop,
             EpollTimer *timer)
{
  size_t i = timer->index;
  EpollTimer *last = loop->heap[--loop->n_timers];

  timer->index = NOT_QUEUED;
  if (last == timer)
    return;
  heap_set (loop, i, last);
  heap_sift_up (loop, i);
  heap_sift_down (loop, last->index);
}

static void
heap_insert (BenchLoop  *loop,
             EpollTimer *timer)
{
  if (loop->n_timers == loop->heap_size)
    {
      loop->heap_size = loop->heap_size ? 2 * loop->heap_size : 64;
      loop->heap = realloc (loop->heap, loop->heap_size * sizeof (EpollTimer *));
    }
  heap_set (loop, loop->n_timers++, timer);
  heap_sift_up (loop, timer->index);
}

static void
fire_timers (BenchLoop *loop)
{
  int64_t now = now_ns ();

  while (loop->n_timers > 0 && loop->heap[0]->due_ns <= now)
    {
      EpollTimer *timer = loop->heap[0];

      heap_remove (loop, timer);
      timer->func ((BenchTimer *) timer, timer->data);
    }
}

/* -- the loop ----------------------------------------------------------- */

static int
wait_events (BenchLoop *loop)
{
  int64_t due = loop->n_timers > 0 ? loop->heap[0]->due_ns : -1;

  if (due >= 0 && due <= now_ns ())
    return epoll_wait (loop->epfd, loop->events, MAX_EVENTS, 0);
  if (due != loop->tfd_due_ns)
    {
      /* A zero it_value disarms the timerfd. */
      struct itimerspec its = {
        .it_value = { .tv_sec = due < 0 ? 0 : due / 1000000000,
                      .tv_nsec = due < 0 ? 0 : due % 1000000000 },
      };

      timerfd_settime (loop->tfd, TFD_TIMER_ABSTIME, &its, NULL);
      loop->tfd_due_ns = due;
    }
  return epoll_wait (loop->epfd, loop->events, MAX_EVENTS, -1);
}

static void
dispatch_events (BenchLoop *loop,
                 int        n)
{
  for (int i = 0; i < n; i++)
    {
      EpollIO *io = loop->events[i].data.ptr;
      uint32_t revents = loop->events[i].events;
      uint32_t ready;

      if (io == NULL)
        {
          uint64_t expirations;

          /* The timerfd: acknowledge it; fire_timers() reads the heap. */
          if (read (loop->tfd, &expirations, sizeof expirations) < 0 && errno != EAGAIN)
            abort ();
          loop->tfd_due_ns = -1;
          continue;
        }
      /* Disarmed by an earlier callback of this batch. */
      if (io->armed == 0)
        continue;
      ready = (revents & (EPOLLERR | EPOLLHUP)) ? io->armed : (revents & io->armed);
      io->armed = 0;   /* EPOLLONESHOT disabled it in the kernel */
      io->func ((BenchIO *) io,
                ((ready & EPOLLIN) ? BENCH_READ : 0) | ((ready & EPOLLOUT) ? BENCH_WRITE : 0),
                io->data);
    }
}

static BenchLoop *
epoll_loop_new (void)
{
  BenchLoop *loop = calloc (1, sizeof (BenchLoop));
  struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };

  loop->epfd = epoll_create1 (EPOLL_CLOEXEC);
  loop->tfd = timerfd_create (CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  loop->tfd_due_ns = -1;
  if (loop->epfd < 0 || loop->tfd < 0 || epoll_ctl (loop->epfd, EPOLL_CTL_ADD, loop->tfd, &ev) < 0)
    abort ();
  return loop;
}

static void
epoll_loop_free (BenchLoop *loop)
{
  close (loop->tfd);
  close (loop->epfd);
  free (loop->heap);
  free (loop);
}

static void
epoll_run_once (BenchLoop *loop)
{
  int n = epoll_wait (loop->epfd, loop->events, MAX_EVENTS, 0);

  if (n > 0)
    dispatch_events (loop, n);
  fire_timers (loop);
}

static void
epoll_run (BenchLoop *loop)
{
  loop->stop = false;
  while (!loop->stop)
    {
      int n = wait_events (loop);

      if (n < 0 && errno != EINTR)
        abort ();
      if (n > 0)
        dispatch_events (loop, n);
      fire_timers (loop);
    }
}

static void
epoll_stop (BenchLoop *loop)
{
  loop->stop = true;
}

/* -- fd watches and timers ---------------------------------------------- */

static BenchIO *
epoll_io_new (BenchLoop   *loop,
              int          fd,
              BenchIOFunc  func,
              void        *data)
{
  EpollIO *io = calloc (1, sizeof (EpollIO));

  io->loop = loop;
  io->fd = fd;
  io->func = func;
  io->data = data;
  return (BenchIO *) io;
}

static void
epoll_io_arm (BenchIO  *bio,
              unsigned  flags)
{
  EpollIO *io = (EpollIO *) bio;
  struct epoll_event ev = { .data.ptr = io };

  io->armed = ((flags & BENCH_READ) ? EPOLLIN : 0) | ((flags & BENCH_WRITE) ? EPOLLOUT : 0);
  ev.events = io->armed | EPOLLONESHOT;
  if (epoll_ctl (io->loop->epfd, io->registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, io->fd, &ev) < 0)
    abort ();
  io->registered = true;
}

static void
epoll_io_disarm (BenchIO *bio)
{
  EpollIO *io = (EpollIO *) bio;
  /* EPOLLONESHOT: a later error or hang-up is reported once, not forever. */
  struct epoll_event ev = { .events = EPOLLONESHOT, .data.ptr = io };

  if (io->armed == 0)
    return;
  io->armed = 0;
  epoll_ctl (io->loop->epfd, EPOLL_CTL_MOD, io->fd, &ev);
}

static void
epoll_io_free (BenchIO *bio)
{
  EpollIO *io = (EpollIO *) bio;

  if (io->registered)
    epoll_ctl (io->loop->epfd, EPOLL_CTL_DEL, io->fd, NULL);
  free (io);
}

static BenchTimer *
epoll_timer_new (BenchLoop      *loop,
                 BenchTimerFunc  func,
                 void           *data)
{
  EpollTimer *timer = calloc (1, sizeof (EpollTimer));

  timer->loop = loop;
  timer->index = NOT_QUEUED;
  timer->func = func;
  timer->data = data;
  return (BenchTimer *) timer;
}

static void
epoll_timer_cancel (BenchTimer *btimer)
{
  EpollTimer *timer = (EpollTimer *) btimer;

  if (timer->index != NOT_QUEUED)
    heap_remove (timer->loop, timer);
}

static void
epoll_timer_arm (BenchTimer *btimer,
                 int64_t     usecs)
{
  EpollTimer *timer = (EpollTimer *) btimer;

  epoll_timer_cancel (btimer);
  timer->due_ns = now_ns () + usecs * 1000;
  heap_insert (timer->loop, timer);
}

static void
epoll_timer_free (BenchTimer *btimer)
{
  epoll_timer_cancel (btimer);
  free (btimer);
}

const BenchSystem bench_sys_epoll = {
  .name = "epoll",
  .never_early = true,
  .loop_new = epoll_loop_new,
  .loop_free = epoll_loop_free,
  .run = epoll_run,
  .stop = epoll_stop,
  .run_once = epoll_run_once,
  .io_new = epoll_io_new,
  .io_arm = epoll_io_arm,
  .io_disarm = epoll_io_disarm,
  .io_free = epoll_io_free,
  .timer_new = epoll_timer_new,
  .timer_arm = epoll_timer_arm,
  .timer_cancel = epoll_timer_cancel,
  .timer_free = epoll_timer_free,
};

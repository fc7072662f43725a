/* iops-backend-epoll.c — one GSource over an epoll fd and a timerfd (Linux)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * GLib polls every fd of every source on every iteration, which makes a
 * delivery cost O(watched fds). This backend keeps idle ("cold") fds in an
 * epoll set that GLib sees as a single fd, and polls the few fds that
 * actually fire ("hot" ones) directly as GPollFDs of the same source, where
 * re-arming a one-shot watch costs neither a syscall nor an allocation:
 *
 *  - a watch starts cold, in the epoll set;
 *  - a cold watch that fires is promoted to a direct GPollFD; when
 *    HOT_LIMIT are, a hot watch that is disarmed makes room, going back to
 *    cold at its next WATCH;
 *  - an fd epoll refuses (a regular file, an fd watched by two events, an
 *    invalid fd) is polled directly too, so poll() reports it as usual
 *    (G_IO_NVAL for an invalid fd).
 *
 * Rule 1 says the same fd number may be a new socket at any WATCH, and epoll
 * registers (fd, file) pairs: so every WATCH of a cold watch does one
 * EPOLL_CTL_MOD (or ADD when the kernel forgot a closed fd). Disarming is
 * lazy, as in libev: a disarmed cold watch stays in the set until it wakes
 * us once, and is then removed. Each registration carries a generation in
 * its epoll data; an event from an older generation can only come from a
 * registration the kernel kept for a closed but dup'd fd, which cannot be
 * removed by number any more, so the epoll set is rebuilt.
 *
 * Timers fire from the same source; a timerfd wakes the poll at the exact
 * microsecond, so short timers are not rounded up to GLib's milliseconds.
 * The timerfd is set in prepare(), at most once per iteration and only when
 * the earliest deadline changed: arming a timer makes no syscall.
 *
 * Every priority in use gets its own source (a "lane"); nearly always there
 * is one.
 *
 * After fork() the child shares the epoll set with its parent: an IOPS must
 * not be used across fork(); create a new one in the child.
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "iops-backend.h"

#define HOT_LIMIT   256  /* watches polled directly once they fired */
#define MAX_EVENTS  256  /* epoll events taken per dispatch */

typedef struct _Lane Lane;
typedef struct _EpollBackend EpollBackend;
typedef struct _EpollWatch EpollWatch;

struct _EpollWatch
{
  IopsWatch  watch;
  Lane      *lane;          /* where it is registered, or NULL */
  guint      slot;          /* index in backend->slots (epoll data) */
  guint32    kgen;          /* generation of its epoll registration */
  guint64    armed_serial;  /* backend->serial at the latest arm */
  int        rfd;           /* fd registered (epoll or direct), -1 */
  guint32    mask;          /* EPOLLIN|EPOLLOUT wanted while armed */
  guint32    kmask;         /* mask the epoll set holds for it */
  GPollFD    pfd;           /* polled directly when 'polled' */
  guint      refs;          /* 1 for the core + 1 per dispatch holding it */
  /* Booleans as bytes: the hot paths store them without a read. */
  guint8     in_epoll;
  guint8     polled;        /* pfd is in the lane's poll set */
  guint8     hot;           /* promoted to a direct GPollFD, counted in n_hot */
  guint8     fired;         /* delivered since its latest arm: promote it */
  guint8     freed;         /* the core let go of it */
  guint8     nval;          /* epoll refused it as invalid: reported as
                             * G_IO_NVAL without a poll */
};

typedef struct
{
  EpollWatch *watch;
  guint32     revents;      /* GIOCondition */
  guint64     limit;        /* deliver only if armed before this serial */
} Ready;

struct _Lane
{
  GSource       source;
  EpollBackend *backend;
  int           priority;
  int           epfd;
  GPollFD       epfd_poll;  /* polled only while n_kernel > 0 */
  gboolean      epfd_polled;
  gboolean      dead;       /* destroyed: a dispatch still running stops */
  gboolean      has_timers; /* timers are armed at its priority */
  guint         n_watches;  /* registrations whose fd it polls */
  guint         n_nval;     /* of them, invalid ones to report */
  guint         n_kernel;   /* watches registered in the epoll set */
  GPtrArray    *direct;     /* EpollWatch *, polled as GPollFDs */
  GPtrArray    *by_fd;      /* EpollWatch * owning each fd's registration */
  guint64       check_serial;
  gboolean      rebuild;    /* a stale registration woke us */
  Ready        *ready;      /* what a dispatch found, reused */
  guint         ready_allocated;
  guint         dispatching; /* dispatches running, nested ones included */
};

struct _EpollBackend
{
  IopsBackend   parent;
  IopsGLibIOPS *owner;
  GMainContext *context;
  GHashTable   *lanes;      /* priority → Lane, usually one */
  Lane         *current;    /* the lane of the IOPS's priority, never released */
  gboolean      disposing;  /* the IOPS is going: no per-watch epoll_ctl */
  GPtrArray    *slots;      /* EpollWatch * by slot, NULL when free */
  GArray       *free_slots;
  guint32       next_gen;
  guint64       serial;     /* bumped at every poll check and collection */
  guint         n_hot;

  Lane         *timer_lane;
  int           tfd;
  GPollFD       tfd_poll;   /* in timer_lane's poll set when tfd_polled */
  gboolean      tfd_polled;
  gint64        tfd_deadline; /* what the timerfd is set to, -1 disarmed */
};

#define EPOLL_WATCH(w) ((EpollWatch *) (w))

static inline guint32
flags_to_mask (IopsEventFlags flags)
{
  return ((flags & IOPS_READ_EVENT) ? EPOLLIN : 0) |
         ((flags & IOPS_WRITE_EVENT) ? EPOLLOUT : 0);
}

static inline GIOCondition
mask_to_condition (guint32 mask)
{
  return ((mask & EPOLLIN) ? G_IO_IN : 0) | ((mask & EPOLLOUT) ? G_IO_OUT : 0);
}

static inline GIOCondition
epoll_to_condition (guint32 events)
{
  return ((events & EPOLLIN) ? G_IO_IN : 0) |
         ((events & EPOLLOUT) ? G_IO_OUT : 0) |
         ((events & EPOLLERR) ? G_IO_ERR : 0) |
         ((events & EPOLLHUP) ? G_IO_HUP : 0);
}

static void
watch_unref (EpollWatch *w)
{
  if (--w->refs == 0)
    g_free (w);
}

/* -- the epoll set ------------------------------------------------------ */

/* GPollFDs of our own (g_source_add_poll): GLib reads their events on
 * every iteration and writes revents back, so re-arming or suspending a
 * direct watch is a store, and reading what polled ready is a load — no
 * call into GLib, no lock, no wake-up. */
static void
source_poll (GSource  *source,
             GPollFD  *pfd,
             gboolean *polled,
             gboolean  poll)
{
  if (*polled == poll)
    return;
  *polled = poll;
  if (poll)
    {
      pfd->revents = 0;
      g_source_add_poll (source, pfd);
    }
  else
    {
      g_source_remove_poll (source, pfd);
      pfd->revents = 0;  /* GLib no longer updates it */
    }
}

static void
lane_poll_epfd (Lane     *lane,
                gboolean  poll)
{
  lane->epfd_poll.fd = lane->epfd;
  lane->epfd_poll.events = G_IO_IN;
  source_poll (&lane->source, &lane->epfd_poll, &lane->epfd_polled, poll);
}

/* The epoll fd is polled only while it holds registrations: with every
 * watch hot, the poll covers exactly the fds that fire, as a hand-written
 * source would. */
static void
set_in_epoll (EpollWatch *w,
              Lane       *lane,
              gboolean    in_epoll)
{
  if (w->in_epoll == (guint) in_epoll)
    return;
  w->in_epoll = in_epoll;
  if (in_epoll && lane->n_kernel++ == 0)
    lane_poll_epfd (lane, TRUE);
  else if (!in_epoll && --lane->n_kernel == 0)
    lane_poll_epfd (lane, FALSE);
}

static inline EpollWatch *
lane_owner_of (Lane *lane,
               int   fd)
{
  return (guint) fd < lane->by_fd->len ? g_ptr_array_index (lane->by_fd, fd) : NULL;
}

static void
lane_set_owner (Lane       *lane,
                int         fd,
                EpollWatch *w)
{
  if ((guint) fd >= lane->by_fd->len)
    g_ptr_array_set_size (lane->by_fd, MAX ((guint) fd + 1, lane->by_fd->len * 2));
  g_ptr_array_index (lane->by_fd, fd) = w;
}

static void
lane_join (Lane       *lane,
           EpollWatch *w)
{
  w->lane = lane;
  lane->n_watches++;
}

/* @w no longer polls anything in its lane. */
static void
lane_leave (EpollWatch *w)
{
  w->lane->n_watches--;
  w->lane = NULL;
  w->rfd = -1;
}

static int
epoll_register (Lane       *lane,
                EpollWatch *w,
                int         op)
{
  struct epoll_event ev;
  EpollWatch *previous;

  if (op == EPOLL_CTL_ADD)
    w->kgen = lane->backend->next_gen++;
  memset (&ev, 0, sizeof ev);
  ev.events = w->mask;
  ev.data.u64 = ((guint64) w->kgen << 32) | w->slot;
  if (epoll_ctl (lane->epfd, op, w->rfd, &ev) != 0)
    return errno;
  w->kmask = w->mask;
  if (op != EPOLL_CTL_ADD)
    return 0;

  /* The kernel took a new (fd, file) pair, so whoever registered this
   * number before registered another file, since closed: its registration
   * is gone (or lingers for a dup'd file, which a rebuild will drop). It
   * must never delete ours by number. */
  previous = lane_owner_of (lane, w->rfd);
  if (previous != NULL && previous != w)
    {
      set_in_epoll (previous, lane, FALSE);
      previous->kmask = 0;
      previous->kgen = 0;
      if (!previous->polled)
        lane_leave (previous);
    }
  lane_set_owner (lane, w->rfd, w);
  return 0;
}

static void
epoll_forget (EpollWatch *w)
{
  if (!w->in_epoll)
    return;
  /* Fails when the fd was closed; a registration the kernel kept for a
   * dup'd file then shows up with an old generation and is dropped by a
   * rebuild. */
  if (lane_owner_of (w->lane, w->rfd) == w)
    {
      /* Disposal closes the epoll fd, which drops every registration; in
       * a child after fork() the set is the parent's as well. */
      if (!w->lane->backend->disposing)
        epoll_ctl (w->lane->epfd, EPOLL_CTL_DEL, w->rfd, NULL);
      lane_set_owner (w->lane, w->rfd, NULL);
    }
  set_in_epoll (w, w->lane, FALSE);
  w->kmask = 0;
  w->kgen = 0;
}

static void
direct_add (Lane       *lane,
            EpollWatch *w)
{
  w->pfd.fd = w->rfd;
  w->pfd.events = mask_to_condition (w->mask);
  w->pfd.revents = 0;
  /* An invalid one is reported without a poll (GLib keeps its poll set
   * sorted by fd: an fd cannot be changed once added). */
  if (!w->nval)
    g_source_add_poll (&lane->source, &w->pfd);
  w->polled = TRUE;
  w->kmask = w->mask;
  g_ptr_array_add (lane->direct, w);
}

static void
direct_remove (EpollWatch *w)
{
  Lane *lane = w->lane;

  if (!w->polled)
    return;
  if (!w->nval)
    g_source_remove_poll (&lane->source, &w->pfd);
  w->polled = FALSE;
  w->pfd.revents = 0;
  g_ptr_array_remove_fast (lane->direct, w);
  w->kmask = 0;
  if (w->hot)
    lane->backend->n_hot--;
  w->hot = FALSE;
  if (w->nval)
    lane->n_nval--;
  w->nval = FALSE;
}

/* Registers @w's fd in @lane: in the epoll set, or directly when epoll
 * refuses it. */
/* Registers @w's fd in @lane: in the epoll set, or directly when epoll
 * refuses it (a regular file, an fd watched twice, a closed fd, which poll()
 * then reports as G_IO_NVAL) or when the lane has no epoll fd (EMFILE). An fd
 * that epoll calls invalid is no file the consumer can mean — a stale number
 * that now names an fd of ours —: it is reported as invalid, once. Creates
 * no fd: the consumer may have closed the number just before (rule 2). */
static void
lane_register (Lane       *lane,
               EpollWatch *w,
               gboolean    hot)
{
  int error = 0;

  lane_join (lane, w);
  if (!hot && lane->epfd >= 0 && (error = epoll_register (lane, w, EPOLL_CTL_ADD)) == 0)
    {
      set_in_epoll (w, lane, TRUE);
      return;
    }
  if (hot)
    lane->backend->n_hot++;
  w->hot = hot;
  w->nval = error == EINVAL || error == ELOOP;
  if (w->nval)
    lane->n_nval++;
  direct_add (lane, w);
}

static void lane_release_if_unused (Lane *lane);

static void
lane_unregister (EpollWatch *w)
{
  Lane *lane = w->lane;

  if (lane == NULL)
    return;
  epoll_forget (w);
  direct_remove (w);
  lane_leave (w);
  lane_release_if_unused (lane);
}

/* Whether one more watch may be polled directly. When HOT_LIMIT are, one
 * that is disarmed (an idle one, most likely) leaves: it would cost every
 * poll without firing. It registers afresh, cold, at its next WATCH. */
static gboolean
hot_room (EpollBackend *b)
{
  GHashTableIter iter;
  gpointer value;

  if (b->n_hot < HOT_LIMIT)
    return TRUE;

  /* Unregistering may release a lane; the walk ends right then. */
  g_hash_table_iter_init (&iter, b->lanes);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      Lane *lane = value;

      for (guint i = 0; i < lane->direct->len; i++)
        {
          EpollWatch *w = g_ptr_array_index (lane->direct, i);

          if (w->hot && w->watch.flags == 0)
            {
              lane_unregister (w);
              return TRUE;
            }
        }
    }
  return FALSE;
}

/* Re-creates the epoll set: the only way to drop a registration the kernel
 * kept for a closed, dup'd fd. Rare; O(watches). Without an fd to spare
 * (EMFILE), the old set is dropped all the same and its watches are polled
 * directly. */
static void
lane_rebuild (Lane *lane)
{
  EpollBackend *b = lane->backend;
  int epfd = epoll_create1 (EPOLL_CLOEXEC);

  lane->rebuild = FALSE;
  lane_poll_epfd (lane, FALSE);
  if (lane->epfd >= 0)
    close (lane->epfd);
  lane->epfd = epfd;
  g_ptr_array_set_size (lane->by_fd, 0);

  for (guint i = 0; i < b->slots->len; i++)
    {
      EpollWatch *w = g_ptr_array_index (b->slots, i);

      if (w == NULL || w->lane != lane || !w->in_epoll)
        continue;
      if (epfd < 0 || epoll_register (lane, w, EPOLL_CTL_ADD) != 0)
        {
          /* Its fd is gone or was reused: let poll() report it. */
          set_in_epoll (w, lane, FALSE);
          direct_add (lane, w);
        }
    }
  lane_poll_epfd (lane, lane->n_kernel > 0);
}

/* -- timers ------------------------------------------------------------- */

static void
timerfd_set (EpollBackend *b,
             gint64        deadline)
{
  struct itimerspec its;

  if (b->tfd < 0 || b->tfd_deadline == deadline)
    return;

  memset (&its, 0, sizeof its);
  if (deadline >= 0)
    {
      /* 0 would disarm; g_get_monotonic_time() is CLOCK_MONOTONIC. */
      gint64 at = MAX (deadline, 1);

      its.it_value.tv_sec = at / G_USEC_PER_SEC;
      its.it_value.tv_nsec = (at % G_USEC_PER_SEC) * 1000;
    }
  if (timerfd_settime (b->tfd, TFD_TIMER_ABSTIME, &its, NULL) == 0)
    b->tfd_deadline = deadline;
  else
    b->tfd_deadline = -2;  /* unknown: set it again next time */
}

/* Each lane fires the timers of its priority; the lane hosting the timerfd
 * sets it for the earliest of all of them. Out of line: the I/O-only path
 * of prepare() then needs no stack frame. */
static G_GNUC_NO_INLINE gboolean
timers_prepare (Lane *lane,
                int  *timeout)
{
  EpollBackend *b = lane->backend;
  gboolean hosts_timerfd = lane == b->timer_lane;
  gint64 next = iops_glib_iops_next_deadline (b->owner, lane->priority);
  gint64 earliest = hosts_timerfd ? iops_glib_iops_earliest_deadline (b->owner) : -1;
  gint64 now;

  if (next < 0 && earliest < 0)
    {
      if (hosts_timerfd)
        timerfd_set (b, -1);
      return FALSE;  /* no clock read on the I/O-only path */
    }

  now = g_get_monotonic_time ();
  /* A timer already due must not wait on a timerfd set in the past, which
   * would only wake this lane again and again; but its own lane may have
   * found it not yet due a moment ago, so do not let the poll sleep. */
  if (hosts_timerfd)
    {
      timerfd_set (b, earliest > now ? earliest : -1);
      if (earliest >= 0 && earliest <= now)
        *timeout = 0;
    }
  if (next < 0)
    return FALSE;
  if (next <= now)
    return TRUE;
  if (b->tfd < 0)
    *timeout = (int) MIN ((next - now + 999) / 1000, G_MAXINT);
  return FALSE;
}

static gboolean
timers_due (Lane *lane)
{
  gint64 next;

  if (lane->backend->timer_lane == NULL)
    return FALSE;  /* no timer was ever armed: the I/O-only path */
  next = iops_glib_iops_next_deadline (lane->backend->owner, lane->priority);
  return next >= 0 && next <= g_get_monotonic_time ();
}

/* -- the lane source ---------------------------------------------------- */

static gboolean
lane_prepare (GSource *source,
              int     *timeout)
{
  Lane *lane = (Lane *) source;
  EpollBackend *b = lane->backend;

  /* Readiness the coming poll finds belongs to arms made before it. Set
   * here, not in check(): GLib skips check() for a source whose prepare()
   * said it was ready. */
  lane->check_serial = ++b->serial;
  *timeout = -1;
  /* Made while fds ran out (EMFILE): try again, from the loop — never from
   * inside a WATCH. Watches registered meanwhile stay polled directly. */
  if (G_UNLIKELY (lane->epfd < 0))
    lane->epfd = epoll_create1 (EPOLL_CLOEXEC);
  if (G_UNLIKELY (lane->rebuild || lane->n_nval > 0))
    return TRUE;
  if (b->timer_lane == NULL)
    return FALSE;  /* no timer was ever armed: the I/O-only path */
  return timers_prepare (lane, timeout);
}

/* What check() looks at besides the direct watches. */
static G_GNUC_NO_INLINE gboolean
lane_check_rest (Lane *lane)
{
  EpollBackend *b = lane->backend;

  if (lane->rebuild || lane->n_nval > 0)
    return TRUE;
  if ((lane->epfd_polled && lane->epfd_poll.revents != 0) ||
      (lane == b->timer_lane && b->tfd_polled && b->tfd_poll.revents != 0))
    return TRUE;
  return timers_due (lane);
}

static gboolean
lane_check (GSource *source)
{
  Lane *lane = (Lane *) source;
  EpollWatch **direct = (EpollWatch **) lane->direct->pdata;
  guint n_direct = lane->direct->len;

  /* With g_source_add_poll() GLib leaves it to us to see what polled. */
  for (guint i = 0; i < n_direct; i++)
    if (direct[i]->pfd.revents != 0)
      return TRUE;
  return lane_check_rest (lane);
}

static guint
collect_epoll (Lane   *lane,
               Ready  *ready,
               guint   n)
{
  EpollBackend *b = lane->backend;
  struct epoll_event events[MAX_EVENTS];
  guint64 limit = ++b->serial;
  int k = epoll_wait (lane->epfd, events, MAX_EVENTS, 0);

  /* With more ready than MAX_EVENTS, the epoll fd stays readable and the
   * next dispatch takes the next ones: epoll hands out level-triggered
   * events round-robin, so none starves. */
  for (int i = 0; i < k; i++)
    {
      guint slot = (guint) (events[i].data.u64 & G_MAXUINT32);
      guint32 gen = (guint32) (events[i].data.u64 >> 32);
      EpollWatch *w = slot < b->slots->len ? g_ptr_array_index (b->slots, slot) : NULL;

      if (w == NULL || !w->in_epoll || w->lane != lane || w->kgen != gen)
        {
          lane->rebuild = TRUE;
          continue;
        }
      w->refs++;
      ready[n++] = (Ready) { w, epoll_to_condition (events[i].events), limit };

      /* epoll goes on reporting a file whose fd was closed while a dup
       * keeps it open, even once the number names another file. Ask the
       * kernel whether our (fd, file) pair is still the one behind the
       * number, and report it as poll() reports a closed fd otherwise, so
       * that it is disarmed after one delivery. Only cold watches pay this
       * syscall: a watch that fires becomes hot and is polled directly. */
      if (w->watch.flags != 0)
        {
          int error = epoll_register (lane, w, EPOLL_CTL_MOD);

          if (error == EBADF || error == ENOENT)
            ready[n - 1].revents = G_IO_NVAL;
        }
    }
  return n;
}

/* Every direct watch that polled ready: all of them, so that none starves
 * however many are ready at once. */
static guint
collect_direct (Lane   *lane,
                Ready  *ready,
                guint   n)
{
  EpollWatch **direct = (EpollWatch **) lane->direct->pdata;
  guint n_direct = lane->direct->len;
  guint64 limit = lane->check_serial;

  for (guint i = 0; i < n_direct; i++)
    {
      EpollWatch *w = direct[i];
      GIOCondition revents = w->nval ? G_IO_NVAL : w->pfd.revents;

      if (revents == 0)
        continue;
      w->refs++;
      ready[n++] = (Ready) { w, revents, limit };
    }
  return n;
}

/* Still armed in epoll after a delivery (persistent, or re-armed by a WATCH
 * that found no room to promote it then): promote it now if there is room.
 * It stays in its lane — the callback may have moved it to another one. */
static G_GNUC_NO_INLINE void
promote_after_delivery (EpollWatch *w)
{
  Lane *lane = w->lane;

  if (!hot_room (lane->backend))
    return;
  epoll_forget (w);
  lane->backend->n_hot++;
  w->hot = TRUE;
  direct_add (lane, w);
}

static inline void
deliver (Lane  *lane,
         Ready *r)
{
  EpollWatch *w = r->watch;

  if (G_UNLIKELY (w->freed || w->armed_serial >= r->limit))
    return;  /* cleaned up, or re-armed after the poll: the next one tells */
  if (G_UNLIKELY (w->watch.flags == 0))
    {
      lane_unregister (w);  /* disarmed, yet it woke us: stop the fd */
      return;
    }

  w->fired = TRUE;
  iops_glib_iops_deliver_io (&w->watch, r->revents);

  if (G_UNLIKELY (lane->dead || w->freed || w->lane == NULL))
    return;
  if (w->watch.flags == 0)
    {
      /* A one-shot direct watch not re-armed by its callback stops asking
       * for readiness; one re-armed cost nothing. */
      if (w->polled && w->kmask != 0)
        {
          w->pfd.events = 0;
          w->kmask = 0;
        }
    }
  else if (G_UNLIKELY (w->in_epoll))
    promote_after_delivery (w);
}

/* Fires the lane's due timers. Returns FALSE when a callback destroyed the
 * lane. */
static G_GNUC_NO_INLINE gboolean
lane_fire_timers (Lane *lane)
{
  EpollBackend *b = lane->backend;

  if (lane == b->timer_lane && b->tfd_polled && b->tfd_poll.revents != 0)
    b->tfd_deadline = -2;  /* fired: prepare() sets it again, which clears it */
  if (timers_due (lane))
    iops_glib_iops_fire_timers (b->owner, lane->priority, g_get_monotonic_time ());
  return !lane->dead;
}

/* Room for what one dispatch may collect. The outermost dispatch reuses
 * the lane's array, which grows to the most ever ready at once; a nested
 * one (start_watching() from a callback) gets its own. */
static Ready *
ready_buffer (Lane  *lane,
              guint  need)
{
  if (lane->dispatching > 1)
    return g_new (Ready, need);
  if (lane->ready_allocated < need)
    {
      lane->ready_allocated = MAX (need, 2 * lane->ready_allocated);
      lane->ready = g_renew (Ready, lane->ready, lane->ready_allocated);
    }
  return lane->ready;
}

static void
deliver_all (Lane  *lane,
             Ready *ready,
             guint  n)
{
  guint i;

  for (i = 0; i < n && !lane->dead; i++)
    {
      deliver (lane, &ready[i]);
      watch_unref (ready[i].watch);
    }
  /* Destroyed by a callback: release what is left. */
  for (; i < n; i++)
    watch_unref (ready[i].watch);
}

static gboolean
lane_dispatch (GSource     *source,
               GSourceFunc  callback,
               gpointer     user_data)
{
  Lane *lane = (Lane *) source;
  gboolean epoll_ready = lane->epfd_polled && lane->epfd_poll.revents != 0;
  Ready *ready;
  guint n = 0;

  if (G_UNLIKELY (lane->rebuild))
    lane_rebuild (lane);
  if (lane->backend->timer_lane != NULL && !lane_fire_timers (lane))
    return G_SOURCE_REMOVE;

  lane->dispatching++;
  ready = ready_buffer (lane, lane->direct->len + (epoll_ready ? MAX_EVENTS : 0));
  if (epoll_ready)
    n = collect_epoll (lane, ready, n);
  n = collect_direct (lane, ready, n);
  deliver_all (lane, ready, n);
  if (ready != lane->ready)
    g_free (ready);
  lane->dispatching--;

  return lane->dead ? G_SOURCE_REMOVE : G_SOURCE_CONTINUE;
}

static void
lane_finalize (GSource *source)
{
  Lane *lane = (Lane *) source;

  if (lane->epfd >= 0)
    close (lane->epfd);
  g_clear_pointer (&lane->direct, g_ptr_array_unref);
  g_clear_pointer (&lane->by_fd, g_ptr_array_unref);
  g_clear_pointer (&lane->ready, g_free);
}

static GSourceFuncs lane_funcs = {
  .prepare = lane_prepare,
  .check = lane_check,
  .dispatch = lane_dispatch,
  .finalize = lane_finalize,
};

/* A new lane for @priority, attached to the context. */
static Lane *
lane_new (EpollBackend *b,
          int           priority)
{
  Lane *lane = (Lane *) g_source_new (&lane_funcs, sizeof (Lane));

  lane->backend = b;
  lane->priority = priority;
  lane->direct = g_ptr_array_new ();
  lane->by_fd = g_ptr_array_new ();
  /* Without an fd to spare (EMFILE) every watch of the lane is polled
   * directly, as the gsource backend would, until one is free again. */
  lane->epfd = epoll_create1 (EPOLL_CLOEXEC);
  g_source_set_static_name (&lane->source, "IopsGLibIOPS");
  g_source_set_priority (&lane->source, priority);
  /* A nested start_watching() from a callback keeps dispatching. */
  g_source_set_can_recurse (&lane->source, TRUE);
  g_source_attach (&lane->source, b->context);
  g_hash_table_insert (b->lanes, GINT_TO_POINTER (priority), lane);
  return lane;
}

/* Destroys @lane. A dispatch of it still running sees lane->dead; GLib's
 * reference keeps it valid until that returns. */
static void
lane_destroy (Lane *lane)
{
  lane->dead = TRUE;
  g_source_destroy (&lane->source);
  g_source_unref (&lane->source);
}

/* A lane that polls nothing and fires no timer goes, unless it is the lane
 * of the IOPS's priority. */
static void
lane_release_if_unused (Lane *lane)
{
  EpollBackend *b = lane->backend;

  if (lane == b->current || lane->n_watches > 0 || lane->has_timers)
    return;
  g_hash_table_remove (b->lanes, GINT_TO_POINTER (lane->priority));
  lane_destroy (lane);
}

/* The lane of @priority: every WATCH and timer is at the IOPS's priority,
 * whose lane exists (see use_priority). */
static inline Lane *
lane_get (EpollBackend *b,
          int           priority)
{
  if (G_LIKELY (b->current->priority == priority))
    return b->current;
  return g_hash_table_lookup (b->lanes, GINT_TO_POINTER (priority));
}

/* -- the backend interface ---------------------------------------------- */

static IopsWatch *
epoll_watch_new (IopsBackend *backend)
{
  EpollBackend *b = (EpollBackend *) backend;
  EpollWatch *w = g_new0 (EpollWatch, 1);

  w->refs = 1;
  w->rfd = -1;
  if (b->free_slots->len > 0)
    {
      w->slot = g_array_index (b->free_slots, guint, b->free_slots->len - 1);
      g_array_set_size (b->free_slots, b->free_slots->len - 1);
      g_ptr_array_index (b->slots, w->slot) = w;
    }
  else
    {
      w->slot = b->slots->len;
      g_ptr_array_add (b->slots, w);
    }
  return &w->watch;
}

/* Any other arm: a first one, a cold watch, another fd or priority. */
static G_GNUC_NO_INLINE void
watch_arm_slow (EpollBackend *b,
                EpollWatch   *w,
                int           fd,
                int           priority)
{
  Lane *lane = lane_get (b, priority);
  gboolean promote;

  if (w->lane != NULL && (w->lane != lane || w->rfd != fd))
    lane_unregister (w);

  promote = w->fired && !w->polled && hot_room (b);
  if (w->lane != NULL && w->in_epoll && promote)
    lane_unregister (w);

  /* Still registered here means cold: a hot one took the fast path. */
  if (w->lane == NULL)
    {
      w->rfd = fd;
      lane_register (lane, w, promote);
    }
  else if (epoll_register (lane, w, EPOLL_CTL_MOD) != 0)
    {
      /* The kernel forgot the fd (it was closed, maybe reopened as another
       * file with the same number): register it afresh. */
      epoll_forget (w);
      lane_leave (w);
      w->rfd = fd;
      lane_register (lane, w, FALSE);
    }
  w->fired = FALSE;
}

static void
epoll_watch_arm (IopsBackend    *backend,
                 IopsWatch      *watch,
                 int             fd,
                 IopsEventFlags  flags,
                 int             priority)
{
  EpollBackend *b = (EpollBackend *) backend;
  EpollWatch *w = EPOLL_WATCH (watch);

  w->armed_serial = b->serial;
  w->mask = flags_to_mask (flags);

  /* The usual re-arm, of a hot watch: poll() is stateless, so the same
   * number is whatever file it is now (rule 1) and asking for readiness
   * again is a store. */
  if (G_LIKELY (w->polled && w->rfd == fd && w->lane->priority == priority))
    {
      w->pfd.events = mask_to_condition (w->mask);
      w->kmask = w->mask;
      w->fired = FALSE;
      return;
    }
  watch_arm_slow (b, w, fd, priority);
}

static void
epoll_watch_disarm (IopsBackend *backend,
                    IopsWatch   *watch)
{
  EpollWatch *w = EPOLL_WATCH (watch);

  /* Lazily, like a delivery: an epoll registration keeps its mask and a
   * direct GPollFD asks for nothing, so that the next WATCH is cheap. An
   * error, hang-up or further readiness on the fd wakes us once, and then
   * the fd leaves the set (see deliver()). */
  if (G_UNLIKELY (w->nval))
    lane_unregister (w);  /* no poll would ever clear it */
  else if (w->polled && w->kmask != 0)
    {
      w->pfd.events = 0;
      w->kmask = 0;
    }
}

static void
epoll_watch_free (IopsBackend *backend,
                  IopsWatch   *watch)
{
  EpollBackend *b = (EpollBackend *) backend;
  EpollWatch *w = EPOLL_WATCH (watch);

  lane_unregister (w);
  g_ptr_array_index (b->slots, w->slot) = NULL;
  g_array_append_val (b->free_slots, w->slot);
  w->freed = TRUE;
  watch_unref (w);
}

/* The timerfd wakes the poll for the earliest timer of every priority; it
 * is polled by the lane of the IOPS's priority, which never goes away. */
static void
host_timerfd (EpollBackend *b,
              Lane         *host)
{
  if (b->tfd < 0 || b->timer_lane == host)
    return;
  if (b->timer_lane != NULL)
    source_poll (&b->timer_lane->source, &b->tfd_poll, &b->tfd_polled, FALSE);
  b->timer_lane = host;
  b->tfd_poll.fd = b->tfd;
  b->tfd_poll.events = G_IO_IN;
  source_poll (&host->source, &b->tfd_poll, &b->tfd_polled, TRUE);
}

static void
epoll_timers_armed (IopsBackend *backend,
                    int          priority)
{
  EpollBackend *b = (EpollBackend *) backend;
  Lane *lane = lane_get (b, priority);

  /* Nothing else to do per arm: prepare() reads the heaps. */
  lane->has_timers = TRUE;
  if (G_UNLIKELY (b->timer_lane == NULL))
    {
      if (b->tfd >= 0)
        host_timerfd (b, b->current);
      else
        b->timer_lane = b->current;  /* timers on, in milliseconds */
    }
}

static void
epoll_timers_idle (IopsBackend *backend,
                   int          priority)
{
  EpollBackend *b = (EpollBackend *) backend;
  Lane *lane = g_hash_table_lookup (b->lanes, GINT_TO_POINTER (priority));

  if (lane == NULL)
    return;
  lane->has_timers = FALSE;
  lane_release_if_unused (lane);
}

static void
epoll_use_priority (IopsBackend *backend,
                    int          priority)
{
  EpollBackend *b = (EpollBackend *) backend;
  Lane *old = b->current;

  b->current = g_hash_table_lookup (b->lanes, GINT_TO_POINTER (priority));
  if (b->current == NULL)
    b->current = lane_new (b, priority);
  if (b->timer_lane != NULL && b->tfd >= 0)
    host_timerfd (b, b->current);
  else if (b->timer_lane != NULL)
    b->timer_lane = b->current;
  if (old != NULL && old != b->current)
    lane_release_if_unused (old);
}

static void
epoll_disposing (IopsBackend *backend)
{
  ((EpollBackend *) backend)->disposing = TRUE;
}

static IopsBackend *
epoll_backend_create (IopsGLibIOPS *owner,
                      GMainContext *context)
{
  EpollBackend *b = g_new0 (EpollBackend, 1);

  b->parent.klass = &iops_backend_epoll_class;
  b->owner = owner;
  b->context = g_main_context_ref (context);
  b->lanes = g_hash_table_new (NULL, NULL);
  b->slots = g_ptr_array_new ();
  b->free_slots = g_array_new (FALSE, FALSE, sizeof (guint));
  b->next_gen = 1;
  b->tfd_deadline = -1;
  /* Without a timerfd, timers wait in GLib's whole milliseconds. */
  b->tfd = timerfd_create (CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  return &b->parent;
}

static void
epoll_backend_destroy (IopsBackend *backend)
{
  EpollBackend *b = (EpollBackend *) backend;
  GHashTableIter iter;
  gpointer lane;

  /* The core freed every watch first. A lane may be dispatching right now
   * (a callback dropped the IOPS): it sees that it was destroyed. */
  g_hash_table_iter_init (&iter, b->lanes);
  while (g_hash_table_iter_next (&iter, NULL, &lane))
    lane_destroy (lane);
  g_hash_table_unref (b->lanes);
  g_ptr_array_unref (b->slots);
  g_array_unref (b->free_slots);
  if (b->tfd >= 0)
    close (b->tfd);
  g_main_context_unref (b->context);
  g_free (b);
}

const IopsBackendClass iops_backend_epoll_class = {
  .name = "epoll",
  .create = epoll_backend_create,
  .destroy = epoll_backend_destroy,
  .watch_new = epoll_watch_new,
  .watch_arm = epoll_watch_arm,
  .watch_disarm = epoll_watch_disarm,
  .watch_free = epoll_watch_free,
  .use_priority = epoll_use_priority,
  .timers_armed = epoll_timers_armed,
  .timers_idle = epoll_timers_idle,
  .disposing = epoll_disposing,
};

/* iops-backend-epoll.c — the fd watches of an IOPS as one source per
 * priority over an epoll set (Linux)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * GLib polls every fd of every source on every iteration, which makes a
 * delivery cost O(watched fds). Here idle ("cold") fds wait in an epoll set
 * (iops-epoll-set.c) that GLib sees as a single fd, and the few fds that
 * actually fire ("hot" ones) are polled directly as GPollFDs of the same
 * source, where re-arming a one-shot watch costs neither a syscall nor an
 * allocation. Where a watch is polled is its Place, changed only by
 * watch_move():
 *
 *  - a watch starts cold, in the epoll set of its priority's lane;
 *  - a cold watch that fires becomes hot at its next WATCH, or after its
 *    delivery if it stays armed; when HOT_LIMIT are hot, a hot watch that
 *    is not armed makes room, going back to cold at its next WATCH;
 *  - an fd epoll refuses (a regular file, a file watched twice, a closed
 *    fd, a lane without an epoll fd) is polled directly too, so poll()
 *    reports it as usual (G_IO_NVAL for a closed fd); one epoll calls
 *    invalid (a stale number that now names an epoll fd) is reported as
 *    invalid, once, without a poll.
 *
 * Rule 1 says the same fd number may be a new file at any WATCH, and epoll
 * registers (fd, file) pairs: so every WATCH of a cold watch sets its mask
 * again, which also asks the kernel whether the number still names the
 * registered file. Stopping is lazy, as in libev: a cold or hot watch that
 * is not armed stays where it is until it wakes us once, and then leaves.
 *
 * Deliveries are collected first, then made; a callback may clean up any
 * watch, so the collected entries are handles (slot, ident) checked before
 * each delivery, and the loop stops if the callback destroyed its lane.
 *
 * After fork() the child shares the epoll sets with its parent: an IOPS must
 * not be used across fork(); disposing of it in the child only closes fds.
 */
#include "config.h"

#include <errno.h>
#include <sys/epoll.h>

#include "iops-backend.h"
#include "iops-epoll-set.h"

#define HOT_LIMIT   256  /* watches polled directly once they fired */
#define MAX_EVENTS  IOPS_EPOLL_SET_MAX_EVENTS  /* epoll events per dispatch */

typedef struct _Lane Lane;
typedef struct _EpollBackend EpollBackend;
typedef struct _EpollWatch EpollWatch;

typedef enum
{
  PLACE_NONE,     /* polled nowhere */
  PLACE_EPOLL,    /* cold: in its lane's epoll set */
  PLACE_HOT,      /* a GPollFD of its lane since it fired; counted */
  PLACE_DIRECT,   /* a GPollFD of its lane: epoll refused the fd */
  PLACE_INVALID,  /* epoll called the fd invalid: G_IO_NVAL, no poll */
} Place;

/* Small, and from GSlice: there is one per watched fd, idle ones included,
 * and a slice has no malloc header. */
struct _EpollWatch
{
  IopsWatch *watch;          /* the core's registration */
  Lane      *lane;           /* where it is placed, NULL for PLACE_NONE */
  union
  {
    IopsEpollMember member;  /* PLACE_EPOLL */
    struct
    {
      GPollFD pfd;           /* PLACE_HOT, PLACE_DIRECT */
      guint   index;         /* in lane->polled, but for PLACE_EPOLL */
    } polled;
  };
  guint32    armed_serial;   /* backend->serial at the latest WATCH */
  guint      slot;           /* in backend->table */
  guint32    ident;          /* tells it from a later watch in its slot */
  guint8     place;          /* Place; its fd is in the place's storage */
  guint8     mask;           /* EPOLLIN|EPOLLOUT of the latest WATCH */
  guint8     armed;          /* else disarmed or suspended */
  guint8     fired;          /* delivered since its latest WATCH */
};

/* A delivery collected by a dispatch: a handle, checked before it is made. */
typedef struct
{
  guint        slot;
  guint32      ident;
  GIOCondition revents;
  guint32      limit;   /* made only if the watch was armed before this */
} Ready;

struct _Lane
{
  GSource       source;
  EpollBackend *backend;
  int           priority;
  IopsEpollSet *set;
  GPollFD       set_poll;     /* the epoll fd, polled while it has members */
  gboolean      set_polled;
  GPtrArray    *polled;       /* EpollWatch * not in the epoll set */
  guint         n_invalid;    /* of them, PLACE_INVALID ones */
  guint         n_watches;    /* placed in this lane */
  gboolean      rebuild;      /* a stale registration woke us */
  guint32       check_serial;
  Ready        *ready;        /* what the outermost dispatch collects */
  guint         ready_allocated;
  guint         dispatching;  /* dispatches running, nested ones too */
};

struct _EpollBackend
{
  IopsBackend   parent;
  GMainContext *context;
  GHashTable   *lanes;       /* priority → Lane */
  Lane         *current;     /* of the IOPS's priority: never released */
  GPtrArray    *table;       /* EpollWatch * by slot, NULL when free */
  GArray       *free_slots;
  guint32       next_ident;
  guint32       serial;      /* bumped at every poll and collection; compared
                              * with serial_before(), so it may wrap */
  guint         n_hot;
  gboolean      disposing;   /* no per-watch epoll_ctl any more */
};

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

/* What a polled watch asks GLib for: nothing unless armed. */
static inline GIOCondition
wanted (EpollWatch *w)
{
  return w->armed ? mask_to_condition (w->mask) : 0;
}

static void lane_release_if_unused (Lane *lane);

/* Whether serial @a came before @b: they are never far apart, so this
 * holds across a wrap of the counter. */
static inline gboolean
serial_before (guint32 a,
               guint32 b)
{
  return (gint32) (a - b) < 0;
}

/* -- places --------------------------------------------------------------- */

/* The epoll fd is polled only while the set holds registrations: with
 * every watch hot, the poll covers exactly the fds that fire, as a
 * hand-written source would. */
static void
lane_sync_set_poll (Lane *lane)
{
  int epfd = iops_epoll_set_get_fd (lane->set);
  gboolean want = epfd >= 0 && iops_epoll_set_n_members (lane->set) > 0;

  if (lane->set_polled && (!want || lane->set_poll.fd != epfd))
    {
      g_source_remove_poll (&lane->source, &lane->set_poll);
      lane->set_polled = FALSE;
    }
  if (want && !lane->set_polled)
    {
      lane->set_poll.fd = epfd;
      lane->set_poll.events = G_IO_IN;
      lane->set_poll.revents = 0;
      g_source_add_poll (&lane->source, &lane->set_poll);
      lane->set_polled = TRUE;
    }
}

static void
polled_add (Lane       *lane,
            EpollWatch *w)
{
  w->polled.index = lane->polled->len;
  g_ptr_array_add (lane->polled, w);
}

static void
polled_remove (Lane       *lane,
               EpollWatch *w)
{
  EpollWatch *last = g_ptr_array_index (lane->polled, lane->polled->len - 1);

  g_ptr_array_index (lane->polled, w->polled.index) = last;
  last->polled.index = w->polled.index;
  g_ptr_array_set_size (lane->polled, lane->polled->len - 1);
}

static void
leave_place (EpollWatch *w)
{
  Lane *lane = w->lane;

  switch (w->place)
    {
    case PLACE_NONE:
      return;
    case PLACE_EPOLL:
      iops_epoll_set_remove (lane->set, &w->member, !lane->backend->disposing);
      lane_sync_set_poll (lane);
      break;
    case PLACE_HOT:
      lane->backend->n_hot--;
      G_GNUC_FALLTHROUGH;
    case PLACE_DIRECT:
      g_source_remove_poll (&lane->source, &w->polled.pfd);
      w->polled.pfd.revents = 0;  /* GLib no longer updates it */
      polled_remove (lane, w);
      break;
    case PLACE_INVALID:
      lane->n_invalid--;
      polled_remove (lane, w);
      break;
    }
  lane->n_watches--;
  w->lane = NULL;
  w->place = PLACE_NONE;
}

static void
enter_polled (EpollWatch *w,
              Place       place,
              int         fd)
{
  w->place = place;
  polled_add (w->lane, w);
  w->polled.pfd.fd = fd;
  w->polled.pfd.events = wanted (w);
  w->polled.pfd.revents = 0;
  if (place == PLACE_INVALID)
    {
      w->lane->n_invalid++;
      return;
    }
  if (place == PLACE_HOT)
    w->lane->backend->n_hot++;
  g_source_add_poll (&w->lane->source, &w->polled.pfd);
}

/* Cold: into the epoll set, or polled directly when epoll refuses. Makes
 * no fd: the consumer may have closed the number just before (rule 2). */
static void
enter_epoll (EpollWatch *w,
             int         fd)
{
  int error = iops_epoll_set_add (w->lane->set, &w->member, fd, w->mask, w->slot);

  if (error == 0)
    {
      w->place = PLACE_EPOLL;
      lane_sync_set_poll (w->lane);
    }
  else
    enter_polled (w, error == EINVAL || error == ELOOP ? PLACE_INVALID : PLACE_DIRECT, fd);
}

/* The fd @w watches where it is, or -1. */
static int
watch_fd (EpollWatch *w)
{
  switch (w->place)
    {
    case PLACE_NONE:
      return -1;
    case PLACE_EPOLL:
      return w->member.fd;
    default:
      return w->polled.pfd.fd;
    }
}

/* The one way a watch changes place: to @place in @lane, polling @fd
 * (PLACE_NONE needs neither). */
static void
watch_move (EpollWatch *w,
            Lane       *lane,
            Place       place,
            int         fd)
{
  Lane *left = w->lane;

  leave_place (w);
  if (place != PLACE_NONE)
    {
      w->lane = lane;
      lane->n_watches++;
      if (place == PLACE_EPOLL)
        enter_epoll (w, fd);
      else
        enter_polled (w, place, fd);
    }
  if (left != NULL && left != lane)
    lane_release_if_unused (left);
}

/* The member of @key in @lane's set, for the set's bookkeeping. */
static IopsEpollMember *
lookup_member (guint    key,
               gpointer data)
{
  Lane *lane = data;
  GPtrArray *table = lane->backend->table;
  EpollWatch *w = key < table->len ? g_ptr_array_index (table, key) : NULL;

  return w != NULL && w->place == PLACE_EPOLL && w->lane == lane ? &w->member : NULL;
}

/* Another member registered this watch's number in its set: its file was
 * closed, and the kernel forgot it. */
static void
on_evicted (IopsEpollMember *member,
            gpointer         data)
{
  EpollWatch *w = (EpollWatch *) (void *) ((char *) member - G_STRUCT_OFFSET (EpollWatch, member));
  Lane *lane = data;

  w->place = PLACE_NONE;
  w->lane = NULL;
  lane->n_watches--;
}

/* Re-creates @lane's epoll set: the only way to drop a registration the
 * kernel kept for a closed, dup'd fd. Rare; O(watches). A watch that
 * cannot be registered again (its fd is gone or was reused, or no fd is
 * left for a new set) is polled directly: poll() says what it is. */
static void
lane_rebuild (Lane *lane)
{
  GPtrArray *table = lane->backend->table;

  lane->rebuild = FALSE;
  iops_epoll_set_reset (lane->set);
  for (guint i = 0; i < table->len; i++)
    {
      EpollWatch *w = g_ptr_array_index (table, i);
      int fd;

      if (w == NULL || w->lane != lane || w->place != PLACE_EPOLL)
        continue;
      fd = w->member.fd;
      w->member.fd = -1;
      if (iops_epoll_set_add (lane->set, &w->member, fd, w->member.mask, w->slot) != 0)
        enter_polled (w, PLACE_DIRECT, fd);  /* still counted in the lane */
    }
  lane_sync_set_poll (lane);
}

/* Whether one more watch may be hot. When HOT_LIMIT are, one that is not
 * armed (an idle one, most likely) leaves: it would cost every poll
 * without firing. It goes back to cold at its next WATCH. */
static gboolean
hot_room (EpollBackend *b)
{
  GHashTableIter iter;
  gpointer value;

  if (b->n_hot < HOT_LIMIT)
    return TRUE;

  /* Moving may release a lane; the walk ends right then. */
  g_hash_table_iter_init (&iter, b->lanes);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      Lane *lane = value;

      for (guint i = 0; i < lane->polled->len; i++)
        {
          EpollWatch *w = g_ptr_array_index (lane->polled, i);

          if (w->place == PLACE_HOT && !w->armed)
            {
              watch_move (w, NULL, PLACE_NONE, -1);
              return TRUE;
            }
        }
    }
  return FALSE;
}

/* -- the lane source ---------------------------------------------------- */

static gboolean
lane_prepare (GSource *source,
              int     *timeout)
{
  Lane *lane = (Lane *) source;

  /* Readiness the coming poll finds belongs to arms made before it. Set
   * here, not in check(): GLib skips check() for a source whose prepare()
   * said it was ready. */
  lane->check_serial = ++lane->backend->serial;
  *timeout = -1;
  /* Made while fds ran out (EMFILE)? Try again, from the loop — never from
   * inside a WATCH. Watches placed meanwhile stay polled directly. */
  if (G_UNLIKELY (!iops_epoll_set_usable (lane->set)))
    return lane->n_invalid > 0;
  return lane->rebuild || lane->n_invalid > 0;
}

static gboolean
lane_check (GSource *source)
{
  Lane *lane = (Lane *) source;
  EpollWatch **polled = (EpollWatch **) lane->polled->pdata;
  guint n_polled = lane->polled->len;

  if (lane->rebuild || lane->n_invalid > 0 ||
      (lane->set_polled && lane->set_poll.revents != 0))
    return TRUE;
  /* With g_source_add_poll() GLib leaves it to us to see what polled. */
  for (guint i = 0; i < n_polled; i++)
    if (polled[i]->polled.pfd.revents != 0)
      return TRUE;
  return FALSE;
}

static inline Ready
ready_entry (EpollWatch   *w,
             GIOCondition  revents,
             guint32       limit)
{
  return (Ready) { w->slot, w->ident, revents, limit };
}

/* With more ready than MAX_EVENTS, the epoll fd stays readable and the next
 * dispatch takes the next ones: epoll hands out level-triggered events
 * round-robin, so none starves. */
static guint
collect_epoll (Lane  *lane,
               Ready *ready,
               guint  n)
{
  EpollBackend *b = lane->backend;
  IopsEpollEvent events[MAX_EVENTS];
  guint32 limit = ++b->serial;
  guint k = iops_epoll_set_wait (lane->set, events, MAX_EVENTS);

  for (guint i = 0; i < k; i++)
    {
      EpollWatch *w = events[i].key < b->table->len ? g_ptr_array_index (b->table, events[i].key) : NULL;
      GIOCondition revents = events[i].revents;

      if (w == NULL || w->place != PLACE_EPOLL || w->lane != lane || w->member.gen != events[i].gen)
        {
          lane->rebuild = TRUE;  /* a registration nobody owns */
          continue;
        }
      /* epoll goes on reporting a file whose fd was closed while a dup
       * keeps it open, even once the number names another file. Ask the
       * kernel whether our (fd, file) pair is still the one behind the
       * number, and report it as poll() reports a closed fd otherwise, so
       * that it is disarmed after one delivery. Only cold watches pay this
       * syscall: one that fires becomes hot and is polled directly. */
      if (w->armed)
        {
          int error = iops_epoll_set_modify (lane->set, &w->member, w->mask);

          if (error == EBADF || error == ENOENT)
            revents = G_IO_NVAL;
        }
      ready[n++] = ready_entry (w, revents, limit);
    }
  return n;
}

/* Every polled watch that is ready: all of them, so that none starves
 * however many are ready at once. */
static guint
collect_polled (Lane  *lane,
                Ready *ready,
                guint  n)
{
  EpollWatch **polled = (EpollWatch **) lane->polled->pdata;
  guint n_polled = lane->polled->len;

  for (guint i = 0; i < n_polled; i++)
    {
      EpollWatch *w = polled[i];
      GIOCondition revents = w->place == PLACE_INVALID ? G_IO_NVAL : w->polled.pfd.revents;

      if (revents != 0)
        ready[n++] = ready_entry (w, revents, lane->check_serial);
    }
  return n;
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
deliver (EpollBackend *b,
         const Ready  *r)
{
  EpollWatch *w = r->slot < b->table->len ? g_ptr_array_index (b->table, r->slot) : NULL;

  if (w == NULL || w->ident != r->ident || !serial_before (w->armed_serial, r->limit))
    return;  /* cleaned up, or armed again after the poll: the next one tells */
  if (!w->armed)
    {
      watch_move (w, NULL, PLACE_NONE, -1);  /* stopped, yet it woke us: let go */
      return;
    }
  w->fired = TRUE;
  if (!iops_watch_deliver (w->watch, r->revents))
    return;  /* cleaned up by its callback */
  /* Still armed in epoll (persistent, or armed again by a WATCH that found
   * no room to promote it then): promote it now if there is room. */
  if (G_UNLIKELY (w->armed && w->place == PLACE_EPOLL) && hot_room (b))
    watch_move (w, w->lane, PLACE_HOT, watch_fd (w));
}

static gboolean
lane_dispatch (GSource     *source,
               GSourceFunc  callback,
               gpointer     user_data)
{
  Lane *lane = (Lane *) source;
  EpollBackend *b = lane->backend;
  gboolean epoll_ready = lane->set_polled && lane->set_poll.revents != 0;
  Ready *ready;
  guint n = 0;

  if (G_UNLIKELY (lane->rebuild))
    {
      lane_rebuild (lane);
      epoll_ready = FALSE;
    }

  lane->dispatching++;
  ready = ready_buffer (lane, lane->polled->len + (epoll_ready ? MAX_EVENTS : 0));
  if (epoll_ready)
    n = collect_epoll (lane, ready, n);
  n = collect_polled (lane, ready, n);
  /* A callback may destroy this lane, and dispose the IOPS with the
   * backend: then stop, touching neither. */
  for (guint i = 0; i < n && !g_source_is_destroyed (source); i++)
    deliver (b, &ready[i]);
  if (ready != lane->ready)
    g_free (ready);
  lane->dispatching--;
  return G_SOURCE_CONTINUE;
}

static void
lane_finalize (GSource *source)
{
  Lane *lane = (Lane *) source;

  iops_epoll_set_free (lane->set);
  g_clear_pointer (&lane->polled, g_ptr_array_unref);
  g_clear_pointer (&lane->ready, g_free);
}

static GSourceFuncs lane_funcs = {
  .prepare = lane_prepare,
  .check = lane_check,
  .dispatch = lane_dispatch,
  .finalize = lane_finalize,
};

static Lane *
lane_new (EpollBackend *b,
          int           priority)
{
  Lane *lane = (Lane *) g_source_new (&lane_funcs, sizeof (Lane));

  lane->backend = b;
  lane->priority = priority;
  /* Without an fd to spare (EMFILE) the lane's watches are polled
   * directly, as the gsource backend would, until one is free again. */
  lane->set = iops_epoll_set_new (lookup_member, on_evicted, lane);
  lane->polled = g_ptr_array_new ();
  g_source_set_static_name (&lane->source, "IopsGLibIOPS");
  g_source_set_priority (&lane->source, priority);
  /* A nested start_watching() from a callback keeps dispatching. */
  g_source_set_can_recurse (&lane->source, TRUE);
  g_source_attach (&lane->source, b->context);
  g_hash_table_insert (b->lanes, GINT_TO_POINTER (priority), lane);
  return lane;
}

/* A dispatch of @lane still running sees it destroyed; GLib's reference
 * keeps it valid until then. */
static void
lane_destroy (Lane *lane)
{
  g_source_destroy (&lane->source);
  g_source_unref (&lane->source);
}

/* A lane that polls nothing goes, unless it is the lane of the IOPS's
 * priority. */
static void
lane_release_if_unused (Lane *lane)
{
  EpollBackend *b = lane->backend;

  if (lane == b->current || lane->n_watches > 0)
    return;
  g_hash_table_remove (b->lanes, GINT_TO_POINTER (lane->priority));
  lane_destroy (lane);
}

/* -- the backend interface ---------------------------------------------- */

static gpointer
epoll_watch_new (IopsBackend *backend,
                 IopsWatch   *watch)
{
  EpollBackend *b = (EpollBackend *) backend;
  EpollWatch *w = g_slice_new0 (EpollWatch);

  w->watch = watch;
  w->ident = ++b->next_ident;
  if (b->free_slots->len > 0)
    {
      w->slot = g_array_index (b->free_slots, guint, b->free_slots->len - 1);
      g_array_set_size (b->free_slots, b->free_slots->len - 1);
      g_ptr_array_index (b->table, w->slot) = w;
    }
  else
    {
      w->slot = b->table->len;
      g_ptr_array_add (b->table, w);
    }
  return w;
}

static void
epoll_watch_free (IopsBackend *backend,
                  gpointer     poll)
{
  EpollBackend *b = (EpollBackend *) backend;
  EpollWatch *w = poll;

  watch_move (w, NULL, PLACE_NONE, -1);
  g_ptr_array_index (b->table, w->slot) = NULL;
  g_array_append_val (b->free_slots, w->slot);
  g_slice_free (EpollWatch, w);
}

/* Any arm but the re-arm of a polled watch: a first one, a cold one,
 * another fd or priority. */
/* Any arm but the re-arm of a polled watch: a first one, a cold one,
 * another fd or priority. */
static G_GNUC_NO_INLINE void
watch_arm_slow (EpollBackend *b,
                EpollWatch   *w,
                int           fd,
                Lane         *lane)
{
  gboolean promote = w->fired && w->place != PLACE_HOT && hot_room (b);

  if (w->lane != lane || watch_fd (w) != fd)
    watch_move (w, NULL, PLACE_NONE, -1);
  w->fired = FALSE;

  if (w->place == PLACE_NONE || (w->place == PLACE_EPOLL && promote))
    watch_move (w, lane, promote ? PLACE_HOT : PLACE_EPOLL, fd);
  else if (w->place == PLACE_EPOLL &&
           iops_epoll_set_modify (lane->set, &w->member, w->mask) != 0)
    /* The kernel forgot the fd (it was closed, maybe reopened as another
     * file with the same number): register it afresh. */
    watch_move (w, lane, PLACE_EPOLL, fd);
  else
    w->polled.pfd.events = wanted (w);
}

static void
epoll_watch_arm (IopsBackend    *backend,
                 gpointer        poll,
                 int             fd,
                 IopsEventFlags  flags,
                 int             priority)
{
  EpollBackend *b = (EpollBackend *) backend;
  EpollWatch *w = poll;
  /* Every WATCH is at the IOPS's priority, whose lane exists. */
  Lane *lane = b->current;

  g_assert (lane->priority == priority);
  w->armed_serial = b->serial;
  w->mask = flags_to_mask (flags);
  w->armed = TRUE;

  /* The usual re-arm, of a polled watch: poll() is stateless, so the same
   * number is whatever file it is now (rule 1) and asking for readiness
   * again is a store. */
  if (G_LIKELY ((w->place == PLACE_HOT || w->place == PLACE_DIRECT) &&
                w->lane == lane && w->polled.pfd.fd == fd))
    {
      w->polled.pfd.events = mask_to_condition (w->mask);
      w->fired = FALSE;
      return;
    }
  watch_arm_slow (b, w, fd, lane);
}

/* Disarming and suspending are the same here, and lazy: a watch in the
 * epoll set keeps its mask there and a polled one asks for nothing, so
 * that the next WATCH is cheap. An error, hang-up or further readiness
 * wakes us once, and then the fd is let go (see deliver()). */
static void
watch_stop (EpollWatch *w)
{
  w->armed = FALSE;
  if (w->place == PLACE_HOT || w->place == PLACE_DIRECT)
    w->polled.pfd.events = 0;
  else if (w->place == PLACE_INVALID)
    watch_move (w, NULL, PLACE_NONE, -1);  /* no poll would ever clear it */
}

static void
epoll_watch_disarm (IopsBackend *backend,
                    gpointer     poll)
{
  watch_stop (poll);
}

static void
epoll_watch_suspend (IopsBackend *backend,
                     gpointer     poll)
{
  watch_stop (poll);
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
  if (old != NULL && old != b->current)
    lane_release_if_unused (old);
}

static void
epoll_disposing (IopsBackend *backend)
{
  /* Closing the epoll fds drops every registration of this process; after
   * fork(), the registrations are the parent's as well. */
  ((EpollBackend *) backend)->disposing = TRUE;
}

static IopsBackend *
epoll_backend_create (GMainContext *context)
{
  EpollBackend *b = g_new0 (EpollBackend, 1);

  b->parent.klass = &iops_backend_epoll_class;
  b->context = g_main_context_ref (context);
  b->lanes = g_hash_table_new (NULL, NULL);
  b->table = g_ptr_array_new ();
  b->free_slots = g_array_new (FALSE, FALSE, sizeof (guint));
  return &b->parent;
}

static void
epoll_backend_destroy (IopsBackend *backend)
{
  EpollBackend *b = (EpollBackend *) backend;
  GHashTableIter iter;
  gpointer lane;

  /* Every watch was freed first. */
  g_hash_table_iter_init (&iter, b->lanes);
  while (g_hash_table_iter_next (&iter, NULL, &lane))
    lane_destroy (lane);
  g_hash_table_unref (b->lanes);
  g_ptr_array_unref (b->table);
  g_array_unref (b->free_slots);
  g_main_context_unref (b->context);
  g_free (b);
}

const IopsBackendClass iops_backend_epoll_class = {
  .name = "epoll",
  .precise_timers = TRUE,
  .create = epoll_backend_create,
  .destroy = epoll_backend_destroy,
  .use_priority = epoll_use_priority,
  .disposing = epoll_disposing,
  .watch_new = epoll_watch_new,
  .watch_free = epoll_watch_free,
  .watch_arm = epoll_watch_arm,
  .watch_disarm = epoll_watch_disarm,
  .watch_suspend = epoll_watch_suspend,
};

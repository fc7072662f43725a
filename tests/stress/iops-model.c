/* iops-model.c — an executable model of DESIGN.md's rules, driven by a
 * stream of bytes
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * What the model knows, and checks:
 *
 *  - which events are armed, with which flags, on which fd number and in
 *    which mode (rules 1, 3, 13); a delivery to an event the model has
 *    disarmed (UNWATCH, CLEANUP, a one-shot delivery, disposal) is an error
 *    (rules 3, 4, 5, 7, 11);
 *  - what each fd could have reported during the current iteration: a
 *    poll() at the start of every iteration and after every operation that
 *    changes an fd. A READ without data or error, a WRITE without room or
 *    error, or fewer than all watched flags on a hung-up or invalid fd is an
 *    error (rule 2);
 *  - what must be delivered: an armed watch whose fd stays ready, or a due
 *    timer, must be delivered within STARVE_LIMIT iterations in which
 *    nothing of a better priority was (no lost wake-up); a poll that sleeps
 *    its whole bound through a due timer is an error;
 *  - many ready fds at once: now and then a crowd of CROWD_MIN to CROWD_MAX
 *    watched fds that are always ready — /dev/null, which epoll refuses and
 *    which is therefore polled directly, and socket ends with room or with
 *    unread data — lives for CROWD_LIFE iterations, one-shot and re-armed
 *    from its callbacks or persistent. Each member must be reported with
 *    exactly the watched flags it is ready for, within STARVE_LIMIT
 *    iterations, however many others are ready; the idle ones never
 *    (rules 2, 3);
 *  - timers: never early, once per arm, in deadline order and, for equal
 *    deadlines, in the order of their WATCH (rule 7);
 *  - fds closed while armed: at most one report in the iterations after
 *    the close (rule 2). Their numbers are reserved until no armed event
 *    refers to them, so a later socket cannot take the number and be
 *    mistaken for them; other closed numbers are reused first, so that
 *    "the same number is a new socket" (rule 1) is exercised a lot;
 *  - a fileno() that re-enters, as a binding's may: some events override
 *    fileno(), and when the bytes say so it runs an operation of its own
 *    before it returns — WATCH, UNWATCH, CLEANUP or the consumer's unref, of
 *    its own event or another. The WATCH that called it must still do what
 *    rule 1 says: read fileno(), then watch that fd, as one registration.
 *    CLEANUP never reads fileno() (rule 5);
 *  - references (rule 6): an event is never finalized while armed, held
 *    by the consumer, in its callback or in a WATCH of it, and is finalized
 *    as soon as it is none of these and not registered (CLEANUP, disposal);
 *  - the last reference dropped on another thread (rules 6, 10): the
 *    consumer's reference to a disarmed event goes to a worker thread, which
 *    drops it while this thread goes on with operations and the next
 *    iteration; the model waits for it at the end of that iteration and
 *    checks the event is alive exactly when rule 6 says, wherever it was
 *    finalized. What the IOPS does meanwhile is for the sanitizers to judge;
 *  - no callback from inside update_event/update_timer or disposal.
 *
 * Every fd number the model uses is FD_BASE + index, placed there with
 * dup3(), so the model, not the kernel, decides when a number is reused.
 * The crowd's fds sit above them, from CROWD_FD_BASE.
 *
 * Each operation is one function of the table ops[]; an opcode byte picks
 * one by its weight.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <iops-glib.h>

#include "iops-model.h"

#define N_IO          12
#define N_TIMERS      8
#define N_CHANNELS    6
#define N_ENDS        (2 * N_CHANNELS)
#define FD_BASE       200
#define N_NUMS        48
#define STARVE_LIMIT  16
#define POLL_CAP_MS   1000
#define CB_MAX_OPS    3
#define TRACE_LEN     256

/* Of 256 fileno() calls of a re-entrant event, how many run an operation. */
#define FILENO_REENTER  96

#define CROWD_FD_BASE   (FD_BASE + N_NUMS)
#define CROWD_MIN       256
#define CROWD_MAX       1200
#define CROWD_LIFE      (STARVE_LIMIT + 4)  /* iterations */
#define CROWD_SPACING   40000               /* random runs: operations between crowds */
#define FD_SLACK        16

#define ERROR_REVENTS (POLLERR | POLLHUP | POLLNVAL)

/* The operations in the order their opcode ranges come (see draw_op()). */
typedef enum {
  OP_IO_WATCH,
  OP_IO_UNWATCH,
  OP_IO_CLEANUP,
  OP_IO_NEW,
  OP_IO_UNREF,
  OP_TM_WATCH,
  OP_TM_UNWATCH,
  OP_TM_CLEANUP,
  OP_TM_NEW,
  OP_TM_UNREF,
  OP_WRITE,
  OP_READ,
  OP_FILL,
  OP_CLOSE,
  OP_OPEN,
  OP_SET_PERSISTENT,
  OP_SET_PRIORITY,
  OP_IOPS_RESET,
  OP_IO_DROP_THREAD,
  OP_TM_DROP_THREAD,
  OP_CROWD,
  OP_IO_REVIVE,
  OP_TM_REVIVE,
  OP_ITERATE,  /* every opcode byte past the others' ranges */
  N_OPS,
  /* trace only */
  EV_IO_READY = N_OPS,
  EV_TIMER_READY,
  EV_FILENO,
  EV_DROPPED,
  EV_CROWD_GONE,
} Op;

static const char *const event_names[] = {
  "io-ready", "timer-ready", "fileno", "dropped", "crowd-gone",
};

static const int priorities[] = { G_PRIORITY_DEFAULT, G_PRIORITY_DEFAULT - 10, G_PRIORITY_DEFAULT + 10 };
static const IopsEventFlags flag_choices[] = { IOPS_READ_EVENT, IOPS_WRITE_EVENT, IOPS_RW_EVENT };
static const char *const crowd_kinds[] = { "/dev/null", "sockets", "mixed" };

/* What a fileno() that re-enters does: what a binding's could. */
static const Op fileno_ops[] = { OP_IO_CLEANUP, OP_IO_WATCH, OP_IO_UNWATCH, OP_IO_UNREF };

typedef struct
{
  guint64 n;
  guint64 iter;
  guint8  depth;
  guint8  op;
  int     a, b, c;
} TraceRec;

typedef struct
{
  int   end;       /* the endpoint whose socket is at this number, or -1 */
  guint gen;       /* bumped whenever a new socket lands here */
  guint snap_gen;
  short snap;      /* revents at the start of the iteration */
  short win;       /* every revents seen since then */
} Num;

typedef struct _ModelIOEvent ModelIOEvent;
typedef struct _ModelTimerEvent ModelTimerEvent;

typedef struct
{
  ModelIOEvent  *obj;          /* NULL: free slot */
  gboolean       held;         /* the consumer's reference */
  gboolean       registered;   /* WATCHed since the latest CLEANUP */
  gboolean       armed;
  gboolean       persistent;   /* mode of the latest WATCH */
  gboolean       invalid;      /* the fd was closed at WATCH */
  gboolean       orphan;       /* the fd was closed while armed */
  gboolean       reentrant;    /* its fileno() may run an operation */
  gboolean       in_flight;    /* the worker drops the consumer's reference */
  GWeakRef       weak;         /* the consumer's, to take the event back */
  IopsEventFlags flags;
  int            num;          /* number of the latest WATCH, or -1 */
  int            priority;
  guint64        armed_iter, orphan_iter, delivered_iter;
  guint          orphan_late;  /* reports after the close's iteration */
  guint          starve;
  guint          in_cb;
  guint          in_fileno;    /* its fileno() runs (inside a WATCH of it) */
  guint          in_cleanup;   /* a CLEANUP of it runs */
  guint          fileno_calls;
} IoModel;

typedef struct
{
  ModelTimerEvent *obj;
  gboolean         held, registered, armed;
  gboolean         in_flight;
  GWeakRef         weak;
  gint64           dl_lo, dl_hi;  /* the deadline lies in between */
  guint64          seq;           /* order of the latest WATCH */
  int              priority;
  guint64          armed_iter;
  guint            starve;
  guint            in_cb;
} TimerModel;

/* One always-ready fd of the crowd and its watch. */
typedef struct
{
  ModelIOEvent  *obj;
  int            fd;
  IopsEventFlags flags;         /* watched */
  IopsEventFlags ready;         /* of them, what the fd is always ready for */
  gboolean       held, armed, persistent;
  int            priority;
  guint64        armed_iter, delivered_iter;
  guint64        n_delivered;
  guint          starve;
  guint          in_cb;
} CrowdMember;

typedef struct
{
  CrowdMember *members;   /* NULL: no crowd */
  guint        n;
  int          kind;
  guint64      until;     /* the iteration that ends it */
  gboolean     closing;
} Crowd;

/* A reference for the worker thread to drop. */
typedef struct _DropJob DropJob;
struct _DropJob
{
  DropJob  *next;
  gpointer  obj;
  gboolean  is_timer;
  int       slot;
  gboolean  finalized_there;   /* written by the worker, read after the hand-back */
};

/* The hand-over to the worker: pthread's lock and condition variable,
 * which ThreadSanitizer sees (GLib's GMutex is a futex of its own). */
typedef struct
{
  pthread_mutex_t lock;
  pthread_cond_t  cond;
  GThread        *thread;      /* started by the first drop */
  DropJob        *todo, **todo_tail;
  DropJob        *done, **done_tail;
  guint           pending;     /* posted and not done yet */
  gboolean        stop;
} Dropper;

struct _Model
{
  /* the byte stream */
  gboolean      from_bytes;
  guint64       rng;
  const guint8 *data;
  gsize         len, pos;
  gboolean      exhausted;

  GMainContext *context;
  IopsGLibIOPS *glib_iops;
  gboolean      persistent;
  int           priority;

  IoModel       io[N_IO];
  TimerModel    tm[N_TIMERS];
  int           end_num[N_ENDS];   /* number of each socket end, or -1 */
  Num           nums[N_NUMS];
  guint64       freed_at[N_NUMS];
  guint64       free_tick;

  Crowd         crowd;
  guint         crowd_cap;         /* the most fds a crowd may have here */
  guint64       next_crowd_at;     /* random runs: n_ops of the next crowd */

  Dropper       dropper;

  guint32       disabled;          /* 1 << Op: operations model_disable() turned off */
  guint32       fileno_disabled;   /* 1 << Op: of them, those only inside fileno() */

  guint64       iter;
  gboolean      in_iteration;
  gboolean      settling;
  gint64        iter_start;
  int           best_prio;         /* best priority delivered this iteration */
  guint64       timer_seq;
  guint         in_update;         /* update_event/update_timer calls running */
  gboolean      in_dispose;
  int           depth;
  int           fileno_depth;
  int           cb_io, cb_tm;      /* slot whose callback (or fileno) runs, or -1 */
  GPollFD      *pfds;
  int           n_pfds;

  guint64       n_ops, n_io_cb, n_tm_cb, n_orphans, n_resets, n_blocks, n_noop;
  guint64       n_reentries, n_crowds, n_crowd_fds, n_crowd_cb, n_drops, n_dropped_there;

  TraceRec      trace[TRACE_LEN];
  guint64       n_trace;
  GString      *error;
  gboolean      failed;

  guint8        scratch[65536];
};

/* -- the event types --------------------------------------------------- */

struct _ModelIOEvent
{
  IopsIOEvent parent_instance;
  Model      *model;     /* NULL once the model let go of it */
  int         slot;      /* in m->io[], or in the crowd */
  gboolean    in_crowd;
};

typedef struct
{
  IopsIOEventClass parent_class;
} ModelIOEventClass;

/* An event whose fileno() may call back into the IOPS. */
typedef struct
{
  ModelIOEvent parent_instance;
} ModelFilenoEvent;

typedef struct
{
  ModelIOEventClass parent_class;
} ModelFilenoEventClass;

struct _ModelTimerEvent
{
  IopsTimerEvent parent_instance;
  Model         *model;
  int            slot;
};

typedef struct
{
  IopsTimerEventClass parent_class;
} ModelTimerEventClass;

GType model_io_event_get_type (void);
GType model_fileno_event_get_type (void);
GType model_timer_event_get_type (void);

G_DEFINE_TYPE (ModelIOEvent, model_io_event, IOPS_TYPE_IO_EVENT)
G_DEFINE_FINAL_TYPE (ModelFilenoEvent, model_fileno_event, model_io_event_get_type ())
G_DEFINE_FINAL_TYPE (ModelTimerEvent, model_timer_event, IOPS_TYPE_TIMER_EVENT)

/* The job the worker thread is dropping, on that thread only. */
static GPrivate dropping = G_PRIVATE_INIT (NULL);

static void model_io_ready (Model *m, int slot, IopsEventFlags ready);
static void model_io_finalized (Model *m, int slot);
static void model_fileno_called (Model *m, int slot);
static void crowd_ready (Model *m, int index, IopsEventFlags ready);
static void crowd_finalized (Model *m, int index);
static void model_timer_ready (Model *m, int slot, int flags);
static void model_timer_finalized (Model *m, int slot);

static void
io_event_ready (IopsIOEvent    *event,
                IopsEventFlags  ready)
{
  ModelIOEvent *self = (ModelIOEvent *) event;

  if (self->model == NULL)
    return;
  if (self->in_crowd)
    crowd_ready (self->model, self->slot, ready);
  else
    model_io_ready (self->model, self->slot, ready);
}

static void
model_io_event_ready_r (IopsIOEvent *event)
{
  io_event_ready (event, IOPS_READ_EVENT);
}

static void
model_io_event_ready_w (IopsIOEvent *event)
{
  io_event_ready (event, IOPS_WRITE_EVENT);
}

static void
model_io_event_ready_rw (IopsIOEvent *event)
{
  io_event_ready (event, IOPS_RW_EVENT);
}

/* Finalized on the worker: only noted there, and checked on the model's
 * thread once the worker hands the job back. */
static gboolean
finalized_on_worker (gpointer object)
{
  DropJob *job = g_private_get (&dropping);

  if (job == NULL)
    return FALSE;
  g_assert (job->obj == object);
  job->finalized_there = TRUE;
  return TRUE;
}

static void
model_io_event_finalize (GObject *object)
{
  ModelIOEvent *self = (ModelIOEvent *) object;

  if (!finalized_on_worker (object) && self->model != NULL)
    {
      if (self->in_crowd)
        crowd_finalized (self->model, self->slot);
      else
        model_io_finalized (self->model, self->slot);
    }
  G_OBJECT_CLASS (model_io_event_parent_class)->finalize (object);
}

static void
model_io_event_class_init (ModelIOEventClass *klass)
{
  IopsIOEventClass *event_class = IOPS_IO_EVENT_CLASS (klass);

  G_OBJECT_CLASS (klass)->finalize = model_io_event_finalize;
  event_class->ready_r = model_io_event_ready_r;
  event_class->ready_w = model_io_event_ready_w;
  event_class->ready_rw = model_io_event_ready_rw;
}

static void
model_io_event_init (ModelIOEvent *self)
{
}

static int
model_fileno_event_fileno (IopsIOEvent *event)
{
  ModelIOEvent *self = (ModelIOEvent *) event;
  /* What the WATCH was asked to watch, whatever the operation run below
   * does to the property (or to the event). */
  int fd = iops_io_event_get_fd (event);

  if (self->model != NULL)
    model_fileno_called (self->model, self->slot);
  return fd;
}

static void
model_fileno_event_class_init (ModelFilenoEventClass *klass)
{
  IOPS_IO_EVENT_CLASS (klass)->fileno = model_fileno_event_fileno;
}

static void
model_fileno_event_init (ModelFilenoEvent *self)
{
}

static void
model_timer_event_ready (IopsTimerEvent *event,
                         int             flags)
{
  ModelTimerEvent *self = (ModelTimerEvent *) event;

  if (self->model != NULL)
    model_timer_ready (self->model, self->slot, flags);
}

static void
model_timer_event_finalize (GObject *object)
{
  ModelTimerEvent *self = (ModelTimerEvent *) object;

  if (!finalized_on_worker (object) && self->model != NULL)
    model_timer_finalized (self->model, self->slot);
  G_OBJECT_CLASS (model_timer_event_parent_class)->finalize (object);
}

static void
model_timer_event_class_init (ModelTimerEventClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = model_timer_event_finalize;
  IOPS_TIMER_EVENT_CLASS (klass)->ready = model_timer_event_ready;
}

static void
model_timer_event_init (ModelTimerEvent *self)
{
}

/* -- bytes, trace, failure --------------------------------------------- */

/* splitmix64: one multiply chain per value is cheap next to a syscall. */
static guint64
splitmix64 (guint64 *state)
{
  guint64 z = (*state += G_GUINT64_CONSTANT (0x9E3779B97F4A7C15));

  z = (z ^ (z >> 30)) * G_GUINT64_CONSTANT (0xBF58476D1CE4E5B9);
  z = (z ^ (z >> 27)) * G_GUINT64_CONSTANT (0x94D049BB133111EB);
  return z ^ (z >> 31);
}

static guint8
next_byte (Model *m)
{
  if (m->from_bytes)
    {
      if (m->pos < m->len)
        return m->data[m->pos++];
      m->exhausted = TRUE;
      return 0;
    }
  return (guint8) (splitmix64 (&m->rng) >> 56);
}

static void
trace (Model *m,
       Op     op,
       int    a,
       int    b,
       int    c)
{
  TraceRec *r = &m->trace[m->n_trace++ % TRACE_LEN];

  r->n = m->n_ops;
  r->iter = m->iter;
  r->depth = (guint8) m->depth;
  r->op = (guint8) op;
  r->a = a;
  r->b = b;
  r->c = c;
}

static const char *op_name (int op);

static inline int
num_fd (int num)
{
  return FD_BASE + num;
}

static const char *
flags_name (int flags)
{
  switch (flags)
    {
    case 0: return "0";
    case IOPS_READ_EVENT: return "R";
    case IOPS_WRITE_EVENT: return "W";
    case IOPS_RW_EVENT: return "RW";
    default: return "?";
    }
}

static void
format_trace_args (const TraceRec *r,
                   GString        *out)
{
  switch (r->op)
    {
    case OP_IO_WATCH:
      g_string_append_printf (out, " io%d fd=%d flags=%s%s", r->a, r->b + FD_BASE,
                              flags_name (r->c & 0xff), (r->c & 0x100) ? " persistent" : "");
      break;
    case OP_IO_NEW:
      g_string_append_printf (out, " io%d%s", r->a, r->b ? " (its fileno() re-enters)" : "");
      break;
    case EV_IO_READY:
      g_string_append_printf (out, " io%d %s fd=%d", r->a, flags_name (r->b), r->c + FD_BASE);
      break;
    case EV_FILENO:
      g_string_append_printf (out, " of io%d runs %s", r->a, op_name (r->b));
      break;
    case OP_TM_WATCH:
      g_string_append_printf (out, " t%d usecs=%d prio=%d", r->a, r->b, r->c);
      break;
    case OP_WRITE: case OP_READ: case OP_FILL: case OP_CLOSE:
      g_string_append_printf (out, " end%d fd=%d n=%d", r->a, r->b + FD_BASE, r->c);
      break;
    case OP_OPEN:
      g_string_append_printf (out, " chan%d fds=%d,%d", r->a, r->b + FD_BASE, r->c + FD_BASE);
      break;
    case OP_IO_DROP_THREAD: case OP_IO_REVIVE:
      g_string_append_printf (out, " io%d", r->a);
      break;
    case OP_TM_DROP_THREAD: case OP_TM_REVIVE:
      g_string_append_printf (out, " t%d", r->a);
      break;
    case EV_DROPPED:
      g_string_append_printf (out, " %s%d, %s", r->b ? "t" : "io", r->a,
                              r->c ? "finalized on the worker" : "not finalized there");
      break;
    case OP_CROWD:
      g_string_append_printf (out, " %d fds (%s) prio=%d", r->a, crowd_kinds[r->b], r->c);
      break;
    case EV_CROWD_GONE:
      g_string_append_printf (out, " %d fds, %d deliveries", r->a, r->b);
      break;
    case OP_ITERATE:
      g_string_append_printf (out, " block=%d", r->a);
      break;
    default:
      g_string_append_printf (out, " %d %d", r->a, r->b);
      break;
    }
}

static void
format_trace (Model   *m,
              GString *out)
{
  guint64 first = m->n_trace > TRACE_LEN ? m->n_trace - TRACE_LEN : 0;

  g_string_append_printf (out, "latest operations (of %" G_GUINT64_FORMAT "; "
                          "depth 1 = inside a callback or a fileno()):\n", m->n_ops);
  for (guint64 i = first; i < m->n_trace; i++)
    {
      TraceRec *r = &m->trace[i % TRACE_LEN];

      g_string_append_printf (out, "  op %-8" G_GUINT64_FORMAT " iter %-7" G_GUINT64_FORMAT " %*s%-14s",
                              r->n, r->iter, 2 * r->depth, "", op_name (r->op));
      format_trace_args (r, out);
      g_string_append_c (out, '\n');
    }
}

static void
format_crowd (Model   *m,
              GString *out)
{
  Crowd *crowd = &m->crowd;
  guint n_armed = 0, n_idle = 0;

  if (crowd->members == NULL)
    return;
  for (guint i = 0; i < crowd->n; i++)
    {
      n_armed += crowd->members[i].armed;
      n_idle += crowd->members[i].ready == 0;
    }
  g_string_append_printf (out, "  crowd of %u fds (%s, %u armed, %u idle) until iteration %"
                          G_GUINT64_FORMAT "\n", crowd->n, crowd_kinds[crowd->kind],
                          n_armed, n_idle, crowd->until);
}

static void
format_state (Model   *m,
              GString *out)
{
  g_string_append_printf (out, "model state (persistent=%d priority=%d):\n", m->persistent, m->priority);
  for (int i = 0; i < N_IO; i++)
    {
      IoModel *e = &m->io[i];

      if (e->obj == NULL)
        continue;
      g_string_append_printf (out, "  io%-2d %s%s%s fd=%d flags=%s prio=%d%s%s%s%s%s armed@%"
                              G_GUINT64_FORMAT " delivered@%" G_GUINT64_FORMAT "\n",
                              i, e->held ? "held " : "", e->registered ? "registered " : "",
                              e->armed ? "ARMED" : "disarmed", e->num >= 0 ? num_fd (e->num) : -1,
                              flags_name (e->flags), e->priority, e->persistent ? " persistent" : "",
                              e->invalid ? " invalid" : "", e->orphan ? " orphan" : "",
                              e->reentrant ? " re-entrant-fileno" : "",
                              e->in_flight ? " dropped-on-worker" : "",
                              e->armed_iter, e->delivered_iter);
    }
  for (int i = 0; i < N_TIMERS; i++)
    {
      TimerModel *t = &m->tm[i];

      if (t->obj == NULL)
        continue;
      g_string_append_printf (out, "  t%-3d %s%s%s prio=%d seq=%" G_GUINT64_FORMAT "%s\n", i,
                              t->held ? "held " : "", t->registered ? "registered " : "",
                              t->armed ? "ARMED" : "disarmed", t->priority, t->seq,
                              t->in_flight ? " dropped-on-worker" : "");
    }
  for (int i = 0; i < N_ENDS; i++)
    if (m->end_num[i] >= 0)
      g_string_append_printf (out, "  end%d fd=%d\n", i, num_fd (m->end_num[i]));
  format_crowd (m, out);
}

static void fail (Model *m, const char *format, ...) G_GNUC_PRINTF (2, 3);

static void
fail (Model      *m,
      const char *format,
      ...)
{
  va_list args;

  if (m->failed)
    return;
  m->failed = TRUE;
  m->error = g_string_new (NULL);
  g_string_append_printf (m->error, "model violation (backend %s, iteration %" G_GUINT64_FORMAT "): ",
                          m->glib_iops != NULL ? iops_glib_iops_get_backend (m->glib_iops) : "?",
                          m->iter);
  va_start (args, format);
  g_string_append_vprintf (m->error, format, args);
  va_end (args);
  g_string_append_c (m->error, '\n');
  format_state (m, m->error);
  format_trace (m, m->error);
  /* At once: the library may crash right after what it did wrong. */
  g_printerr ("%s", m->error->str);
}

/* -- fds ----------------------------------------------------------------- */

static short
poll_num (int num)
{
  struct pollfd p = { num_fd (num), POLLIN | POLLOUT, 0 };

  if (poll (&p, 1, 0) < 0)
    return 0;
  return p.revents;
}

/* An fd changed during an iteration: what it may report grows. */
static void
observe (Model *m,
         int    num)
{
  if (num >= 0)
    m->nums[num].win |= poll_num (num);
}

static void
poll_all (short revents[N_NUMS])
{
  struct pollfd p[N_NUMS];

  for (int i = 0; i < N_NUMS; i++)
    p[i] = (struct pollfd) { num_fd (i), POLLIN | POLLOUT, 0 };
  if (poll (p, N_NUMS, 0) < 0)
    memset (p, 0, sizeof p);
  for (int i = 0; i < N_NUMS; i++)
    revents[i] = p[i].revents;
}

static inline gboolean
io_ready (short          revents,
          IopsEventFlags flags)
{
  if (revents & ERROR_REVENTS)
    return TRUE;
  return ((flags & IOPS_READ_EVENT) && (revents & POLLIN)) ||
         ((flags & IOPS_WRITE_EVENT) && (revents & POLLOUT));
}

/* A closed number that an armed event still refers to must not be reused:
 * the model could no longer tell which file a report is about. */
static gboolean
num_reserved (Model *m,
              int    num)
{
  for (int i = 0; i < N_IO; i++)
    if (m->io[i].obj != NULL && m->io[i].armed && m->io[i].num == num)
      return TRUE;
  return FALSE;
}

/* A closed number: the most recently freed unreserved one when @recent,
 * else any (reserved ones too when @any_closed). */
static int
pick_closed_num (Model    *m,
                 guint8    b,
                 gboolean  recent,
                 gboolean  any_closed,
                 int       exclude)
{
  int best = -1, n_candidates = 0, nth;

  for (int i = 0; i < N_NUMS; i++)
    {
      if (m->nums[i].end >= 0 || i == exclude || (!any_closed && num_reserved (m, i)))
        continue;
      n_candidates++;
      if (best < 0 || m->freed_at[i] > m->freed_at[best])
        best = i;
    }
  if (recent || best < 0)
    return best;

  nth = b % n_candidates;
  for (int i = 0; i < N_NUMS; i++)
    {
      if (m->nums[i].end >= 0 || i == exclude || (!any_closed && num_reserved (m, i)))
        continue;
      if (nth-- == 0)
        return i;
    }
  return best;
}

static void
end_close (Model *m,
           int    end)
{
  int num = m->end_num[end];

  close (num_fd (num));
  m->end_num[end] = -1;
  m->nums[num].end = -1;
  m->freed_at[num] = ++m->free_tick;

  /* Rule 2: reported at most once from the next iteration on. */
  for (int i = 0; i < N_IO; i++)
    {
      IoModel *e = &m->io[i];

      if (e->obj != NULL && e->armed && e->num == num && !e->invalid && !e->orphan)
        {
          e->orphan = TRUE;
          e->orphan_iter = m->iter;
          e->orphan_late = 0;
          m->n_orphans++;
        }
    }
  observe (m, num);
  observe (m, m->end_num[end ^ 1]);
}

/* -- the IOPS ------------------------------------------------------------ */

static void
iops_create (Model *m)
{
  m->glib_iops = g_object_new (IOPS_TYPE_GLIB_IOPS, "context", m->context, NULL);
  iops_glib_iops_set_persistent (m->glib_iops, m->persistent);
  iops_glib_iops_set_priority (m->glib_iops, m->priority);
}

static void check_finalized (Model *m);
static void drain_drops (Model *m);
static void crowd_end (Model *m);

/* Rule 11: everything disarmed at once, no callback, references dropped. */
static void
iops_dispose (Model *m)
{
  gpointer weak = m->glib_iops;

  /* The model must know where every reference is. */
  drain_drops (m);

  /* The model first: releasing the IOPS's references may finalize events. */
  for (int i = 0; i < N_IO; i++)
    {
      m->io[i].armed = m->io[i].registered = m->io[i].orphan = FALSE;
      m->io[i].starve = 0;
    }
  for (int i = 0; i < N_TIMERS; i++)
    {
      m->tm[i].armed = m->tm[i].registered = FALSE;
      m->tm[i].starve = 0;
    }
  for (guint i = 0; i < m->crowd.n; i++)
    m->crowd.members[i].armed = FALSE;

  g_object_add_weak_pointer (weak, &weak);
  m->in_dispose = TRUE;
  g_object_unref (m->glib_iops);
  m->in_dispose = FALSE;
  m->glib_iops = NULL;
  if (weak != NULL)
    {
      fail (m, "the IOPS outlived its last reference");
      g_object_remove_weak_pointer (weak, &weak);
    }
  /* Registered no more: the consumer's unref must finalize each member. */
  crowd_end (m);
}

/* -- picking what an operation acts on ------------------------------------ */

/* The consumer can only name events it holds, or the one whose callback
 * or fileno() runs (it is handed its pointer). */
static int
pick_io (Model *m)
{
  guint8 b = next_byte (m);
  int usable[N_IO], n = 0;

  if (m->cb_io >= 0 && m->io[m->cb_io].obj != NULL && (b & 1))
    return m->cb_io;
  for (int i = 0; i < N_IO; i++)
    if (m->io[i].obj != NULL && (m->io[i].held || i == m->cb_io))
      usable[n++] = i;
  return n > 0 ? usable[(b >> 1) % n] : -1;
}

static int
pick_tm (Model *m)
{
  guint8 b = next_byte (m);
  int usable[N_TIMERS], n = 0;

  if (m->cb_tm >= 0 && m->tm[m->cb_tm].obj != NULL && (b & 1))
    return m->cb_tm;
  for (int i = 0; i < N_TIMERS; i++)
    if (m->tm[i].obj != NULL && (m->tm[i].held || i == m->cb_tm))
      usable[n++] = i;
  return n > 0 ? usable[(b >> 1) % n] : -1;
}

/* An open socket end, or -1. */
static int
pick_end (Model *m)
{
  guint8 b = next_byte (m);
  int open[N_ENDS], n = 0;

  for (int i = 0; i < N_ENDS; i++)
    if (m->end_num[i] >= 0)
      open[n++] = i;
  return n > 0 ? open[b % n] : -1;
}

/* A free slot, searched from @b on; -1 if none. */
static int
free_io_slot (Model  *m,
              guint8  b)
{
  for (int i = 0, slot = b % N_IO; i < N_IO; i++, slot = (slot + 1) % N_IO)
    if (m->io[slot].obj == NULL)
      return slot;
  return -1;
}

static int
free_tm_slot (Model  *m,
              guint8  b)
{
  for (int i = 0, slot = b % N_TIMERS; i < N_TIMERS; i++, slot = (slot + 1) % N_TIMERS)
    if (m->tm[slot].obj == NULL)
      return slot;
  return -1;
}

static gint64
decode_usecs (guint8 b)
{
  if (b < 128)
    return 0;
  if (b < 192)
    return b - 128;              /* 0–63 µs */
  if (b < 240)
    return (b - 192) * 16;       /* up to ~0.75 ms */
  return (b - 240) * 500;        /* up to 7.5 ms */
}

/* -- what every WATCH, and every release, leaves ------------------------ */

static void
io_watch (Model          *m,
          int             slot,
          int             num,
          IopsEventFlags  flags)
{
  IoModel *e = &m->io[slot];
  IopsIOEvent *event = (IopsIOEvent *) e->obj;
  guint fileno_calls = e->fileno_calls;

  if (iops_io_event_get_fd (event) != num_fd (num))
    iops_io_event_set_fd (event, num_fd (num));
  trace (m, OP_IO_WATCH, slot, num, flags | (m->persistent ? 0x100 : 0));

  m->in_update++;
  iops_iops_update_event (IOPS_IOPS (m->glib_iops), event, IOPS_EVACTION_WATCH, flags);
  m->in_update--;

  /* Rule 1: whatever the fileno() override did meanwhile — also to this
   * very event — the WATCH watches the fd it returned. */
  if (e->reentrant && e->fileno_calls == fileno_calls)
    fail (m, "io%d: WATCH did not read the event's fileno() (rule 1)", slot);
  e->registered = TRUE;
  e->armed = TRUE;
  e->flags = flags;
  e->persistent = m->persistent;
  e->priority = m->priority;
  e->num = num;
  e->invalid = m->nums[num].end < 0;
  e->orphan = FALSE;
  e->orphan_late = 0;
  e->armed_iter = m->iter;
  e->starve = 0;
}

static void
timer_watch (Model  *m,
             int     slot,
             gint64  usecs)
{
  TimerModel *t = &m->tm[slot];
  gint64 t0, t1;

  trace (m, OP_TM_WATCH, slot, (int) usecs, m->priority);
  m->in_update++;
  t0 = g_get_monotonic_time ();
  iops_iops_update_timer (IOPS_IOPS (m->glib_iops), (IopsTimerEvent *) t->obj,
                          IOPS_EVACTION_WATCH, usecs);
  t1 = g_get_monotonic_time ();
  m->in_update--;

  t->registered = TRUE;
  t->armed = TRUE;
  t->dl_lo = t0 + usecs;
  t->dl_hi = t1 + usecs;
  t->seq = ++m->timer_seq;
  t->priority = m->priority;
  t->armed_iter = m->iter;
  t->starve = 0;
}

/* An event nobody may hold any more must be gone at once. */
static void
check_io_gone (Model *m,
               int    slot)
{
  IoModel *e = &m->io[slot];

  if (e->obj != NULL && !e->held && !e->registered && e->in_cb == 0 &&
      e->in_fileno == 0 && !e->in_flight)
    fail (m, "io%d is neither held, registered nor in its callback, yet alive "
          "(rule 6: CLEANUP releases every reference)", slot);
}

static void
check_tm_gone (Model *m,
               int    slot)
{
  TimerModel *t = &m->tm[slot];

  if (t->obj != NULL && !t->held && !t->registered && t->in_cb == 0 && !t->in_flight)
    fail (m, "t%d is neither held, registered nor in its callback, yet alive "
          "(rule 6: CLEANUP releases every reference)", slot);
}

static void
model_io_finalized (Model *m,
                    int    slot)
{
  IoModel *e = &m->io[slot];

  /* An fd closed while armed may have been disarmed by its report or not
   * (epoll forgets it silently): either way is right. */
  if (e->held || (e->armed && !e->orphan) || e->in_cb > 0 || e->in_fileno > 0)
    fail (m, "io%d finalized while %s (rule 6)", slot,
          e->held ? "held by the consumer" : e->in_cb > 0 ? "in its callback" :
          e->in_fileno > 0 ? "a WATCH of it ran its fileno()" : "armed");
  e->obj = NULL;
}

static void
model_timer_finalized (Model *m,
                       int    slot)
{
  TimerModel *t = &m->tm[slot];

  if (t->held || t->armed || t->in_cb > 0)
    fail (m, "t%d finalized while %s (rule 6)", slot,
          t->held ? "held by the consumer" : t->armed ? "armed" : "in its callback");
  t->obj = NULL;
}

static void
check_finalized (Model *m)
{
  for (int i = 0; i < N_IO; i++)
    check_io_gone (m, i);
  for (int i = 0; i < N_TIMERS; i++)
    check_tm_gone (m, i);
}

/* -- references dropped on a worker thread ------------------------------- */

static gpointer
dropper_main (gpointer data)
{
  Dropper *d = data;

  pthread_mutex_lock (&d->lock);
  for (;;)
    {
      DropJob *job;

      while (d->todo == NULL && !d->stop)
        pthread_cond_wait (&d->cond, &d->lock);
      if ((job = d->todo) == NULL)
        break;
      if ((d->todo = job->next) == NULL)
        d->todo_tail = &d->todo;
      pthread_mutex_unlock (&d->lock);

      /* Meanwhile the model's thread goes on with the context. */
      g_private_set (&dropping, job);
      g_object_unref (job->obj);
      g_private_set (&dropping, NULL);

      pthread_mutex_lock (&d->lock);
      job->next = NULL;
      *d->done_tail = job;
      d->done_tail = &job->next;
      d->pending--;
      pthread_cond_broadcast (&d->cond);
    }
  pthread_mutex_unlock (&d->lock);
  return NULL;
}

static void
dropper_init (Dropper *d)
{
  pthread_mutex_init (&d->lock, NULL);
  pthread_cond_init (&d->cond, NULL);
  d->todo_tail = &d->todo;
  d->done_tail = &d->done;
}

static void
dropper_post (Model    *m,
              gpointer  obj,
              gboolean  is_timer,
              int       slot)
{
  Dropper *d = &m->dropper;
  DropJob *job = g_new0 (DropJob, 1);

  job->obj = obj;
  job->is_timer = is_timer;
  job->slot = slot;
  if (d->thread == NULL)
    d->thread = g_thread_new ("model-dropper", dropper_main, d);

  pthread_mutex_lock (&d->lock);
  *d->todo_tail = job;
  d->todo_tail = &job->next;
  d->pending++;
  pthread_cond_broadcast (&d->cond);
  pthread_mutex_unlock (&d->lock);
  m->n_drops++;
}

/* Where the event is now, on the model's thread. */
static void
drop_settled (Model   *m,
              DropJob *job)
{
  trace (m, EV_DROPPED, job->slot, job->is_timer, job->finalized_there);
  m->n_dropped_there += job->finalized_there;
  if (job->is_timer)
    {
      m->tm[job->slot].in_flight = FALSE;
      if (job->finalized_there)
        model_timer_finalized (m, job->slot);
      else
        check_tm_gone (m, job->slot);
    }
  else
    {
      m->io[job->slot].in_flight = FALSE;
      if (job->finalized_there)
        model_io_finalized (m, job->slot);
      else
        check_io_gone (m, job->slot);
    }
}

/* Waits until the worker has dropped every reference posted. */
static void
drain_drops (Model *m)
{
  Dropper *d = &m->dropper;
  DropJob *done;

  if (d->thread == NULL)
    return;
  pthread_mutex_lock (&d->lock);
  while (d->pending > 0)
    pthread_cond_wait (&d->cond, &d->lock);
  done = d->done;
  d->done = NULL;
  d->done_tail = &d->done;
  pthread_mutex_unlock (&d->lock);

  while (done != NULL)
    {
      DropJob *job = done;

      done = job->next;
      drop_settled (m, job);
      g_free (job);
    }
}

static void
dropper_stop (Dropper *d)
{
  if (d->thread != NULL)
    {
      pthread_mutex_lock (&d->lock);
      d->stop = TRUE;
      pthread_cond_broadcast (&d->cond);
      pthread_mutex_unlock (&d->lock);
      g_thread_join (g_steal_pointer (&d->thread));
    }
  pthread_cond_destroy (&d->cond);
  pthread_mutex_destroy (&d->lock);
}

/* -- the crowd: many always-ready fds at once ---------------------------- */

/* The most crowd fds this process may open above the model's numbers,
 * raising the soft limit on open files where the hard one allows. */
static guint
crowd_capacity (void)
{
  struct rlimit rl;
  rlim_t want = CROWD_FD_BASE + CROWD_MAX + FD_SLACK;

  if (getrlimit (RLIMIT_NOFILE, &rl) != 0)
    return 0;
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want)
    {
      rl.rlim_cur = rl.rlim_max == RLIM_INFINITY ? want : MIN (want, rl.rlim_max);
      (void) setrlimit (RLIMIT_NOFILE, &rl);
      if (getrlimit (RLIMIT_NOFILE, &rl) != 0)
        return 0;
    }
  if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= want)
    return CROWD_MAX;
  return rl.rlim_cur > CROWD_FD_BASE + FD_SLACK ? (guint) (rl.rlim_cur - CROWD_FD_BASE - FD_SLACK) : 0;
}

/* Moves @fd above the model's numbers; -1 if there is no room. */
static int
crowd_place (int fd)
{
  int placed;

  if (fd < 0)
    return -1;
  placed = fcntl (fd, F_DUPFD_CLOEXEC, CROWD_FD_BASE);
  close (fd);
  return placed;
}

/* What @fd is ready for now, and for a crowd fd always. */
static IopsEventFlags
fd_ready_flags (int fd)
{
  struct pollfd p = { fd, POLLIN | POLLOUT, 0 };

  if (poll (&p, 1, 0) < 0)
    return 0;
  if (p.revents & ERROR_REVENTS)
    return IOPS_RW_EVENT;
  return ((p.revents & POLLIN) ? IOPS_READ_EVENT : 0) | ((p.revents & POLLOUT) ? IOPS_WRITE_EVENT : 0);
}

/* Opens the fd of member @i: /dev/null, which epoll refuses, or the two
 * ends of a socket pair for @i and @i + 1, the first with a byte unread
 * (readable and writable), the second writable. Returns how many it
 * opened, 0 when fds ran out. */
static guint
crowd_open (Crowd    *crowd,
            guint     i,
            gboolean  sockets)
{
  CrowdMember *c = &crowd->members[i];
  int sv[2];

  if (!sockets || i + 1 >= crowd->n)
    {
      c[0].fd = crowd_place (open ("/dev/null", O_RDONLY | O_CLOEXEC));
      return c[0].fd >= 0 ? 1 : 0;
    }
  if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0)
    return 0;
  (void) send (sv[1], "c", 1, MSG_DONTWAIT | MSG_NOSIGNAL);
  c[0].fd = crowd_place (sv[0]);
  c[1].fd = crowd_place (sv[1]);
  if (c[0].fd >= 0 && c[1].fd >= 0)
    return 2;
  if (c[0].fd >= 0)
    close (c[0].fd);
  if (c[1].fd >= 0)
    close (c[1].fd);
  c[0].fd = c[1].fd = -1;
  return 0;
}

static void
crowd_watch (Model *m,
             guint  i)
{
  CrowdMember *c = &m->crowd.members[i];

  m->in_update++;
  iops_iops_update_event (IOPS_IOPS (m->glib_iops), (IopsIOEvent *) c->obj,
                          IOPS_EVACTION_WATCH, c->flags);
  m->in_update--;
  c->armed = TRUE;
  c->persistent = m->persistent;
  c->priority = m->priority;
  c->armed_iter = m->iter;
  c->starve = 0;
}

/* Opens and watches @n members; fewer if fds run out. */
static void
crowd_fill (Model   *m,
            guint    n,
            guint64  rng)
{
  Crowd *crowd = &m->crowd;
  guint i = 0;

  crowd->members = g_new0 (CrowdMember, n);
  crowd->n = n;
  while (i < n)
    {
      gboolean sockets = crowd->kind == 1 || (crowd->kind == 2 && (i / 2) % 2 == 1);
      guint opened = crowd_open (crowd, i, sockets);

      if (opened == 0)
        break;
      i += opened;
    }
  crowd->n = i;

  for (i = 0; i < crowd->n; i++)
    {
      CrowdMember *c = &crowd->members[i];

      c->obj = g_object_new (model_io_event_get_type (), "fd", c->fd, NULL);
      c->obj->model = m;
      c->obj->slot = (int) i;
      c->obj->in_crowd = TRUE;
      c->held = TRUE;
      c->flags = flag_choices[splitmix64 (&rng) % G_N_ELEMENTS (flag_choices)];
      c->ready = fd_ready_flags (c->fd) & c->flags;
      crowd_watch (m, i);
    }
}

static gboolean
op_crowd (Model *m)
{
  guint8 gate = next_byte (m), size = next_byte (m), kind = next_byte (m), seed = next_byte (m);
  guint low = MIN (CROWD_MIN, m->crowd_cap);

  /* Rare: a crowd costs as much as thousands of other operations. Random
   * runs space them out; a fuzzer's bytes need a gate byte of 0, or most
   * of its inputs would build one. */
  if (m->crowd.members != NULL || m->crowd_cap == 0 ||
      (m->from_bytes ? gate != 0 : gate >= 64 || m->n_ops < m->next_crowd_at))
    return FALSE;

  m->crowd.kind = kind % G_N_ELEMENTS (crowd_kinds);
  crowd_fill (m, low + size * (m->crowd_cap - low) / 255, seed);
  m->crowd.until = m->iter + CROWD_LIFE;
  m->n_crowds++;
  m->n_crowd_fds += m->crowd.n;
  trace (m, OP_CROWD, (int) m->crowd.n, m->crowd.kind, m->priority);
  return TRUE;
}

/* Ends the crowd: CLEANUP (unless the IOPS is gone), then the consumer's
 * unref, after which each member must be gone at once (rule 6). */
static void
crowd_end (Model *m)
{
  Crowd *crowd = &m->crowd;
  guint64 delivered = 0;

  if (crowd->members == NULL)
    return;
  crowd->closing = TRUE;
  for (guint i = 0; i < crowd->n; i++)
    {
      CrowdMember *c = &crowd->members[i];

      if (c->obj != NULL && m->glib_iops != NULL)
        {
          m->in_update++;
          iops_iops_update_event (IOPS_IOPS (m->glib_iops), (IopsIOEvent *) c->obj,
                                  IOPS_EVACTION_CLEANUP, 0);
          m->in_update--;
        }
      c->armed = FALSE;
      if (c->obj != NULL)
        {
          c->held = FALSE;
          g_object_unref (c->obj);
        }
      if (c->obj != NULL)
        {
          fail (m, "crowd member %u (fd %d) still alive after its CLEANUP and the "
                "consumer's unref (rule 6)", i, c->fd);
          c->obj->model = NULL;
        }
      close (c->fd);
      delivered += c->n_delivered;
    }
  trace (m, EV_CROWD_GONE, (int) crowd->n, (int) MIN (delivered, G_MAXINT), 0);
  g_clear_pointer (&crowd->members, g_free);
  crowd->n = 0;
  crowd->closing = FALSE;
  m->next_crowd_at = m->n_ops + CROWD_SPACING;
}

static gboolean callback_context_ok (Model *m, const char *what);

static void
crowd_ready (Model          *m,
             int             index,
             IopsEventFlags  ready)
{
  Crowd *crowd = &m->crowd;
  CrowdMember *c;

  m->n_crowd_cb++;
  if (!callback_context_ok (m, "a crowd member's ready_r/w/rw"))
    return;
  if (crowd->members == NULL || (guint) index >= crowd->n)
    {
      fail (m, "crowd member %d reported after the crowd ended", index);
      return;
    }

  c = &crowd->members[index];
  if (!c->armed)
    fail (m, "crowd member %d (fd %d) reported %s but is not armed (a one-shot "
          "watch already delivered: rule 3)", index, c->fd, flags_name (ready));
  else if (ready != c->ready)
    fail (m, "crowd member %d (fd %d), watched for %s and always ready for %s of "
          "it, reported %s (rule 2)", index, c->fd, flags_name (c->flags),
          flags_name (c->ready), flags_name (ready));
  if (m->failed)
    return;

  if (!c->persistent)
    c->armed = FALSE;
  c->delivered_iter = m->iter;
  c->n_delivered++;
  c->starve = 0;
  m->best_prio = MIN (m->best_prio, c->priority);

  /* One-shot: re-armed from the callback, as consumers do. */
  c->in_cb++;
  if (!c->armed && !crowd->closing)
    crowd_watch (m, (guint) index);
  c->in_cb--;
}

static void
crowd_finalized (Model *m,
                 int    index)
{
  Crowd *crowd = &m->crowd;
  CrowdMember *c;

  if (crowd->members == NULL || (guint) index >= crowd->n)
    return;
  c = &crowd->members[index];
  if (c->held || c->armed || c->in_cb > 0)
    fail (m, "crowd member %d finalized while %s (rule 6)", index,
          c->held ? "held by the consumer" : c->armed ? "armed" : "in its callback");
  c->obj = NULL;
}

/* Rules 2 and 3 for many ready fds: every member that is ready for what it
 * watches is delivered within STARVE_LIMIT iterations. */
static void
crowd_check (Model *m)
{
  Crowd *crowd = &m->crowd;

  for (guint i = 0; i < crowd->n && !m->failed; i++)
    {
      CrowdMember *c = &crowd->members[i];

      if (!c->armed || c->ready == 0 || c->armed_iter >= m->iter || c->delivered_iter == m->iter)
        {
          c->starve = 0;
          continue;
        }
      if (m->best_prio < c->priority)
        continue;  /* a better priority ran: GLib dispatched only that */
      if (++c->starve > STARVE_LIMIT)
        fail (m, "crowd member %u of %u (fd %d, %s) armed for %s%s at priority %d since "
              "iteration %" G_GUINT64_FORMAT ", always ready, not delivered for %u "
              "iterations (starved among many ready fds), %" G_GUINT64_FORMAT
              " deliveries before", i, crowd->n, c->fd, crowd_kinds[crowd->kind],
              flags_name (c->flags), c->persistent ? " (persistent)" : "", c->priority,
              c->armed_iter, c->starve, c->n_delivered);
    }
}

static gboolean
crowd_expects_delivery (Model *m)
{
  for (guint i = 0; i < m->crowd.n; i++)
    if (m->crowd.members[i].armed && m->crowd.members[i].ready != 0)
      return TRUE;
  return FALSE;
}

/* -- operations: one function each; FALSE when it found nothing to act on -- */

static void run_iteration (Model *m);

static gboolean
op_iterate (Model *m)
{
  run_iteration (m);
  return TRUE;
}

static gboolean
op_io_new (Model *m)
{
  guint8 b = next_byte (m);
  int slot = free_io_slot (m, b);
  /* About one event in four overrides fileno(); the low bytes the corpus
   * uses for a slot make plain ones. */
  gboolean reentrant = (b / N_IO) % 4 == 3;
  IoModel *e;

  if (slot < 0)
    return FALSE;
  e = &m->io[slot];
  memset (e, 0, sizeof *e);
  e->obj = g_object_new (reentrant ? model_fileno_event_get_type () : model_io_event_get_type (), NULL);
  e->obj->model = m;
  e->obj->slot = slot;
  g_weak_ref_init (&e->weak, e->obj);
  e->held = TRUE;
  e->reentrant = reentrant;
  e->num = -1;
  trace (m, OP_IO_NEW, slot, reentrant, 0);
  return TRUE;
}

/* The number a WATCH of @slot names, led by @how: a closed one now and
 * then (invalid at WATCH), its current one (maybe a new socket by now), or
 * an open end. */
static int
watch_target (Model  *m,
              int     slot,
              guint8  how)
{
  int cur = iops_io_event_get_fd ((IopsIOEvent *) m->io[slot].obj) - FD_BASE;
  int num;

  if (how < 16)
    return pick_closed_num (m, next_byte (m), FALSE, TRUE, -1);
  if (how < 64 && cur >= 0)
    return cur;
  num = m->end_num[next_byte (m) % N_ENDS];
  if (num < 0)
    num = cur >= 0 ? cur : pick_closed_num (m, how, FALSE, TRUE, -1);
  return num;
}

static gboolean
op_io_watch (Model *m)
{
  int slot = pick_io (m);
  guint8 how = next_byte (m);
  IopsEventFlags flags = flag_choices[next_byte (m) % G_N_ELEMENTS (flag_choices)];
  int num;

  if (slot < 0)
    return FALSE;
  num = watch_target (m, slot, how);
  if (num < 0)
    return FALSE;
  io_watch (m, slot, num, flags);
  return TRUE;
}

/* UNWATCH and CLEANUP of an fd event. */
static gboolean
io_release (Model        *m,
            Op            op,
            IopsEvAction  action)
{
  int slot = pick_io (m);
  guint8 b = next_byte (m);
  IoModel *e;

  if (slot < 0)
    return FALSE;
  e = &m->io[slot];
  trace (m, op, slot, 0, 0);
  m->in_update++;
  e->in_cleanup += action == IOPS_EVACTION_CLEANUP;
  /* Rule 12: UNWATCH and CLEANUP ignore the flags. */
  iops_iops_update_event (IOPS_IOPS (m->glib_iops), (IopsIOEvent *) e->obj, action, b % 7);
  e->in_cleanup -= action == IOPS_EVACTION_CLEANUP;
  m->in_update--;
  e->armed = FALSE;
  e->orphan = FALSE;
  e->starve = 0;
  if (action == IOPS_EVACTION_CLEANUP)
    e->registered = FALSE;
  check_io_gone (m, slot);
  return TRUE;
}

static gboolean
op_io_unwatch (Model *m)
{
  return io_release (m, OP_IO_UNWATCH, IOPS_EVACTION_UNWATCH);
}

static gboolean
op_io_cleanup (Model *m)
{
  return io_release (m, OP_IO_CLEANUP, IOPS_EVACTION_CLEANUP);
}

static gboolean
op_io_unref (Model *m)
{
  int slot = pick_io (m);

  if (slot < 0 || !m->io[slot].held)
    return FALSE;
  trace (m, OP_IO_UNREF, slot, 0, 0);
  m->io[slot].held = FALSE;
  g_object_unref (m->io[slot].obj);
  check_io_gone (m, slot);
  return TRUE;
}

/* The consumer's reference to a disarmed event, dropped on the worker
 * while this thread goes on (rules 6, 10): a garbage collector's thread.
 * Disarmed and in no callback, nothing on this thread touches the event
 * meanwhile; an armed one the IOPS holds, so nothing would happen there. */
static gboolean
op_io_drop_thread (Model *m)
{
  int slot = pick_io (m);
  IoModel *e;

  if (slot < 0)
    return FALSE;
  e = &m->io[slot];
  if (!e->held || e->armed || e->in_cb > 0 || e->in_fileno > 0)
    return FALSE;
  trace (m, OP_IO_DROP_THREAD, slot, 0, 0);
  e->held = FALSE;
  e->in_flight = TRUE;
  dropper_post (m, e->obj, FALSE, slot);
  return TRUE;
}

/* The consumer takes back, through its weak reference, an event it let go
 * of and that is still alive: registered ones are (rule 6 lets the IOPS
 * keep them until CLEANUP), and they can be cleaned up again. */
static gboolean
op_io_revive (Model *m)
{
  guint8 b = next_byte (m);
  int found[N_IO], n = 0, slot;
  gpointer obj;

  for (int i = 0; i < N_IO; i++)
    if (m->io[i].obj != NULL && !m->io[i].held && !m->io[i].in_flight)
      found[n++] = i;
  if (n == 0)
    return FALSE;
  slot = found[b % n];
  trace (m, OP_IO_REVIVE, slot, 0, 0);
  if ((obj = g_weak_ref_get (&m->io[slot].weak)) == NULL)
    fail (m, "io%d is alive, but its weak reference is empty", slot);
  m->io[slot].held = obj != NULL;
  return TRUE;
}

static gboolean
op_tm_new (Model *m)
{
  int slot = free_tm_slot (m, next_byte (m));
  TimerModel *t;

  if (slot < 0)
    return FALSE;
  t = &m->tm[slot];
  memset (t, 0, sizeof *t);
  t->obj = g_object_new (model_timer_event_get_type (), NULL);
  t->obj->model = m;
  t->obj->slot = slot;
  g_weak_ref_init (&t->weak, t->obj);
  t->held = TRUE;
  trace (m, OP_TM_NEW, slot, 0, 0);
  return TRUE;
}

static gboolean
op_tm_watch (Model *m)
{
  int slot = pick_tm (m);
  guint8 b = next_byte (m);

  if (slot < 0)
    return FALSE;
  timer_watch (m, slot, decode_usecs (b));
  return TRUE;
}

/* UNWATCH and CLEANUP of a timer. */
static gboolean
tm_release (Model        *m,
            Op            op,
            IopsEvAction  action)
{
  int slot = pick_tm (m);
  guint8 b = next_byte (m);

  if (slot < 0)
    return FALSE;
  trace (m, op, slot, 0, 0);
  m->in_update++;
  /* Rule 12: UNWATCH and CLEANUP ignore usecs, even a negative one. */
  iops_iops_update_timer (IOPS_IOPS (m->glib_iops), (IopsTimerEvent *) m->tm[slot].obj,
                          action, (gint64) b - 128);
  m->in_update--;
  m->tm[slot].armed = FALSE;
  m->tm[slot].starve = 0;
  if (action == IOPS_EVACTION_CLEANUP)
    m->tm[slot].registered = FALSE;
  check_tm_gone (m, slot);
  return TRUE;
}

static gboolean
op_tm_unwatch (Model *m)
{
  return tm_release (m, OP_TM_UNWATCH, IOPS_EVACTION_UNWATCH);
}

static gboolean
op_tm_cleanup (Model *m)
{
  return tm_release (m, OP_TM_CLEANUP, IOPS_EVACTION_CLEANUP);
}

static gboolean
op_tm_unref (Model *m)
{
  int slot = pick_tm (m);

  if (slot < 0 || !m->tm[slot].held)
    return FALSE;
  trace (m, OP_TM_UNREF, slot, 0, 0);
  m->tm[slot].held = FALSE;
  g_object_unref (m->tm[slot].obj);
  check_tm_gone (m, slot);
  return TRUE;
}

static gboolean
op_tm_drop_thread (Model *m)
{
  int slot = pick_tm (m);
  TimerModel *t;

  if (slot < 0)
    return FALSE;
  t = &m->tm[slot];
  if (!t->held || t->armed || t->in_cb > 0)
    return FALSE;
  trace (m, OP_TM_DROP_THREAD, slot, 0, 0);
  t->held = FALSE;
  t->in_flight = TRUE;
  dropper_post (m, t->obj, TRUE, slot);
  return TRUE;
}

static gboolean
op_tm_revive (Model *m)
{
  guint8 b = next_byte (m);
  int found[N_TIMERS], n = 0, slot;
  gpointer obj;

  for (int i = 0; i < N_TIMERS; i++)
    if (m->tm[i].obj != NULL && !m->tm[i].held && !m->tm[i].in_flight)
      found[n++] = i;
  if (n == 0)
    return FALSE;
  slot = found[b % n];
  trace (m, OP_TM_REVIVE, slot, 0, 0);
  if ((obj = g_weak_ref_get (&m->tm[slot].weak)) == NULL)
    fail (m, "t%d is alive, but its weak reference is empty", slot);
  m->tm[slot].held = obj != NULL;
  return TRUE;
}

/* After an operation on the socket of @end: what both ends may report. */
static void
observe_pair (Model *m,
              int    end)
{
  observe (m, m->end_num[end]);
  observe (m, m->end_num[end ^ 1]);
}

static gboolean
op_write (Model *m)
{
  int end = pick_end (m);
  guint8 b = next_byte (m);
  int num, n = 1 + b % 64;

  if (end < 0)
    return FALSE;
  num = m->end_num[end];
  trace (m, OP_WRITE, end, num, n);
  memset (m->scratch, 'x', n);
  (void) send (num_fd (num), m->scratch, n, MSG_DONTWAIT | MSG_NOSIGNAL);
  observe_pair (m, end);
  return TRUE;
}

static gboolean
op_read (Model *m)
{
  int end = pick_end (m);
  int num;

  if (end < 0)
    return FALSE;
  num = m->end_num[end];
  trace (m, OP_READ, end, num, 0);
  while (recv (num_fd (num), m->scratch, sizeof m->scratch, MSG_DONTWAIT) > 0)
    ;
  observe_pair (m, end);
  return TRUE;
}

static gboolean
op_fill (Model *m)
{
  int end = pick_end (m);
  int num;

  if (end < 0)
    return FALSE;
  num = m->end_num[end];
  trace (m, OP_FILL, end, num, 0);
  memset (m->scratch, 'f', sizeof m->scratch);
  for (int i = 0; i < 64; i++)
    if (send (num_fd (num), m->scratch, sizeof m->scratch, MSG_DONTWAIT | MSG_NOSIGNAL) <= 0)
      break;
  observe_pair (m, end);
  return TRUE;
}

static gboolean
op_close (Model *m)
{
  int end = pick_end (m);

  if (end < 0)
    return FALSE;
  trace (m, OP_CLOSE, end, m->end_num[end], 0);
  end_close (m, end);
  return TRUE;
}

/* Puts the two ends of a new socket pair at @nums. */
static void
open_channel (Model     *m,
              int        chan,
              const int  nums[2])
{
  int sv[2];
  int sndbuf = 4096;

  if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0)
    g_error ("socketpair: %s", g_strerror (errno));
  for (int i = 0; i < 2; i++)
    {
      /* A small buffer keeps FILL cheap. */
      setsockopt (sv[i], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
      if (dup3 (sv[i], num_fd (nums[i]), O_CLOEXEC) < 0)
        g_error ("dup3: %s", g_strerror (errno));
      close (sv[i]);
      m->end_num[2 * chan + i] = nums[i];
      m->nums[nums[i]].end = 2 * chan + i;
      m->nums[nums[i]].gen++;
    }
  trace (m, OP_OPEN, chan, nums[0], nums[1]);
  observe (m, nums[0]);
  observe (m, nums[1]);
}

static gboolean
channel_open (Model *m,
              int    chan)
{
  return m->end_num[2 * chan] >= 0 || m->end_num[2 * chan + 1] >= 0;
}

static gboolean
op_open (Model *m)
{
  int chan = next_byte (m) % N_CHANNELS;
  guint8 b = next_byte (m);
  int nums[2];

  for (int i = 0; i < N_CHANNELS && channel_open (m, chan); i++)
    chan = (chan + 1) % N_CHANNELS;
  if (channel_open (m, chan))
    return FALSE;
  nums[0] = pick_closed_num (m, b, b < 160, FALSE, -1);
  nums[1] = pick_closed_num (m, b >> 1, b < 80, FALSE, nums[0]);
  if (nums[0] < 0 || nums[1] < 0)
    return FALSE;
  open_channel (m, chan, nums);
  return TRUE;
}

static gboolean
op_set_persistent (Model *m)
{
  m->persistent = !m->persistent;
  trace (m, OP_SET_PERSISTENT, m->persistent, 0, 0);
  iops_glib_iops_set_persistent (m->glib_iops, m->persistent);
  return TRUE;
}

static gboolean
op_set_priority (Model *m)
{
  m->priority = priorities[next_byte (m) % G_N_ELEMENTS (priorities)];
  trace (m, OP_SET_PRIORITY, m->priority, 0, 0);
  iops_glib_iops_set_priority (m->glib_iops, m->priority);
  return TRUE;
}

static gboolean
op_iops_reset (Model *m)
{
  if (next_byte (m) >= 16)
    return FALSE;
  trace (m, OP_IOPS_RESET, 0, 0, 0);
  m->n_resets++;
  iops_dispose (m);
  iops_create (m);
  check_finalized (m);
  return TRUE;
}

typedef gboolean (*OpFunc) (Model *m);

typedef struct
{
  const char *name;
  guint       weight;   /* of 256 opcode bytes; ITERATE takes the rest */
  OpFunc      run;
} OpInfo;

static const OpInfo ops[N_OPS] = {
  [OP_IO_WATCH]       = { "IO_WATCH",       40, op_io_watch },
  [OP_IO_UNWATCH]     = { "IO_UNWATCH",     12, op_io_unwatch },
  [OP_IO_CLEANUP]     = { "IO_CLEANUP",      8, op_io_cleanup },
  [OP_IO_NEW]         = { "IO_NEW",          6, op_io_new },
  [OP_IO_UNREF]       = { "IO_UNREF",        5, op_io_unref },
  [OP_TM_WATCH]       = { "TM_WATCH",       24, op_tm_watch },
  [OP_TM_UNWATCH]     = { "TM_UNWATCH",      8, op_tm_unwatch },
  [OP_TM_CLEANUP]     = { "TM_CLEANUP",      5, op_tm_cleanup },
  [OP_TM_NEW]         = { "TM_NEW",          4, op_tm_new },
  [OP_TM_UNREF]       = { "TM_UNREF",        3, op_tm_unref },
  [OP_WRITE]          = { "WRITE",          30, op_write },
  [OP_READ]           = { "READ",           20, op_read },
  [OP_FILL]           = { "FILL",            4, op_fill },
  [OP_CLOSE]          = { "CLOSE",           6, op_close },
  [OP_OPEN]           = { "OPEN",           10, op_open },
  [OP_SET_PERSISTENT] = { "SET_PERSISTENT",  3, op_set_persistent },
  [OP_SET_PRIORITY]   = { "SET_PRIORITY",    2, op_set_priority },
  [OP_IOPS_RESET]     = { "IOPS_RESET",      1, op_iops_reset },
  [OP_IO_DROP_THREAD] = { "IO_DROP_THREAD",  2, op_io_drop_thread },
  [OP_TM_DROP_THREAD] = { "TM_DROP_THREAD",  1, op_tm_drop_thread },
  [OP_CROWD]          = { "CROWD",           1, op_crowd },
  [OP_IO_REVIVE]      = { "IO_REVIVE",       4, op_io_revive },
  [OP_TM_REVIVE]      = { "TM_REVIVE",       2, op_tm_revive },
  [OP_ITERATE]        = { "ITERATE",         0, op_iterate },
};

static const char *
op_name (int op)
{
  if (op < N_OPS)
    return ops[op].name;
  return event_names[op - N_OPS];
}

static Op
draw_op (Model *m)
{
  guint b = next_byte (m);

  for (Op op = 0; op < OP_ITERATE; op++)
    {
      if (b < ops[op].weight)
        return op;
      b -= ops[op].weight;
    }
  return OP_ITERATE;
}

static gboolean
exec_op (Model *m,
         Op     op)
{
  if (m->disabled & (1u << op))
    return FALSE;
  return ops[op].run (m);
}

static void
count_op (Model    *m,
          gboolean  done)
{
  if (done)
    m->n_ops++;
  else
    m->n_noop++;
}

/* Up to CB_MAX_OPS operations from inside a callback; an ITERATE ends them. */
static void
callback_ops (Model *m)
{
  for (int i = 0; i < CB_MAX_OPS && !m->failed && !m->exhausted && !m->settling; i++)
    {
      Op op = draw_op (m);

      if (op == OP_ITERATE)
        break;
      count_op (m, exec_op (m, op));
    }
}

/* -- fileno() that re-enters ------------------------------------------- */

/* A WATCH of a re-entrant event reads its fileno(): now and then that runs
 * an operation, on this event (it has itself in hand) or another. */
static void
model_fileno_called (Model *m,
                     int    slot)
{
  IoModel *e = &m->io[slot];
  int saved_io = m->cb_io;
  Op op;

  e->fileno_calls++;
  if (e->in_cleanup > 0)
    {
      fail (m, "io%d: CLEANUP read fileno() (rule 5: it uses what the IOPS stored)", slot);
      return;
    }
  if (m->in_dispose)
    {
      fail (m, "io%d: fileno() read while the IOPS was disposed (rule 11)", slot);
      return;
    }
  if (m->fileno_depth > 0 || m->failed || m->exhausted || m->settling ||
      next_byte (m) >= FILENO_REENTER || m->exhausted)
    return;

  op = fileno_ops[next_byte (m) % G_N_ELEMENTS (fileno_ops)];
  if (m->fileno_disabled & (1u << op))
    return;
  trace (m, EV_FILENO, slot, op, 0);
  m->n_reentries++;
  m->fileno_depth++;
  m->depth++;
  e->in_fileno++;
  m->cb_io = slot;
  count_op (m, exec_op (m, op));
  m->cb_io = saved_io;
  e->in_fileno--;
  m->depth--;
  m->fileno_depth--;
}

/* -- callbacks ------------------------------------------------------------- */

static gboolean
callback_context_ok (Model      *m,
                     const char *what)
{
  if (m->failed)
    return FALSE;
  if (m->in_update > 0)
    fail (m, "%s called from inside update_event/update_timer (rule 2)", what);
  else if (m->in_dispose)
    fail (m, "%s called while the IOPS was disposed (rule 11)", what);
  else if (!m->in_iteration)
    fail (m, "%s called outside a main-loop iteration", what);
  return !m->failed;
}

static void
model_io_ready (Model          *m,
                int             slot,
                IopsEventFlags  ready)
{
  IoModel *e = &m->io[slot];
  Num *num;
  int saved_io = m->cb_io, saved_tm = m->cb_tm;

  m->n_io_cb++;
  trace (m, EV_IO_READY, slot, ready, e->num);
  if (!callback_context_ok (m, "ready_r/w/rw"))
    return;

  if (!e->armed)
    {
      fail (m, "io%d reported %s but is not armed (unwatched, cleaned up, or a "
            "one-shot watch already delivered: rules 3, 4, 5)", slot, flags_name (ready));
      return;
    }
  if (ready == 0 || (ready & ~e->flags) != 0)
    {
      fail (m, "io%d reported %s, watched %s (rule 2)", slot, flags_name (ready), flags_name (e->flags));
      return;
    }

  num = &m->nums[e->num];
  if (e->orphan)
    {
      /* Readiness polled before the close may still be delivered in the
       * close's own iteration; after it, one report at most. */
      if (m->iter > e->orphan_iter && ++e->orphan_late > 1)
        {
          fail (m, "io%d: fd %d, closed while armed, reported more than once (rule 2)",
                slot, num_fd (e->num));
          return;
        }
    }
  else if (e->invalid)
    {
      /* A WATCH made during this iteration may be handed readiness polled
       * before it, from the file the number named then (the gsource
       * backend does so); only a WATCH before the poll is held to it. */
      if (e->armed_iter == m->iter)
        {
          /* Whether that disarmed it depends on what the stale poll saw:
           * from now on it is treated like a closed fd. */
          e->orphan = TRUE;
          e->orphan_iter = m->iter;
          e->orphan_late = 0;
        }
      else if (ready != e->flags)
        {
          fail (m, "io%d: fd %d was invalid at WATCH and reported %s, not every watched "
                "flag (%s) (rule 2)", slot, num_fd (e->num), flags_name (ready), flags_name (e->flags));
          return;
        }
    }
  else
    {
      gboolean error = (num->win & ERROR_REVENTS) != 0;

      if ((ready & IOPS_READ_EVENT) && !(num->win & POLLIN) && !error)
        fail (m, "io%d reported READ on fd %d, which had neither data nor an error "
              "this iteration (rule 2)", slot, num_fd (e->num));
      else if ((ready & IOPS_WRITE_EVENT) && !(num->win & POLLOUT) && !error)
        fail (m, "io%d reported WRITE on fd %d, which had neither room nor an error "
              "this iteration (rule 2)", slot, num_fd (e->num));
      else if ((num->snap & POLLHUP) && num->snap_gen == num->gen && ready != e->flags)
        fail (m, "io%d: fd %d was hung up and reported %s, not every watched flag (%s) (rule 2)",
              slot, num_fd (e->num), flags_name (ready), flags_name (e->flags));
      if (m->failed)
        return;
    }

  /* Rule 3: one-shot watches, invalid fds and closed fds are disarmed
   * before the callback; persistent ones stay armed. */
  if (!e->persistent || (e->invalid && !e->orphan) || (e->orphan && m->iter > e->orphan_iter))
    e->armed = FALSE;
  e->delivered_iter = m->iter;
  e->starve = 0;
  m->best_prio = MIN (m->best_prio, e->priority);

  e->in_cb++;
  m->depth++;
  m->cb_io = slot;
  m->cb_tm = -1;

  if (!m->exhausted && !m->settling)
    {
      guint8 b = next_byte (m);
      int end = m->nums[e->num].end;

      /* What consumers do most: consume, then re-arm the same watch. */
      if ((ready & IOPS_READ_EVENT) && end >= 0 && (b & 1))
        {
          while (recv (num_fd (e->num), m->scratch, sizeof m->scratch, MSG_DONTWAIT) > 0)
            ;
          observe (m, e->num);
          observe (m, m->end_num[end ^ 1]);
        }
      if (b < 128 && !e->armed)
        {
          io_watch (m, slot, e->num, e->flags);
          m->n_ops++;
        }
      callback_ops (m);
    }

  m->cb_io = saved_io;
  m->cb_tm = saved_tm;
  m->depth--;
  e->in_cb--;
}

static void
model_timer_ready (Model *m,
                   int    slot,
                   int    flags)
{
  TimerModel *t = &m->tm[slot];
  int saved_io = m->cb_io, saved_tm = m->cb_tm;
  gint64 now = g_get_monotonic_time ();

  m->n_tm_cb++;
  trace (m, EV_TIMER_READY, slot, flags, t->priority);
  if (!callback_context_ok (m, "timer ready"))
    return;

  if (!t->armed)
    {
      fail (m, "t%d fired but is not armed (unwatched, cleaned up, or already fired: rule 7)", slot);
      return;
    }
  if (flags != 0)
    {
      fail (m, "t%d fired with flags %d, not 0 (rule 7)", slot, flags);
      return;
    }
  if (now < t->dl_lo)
    {
      fail (m, "t%d fired %" G_GINT64_FORMAT " us early (rule 7)", slot, t->dl_lo - now);
      return;
    }
  for (int i = 0; i < N_TIMERS; i++)
    {
      TimerModel *o = &m->tm[i];

      /* @o is certainly due no later than @t, and so must have fired
       * first: its deadline is earlier, or equal with an earlier WATCH. */
      if (i == slot || o->obj == NULL || !o->armed || o->priority != t->priority)
        continue;
      if (o->dl_hi < t->dl_lo || (o->seq < t->seq && o->dl_hi <= t->dl_lo))
        {
          fail (m, "t%d fired before t%d, which was due no later and armed earlier (rule 7)",
                slot, i);
          return;
        }
    }

  t->armed = FALSE;
  t->starve = 0;
  m->best_prio = MIN (m->best_prio, t->priority);

  t->in_cb++;
  m->depth++;
  m->cb_io = -1;
  m->cb_tm = slot;

  if (!m->exhausted && !m->settling)
    {
      guint8 b = next_byte (m);

      /* Rule 7: re-arming from inside ready() works. */
      if (b < 96)
        {
          timer_watch (m, slot, decode_usecs (next_byte (m)));
          m->n_ops++;
        }
      callback_ops (m);
    }

  m->cb_io = saved_io;
  m->cb_tm = saved_tm;
  m->depth--;
  t->in_cb--;
}

/* -- iterations ------------------------------------------------------------ */

/* The armed watches that must be delivered if their fd is ready. */
static inline gboolean
io_must (Model   *m,
         IoModel *e)
{
  return e->obj != NULL && e->armed && !e->orphan && e->armed_iter < m->iter;
}

static void
end_of_iteration_checks (Model *m)
{
  short now[N_NUMS];

  poll_all (now);
  for (int i = 0; i < N_IO && !m->failed; i++)
    {
      IoModel *e = &m->io[i];

      if (!io_must (m, e) || e->delivered_iter == m->iter ||
          !io_ready (m->nums[e->num].snap, e->flags) || !io_ready (now[e->num], e->flags))
        {
          e->starve = 0;
          continue;
        }
      if (m->best_prio < e->priority)
        continue;  /* a better priority ran: GLib dispatched only that */
      if (++e->starve > STARVE_LIMIT)
        fail (m, "io%d armed for %s%s on fd %d at priority %d since iteration %"
              G_GUINT64_FORMAT ", ready (revents 0x%x) for %u iterations, not delivered "
              "(lost wake-up)", i, flags_name (e->flags), e->persistent ? " (persistent)" : "",
              num_fd (e->num), e->priority, e->armed_iter, now[e->num], e->starve);
    }

  crowd_check (m);

  for (int i = 0; i < N_TIMERS && !m->failed; i++)
    {
      TimerModel *t = &m->tm[i];

      if (t->obj == NULL || !t->armed || t->armed_iter >= m->iter || m->iter_start < t->dl_hi)
        {
          t->starve = 0;
          continue;
        }
      if (m->best_prio < t->priority)
        continue;
      if (++t->starve > STARVE_LIMIT)
        fail (m, "t%d due %" G_GINT64_FORMAT " us ago, not fired for %u iterations (lost timer)",
              i, g_get_monotonic_time () - t->dl_hi, t->starve);
    }

  if (!m->failed)
    check_finalized (m);
}

static void
run_iteration (Model *m)
{
  GMainContext *context = m->context;
  gboolean expect = FALSE, may_block;
  gint64 soonest = G_MAXINT64, t0, t1;
  int max_priority, timeout, n_fds;
  short revents[N_NUMS];

  m->iter++;
  m->best_prio = G_MAXINT;
  trace (m, OP_ITERATE, 0, 0, 0);

  poll_all (revents);
  m->iter_start = g_get_monotonic_time ();
  for (int i = 0; i < N_NUMS; i++)
    {
      m->nums[i].snap = m->nums[i].win = revents[i];
      m->nums[i].snap_gen = m->nums[i].gen;
    }
  for (int i = 0; i < N_IO; i++)
    if (io_must (m, &m->io[i]) && io_ready (revents[m->io[i].num], m->io[i].flags))
      expect = TRUE;
  for (int i = 0; i < N_TIMERS; i++)
    if (m->tm[i].obj != NULL && m->tm[i].armed)
      {
        soonest = MIN (soonest, m->tm[i].dl_hi);
        expect |= m->tm[i].dl_hi <= m->iter_start;
      }
  expect = expect || crowd_expects_delivery (m);

  /* Block when something is due (the poll must return at once), and now
   * and then for a timer due very soon (the IOPS must wake the poll). */
  may_block = expect || (soonest - m->iter_start < 500 && next_byte (m) < 64);
  if (may_block)
    {
      m->trace[(m->n_trace - 1) % TRACE_LEN].a = 1;
      m->n_blocks++;
    }

  m->in_iteration = TRUE;
  g_main_context_prepare (context, &max_priority);
  while ((n_fds = g_main_context_query (context, max_priority, &timeout,
                                        m->pfds, m->n_pfds)) > m->n_pfds)
    {
      m->n_pfds = n_fds;
      m->pfds = g_renew (GPollFD, m->pfds, n_fds);
    }
  if (!may_block)
    timeout = 0;
  else if (timeout < 0 || timeout > POLL_CAP_MS)
    timeout = POLL_CAP_MS;
  t0 = g_get_monotonic_time ();
  if (n_fds > 0 || timeout > 0)
    g_main_context_get_poll_func (context) (m->pfds, (guint) n_fds, timeout);
  t1 = g_get_monotonic_time ();

  if (timeout == POLL_CAP_MS && t1 - t0 >= POLL_CAP_MS * 1000)
    for (int i = 0; i < N_TIMERS; i++)
      if (m->tm[i].obj != NULL && m->tm[i].armed && m->tm[i].armed_iter < m->iter &&
          m->tm[i].dl_hi < t0 + POLL_CAP_MS * 500)
        fail (m, "the poll slept %" G_GINT64_FORMAT " ms through the deadline of t%d "
              "(lost timer wake-up)", (t1 - t0) / 1000, i);

  g_main_context_check (context, max_priority, m->pfds, n_fds);
  g_main_context_dispatch (context);
  m->in_iteration = FALSE;

  /* What the worker dropped meanwhile is settled here, on this thread. */
  drain_drops (m);
  if (!m->failed)
    end_of_iteration_checks (m);
  if (m->crowd.members != NULL && m->iter >= m->crowd.until)
    crowd_end (m);
}

/* -- life cycle ------------------------------------------------------------ */

static Model *
model_new (void)
{
  Model *m = g_new0 (Model, 1);

  m->context = g_main_context_new ();
  if (!g_main_context_acquire (m->context))
    g_error ("cannot acquire a new GMainContext");
  m->priority = G_PRIORITY_DEFAULT;
  m->cb_io = m->cb_tm = -1;
  m->crowd_cap = crowd_capacity ();
  m->next_crowd_at = CROWD_SPACING / 4;
  dropper_init (&m->dropper);
  for (int i = 0; i < N_ENDS; i++)
    m->end_num[i] = -1;
  for (int i = 0; i < N_NUMS; i++)
    m->nums[i].end = -1;
  return m;
}

static void
model_start (Model *m)
{
  /* The first byte picks the mode to start in. */
  m->persistent = next_byte (m) & 1;
  iops_create (m);
}

Model *
model_new_random (guint64 seed)
{
  Model *m = model_new ();

  m->rng = seed;
  model_start (m);
  return m;
}

Model *
model_new_bytes (const guint8 *data,
                 gsize         len)
{
  Model *m = model_new ();

  m->from_bytes = TRUE;
  m->data = data;
  m->len = len;
  model_start (m);
  return m;
}

static void
model_finish (Model *m)
{
  if (m->glib_iops == NULL)
    return;

  iops_dispose (m);
  for (int i = 0; i < N_IO; i++)
    if (m->io[i].obj != NULL && m->io[i].held)
      {
        m->io[i].held = FALSE;
        g_object_unref (m->io[i].obj);
      }
  for (int i = 0; i < N_TIMERS; i++)
    if (m->tm[i].obj != NULL && m->tm[i].held)
      {
        m->tm[i].held = FALSE;
        g_object_unref (m->tm[i].obj);
      }

  /* Whatever is still alive leaked a reference inside the IOPS. */
  for (int i = 0; i < N_IO; i++)
    if (m->io[i].obj != NULL)
      {
        fail (m, "io%d still alive after the IOPS and the consumer let go (rules 6, 11)", i);
        m->io[i].obj->model = NULL;
      }
  for (int i = 0; i < N_TIMERS; i++)
    if (m->tm[i].obj != NULL)
      {
        fail (m, "t%d still alive after the IOPS and the consumer let go (rules 6, 11)", i);
        m->tm[i].obj->model = NULL;
      }
  /* A leaked event must not write into the model once it is freed. */
  for (int i = 0; i < N_IO; i++)
    g_weak_ref_clear (&m->io[i].weak);
  for (int i = 0; i < N_TIMERS; i++)
    g_weak_ref_clear (&m->tm[i].weak);

  for (int i = 0; i < N_ENDS; i++)
    if (m->end_num[i] >= 0)
      {
        close (num_fd (m->end_num[i]));
        m->nums[m->end_num[i]].end = -1;
        m->end_num[i] = -1;
      }

  /* Nothing the IOPS attached outlives it. */
  if (g_main_context_pending (m->context))
    fail (m, "a source of the disposed IOPS is still ready on the context");
}

gboolean
model_run (Model   *m,
           guint64  max_ops)
{
  while (!m->failed && !m->exhausted && (max_ops == 0 || m->n_ops < max_ops))
    {
      Op op = draw_op (m);

      if (op == OP_ITERATE)
        run_iteration (m);
      else
        count_op (m, exec_op (m, op));
    }

  /* Let what is pending be delivered, and checked, without new work. */
  m->settling = TRUE;
  for (int i = 0; i < 4 && !m->failed; i++)
    run_iteration (m);
  model_finish (m);
  return !m->failed;
}

const char *
model_get_error (Model *m)
{
  return m->error != NULL ? m->error->str : NULL;
}

char *
model_get_stats (Model *m)
{
  return g_strdup_printf ("%" G_GUINT64_FORMAT " ops (%" G_GUINT64_FORMAT " no-ops), %"
                          G_GUINT64_FORMAT " iterations (%" G_GUINT64_FORMAT " blocking), %"
                          G_GUINT64_FORMAT " io deliveries, %" G_GUINT64_FORMAT
                          " timer deliveries, %" G_GUINT64_FORMAT " fds closed while armed, %"
                          G_GUINT64_FORMAT " IOPS resets, %" G_GUINT64_FORMAT
                          " fileno() re-entries, %" G_GUINT64_FORMAT " references dropped on "
                          "a worker (%" G_GUINT64_FORMAT " finalized there), %" G_GUINT64_FORMAT
                          " crowds of %" G_GUINT64_FORMAT " fds in all (up to %u; %"
                          G_GUINT64_FORMAT " crowd deliveries)",
                          m->n_ops, m->n_noop, m->iter, m->n_blocks, m->n_io_cb, m->n_tm_cb,
                          m->n_orphans, m->n_resets, m->n_reentries, m->n_drops,
                          m->n_dropped_there, m->n_crowds, m->n_crowd_fds, m->crowd_cap,
                          m->n_crowd_cb);
}

gboolean
model_disable (Model      *m,
               const char *name)
{
  G_STATIC_ASSERT (N_OPS <= 32);

  if (g_ascii_strcasecmp (name, "FILENO") == 0)
    {
      for (guint i = 0; i < G_N_ELEMENTS (fileno_ops); i++)
        m->fileno_disabled |= 1u << fileno_ops[i];
      return TRUE;
    }
  /* FILENO_CLEANUP: a fileno() never CLEANUPs, and so on. */
  for (guint i = 0; i < G_N_ELEMENTS (fileno_ops); i++)
    if (g_str_has_prefix (name, "FILENO_") &&
        g_ascii_strcasecmp (name + strlen ("FILENO_"), ops[fileno_ops[i]].name + strlen ("IO_")) == 0)
      {
        m->fileno_disabled |= 1u << fileno_ops[i];
        return TRUE;
      }
  for (Op op = 0; op < OP_ITERATE; op++)
    if (g_ascii_strcasecmp (name, ops[op].name) == 0)
      {
        m->disabled |= 1u << op;
        return TRUE;
      }
  return FALSE;
}

guint64
model_get_n_ops (Model *m)
{
  return m->n_ops;
}

void
model_free (Model *m)
{
  model_finish (m);
  dropper_stop (&m->dropper);
  g_main_context_release (m->context);
  g_main_context_unref (m->context);
  g_free (m->pfds);
  if (m->error != NULL)
    g_string_free (m->error, TRUE);
  g_free (m);
}

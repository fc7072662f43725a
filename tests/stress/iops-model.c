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
 *  - timers: never early, once per arm, in deadline order and, for equal
 *    deadlines, in the order of their WATCH (rule 7);
 *  - fds closed while armed: at most one report in the iterations after
 *    the close (rule 2). Their numbers are reserved until no armed event
 *    refers to them, so a later socket cannot take the number and be
 *    mistaken for them; other closed numbers are reused first, so that
 *    "the same number is a new socket" (rule 1) is exercised a lot;
 *  - references (rule 6): an event is never finalized while armed, held
 *    by the consumer or in its callback, and is finalized as soon as it is
 *    none of these and not registered (CLEANUP, disposal);
 *  - no callback from inside update_event/update_timer or disposal.
 *
 * Every fd number the model uses is FD_BASE + index, placed there with
 * dup3(), so the model, not the kernel, decides when a number is reused.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
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

#define ERROR_REVENTS (POLLERR | POLLHUP | POLLNVAL)

typedef enum {
  OP_ITERATE,
  OP_IO_NEW,
  OP_IO_WATCH,
  OP_IO_UNWATCH,
  OP_IO_CLEANUP,
  OP_IO_UNREF,
  OP_TM_NEW,
  OP_TM_WATCH,
  OP_TM_UNWATCH,
  OP_TM_CLEANUP,
  OP_TM_UNREF,
  OP_WRITE,
  OP_READ,
  OP_FILL,
  OP_CLOSE,
  OP_OPEN,
  OP_SET_PERSISTENT,
  OP_SET_PRIORITY,
  OP_IOPS_RESET,
  /* trace only */
  EV_IO_READY,
  EV_TIMER_READY,
  N_OPS
} Op;

static const char *const op_names[N_OPS] = {
  "ITERATE", "IO_NEW", "IO_WATCH", "IO_UNWATCH", "IO_CLEANUP", "IO_UNREF",
  "TM_NEW", "TM_WATCH", "TM_UNWATCH", "TM_CLEANUP", "TM_UNREF",
  "WRITE", "READ", "FILL", "CLOSE", "OPEN", "SET_PERSISTENT", "SET_PRIORITY",
  "IOPS_RESET", "io-ready", "timer-ready",
};

/* Out of 256: how often an opcode byte picks each operation. */
static const struct { Op op; guint weight; } op_weights[] = {
  { OP_IO_WATCH, 40 }, { OP_IO_UNWATCH, 12 }, { OP_IO_CLEANUP, 8 },
  { OP_IO_NEW, 6 }, { OP_IO_UNREF, 5 },
  { OP_TM_WATCH, 24 }, { OP_TM_UNWATCH, 8 }, { OP_TM_CLEANUP, 5 },
  { OP_TM_NEW, 4 }, { OP_TM_UNREF, 3 },
  { OP_WRITE, 30 }, { OP_READ, 20 }, { OP_FILL, 4 }, { OP_CLOSE, 6 },
  { OP_OPEN, 10 }, { OP_SET_PERSISTENT, 3 }, { OP_SET_PRIORITY, 2 },
  { OP_IOPS_RESET, 1 },
  /* the rest: OP_ITERATE */
};

static const int priorities[] = { G_PRIORITY_DEFAULT, G_PRIORITY_DEFAULT - 10, G_PRIORITY_DEFAULT + 10 };
static const IopsEventFlags flag_choices[] = { IOPS_READ_EVENT, IOPS_WRITE_EVENT, IOPS_RW_EVENT };

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
  IopsEventFlags flags;
  int            num;          /* number of the latest WATCH, or -1 */
  int            priority;
  guint64        armed_iter, orphan_iter, delivered_iter;
  guint          orphan_late;  /* reports after the close's iteration */
  guint          starve;
  guint          in_cb;
} IoModel;

typedef struct
{
  ModelTimerEvent *obj;
  gboolean         held, registered, armed;
  gint64           dl_lo, dl_hi;  /* the deadline lies in between */
  guint64          seq;           /* order of the latest WATCH */
  int              priority;
  guint64          armed_iter;
  guint            starve;
  guint            in_cb;
} TimerModel;

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

  guint64       iter;
  gboolean      in_iteration;
  gboolean      settling;
  gint64        iter_start;
  int           best_prio;         /* best priority delivered this iteration */
  guint64       timer_seq;
  gboolean      in_update, in_dispose;
  int           depth;
  int           cb_io, cb_tm;      /* slot whose callback runs, or -1 */
  GPollFD      *pfds;
  int           n_pfds;

  guint64       n_ops, n_io_cb, n_tm_cb, n_orphans, n_resets, n_blocks, n_noop;

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
  Model      *model;
  int         slot;
};

struct _ModelTimerEvent
{
  IopsTimerEvent parent_instance;
  Model         *model;
  int            slot;
};

G_DECLARE_FINAL_TYPE (ModelIOEvent, model_io_event, MODEL, IO_EVENT, IopsIOEvent)
G_DECLARE_FINAL_TYPE (ModelTimerEvent, model_timer_event, MODEL, TIMER_EVENT, IopsTimerEvent)
G_DEFINE_FINAL_TYPE (ModelIOEvent, model_io_event, IOPS_TYPE_IO_EVENT)
G_DEFINE_FINAL_TYPE (ModelTimerEvent, model_timer_event, IOPS_TYPE_TIMER_EVENT)

static void model_io_ready (Model *m, int slot, IopsEventFlags ready);
static void model_io_finalized (Model *m, int slot);
static void model_timer_ready (Model *m, int slot, int flags);
static void model_timer_finalized (Model *m, int slot);

static void
model_io_event_ready_r (IopsIOEvent *event)
{
  ModelIOEvent *self = (ModelIOEvent *) event;

  model_io_ready (self->model, self->slot, IOPS_READ_EVENT);
}

static void
model_io_event_ready_w (IopsIOEvent *event)
{
  ModelIOEvent *self = (ModelIOEvent *) event;

  model_io_ready (self->model, self->slot, IOPS_WRITE_EVENT);
}

static void
model_io_event_ready_rw (IopsIOEvent *event)
{
  ModelIOEvent *self = (ModelIOEvent *) event;

  model_io_ready (self->model, self->slot, IOPS_RW_EVENT);
}

static void
model_io_event_finalize (GObject *object)
{
  ModelIOEvent *self = (ModelIOEvent *) object;

  if (self->model != NULL)
    model_io_finalized (self->model, self->slot);
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

static void
model_timer_event_ready (IopsTimerEvent *event,
                         int             flags)
{
  ModelTimerEvent *self = (ModelTimerEvent *) event;

  model_timer_ready (self->model, self->slot, flags);
}

static void
model_timer_event_finalize (GObject *object)
{
  ModelTimerEvent *self = (ModelTimerEvent *) object;

  if (self->model != NULL)
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

static guint8
next_byte (Model *m)
{
  guint64 z;

  if (m->from_bytes)
    {
      if (m->pos < m->len)
        return m->data[m->pos++];
      m->exhausted = TRUE;
      return 0;
    }

  /* splitmix64: one multiply chain per byte is cheap next to a syscall. */
  z = (m->rng += G_GUINT64_CONSTANT (0x9E3779B97F4A7C15));
  z = (z ^ (z >> 30)) * G_GUINT64_CONSTANT (0xBF58476D1CE4E5B9);
  z = (z ^ (z >> 27)) * G_GUINT64_CONSTANT (0x94D049BB133111EB);
  return (guint8) ((z ^ (z >> 31)) >> 56);
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
format_trace (Model   *m,
              GString *out)
{
  guint64 first = m->n_trace > TRACE_LEN ? m->n_trace - TRACE_LEN : 0;

  g_string_append_printf (out, "latest operations (of %" G_GUINT64_FORMAT "; "
                          "depth 1 = inside a callback):\n", m->n_ops);
  for (guint64 i = first; i < m->n_trace; i++)
    {
      TraceRec *r = &m->trace[i % TRACE_LEN];

      g_string_append_printf (out, "  op %-8" G_GUINT64_FORMAT " iter %-7" G_GUINT64_FORMAT " %*s%-14s",
                              r->n, r->iter, 2 * r->depth, "", op_names[r->op]);
      switch (r->op)
        {
        case OP_IO_WATCH:
          g_string_append_printf (out, " io%d fd=%d flags=%s%s", r->a, r->b + FD_BASE,
                                  flags_name (r->c & 0xff), (r->c & 0x100) ? " persistent" : "");
          break;
        case EV_IO_READY:
          g_string_append_printf (out, " io%d %s fd=%d", r->a, flags_name (r->b), r->c + FD_BASE);
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
        case OP_ITERATE:
          g_string_append_printf (out, " block=%d", r->a);
          break;
        default:
          g_string_append_printf (out, " %d %d", r->a, r->b);
          break;
        }
      g_string_append_c (out, '\n');
    }
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
      g_string_append_printf (out, "  io%-2d %s%s%s fd=%d flags=%s prio=%d%s%s%s armed@%" G_GUINT64_FORMAT
                              " delivered@%" G_GUINT64_FORMAT "\n",
                              i, e->held ? "held " : "", e->registered ? "registered " : "",
                              e->armed ? "ARMED" : "disarmed", e->num >= 0 ? num_fd (e->num) : -1,
                              flags_name (e->flags), e->priority, e->persistent ? " persistent" : "",
                              e->invalid ? " invalid" : "", e->orphan ? " orphan" : "",
                              e->armed_iter, e->delivered_iter);
    }
  for (int i = 0; i < N_TIMERS; i++)
    {
      TimerModel *t = &m->tm[i];

      if (t->obj == NULL)
        continue;
      g_string_append_printf (out, "  t%-3d %s%s%s prio=%d seq=%" G_GUINT64_FORMAT "\n", i,
                              t->held ? "held " : "", t->registered ? "registered " : "",
                              t->armed ? "ARMED" : "disarmed", t->priority, t->seq);
    }
  for (int i = 0; i < N_ENDS; i++)
    if (m->end_num[i] >= 0)
      g_string_append_printf (out, "  end%d fd=%d\n", i, num_fd (m->end_num[i]));
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

/* Rule 11: everything disarmed at once, no callback, references dropped. */
static void
iops_dispose (Model *m)
{
  gpointer weak = m->glib_iops;

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
}

/* -- operations ------------------------------------------------------------ */

static Op
draw_op (Model *m)
{
  guint b = next_byte (m);

  for (guint i = 0; i < G_N_ELEMENTS (op_weights); i++)
    {
      if (b < op_weights[i].weight)
        return op_weights[i].op;
      b -= op_weights[i].weight;
    }
  return OP_ITERATE;
}

/* The consumer can only name events it holds, or the one whose callback
 * runs (the callback is handed its pointer). */
static int
pick_io (Model *m)
{
  guint8 b = next_byte (m);
  int usable[N_IO], n = 0;

  if (m->cb_io >= 0 && (b & 1))
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

  if (m->cb_tm >= 0 && (b & 1))
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

static void
io_watch (Model          *m,
          int             slot,
          int             num,
          IopsEventFlags  flags)
{
  IoModel *e = &m->io[slot];
  IopsIOEvent *event = (IopsIOEvent *) e->obj;

  if (iops_io_event_get_fd (event) != num_fd (num))
    iops_io_event_set_fd (event, num_fd (num));
  trace (m, OP_IO_WATCH, slot, num, flags | (m->persistent ? 0x100 : 0));

  m->in_update = TRUE;
  iops_iops_update_event (IOPS_IOPS (m->glib_iops), event, IOPS_EVACTION_WATCH, flags);
  m->in_update = FALSE;

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
  m->in_update = TRUE;
  t0 = g_get_monotonic_time ();
  iops_iops_update_timer (IOPS_IOPS (m->glib_iops), (IopsTimerEvent *) t->obj,
                          IOPS_EVACTION_WATCH, usecs);
  t1 = g_get_monotonic_time ();
  m->in_update = FALSE;

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

  if (e->obj != NULL && !e->held && !e->registered && e->in_cb == 0)
    fail (m, "io%d is neither held, registered nor in its callback, yet alive "
          "(rule 6: CLEANUP releases every reference)", slot);
}

static void
check_tm_gone (Model *m,
               int    slot)
{
  TimerModel *t = &m->tm[slot];

  if (t->obj != NULL && !t->held && !t->registered && t->in_cb == 0)
    fail (m, "t%d is neither held, registered nor in its callback, yet alive "
          "(rule 6: CLEANUP releases every reference)", slot);
}

static void run_iteration (Model *m);

/* Returns FALSE for an operation that found nothing to act on. */
static gboolean
exec_op (Model *m,
         Op     op)
{
  IopsIOPS *iops = IOPS_IOPS (m->glib_iops);
  int slot, end, num;
  guint8 b;

  switch (op)
    {
    case OP_ITERATE:
      run_iteration (m);
      return TRUE;

    case OP_IO_NEW:
      for (slot = next_byte (m) % N_IO, end = 0; m->io[slot].obj != NULL && end < N_IO; end++)
        slot = (slot + 1) % N_IO;
      if (m->io[slot].obj != NULL)
        return FALSE;
      memset (&m->io[slot], 0, sizeof m->io[slot]);
      m->io[slot].obj = g_object_new (model_io_event_get_type (), NULL);
      m->io[slot].obj->model = m;
      m->io[slot].obj->slot = slot;
      m->io[slot].held = TRUE;
      m->io[slot].num = -1;
      trace (m, op, slot, 0, 0);
      return TRUE;

    case OP_IO_WATCH:
      {
        IopsEventFlags flags;
        int cur;

        slot = pick_io (m);
        b = next_byte (m);
        flags = flag_choices[next_byte (m) % 3];
        if (slot < 0)
          return FALSE;
        cur = iops_io_event_get_fd ((IopsIOEvent *) m->io[slot].obj) - FD_BASE;
        if (b < 16)
          num = pick_closed_num (m, next_byte (m), FALSE, TRUE, -1);  /* invalid at WATCH */
        else if (b < 64 && cur >= 0)
          num = cur;                                            /* maybe a new socket now */
        else
          {
            end = next_byte (m) % N_ENDS;
            num = m->end_num[end];
            if (num < 0)
              num = cur >= 0 ? cur : pick_closed_num (m, b, FALSE, TRUE, -1);
          }
        if (num < 0)
          return FALSE;
        io_watch (m, slot, num, flags);
        return TRUE;
      }

    case OP_IO_UNWATCH:
    case OP_IO_CLEANUP:
      slot = pick_io (m);
      b = next_byte (m);
      if (slot < 0)
        return FALSE;
      trace (m, op, slot, 0, 0);
      m->in_update = TRUE;
      /* Rule 12: UNWATCH and CLEANUP ignore the flags. */
      iops_iops_update_event (iops, (IopsIOEvent *) m->io[slot].obj,
                              op == OP_IO_UNWATCH ? IOPS_EVACTION_UNWATCH : IOPS_EVACTION_CLEANUP,
                              b % 7);
      m->in_update = FALSE;
      m->io[slot].armed = FALSE;
      m->io[slot].orphan = FALSE;
      m->io[slot].starve = 0;
      if (op == OP_IO_CLEANUP)
        m->io[slot].registered = FALSE;
      check_io_gone (m, slot);
      return TRUE;

    case OP_IO_UNREF:
      slot = pick_io (m);
      if (slot < 0 || !m->io[slot].held)
        return FALSE;
      trace (m, op, slot, 0, 0);
      m->io[slot].held = FALSE;
      g_object_unref (m->io[slot].obj);
      check_io_gone (m, slot);
      return TRUE;

    case OP_TM_NEW:
      for (slot = next_byte (m) % N_TIMERS, end = 0; m->tm[slot].obj != NULL && end < N_TIMERS; end++)
        slot = (slot + 1) % N_TIMERS;
      if (m->tm[slot].obj != NULL)
        return FALSE;
      memset (&m->tm[slot], 0, sizeof m->tm[slot]);
      m->tm[slot].obj = g_object_new (model_timer_event_get_type (), NULL);
      m->tm[slot].obj->model = m;
      m->tm[slot].obj->slot = slot;
      m->tm[slot].held = TRUE;
      trace (m, op, slot, 0, 0);
      return TRUE;

    case OP_TM_WATCH:
      slot = pick_tm (m);
      b = next_byte (m);
      if (slot < 0)
        return FALSE;
      timer_watch (m, slot, decode_usecs (b));
      return TRUE;

    case OP_TM_UNWATCH:
    case OP_TM_CLEANUP:
      slot = pick_tm (m);
      b = next_byte (m);
      if (slot < 0)
        return FALSE;
      trace (m, op, slot, 0, 0);
      m->in_update = TRUE;
      iops_iops_update_timer (iops, (IopsTimerEvent *) m->tm[slot].obj,
                              op == OP_TM_UNWATCH ? IOPS_EVACTION_UNWATCH : IOPS_EVACTION_CLEANUP,
                              (gint64) b - 128);
      m->in_update = FALSE;
      m->tm[slot].armed = FALSE;
      m->tm[slot].starve = 0;
      if (op == OP_TM_CLEANUP)
        m->tm[slot].registered = FALSE;
      check_tm_gone (m, slot);
      return TRUE;

    case OP_TM_UNREF:
      slot = pick_tm (m);
      if (slot < 0 || !m->tm[slot].held)
        return FALSE;
      trace (m, op, slot, 0, 0);
      m->tm[slot].held = FALSE;
      g_object_unref (m->tm[slot].obj);
      check_tm_gone (m, slot);
      return TRUE;

    case OP_WRITE:
      end = pick_end (m);
      b = next_byte (m);
      if (end < 0)
        return FALSE;
      num = m->end_num[end];
      trace (m, op, end, num, 1 + b % 64);
      memset (m->scratch, 'x', 1 + b % 64);
      (void) send (num_fd (num), m->scratch, 1 + b % 64, MSG_DONTWAIT | MSG_NOSIGNAL);
      observe (m, num);
      observe (m, m->end_num[end ^ 1]);
      return TRUE;

    case OP_READ:
      end = pick_end (m);
      if (end < 0)
        return FALSE;
      num = m->end_num[end];
      trace (m, op, end, num, 0);
      while (recv (num_fd (num), m->scratch, sizeof m->scratch, MSG_DONTWAIT) > 0)
        ;
      observe (m, num);
      observe (m, m->end_num[end ^ 1]);
      return TRUE;

    case OP_FILL:
      end = pick_end (m);
      if (end < 0)
        return FALSE;
      num = m->end_num[end];
      trace (m, op, end, num, 0);
      memset (m->scratch, 'f', sizeof m->scratch);
      for (int i = 0; i < 64; i++)
        if (send (num_fd (num), m->scratch, sizeof m->scratch, MSG_DONTWAIT | MSG_NOSIGNAL) <= 0)
          break;
      observe (m, num);
      observe (m, m->end_num[end ^ 1]);
      return TRUE;

    case OP_CLOSE:
      end = pick_end (m);
      if (end < 0)
        return FALSE;
      trace (m, op, end, m->end_num[end], 0);
      end_close (m, end);
      return TRUE;

    case OP_OPEN:
      {
        int chan = next_byte (m) % N_CHANNELS;
        int sv[2], nums[2];
        int sndbuf = 4096;

        b = next_byte (m);
        for (int i = 0; i < N_CHANNELS && (m->end_num[2 * chan] >= 0 || m->end_num[2 * chan + 1] >= 0); i++)
          chan = (chan + 1) % N_CHANNELS;
        if (m->end_num[2 * chan] >= 0 || m->end_num[2 * chan + 1] >= 0)
          return FALSE;
        nums[0] = pick_closed_num (m, b, b < 160, FALSE, -1);
        nums[1] = pick_closed_num (m, b >> 1, b < 80, FALSE, nums[0]);
        if (nums[0] < 0 || nums[1] < 0)
          return FALSE;
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
        trace (m, op, chan, nums[0], nums[1]);
        observe (m, nums[0]);
        observe (m, nums[1]);
        return TRUE;
      }

    case OP_SET_PERSISTENT:
      m->persistent = !m->persistent;
      trace (m, op, m->persistent, 0, 0);
      iops_glib_iops_set_persistent (m->glib_iops, m->persistent);
      return TRUE;

    case OP_SET_PRIORITY:
      m->priority = priorities[next_byte (m) % G_N_ELEMENTS (priorities)];
      trace (m, op, m->priority, 0, 0);
      iops_glib_iops_set_priority (m->glib_iops, m->priority);
      return TRUE;

    case OP_IOPS_RESET:
      if (next_byte (m) >= 16)
        return FALSE;
      trace (m, op, 0, 0, 0);
      m->n_resets++;
      iops_dispose (m);
      iops_create (m);
      check_finalized (m);
      return TRUE;

    case EV_IO_READY:
    case EV_TIMER_READY:
    case N_OPS:
    default:
      break;
    }
  g_assert_not_reached ();
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
      if (exec_op (m, op))
        m->n_ops++;
      else
        m->n_noop++;
    }
}

/* -- callbacks ------------------------------------------------------------- */

static gboolean
callback_context_ok (Model      *m,
                     const char *what)
{
  if (m->failed)
    return FALSE;
  if (m->in_update)
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

static void
model_io_finalized (Model *m,
                    int    slot)
{
  IoModel *e = &m->io[slot];

  /* An fd closed while armed may have been disarmed by its report or not
   * (epoll forgets it silently): either way is right. */
  if (e->held || (e->armed && !e->orphan) || e->in_cb > 0)
    fail (m, "io%d finalized while %s (rule 6)", slot,
          e->held ? "held by the consumer" : e->armed ? "armed" : "in its callback");
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

  if (!m->failed)
    end_of_iteration_checks (m);
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
      else if (exec_op (m, op))
        m->n_ops++;
      else
        m->n_noop++;
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
                          G_GUINT64_FORMAT " IOPS resets",
                          m->n_ops, m->n_noop, m->iter, m->n_blocks, m->n_io_cb, m->n_tm_cb,
                          m->n_orphans, m->n_resets);
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
  g_main_context_release (m->context);
  g_main_context_unref (m->context);
  g_free (m->pfds);
  if (m->error != NULL)
    g_string_free (m->error, TRUE);
  g_free (m);
}

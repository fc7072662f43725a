/* iops-gtk-demo.c — transfers in a GTK 4 window, driven through IopsIOPS
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 *   iops-gtk-demo [--transfers N] [--size KIB] [--rate KIB/S]
 *                 [--auto-quit] [--screenshot PATH]
 *
 * The demo starts a small server on 127.0.0.1 (in this process, port 0: the
 * kernel picks one) and N transfers from it, each with its progress bar.
 * Every connect, accept, read and write happens in a callback of an
 * IopsIOEvent, and every pause of the server's rate limiter, the progress
 * refresh and the events/s counter are IopsTimerEvents — all on one
 * IopsGLibIOPS on the default main context. Nothing calls start_watching():
 * the events fire from GTK's own main loop, which keeps drawing the window.
 *
 * The IOPS runs its sources at G_PRIORITY_DEFAULT_IDLE, below GTK's input
 * and drawing, and each callback reads or writes at most one buffer, so the
 * window stays responsive however fast the loopback is.
 *
 * Transfer i is rate-limited to (i + 1) × --rate KiB/s (0: no limit). With
 * --auto-quit the demo quits when every transfer is over, first saving the
 * window to --screenshot PATH (a PNG) when asked, and prints a summary:
 * counts, the window size and each progress bar's bounds in it.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtk/gtk.h>
#include <iops-glib.h>

#define CHUNK                  (64 * 1024)
#define HEADER_LEN             16
#define REFRESH_INTERVAL_US    (50 * G_TIME_SPAN_MILLISECOND)
#define RATE_INTERVAL_US       (500 * G_TIME_SPAN_MILLISECOND)
#define AUTO_QUIT_DEADLINE_US  (60 * G_TIME_SPAN_SECOND)
#define MIB                    (1024.0 * 1024.0)

/* -- options ------------------------------------------------------------ */

static int opt_transfers = 4;
static int opt_size_kib = 16 * 1024;
static int opt_rate_kib = 2 * 1024;
static gboolean opt_auto_quit = FALSE;
static char *opt_screenshot = NULL;

static const GOptionEntry option_entries[] = {
  { "transfers", 'n', 0, G_OPTION_ARG_INT, &opt_transfers,
    "Number of transfers (1-16, default 4)", "N" },
  { "size", 's', 0, G_OPTION_ARG_INT, &opt_size_kib,
    "Size of each transfer in KiB (default 16384)", "KIB" },
  { "rate", 'r', 0, G_OPTION_ARG_INT, &opt_rate_kib,
    "Transfer i is limited to (i+1) x RATE KiB/s; 0: no limit (default 2048)", "RATE" },
  { "auto-quit", 0, 0, G_OPTION_ARG_NONE, &opt_auto_quit,
    "Quit when every transfer is over and print a summary", NULL },
  { "screenshot", 0, 0, G_OPTION_ARG_FILENAME, &opt_screenshot,
    "With --auto-quit, save the window to PATH (PNG) first", "PATH" },
  { NULL }
};

/* -- generic events: a callback and its data ---------------------------- */

/* Every IOPS callback goes through these two subclasses, which override the
 * ready vfuncs (the fast path) and count the deliveries. */
static guint64 n_events;

typedef void (*DemoWatchFunc) (gpointer data, IopsEventFlags flags);
typedef void (*DemoTimerFunc) (gpointer data);

#define DEMO_TYPE_WATCH (demo_watch_get_type ())
G_DECLARE_FINAL_TYPE (DemoWatch, demo_watch, DEMO, WATCH, IopsIOEvent)

struct _DemoWatch
{
  IopsIOEvent   parent_instance;
  DemoWatchFunc func;
  gpointer      data;
};

G_DEFINE_FINAL_TYPE (DemoWatch, demo_watch, IOPS_TYPE_IO_EVENT)

static void
demo_watch_deliver (IopsIOEvent    *event,
                    IopsEventFlags  flags)
{
  DemoWatch *self = DEMO_WATCH (event);

  n_events++;
  self->func (self->data, flags);
}

static void demo_watch_ready_r  (IopsIOEvent *e) { demo_watch_deliver (e, IOPS_READ_EVENT); }
static void demo_watch_ready_w  (IopsIOEvent *e) { demo_watch_deliver (e, IOPS_WRITE_EVENT); }
static void demo_watch_ready_rw (IopsIOEvent *e) { demo_watch_deliver (e, IOPS_RW_EVENT); }

static void
demo_watch_class_init (DemoWatchClass *klass)
{
  IopsIOEventClass *event_class = IOPS_IO_EVENT_CLASS (klass);

  event_class->ready_r = demo_watch_ready_r;
  event_class->ready_w = demo_watch_ready_w;
  event_class->ready_rw = demo_watch_ready_rw;
}

static void
demo_watch_init (DemoWatch *self)
{
}

static DemoWatch *
demo_watch_new (int           fd,
                DemoWatchFunc func,
                gpointer      data)
{
  DemoWatch *self = g_object_new (DEMO_TYPE_WATCH, "fd", fd, NULL);

  self->func = func;
  self->data = data;
  return self;
}

#define DEMO_TYPE_TIMER (demo_timer_get_type ())
G_DECLARE_FINAL_TYPE (DemoTimer, demo_timer, DEMO, TIMER, IopsTimerEvent)

struct _DemoTimer
{
  IopsTimerEvent parent_instance;
  DemoTimerFunc  func;
  gpointer       data;
};

G_DEFINE_FINAL_TYPE (DemoTimer, demo_timer, IOPS_TYPE_TIMER_EVENT)

static void
demo_timer_ready (IopsTimerEvent *timer,
                  int             flags)
{
  DemoTimer *self = DEMO_TIMER (timer);

  n_events++;
  self->func (self->data);
}

static void
demo_timer_class_init (DemoTimerClass *klass)
{
  IOPS_TIMER_EVENT_CLASS (klass)->ready = demo_timer_ready;
}

static void
demo_timer_init (DemoTimer *self)
{
}

static DemoTimer *
demo_timer_new (DemoTimerFunc func,
                gpointer      data)
{
  DemoTimer *self = g_object_new (DEMO_TYPE_TIMER, NULL);

  self->func = func;
  self->data = data;
  return self;
}

/* -- state -------------------------------------------------------------- */

typedef struct _Demo Demo;

typedef struct
{
  Demo           *demo;
  guint           index;
  int             fd;
  DemoWatch      *watch;
  guint64         size;
  guint64         rate;       /* bytes per second, 0: no limit */
  guint64         received;
  gboolean        connected;
  gboolean        over;
  char           *error;
  gint64          start_us;
  gint64          end_us;
  GtkProgressBar *bar;
  guint8          buffer[CHUNK];
} Transfer;

typedef struct
{
  Demo      *demo;
  int        fd;
  DemoWatch *watch;
  DemoTimer *pace;
  guint8     header[HEADER_LEN];
  gsize      header_len;
  guint64    size;
  guint64    sent;
  guint64    rate;
  double     tokens;          /* bytes the rate limiter allows now */
  gint64     refilled_us;
} ServerConn;

struct _Demo
{
  IopsGLibIOPS *glib_iops;
  IopsIOPS     *iops;
  GtkWindow    *window;
  GtkLabel     *events_label;
  GtkLabel     *status_label;
  GtkSpinner   *spinner;

  int           listen_fd;
  DemoWatch    *listener;
  guint16       port;
  GList        *server_conns;   /* ServerConn */

  GPtrArray    *transfers;      /* Transfer */
  guint         n_over;
  gint64        start_us;

  DemoTimer    *refresh;
  DemoTimer    *deadline;
  guint64       events_at_last_rate;
  gint64        last_rate_us;
  double        events_per_s;

  gulong        after_paint_id;
  guint         frames_while_running;
  guint         paints_after_end;
  int           exit_status;
  gboolean      stopped;
};

/* The bytes of every transfer: byte k of the stream is (guint8) k. */
static guint8 pattern[CHUNK + 256];

static void demo_transfer_over (Demo *demo);

/* -- server ------------------------------------------------------------- */

static void
server_conn_free (ServerConn *conn)
{
  conn->demo->server_conns = g_list_remove (conn->demo->server_conns, conn);
  iops_iops_update_event (conn->demo->iops, IOPS_IO_EVENT (conn->watch),
                          IOPS_EVACTION_CLEANUP, 0);
  iops_iops_update_timer (conn->demo->iops, IOPS_TIMER_EVENT (conn->pace),
                          IOPS_EVACTION_CLEANUP, 0);
  g_clear_object (&conn->watch);
  g_clear_object (&conn->pace);
  close (conn->fd);
  g_free (conn);
}

static void
server_conn_watch (ServerConn     *conn,
                   IopsEventFlags  flags)
{
  iops_iops_update_event (conn->demo->iops, IOPS_IO_EVENT (conn->watch),
                          IOPS_EVACTION_WATCH, flags);
}

/* Writes at most one chunk, as much as the rate limiter allows; when it
 * allows too little, sleeps on the pace timer instead. */
static void
server_conn_send (ServerConn *conn)
{
  gint64 now = g_get_monotonic_time ();
  guint64 want = MIN (conn->size - conn->sent, CHUNK);
  ssize_t n;

  if (conn->rate > 0)
    {
      double burst = MAX (conn->rate / 20.0, (double) CHUNK);

      conn->tokens = MIN (burst, conn->tokens + conn->rate * (now - conn->refilled_us) / 1e6);
      conn->refilled_us = now;
      if (conn->tokens < want)
        {
          gint64 wait_us = (gint64) ((want - conn->tokens) * 1e6 / conn->rate) + 1;

          iops_iops_update_timer (conn->demo->iops, IOPS_TIMER_EVENT (conn->pace),
                                  IOPS_EVACTION_WATCH, wait_us);
          return;
        }
    }

  n = write (conn->fd, pattern + conn->sent % 256, want);
  if (n < 0 && errno != EAGAIN)
    {
      server_conn_free (conn);
      return;
    }
  if (n > 0)
    {
      conn->sent += n;
      conn->tokens -= n;
    }
  if (conn->sent == conn->size)
    server_conn_free (conn);   /* the client reads the rest, then EOF */
  else
    server_conn_watch (conn, IOPS_WRITE_EVENT);
}

static void
server_conn_pace (gpointer data)
{
  server_conn_send (data);
}

/* The request is HEADER_LEN bytes: the size and the rate, big-endian. */
static void
server_conn_read_header (ServerConn *conn)
{
  ssize_t n = read (conn->fd, conn->header + conn->header_len,
                    HEADER_LEN - conn->header_len);
  guint64 be[2];

  if (n == 0 || (n < 0 && errno != EAGAIN))
    {
      server_conn_free (conn);
      return;
    }
  if (n > 0)
    conn->header_len += n;
  if (conn->header_len < HEADER_LEN)
    {
      server_conn_watch (conn, IOPS_READ_EVENT);
      return;
    }

  memcpy (be, conn->header, sizeof be);
  conn->size = GUINT64_FROM_BE (be[0]);
  conn->rate = GUINT64_FROM_BE (be[1]);
  conn->refilled_us = g_get_monotonic_time ();
  conn->tokens = CHUNK;
  server_conn_watch (conn, IOPS_WRITE_EVENT);
}

static void
server_conn_ready (gpointer       data,
                   IopsEventFlags flags)
{
  ServerConn *conn = data;

  if (conn->header_len < HEADER_LEN)
    server_conn_read_header (conn);
  else
    server_conn_send (conn);
}

static void
server_accept (gpointer       data,
               IopsEventFlags flags)
{
  Demo *demo = data;
  int fd;

  while ((fd = accept4 (demo->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0)
    {
      ServerConn *conn = g_new0 (ServerConn, 1);

      conn->demo = demo;
      conn->fd = fd;
      conn->watch = demo_watch_new (fd, server_conn_ready, conn);
      conn->pace = demo_timer_new (server_conn_pace, conn);
      demo->server_conns = g_list_prepend (demo->server_conns, conn);
      server_conn_watch (conn, IOPS_READ_EVENT);
    }
  iops_iops_update_event (demo->iops, IOPS_IO_EVENT (demo->listener),
                          IOPS_EVACTION_WATCH, IOPS_READ_EVENT);
}

static gboolean
server_start (Demo    *demo,
              GError **error)
{
  struct sockaddr_in addr = { .sin_family = AF_INET };
  socklen_t len = sizeof addr;

  addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  demo->listen_fd = socket (AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (demo->listen_fd < 0 ||
      bind (demo->listen_fd, (struct sockaddr *) &addr, sizeof addr) < 0 ||
      listen (demo->listen_fd, 64) < 0 ||
      getsockname (demo->listen_fd, (struct sockaddr *) &addr, &len) < 0)
    {
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errno),
                   "listening on 127.0.0.1: %s", g_strerror (errno));
      return FALSE;
    }
  demo->port = ntohs (addr.sin_port);
  demo->listener = demo_watch_new (demo->listen_fd, server_accept, demo);
  iops_iops_update_event (demo->iops, IOPS_IO_EVENT (demo->listener),
                          IOPS_EVACTION_WATCH, IOPS_READ_EVENT);
  return TRUE;
}

static void
server_stop (Demo *demo)
{
  while (demo->server_conns != NULL)
    server_conn_free (demo->server_conns->data);
  if (demo->listener != NULL)
    {
      iops_iops_update_event (demo->iops, IOPS_IO_EVENT (demo->listener),
                              IOPS_EVACTION_CLEANUP, 0);
      g_clear_object (&demo->listener);
      close (demo->listen_fd);
    }
}

/* -- transfers (the clients) -------------------------------------------- */

static void
transfer_end (Transfer   *transfer,
              const char *error)
{
  transfer->over = TRUE;
  transfer->end_us = g_get_monotonic_time ();
  transfer->error = g_strdup (error);
  iops_iops_update_event (transfer->demo->iops, IOPS_IO_EVENT (transfer->watch),
                          IOPS_EVACTION_CLEANUP, 0);
  close (transfer->fd);
  transfer->fd = -1;
  demo_transfer_over (transfer->demo);
}

static void
transfer_watch (Transfer       *transfer,
                IopsEventFlags  flags)
{
  iops_iops_update_event (transfer->demo->iops, IOPS_IO_EVENT (transfer->watch),
                          IOPS_EVACTION_WATCH, flags);
}

/* Connected (or failed): send the request, then read. */
static void
transfer_connected (Transfer *transfer)
{
  int so_error = 0;
  socklen_t len = sizeof so_error;
  guint64 header[2] = { GUINT64_TO_BE (transfer->size), GUINT64_TO_BE (transfer->rate) };

  if (getsockopt (transfer->fd, SOL_SOCKET, SO_ERROR, &so_error, &len) < 0)
    so_error = errno;
  if (so_error != 0)
    {
      transfer_end (transfer, g_strerror (so_error));
      return;
    }
  /* A fresh connection's send buffer has room for the few bytes. */
  if (write (transfer->fd, header, sizeof header) != sizeof header)
    {
      transfer_end (transfer, "could not send the request");
      return;
    }
  transfer->connected = TRUE;
  transfer_watch (transfer, IOPS_READ_EVENT);
}

static gboolean
transfer_check (Transfer *transfer,
                gsize     n)
{
  for (gsize i = 0; i < n; i++)
    if (transfer->buffer[i] != (guint8) (transfer->received + i))
      return FALSE;
  return TRUE;
}

static void
transfer_read (Transfer *transfer)
{
  ssize_t n = read (transfer->fd, transfer->buffer, sizeof transfer->buffer);

  if (n < 0 && errno == EAGAIN)
    transfer_watch (transfer, IOPS_READ_EVENT);
  else if (n < 0)
    transfer_end (transfer, g_strerror (errno));
  else if (n == 0)
    transfer_end (transfer, transfer->received == transfer->size ? NULL : "short transfer");
  else if (!transfer_check (transfer, n))
    transfer_end (transfer, "wrong bytes");
  else
    {
      transfer->received += n;
      transfer_watch (transfer, IOPS_READ_EVENT);
    }
}

static void
transfer_ready (gpointer       data,
                IopsEventFlags flags)
{
  Transfer *transfer = data;

  if (transfer->connected)
    transfer_read (transfer);
  else
    transfer_connected (transfer);
}

static void
transfer_start (Transfer *transfer)
{
  struct sockaddr_in addr = { .sin_family = AF_INET };

  addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  addr.sin_port = htons (transfer->demo->port);
  transfer->start_us = g_get_monotonic_time ();
  transfer->fd = socket (AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (transfer->fd < 0)
    {
      transfer->over = TRUE;
      transfer->error = g_strdup (g_strerror (errno));
      demo_transfer_over (transfer->demo);
      return;
    }
  transfer->watch = demo_watch_new (transfer->fd, transfer_ready, transfer);
  if (connect (transfer->fd, (struct sockaddr *) &addr, sizeof addr) < 0 &&
      errno != EINPROGRESS)
    {
      transfer_end (transfer, g_strerror (errno));
      return;
    }
  /* Writable means connected, or failed: SO_ERROR tells. */
  transfer_watch (transfer, IOPS_WRITE_EVENT);
}

static void
transfer_free (gpointer data)
{
  Transfer *transfer = data;

  if (transfer->watch != NULL)
    iops_iops_update_event (transfer->demo->iops, IOPS_IO_EVENT (transfer->watch),
                            IOPS_EVACTION_CLEANUP, 0);
  if (transfer->fd >= 0)
    close (transfer->fd);
  g_clear_object (&transfer->watch);
  g_free (transfer->error);
  g_free (transfer);
}

/* -- the window --------------------------------------------------------- */

static char *
format_rate (guint64 rate)
{
  if (rate == 0)
    return g_strdup ("no rate limit");
  return g_strdup_printf ("%.1f MiB/s", rate / MIB);
}

static GtkWidget *
transfer_row_new (Transfer *transfer)
{
  GtkWidget *box = gtk_box_new (GTK_ORIENTATION_VERTICAL, 4);
  g_autofree char *rate = format_rate (transfer->rate);
  g_autofree char *title = g_strdup_printf ("Transfer %u · %.1f MiB · %s",
                                            transfer->index + 1,
                                            transfer->size / MIB, rate);
  GtkWidget *label = gtk_label_new (title);

  gtk_label_set_xalign (GTK_LABEL (label), 0);
  transfer->bar = GTK_PROGRESS_BAR (gtk_progress_bar_new ());
  gtk_progress_bar_set_show_text (transfer->bar, TRUE);
  gtk_box_append (GTK_BOX (box), label);
  gtk_box_append (GTK_BOX (box), GTK_WIDGET (transfer->bar));
  return box;
}

static void
transfer_update_bar (Transfer *transfer)
{
  g_autofree char *text = NULL;

  gtk_progress_bar_set_fraction (transfer->bar,
                                 transfer->size > 0 ? (double) transfer->received / transfer->size : 1.0);
  if (transfer->error != NULL)
    text = g_strdup_printf ("failed: %s", transfer->error);
  else if (transfer->over)
    text = g_strdup_printf ("%.1f MiB in %.2f s", transfer->received / MIB,
                            (transfer->end_us - transfer->start_us) / 1e6);
  else
    text = g_strdup_printf ("%.1f / %.1f MiB", transfer->received / MIB,
                            transfer->size / MIB);
  gtk_progress_bar_set_text (transfer->bar, text);
}

static void
demo_update_window (Demo *demo)
{
  gint64 now = g_get_monotonic_time ();
  g_autofree char *events = NULL;

  for (guint i = 0; i < demo->transfers->len; i++)
    transfer_update_bar (g_ptr_array_index (demo->transfers, i));

  if (now - demo->last_rate_us >= RATE_INTERVAL_US)
    {
      demo->events_per_s = (n_events - demo->events_at_last_rate) * 1e6 /
                           (now - demo->last_rate_us);
      demo->events_at_last_rate = n_events;
      demo->last_rate_us = now;
    }
  events = g_strdup_printf ("%.0f events/s · %" G_GUINT64_FORMAT " events",
                            demo->events_per_s, n_events);
  gtk_label_set_text (demo->events_label, events);
}

/* The refresh timer re-arms itself while transfers run. */
static void
demo_refresh (gpointer data)
{
  Demo *demo = data;

  demo_update_window (demo);
  if (demo->n_over < demo->transfers->len)
    iops_iops_update_timer (demo->iops, IOPS_TIMER_EVENT (demo->refresh),
                            IOPS_EVACTION_WATCH, REFRESH_INTERVAL_US);
}

static GtkWidget *
demo_build_window (Demo           *demo,
                   GtkApplication *app)
{
  GtkWidget *window = gtk_application_window_new (app);
  GtkWidget *header = gtk_header_bar_new ();
  GtkWidget *box = gtk_box_new (GTK_ORIENTATION_VERTICAL, 12);
  GtkWidget *footer = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 8);

  gtk_window_set_title (GTK_WINDOW (window), "iops-glib transfers");
  gtk_window_set_default_size (GTK_WINDOW (window), 520, -1);
  gtk_window_set_titlebar (GTK_WINDOW (window), header);
  demo->spinner = GTK_SPINNER (gtk_spinner_new ());
  gtk_header_bar_pack_start (GTK_HEADER_BAR (header), GTK_WIDGET (demo->spinner));

  gtk_widget_set_margin_start (box, 18);
  gtk_widget_set_margin_end (box, 18);
  gtk_widget_set_margin_top (box, 18);
  gtk_widget_set_margin_bottom (box, 18);
  for (guint i = 0; i < demo->transfers->len; i++)
    gtk_box_append (GTK_BOX (box), transfer_row_new (g_ptr_array_index (demo->transfers, i)));

  demo->status_label = GTK_LABEL (gtk_label_new ("Running…"));
  demo->events_label = GTK_LABEL (gtk_label_new (NULL));
  gtk_widget_set_hexpand (GTK_WIDGET (demo->status_label), TRUE);
  gtk_label_set_xalign (demo->status_label, 0);
  gtk_box_append (GTK_BOX (footer), GTK_WIDGET (demo->status_label));
  gtk_box_append (GTK_BOX (footer), GTK_WIDGET (demo->events_label));
  gtk_box_append (GTK_BOX (box), footer);

  gtk_window_set_child (GTK_WINDOW (window), box);
  return window;
}

/* -- end: summary, screenshot, quit -------------------------------------- */

/* Renders the window as it is now, with its own renderer, into a PNG. */
static gboolean
save_screenshot (GtkWidget   *widget,
                 const char  *path,
                 GError     **error)
{
  int width = gtk_widget_get_width (widget);
  int height = gtk_widget_get_height (widget);
  g_autoptr(GdkPaintable) paintable = gtk_widget_paintable_new (widget);
  GtkSnapshot *snapshot = gtk_snapshot_new ();
  g_autoptr(GskRenderNode) node = NULL;
  g_autoptr(GdkTexture) texture = NULL;
  GskRenderer *renderer = gtk_native_get_renderer (gtk_widget_get_native (widget));

  gdk_paintable_snapshot (paintable, snapshot, width, height);
  node = gtk_snapshot_free_to_node (snapshot);
  if (node == NULL || renderer == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "the window drew nothing");
      return FALSE;
    }
  texture = gsk_renderer_render_texture (renderer, node,
                                         &GRAPHENE_RECT_INIT (0, 0, width, height));
  if (!gdk_texture_save_to_png (texture, path))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "could not write %s", path);
      return FALSE;
    }
  return TRUE;
}

static void
demo_print_summary (Demo *demo)
{
  guint64 bytes = 0, expected = 0;
  guint complete = 0;
  double elapsed = (g_get_monotonic_time () - demo->start_us) / 1e6;

  for (guint i = 0; i < demo->transfers->len; i++)
    {
      Transfer *transfer = g_ptr_array_index (demo->transfers, i);
      graphene_rect_t bounds;

      bytes += transfer->received;
      expected += transfer->size;
      complete += transfer->error == NULL && transfer->received == transfer->size;
      if (transfer->error != NULL)
        g_printerr ("transfer %u: %s\n", i + 1, transfer->error);
      if (gtk_widget_compute_bounds (GTK_WIDGET (transfer->bar), GTK_WIDGET (demo->window), &bounds))
        g_print ("bar %u: %.0f %.0f %.0f %.0f\n", i + 1,
                 bounds.origin.x, bounds.origin.y, bounds.size.width, bounds.size.height);
    }
  g_print ("backend: %s\n", iops_glib_iops_get_backend (demo->glib_iops));
  g_print ("transfers: %u of %u complete\n", complete, demo->transfers->len);
  g_print ("bytes: %" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT "\n", bytes, expected);
  g_print ("events: %" G_GUINT64_FORMAT "\n", n_events);
  g_print ("elapsed: %.3f s\n", elapsed);
  g_print ("frames drawn while running: %u\n", demo->frames_while_running);
  g_print ("window: %d %d\n", gtk_widget_get_width (GTK_WIDGET (demo->window)),
           gtk_widget_get_height (GTK_WIDGET (demo->window)));
  if (complete != demo->transfers->len)
    demo->exit_status = 1;
}

/* Disarms everything the demo has armed; no callback comes after this. */
static void
demo_stop (Demo *demo)
{
  if (demo->stopped)
    return;
  demo->stopped = TRUE;
  iops_iops_update_timer (demo->iops, IOPS_TIMER_EVENT (demo->refresh),
                          IOPS_EVACTION_CLEANUP, 0);
  iops_iops_update_timer (demo->iops, IOPS_TIMER_EVENT (demo->deadline),
                          IOPS_EVACTION_CLEANUP, 0);
  server_stop (demo);
  for (guint i = 0; i < demo->transfers->len; i++)
    {
      Transfer *transfer = g_ptr_array_index (demo->transfers, i);

      if (transfer->watch != NULL)
        iops_iops_update_event (demo->iops, IOPS_IO_EVENT (transfer->watch),
                                IOPS_EVACTION_CLEANUP, 0);
    }
}

static void
demo_close_window (gpointer data)
{
  Demo *demo = data;

  gtk_window_destroy (demo->window);
}

/* Called after each frame is drawn, once every transfer is over: the first
 * time, the window shows the final state (it was set before the frame), and
 * its render nodes are fresh. */
static void
demo_after_paint (GdkFrameClock *clock,
                  gpointer       data)
{
  Demo *demo = data;
  g_autoptr(GError) error = NULL;

  if (opt_screenshot != NULL &&
      !save_screenshot (GTK_WIDGET (demo->window), opt_screenshot, &error))
    {
      /* Something queued a redraw after the paint: try after the next. */
      if (++demo->paints_after_end < 5)
        {
          gtk_widget_queue_draw (GTK_WIDGET (demo->window));
          return;
        }
      g_printerr ("screenshot: %s\n", error->message);
      demo->exit_status = 1;
    }
  else if (opt_screenshot != NULL)
    g_print ("screenshot: %s\n", opt_screenshot);

  g_clear_signal_handler (&demo->after_paint_id, clock);
  demo_print_summary (demo);
  /* Not from inside the frame clock's signal emission. */
  g_idle_add_once (demo_close_window, demo);
}

static void
demo_transfer_over (Demo *demo)
{
  g_autofree char *status = NULL;
  guint failed = 0;

  if (++demo->n_over < demo->transfers->len)
    return;

  for (guint i = 0; i < demo->transfers->len; i++)
    failed += ((Transfer *) g_ptr_array_index (demo->transfers, i))->error != NULL;
  status = g_strdup_printf ("%u transfers done in %.2f s%s",
                            demo->transfers->len,
                            (g_get_monotonic_time () - demo->start_us) / 1e6,
                            failed > 0 ? " — some failed" : "");
  gtk_label_set_text (demo->status_label, status);
  gtk_spinner_stop (demo->spinner);
  demo_update_window (demo);
  iops_iops_update_timer (demo->iops, IOPS_TIMER_EVENT (demo->deadline),
                          IOPS_EVACTION_UNWATCH, 0);
  /* The final state is shown: nothing changes the window any more. */
  iops_iops_update_timer (demo->iops, IOPS_TIMER_EVENT (demo->refresh),
                          IOPS_EVACTION_UNWATCH, 0);
  if (opt_auto_quit)
    {
      demo->after_paint_id =
        g_signal_connect (gtk_widget_get_frame_clock (GTK_WIDGET (demo->window)),
                          "after-paint", G_CALLBACK (demo_after_paint), demo);
      gtk_widget_queue_draw (GTK_WIDGET (demo->window));
    }
}

static void
demo_deadline (gpointer data)
{
  Demo *demo = data;

  g_printerr ("the transfers did not end within %d s\n",
              (int) (AUTO_QUIT_DEADLINE_US / G_TIME_SPAN_SECOND));
  demo->exit_status = 1;
  demo_stop (demo);
  demo_print_summary (demo);
  gtk_window_destroy (demo->window);
}

/* -- the application ----------------------------------------------------- */

/* Counts the frames GTK draws while transfers run: the window is redrawn
 * as the bars move, however busy the sockets are. */
static void
demo_count_frame (GdkFrameClock *clock,
                  gpointer       data)
{
  Demo *demo = data;

  if (demo->n_over < demo->transfers->len)
    demo->frames_while_running++;
}

static void
demo_window_destroyed (GtkWidget *window,
                       gpointer   data)
{
  demo_stop (data);
}

static void
demo_activate (GtkApplication *app,
               gpointer        data)
{
  Demo *demo = data;
  g_autoptr(GError) error = NULL;

  if (demo->window != NULL)
    {
      gtk_window_present (demo->window);
      return;
    }

  demo->window = GTK_WINDOW (demo_build_window (demo, app));
  g_signal_connect (demo->window, "destroy", G_CALLBACK (demo_window_destroyed), demo);
  if (!server_start (demo, &error))
    {
      g_printerr ("%s\n", error->message);
      demo->exit_status = 1;
      gtk_window_destroy (demo->window);
      return;
    }

  demo->start_us = demo->last_rate_us = g_get_monotonic_time ();
  for (guint i = 0; i < demo->transfers->len; i++)
    transfer_start (g_ptr_array_index (demo->transfers, i));
  iops_iops_update_timer (demo->iops, IOPS_TIMER_EVENT (demo->refresh),
                          IOPS_EVACTION_WATCH, REFRESH_INTERVAL_US);
  if (opt_auto_quit)
    iops_iops_update_timer (demo->iops, IOPS_TIMER_EVENT (demo->deadline),
                            IOPS_EVACTION_WATCH, AUTO_QUIT_DEADLINE_US);
  gtk_spinner_start (demo->spinner);
  demo_update_window (demo);
  gtk_window_present (demo->window);
  g_signal_connect (gtk_widget_get_frame_clock (GTK_WIDGET (demo->window)),
                    "after-paint", G_CALLBACK (demo_count_frame), demo);
}

static int
demo_handle_local_options (GApplication *app,
                           GVariantDict *options,
                           gpointer      data)
{
  Demo *demo = data;

  if (opt_transfers < 1 || opt_transfers > 16 || opt_size_kib < 0 || opt_rate_kib < 0)
    {
      g_printerr ("--transfers must be 1-16; --size and --rate must not be negative\n");
      return 2;
    }
  for (int i = 0; i < opt_transfers; i++)
    {
      Transfer *transfer = g_new0 (Transfer, 1);

      transfer->demo = demo;
      transfer->index = i;
      transfer->fd = -1;
      transfer->size = (guint64) opt_size_kib * 1024;
      transfer->rate = (guint64) opt_rate_kib * 1024 * (i + 1);
      g_ptr_array_add (demo->transfers, transfer);
    }
  return -1;   /* go on: activate */
}

static void
demo_init (Demo *demo)
{
  demo->glib_iops = iops_glib_iops_new (NULL);
  demo->iops = IOPS_IOPS (demo->glib_iops);
  /* Below GTK's input (G_PRIORITY_DEFAULT) and drawing
   * (GDK_PRIORITY_REDRAW): a socket that is always ready cannot starve
   * the window. */
  iops_glib_iops_set_priority (demo->glib_iops, G_PRIORITY_DEFAULT_IDLE);
  demo->transfers = g_ptr_array_new_with_free_func (transfer_free);
  demo->refresh = demo_timer_new (demo_refresh, demo);
  demo->deadline = demo_timer_new (demo_deadline, demo);
  demo->listen_fd = -1;
  for (gsize i = 0; i < sizeof pattern; i++)
    pattern[i] = (guint8) i;
}

static void
demo_clear (Demo *demo)
{
  demo_stop (demo);
  g_clear_pointer (&demo->transfers, g_ptr_array_unref);
  g_clear_object (&demo->refresh);
  g_clear_object (&demo->deadline);
  g_clear_object (&demo->glib_iops);
  g_clear_pointer (&opt_screenshot, g_free);
}

int
main (int   argc,
      char *argv[])
{
  g_autoptr(GtkApplication) app = NULL;
  Demo demo = { 0 };
  int status;

  demo_init (&demo);
  app = gtk_application_new ("org.example.IopsGtkDemo", G_APPLICATION_NON_UNIQUE);
  g_application_add_main_option_entries (G_APPLICATION (app), option_entries);
  g_signal_connect (app, "handle-local-options", G_CALLBACK (demo_handle_local_options), &demo);
  g_signal_connect (app, "activate", G_CALLBACK (demo_activate), &demo);

  status = g_application_run (G_APPLICATION (app), argc, argv);
  demo_clear (&demo);
  return status != 0 ? status : demo.exit_status;
}

/* test-curl.c — the libcurl bridge against a real HTTP server
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The server is http-server.py (Python's http.server, HTTP/1.1 with
 * keep-alive), started on 127.0.0.1 and an unused port. Every test runs
 * on three IOPS: IopsGLibIOPS in one-shot mode and in persistent mode
 * (on the backend IOPS_GLIB_BACKEND names), and MockIOPS, a plain poll()
 * loop written only against the interface.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bridge-test-util.h"
#include "iops-curl.h"
#include "mock-iops.h"

/* Valgrind makes everything about 10 times slower: generous. */
#define RUN_DEADLINE_MS 60000

typedef enum
{
  KIND_ONESHOT,
  KIND_PERSISTENT,
  KIND_MOCK,
} IopsKind;

static const char *const kind_names[] = { "oneshot", "persistent", "mock" };

typedef struct _Fixture Fixture;

typedef struct
{
  Fixture   *f;
  CURL      *easy;
  char      *url;
  gsize      size;        /* what the path asked for */
  guint      seed;
  GChecksum *sum;         /* of what arrived */
  gsize      received;
  guint      n_done;      /* done callbacks for this transfer */
  CURLcode   result;
  gint64     added_at;    /* monotonic µs */
  gint64     done_at;
  gboolean   in_multi;
} Transfer;

struct _Fixture
{
  TestFixture  base;       /* context, glib_iops, iops; tracked objects */
  IopsKind     kind;
  MockIOPS    *mock;       /* the IOPS, for KIND_MOCK */
  CURLM       *multi;
  IopsCurl    *bridge;
  GPtrArray   *transfers;  /* Transfer */
  guint        n_done;
  guint        n_destroyed;  /* destroy notifies of the bridge's user data */
  /* Run by the done callback after the bookkeeping, if set. */
  void       (*on_done) (Fixture *f, Transfer *t);
  /* Run by the write callback after it counted, if set. */
  void       (*on_write) (Fixture *f, Transfer *t);
  gpointer     hook_data;
};

/* -- the server, shared by the tests that do not kill theirs --------------- */

static BridgeServer *shared_server;
static guint16 shared_port;

static BridgeServer *
server_start (guint16 *port)
{
  const char *script = g_getenv ("IOPS_CURL_SERVER");
  g_autofree char *port_arg = NULL;

  g_assert_nonnull (script);
  *port = bridge_unused_port (SOCK_STREAM);
  port_arg = g_strdup_printf ("%u", *port);
  {
    const char *argv[] = { "python3", "-u", script, port_arg, NULL };

    return bridge_server_start_or_fail (argv, "ready on port");
  }
}

static guint16
shared_server_port (void)
{
  if (shared_server == NULL)
    shared_server = server_start (&shared_port);
  return shared_port;
}

/* -- the bytes the server sends: http-server.py's blob() ------------------- */

static void
blob_fill (guint8 *out,
           guint   seed,
           gsize   size)
{
  guint64 x = (guint64) seed * G_GUINT64_CONSTANT (0x9E3779B97F4A7C15) + 1;

  for (gsize off = 0; off < size; off += 8)
    {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      for (gsize i = 0; i < 8 && off + i < size; i++)
        out[off + i] = (guint8) (x >> (8 * i));
    }
}

/* The SHA-256 of blob (@seed, @size), computed here, not by the server. */
static const char *
blob_sha256 (guint seed,
             gsize size)
{
  static GHashTable *cache;  /* "seed/size" → hex digest */
  g_autofree char *key = g_strdup_printf ("%u/%zu", seed, size);
  char *sum = cache != NULL ? g_hash_table_lookup (cache, key) : NULL;

  if (sum == NULL)
    {
      g_autofree guint8 *bytes = g_malloc (MAX (size, 1));

      blob_fill (bytes, seed, size);
      sum = g_compute_checksum_for_data (G_CHECKSUM_SHA256, bytes, size);
      if (cache == NULL)
        cache = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
      g_hash_table_insert (cache, g_steal_pointer (&key), sum);
    }
  return sum;
}

/* -- transfers -------------------------------------------------------------- */

static size_t
on_write (char   *data,
          size_t  size,
          size_t  nmemb,
          void   *user_data)
{
  Transfer *t = user_data;

  g_checksum_update (t->sum, (const guchar *) data, size * nmemb);
  t->received += size * nmemb;
  if (t->f->on_write != NULL)
    t->f->on_write (t->f, t);
  return size * nmemb;
}

static void
transfer_free (gpointer data)
{
  Transfer *t = data;

  if (t->in_multi)
    curl_multi_remove_handle (t->f->multi, t->easy);
  curl_easy_cleanup (t->easy);
  g_checksum_free (t->sum);
  g_free (t->url);
  g_free (t);
}

static void
transfer_start (Transfer *t)
{
  g_checksum_reset (t->sum);
  t->received = 0;
  t->n_done = 0;
  t->added_at = g_get_monotonic_time ();
  g_assert_cmpint (curl_multi_add_handle (t->f->multi, t->easy), ==, CURLM_OK);
  t->in_multi = TRUE;
}

/* A GET of http://127.0.0.1:@port/@path, not started yet. */
static Transfer *
transfer_new (Fixture    *f,
              guint16     port,
              const char *path)
{
  Transfer *t = g_new0 (Transfer, 1);

  t->f = f;
  t->url = g_strdup_printf ("http://127.0.0.1:%u/%s", port, path);
  t->sum = g_checksum_new (G_CHECKSUM_SHA256);
  t->easy = curl_easy_init ();
  curl_easy_setopt (t->easy, CURLOPT_URL, t->url);
  curl_easy_setopt (t->easy, CURLOPT_WRITEFUNCTION, on_write);
  curl_easy_setopt (t->easy, CURLOPT_WRITEDATA, t);
  curl_easy_setopt (t->easy, CURLOPT_PRIVATE, t);
  g_ptr_array_add (f->transfers, t);
  return t;
}

/* A GET of /@route/@size/@seed on @port, started. */
static Transfer *
transfer_add (Fixture    *f,
              guint16     port,
              const char *route,
              gsize       size,
              guint       seed)
{
  g_autofree char *path = g_strdup_printf ("%s/%zu/%u", route, size, seed);
  Transfer *t = transfer_new (f, port, path);

  t->size = size;
  t->seed = seed;
  transfer_start (t);
  return t;
}

static Transfer *
transfer_get (Fixture *f,
              guint    i)
{
  return g_ptr_array_index (f->transfers, i);
}

/* Finished once, with every byte the server sent. */
static void
transfer_assert_blob (Transfer *t)
{
  long status = 0;

  g_assert_cmpuint (t->n_done, ==, 1);
  if (t->result != CURLE_OK)
    g_error ("%s: %s", t->url, curl_easy_strerror (t->result));
  curl_easy_getinfo (t->easy, CURLINFO_RESPONSE_CODE, &status);
  g_assert_cmpint (status, ==, 200);
  g_assert_cmpuint (t->received, ==, t->size);
  g_assert_cmpstr (g_checksum_get_string (t->sum), ==, blob_sha256 (t->seed, t->size));
}

static void
on_done (IopsCurl *bridge,
         CURL     *easy,
         CURLcode  result,
         gpointer  user_data)
{
  Fixture *f = user_data;
  Transfer *t = NULL;

  g_assert_true (bridge == f->bridge);
  curl_easy_getinfo (easy, CURLINFO_PRIVATE, (char **) &t);
  g_assert_nonnull (t);
  g_assert_true (t->f == f && t->easy == easy);
  t->n_done++;
  t->result = result;
  t->done_at = g_get_monotonic_time ();
  f->n_done++;
  g_assert_cmpint (curl_multi_remove_handle (f->multi, easy), ==, CURLM_OK);
  t->in_multi = FALSE;
  if (f->on_done != NULL)
    f->on_done (f, t);
}

static void
on_user_data_destroyed (gpointer user_data)
{
  Fixture *f = user_data;

  f->n_destroyed++;
}

/* -- the fixture ------------------------------------------------------------ */

static void
fixture_setup (Fixture       *f,
               gconstpointer  data)
{
  f->kind = GPOINTER_TO_INT (data);
  if (f->kind == KIND_MOCK)
    {
      f->base.context = g_main_context_new ();
      f->mock = mock_iops_new ();
      f->base.iops = IOPS_IOPS (f->mock);
      test_fixture_track (&f->base, f->mock);
    }
  else
    {
      test_fixture_setup_mode (&f->base, GINT_TO_POINTER (f->kind == KIND_PERSISTENT));
    }

  f->transfers = g_ptr_array_new_with_free_func (transfer_free);
  f->multi = curl_multi_init ();
  f->bridge = iops_curl_attach (f->multi, f->base.iops, on_done, f, on_user_data_destroyed);
  g_assert_nonnull (f->bridge);
  g_assert_true (iops_curl_get_multi (f->bridge) == f->multi);
  g_assert_true (iops_curl_get_iops (f->bridge) == f->base.iops);
}

/* Detaching leaves nothing armed or held on the IOPS (checked here on the
 * mock, and for IopsGLibIOPS by test_fixture_teardown_quiet: it must be
 * finalized with nothing left on its context). */
static void
fixture_detach (Fixture *f)
{
  guint destroyed = f->n_destroyed;

  iops_curl_detach (g_steal_pointer (&f->bridge));
  g_assert_cmpuint (f->n_destroyed, ==, destroyed + 1);
  if (f->mock != NULL)
    {
      g_assert_cmpuint (mock_iops_n_armed (f->mock), ==, 0);
      g_assert_cmpuint (mock_iops_n_registered (f->mock), ==, 0);
    }
}

static void
fixture_teardown (Fixture       *f,
                  gconstpointer  data)
{
  if (f->bridge != NULL)
    fixture_detach (f);
  g_clear_pointer (&f->transfers, g_ptr_array_unref);
  g_clear_pointer (&f->multi, curl_multi_cleanup);
  if (f->mock != NULL)
    {
      /* The bridge's events are gone, not only unregistered. (Not checked
       * at a detach from a callback: the mock's iteration holds them.) */
      g_assert_cmpuint (mock_iops_n_alive (f->mock), ==, 0);
      f->base.iops = NULL;
      g_clear_object (&f->mock);
    }
  test_fixture_teardown_quiet (&f->base, NULL);
}

static gboolean
on_run_deadline (gpointer data)
{
  Fixture *f = data;

  iops_iops_stop_watching (f->base.iops);
  g_error ("start_watching still ran after %d ms", RUN_DEADLINE_MS);
  return G_SOURCE_REMOVE;
}

/* start_watching, which must return by itself (nothing armed any more)
 * or by a stop_watching of the test. */
static void
fixture_run (Fixture *f)
{
  GSource *deadline = NULL;

  if (f->kind != KIND_MOCK)
    {
      deadline = g_timeout_source_new (RUN_DEADLINE_MS);
      g_source_set_callback (deadline, on_run_deadline, f, NULL);
      g_source_attach (deadline, f->base.context);
    }
  iops_iops_start_watching (f->base.iops);
  if (deadline != NULL)
    {
      g_source_destroy (deadline);
      g_source_unref (deadline);
    }
}

/* Runs until @n transfers are done; returns the loop iterations it took
 * (dispatching iterations of the context, or the mock's wake-ups). */
static guint
fixture_run_until_done (Fixture *f,
                        guint    n)
{
  guint iterations = 0;

  if (f->kind == KIND_MOCK)
    {
      guint before = mock_iops_get_counts (f->mock)->wakeups;

      /* Returns once nothing is armed: every transfer must be done. */
      fixture_run (f);
      g_assert_cmpuint (f->n_done, >=, n);
      return mock_iops_get_counts (f->mock)->wakeups - before;
    }

  {
    gboolean expired = FALSE;
    GSource *deadline = g_timeout_source_new (RUN_DEADLINE_MS);

    g_source_set_callback (deadline, test_set_flag, &expired, NULL);
    g_source_attach (deadline, f->base.context);
    while (f->n_done < n && !expired)
      if (g_main_context_iteration (f->base.context, TRUE))
        iterations++;
    g_source_destroy (deadline);
    g_source_unref (deadline);
    g_assert_false (expired);
  }
  return iterations;
}

/* Nothing armed: the loop has nothing to do for @ms, and start_watching
 * returns at once. */
static void
fixture_assert_quiet_for (Fixture *f,
                          guint    ms)
{
  if (f->kind == KIND_MOCK)
    {
      g_assert_cmpuint (mock_iops_n_armed (f->mock), ==, 0);
    }
  else
    {
      /* The bridge keeps the events of sockets curl removed, unwatched;
       * when curl closes one, the epoll backend may wake up once to
       * forget the fd. */
      g_assert_cmpuint (bridge_count_dispatches (f->base.context, ms), <=, 1);
    }
  fixture_run (f);
}

static void
fixture_assert_quiet (Fixture *f)
{
  fixture_assert_quiet_for (f, 20);
}

/* -- many transfers -------------------------------------------------------- */

static const gsize blob_sizes[] = { 0, 1, 7, 8, 9, 1000, 4096, 16384, 65536 };
/* The first seven, for the rolling test. */
#define SMALL_SIZES 7

/* Sizes and seeds vary so that any mix-up of two replies shows. */
static void
add_blob (Fixture *f,
          guint    i)
{
  /* Every seventh asks the server to close the connection afterwards, so
   * sockets are closed and new ones opened, often with the same number. */
  const char *route = i % 7 == 3 ? "close" : "blob";

  transfer_add (f, shared_server_port (), route, blob_sizes[i % G_N_ELEMENTS (blob_sizes)], i % 13);
}

static void
test_concurrent (Fixture       *f,
                 gconstpointer  data)
{
  const guint n = 300;

  for (guint i = 0; i < n; i++)
    add_blob (f, i);

  fixture_run (f);

  g_assert_cmpuint (f->n_done, ==, n);
  for (guint i = 0; i < n; i++)
    transfer_assert_blob (transfer_get (f, i));
  if (f->mock != NULL)  /* they did run at the same time */
    g_assert_cmpuint (mock_iops_get_counts (f->mock)->max_events, >=, 50);
  fixture_assert_quiet (f);
}

#define ROLLING_TOTAL 300
#define ROLLING_IN_FLIGHT 50

/* The done callback starts the next transfer on the same easy handle. */
static void
roll_on (Fixture  *f,
         Transfer *t)
{
  guint *started = f->hook_data;

  if (*started == ROLLING_TOTAL)
    return;
  transfer_assert_blob (t);
  t->size = blob_sizes[*started % SMALL_SIZES];
  t->seed = *started % 13;
  g_free (t->url);
  t->url = g_strdup_printf ("http://127.0.0.1:%u/blob/%zu/%u", shared_server_port (), t->size, t->seed);
  curl_easy_setopt (t->easy, CURLOPT_URL, t->url);
  (*started)++;
  transfer_start (t);
}

static void
test_rolling (Fixture       *f,
              gconstpointer  data)
{
  guint started = ROLLING_IN_FLIGHT;

  f->on_done = roll_on;
  f->hook_data = &started;
  for (guint i = 0; i < ROLLING_IN_FLIGHT; i++)
    transfer_add (f, shared_server_port (), "blob", blob_sizes[i % SMALL_SIZES], i % 13);

  fixture_run (f);

  g_assert_cmpuint (started, ==, ROLLING_TOTAL);
  g_assert_cmpuint (f->n_done, ==, ROLLING_TOTAL);
  for (guint i = 0; i < ROLLING_IN_FLIGHT; i++)
    transfer_assert_blob (transfer_get (f, i));  /* the last one of each handle */
  fixture_assert_quiet (f);
}

/* -- sockets closed and reopened with the same number ----------------------- */

#define REUSE_ROUNDS 30

static int
record_socket (void          *data,
               curl_socket_t  fd,
               curlsocktype   purpose)
{
  GArray *fds = data;

  g_array_append_val (fds, fd);
  return CURL_SOCKOPT_OK;
}

/* A transfer on a connection of its own, which the server closes. */
static void
start_closing (Fixture *f,
               GArray  *fds,
               guint    i)
{
  g_autofree char *path = g_strdup_printf ("close/%u/%u", 1000 + i, i);
  Transfer *t = transfer_new (f, shared_server_port (), path);

  t->size = 1000 + i;
  t->seed = i;
  curl_easy_setopt (t->easy, CURLOPT_SOCKOPTFUNCTION, record_socket);
  curl_easy_setopt (t->easy, CURLOPT_SOCKOPTDATA, fds);
  transfer_start (t);
}

static void
reuse_next (Fixture  *f,
            Transfer *t)
{
  GArray *fds = f->hook_data;

  transfer_assert_blob (t);
  if (f->n_done < REUSE_ROUNDS)
    start_closing (f, fds, f->n_done);
}

/* One transfer after the other, each on a new connection the server
 * closes: curl removes the socket and the next one usually gets the same
 * number, which the bridge must watch afresh. */
static void
test_fd_reuse (Fixture       *f,
               gconstpointer  data)
{
  g_autoptr(GArray) fds = g_array_new (FALSE, FALSE, sizeof (curl_socket_t));
  guint same = 0;

  f->on_done = reuse_next;
  f->hook_data = fds;
  start_closing (f, fds, 0);

  fixture_run (f);

  g_assert_cmpuint (f->n_done, ==, REUSE_ROUNDS);
  g_assert_cmpuint (fds->len, ==, REUSE_ROUNDS);
  for (guint i = 1; i < fds->len; i++)
    same += g_array_index (fds, curl_socket_t, i) == g_array_index (fds, curl_socket_t, i - 1);
  g_assert_cmpuint (same, >, 0);
  fixture_assert_quiet (f);
}

/* -- the server killed mid-run ---------------------------------------------- */

#define STALLED 40
#define STALL_SIZE 100000

typedef struct
{
  guint halves;
  guint wanted;
} Halves;

/* Stops the loop once @wanted stalled transfers have their first half. The
 * server sends one half and then nothing, so each is counted once. */
static void
stop_at_halves (Fixture  *f,
                Transfer *t)
{
  Halves *h = f->hook_data;

  if (t->size == STALL_SIZE && t->received == STALL_SIZE / 2 && ++h->halves == h->wanted)
    iops_iops_stop_watching (f->base.iops);
}

static void
test_server_killed (Fixture       *f,
                    gconstpointer  data)
{
  guint16 port;
  g_autoptr(BridgeServer) server = server_start (&port);
  Halves halves = { 0, STALLED };
  guint iterations;

  f->on_write = stop_at_halves;
  f->hook_data = &halves;
  for (guint i = 0; i < STALLED; i++)
    transfer_add (f, port, "stall", STALL_SIZE, 0);
  fixture_run (f);
  g_assert_cmpuint (halves.halves, ==, STALLED);
  g_assert_cmpuint (f->n_done, ==, 0);

  /* Mid-body on 40 connections: killed. Then 10 more transfers, which
   * find nobody listening. */
  bridge_server_kill (server);
  f->on_write = NULL;
  for (guint i = 0; i < 10; i++)
    transfer_add (f, port, "blob", 1000, i);

  iterations = fixture_run_until_done (f, STALLED + 10);

  for (guint i = 0; i < STALLED + 10; i++)
    {
      Transfer *t = transfer_get (f, i);

      g_assert_cmpuint (t->n_done, ==, 1);
      if (i < STALLED)
        {
          g_assert_cmpuint (t->received, ==, STALL_SIZE / 2);
          g_assert_true (t->result == CURLE_PARTIAL_FILE || t->result == CURLE_RECV_ERROR);
        }
      else
        {
          g_assert_cmpuint (t->received, ==, 0);
          g_assert_cmpint (t->result, ==, CURLE_COULDNT_CONNECT);
        }
    }
  /* Each error is seen once: a few iterations per transfer, not a spin. */
  g_assert_cmpuint (iterations, <=, 10 * (STALLED + 10));
  fixture_assert_quiet_for (f, 200);
}

/* -- timeouts --------------------------------------------------------------- */

/* The deadlines differ, so the one timer is rescheduled as they pass. */
static const long total_timeouts_ms[] = { 100, 150, 200, 250 };

static void
assert_timed_out (Fixture *f,
                  guint    n,
                  guint    iterations,
                  const long *timeouts_ms)
{
  for (guint i = 0; i < n; i++)
    {
      Transfer *t = transfer_get (f, i);

      g_assert_cmpuint (t->n_done, ==, 1);
      g_assert_cmpint (t->result, ==, CURLE_OPERATION_TIMEDOUT);
      /* Not early: curl's own deadline, reached through the IOPS timer. */
      g_assert_cmpint (t->done_at - t->added_at, >=, timeouts_ms[i] * G_TIME_SPAN_MILLISECOND);
    }
  /* Waiting is sleeping: a few wake-ups per deadline, not a spin. */
  g_assert_cmpuint (iterations, <=, 20 * n);
  if (f->mock != NULL)
    {
      const MockIOPSCounts *counts = mock_iops_get_counts (f->mock);

      /* Nothing but the timer could have woken curl up. */
      g_assert_cmpuint (counts->timer_fires, >=, n);
      g_assert_cmpuint (counts->timer_fires, <=, 10 * n);
    }
}

/* A server that accepts the connection (the kernel does) and never
 * answers: CURLOPT_TIMEOUT_MS ends each transfer. */
static void
test_timeout_total (Fixture       *f,
                    gconstpointer  data)
{
  guint16 port;
  int mute = bridge_mute_peer (SOCK_STREAM, &port);
  guint n = G_N_ELEMENTS (total_timeouts_ms);
  guint iterations;

  for (guint i = 0; i < n; i++)
    {
      Transfer *t = transfer_new (f, port, "never");

      curl_easy_setopt (t->easy, CURLOPT_TIMEOUT_MS, total_timeouts_ms[i]);
      transfer_start (t);
    }

  iterations = fixture_run_until_done (f, n);

  assert_timed_out (f, n, iterations, total_timeouts_ms);
  fixture_assert_quiet (f);
  close (mute);
}

/* A listener whose backlog one connection fills: the kernel drops every
 * further SYN, so a connect stays pending until the client gives up. */
static int
full_listener (guint16 *port,
               int     *filler)
{
  struct sockaddr_in addr = { 0 };
  socklen_t len = sizeof addr;
  int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  g_assert_cmpint (bind (fd, (struct sockaddr *) &addr, sizeof addr), ==, 0);
  g_assert_cmpint (listen (fd, 0), ==, 0);
  g_assert_cmpint (getsockname (fd, (struct sockaddr *) &addr, &len), ==, 0);
  *port = ntohs (addr.sin_port);

  *filler = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  g_assert_cmpint (connect (*filler, (struct sockaddr *) &addr, sizeof addr), ==, 0);
  return fd;
}

static const long connect_timeouts_ms[] = { 150, 250 };

static void
test_timeout_connect (Fixture       *f,
                      gconstpointer  data)
{
  guint16 port;
  int filler;
  int listener = full_listener (&port, &filler);
  guint n = G_N_ELEMENTS (connect_timeouts_ms);
  guint iterations;

  for (guint i = 0; i < n; i++)
    {
      Transfer *t = transfer_new (f, port, "never");

      curl_easy_setopt (t->easy, CURLOPT_CONNECTTIMEOUT_MS, connect_timeouts_ms[i]);
      transfer_start (t);
    }

  iterations = fixture_run_until_done (f, n);

  assert_timed_out (f, n, iterations, connect_timeouts_ms);
  fixture_assert_quiet (f);
  close (filler);
  close (listener);
}

/* A transfer waits for the rest of its reply with only its 120 s timeout
 * pending, and is removed: curl withdraws that timeout, and the bridge
 * disarms its timer (where curl's GLib example leaves a source pending),
 * so start_watching returns at once. */
static void
test_timer_withdrawn (Fixture       *f,
                      gconstpointer  data)
{
  guint16 port;
  BridgeServer *server = server_start (&port);
  Transfer *t = transfer_new (f, port, "stall/100000/0");
  Halves halves = { 0, 1 };
  gint64 started;

  t->size = STALL_SIZE;
  curl_easy_setopt (t->easy, CURLOPT_TIMEOUT_MS, 120000L);
  f->on_write = stop_at_halves;
  f->hook_data = &halves;
  transfer_start (t);
  fixture_run (f);
  g_assert_cmpuint (halves.halves, ==, 1);

  g_assert_cmpint (curl_multi_remove_handle (f->multi, t->easy), ==, CURLM_OK);
  t->in_multi = FALSE;
  if (f->mock != NULL)
    g_assert_cmpuint (mock_iops_n_armed (f->mock), ==, 0);
  started = g_get_monotonic_time ();
  fixture_run (f);
  g_assert_cmpint (g_get_monotonic_time () - started, <, 30 * G_TIME_SPAN_SECOND);
  g_assert_cmpuint (f->n_done, ==, 0);
  fixture_assert_quiet (f);
  bridge_server_stop (server);
}

/* -- detaching ------------------------------------------------------------- */

#define DETACH_STALLED 10

/* Detached with transfers in flight: every event goes, the transfers stay
 * in the multi handle, and no callback comes afterwards. */
static void
test_detach_in_flight (Fixture       *f,
                       gconstpointer  data)
{
  guint16 port;
  g_autoptr(BridgeServer) server = server_start (&port);
  Halves halves = { 0, DETACH_STALLED };

  f->on_write = stop_at_halves;
  f->hook_data = &halves;
  for (guint i = 0; i < DETACH_STALLED; i++)
    transfer_add (f, port, "stall", STALL_SIZE, 0);
  fixture_run (f);
  g_assert_cmpuint (halves.halves, ==, DETACH_STALLED);

  fixture_detach (f);
  bridge_server_kill (server);  /* the connections break: nobody must notice */
  fixture_assert_quiet (f);
  g_assert_cmpuint (f->n_done, ==, 0);
}

/* The first done callback detaches and destroys everything: the bridge is
 * still on the stack, and must not touch the multi handle again. */
static void
destroy_all_on_done (Fixture  *f,
                     Transfer *t)
{
  fixture_detach (f);
  g_clear_pointer (&f->transfers, g_ptr_array_unref);
  g_clear_pointer (&f->multi, curl_multi_cleanup);
}

static void
test_detach_in_done (Fixture       *f,
                     gconstpointer  data)
{
  f->on_done = destroy_all_on_done;
  for (guint i = 0; i < 20; i++)
    add_blob (f, i);

  fixture_run (f);

  g_assert_cmpuint (f->n_done, ==, 1);
  g_assert_null (f->multi);
  fixture_assert_quiet (f);
}

/* From inside curl (a write callback), detaching waits for curl to return
 * to the bridge, and then no done callback comes. */
static void
detach_on_write (Fixture  *f,
                 Transfer *t)
{
  if (f->bridge == NULL)
    return;
  iops_curl_detach (g_steal_pointer (&f->bridge));
  g_assert_cmpuint (f->n_destroyed, ==, 0);  /* not yet: curl is on the stack */
}

static void
test_detach_in_write (Fixture       *f,
                      gconstpointer  data)
{
  f->on_write = detach_on_write;
  for (guint i = 0; i < 20; i++)
    transfer_add (f, shared_server_port (), "blob", 65536, i);

  fixture_run (f);

  g_assert_null (f->bridge);
  g_assert_cmpuint (f->n_destroyed, ==, 1);
  g_assert_cmpuint (f->n_done, ==, 0);
  if (f->mock != NULL)
    {
      g_assert_cmpuint (mock_iops_n_armed (f->mock), ==, 0);
      g_assert_cmpuint (mock_iops_n_registered (f->mock), ==, 0);
      g_assert_cmpuint (mock_iops_n_alive (f->mock), ==, 0);
    }
  fixture_assert_quiet (f);
}

/* A write callback that iterates the loop (as a modal dialog would) for
 * longer than another transfer's timeout. libcurl refuses to be called
 * there: the timeout and the readiness that come meanwhile must wait for
 * the callback to return, not be lost (the timed-out transfer would never
 * end) or delivered at every iteration (a spin). */
#define NESTED_TIMEOUT_MS 500
#define NESTED_PAST_MS    100  /* how long the nested loop runs past it */

typedef struct
{
  Transfer *never;       /* the transfer that must time out */
  guint     dispatches;  /* of the nested loop; G_MAXUINT before it ran */
  gint64    left_at;     /* when it ended */
} NestedLoop;

static void
iterate_on_first_write (Fixture  *f,
                        Transfer *t)
{
  NestedLoop *nested = f->hook_data;
  gint64 until = nested->never->added_at + (NESTED_TIMEOUT_MS + NESTED_PAST_MS) * G_TIME_SPAN_MILLISECOND;

  if (nested->dispatches != G_MAXUINT)
    return;
  nested->dispatches = 0;  /* not again from the nested loop */
  /* The timeout must come while this callback runs. */
  g_assert_cmpuint (nested->never->n_done, ==, 0);
  g_assert_cmpint (g_get_monotonic_time (), <, until - NESTED_PAST_MS * G_TIME_SPAN_MILLISECOND);
  nested->dispatches = bridge_count_dispatches (f->base.context,
                                                (guint) ((until - g_get_monotonic_time ()) / 1000));
  nested->left_at = g_get_monotonic_time ();
}

static void
test_loop_in_write (Fixture       *f,
                    gconstpointer  data)
{
  guint16 port;
  int mute = bridge_mute_peer (SOCK_STREAM, &port);
  NestedLoop nested = { .dispatches = G_MAXUINT };
  Transfer *blob;

  nested.never = transfer_new (f, port, "never");
  curl_easy_setopt (nested.never->easy, CURLOPT_TIMEOUT_MS, (long) NESTED_TIMEOUT_MS);
  transfer_start (nested.never);
  blob = transfer_add (f, shared_server_port (), "blob", 1 << 20, 7);
  f->hook_data = &nested;
  f->on_write = iterate_on_first_write;

  fixture_run_until_done (f, 2);

  g_assert_cmpuint (nested.dispatches, !=, G_MAXUINT);
  /* The nested loop slept: the deferred timeout and socket did not spin. */
  g_assert_cmpuint (nested.dispatches, <=, 10);
  transfer_assert_blob (blob);
  g_assert_cmpuint (nested.never->n_done, ==, 1);
  g_assert_cmpint (nested.never->result, ==, CURLE_OPERATION_TIMEDOUT);
  /* Handed to curl once the write callback had returned. */
  g_assert_cmpint (nested.never->done_at, >=, nested.left_at);
  fixture_assert_quiet (f);
  close (mute);
}

/* -- bad input ---------------------------------------------------------------- */

static void
expect_critical (void)
{
  g_test_expect_message ("IopsCurl", G_LOG_LEVEL_CRITICAL, "*");
}

static void
test_bad_input (Fixture       *f,
                gconstpointer  data)
{
  CURLM *other = curl_multi_init ();
  g_autoptr(GObject) not_iops = g_object_new (G_TYPE_OBJECT, NULL);

  expect_critical ();
  g_assert_null (iops_curl_attach (NULL, f->base.iops, on_done, f, NULL));
  g_test_assert_expected_messages ();

  expect_critical ();
  g_assert_null (iops_curl_attach (other, NULL, on_done, f, NULL));
  g_test_assert_expected_messages ();

  expect_critical ();
  g_assert_null (iops_curl_attach (other, (IopsIOPS *) not_iops, on_done, f, NULL));
  g_test_assert_expected_messages ();

  expect_critical ();
  g_assert_null (iops_curl_attach (other, f->base.iops, NULL, f, NULL));
  g_test_assert_expected_messages ();

  expect_critical ();
  iops_curl_detach (NULL);
  g_test_assert_expected_messages ();

  /* A second bridge on the same multi handle is refused, and the first
   * one goes on working. */
  expect_critical ();
  g_assert_null (iops_curl_attach (f->multi, f->base.iops, on_done, f, NULL));
  g_test_assert_expected_messages ();

  transfer_add (f, shared_server_port (), "blob", 1000, 3);
  fixture_run (f);
  transfer_assert_blob (transfer_get (f, 0));

  /* Nothing was attached to the other handle by the rejected calls. */
  curl_multi_cleanup (other);
  g_assert_cmpuint (f->n_destroyed, ==, 0);
}

/* Detach, attach again to the same multi handle: a fresh bridge works. */
static void
test_reattach (Fixture       *f,
               gconstpointer  data)
{
  transfer_add (f, shared_server_port (), "blob", 5000, 1);
  fixture_run (f);
  fixture_detach (f);

  f->bridge = iops_curl_attach (f->multi, f->base.iops, on_done, f, on_user_data_destroyed);
  g_assert_nonnull (f->bridge);
  transfer_add (f, shared_server_port (), "blob", 7000, 2);
  fixture_run (f);

  transfer_assert_blob (transfer_get (f, 0));
  transfer_assert_blob (transfer_get (f, 1));
  fixture_assert_quiet (f);
}

/* -- the example -------------------------------------------------------------- */

static void
test_example (void)
{
  const char *example = g_getenv ("IOPS_CURL_EXAMPLE");
  guint16 port = shared_server_port ();
  g_autofree char *url1 = g_strdup_printf ("http://127.0.0.1:%u/blob/1234/1", port);
  g_autofree char *url2 = g_strdup_printf ("http://127.0.0.1:%u/blob/56789/2", port);
  g_autofree char *url3 = g_strdup_printf ("http://127.0.0.1:%u/nothing-here", port);
  const char *argv[] = { example, url1, url2, NULL };
  const char *argv_fail[] = { example, url1, url3, NULL };
  g_autofree char *out = NULL;
  g_autofree char *out_fail = NULL;
  g_autoptr(GError) error = NULL;
  int status;

  g_assert_nonnull (example);
  g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, NULL, &status, &error);
  g_assert_no_error (error);
  g_assert_true (g_spawn_check_wait_status (status, NULL));
  g_assert_nonnull (strstr (out, "HTTP 200, 1234 bytes"));
  g_assert_nonnull (strstr (out, "HTTP 200, 56789 bytes"));

  /* A 404 makes it fail, and says so. */
  g_spawn_sync (NULL, (char **) argv_fail, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out_fail, NULL, &status, &error);
  g_assert_no_error (error);
  g_assert_false (g_spawn_check_wait_status (status, NULL));
  g_assert_nonnull (strstr (out_fail, "HTTP 404"));
}

/* -- main ------------------------------------------------------------------- */

static void
add_for_each_kind (const char *name,
                   void (*test) (Fixture *, gconstpointer))
{
  for (guint kind = 0; kind < G_N_ELEMENTS (kind_names); kind++)
    {
      g_autofree char *path = g_strdup_printf ("/iops/bridge/curl/%s/%s", kind_names[kind], name);

      g_test_add (path, Fixture, GINT_TO_POINTER (kind), fixture_setup, test, fixture_teardown);
    }
}

int
main (int    argc,
      char **argv)
{
  int status;

  g_test_init (&argc, &argv, NULL);
  g_assert_cmpint (curl_global_init (CURL_GLOBAL_DEFAULT), ==, CURLE_OK);

  add_for_each_kind ("concurrent", test_concurrent);
  add_for_each_kind ("rolling", test_rolling);
  add_for_each_kind ("fd-reuse", test_fd_reuse);
  add_for_each_kind ("server-killed", test_server_killed);
  add_for_each_kind ("timeout/total", test_timeout_total);
  add_for_each_kind ("timeout/connect", test_timeout_connect);
  add_for_each_kind ("timer-withdrawn", test_timer_withdrawn);
  add_for_each_kind ("detach/in-flight", test_detach_in_flight);
  add_for_each_kind ("detach/in-done", test_detach_in_done);
  add_for_each_kind ("detach/in-write", test_detach_in_write);
  add_for_each_kind ("reattach", test_reattach);
  /* The mock's loop is not the context's: iterating that inside curl
   * proves nothing of the IOPS. */
  for (IopsKind kind = KIND_ONESHOT; kind <= KIND_PERSISTENT; kind++)
    {
      g_autofree char *path = g_strdup_printf ("/iops/bridge/curl/%s/loop-in-write", kind_names[kind]);

      g_test_add (path, Fixture, GINT_TO_POINTER (kind), fixture_setup, test_loop_in_write,
                  fixture_teardown);
    }
  g_test_add ("/iops/bridge/curl/oneshot/bad-input", Fixture, GINT_TO_POINTER (KIND_ONESHOT),
              fixture_setup, test_bad_input, fixture_teardown);
  g_test_add_func ("/iops/bridge/curl/example", test_example);

  status = g_test_run ();

  g_clear_pointer (&shared_server, bridge_server_stop);
  curl_global_cleanup ();
  return status;
}

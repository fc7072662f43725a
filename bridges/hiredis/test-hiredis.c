/* test-hiredis.c — the hiredis bridge against a real redis-server
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Every test that talks to Redis starts its own redis-server on 127.0.0.1
 * and an unused port, and stops it (or kills it mid-run). Each runs in
 * three modes: on an IopsGLibIOPS with one-shot watches, with persistent
 * watches, and through a recording IOPS (common/relay-iops.h) that
 * forwards to an IopsGLibIOPS and checks that every event the bridge
 * handed it was CLEANUPed and finalized. The backend comes from IOPS_GLIB_BACKEND.
 *
 * "Nothing armed" is checked the strong way: iops_iops_start_watching()
 * must return by itself (a watchdog source would stop it, and fails the
 * test). "Nothing held": the fixture's IOPS must be finalized when the
 * test drops it, which it cannot while a bridge still holds it.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <iops-hiredis.h>

#include "bridge-test-util.h"
#include "relay-iops.h"

/* -- the fixture ----------------------------------------------------------- */

typedef struct
{
  const char *name;
  gboolean    persistent;
  gboolean    recorded;
} Mode;

static const Mode modes[] = {
  { "oneshot", FALSE, FALSE },
  { "persistent", TRUE, FALSE },
  { "recorded", FALSE, TRUE },
};

typedef struct
{
  TestFixture    base;
  const Mode    *mode;
  IopsIOPS      *iops;        /* base.iops, or the recorder over it */
  RelayIOPS     *recorder;
  BridgeServer  *server;
  guint16        port;
  gpointer       data;        /* the test's own state */
} Fixture;

static void
fixture_setup (Fixture       *f,
               gconstpointer  data)
{
  f->mode = data;
  test_fixture_setup_mode (&f->base, GINT_TO_POINTER (f->mode->persistent));
  f->iops = f->base.iops;
  if (f->mode->recorded)
    {
      f->recorder = relay_iops_new (f->base.iops);
      f->iops = IOPS_IOPS (f->recorder);
    }
}

static void
fixture_teardown (Fixture       *f,
                  gconstpointer  data)
{
  if (f->recorder != NULL)
    {
      const RelayIOPSCounts *seen = relay_iops_get_counts (f->recorder);

      /* Every event and timer the bridge ever handed over was CLEANUPed
       * and is gone. */
      g_assert_cmpuint (seen->n_events, >, 0);
      g_assert_cmpuint (seen->n_finalized, ==, seen->n_events + seen->n_timers);
      g_assert_cmpuint (seen->n_finalized_armed, ==, 0);
      f->iops = NULL;
      g_assert_finalize_object (g_steal_pointer (&f->recorder));
    }
  bridge_server_stop (g_steal_pointer (&f->server));
  test_fixture_teardown_quiet (&f->base, data);
}

static void
fixture_start_server (Fixture *f)
{
  g_autofree char *port = NULL;

  f->port = bridge_unused_port (SOCK_STREAM);
  port = g_strdup_printf ("%u", f->port);
  f->server = bridge_server_start_or_fail ((const char *const[]) {
      "redis-server", "--port", port, "--bind", "127.0.0.1",
      "--save", "", "--appendonly", "no", NULL },
    "Ready to accept connections");
}

typedef struct
{
  Fixture  *f;
  gboolean  expired;
} Watchdog;

static gboolean
watchdog_fired (gpointer data)
{
  Watchdog *watchdog = data;

  watchdog->expired = TRUE;
  iops_iops_stop_watching (watchdog->f->iops);
  return G_SOURCE_REMOVE;
}

/* Runs the IOPS until it has nothing armed: start_watching must return by
 * itself within the deadline. */
static void
run_until_quiet (Fixture *f)
{
  Watchdog watchdog = { f, FALSE };
  GSource *source = g_timeout_source_new (TEST_DEADLINE_MS);

  g_source_set_callback (source, watchdog_fired, &watchdog, NULL);
  g_source_attach (source, f->base.context);
  iops_iops_start_watching (f->iops);
  g_source_destroy (source);
  g_source_unref (source);
  g_assert_false (watchdog.expired);
}

/* Not spinning: over 200 ms, nothing dispatches. */
static void
assert_quiet (Fixture *f)
{
  g_assert_cmpuint (bridge_count_dispatches (f->base.context, 200), ==, 0);
}

/* -- clients and their verified replies -------------------------------------- */

typedef struct _Client Client;
typedef void (*ClientHook) (Client *client, redisReply *reply, gpointer expect_tag);

struct _Client
{
  Fixture           *f;
  redisAsyncContext *ac;          /* NULL once hiredis freed it */
  guint              id;
  guint              n_sent, n_replies, n_ok, n_null, n_wrong;
  int                null_err;    /* ac->err seen with the latest NULL reply */
  char               null_errstr[128];
  guint              n_connect, n_disconnect;
  int                connect_status, disconnect_status;
  int                disconnect_err;
  guint              depth, max_depth;  /* reply callbacks on the stack */
  long long          counter;
  ClientHook         hook;
};

typedef struct
{
  Client    *client;
  int        type;
  long long  integer;
  char      *str;
  gsize      len;
  gpointer   tag;
} Expect;

static Expect *
expect_new (int type)
{
  Expect *e = g_new0 (Expect, 1);

  e->type = type;
  return e;
}

static Expect *
expect_status (const char *status)
{
  Expect *e = expect_new (REDIS_REPLY_STATUS);

  e->str = g_strdup (status);
  e->len = strlen (status);
  return e;
}

static Expect *
expect_string (const char *str,
               gsize       len)
{
  Expect *e = expect_new (REDIS_REPLY_STRING);

  e->str = g_memdup2 (str, len);
  e->len = len;
  return e;
}

static Expect *
expect_integer (long long n)
{
  Expect *e = expect_new (REDIS_REPLY_INTEGER);

  e->integer = n;
  return e;
}

static Expect *
expect_tagged (Expect   *e,
               gpointer  tag)
{
  e->tag = tag;
  return e;
}

static gboolean
reply_matches (const redisReply *r,
               const Expect     *e)
{
  if (r->type != e->type)
    return FALSE;
  switch (r->type)
    {
    case REDIS_REPLY_INTEGER:
      return r->integer == e->integer;
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_STRING:
      return r->len == e->len && memcmp (r->str, e->str, e->len) == 0;
    default:
      return TRUE;   /* nil, or an array checked by the test's hook */
    }
}

static void
on_reply (redisAsyncContext *ac,
          void              *reply,
          void              *privdata)
{
  Expect *e = privdata;
  Client *c = e->client;
  redisReply *r = reply;

  c->n_replies++;
  c->depth++;
  c->max_depth = MAX (c->max_depth, c->depth);
  if (r == NULL)
    {
      c->n_null++;
      c->null_err = ac->err;
      g_strlcpy (c->null_errstr, ac->errstr != NULL ? ac->errstr : "", sizeof c->null_errstr);
    }
  else if (reply_matches (r, e))
    c->n_ok++;
  else
    c->n_wrong++;
  if (c->hook != NULL)
    c->hook (c, r, e->tag);
  c->depth--;
  g_free (e->str);
  g_free (e);
}

static void
on_connect (const redisAsyncContext *ac,
            int                      status)
{
  Client *c = ac->data;

  c->n_connect++;
  c->connect_status = status;
  if (status != REDIS_OK)
    c->ac = NULL;   /* hiredis frees it right after */
}

static void
on_disconnect (const redisAsyncContext *ac,
               int                      status)
{
  Client *c = ac->data;

  c->n_disconnect++;
  c->disconnect_status = status;
  c->disconnect_err = ac->err;
  c->ac = NULL;
}

static void
client_command (Client     *c,
                Expect     *e,
                const char *format,
                ...)
{
  va_list ap;
  int status;

  e->client = c;
  va_start (ap, format);
  status = redisvAsyncCommand (c->ac, on_reply, e, format, ap);
  va_end (ap);
  g_assert_cmpint (status, ==, REDIS_OK);
  c->n_sent++;
}

static void
client_connect_to (Fixture *f,
                   Client  *c,
                   guint    id,
                   guint16  port)
{
  c->f = f;
  c->id = id;
  c->ac = redisAsyncConnect ("127.0.0.1", port);
  g_assert_nonnull (c->ac);
  g_assert_cmpint (c->ac->err, ==, 0);
  c->ac->data = c;
  g_assert_cmpint (iops_hiredis_attach (c->ac, f->iops), ==, REDIS_OK);
  g_assert_true (iops_hiredis_get_iops (c->ac) == f->iops);
  g_assert_cmpint (redisAsyncSetConnectCallback (c->ac, on_connect), ==, REDIS_OK);
  g_assert_cmpint (redisAsyncSetDisconnectCallback (c->ac, on_disconnect), ==, REDIS_OK);
}

static void
client_connect (Fixture *f,
                Client  *c,
                guint    id)
{
  client_connect_to (f, c, id, f->port);
}

static void
assert_all_replied (const Client *c)
{
  g_assert_cmpuint (c->n_replies, ==, c->n_sent);
  g_assert_cmpuint (c->n_wrong, ==, 0);
  g_assert_cmpuint (c->max_depth, <=, 1);
}

static void
assert_clean_end (const Client *c)
{
  assert_all_replied (c);
  g_assert_cmpuint (c->n_ok, ==, c->n_sent);
  g_assert_cmpuint (c->n_connect, ==, 1);
  g_assert_cmpint (c->connect_status, ==, REDIS_OK);
  g_assert_cmpuint (c->n_disconnect, ==, 1);
  g_assert_cmpint (c->disconnect_status, ==, REDIS_OK);
  g_assert_null (c->ac);
}

static void
assert_error_end (const Client *c)
{
  assert_all_replied (c);
  g_assert_cmpuint (c->n_connect, ==, 1);
  g_assert_cmpint (c->connect_status, ==, REDIS_OK);
  g_assert_cmpuint (c->n_disconnect, ==, 1);
  g_assert_cmpint (c->disconnect_status, ==, REDIS_ERR);
  g_assert_null (c->ac);
}

/* A value of @len bytes that differs per client and index. */
static char *
make_value (guint  client,
            guint  i,
            gsize  len)
{
  char *value = g_malloc (len + 1);

  for (gsize k = 0; k < len; k++)
    value[k] = 'a' + (client * 7 + i * 13 + k) % 26;
  value[len] = '\0';
  return value;
}

/* -- many concurrent commands, every reply verified --------------------------- */

#define PIPE_CLIENTS 20
#define PIPE_ROUNDS  100   /* SET, GET and INCR each */

static void
disconnect_when_done (Client     *c,
                      redisReply *reply,
                      gpointer    tag)
{
  if (c->n_replies == c->n_sent)
    redisAsyncDisconnect (c->ac);
}

static gsize
pipe_value_size (guint i)
{
  /* Mostly small; every 50th is 100 KiB, more than one read or write. */
  return i % 50 == 49 ? 100 * 1024 : 1 + (i * 797) % 3000;
}

static void
test_pipelined (Fixture       *f,
                gconstpointer  data)
{
  Client clients[PIPE_CLIENTS] = { 0 };

  fixture_start_server (f);
  for (guint id = 0; id < PIPE_CLIENTS; id++)
    {
      Client *c = &clients[id];

      client_connect (f, c, id);
      c->hook = disconnect_when_done;
      for (guint i = 0; i < PIPE_ROUNDS; i++)
        {
          gsize len = pipe_value_size (i);
          g_autofree char *value = make_value (id, i, len);

          client_command (c, expect_status ("OK"), "SET key:%u:%u %b", id, i, value, len);
          client_command (c, expect_string (value, len), "GET key:%u:%u", id, i);
          client_command (c, expect_integer (i + 1), "INCR counter:%u", id);
        }
    }

  run_until_quiet (f);
  for (guint id = 0; id < PIPE_CLIENTS; id++)
    {
      assert_clean_end (&clients[id]);
      g_assert_cmpuint (clients[id].n_ok, ==, 3 * PIPE_ROUNDS);
    }
  assert_quiet (f);
}

/* -- commands sent one at a time from the previous reply -------------------- */

#define CHAIN_CLIENTS 5
#define CHAIN_LENGTH  200

static void
chain_next (Client     *c,
            redisReply *reply,
            gpointer    tag)
{
  if (c->n_sent < CHAIN_LENGTH)
    client_command (c, expect_integer (c->n_sent + 1), "INCR chain:%u", c->id);
  else
    redisAsyncDisconnect (c->ac);
}

static void
test_chained (Fixture       *f,
              gconstpointer  data)
{
  Client clients[CHAIN_CLIENTS] = { 0 };

  fixture_start_server (f);
  for (guint id = 0; id < CHAIN_CLIENTS; id++)
    {
      client_connect (f, &clients[id], id);
      clients[id].hook = chain_next;
      client_command (&clients[id], expect_integer (1), "INCR chain:%u", id);
    }

  run_until_quiet (f);
  for (guint id = 0; id < CHAIN_CLIENTS; id++)
    {
      assert_clean_end (&clients[id]);
      g_assert_cmpuint (clients[id].n_ok, ==, CHAIN_LENGTH);
    }
  assert_quiet (f);
}

/* -- the server killed mid-run -------------------------------------------- */

#define KILL_STREAMS 16
#define KILL_BLOCKED 4
#define KILL_IDLE    4
#define KILL_WINDOW  16
#define KILL_AFTER   2000
#define KILL_CLIENTS (KILL_STREAMS + KILL_BLOCKED + KILL_IDLE)

typedef struct
{
  guint    stream_replies;
  guint    pings;
  gboolean killed;
} KillState;

static void
kill_when_busy (Fixture   *f,
                KillState *k)
{
  if (!k->killed && k->pings == KILL_BLOCKED + KILL_IDLE && k->stream_replies >= KILL_AFTER)
    {
      k->killed = TRUE;
      bridge_server_kill (f->server);
    }
}

static void
kill_stream_reply (Client     *c,
                   redisReply *reply,
                   gpointer    tag)
{
  KillState *k = c->f->data;

  if (reply == NULL)
    return;
  k->stream_replies++;
  kill_when_busy (c->f, k);
  if (!k->killed)
    client_command (c, expect_integer (++c->counter), "INCR stream:%u", c->id);
}

static void
kill_ping_reply (Client     *c,
                 redisReply *reply,
                 gpointer    tag)
{
  KillState *k = c->f->data;

  if (reply == NULL)
    return;
  k->pings++;
  kill_when_busy (c->f, k);
}

static void
test_server_killed (Fixture       *f,
                    gconstpointer  data)
{
  Client clients[KILL_CLIENTS] = { 0 };
  KillState k = { 0 };
  guint n_null = 0;

  f->data = &k;
  fixture_start_server (f);
  for (guint id = 0; id < KILL_CLIENTS; id++)
    {
      Client *c = &clients[id];

      client_connect (f, c, id);
      if (id < KILL_STREAMS)
        {
          c->hook = kill_stream_reply;
          for (guint i = 0; i < KILL_WINDOW; i++)
            client_command (c, expect_integer (++c->counter), "INCR stream:%u", id);
        }
      else
        {
          c->hook = kill_ping_reply;
          client_command (c, expect_status ("PONG"), "PING");
          if (id < KILL_STREAMS + KILL_BLOCKED)
            client_command (c, expect_new (REDIS_REPLY_ARRAY), "BLPOP never:%u 0", id);
        }
    }

  run_until_quiet (f);
  g_assert_true (k.killed);
  for (guint id = 0; id < KILL_CLIENTS; id++)
    {
      assert_error_end (&clients[id]);
      n_null += clients[id].n_null;
      if (id >= KILL_STREAMS && id < KILL_STREAMS + KILL_BLOCKED)
        g_assert_cmpuint (clients[id].n_null, ==, 1);
    }
  g_assert_cmpuint (n_null, >=, KILL_BLOCKED);
  assert_quiet (f);
}

/* -- command timeouts ------------------------------------------------------- */

#define TIMEOUT_USECS (100 * G_TIME_SPAN_MILLISECOND)

typedef struct
{
  gint64 sent_at;
  gint64 failed_at;
} TimeoutState;

static void
note_failure_time (Client     *c,
                   redisReply *reply,
                   gpointer    tag)
{
  TimeoutState *t = c->f->data;

  if (reply == NULL && t->failed_at == 0)
    t->failed_at = g_get_monotonic_time ();
}

static void
test_command_timeout_mute (Fixture       *f,
                           gconstpointer  data)
{
  Client c = { 0 };
  TimeoutState t = { 0 };
  guint16 port;
  int mute = bridge_mute_peer (SOCK_STREAM, &port);

  f->data = &t;
  client_connect_to (f, &c, 0, port);
  c.hook = note_failure_time;
  g_assert_cmpint (iops_hiredis_set_command_timeout (c.ac, TIMEOUT_USECS), ==, REDIS_OK);
  t.sent_at = g_get_monotonic_time ();
  for (guint i = 0; i < 3; i++)
    client_command (&c, expect_status ("PONG"), "PING");

  run_until_quiet (f);
  /* The kernel completed the handshake: connected, then nothing came. */
  assert_error_end (&c);
  g_assert_cmpuint (c.n_null, ==, 3);
  g_assert_cmpint (c.null_err, ==, IOPS_HIREDIS_ERR_TIMEOUT);
  g_assert_cmpstr (c.null_errstr, ==, "Timeout");
  g_assert_cmpint (c.disconnect_err, ==, IOPS_HIREDIS_ERR_TIMEOUT);
  g_assert_cmpint (t.failed_at - t.sent_at, >=, TIMEOUT_USECS);
  if (f->recorder != NULL)
    g_assert_cmpuint (relay_iops_get_counts (f->recorder)->n_timer_watches, >=, 1);
  assert_quiet (f);
  close (mute);
}

/* A blocked command on a live server: the timeout counts from the last
 * data received, so a reply that comes in time is a reply. */
static void
test_command_timeout_slow_reply (Fixture       *f,
                                 gconstpointer  data)
{
  Client slow = { 0 }, late = { 0 };
  TimeoutState t = { 0 };

  f->data = &t;
  fixture_start_server (f);

  client_connect (f, &slow, 0);
  g_assert_cmpint (iops_hiredis_set_command_timeout (slow.ac, 2 * G_USEC_PER_SEC), ==, REDIS_OK);
  slow.hook = disconnect_when_done;
  client_command (&slow, expect_new (REDIS_REPLY_NIL), "BLPOP empty:0 0.2");

  client_connect (f, &late, 1);
  g_assert_cmpint (iops_hiredis_set_command_timeout (late.ac, TIMEOUT_USECS), ==, REDIS_OK);
  late.hook = note_failure_time;
  t.sent_at = g_get_monotonic_time ();
  client_command (&late, expect_new (REDIS_REPLY_NIL), "BLPOP empty:1 2");

  run_until_quiet (f);
  assert_clean_end (&slow);
  assert_error_end (&late);
  g_assert_cmpuint (late.n_null, ==, 1);
  g_assert_cmpint (late.null_err, ==, IOPS_HIREDIS_ERR_TIMEOUT);
  g_assert_cmpint (t.failed_at - t.sent_at, >=, TIMEOUT_USECS);
  assert_quiet (f);
}

/* Timeouts set, traffic done, connection idle: no timer stays armed, no
 * wakeup comes, nothing fails. The command timeout is long enough that a
 * loaded machine does not trip it, and the quiet periods are longer. */
#define IDLE_TIMEOUT_USECS (300 * G_TIME_SPAN_MILLISECOND)
#define IDLE_QUIET_MS      400

static void
flag_when_all_replied (Client     *c,
                       redisReply *reply,
                       gpointer    tag)
{
  if (c->n_replies == c->n_sent)
    *(gboolean *) c->f->data = TRUE;
}

static void
test_timeouts_idle (Fixture       *f,
                    gconstpointer  data)
{
  Client c = { 0 };
  gboolean replied = FALSE;

  f->data = &replied;
  fixture_start_server (f);
  client_connect (f, &c, 0);
  c.hook = flag_when_all_replied;
  g_assert_cmpint (iops_hiredis_set_connect_timeout (c.ac, G_USEC_PER_SEC), ==, REDIS_OK);
  g_assert_cmpint (iops_hiredis_set_command_timeout (c.ac, IDLE_TIMEOUT_USECS), ==, REDIS_OK);
  for (guint i = 0; i < 300; i++)
    client_command (&c, expect_integer (i + 1), "INCR idle");

  g_assert_true (test_iterate_until (f->base.context, &replied, TEST_DEADLINE_MS));
  g_assert_cmpuint (bridge_count_dispatches (f->base.context, IDLE_QUIET_MS), ==, 0);
  g_assert_cmpuint (c.n_disconnect, ==, 0);
  g_assert_nonnull (c.ac);

  /* Set while idle: arms nothing either. */
  g_assert_cmpint (iops_hiredis_set_command_timeout (c.ac, IDLE_TIMEOUT_USECS), ==, REDIS_OK);
  g_assert_cmpuint (bridge_count_dispatches (f->base.context, IDLE_QUIET_MS), ==, 0);
  g_assert_nonnull (c.ac);

  redisAsyncDisconnect (c.ac);
  run_until_quiet (f);
  assert_clean_end (&c);
}

/* -- connect failures --------------------------------------------------------- */

/* A listener whose accept queue is full: a new connect() stays in progress
 * (the kernel drops its SYN). */
static int
full_listener (guint16 *port,
               int     *filler)
{
  struct sockaddr_in addr = { .sin_family = AF_INET };
  socklen_t len = sizeof addr;
  int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

  addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  g_assert_cmpint (bind (fd, (struct sockaddr *) &addr, sizeof addr), ==, 0);
  g_assert_cmpint (listen (fd, 0), ==, 0);
  g_assert_cmpint (getsockname (fd, (struct sockaddr *) &addr, &len), ==, 0);
  *port = ntohs (addr.sin_port);

  /* Blocking: the queue takes this one, then it is full. */
  *filler = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  g_assert_cmpint (connect (*filler, (struct sockaddr *) &addr, sizeof addr), ==, 0);
  return fd;
}

static void
test_connect_timeout (Fixture       *f,
                      gconstpointer  data)
{
  Client c = { 0 };
  TimeoutState t = { 0 };
  guint16 port;
  int filler;
  int listener = full_listener (&port, &filler);

  f->data = &t;
  client_connect_to (f, &c, 0, port);
  c.hook = note_failure_time;
  t.sent_at = g_get_monotonic_time ();
  g_assert_cmpint (iops_hiredis_set_connect_timeout (c.ac, TIMEOUT_USECS), ==, REDIS_OK);
  client_command (&c, expect_status ("PONG"), "PING");

  run_until_quiet (f);
  g_assert_cmpuint (c.n_connect, ==, 1);
  g_assert_cmpint (c.connect_status, ==, REDIS_ERR);
  g_assert_cmpuint (c.n_disconnect, ==, 0);
  g_assert_cmpuint (c.n_null, ==, 1);
  g_assert_cmpint (c.null_err, ==, IOPS_HIREDIS_ERR_TIMEOUT);
  g_assert_cmpstr (c.null_errstr, ==, "Timeout");
  g_assert_cmpint (t.failed_at - t.sent_at, >=, TIMEOUT_USECS);
  g_assert_null (c.ac);
  assert_quiet (f);
  close (filler);
  close (listener);
}

static void
test_connect_refused (Fixture       *f,
                      gconstpointer  data)
{
  Client c = { 0 };

  client_connect_to (f, &c, 0, bridge_unused_port (SOCK_STREAM));
  client_command (&c, expect_status ("PONG"), "PING");

  run_until_quiet (f);
  g_assert_cmpuint (c.n_connect, ==, 1);
  g_assert_cmpint (c.connect_status, ==, REDIS_ERR);
  g_assert_cmpuint (c.n_disconnect, ==, 0);
  g_assert_cmpuint (c.n_null, ==, 1);
  g_assert_cmpint (c.null_err, ==, REDIS_ERR_IO);
  assert_quiet (f);
}

/* -- freeing and disconnecting ---------------------------------------------- */

static void
free_at_third (Client     *c,
               redisReply *reply,
               gpointer    tag)
{
  if (c->n_replies == 3)
    {
      redisAsyncFree (c->ac);
      c->ac = NULL;
    }
}

static void
test_free_in_callback (Fixture       *f,
                       gconstpointer  data)
{
  Client c = { 0 };

  fixture_start_server (f);
  client_connect (f, &c, 0);
  c.hook = free_at_third;
  for (guint i = 0; i < 10; i++)
    client_command (&c, expect_integer (i + 1), "INCR freed");

  run_until_quiet (f);
  assert_all_replied (&c);
  g_assert_cmpuint (c.n_ok, ==, 3);
  g_assert_cmpuint (c.n_null, ==, 7);
  /* hiredis's status for a context freed by its user. */
  g_assert_cmpuint (c.n_disconnect, ==, 1);
  g_assert_cmpint (c.disconnect_status, ==, REDIS_OK);
  assert_quiet (f);
}

static void
test_disconnect_pending (Fixture       *f,
                         gconstpointer  data)
{
  Client c = { 0 };

  fixture_start_server (f);
  client_connect (f, &c, 0);
  for (guint i = 0; i < 50; i++)
    client_command (&c, expect_integer (i + 1), "INCR flushed");
  redisAsyncDisconnect (c.ac);

  run_until_quiet (f);
  assert_clean_end (&c);
  assert_quiet (f);
}

static void
test_free_unconnected (Fixture       *f,
                       gconstpointer  data)
{
  Client c = { 0 };

  fixture_start_server (f);
  client_connect (f, &c, 0);
  client_command (&c, expect_status ("PONG"), "PING");
  redisAsyncFree (c.ac);
  c.ac = NULL;

  g_assert_cmpuint (c.n_null, ==, 1);
  run_until_quiet (f);
  g_assert_cmpuint (c.n_connect, ==, 0);
  assert_quiet (f);
}

/* Commands and a connect callback given before the attach: hiredis asked
 * for a write watch while it had no hooks, and the bridge still sees the
 * connection through. */
static void
test_attach_late (Fixture       *f,
                  gconstpointer  data)
{
  Client c = { .f = f };

  fixture_start_server (f);
  c.ac = redisAsyncConnect ("127.0.0.1", f->port);
  g_assert_nonnull (c.ac);
  c.ac->data = &c;
  g_assert_cmpint (redisAsyncSetConnectCallback (c.ac, on_connect), ==, REDIS_OK);
  g_assert_cmpint (redisAsyncSetDisconnectCallback (c.ac, on_disconnect), ==, REDIS_OK);
  c.hook = disconnect_when_done;
  for (guint i = 0; i < 20; i++)
    client_command (&c, expect_integer (i + 1), "INCR late");
  g_assert_cmpint (iops_hiredis_attach (c.ac, f->iops), ==, REDIS_OK);

  run_until_quiet (f);
  assert_clean_end (&c);
  assert_quiet (f);
}

/* -- loops nested in hiredis callbacks ------------------------------------- */

typedef struct
{
  Client   *pusher;
  guint     nested_iterations;
  gboolean  in_ping;
  gboolean  popped_in_ping;
} NestState;

static void
nest_on_reply (Client     *c,
               redisReply *reply,
               gpointer    tag)
{
  NestState *n = c->f->data;

  if (GPOINTER_TO_INT (tag) == 1 && reply != NULL)
    {
      /* The PING's reply: make the BLPOP's reply arrive while a loop runs
       * in this callback. hiredis must not be re-entered for it. */
      client_command (n->pusher, expect_integer (1), "RPUSH nest:list v");
      n->in_ping = TRUE;
      n->nested_iterations = bridge_count_dispatches (c->f->base.context, 100);
      n->in_ping = FALSE;
    }
  else if (GPOINTER_TO_INT (tag) == 2)
    {
      n->popped_in_ping = n->in_ping;
      g_assert_nonnull (reply);
      g_assert_cmpint (reply->type, ==, REDIS_REPLY_ARRAY);
      g_assert_cmpuint (reply->elements, ==, 2);
      g_assert_cmpstr (reply->element[1]->str, ==, "v");
      redisAsyncDisconnect (c->ac);
      redisAsyncDisconnect (n->pusher->ac);
    }
}

static void
test_nested_loop (Fixture       *f,
                  gconstpointer  data)
{
  Client popper = { 0 }, pusher = { 0 };
  NestState n = { .pusher = &pusher };

  f->data = &n;
  fixture_start_server (f);
  client_connect (f, &pusher, 1);
  client_connect (f, &popper, 0);
  popper.hook = nest_on_reply;
  client_command (&popper, expect_tagged (expect_status ("PONG"), GINT_TO_POINTER (1)), "PING");
  client_command (&popper, expect_tagged (expect_new (REDIS_REPLY_ARRAY), GINT_TO_POINTER (2)),
                  "BLPOP nest:list 5");

  run_until_quiet (f);
  assert_clean_end (&popper);
  assert_clean_end (&pusher);
  g_assert_false (n.popped_in_ping);
  /* The pusher's write and reply, and at most one delivery of the
   * popper's watch, which the bridge then keeps quiet: no spinning. */
  g_assert_cmpuint (n.nested_iterations, <=, 7);
  assert_quiet (f);
}

#define NESTED_TIMEOUT_USECS (200 * G_TIME_SPAN_MILLISECOND)
#define NESTED_LOOP_MS       400

typedef struct
{
  guint    nested_iterations;
  gboolean in_ping;
  gboolean failed_in_ping;
} NestTimeoutState;

static void
nest_timeout_on_reply (Client     *c,
                       redisReply *reply,
                       gpointer    tag)
{
  NestTimeoutState *n = c->f->data;

  if (GPOINTER_TO_INT (tag) == 1 && reply != NULL)
    {
      n->in_ping = TRUE;
      n->nested_iterations = bridge_count_dispatches (c->f->base.context, NESTED_LOOP_MS);
      n->in_ping = FALSE;
    }
  else if (GPOINTER_TO_INT (tag) == 2 && reply == NULL)
    n->failed_in_ping = n->in_ping;
}

/* The command deadline passes in a loop nested in a reply callback: the
 * bridge fails the context once that callback returned, not inside it.
 * The deadline is long enough for the PING's reply to come first on a
 * loaded machine. */
static void
test_nested_timeout (Fixture       *f,
                     gconstpointer  data)
{
  Client c = { 0 };
  NestTimeoutState n = { 0 };

  f->data = &n;
  fixture_start_server (f);
  client_connect (f, &c, 0);
  c.hook = nest_timeout_on_reply;
  g_assert_cmpint (iops_hiredis_set_command_timeout (c.ac, NESTED_TIMEOUT_USECS), ==, REDIS_OK);
  client_command (&c, expect_tagged (expect_status ("PONG"), GINT_TO_POINTER (1)), "PING");
  client_command (&c, expect_tagged (expect_new (REDIS_REPLY_NIL), GINT_TO_POINTER (2)),
                  "BLPOP nest:never 5");

  run_until_quiet (f);
  assert_error_end (&c);
  g_assert_cmpuint (c.n_null, ==, 1);
  g_assert_cmpint (c.null_err, ==, IOPS_HIREDIS_ERR_TIMEOUT);
  g_assert_false (n.failed_in_ping);
  g_assert_cmpuint (n.nested_iterations, <=, 3);
  assert_quiet (f);
}

/* -- bad input -------------------------------------------------------------- */

static void
expect_critical (void)
{
  g_test_expect_message ("IopsHiredis", G_LOG_LEVEL_CRITICAL, "*assertion*failed*");
}

static void
test_bad_input (Fixture       *f,
                gconstpointer  data)
{
  guint16 port;
  int mute = bridge_mute_peer (SOCK_STREAM, &port);
  redisAsyncContext *ac = redisAsyncConnect ("127.0.0.1", port);
  redisAsyncContext *other = redisAsyncConnect ("127.0.0.1", port);

  g_assert_nonnull (ac);
  g_assert_nonnull (other);

  expect_critical ();
  g_assert_cmpint (iops_hiredis_attach (NULL, f->iops), ==, REDIS_ERR);
  g_test_assert_expected_messages ();
  expect_critical ();
  g_assert_cmpint (iops_hiredis_attach (ac, NULL), ==, REDIS_ERR);
  g_test_assert_expected_messages ();
  {
    g_autoptr(GObject) not_an_iops = g_object_new (G_TYPE_OBJECT, NULL);

    expect_critical ();
    g_assert_cmpint (iops_hiredis_attach (ac, (IopsIOPS *) not_an_iops), ==, REDIS_ERR);
    g_test_assert_expected_messages ();
  }

  /* Not attached: no IOPS, and no timeouts. */
  g_assert_null (iops_hiredis_get_iops (ac));
  expect_critical ();
  g_assert_cmpint (iops_hiredis_set_command_timeout (ac, 1000), ==, REDIS_ERR);
  g_test_assert_expected_messages ();
  expect_critical ();
  g_assert_cmpint (iops_hiredis_set_connect_timeout (ac, 1000), ==, REDIS_ERR);
  g_test_assert_expected_messages ();

  g_assert_cmpint (iops_hiredis_attach (ac, f->iops), ==, REDIS_OK);
  /* Once is enough: a second attach, here or elsewhere, is refused. */
  g_assert_cmpint (iops_hiredis_attach (ac, f->iops), ==, REDIS_ERR);
  g_assert_cmpint (iops_hiredis_attach (ac, IOPS_IOPS (f->base.glib_iops)), ==, REDIS_ERR);
  g_assert_true (iops_hiredis_get_iops (ac) == f->iops);

  expect_critical ();
  g_assert_cmpint (iops_hiredis_set_command_timeout (ac, -1), ==, REDIS_ERR);
  g_test_assert_expected_messages ();
  expect_critical ();
  g_assert_cmpint (iops_hiredis_set_connect_timeout (ac, -1), ==, REDIS_ERR);
  g_test_assert_expected_messages ();
  expect_critical ();
  g_assert_null (iops_hiredis_get_iops (NULL));
  g_test_assert_expected_messages ();

  /* A context whose connect already failed is not attached. */
  other->err = REDIS_ERR_IO;
  g_assert_cmpint (iops_hiredis_attach (other, f->iops), ==, REDIS_ERR);
  g_assert_null (iops_hiredis_get_iops (other));

  redisAsyncFree (ac);
  redisAsyncFree (other);
  run_until_quiet (f);
  close (mute);
}

/* -- the example, against the real server ---------------------------------- */

static void
test_example (Fixture       *f,
              gconstpointer  data)
{
  const char *example = g_getenv ("IOPS_HIREDIS_EXAMPLE");
  g_autofree char *port = NULL;
  g_autofree char *out = NULL;
  g_autoptr(GSubprocess) process = NULL;
  g_autoptr(GError) error = NULL;

  if (example == NULL)
    {
      g_test_skip ("IOPS_HIREDIS_EXAMPLE is not set");
      return;
    }
  fixture_start_server (f);
  port = g_strdup_printf ("%u", f->port);
  process = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error,
                              example, "127.0.0.1", port, "500", NULL);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8 (process, NULL, NULL, &out, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_subprocess_get_if_exited (process));
  g_assert_cmpint (g_subprocess_get_exit_status (process), ==, 0);
  g_assert_cmpstr (out, ==, "1500 replies, 0 wrong\n");
}

/* -- registration --------------------------------------------------------- */

typedef struct
{
  const char *name;
  void      (*func) (Fixture *, gconstpointer);
  gboolean    every_mode;
} TestCase;

static const TestCase tests[] = {
  { "pipelined", test_pipelined, TRUE },
  { "chained", test_chained, TRUE },
  { "server-killed", test_server_killed, TRUE },
  { "command-timeout-mute-peer", test_command_timeout_mute, TRUE },
  { "command-timeout-slow-reply", test_command_timeout_slow_reply, TRUE },
  { "timeouts-idle", test_timeouts_idle, TRUE },
  { "connect-timeout", test_connect_timeout, TRUE },
  { "connect-refused", test_connect_refused, TRUE },
  { "free-in-callback", test_free_in_callback, TRUE },
  { "disconnect-pending", test_disconnect_pending, TRUE },
  { "free-unconnected", test_free_unconnected, TRUE },
  { "attach-late", test_attach_late, TRUE },
  { "nested-loop", test_nested_loop, TRUE },
  { "nested-timeout", test_nested_timeout, TRUE },
  { "bad-input", test_bad_input, FALSE },
  { "example", test_example, FALSE },
};

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  for (guint m = 0; m < G_N_ELEMENTS (modes); m++)
    for (guint t = 0; t < G_N_ELEMENTS (tests); t++)
      {
        g_autofree char *path = NULL;

        if (m > 0 && !tests[t].every_mode)
          continue;
        path = g_strdup_printf ("/iops/bridge/hiredis/%s/%s", modes[m].name, tests[t].name);
        g_test_add (path, Fixture, &modes[m], fixture_setup, tests[t].func, fixture_teardown);
      }
  return g_test_run ();
}

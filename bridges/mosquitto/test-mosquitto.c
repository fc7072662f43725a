/* test-mosquitto.c — the libmosquitto bridge against a real mosquitto broker
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Every test but the keepalive one starts its own broker (/usr/sbin/mosquitto)
 * on 127.0.0.1 and an unused port. Most run three times: on an
 * IopsGLibIOPS with one-shot watches, with persistent ones, and on
 * MockIOPS, an implementation of the interface with no GMainContext.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "broker.h"
#include "iops-mosquitto.h"
#include "mock-iops.h"

#define TOPIC        "iops/test/bridge"
#define MAX_PAYLOAD  1600
#define KEEPALIVE_S  60

typedef enum
{
  KIND_ONESHOT,
  KIND_PERSISTENT,
  KIND_MOCK,
} IopsKind;

static const char *kind_names[] = { "one-shot", "persistent", "mock" };

typedef struct
{
  TestFixture  base;    /* a context and an IopsGLibIOPS (the mock needs neither) */
  IopsKind     kind;
  MockIOPS    *mock;
  IopsIOPS    *iops;    /* the one under test */
  TestBroker  *broker;
} Fixture;

/* -- counting the bridge's events --------------------------------------------- */

/* The bridge's event types are private. The test counts their live
 * instances by wrapping the constructed and finalize methods of their two
 * classes, found by type name once a first attach registered them. */
static const char *event_type_names[] = { "IopsMosquittoSocket", "IopsMosquittoTick" };
static GType event_types[2];
static void (*parent_constructed[2]) (GObject *object);
static void (*parent_finalize[2]) (GObject *object);
static int n_events_alive;

static int
event_slot (GObject *object)
{
  return G_OBJECT_TYPE (object) == event_types[0] ? 0 : 1;
}

static void
counted_constructed (GObject *object)
{
  n_events_alive++;
  if (parent_constructed[event_slot (object)] != NULL)
    parent_constructed[event_slot (object)] (object);
}

static void
counted_finalize (GObject *object)
{
  n_events_alive--;
  parent_finalize[event_slot (object)] (object);
}

static void
count_bridge_events (void)
{
  g_autoptr(MockIOPS) mock = mock_iops_new ();
  struct mosquitto *mosq = mosquitto_new (NULL, true, NULL);

  iops_mosquitto_detach (iops_mosquitto_attach (mosq, IOPS_IOPS (mock)));
  mosquitto_destroy (mosq);
  for (guint i = 0; i < G_N_ELEMENTS (event_types); i++)
    {
      GObjectClass *klass;

      event_types[i] = g_type_from_name (event_type_names[i]);
      g_assert_cmpuint (event_types[i], !=, 0);
      /* Kept for good: the wrapped methods stay in place. */
      klass = g_type_class_ref (event_types[i]);
      parent_constructed[i] = klass->constructed;
      parent_finalize[i] = klass->finalize;
      klass->constructed = counted_constructed;
      klass->finalize = counted_finalize;
    }
}

static void
assert_bridge_events (int expected)
{
  g_assert_cmpint (n_events_alive, ==, expected);
}

/* -- payloads ----------------------------------------------------------------- */

/* Message @index: its index (4 bytes, big-endian), then bytes of a
 * generator seeded with it; 4 to 1,503 bytes long. */
static int
make_payload (guint   index,
              guint8 *buf)
{
  int len = 4 + (int) ((index * 7919u) % 1500u);
  guint32 x = index * 2654435761u + 1;

  buf[0] = index >> 24;
  buf[1] = index >> 16;
  buf[2] = index >> 8;
  buf[3] = index;
  for (int i = 4; i < len; i++)
    {
      x ^= x << 13;
      x ^= x >> 17;
      x ^= x << 5;
      buf[i] = x;
    }
  return len;
}

static void
assert_payload (const struct mosquitto_message *msg,
                guint                           index)
{
  guint8 expected[MAX_PAYLOAD];
  int len = make_payload (index, expected);

  g_assert_cmpstr (msg->topic, ==, TOPIC);
  g_assert_cmpint (msg->qos, ==, 1);
  g_assert_cmpmem (msg->payload, msg->payloadlen, expected, len);
}

/* -- a client ----------------------------------------------------------------- */

typedef struct _Peer Peer;
typedef void (*PeerHook) (Peer *peer);

struct _Peer
{
  Fixture          *f;
  struct mosquitto *mosq;
  IopsMosquitto    *bridge;
  guint             n_connect, n_subscribe, n_disconnect;
  int               connect_rc, disconnect_rc;
  gint64            disconnected_at;  /* CLOCK_MONOTONIC µs */
  /* Publishing: message n_published is next; n_total 0 means forever. */
  guint             n_published, n_total, n_acked;
  int               next_mid;         /* the mid the next PUBACK must carry */
  gboolean          publish_on_ack;   /* each PUBACK publishes the next message */
  gboolean          disconnect_when_acked;
  /* Receiving: every message in order, disconnecting after n_expected. */
  guint             n_received, n_expected;
  PeerHook          on_connect, on_subscribe, on_message;
  gpointer          data;
};

static gint64
monotonic_usecs (void)
{
  struct timespec now;

  clock_gettime (CLOCK_MONOTONIC, &now);
  return (gint64) now.tv_sec * G_USEC_PER_SEC + now.tv_nsec / 1000;
}

static void
peer_publish_next (Peer *peer)
{
  guint8 buf[MAX_PAYLOAD];
  int len = make_payload (peer->n_published, buf);
  int mid = 0;

  g_assert_cmpint (mosquitto_publish (peer->mosq, &mid, TOPIC, len, buf, 1, false),
                   ==, MOSQ_ERR_SUCCESS);
  if (peer->n_published == 0)
    peer->next_mid = mid;
  peer->n_published++;
}

static void
on_connect (struct mosquitto *mosq,
            void             *data,
            int               rc)
{
  Peer *peer = data;

  peer->n_connect++;
  peer->connect_rc = rc;
  if (peer->on_connect != NULL)
    peer->on_connect (peer);
}

static void
on_subscribe (struct mosquitto *mosq,
              void             *data,
              int               mid,
              int               n_granted,
              const int        *granted)
{
  Peer *peer = data;

  g_assert_cmpint (n_granted, ==, 1);
  g_assert_cmpint (granted[0], ==, 1);
  peer->n_subscribe++;
  if (peer->on_subscribe != NULL)
    peer->on_subscribe (peer);
}

static void
on_publish (struct mosquitto *mosq,
            void             *data,
            int               mid)
{
  Peer *peer = data;

  /* PUBACKs come in the order of the publishes; mids count up, skipping 0. */
  g_assert_cmpint (mid, ==, peer->next_mid);
  peer->next_mid = peer->next_mid == 65535 ? 1 : peer->next_mid + 1;
  peer->n_acked++;
  if (!peer->publish_on_ack)
    return;
  if (peer->n_total == 0 || peer->n_published < peer->n_total)
    peer_publish_next (peer);
  else if (peer->disconnect_when_acked && peer->n_acked == peer->n_total)
    g_assert_cmpint (mosquitto_disconnect (mosq), ==, MOSQ_ERR_SUCCESS);
}

static void
on_message (struct mosquitto               *mosq,
            void                           *data,
            const struct mosquitto_message *msg)
{
  Peer *peer = data;

  assert_payload (msg, peer->n_received);
  peer->n_received++;
  if (peer->on_message != NULL)
    peer->on_message (peer);
  if (peer->n_expected != 0 && peer->n_received == peer->n_expected)
    g_assert_cmpint (mosquitto_disconnect (mosq), ==, MOSQ_ERR_SUCCESS);
}

static void
on_disconnect (struct mosquitto *mosq,
               void             *data,
               int               rc)
{
  Peer *peer = data;

  peer->n_disconnect++;
  peer->disconnect_rc = rc;
  peer->disconnected_at = monotonic_usecs ();
}

static void
subscribe_on_connect (Peer *peer)
{
  g_assert_cmpint (peer->connect_rc, ==, 0);
  g_assert_cmpint (mosquitto_subscribe (peer->mosq, NULL, TOPIC, 1), ==, MOSQ_ERR_SUCCESS);
}

static Peer *
peer_new (Fixture *f)
{
  Peer *peer = g_new0 (Peer, 1);

  peer->f = f;
  peer->mosq = mosquitto_new (NULL, true, peer);
  g_assert_nonnull (peer->mosq);
  mosquitto_connect_callback_set (peer->mosq, on_connect);
  mosquitto_subscribe_callback_set (peer->mosq, on_subscribe);
  mosquitto_publish_callback_set (peer->mosq, on_publish);
  mosquitto_message_callback_set (peer->mosq, on_message);
  mosquitto_disconnect_callback_set (peer->mosq, on_disconnect);
  return peer;
}

/* mosquitto_connect_async(), then attach: the usual order. */
static void
peer_connect (Peer     *peer,
              IopsIOPS *iops,
              guint16   port,
              int       keepalive)
{
  g_assert_cmpint (mosquitto_connect_async (peer->mosq, "127.0.0.1", port, keepalive),
                   ==, MOSQ_ERR_SUCCESS);
  peer->bridge = iops_mosquitto_attach (peer->mosq, iops);
  g_assert_nonnull (peer->bridge);
}

/* Detach before mosquitto_destroy(): libmosquitto has no destroy hook. */
static void
peer_free (Peer *peer)
{
  g_clear_pointer (&peer->bridge, iops_mosquitto_detach);
  mosquitto_destroy (peer->mosq);
  g_free (peer);
}

/* -- driving the IOPS under test ----------------------------------------------- */

typedef gboolean (*Predicate) (gpointer data);

/* Iterates until @done, or FALSE after @ms. Never sleeps: the wait is the
 * loop's own, bounded by a timeout source (or the mock's poll timeout). */
static gboolean
iterate_until (Fixture   *f,
               Predicate  done,
               gpointer   data,
               guint      ms)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) ms * G_TIME_SPAN_MILLISECOND;
  gboolean expired = FALSE;
  GSource *timeout;

  if (f->mock != NULL)
    {
      gint64 left;

      while (!done (data) && (left = deadline - g_get_monotonic_time ()) > 0)
        mock_iops_iterate (f->mock, (int) (left / 1000) + 1);
      return done (data);
    }

  timeout = g_timeout_source_new (ms);
  g_source_set_callback (timeout, test_set_flag, &expired, NULL);
  g_source_attach (timeout, f->base.context);
  while (!done (data) && !expired)
    g_main_context_iteration (f->base.context, TRUE);
  g_source_destroy (timeout);
  g_source_unref (timeout);
  return done (data);
}

static gboolean
stop_iops (gpointer data)
{
  iops_iops_stop_watching (data);
  return G_SOURCE_REMOVE;
}

/* start_watching(); TRUE when it returned by itself (nothing armed) before
 * @ms passed. */
static gboolean
run_until_quiet (Fixture  *f,
                 IopsIOPS *iops,
                 guint     ms)
{
  GSource *timeout;
  gboolean stopped;

  if (f->mock != NULL)
    {
      mock_iops_set_deadline (f->mock, ms);
      iops_iops_start_watching (iops);
      return !mock_iops_deadline_hit (f->mock);
    }

  timeout = g_timeout_source_new (ms);
  g_source_set_callback (timeout, stop_iops, iops, NULL);
  g_source_attach (timeout, f->base.context);
  iops_iops_start_watching (iops);
  /* A destroyed source has fired: stop_watching() ended the run. */
  stopped = g_source_is_destroyed (timeout);
  g_source_destroy (timeout);
  g_source_unref (timeout);
  return !stopped;
}

/* The loop is quiet: nothing dispatched for 200 ms, and nothing armed. */
static void
assert_quiet (Fixture *f)
{
  if (f->mock != NULL)
    {
      g_assert_cmpuint (mock_iops_n_armed (f->mock), ==, 0);
      return;
    }
  g_assert_cmpuint (bridge_count_dispatches (f->base.context, 200), ==, 0);
  g_assert_true (run_until_quiet (f, f->iops, 1000));
}

static gboolean
peer_connected (gpointer data)
{
  return ((Peer *) data)->n_connect > 0;
}

static gboolean
peer_subscribed (gpointer data)
{
  return ((Peer *) data)->n_subscribe > 0;
}

/* -- fixture ---------------------------------------------------------------------- */

static void
fixture_setup (Fixture       *f,
               gconstpointer  data)
{
  g_autoptr(GError) error = NULL;

  f->kind = GPOINTER_TO_INT (data);
  test_fixture_setup_mode (&f->base, GINT_TO_POINTER (f->kind == KIND_PERSISTENT));
  if (f->kind == KIND_MOCK)
    {
      f->mock = mock_iops_new ();
      f->iops = IOPS_IOPS (f->mock);
    }
  else
    f->iops = f->base.iops;
  f->broker = test_broker_start (TRUE, &error);
  g_assert_no_error (error);
}

static void
fixture_teardown (Fixture       *f,
                  gconstpointer  data)
{
  g_clear_pointer (&f->broker, test_broker_free);
  if (f->mock != NULL)
    g_assert_finalize_object (f->mock);
  assert_bridge_events (0);
  test_fixture_teardown_quiet (&f->base, NULL);
}

/* Publisher and subscriber on the IOPS under test, both connected and
 * the subscriber subscribed. */
static void
connect_pair (Fixture  *f,
              Peer    **publisher,
              Peer    **subscriber)
{
  *subscriber = peer_new (f);
  (*subscriber)->on_connect = subscribe_on_connect;
  peer_connect (*subscriber, f->iops, f->broker->port, KEEPALIVE_S);
  *publisher = peer_new (f);
  peer_connect (*publisher, f->iops, f->broker->port, KEEPALIVE_S);
  assert_bridge_events (4);
  g_assert_true (iterate_until (f, peer_subscribed, *subscriber, TEST_DEADLINE_MS));
  g_assert_true (iterate_until (f, peer_connected, *publisher, TEST_DEADLINE_MS));
  g_assert_cmpint ((*publisher)->connect_rc, ==, 0);
}

/* The first @window messages, from outside any callback: each PUBACK then
 * publishes the next from inside one. */
static void
publish_window (Peer  *publisher,
                guint  window)
{
  publisher->publish_on_ack = TRUE;
  for (guint i = 0; i < window; i++)
    peer_publish_next (publisher);
  iops_mosquitto_update (publisher->bridge);
}

/* -- tests ------------------------------------------------------------------------ */

#define N_MESSAGES 500
#define WINDOW     100

/* Hundreds of QoS 1 messages, 100 in flight: each one received once, in
 * order, byte for byte, and acknowledged in order; then both clients
 * disconnect from inside a callback and start_watching returns by itself. */
static void
test_qos1_in_order (Fixture       *f,
                    gconstpointer  data)
{
  Peer *publisher, *subscriber;

  connect_pair (f, &publisher, &subscriber);
  publisher->n_total = N_MESSAGES;
  publisher->disconnect_when_acked = TRUE;
  subscriber->n_expected = N_MESSAGES;
  publish_window (publisher, WINDOW);

  g_assert_true (run_until_quiet (f, f->iops, 4 * TEST_DEADLINE_MS));
  g_assert_cmpuint (subscriber->n_received, ==, N_MESSAGES);
  g_assert_cmpuint (publisher->n_acked, ==, N_MESSAGES);
  g_assert_cmpuint (publisher->n_disconnect, ==, 1);
  g_assert_cmpuint (subscriber->n_disconnect, ==, 1);
  g_assert_cmpint (publisher->disconnect_rc, ==, MOSQ_ERR_SUCCESS);
  g_assert_cmpint (subscriber->disconnect_rc, ==, MOSQ_ERR_SUCCESS);
  assert_quiet (f);

  peer_free (publisher);
  peer_free (subscriber);
}

#define KILL_AFTER 100

static void
kill_broker_mid_run (Peer *peer)
{
  if (peer->n_received == KILL_AFTER)
    test_broker_kill (peer->f->broker);
}

/* The broker dies (SIGKILL) while 50 messages are in flight: both clients'
 * disconnect callbacks run once with an error, nothing stays armed, the
 * loop goes quiet and start_watching returns by itself. */
static void
test_server_killed (Fixture       *f,
                    gconstpointer  data)
{
  Peer *publisher, *subscriber;

  connect_pair (f, &publisher, &subscriber);
  subscriber->on_message = kill_broker_mid_run;
  publish_window (publisher, 50);

  g_assert_true (run_until_quiet (f, f->iops, 4 * TEST_DEADLINE_MS));
  /* What was on its way when the broker died still arrives, in order. */
  g_assert_cmpuint (subscriber->n_received, >=, KILL_AFTER);
  g_assert_cmpuint (publisher->n_acked, >, 0);
  g_assert_cmpuint (publisher->n_disconnect, ==, 1);
  g_assert_cmpuint (subscriber->n_disconnect, ==, 1);
  g_assert_cmpint (publisher->disconnect_rc, !=, MOSQ_ERR_SUCCESS);
  g_assert_cmpint (subscriber->disconnect_rc, !=, MOSQ_ERR_SUCCESS);
  g_assert_cmpint (mosquitto_socket (publisher->mosq), ==, -1);
  g_assert_cmpint (mosquitto_socket (subscriber->mosq), ==, -1);
  assert_quiet (f);

  /* An update now changes nothing: there is no socket to watch. */
  iops_mosquitto_update (publisher->bridge);
  assert_quiet (f);
  g_assert_cmpuint (publisher->n_disconnect, ==, 1);

  peer_free (publisher);
  peer_free (subscriber);
  assert_bridge_events (0);
}

/* Nothing listens on the port: the connect fails at once (no socket) or
 * the disconnect callback reports it once; either way nothing stays armed. */
static void
test_refused (Fixture       *f,
              gconstpointer  data)
{
  Peer *peer = peer_new (f);
  guint16 port = bridge_unused_port (SOCK_STREAM);
  int rc = mosquitto_connect_async (peer->mosq, "127.0.0.1", port, KEEPALIVE_S);

  peer->bridge = iops_mosquitto_attach (peer->mosq, f->iops);
  if (rc == MOSQ_ERR_SUCCESS)
    {
      g_assert_true (run_until_quiet (f, f->iops, TEST_DEADLINE_MS));
      g_assert_cmpuint (peer->n_disconnect, ==, 1);
      g_assert_cmpint (peer->disconnect_rc, !=, MOSQ_ERR_SUCCESS);
    }
  else
    {
      g_test_message ("mosquitto_connect_async: %s", mosquitto_strerror (rc));
      g_assert_cmpint (mosquitto_socket (peer->mosq), ==, -1);
      g_assert_cmpuint (peer->n_disconnect, ==, 0);
    }
  g_assert_cmpuint (peer->n_connect, ==, 0);
  assert_quiet (f);
  peer_free (peer);
}

/* mosquitto_disconnect() from outside any callback, and no update: the
 * client closes its socket and runs its disconnect callback at once, from
 * inside that call. The bridge's watch is left on a closed fd, which an
 * IOPS may report (poll() says POLLNVAL) or not (epoll forgets it); either
 * way the bridge must not call libmosquitto for it — that would run the
 * disconnect callback again — and goes quiet by its next tick at the
 * latest. */
static void
test_disconnect_outside (Fixture       *f,
                         gconstpointer  data)
{
  Peer *peer = peer_new (f);

  peer->on_connect = subscribe_on_connect;
  peer_connect (peer, f->iops, f->broker->port, KEEPALIVE_S);
  g_assert_true (iterate_until (f, peer_subscribed, peer, TEST_DEADLINE_MS));

  g_assert_cmpint (mosquitto_disconnect (peer->mosq), ==, MOSQ_ERR_SUCCESS);
  g_assert_cmpuint (peer->n_disconnect, ==, 1);
  g_assert_true (run_until_quiet (f, f->iops, TEST_DEADLINE_MS));
  g_assert_cmpuint (peer->n_disconnect, ==, 1);
  g_assert_cmpint (peer->disconnect_rc, ==, MOSQ_ERR_SUCCESS);
  assert_quiet (f);
  peer_free (peer);
}

/* -- reconnects: the socket changes ------------------------------------------------ */

typedef struct
{
  int spare;          /* an fd below the client's socket, closed to free its number */
  int fds[3];         /* the client's socket in each of its three connections */
} Reconnect;

static void
reconnect_on_subscribe (Peer *peer)
{
  Reconnect *r = peer->data;

  r->fds[peer->n_subscribe - 1] = mosquitto_socket (peer->mosq);
  if (peer->n_subscribe == 1)
    {
      /* From inside a callback: the bridge notices by itself. */
      g_assert_cmpint (mosquitto_reconnect_async (peer->mosq), ==, MOSQ_ERR_SUCCESS);
      return;
    }
  peer_publish_next (peer);
}

/* Received and acknowledged: a reconnect before the PUBACK would make
 * libmosquitto send the message again (QoS 1 is at least once). */
static gboolean
peer_received_one (gpointer data)
{
  return ((Peer *) data)->n_received >= 1 && ((Peer *) data)->n_acked >= 1;
}

/* The socket is replaced by a reconnect, once from inside a callback (the
 * new socket takes the old fd number: the bridge must register it afresh)
 * and once from outside (another number, with iops_mosquitto_update()).
 * Each time the client connects, subscribes again and gets its message. */
static void
test_reconnect (Fixture       *f,
                gconstpointer  data)
{
  Reconnect r = { -1, { -1, -1, -1 } };
  Peer *peer = peer_new (f);

  peer->data = &r;
  peer->on_connect = subscribe_on_connect;
  peer->on_subscribe = reconnect_on_subscribe;
  peer->n_expected = 2;
  /* Opened just before the client's socket, so its number is lower. */
  r.spare = open ("/dev/null", O_RDONLY | O_CLOEXEC);
  g_assert_cmpint (r.spare, >=, 0);
  peer_connect (peer, f->iops, f->broker->port, KEEPALIVE_S);

  g_assert_true (iterate_until (f, peer_received_one, peer, TEST_DEADLINE_MS));
  g_assert_cmpuint (peer->n_connect, ==, 2);
  g_assert_cmpint (r.fds[1], ==, r.fds[0]);

  close (r.spare);
  g_assert_cmpint (mosquitto_reconnect_async (peer->mosq), ==, MOSQ_ERR_SUCCESS);
  g_assert_cmpint (mosquitto_socket (peer->mosq), ==, r.spare);
  iops_mosquitto_update (peer->bridge);

  g_assert_true (run_until_quiet (f, f->iops, TEST_DEADLINE_MS));
  g_assert_cmpuint (peer->n_connect, ==, 3);
  g_assert_cmpuint (peer->n_received, ==, 2);
  g_assert_cmpint (r.fds[2], ==, r.spare);
  /* Only the last, requested, disconnect: a reconnect replaces the socket
   * without running the disconnect callback. */
  g_assert_cmpuint (peer->n_disconnect, ==, 1);
  g_assert_cmpint (peer->disconnect_rc, ==, MOSQ_ERR_SUCCESS);
  assert_quiet (f);
  peer_free (peer);
}

/* -- detaching from inside a callback ----------------------------------------------- */

typedef struct
{
  IopsIOPS *other;    /* the IOPS the client moves to */
} Move;

static void
publish_on_subscribe (Peer *peer)
{
  peer_publish_next (peer);
}

static void
move_on_first_message (Peer *peer)
{
  Move *move = peer->data;

  if (peer->n_received != 1)
    return;
  iops_mosquitto_detach (g_steal_pointer (&peer->bridge));
  assert_bridge_events (2);  /* the IOPS is still running the detached socket's callback */
  /* Queued inside the callback: the new bridge sees it at its attach. */
  peer_publish_next (peer);
  peer->bridge = iops_mosquitto_attach (peer->mosq, move->other);
  g_assert_nonnull (peer->bridge);
}

/* The application detaches inside a callback the bridge is running and
 * attaches the client to another IOPS: the first one goes quiet at once,
 * the second carries the client on. */
static void
test_detach_in_callback (Fixture       *f,
                         gconstpointer  data)
{
  g_autoptr(IopsGLibIOPS) other = iops_glib_iops_new (f->base.context);
  Move move = { IOPS_IOPS (other) };
  Peer *peer = peer_new (f);

  iops_glib_iops_set_persistent (other, f->kind != KIND_PERSISTENT);
  peer->data = &move;
  peer->on_connect = subscribe_on_connect;
  peer->on_subscribe = publish_on_subscribe;
  peer->on_message = move_on_first_message;
  peer->n_expected = 2;
  peer_connect (peer, f->iops, f->broker->port, KEEPALIVE_S);

  /* Returns as soon as the detach disarmed everything of the first IOPS. */
  g_assert_true (run_until_quiet (f, f->iops, TEST_DEADLINE_MS));
  g_assert_cmpuint (peer->n_received, >=, 1);
  g_assert_true (run_until_quiet (f, move.other, TEST_DEADLINE_MS));
  g_assert_cmpuint (peer->n_received, ==, 2);
  g_assert_cmpuint (peer->n_disconnect, ==, 1);
  g_assert_cmpint (peer->disconnect_rc, ==, MOSQ_ERR_SUCCESS);
  assert_quiet (f);

  peer_free (peer);
  g_assert_finalize_object (g_steal_pointer (&other));
}

/* -- data libmosquitto could not write at once --------------------------------------- */

#define BULK_SIZE     65536
#define BULK_MAX      2048     /* 128 MiB: far beyond any socket buffer */

typedef struct
{
  int         fd;              /* the accepted end of the mute listener */
  guint64     n_bytes;
  GByteArray *tail;            /* the last BULK_SIZE bytes received */
  guint8     *last;            /* the payload of the last message */
  Peer       *peer;
} Sink;

static void
fill_bulk (guint   index,
           guint8 *buf)
{
  for (guint i = 0; i < BULK_SIZE; i++)
    buf[i] = (guint8) (index * 31 + i * 7 + (i >> 8));
}

/* The bytes of one QoS 0 PUBLISH of a BULK_SIZE payload on TOPIC: fixed
 * header, its remaining length (3 bytes), topic length, topic, payload. */
static guint64
bulk_packet_size (void)
{
  return 1 + 3 + 2 + strlen (TOPIC) + BULK_SIZE;
}

static void
sink_keep_tail (Sink         *sink,
                const guint8 *buf,
                gssize        n)
{
  g_byte_array_append (sink->tail, buf, n);
  if (sink->tail->len > BULK_SIZE)
    g_byte_array_remove_range (sink->tail, 0, sink->tail->len - BULK_SIZE);
}

static void
sink_read (TestIOEvent    *event,
           IopsEventFlags  ready,
           gpointer        data)
{
  Sink *sink = data;
  guint8 buf[65536];
  gssize n;

  while ((n = read (sink->fd, buf, sizeof buf)) > 0)
    {
      sink->n_bytes += n;
      sink_keep_tail (sink, buf, n);
    }
  g_assert_true (n < 0 && errno == EAGAIN);
  test_watch (sink->peer->f->iops, event, IOPS_READ_EVENT);
}

/* Everything written, and the stream ends with the last message. */
static gboolean
sink_complete (gpointer data)
{
  Sink *sink = data;

  return !mosquitto_want_write (sink->peer->mosq) &&
         sink->tail->len == BULK_SIZE &&
         memcmp (sink->tail->data, sink->last, BULK_SIZE) == 0;
}

/* libmosquitto reports a QoS 0 message once it has written all of it. */
static void
on_publish_written (struct mosquitto *mosq,
                    void             *data,
                    int               mid)
{
  ((Peer *) data)->n_acked++;
}

static gboolean
peer_flushed (gpointer data)
{
  return !mosquitto_want_write (((Peer *) data)->mosq);
}

/* Connects to a listener that never accepts (TCP completes, CONNACK never
 * comes), has CONNECT written, then publishes 64 KiB QoS 0 messages from
 * outside any callback until libmosquitto cannot write them at once.
 * Returns the listener and the number of messages in *@n_bulk. */
static int
fill_socket_outside_callbacks (Peer  *peer,
                               guint *n_bulk)
{
  g_autofree guint8 *buf = g_malloc (BULK_SIZE);
  guint16 port;
  int listener = bridge_mute_peer (SOCK_STREAM, &port);
  guint n = 0;

  mosquitto_publish_callback_set (peer->mosq, on_publish_written);
  peer_connect (peer, peer->f->iops, port, KEEPALIVE_S);
  g_assert_true (iterate_until (peer->f, peer_flushed, peer, TEST_DEADLINE_MS));

  while (!mosquitto_want_write (peer->mosq) && n < BULK_MAX)
    {
      fill_bulk (n, buf);
      g_assert_cmpint (mosquitto_publish (peer->mosq, NULL, TOPIC, BULK_SIZE, buf, 0, false),
                       ==, MOSQ_ERR_SUCCESS);
      n++;
    }
  g_assert_true (mosquitto_want_write (peer->mosq));
  *n_bulk = n;
  return listener;
}

/* Accepts the client's connection and reads everything it sends; the
 * client's socket then takes more data, and the bridge must write it. */
static void
drain_and_check (Peer *peer,
                 int   listener,
                 guint n_bulk)
{
  g_autofree guint8 *last = g_malloc (BULK_SIZE);
  g_autoptr(TestIOEvent) reader = NULL;
  Sink sink = { -1, 0, g_byte_array_new (), last, peer };
  guint64 connect_size;

  fill_bulk (n_bulk - 1, last);
  sink.fd = accept4 (listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
  g_assert_cmpint (sink.fd, >=, 0);
  reader = test_io_event_new (sink.fd);
  reader->hook = sink_read;
  reader->hook_data = &sink;
  test_watch (peer->f->iops, reader, IOPS_READ_EVENT);

  g_assert_true (iterate_until (peer->f, sink_complete, &sink, 3 * TEST_DEADLINE_MS));
  /* What came before the messages is the CONNECT packet: a few dozen bytes. */
  g_assert_cmpuint (sink.n_bytes, >, n_bulk * bulk_packet_size ());
  connect_size = sink.n_bytes - n_bulk * bulk_packet_size ();
  g_assert_cmpuint (connect_size, <, 256);
  g_assert_cmpuint (peer->n_acked, ==, n_bulk);

  test_cleanup (peer->f->iops, reader);
  g_byte_array_unref (sink.tail);
  close (sink.fd);
  close (listener);
}

static void
disconnect_outside (Peer *peer)
{
  g_assert_cmpint (mosquitto_disconnect (peer->mosq), ==, MOSQ_ERR_SUCCESS);
  g_assert_cmpuint (peer->n_disconnect, ==, 1);
  iops_mosquitto_update (peer->bridge);
  g_assert_true (run_until_quiet (peer->f, peer->f->iops, TEST_DEADLINE_MS));
}

/* Publishes from outside any callback leave data queued once the socket
 * is full, and nothing asked the IOPS to watch for write: without
 * iops_mosquitto_update() the bridge's once-a-second tick sees
 * mosquitto_want_write() and has the rest written. */
static void
test_tick_flushes (Fixture       *f,
                   gconstpointer  data)
{
  Peer *peer = peer_new (f);
  guint n_bulk;
  int listener = fill_socket_outside_callbacks (peer, &n_bulk);

  drain_and_check (peer, listener, n_bulk);
  disconnect_outside (peer);
  assert_quiet (f);
  peer_free (peer);
}

/* The same with iops_mosquitto_update(), on the mock, where what is armed
 * can be seen: before it, only READ; after it, READ and WRITE. */
static void
test_update_watches_write (Fixture       *f,
                           gconstpointer  data)
{
  Peer *peer = peer_new (f);
  guint n_bulk;
  int listener = fill_socket_outside_callbacks (peer, &n_bulk);
  gpointer socket_event = mock_iops_find (f->mock, g_type_from_name ("IopsMosquittoSocket"));
  gpointer tick = mock_iops_find (f->mock, g_type_from_name ("IopsMosquittoTick"));

  g_assert_nonnull (socket_event);
  g_assert_cmpint (mock_iops_get_fd (f->mock, socket_event), ==, mosquitto_socket (peer->mosq));
  g_assert_cmpint (mock_iops_get_flags (f->mock, socket_event), ==, IOPS_READ_EVENT);
  g_assert_true (mock_iops_timer_armed (f->mock, tick));
  iops_mosquitto_update (peer->bridge);
  g_assert_cmpint (mock_iops_get_flags (f->mock, socket_event), ==, IOPS_RW_EVENT);

  drain_and_check (peer, listener, n_bulk);
  g_assert_cmpint (mock_iops_get_flags (f->mock, socket_event), ==, IOPS_READ_EVENT);
  disconnect_outside (peer);
  g_assert_cmpint (mock_iops_get_flags (f->mock, socket_event), ==, 0);
  g_assert_false (mock_iops_timer_armed (f->mock, tick));
  peer_free (peer);
}

/* -- bad input ------------------------------------------------------------------------- */

static void
test_preconditions (Fixture       *f,
                    gconstpointer  data)
{
  g_autoptr(GObject) not_iops = g_object_new (G_TYPE_OBJECT, NULL);
  struct mosquitto *mosq = mosquitto_new (NULL, true, NULL);
  IopsMosquitto *bridge;

  g_test_expect_message ("IopsMosquitto", G_LOG_LEVEL_CRITICAL, "*mosq != NULL*");
  g_assert_null (iops_mosquitto_attach (NULL, f->iops));
  g_test_expect_message ("IopsMosquitto", G_LOG_LEVEL_CRITICAL, "*IOPS_IS_IOPS*");
  g_assert_null (iops_mosquitto_attach (mosq, NULL));
  g_test_expect_message ("IopsMosquitto", G_LOG_LEVEL_CRITICAL, "*IOPS_IS_IOPS*");
  g_assert_null (iops_mosquitto_attach (mosq, (IopsIOPS *) not_iops));
  g_test_expect_message ("IopsMosquitto", G_LOG_LEVEL_CRITICAL, "*self != NULL*");
  iops_mosquitto_update (NULL);
  g_test_expect_message ("IopsMosquitto", G_LOG_LEVEL_CRITICAL, "*self != NULL*");
  iops_mosquitto_detach (NULL);
  g_test_assert_expected_messages ();

  /* A client with no socket: attached, nothing armed. */
  bridge = iops_mosquitto_attach (mosq, f->iops);
  g_assert_nonnull (bridge);
  g_assert_true (run_until_quiet (f, f->iops, TEST_DEADLINE_MS));
  g_test_expect_message ("IopsMosquitto", G_LOG_LEVEL_CRITICAL, "*attached already*");
  g_assert_null (iops_mosquitto_attach (mosq, f->iops));
  g_test_assert_expected_messages ();
  iops_mosquitto_detach (bridge);

  /* Detached, it may be attached again. */
  bridge = iops_mosquitto_attach (mosq, f->iops);
  g_assert_nonnull (bridge);
  iops_mosquitto_detach (bridge);
  mosquitto_destroy (mosq);
}

/* -- the example -------------------------------------------------------------------------- */

static void
test_example (Fixture       *f,
              gconstpointer  data)
{
  const char *example = g_getenv ("IOPS_EXAMPLE_MOSQUITTO");
  g_autofree char *port = NULL;
  g_autofree char *out = NULL;
  g_autoptr(GError) error = NULL;
  int status;

  if (example == NULL)
    {
      g_test_skip ("IOPS_EXAMPLE_MOSQUITTO names no example program");
      return;
    }
  port = g_strdup_printf ("%u", f->broker->port);
  {
    const char *argv[] = { example, "--port", port, "--count", "200", NULL };

    g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL,
                  &out, NULL, &status, &error);
  }
  g_assert_no_error (error);
  if (!g_spawn_check_wait_status (status, NULL))
    g_test_message ("%s", out);
  g_assert_true (g_spawn_check_wait_status (status, NULL));
  g_assert_nonnull (strstr (out, "200 of 200 messages came back in order"));
}

/* -- keepalive against a mute peer ------------------------------------------------------- */

#define KEEPALIVE_MUTE_S 5   /* libmosquitto's smallest keepalive */

static gboolean
both_disconnected (gpointer data)
{
  Peer **peers = data;

  return peers[0]->n_disconnect > 0 && peers[1]->n_disconnect > 0;
}

/* A listener that completes the TCP handshake and then says nothing: the
 * CONNACK never comes, and libmosquitto's keepalive, run by the bridge's
 * tick on the IOPS timer, gives up — not before the whole second
 * libmosquitto's clock says it is due. Both watch modes at once, on two
 * IOPS sharing one context, to spend the 5 s once. */
static void
test_keepalive (TestFixture   *f,
                gconstpointer  data)
{
  g_autoptr(IopsGLibIOPS) persistent = iops_glib_iops_new (f->context);
  Fixture view[2] = { { .iops = f->iops }, { .iops = IOPS_IOPS (persistent) } };
  Peer *peers[2];
  gint64 due[2];
  guint16 port;
  int listener = bridge_mute_peer (SOCK_STREAM, &port);

  iops_glib_iops_set_persistent (persistent, TRUE);
  for (int i = 0; i < 2; i++)
    {
      view[i].base = *f;
      peers[i] = peer_new (&view[i]);
      due[i] = (monotonic_usecs () / G_USEC_PER_SEC + KEEPALIVE_MUTE_S) * G_USEC_PER_SEC;
      peer_connect (peers[i], view[i].iops, port, KEEPALIVE_MUTE_S);
    }

  g_assert_true (iterate_until (&view[0], both_disconnected, peers,
                                (KEEPALIVE_MUTE_S + 3) * 1000));
  for (int i = 0; i < 2; i++)
    {
      g_assert_cmpuint (peers[i]->n_connect, ==, 0);
      g_assert_cmpuint (peers[i]->n_disconnect, ==, 1);
      g_assert_cmpint (peers[i]->disconnect_rc, ==, MOSQ_ERR_KEEPALIVE);
      g_assert_cmpint (peers[i]->disconnected_at, >=, due[i]);
      g_test_message ("%s: disconnected %.3f s after the second it was due",
                      kind_names[i], (peers[i]->disconnected_at - due[i]) / 1e6);
    }
  g_assert_cmpuint (bridge_count_dispatches (f->context, 200), ==, 0);
  g_assert_true (run_until_quiet (&view[0], view[0].iops, 1000));
  g_assert_true (run_until_quiet (&view[1], view[1].iops, 1000));

  for (int i = 0; i < 2; i++)
    peer_free (peers[i]);
  close (listener);
  g_assert_finalize_object (g_steal_pointer (&persistent));
  assert_bridge_events (0);
}

/* -- main ------------------------------------------------------------------------------------ */

static void
add_test (const char    *name,
          IopsKind       kind,
          void         (*func) (Fixture *, gconstpointer))
{
  g_autofree char *path = g_strdup_printf ("/iops/bridge/mosquitto/%s/%s", kind_names[kind], name);

  g_test_add (path, Fixture, GINT_TO_POINTER (kind), fixture_setup, func, fixture_teardown);
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);
  mosquitto_lib_init ();
  count_bridge_events ();

  for (IopsKind kind = KIND_ONESHOT; kind <= KIND_MOCK; kind++)
    {
      add_test ("qos1-in-order", kind, test_qos1_in_order);
      add_test ("server-killed", kind, test_server_killed);
      add_test ("refused", kind, test_refused);
      add_test ("disconnect-outside", kind, test_disconnect_outside);
      add_test ("reconnect", kind, test_reconnect);
    }
  add_test ("detach-in-callback", KIND_ONESHOT, test_detach_in_callback);
  add_test ("detach-in-callback", KIND_PERSISTENT, test_detach_in_callback);
  add_test ("tick-flushes-outside-publish", KIND_ONESHOT, test_tick_flushes);
  add_test ("tick-flushes-outside-publish", KIND_PERSISTENT, test_tick_flushes);
  add_test ("update-watches-write", KIND_MOCK, test_update_watches_write);
  g_test_add ("/iops/bridge/mosquitto/preconditions", Fixture, GINT_TO_POINTER (KIND_ONESHOT),
              fixture_setup, test_preconditions, fixture_teardown);
  g_test_add ("/iops/bridge/mosquitto/example", Fixture, GINT_TO_POINTER (KIND_ONESHOT),
              fixture_setup, test_example, fixture_teardown);
  g_test_add ("/iops/bridge/mosquitto/keepalive", TestFixture, NULL,
              test_fixture_setup, test_keepalive, test_fixture_teardown_quiet);

  {
    int rc = g_test_run ();

    mosquitto_lib_cleanup ();
    return rc;
  }
}

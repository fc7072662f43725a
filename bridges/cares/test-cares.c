/* test-cares.c — the c-ares bridge against a real dnsmasq
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Every test starts its own dnsmasq on 127.0.0.1 and an unused port with
 * a generated hosts file (or a mute peer that never answers), attaches a
 * channel to the fixture's IOPS and drives the loop until the work is
 * done, with a deadline. Each test runs in three modes: IopsGLibIOPS
 * one-shot, IopsGLibIOPS persistent, and through a relay — a second
 * IopsIOPS implementation that forwards to the first and tracks every
 * event it is given (common/relay-iops.h), to check that each one is
 * finalized once detached.
 */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <iops-cares.h>

#include "bridge-test-util.h"
#include "relay-iops.h"

/* Generous: the lookups of a test take well under a second without
 * valgrind; this only bounds a broken run. */
#define RUN_DEADLINE_MS 60000

#define N_NAMES 200

/* -- the names dnsmasq serves --------------------------------------------- */

/* Name i has 0, 1 or 2 A records and 0, 1 or 2 AAAA records, in
 * loopback and documentation ranges (they are answers, never contacted). */
static guint
n_a_of (guint i)
{
  return i % 10 == 9 ? 0 : (i % 3 == 0 ? 2 : 1);
}

static guint
n_aaaa_of (guint i)
{
  return (i % 2 == 0 || i % 10 == 9) ? (i % 4 == 0 ? 2 : 1) : 0;
}

static char *
name_of (guint i)
{
  return g_strdup_printf ("h%03u.iops.test", i);
}

static char *
a_of (guint i,
      guint k)
{
  return g_strdup_printf ("127.%u.%u.%u", 1 + k, i / 250, i % 250 + 1);
}

static char *
aaaa_of (guint i,
         guint k)
{
  return g_strdup_printf ("2001:db8::%x:%x", 1 + k, i + 1);
}

static gint
compare_text (gconstpointer a,
              gconstpointer b)
{
  return g_strcmp0 (*(const char *const *) a, *(const char *const *) b);
}

/* The sorted addresses a lookup of name @i for @family must return. */
static GPtrArray *
expected_addresses (guint i,
                    int   family)
{
  GPtrArray *out = g_ptr_array_new_with_free_func (g_free);

  if (family != AF_INET6)
    for (guint k = 0; k < n_a_of (i); k++)
      g_ptr_array_add (out, a_of (i, k));
  if (family != AF_INET)
    for (guint k = 0; k < n_aaaa_of (i); k++)
      g_ptr_array_add (out, aaaa_of (i, k));
  g_ptr_array_sort (out, compare_text);
  return out;
}

static void
write_hosts (const char *path)
{
  g_autoptr(GString) text = g_string_new (NULL);
  g_autoptr(GError) error = NULL;

  for (guint i = 0; i < N_NAMES; i++)
    {
      g_autofree char *name = name_of (i);

      for (guint k = 0; k < n_a_of (i); k++)
        {
          g_autofree char *addr = a_of (i, k);
          g_string_append_printf (text, "%s %s\n", addr, name);
        }
      for (guint k = 0; k < n_aaaa_of (i); k++)
        {
          g_autofree char *addr = aaaa_of (i, k);
          g_string_append_printf (text, "%s %s\n", addr, name);
        }
    }
  g_file_set_contents (path, text->str, text->len, &error);
  g_assert_no_error (error);
}

/* -- the fixture ----------------------------------------------------------- */

typedef struct
{
  gboolean persistent;
  gboolean relay;
  gboolean tcp;
} Mode;

typedef struct _CaresFixture CaresFixture;

typedef struct
{
  CaresFixture *f;
  guint         name;
  int           family;
  guint         n_calls;
  int           status;
  int           timeouts;
  gboolean      after_kill;   /* started once the server was gone */
  gboolean      ended_after_kill;
  GPtrArray    *addresses;    /* sorted text */
} Lookup;

struct _CaresFixture
{
  TestFixture   t;
  const Mode   *mode;
  IopsIOPS     *iops;         /* what the bridge runs on: t.iops or relay */
  RelayIOPS    *relay;
  char         *dir;
  char         *hosts;
  BridgeServer *server;
  guint16       port;
  IopsCares    *cares;
  GHashTable   *open_fds;               /* seen by our own sock_state_cb */
  guint         n_closed;
  GPtrArray    *lookups;                /* Lookup, owned */
  guint         n_done;
  guint         n_total;                /* to start, in a window of … */
  guint         window;
  guint         kill_after;             /* kill the server after so many answers */
  gboolean      killed;
  void        (*on_done) (CaresFixture *f, Lookup *lookup);
  gboolean      deadline_hit;
};

static void
lookup_free (gpointer data)
{
  Lookup *lookup = data;

  g_clear_pointer (&lookup->addresses, g_ptr_array_unref);
  g_free (lookup);
}

static void
fixture_setup (CaresFixture  *f,
               gconstpointer  data)
{
  g_autoptr(GError) error = NULL;

  f->mode = data;
  test_fixture_setup (&f->t, NULL);
  iops_glib_iops_set_persistent (f->t.glib_iops, f->mode->persistent);
  f->iops = f->t.iops;
  if (f->mode->relay)
    {
      f->relay = relay_iops_new (f->t.iops);
      f->iops = IOPS_IOPS (f->relay);
    }
  f->dir = g_dir_make_tmp ("iops-cares-XXXXXX", &error);
  g_assert_no_error (error);
  f->hosts = g_build_filename (f->dir, "hosts", NULL);
  write_hosts (f->hosts);
  f->lookups = g_ptr_array_new_with_free_func (lookup_free);
  f->open_fds = g_hash_table_new (NULL, NULL);
}

static void
fixture_teardown (CaresFixture  *f,
                  gconstpointer  data)
{
  g_clear_pointer (&f->cares, iops_cares_detach);
  if (f->relay != NULL)
    {
      /* Every event the bridge ever gave the IOPS is gone with it. */
      g_assert_cmpuint (relay_iops_n_alive (f->relay), ==, 0);
      g_assert_finalize_object (g_steal_pointer (&f->relay));
    }
  /* c-ares closed every socket it opened: the detach (or the end of its
   * queries) reported each of them, through the bridge, to our callback. */
  g_assert_cmpuint (g_hash_table_size (f->open_fds), ==, 0);
  g_hash_table_unref (f->open_fds);
  g_clear_pointer (&f->server, bridge_server_stop);
  g_ptr_array_unref (f->lookups);
  g_assert_cmpint (g_remove (f->hosts), ==, 0);
  g_assert_cmpint (g_rmdir (f->dir), ==, 0);
  g_free (f->hosts);
  g_free (f->dir);
  test_fixture_teardown_quiet (&f->t, NULL);
}

static BridgeServer *
try_dnsmasq (const char  *hosts_path,
             guint16      port,
             GError     **error)
{
  g_autofree char *hosts = g_strdup_printf ("--addn-hosts=%s", hosts_path);
  g_autofree char *port_arg = g_strdup_printf ("--port=%u", port);
  g_autofree char *ready = g_strdup_printf ("read %s", hosts_path);
  /* --no-daemon: in the foreground, no pid file, no change of user, and
   * TCP served in the one process, so that killing it ends everything. */
  const char *argv[] = {
    DNSMASQ_PATH, "--no-daemon", "--conf-file=/dev/null", "--no-hosts", hosts,
    "--no-resolv", "--local=/iops.test/", "--listen-address=127.0.0.1",
    "--bind-interfaces", port_arg,
    "--log-facility=-", NULL
  };

  return bridge_server_start (argv, ready, error);
}

static void
start_dnsmasq (CaresFixture *f)
{
  g_autoptr(GError) error = NULL;

  /* Another process (a c-ares client socket of a parallel test, say) may
   * take the port between our check and dnsmasq's bind: try another. */
  for (guint attempt = 0; attempt < 5 && f->server == NULL; attempt++)
    {
      g_clear_error (&error);
      f->port = bridge_unused_port_tcp_udp ();  /* dnsmasq binds both */
      f->server = try_dnsmasq (f->hosts, f->port, &error);
    }
  g_assert_no_error (error);
}

static void
on_sock_state (void          *data,
               ares_socket_t  fd,
               int            readable,
               int            writable)
{
  CaresFixture *f = data;

  if (readable || writable)
    g_hash_table_add (f->open_fds, GINT_TO_POINTER (fd));
  else if (g_hash_table_remove (f->open_fds, GINT_TO_POINTER (fd)))
    f->n_closed++;
}

static void
attach_to (CaresFixture *f,
           guint16       port,
           int           timeout_ms,
           int           tries,
           int           extra_flags)
{
  struct ares_options options = { 0 };
  g_autoptr(GError) error = NULL;
  g_autofree char *server = g_strdup_printf ("127.0.0.1:%u", port);

  options.flags = ARES_FLAG_NOSEARCH | (f->mode->tcp ? ARES_FLAG_USEVC : 0) | extra_flags;
  options.timeout = timeout_ms;
  options.tries = tries;
  options.lookups = (char *) "b";
  options.socket_receive_buffer_size = 1 << 20;
  options.sock_state_cb = on_sock_state;
  options.sock_state_cb_data = f;
  f->cares = iops_cares_attach (f->iops, &options,
                                ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES |
                                ARES_OPT_LOOKUPS | ARES_OPT_SOCK_RCVBUF | ARES_OPT_SOCK_STATE_CB,
                                &error);
  g_assert_no_error (error);
  g_assert_nonnull (f->cares);
  g_assert_cmpint (ares_set_servers_ports_csv (iops_cares_get_channel (f->cares), server), ==, ARES_SUCCESS);
}

static gboolean
stop_on_deadline (gpointer data)
{
  CaresFixture *f = data;

  f->deadline_hit = TRUE;
  iops_iops_stop_watching (f->iops);
  return G_SOURCE_REMOVE;
}

/* Runs start_watching (); TRUE when it returned by itself — nothing was
 * armed any more — before the deadline. */
static gboolean
run_until_idle (CaresFixture *f)
{
  GSource *deadline = g_timeout_source_new (RUN_DEADLINE_MS);

  f->deadline_hit = FALSE;
  g_source_set_callback (deadline, stop_on_deadline, f, NULL);
  g_source_attach (deadline, f->t.context);
  iops_iops_start_watching (f->iops);
  g_source_destroy (deadline);
  g_source_unref (deadline);
  return !f->deadline_hit;
}

/* Nothing dispatched for @ms: nothing armed, nothing spinning. */
static void
assert_quiet_for (CaresFixture *f,
                  guint         ms)
{
  g_assert_cmpuint (bridge_count_dispatches (f->t.context, ms), ==, 0);
}

static void
assert_quiet (CaresFixture *f)
{
  assert_quiet_for (f, 50);
}

/* -- lookups ---------------------------------------------------------------- */

static GPtrArray *
addresses_of (const struct ares_addrinfo *result)
{
  GPtrArray *out = g_ptr_array_new_with_free_func (g_free);

  for (const struct ares_addrinfo_node *n = result ? result->nodes : NULL; n != NULL; n = n->ai_next)
    {
      union { struct sockaddr_in v4; struct sockaddr_in6 v6; } sa = { 0 };
      char text[INET6_ADDRSTRLEN];

      memcpy (&sa, n->ai_addr, MIN ((size_t) n->ai_addrlen, sizeof sa));
      g_assert_nonnull (inet_ntop (n->ai_family,
                                   n->ai_family == AF_INET ? (const void *) &sa.v4.sin_addr
                                                           : (const void *) &sa.v6.sin6_addr,
                                   text, sizeof text));
      g_ptr_array_add (out, g_strdup (text));
    }
  g_ptr_array_sort (out, compare_text);
  return out;
}

static void start_lookup (CaresFixture *f, guint name, int family);

static void
start_more (CaresFixture *f)
{
  static const int families[] = { AF_UNSPEC, AF_INET, AF_INET6 };

  while (f->lookups->len < f->n_total && f->lookups->len - f->n_done < f->window)
    {
      guint k = f->lookups->len;

      start_lookup (f, k % N_NAMES, families[(k / N_NAMES) % G_N_ELEMENTS (families)]);
    }
}

static void
on_addrinfo (void                 *arg,
             int                   status,
             int                   timeouts,
             struct ares_addrinfo *result)
{
  Lookup *lookup = arg;
  CaresFixture *f = lookup->f;

  lookup->n_calls++;
  lookup->status = status;
  lookup->timeouts = timeouts;
  g_clear_pointer (&lookup->addresses, g_ptr_array_unref);
  lookup->addresses = addresses_of (result);
  lookup->ended_after_kill = f->killed;
  ares_freeaddrinfo (result);
  f->n_done++;

  if (f->kill_after != 0 && f->n_done == f->kill_after && !f->killed)
    {
      bridge_server_kill (f->server);
      f->killed = TRUE;
    }
  if (f->on_done != NULL)
    f->on_done (f, lookup);
  if (status != ARES_EDESTRUCTION)
    start_more (f);
}

static void
start_lookup (CaresFixture *f,
              guint         name,
              int           family)
{
  struct ares_addrinfo_hints hints = { .ai_family = family, .ai_flags = ARES_AI_NOSORT };
  g_autofree char *text = name_of (name);
  Lookup *lookup = g_new0 (Lookup, 1);

  lookup->f = f;
  lookup->name = name;
  lookup->family = family;
  lookup->status = -1;
  lookup->after_kill = f->killed;
  g_ptr_array_add (f->lookups, lookup);
  ares_getaddrinfo (iops_cares_get_channel (f->cares), text, NULL, &hints, on_addrinfo, lookup);
}

static void
assert_addresses (const Lookup *lookup)
{
  g_autoptr(GPtrArray) want = expected_addresses (lookup->name, lookup->family);

  if (want->len == 0)
    {
      g_assert_cmpint (lookup->status, ==, ARES_ENODATA);
      return;
    }
  g_assert_cmpint (lookup->status, ==, ARES_SUCCESS);
  g_assert_cmpuint (lookup->addresses->len, ==, want->len);
  for (guint i = 0; i < want->len; i++)
    g_assert_cmpstr (g_ptr_array_index (lookup->addresses, i), ==, g_ptr_array_index (want, i));
}

/* An A+AAAA lookup whose one query failed (the server went away, the
 * channel was destroyed) still succeeds with the other's addresses. */
static void
assert_some_addresses (const Lookup *lookup)
{
  g_autoptr(GPtrArray) want = expected_addresses (lookup->name, lookup->family);

  g_assert_cmpint (lookup->status, ==, ARES_SUCCESS);
  g_assert_cmpuint (lookup->addresses->len, >, 0);
  for (guint i = 0; i < lookup->addresses->len; i++)
    g_assert_true (g_ptr_array_find_with_equal_func (want, g_ptr_array_index (lookup->addresses, i),
                                                     g_str_equal, NULL));
  if (lookup->family != AF_UNSPEC)
    assert_addresses (lookup);
}

static void
assert_every_lookup_answered (CaresFixture *f)
{

  g_assert_cmpuint (f->lookups->len, ==, f->n_total);
  g_assert_cmpuint (f->n_done, ==, f->n_total);
  for (guint i = 0; i < f->lookups->len; i++)
    {
      Lookup *lookup = g_ptr_array_index (f->lookups, i);

      g_assert_cmpuint (lookup->n_calls, ==, 1);
      assert_addresses (lookup);
    }
}

/* Hundreds of lookups in flight at once (each of A+AAAA, A, AAAA for every
 * name), every address checked; start_watching returns by itself once the
 * last answer is in, and c-ares has closed every socket. */
static void
test_lookups_many (CaresFixture  *f,
                   gconstpointer  data)
{
  start_dnsmasq (f);
  /* dnsmasq's socket buffer holds some 200 queries: with more at once
   * UDP drops a few, which c-ares sends again after its timeout. */
  attach_to (f, f->port, 100, 5, 0);
  /* Over UDP: A+AAAA, A and AAAA of every name, 200 at a time. dnsmasq
   * closes a TCP connection after 100 queries, and c-ares 1.18 counts each
   * query in flight then as a failed try: over TCP, 10 at a time. */
  f->n_total = f->mode->tcp ? N_NAMES / 2 : 3 * N_NAMES;
  f->window = f->mode->tcp ? 10 : 200;
  start_more (f);
  g_assert_cmpuint (f->lookups->len - f->n_done, ==, f->window);

  g_assert_true (run_until_idle (f));
  assert_every_lookup_answered (f);
  g_assert_cmpuint (f->n_closed, >=, 1);

  /* The channel is still usable: one more round on fresh sockets. */
  f->n_total += f->mode->tcp ? 10 : N_NAMES;
  start_more (f);
  g_assert_true (run_until_idle (f));
  assert_every_lookup_answered (f);
  assert_quiet (f);
}

/* The server is killed with lookups in flight: every lookup ends once,
 * with its addresses or an error, the ones started after the kill with an
 * error; start_watching returns by itself and the loop goes quiet. */
static void
test_server_killed (CaresFixture  *f,
                    gconstpointer  data)
{
  guint n_ok = 0, n_failed = 0;

  start_dnsmasq (f);
  /* Linux rate-limits the ICMP errors that tell c-ares at once that
   * nothing listens any more: most tries end with a timeout. */
  attach_to (f, f->port, 100, 3, 0);
  f->n_total = 2 * N_NAMES;
  f->window = f->mode->tcp ? 10 : 200;
  f->kill_after = 100;
  start_more (f);

  g_assert_true (run_until_idle (f));
  g_assert_true (f->killed);
  g_assert_cmpuint (f->n_done, ==, f->n_total);
  for (guint i = 0; i < f->lookups->len; i++)
    {
      Lookup *lookup = g_ptr_array_index (f->lookups, i);

      g_assert_cmpuint (lookup->n_calls, ==, 1);
      if (lookup->status == ARES_SUCCESS || lookup->status == ARES_ENODATA)
        {
          g_assert_false (lookup->after_kill);
          if (lookup->ended_after_kill && lookup->status == ARES_SUCCESS)
            assert_some_addresses (lookup);
          else
            assert_addresses (lookup);
          n_ok++;
        }
      else
        {
          g_assert_true (lookup->status == ARES_ECONNREFUSED || lookup->status == ARES_ETIMEOUT);
          n_failed++;
        }
    }
  g_assert_cmpuint (n_ok, >=, f->kill_after);
  g_assert_cmpuint (n_failed, >=, f->n_total - f->kill_after - f->window);
  assert_quiet_for (f, 200);
}

/* -- timeouts --------------------------------------------------------------- */

typedef struct
{
  gboolean done;
  int      status;
  int      timeouts;
  gint64   ended_at;
} Query;

static void
on_query (void          *arg,
          int            status,
          int            timeouts,
          unsigned char *abuf,
          int            alen)
{
  Query *query = arg;

  g_assert_false (query->done);
  query->done = TRUE;
  query->status = status;
  query->timeouts = timeouts;
  query->ended_at = g_get_monotonic_time ();
}

/* Iterates until @query is done, counting the iterations that dispatched
 * something. */
static guint
iterate_until_done (CaresFixture *f,
                    Query        *query)
{
  gboolean expired = FALSE;
  GSource *deadline = g_timeout_source_new (RUN_DEADLINE_MS);
  guint n = 0;

  g_source_set_callback (deadline, test_set_flag, &expired, NULL);
  g_source_attach (deadline, f->t.context);
  while (!query->done && !expired)
    if (g_main_context_iteration (f->t.context, TRUE))
      n++;
  g_source_destroy (deadline);
  g_source_unref (deadline);
  g_assert_true (query->done);
  return n;
}

/* A server that never answers: c-ares's own timeout, through the IOPS
 * timer, ends the query — not early, and with a few wakeups per deadline
 * instead of a spin while ares_timeout () says 0 ms. */
static void
test_timeout_mute (CaresFixture  *f,
                   gconstpointer  data)
{
  const int timeout_ms = 20, tries = 3;
  guint16 port;
  int mute = bridge_mute_peer (f->mode->tcp ? SOCK_STREAM : SOCK_DGRAM, &port);
  Query query = { 0 };
  gint64 started;
  guint n_dispatch, most;
  /* UDP tries 20, 40 and 80 ms; on TCP c-ares gives up after the first
   * timeout, as it will not resend on the same connection. */
  int want_timeouts = f->mode->tcp ? 1 : tries;
  int want_ms = f->mode->tcp ? timeout_ms : timeout_ms * 7;

  attach_to (f, port, timeout_ms, tries, 0);
  started = g_get_monotonic_time ();
  ares_query (iops_cares_get_channel (f->cares), "mute.iops.test", ns_c_in, ns_t_a, on_query, &query);
  n_dispatch = iterate_until_done (f, &query);

  g_assert_cmpint (query.status, ==, ARES_ETIMEOUT);
  g_assert_cmpint (query.timeouts, ==, want_timeouts);
  g_assert_cmpint (query.ended_at - started, >=, want_ms * G_TIME_SPAN_MILLISECOND);
  /* The bridge's timer never looks further ahead than one first-try
   * timeout: one wakeup per 20 ms here, 7 over UDP's three tries (20 +
   * 40 + 80 ms), and on TCP one more when the connection is writable. A
   * naive glue wakes up hundreds of times in the last millisecond of
   * each deadline. */
  most = f->mode->tcp ? 2 : (1u << tries) - 1;
  g_test_message ("%u dispatching iterations for %d deadlines", n_dispatch, want_timeouts);
  g_assert_cmpuint (n_dispatch, <=, most);
  g_assert_cmpuint (n_dispatch, >=, (guint) want_timeouts);

  g_assert_true (run_until_idle (f));
  assert_quiet (f);
  close (mute);
}

/* -- detach ----------------------------------------------------------------- */

static void
detach_again_on_destruction (CaresFixture *f,
                             Lookup       *lookup)
{
  /* From inside ares_destroy (): does nothing more, and a loop nested
   * here delivers nothing of the channel. */
  if (lookup->status == ARES_EDESTRUCTION)
    {
      iops_cares_detach (f->cares);
      while (g_main_context_iteration (f->t.context, FALSE))
        ;
    }
}

/* Detaching with lookups pending ends them with ARES_EDESTRUCTION inside
 * the call, and leaves nothing armed and no event alive. */
static void
test_detach_pending (CaresFixture  *f,
                     gconstpointer  data)
{
  guint16 port;
  int mute = bridge_mute_peer (f->mode->tcp ? SOCK_STREAM : SOCK_DGRAM, &port);

  attach_to (f, port, 5000, 1, 0);
  f->n_total = 20;
  f->window = 20;
  f->on_done = detach_again_on_destruction;
  start_more (f);
  /* Let the bridge read the deadline and, on TCP, connect and write. */
  while (g_main_context_iteration (f->t.context, FALSE))
    ;
  g_assert_cmpuint (f->n_done, ==, 0);

  iops_cares_detach (g_steal_pointer (&f->cares));
  g_assert_cmpuint (f->n_done, ==, f->n_total);
  for (guint i = 0; i < f->lookups->len; i++)
    {
      Lookup *lookup = g_ptr_array_index (f->lookups, i);

      g_assert_cmpuint (lookup->n_calls, ==, 1);
      g_assert_cmpint (lookup->status, ==, ARES_EDESTRUCTION);
    }
  g_assert_cmpuint (f->n_closed, >=, 1);
  if (f->relay != NULL)
    g_assert_cmpuint (relay_iops_n_alive (f->relay), ==, 0);
  g_assert_true (run_until_idle (f));
  assert_quiet (f);
  close (mute);
}

static void
detach_on_tenth (CaresFixture *f,
                 Lookup       *lookup)
{
  if (f->n_done == 10)
    {
      iops_cares_detach (g_steal_pointer (&f->cares));
      f->n_total = f->lookups->len;   /* start no more */
    }
}

/* Detaching from a query's callback: done once c-ares returns; the
 * remaining lookups end with their answer or ARES_EDESTRUCTION, once. */
static void
test_detach_in_callback (CaresFixture  *f,
                         gconstpointer  data)
{
  start_dnsmasq (f);
  attach_to (f, f->port, 1000, 3, 0);
  f->n_total = 100;
  f->window = 100;
  f->on_done = detach_on_tenth;
  start_more (f);

  g_assert_true (run_until_idle (f));
  g_assert_null (f->cares);
  g_assert_cmpuint (f->n_done, ==, 100);
  for (guint i = 0; i < f->lookups->len; i++)
    {
      Lookup *lookup = g_ptr_array_index (f->lookups, i);

      g_assert_cmpuint (lookup->n_calls, ==, 1);
      if (lookup->status == ARES_SUCCESS)
        assert_some_addresses (lookup);
      else if (lookup->status != ARES_EDESTRUCTION)
        assert_addresses (lookup);
    }
  if (f->relay != NULL)
    g_assert_cmpuint (relay_iops_n_alive (f->relay), ==, 0);
  assert_quiet (f);
}

/* -- a loop nested in a callback --------------------------------------------- */

static void
iterate_nested (CaresFixture *f,
                Lookup       *lookup)
{
  guint done_before = f->n_done;
  guint unwatched = f->relay != NULL ? relay_iops_get_counts (f->relay)->n_unwatches : 0;
  guint n;

  if (done_before != 1)
    return;
  /* c-ares is running (this is its callback): whatever the IOPS delivers
   * now waits, and a persistent watch is not allowed to spin meanwhile. */
  n = bridge_count_dispatches (f->t.context, 30);
  g_test_message ("%u dispatching iterations in the nested loop", n);
  g_assert_cmpuint (n, <=, 3);
  g_assert_cmpuint (f->n_done, ==, done_before);
  /* The other answers arrived meanwhile: the persistent watch delivered
   * them once, and the bridge unwatched the socket until c-ares returns. */
  if (f->relay != NULL && f->mode->persistent)
    g_assert_cmpuint (relay_iops_get_counts (f->relay)->n_unwatches, >, unwatched);
}

static void
test_nested_loop (CaresFixture  *f,
                  gconstpointer  data)
{
  start_dnsmasq (f);
  attach_to (f, f->port, 1000, 3, 0);
  f->n_total = N_NAMES;
  f->window = 50;
  f->on_done = iterate_nested;
  start_more (f);

  g_assert_true (run_until_idle (f));
  assert_every_lookup_answered (f);
  assert_quiet (f);
}

/* -- ARES_FLAG_STAYOPEN ----------------------------------------------------- */

/* With STAYOPEN the socket outlives the queries, so c-ares says nothing
 * when the next one starts on it; the bridge's timer, which never looks
 * further ahead than one timeout while a socket is open, still fires its
 * timeout in time — and wakes up once per timeout while idle. */
static void
test_stayopen (CaresFixture  *f,
               gconstpointer  data)
{
  const int timeout_ms = 20;
  guint16 port;
  int mute = bridge_mute_peer (SOCK_DGRAM, &port);
  Query first = { 0 }, second = { 0 };
  gint64 started;
  guint n;

  attach_to (f, port, timeout_ms, 1, ARES_FLAG_STAYOPEN);
  ares_query (iops_cares_get_channel (f->cares), "first.iops.test", ns_c_in, ns_t_a, on_query, &first);
  iterate_until_done (f, &first);
  g_assert_cmpint (first.status, ==, ARES_ETIMEOUT);
  g_assert_cmpuint (f->n_closed, ==, 0);

  /* Idle with the socket open: a wakeup per timeout, not a spin. */
  n = bridge_count_dispatches (f->t.context, 100);
  g_assert_cmpuint (n, <=, 100 / timeout_ms + 1);

  started = g_get_monotonic_time ();
  ares_query (iops_cares_get_channel (f->cares), "second.iops.test", ns_c_in, ns_t_a, on_query, &second);
  iterate_until_done (f, &second);
  g_assert_cmpint (second.status, ==, ARES_ETIMEOUT);
  g_assert_cmpint (second.timeouts, ==, 1);
  g_assert_cmpint (second.ended_at - started, >=, timeout_ms * G_TIME_SPAN_MILLISECOND);

  g_clear_pointer (&f->cares, iops_cares_detach);
  g_assert_cmpuint (f->n_closed, ==, 1);
  g_assert_true (run_until_idle (f));
  assert_quiet (f);
  close (mute);
}

/* -- bad input and failures --------------------------------------------------- */

static void
test_bad_input (CaresFixture  *f,
                gconstpointer  data)
{
  struct ares_options options = { 0 };

  g_test_expect_message ("IopsCares", G_LOG_LEVEL_CRITICAL, "*IOPS_IS_IOPS*");
  g_assert_null (iops_cares_attach (NULL, NULL, 0, NULL));
  g_test_assert_expected_messages ();

  g_test_expect_message ("IopsCares", G_LOG_LEVEL_CRITICAL, "*IOPS_IS_IOPS*");
  g_assert_null (iops_cares_attach ((IopsIOPS *) f->t.context, NULL, 0, NULL));
  g_test_assert_expected_messages ();

  g_test_expect_message ("IopsCares", G_LOG_LEVEL_CRITICAL, "*options != NULL*");
  g_assert_null (iops_cares_attach (f->iops, NULL, ARES_OPT_TIMEOUTMS, NULL));
  g_test_assert_expected_messages ();

  g_test_expect_message ("IopsCares", G_LOG_LEVEL_CRITICAL, "*self != NULL*");
  g_assert_null (iops_cares_get_channel (NULL));
  g_test_assert_expected_messages ();

  /* Harmless, as for g_clear_pointer (). */
  iops_cares_detach (NULL);

  /* A valid attach without options works and detaches cleanly. */
  f->cares = iops_cares_attach (f->iops, &options, 0, NULL);
  g_assert_nonnull (f->cares);
  g_assert_nonnull (iops_cares_get_channel (f->cares));
  g_clear_pointer (&f->cares, iops_cares_detach);
}

static void *
failing_malloc (size_t size)
{
  return NULL;
}

/* c-ares cannot create the channel: a GError with its status, and the
 * IOPS released. */
static void
test_init_fails (CaresFixture  *f,
                 gconstpointer  data)
{
  g_autoptr(GError) error = NULL;

  if (g_test_subprocess ())
    {
      g_assert_cmpint (ares_library_init_mem (ARES_LIB_INIT_ALL, failing_malloc, free, realloc), ==, ARES_SUCCESS);
      g_assert_null (iops_cares_attach (f->iops, NULL, 0, &error));
      g_assert_error (error, IOPS_CARES_ERROR, ARES_ENOMEM);
      g_assert_nonnull (strstr (error->message, ares_strerror (ARES_ENOMEM)));
      ares_library_cleanup ();
      return;
    }
  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_passed ();
}

/* -- the example -------------------------------------------------------------- */

static void
test_example (CaresFixture  *f,
              gconstpointer  data)
{
  const char *exe = g_getenv ("IOPS_CARES_EXAMPLE");
  g_autofree char *server = NULL;
  g_autofree char *out = NULL;
  g_autoptr(GSubprocess) process = NULL;
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) lines = NULL;
  const guint names[] = { 0, 1, 9, 12 };

  if (exe == NULL)
    {
      g_test_skip ("IOPS_CARES_EXAMPLE is not set");
      return;
    }
  start_dnsmasq (f);
  server = g_strdup_printf ("127.0.0.1:%u", f->port);
  {
    g_autofree char *n0 = name_of (names[0]), *n1 = name_of (names[1]);
    g_autofree char *n2 = name_of (names[2]), *n3 = name_of (names[3]);

    process = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error,
                                exe, "--server", server, n0, n1, n2, n3, NULL);
  }
  g_assert_no_error (error);
  g_subprocess_communicate_utf8 (process, NULL, NULL, &out, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_subprocess_get_if_exited (process));
  g_assert_cmpint (g_subprocess_get_exit_status (process), ==, 0);

  lines = g_strsplit (out, "\n", -1);
  g_assert_cmpuint (g_strv_length (lines), ==, G_N_ELEMENTS (names) + 1);
  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autoptr(GPtrArray) want = expected_addresses (names[i], AF_UNSPEC);
      g_autofree char *name = name_of (names[i]);
      g_autofree char *prefix = g_strconcat (name, ":", NULL);
      g_auto(GStrv) words = NULL;
      g_autoptr(GPtrArray) got = g_ptr_array_new ();

      g_assert_true (g_str_has_prefix (lines[i], prefix));
      words = g_strsplit (lines[i] + strlen (prefix), " ", -1);
      for (guint k = 0; words[k] != NULL; k++)
        if (*words[k] != '\0')
          g_ptr_array_add (got, words[k]);
      g_ptr_array_sort (got, compare_text);
      g_assert_cmpuint (got->len, ==, want->len);
      for (guint k = 0; k < want->len; k++)
        g_assert_cmpstr (g_ptr_array_index (got, k), ==, g_ptr_array_index (want, k));
    }
}

/* -- registration ------------------------------------------------------------- */

static const Mode oneshot = { FALSE, FALSE, FALSE };
static const Mode persistent = { TRUE, FALSE, FALSE };
static const Mode relay = { FALSE, TRUE, FALSE };
static const Mode relay_persistent = { TRUE, TRUE, FALSE };
static const Mode oneshot_tcp = { FALSE, FALSE, TRUE };
static const Mode persistent_tcp = { TRUE, FALSE, TRUE };

static void
add (const char   *path,
     const Mode   *mode,
     void        (*test) (CaresFixture *, gconstpointer))
{
  g_autofree char *full = g_strdup_printf ("/iops/bridge/cares/%s%s/%s",
                                           mode->relay ? (mode->persistent ? "relay-persistent" : "relay")
                                                       : mode->persistent ? "persistent" : "oneshot",
                                           mode->tcp ? "-tcp" : "", path);

  g_test_add (full, CaresFixture, mode, fixture_setup, test, fixture_teardown);
}

int
main (int   argc,
      char *argv[])
{
  const Mode *modes[] = { &oneshot, &persistent, &relay };
  const Mode *tcp_modes[] = { &oneshot_tcp, &persistent_tcp };

  g_test_init (&argc, &argv, NULL);
  /* c-ares 1.18 writes its TCP queries with writev (): a server that is
   * gone raises SIGPIPE, which a c-ares program ignores (cares.md). */
  signal (SIGPIPE, SIG_IGN);

  for (guint i = 0; i < G_N_ELEMENTS (modes); i++)
    {
      add ("lookups/many", modes[i], test_lookups_many);
      add ("server-killed", modes[i], test_server_killed);
      add ("timeout/mute-peer", modes[i], test_timeout_mute);
      add ("detach/pending", modes[i], test_detach_pending);
      add ("detach/in-callback", modes[i], test_detach_in_callback);
      add ("nested-loop", modes[i], test_nested_loop);
      add ("stayopen/update-timer", modes[i], test_stayopen);
    }
  /* Over TCP c-ares also asks for write readiness. */
  for (guint i = 0; i < G_N_ELEMENTS (tcp_modes); i++)
    {
      add ("lookups/many", tcp_modes[i], test_lookups_many);
      add ("server-killed", tcp_modes[i], test_server_killed);
      add ("timeout/mute-peer", tcp_modes[i], test_timeout_mute);
      add ("detach/pending", tcp_modes[i], test_detach_pending);
    }
  add ("nested-loop", &relay_persistent, test_nested_loop);
  add ("attach/bad-input", &oneshot, test_bad_input);
  add ("attach/init-fails", &oneshot, test_init_fails);
  add ("example", &oneshot, test_example);

  return g_test_run ();
}

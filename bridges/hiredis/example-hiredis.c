/* example-hiredis.c — a hiredis client on a GLib main loop
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 *   example-hiredis [HOST [PORT [COUNT]]]
 *
 * Connects to the Redis server at HOST:PORT (127.0.0.1:6379 by default),
 * runs COUNT (100) increments of a counter and a SET and GET of a key per
 * increment, all pipelined on one connection, checks every reply, and
 * disconnects. Every read and write goes through an IopsGLibIOPS on the
 * default GMainContext; the connect and command timeouts are the
 * bridge's, on the IOPS's timers. Exits 0 when every reply was right.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <iops-hiredis.h>

typedef struct
{
  guint  count;
  guint  replies;
  guint  wrong;
  char  *counter_key;
} Example;

static void
on_connect (const redisAsyncContext *ac,
            int                      status)
{
  if (status != REDIS_OK)
    g_printerr ("connect failed: %s\n", ac->errstr);
}

static void
on_disconnect (const redisAsyncContext *ac,
               int                      status)
{
  if (status != REDIS_OK)
    g_printerr ("disconnected: %s\n", ac->errstr);
}

static void
check (Example    *example,
       gboolean    right,
       const char *what)
{
  example->replies++;
  if (!right)
    {
      example->wrong++;
      g_printerr ("wrong reply to %s\n", what);
    }
}

static void
on_incr (redisAsyncContext *ac,
         void              *reply,
         void              *privdata)
{
  Example *example = ac->data;
  redisReply *r = reply;
  long long expected = GPOINTER_TO_UINT (privdata);

  check (example, r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer == expected, "INCR");
}

static void
on_set (redisAsyncContext *ac,
        void              *reply,
        void              *privdata)
{
  redisReply *r = reply;

  check (ac->data, r != NULL && r->type == REDIS_REPLY_STATUS && strcmp (r->str, "OK") == 0,
         "SET");
}

static void
on_get (redisAsyncContext *ac,
        void              *reply,
        void              *privdata)
{
  Example *example = ac->data;
  redisReply *r = reply;
  g_autofree char *expected = g_strdup_printf ("value-%u", GPOINTER_TO_UINT (privdata));

  check (example, r != NULL && r->type == REDIS_REPLY_STRING && strcmp (r->str, expected) == 0,
         "GET");

  /* The last reply: a clean disconnect, which frees the context once
   * nothing is pending. The IOPS then has nothing armed and
   * iops_iops_start_watching() returns. */
  if (example->replies == 3 * example->count)
    redisAsyncDisconnect (ac);
}

static void
send_commands (redisAsyncContext *ac,
               Example           *example)
{
  redisAsyncCommand (ac, NULL, NULL, "DEL %s", example->counter_key);
  for (guint i = 1; i <= example->count; i++)
    {
      g_autofree char *key = g_strdup_printf ("%s:%u", example->counter_key, i);
      g_autofree char *value = g_strdup_printf ("value-%u", i);

      redisAsyncCommand (ac, on_incr, GUINT_TO_POINTER (i), "INCR %s", example->counter_key);
      redisAsyncCommand (ac, on_set, NULL, "SET %s %s", key, value);
      redisAsyncCommand (ac, on_get, GUINT_TO_POINTER (i), "GET %s", key);
    }
}

int
main (int   argc,
      char *argv[])
{
  const char *host = argc > 1 ? argv[1] : "127.0.0.1";
  int port = argc > 2 ? atoi (argv[2]) : 6379;
  Example example = { .count = argc > 3 ? (guint) atoi (argv[3]) : 100 };
  g_autoptr(IopsGLibIOPS) iops = iops_glib_iops_new (NULL);
  redisAsyncContext *ac;

  if (example.count == 0)
    {
      g_printerr ("usage: %s [HOST [PORT [COUNT]]]\n", argv[0]);
      return 2;
    }

  ac = redisAsyncConnect (host, port);
  if (ac == NULL || ac->err != 0)
    {
      g_printerr ("cannot connect: %s\n", ac != NULL ? ac->errstr : "out of memory");
      if (ac != NULL)
        redisAsyncFree (ac);
      return 1;
    }

  /* One call: from here on the context runs on the IOPS, and the bridge
   * lets go of it when hiredis frees the context. */
  if (iops_hiredis_attach (ac, IOPS_IOPS (iops)) != REDIS_OK)
    {
      redisAsyncFree (ac);
      return 1;
    }
  iops_hiredis_set_connect_timeout (ac, 2 * G_USEC_PER_SEC);
  iops_hiredis_set_command_timeout (ac, 2 * G_USEC_PER_SEC);

  example.counter_key = g_strdup_printf ("example-hiredis:%d", (int) getpid ());
  ac->data = &example;
  redisAsyncSetConnectCallback (ac, on_connect);
  redisAsyncSetDisconnectCallback (ac, on_disconnect);
  send_commands (ac, &example);

  /* Runs the default context until the context is freed: nothing armed. */
  iops_iops_start_watching (IOPS_IOPS (iops));

  g_print ("%u replies, %u wrong\n", example.replies, example.wrong);
  g_free (example.counter_key);
  return example.replies == 3 * example.count && example.wrong == 0 ? 0 : 1;
}

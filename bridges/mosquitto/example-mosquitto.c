/* example-mosquitto.c — an MQTT round trip on a GLib main loop
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 *   example-mosquitto [--host 127.0.0.1] [--port 1883] [--count 10]
 *
 * Connects to a broker, subscribes to a topic of its own and publishes
 * --count QoS 1 messages to it, one after the other: each is sent when the
 * previous one came back. libmosquitto does the MQTT; the bridge runs it
 * on the GMainLoop through an IopsGLibIOPS, so a GTK application would
 * carry it the same way. Exits 0 when every message came back in order.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <iops-mosquitto.h>

typedef struct
{
  GMainLoop  *loop;
  char       *topic;
  guint       timeout_id;
  int         count;
  int         sent;
  int         received;
  gboolean    in_order;
} RoundTrip;

static void
publish_next (struct mosquitto *mosq,
              RoundTrip        *rt)
{
  g_autofree char *text = g_strdup_printf ("message %d", rt->sent++);

  mosquitto_publish (mosq, NULL, rt->topic, (int) strlen (text), text, 1, false);
}

static void
on_connect (struct mosquitto *mosq,
            void             *data,
            int               rc)
{
  RoundTrip *rt = data;

  if (rc != 0)
    {
      g_printerr ("connection refused: %s\n", mosquitto_connack_string (rc));
      return;  /* libmosquitto disconnects, and on_disconnect quits */
    }
  mosquitto_subscribe (mosq, NULL, rt->topic, 1);
}

static void
on_subscribe (struct mosquitto *mosq,
              void             *data,
              int               mid,
              int               n_granted,
              const int        *granted)
{
  publish_next (mosq, data);
}

static void
on_message (struct mosquitto               *mosq,
            void                           *data,
            const struct mosquitto_message *msg)
{
  RoundTrip *rt = data;
  g_autofree char *expected = g_strdup_printf ("message %d", rt->received);

  if (msg->payloadlen != (int) strlen (expected) ||
      memcmp (msg->payload, expected, msg->payloadlen) != 0)
    rt->in_order = FALSE;
  g_print ("%s: %.*s\n", msg->topic, msg->payloadlen, (const char *) msg->payload);

  /* Publishing from a callback needs nothing more: the bridge sees what
   * libmosquitto queued once the callback returns. */
  if (++rt->received < rt->count)
    publish_next (mosq, rt);
  else
    mosquitto_disconnect (mosq);
}

static void
on_disconnect (struct mosquitto *mosq,
               void             *data,
               int               rc)
{
  RoundTrip *rt = data;

  if (rc != 0)
    g_printerr ("disconnected: %s\n", mosquitto_strerror (rc));
  g_main_loop_quit (rt->loop);
}

static gboolean
on_timeout (gpointer data)
{
  RoundTrip *rt = data;

  g_printerr ("timed out after %d of %d messages\n", rt->received, rt->count);
  rt->timeout_id = 0;
  g_main_loop_quit (rt->loop);
  return G_SOURCE_REMOVE;
}

int
main (int    argc,
      char **argv)
{
  g_autofree char *host = g_strdup ("127.0.0.1");
  int port = 1883;
  int count = 10;
  GOptionEntry entries[] = {
    { "host", 0, 0, G_OPTION_ARG_STRING, &host, "Broker address", "ADDRESS" },
    { "port", 0, 0, G_OPTION_ARG_INT, &port, "Broker port", "PORT" },
    { "count", 0, 0, G_OPTION_ARG_INT, &count, "Messages to send", "N" },
    { NULL }
  };
  g_autoptr(GOptionContext) options = g_option_context_new ("- an MQTT round trip on a GLib main loop");
  g_autoptr(GError) error = NULL;
  g_autoptr(IopsGLibIOPS) iops = NULL;
  RoundTrip rt = { 0 };
  struct mosquitto *mosq;
  IopsMosquitto *bridge;
  int rc;

  g_option_context_add_main_entries (options, entries, NULL);
  if (!g_option_context_parse (options, &argc, &argv, &error) || count < 1)
    {
      g_printerr ("%s\n", error != NULL ? error->message : "--count must be at least 1");
      return 2;
    }

  mosquitto_lib_init ();
  rt.loop = g_main_loop_new (NULL, FALSE);
  rt.topic = g_strdup_printf ("iops-glib/example/%d", (int) getpid ());
  rt.count = count;
  rt.in_order = TRUE;

  mosq = mosquitto_new (NULL, true, &rt);
  mosquitto_connect_callback_set (mosq, on_connect);
  mosquitto_subscribe_callback_set (mosq, on_subscribe);
  mosquitto_message_callback_set (mosq, on_message);
  mosquitto_disconnect_callback_set (mosq, on_disconnect);

  /* The host is looked up with a blocking getaddrinfo(): pass an address
   * in a GUI. Then attach: the bridge watches the new socket. */
  rc = mosquitto_connect_async (mosq, host, port, 60);
  if (rc != MOSQ_ERR_SUCCESS)
    {
      g_printerr ("cannot connect to %s:%d: %s\n", host, port, mosquitto_strerror (rc));
      return 1;
    }
  iops = iops_glib_iops_new (NULL);
  bridge = iops_mosquitto_attach (mosq, IOPS_IOPS (iops));

  rt.timeout_id = g_timeout_add_seconds (10, on_timeout, &rt);
  g_main_loop_run (rt.loop);
  g_clear_handle_id (&rt.timeout_id, g_source_remove);

  /* The bridge first: libmosquitto cannot tell it the client is gone. */
  iops_mosquitto_detach (bridge);
  mosquitto_destroy (mosq);
  mosquitto_lib_cleanup ();

  g_print ("%d of %d messages came back%s\n", rt.received, rt.count,
           rt.in_order ? " in order" : ", NOT in order");
  g_main_loop_unref (rt.loop);
  g_free (rt.topic);
  return rt.received == rt.count && rt.in_order ? 0 : 1;
}

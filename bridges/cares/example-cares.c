/* example-cares.c — resolve names with c-ares on a GLib main loop
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 *   iops-example-cares [--server IP:PORT] [--timeout MS] NAME...
 *
 * Looks every NAME up at once (A and AAAA, ares_getaddrinfo()) on an
 * IopsGLibIOPS, prints one line per name with its addresses in c-ares's
 * order, and exits 0 when every name resolved. The loop is
 * iops_iops_start_watching(), which returns by itself once the last answer
 * is in: the bridge then has no socket and no timer armed.
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <string.h>

#include <iops-cares.h>

typedef struct
{
  const char *name;
  int         status;
  GString    *line;
} Lookup;

static void
append_address (GString                         *line,
                const struct ares_addrinfo_node *node)
{
  union { struct sockaddr_in v4; struct sockaddr_in6 v6; } sa = { 0 };
  char text[INET6_ADDRSTRLEN];

  /* Copied: ai_addr is a plain struct sockaddr, less aligned. */
  memcpy (&sa, node->ai_addr, MIN ((size_t) node->ai_addrlen, sizeof sa));
  if (inet_ntop (node->ai_family,
                 node->ai_family == AF_INET ? (const void *) &sa.v4.sin_addr : (const void *) &sa.v6.sin6_addr,
                 text, sizeof text) != NULL)
    g_string_append_printf (line, " %s", text);
}

static void
on_addrinfo (void                 *arg,
             int                   status,
             int                   timeouts,
             struct ares_addrinfo *result)
{
  Lookup *lookup = arg;

  lookup->status = status;
  g_string_append_printf (lookup->line, "%s:", lookup->name);
  if (status != ARES_SUCCESS)
    g_string_append_printf (lookup->line, " error: %s", ares_strerror (status));
  else
    for (const struct ares_addrinfo_node *node = result->nodes; node != NULL; node = node->ai_next)
      append_address (lookup->line, node);
  ares_freeaddrinfo (result);
}

static IopsCares *
attach_channel (IopsIOPS    *iops,
                const char  *server,
                int          timeout_ms,
                GError     **error)
{
  struct ares_options options = { 0 };
  g_autoptr(IopsCares) cares = NULL;
  int status;

  /* DNS only (no /etc/hosts), no search domains: the names as given. */
  options.lookups = (char *) "b";
  options.flags = ARES_FLAG_NOSEARCH;
  options.timeout = timeout_ms;
  options.tries = 2;
  cares = iops_cares_attach (iops, &options,
                             ARES_OPT_LOOKUPS | ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES,
                             error);
  if (cares == NULL)
    return NULL;

  if (server != NULL &&
      (status = ares_set_servers_ports_csv (iops_cares_get_channel (cares), server)) != ARES_SUCCESS)
    {
      g_set_error (error, IOPS_CARES_ERROR, status, "--server %s: %s", server, ares_strerror (status));
      return NULL;
    }
  return g_steal_pointer (&cares);
}

int
main (int   argc,
      char *argv[])
{
  g_autofree char *server = NULL;
  int timeout_ms = 2000;
  GOptionEntry entries[] = {
    { "server", 0, 0, G_OPTION_ARG_STRING, &server, "DNS server to ask (default: /etc/resolv.conf's)", "IP:PORT" },
    { "timeout", 0, 0, G_OPTION_ARG_INT, &timeout_ms, "first try's timeout (default 2000)", "MS" },
    G_OPTION_ENTRY_NULL
  };
  g_autoptr(GOptionContext) context = g_option_context_new ("NAME... — look names up with c-ares on an IopsIOPS");
  g_autoptr(GError) error = NULL;
  g_autoptr(IopsGLibIOPS) glib_iops = NULL;
  g_autoptr(IopsCares) cares = NULL;
  g_autofree Lookup *lookups = NULL;
  int failed = 0;

  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error) || argc < 2 || timeout_ms <= 0)
    {
      g_printerr ("%s\n", error != NULL ? error->message : "usage: iops-example-cares [--server IP:PORT] [--timeout MS] NAME...");
      return 2;
    }

  glib_iops = iops_glib_iops_new (NULL);
  cares = attach_channel (IOPS_IOPS (glib_iops), server, timeout_ms, &error);
  if (cares == NULL)
    {
      g_printerr ("%s\n", error->message);
      return 1;
    }

  lookups = g_new0 (Lookup, argc - 1);
  for (int i = 1; i < argc; i++)
    {
      struct ares_addrinfo_hints hints = { .ai_family = AF_UNSPEC };

      lookups[i - 1] = (Lookup) { argv[i], -1, g_string_new (NULL) };
      ares_getaddrinfo (iops_cares_get_channel (cares), argv[i], NULL, &hints,
                        on_addrinfo, &lookups[i - 1]);
    }

  /* Returns once nothing is armed: every lookup has had its answer. */
  iops_iops_start_watching (IOPS_IOPS (glib_iops));

  for (int i = 0; i < argc - 1; i++)
    {
      g_print ("%s\n", lookups[i].line->str);
      failed += lookups[i].status != ARES_SUCCESS;
      g_string_free (lookups[i].line, TRUE);
    }
  return failed == 0 ? 0 : 1;
}

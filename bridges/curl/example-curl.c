/* example-curl.c — several downloads at once with libcurl on a GLib main loop
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 *   iops-curl-example URL...
 *
 * One libcurl multi handle, attached to an IopsGLibIOPS with one call,
 * fetches every URL at the same time; a line per URL says how it ended.
 * Each transfer gives up after 10 s (a curl timeout, run on the IOPS's
 * timer). Exits non-zero if a transfer failed or got an HTTP error.
 *
 *   cc example-curl.c $(pkg-config --cflags --libs iops-glib-curl-1.0)
 */
#include <iops-curl.h>

typedef struct
{
  char  *url;
  gsize  bytes;
} Download;

typedef struct
{
  CURLM *multi;
  guint  failed;
} App;

static size_t
on_data (char   *data,
         size_t  size,
         size_t  nmemb,
         void   *user_data)
{
  Download *download = user_data;

  download->bytes += size * nmemb;
  return size * nmemb;
}

/* Called by the bridge once per finished transfer, outside libcurl: the
 * handle can be removed and freed right here. */
static void
on_done (IopsCurl *bridge,
         CURL     *easy,
         CURLcode  result,
         gpointer  user_data)
{
  App *app = user_data;
  Download *download = NULL;
  long status = 0;

  curl_easy_getinfo (easy, CURLINFO_PRIVATE, (char **) &download);
  curl_easy_getinfo (easy, CURLINFO_RESPONSE_CODE, &status);
  if (result != CURLE_OK)
    g_print ("%s: failed: %s\n", download->url, curl_easy_strerror (result));
  else
    g_print ("%s: HTTP %ld, %zu bytes\n", download->url, status, download->bytes);
  if (result != CURLE_OK || status >= 400)
    app->failed++;

  curl_multi_remove_handle (app->multi, easy);
  curl_easy_cleanup (easy);
  g_free (download->url);
  g_free (download);
}

static void
add_download (App        *app,
              const char *url)
{
  Download *download = g_new0 (Download, 1);
  CURL *easy = curl_easy_init ();

  download->url = g_strdup (url);
  curl_easy_setopt (easy, CURLOPT_URL, download->url);
  curl_easy_setopt (easy, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt (easy, CURLOPT_WRITEDATA, download);
  curl_easy_setopt (easy, CURLOPT_PRIVATE, download);
  curl_easy_setopt (easy, CURLOPT_TIMEOUT_MS, 10000L);
  curl_multi_add_handle (app->multi, easy);
}

int
main (int    argc,
      char **argv)
{
  g_autoptr(IopsGLibIOPS) glib_iops = NULL;
  IopsIOPS *iops;
  IopsCurl *bridge;
  App app = { NULL, 0 };

  if (argc < 2)
    {
      g_printerr ("usage: %s URL...\n", argv[0]);
      return 2;
    }

  curl_global_init (CURL_GLOBAL_DEFAULT);
  glib_iops = iops_glib_iops_new (NULL);
  iops = IOPS_IOPS (glib_iops);
  app.multi = curl_multi_init ();

  /* Attach first, then add the transfers. */
  bridge = iops_curl_attach (app.multi, iops, on_done, &app, NULL);
  for (int i = 1; i < argc; i++)
    add_download (&app, argv[i]);

  /* Returns once nothing is armed: every transfer is done. In a GTK or
   * GApplication program, the application's own main loop does this. */
  iops_iops_start_watching (iops);

  /* Detach before curl_multi_cleanup(). */
  iops_curl_detach (bridge);
  curl_multi_cleanup (app.multi);
  curl_global_cleanup ();
  return app.failed > 0 ? 1 : 0;
}

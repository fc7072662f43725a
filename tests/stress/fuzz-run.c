/* fuzz-run.c — runs the libFuzzer binary as a child process
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The fuzzer is built with AddressSanitizer, which cannot run under
 * valgrind: through this launcher, `meson test --setup=valgrind` checks the
 * launcher and runs the fuzzer natively (valgrind does not follow exec by
 * default).
 */
#include <glib.h>

int
main (int   argc,
      char *argv[])
{
  g_autoptr(GError) error = NULL;
  int status;

  if (argc < 2)
    {
      g_printerr ("usage: %s FUZZER [ARGS...]\n", argv[0]);
      return 2;
    }
  if (!g_spawn_sync (NULL, argv + 1, NULL, G_SPAWN_CHILD_INHERITS_STDIN,
                     NULL, NULL, NULL, NULL, &status, &error))
    {
      g_printerr ("%s: %s\n", argv[1], error->message);
      return 1;
    }
  if (!g_spawn_check_wait_status (status, &error))
    {
      g_printerr ("%s: %s\n", argv[1], error->message);
      return 1;
    }
  return 0;
}

/* fuzz-ops.c — libFuzzer entry point: the fuzzer's bytes are an operation
 * sequence for the model of iops-model.c
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * IOPS_MODEL_DISABLE=CROWD,FILENO,... turns operations off, as for
 * test-model (see model_disable()).
 */
#include <stdlib.h>

#include <glib.h>

#include "iops-model.h"

int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

int
LLVMFuzzerTestOneInput (const guint8 *data,
                        size_t        size)
{
  static gboolean initialized;
  static char **disabled;
  Model *model;

  if (!initialized)
    {
      /* A critical (a rejected call) is a finding too. */
      g_log_set_always_fatal (G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING);
      disabled = g_strsplit (g_getenv ("IOPS_MODEL_DISABLE") ?: "", ",", -1);
      initialized = TRUE;
    }

  model = model_new_bytes (data, size);
  for (guint i = 0; disabled[i] != NULL; i++)
    if (*disabled[i] != '\0' && !model_disable (model, disabled[i]))
      g_error ("IOPS_MODEL_DISABLE: no operation is called %s", disabled[i]);
  /* A violation is printed at once; the input is the fuzzer's finding. */
  if (!model_run (model, 0))
    abort ();
  model_free (model);
  return 0;
}

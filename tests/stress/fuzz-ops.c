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

/* A critical (a rejected call) or a warning is a finding too. abort(),
 * which libFuzzer catches to save the input, rather than GLib's fatal
 * logging, whose breakpoint trap ends the fuzzer without saving it. */
static GLogWriterOutput
abort_on_warning (GLogLevelFlags   level,
                  const GLogField *fields,
                  gsize            n_fields,
                  gpointer         user_data)
{
  g_log_writer_standard_streams (level, fields, n_fields, user_data);
  if (level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING))
    abort ();
  return G_LOG_WRITER_HANDLED;
}

int
LLVMFuzzerTestOneInput (const guint8 *data,
                        size_t        size)
{
  static gboolean initialized;
  static char **disabled;
  Model *model;

  if (!initialized)
    {
      g_log_set_writer_func (abort_on_warning, NULL, NULL);
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

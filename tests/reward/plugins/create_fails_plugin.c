/* A test plug-in whose create() always rejects its config with a message, as a plug-in does when a required option
 * is missing. */
#include <stdio.h>

#include "grpo_grader_plugin.h"

static void* failing_create(const char* config_json, size_t config_size, char* error_buf, size_t error_cap) {
  (void)config_size;
  snprintf(error_buf, error_cap, "missing required option \"model\" in %s", config_json);
  return NULL;
}

static void failing_destroy(void* state) { (void)state; }

static int failing_grade(void* state, const GrpoGradeInput* input, GrpoGradeOutput* output) {
  (void)state;
  (void)input;
  (void)output;
  return GRPO_GRADE_ERROR;
}

static const GrpoGraderPluginV1 kDescriptor = {
    GRPO_GRADER_ABI_VERSION, sizeof(GrpoGraderPluginV1), "create_fails", NULL, 0, 0, failing_create, failing_destroy,
    failing_grade,
};

GRPO_GRADER_EXPORT const void* grpo_grader_plugin(uint32_t host_abi_version) {
  (void)host_abi_version;
  return &kDescriptor;
}

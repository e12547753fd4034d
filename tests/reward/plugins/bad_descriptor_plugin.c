/* A test plug-in whose descriptor is wrong in the way the environment variable GRPO_TEST_BAD_DESCRIPTOR says, read
 * on each call of the entry point (the test sets it before loading; the worker inherits it):
 *   null         the entry point returns NULL (no descriptor for this host's ABI version)
 *   small        struct_size smaller than GrpoGraderPluginV1
 *   no_name      name is NULL
 *   bad_name     name with a space in it
 *   no_grade     grade is NULL */
#include <stdlib.h>
#include <string.h>

#include "grpo_grader_plugin.h"

static void* bad_create(const char* config_json, size_t config_size, char* error_buf, size_t error_cap) {
  (void)config_json;
  (void)config_size;
  (void)error_buf;
  (void)error_cap;
  return malloc(1);
}

static void bad_destroy(void* state) { free(state); }

static int bad_grade(void* state, const GrpoGradeInput* input, GrpoGradeOutput* output) {
  (void)state;
  (void)input;
  output->score = 1.0;
  return GRPO_GRADE_OK;
}

static GrpoGraderPluginV1 descriptor;

GRPO_GRADER_EXPORT const void* grpo_grader_plugin(uint32_t host_abi_version) {
  const char* variant = getenv("GRPO_TEST_BAD_DESCRIPTOR");
  (void)host_abi_version;
  if (variant == NULL) variant = "";
  descriptor.abi_version = GRPO_GRADER_ABI_VERSION;
  descriptor.struct_size = sizeof(GrpoGraderPluginV1);
  descriptor.name = "bad_descriptor";
  descriptor.description = NULL;
  descriptor.flags = 0;
  descriptor.reserved = 0;
  descriptor.create = bad_create;
  descriptor.destroy = bad_destroy;
  descriptor.grade = bad_grade;
  if (strcmp(variant, "null") == 0) return NULL;
  if (strcmp(variant, "small") == 0) descriptor.struct_size = 8;
  if (strcmp(variant, "no_name") == 0) descriptor.name = NULL;
  if (strcmp(variant, "bad_name") == 0) descriptor.name = "bad name";
  if (strcmp(variant, "no_grade") == 0) descriptor.grade = NULL;
  return &descriptor;
}

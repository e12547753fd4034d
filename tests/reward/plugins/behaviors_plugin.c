/* A test plug-in whose behaviour the completion chooses, so that one library exercises every way a grade() call can
 * go right or wrong: plugin_grader_test.cpp sends e.g. "CRASH" or "NAN" and checks what the host makes of it. Any other
 * completion is graded normally: 1 when it equals the reference, else 0.
 *
 * Config: {"crash_in_create": true} or {"hang_in_create": true} make create() crash or hang; anything else is kept
 * and echoed back for the completion "CONFIG". */
#define _POSIX_C_SOURCE 200809L /* getpid, pause, _exit, close under -std=c11 */

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "grpo_grader_plugin.h"

typedef struct State {
  char* config;
  size_t config_size;
  unsigned long calls; /* grade() calls on this state: a fresh worker starts again from 1 */
} State;

static void* behaviors_create(const char* config_json, size_t config_size, char* error_buf, size_t error_cap) {
  State* state;
  (void)error_buf;
  (void)error_cap;
  if (strstr(config_json, "\"crash_in_create\": true") != NULL) {
    volatile int* nowhere = NULL;
    *nowhere = 1;
  }
  if (strstr(config_json, "\"hang_in_create\": true") != NULL) {
    for (;;) pause();
  }
  state = (State*)calloc(1, sizeof *state);
  if (state == NULL) return NULL;
  state->config = (char*)malloc(config_size + 1);
  if (state->config == NULL) {
    free(state);
    return NULL;
  }
  memcpy(state->config, config_json, config_size + 1);
  state->config_size = config_size;
  return state;
}

static void behaviors_destroy(void* state) {
  State* s = (State*)state;
  free(s->config);
  free(s);
}

static int is(const GrpoGradeInput* input, const char* word) {
  return input->completion_size == strlen(word) && memcmp(input->completion, word, input->completion_size) == 0;
}

static void set_text(GrpoGradeOutput* output, int (*setter)(void*, const char*, size_t), const char* text) {
  setter(output->host, text, strlen(text));
}

static int behaviors_grade(void* state, const GrpoGradeInput* input, GrpoGradeOutput* output) {
  State* s = (State*)state;
  char number[64];
  ++s->calls;

  /* Ways to stop answering. */
  if (is(input, "CRASH")) {
    volatile int* nowhere = NULL;
    *nowhere = 1;
  }
  if (is(input, "ABORT")) abort();
  if (is(input, "EXIT")) _exit(7);
  if (is(input, "HANG")) {
    volatile unsigned long spins = 0;
    for (;;) ++spins;
  }
  if (is(input, "CLOSE_AND_HANG")) {
    /* Closes every descriptor (the host's socket among them) and lives on: the host must not wait for it forever. */
    int fd;
    for (fd = 3; fd < 1024; ++fd) close(fd);
    for (;;) pause();
  }

  /* Honest failures. */
  if (is(input, "CANNOT")) {
    set_text(output, output->set_reason, "the reference is not a number");
    return GRPO_GRADE_CANNOT_SCORE;
  }
  if (is(input, "ERROR")) {
    set_text(output, output->set_reason, "the answer database is unavailable");
    return GRPO_GRADE_ERROR;
  }
  if (is(input, "ERROR_SILENT")) return GRPO_GRADE_ERROR;

  /* Garbage. */
  if (is(input, "NAN")) {
    output->score = NAN;
    return GRPO_GRADE_OK;
  }
  if (is(input, "INF")) {
    output->score = HUGE_VAL;
    return GRPO_GRADE_OK;
  }
  if (is(input, "HUGE")) {
    output->score = 2e6;
    return GRPO_GRADE_OK;
  }
  if (is(input, "NO_SCORE")) return GRPO_GRADE_OK;
  if (is(input, "STATUS_7")) {
    output->score = 1.0;
    return 7;
  }
  if (is(input, "NULL_REASON")) {
    output->score = 1.0;
    output->set_reason(output->host, NULL, 5);
    return GRPO_GRADE_OK;
  }
  if (is(input, "LONG_REASON")) {
    const size_t size = GRPO_GRADER_MAX_TEXT_BYTES + 1;
    char* reason = (char*)malloc(size);
    if (reason == NULL) return GRPO_GRADE_ERROR;
    memset(reason, 'x', size);
    output->score = 1.0;
    output->set_reason(output->host, reason, size);
    free(reason);
    return GRPO_GRADE_OK;
  }
  if (is(input, "NAN_COMPONENT")) {
    output->score = 1.0;
    output->add_component(output->host, "accuracy", 8, NAN);
    return GRPO_GRADE_OK;
  }
  if (is(input, "EMPTY_COMPONENT_NAME")) {
    output->score = 1.0;
    output->add_component(output->host, "", 0, 1.0);
    return GRPO_GRADE_OK;
  }
  if (is(input, "DUPLICATE_COMPONENT")) {
    output->score = 1.0;
    output->add_component(output->host, "accuracy", 8, 1.0);
    output->add_component(output->host, "accuracy", 8, 0.0);
    return GRPO_GRADE_OK;
  }
  if (is(input, "TOO_MANY_COMPONENTS")) {
    unsigned i;
    output->score = 1.0;
    for (i = 0; i <= GRPO_GRADER_MAX_COMPONENTS; ++i) {
      int size = snprintf(number, sizeof number, "part_%u", i);
      output->add_component(output->host, number, (size_t)size, 0.5);
    }
    return GRPO_GRADE_OK;
  }
  if (is(input, "WILD_POINTER")) {
    /* A non-NULL pointer to nowhere: the host's copy faults, in the worker. Only sent in subprocess mode. */
    output->score = 1.0;
    output->set_reason(output->host, (const char*)(size_t)16, 5);
    return GRPO_GRADE_OK;
  }

  /* Introspection, for the tests. */
  if (is(input, "PID")) {
    int size = snprintf(number, sizeof number, "%ld", (long)getpid());
    output->score = 0.5;
    output->set_extracted(output->host, number, (size_t)size);
    return GRPO_GRADE_OK;
  }
  if (is(input, "COUNT")) {
    int size = snprintf(number, sizeof number, "%lu", s->calls);
    output->score = 0.5;
    output->set_extracted(output->host, number, (size_t)size);
    return GRPO_GRADE_OK;
  }
  if (is(input, "TIME_LIMIT")) {
    int size = snprintf(number, sizeof number, "%lld", (long long)input->time_limit_ms);
    output->score = 0.5;
    output->set_extracted(output->host, number, (size_t)size);
    return GRPO_GRADE_OK;
  }
  if (is(input, "CONFIG")) {
    output->score = 0.5;
    output->set_extracted(output->host, s->config, s->config_size);
    return GRPO_GRADE_OK;
  }
  if (is(input, "ECHO_ALL")) {
    /* Every input field comes through, binary-safe: extracted = prompt|reference|metadata, reason = completion. */
    size_t size = input->prompt_size + input->reference_size + input->metadata_size + 2;
    char* all = (char*)malloc(size);
    if (all == NULL) return GRPO_GRADE_ERROR;
    memcpy(all, input->prompt, input->prompt_size);
    all[input->prompt_size] = '|';
    memcpy(all + input->prompt_size + 1, input->reference, input->reference_size);
    all[input->prompt_size + 1 + input->reference_size] = '|';
    memcpy(all + input->prompt_size + 2 + input->reference_size, input->metadata, input->metadata_size);
    output->score = 0.25;
    output->set_extracted(output->host, all, size);
    output->set_reason(output->host, input->completion, input->completion_size);
    free(all);
    return GRPO_GRADE_OK;
  }

  /* Normal grading. */
  {
    const int equal = input->completion_size == input->reference_size &&
                      memcmp(input->completion, input->reference, input->completion_size) == 0;
    output->score = equal ? 1.0 : 0.0;
    output->set_extracted(output->host, input->completion, input->completion_size < 100 ? input->completion_size : 100);
    if (!equal) set_text(output, output->set_reason, "completion differs from the reference");
    output->add_component(output->host, "exact", 5, output->score);
    output->add_component(output->host, "half", 4, output->score / 2);
    return GRPO_GRADE_OK;
  }
}

static const GrpoGraderPluginV1 kDescriptor = {
    GRPO_GRADER_ABI_VERSION,
    sizeof(GrpoGraderPluginV1),
    "behaviors",
    "test plug-in: the completion picks what it does",
    0,
    0,
    behaviors_create,
    behaviors_destroy,
    behaviors_grade,
};

GRPO_GRADER_EXPORT const void* grpo_grader_plugin(uint32_t host_abi_version) {
  (void)host_abi_version;
  return &kDescriptor;
}

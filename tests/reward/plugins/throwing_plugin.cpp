// A test plug-in in C++ that breaks the rule against letting exceptions escape through the C ABI: grade() throws on
// the completion "THROW". The host must turn that into "cannot score", not terminate.
#include <stdexcept>
#include <string_view>

#include "grpo_grader_plugin.h"

namespace {

void* throwing_create(const char*, size_t, char*, size_t) {
  static int state = 0;
  return &state;
}

void throwing_destroy(void*) {}

int throwing_grade(void*, const GrpoGradeInput* input, GrpoGradeOutput* output) {
  if (std::string_view(input->completion, input->completion_size) == "THROW") {
    throw std::runtime_error("checker exploded");
  }
  output->score = 1.0;
  return GRPO_GRADE_OK;
}

const GrpoGraderPluginV1 kDescriptor = {
    .abi_version = GRPO_GRADER_ABI_VERSION,
    .struct_size = sizeof(GrpoGraderPluginV1),
    .name = "throwing",
    .description = "test plug-in: grade() throws a C++ exception on \"THROW\"",
    .flags = 0,
    .reserved = 0,
    .create = throwing_create,
    .destroy = throwing_destroy,
    .grade = throwing_grade,
};

}  // namespace

extern "C" GRPO_GRADER_EXPORT const void* grpo_grader_plugin(uint32_t) { return &kDescriptor; }

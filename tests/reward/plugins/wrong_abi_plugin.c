/* A test plug-in as if built against a future grpo_grader_plugin.h (ABI version 2): the host must refuse it, saying
 * both versions. */
#include "grpo_grader_plugin.h"

typedef struct FutureDescriptor {
  uint32_t abi_version;
  uint32_t struct_size;
  const char* name;
} FutureDescriptor;

static const FutureDescriptor kDescriptor = {2, sizeof(FutureDescriptor), "from_the_future"};

GRPO_GRADER_EXPORT const void* grpo_grader_plugin(uint32_t host_abi_version) {
  (void)host_abi_version;
  return &kDescriptor;
}

/* A test plug-in that is a valid shared library but not a grader plug-in: it exports some other function and no
 * grpo_grader_plugin. */
#include <stdint.h>

__attribute__((visibility("default"))) uint32_t grpo_grader_plugin_v0(void) { return 0; }

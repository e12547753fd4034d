// The `grpo` executable: see rl/commands.h.
#include <malloc.h>

#include "rl/commands.h"

int main(int argc, char** argv) {
  // LibTorch allocates large tensors (a [64, 151936] float32 logits block is 39 MB) afresh at every decode step. Above
  // glibc's mmap threshold (at most 32 MB) each one is a fresh mapping whose pages are faulted in and zeroed by the
  // kernel, then unmapped: measured as a fifth of a decode step's time. Serving them from the heap instead reuses
  // the memory.
  mallopt(M_MMAP_THRESHOLD, 1 << 30);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  return grpo::rl::run_command_line(argc, argv);
}

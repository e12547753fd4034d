// The `grpo` executable: see rl/commands.h.
#include "rl/commands.h"

int main(int argc, char** argv) { return grpo::rl::run_command_line(argc, argv); }

// tandem synth: placeholder registration, filled in below this commit.
#include "cli/commands.h"

namespace tandem::cli {

void register_synth(CLI::App& app, Action& action) {
  (void)app;
  (void)action;
}

}  // namespace tandem::cli

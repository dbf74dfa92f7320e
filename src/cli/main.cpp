// tandem: a local LLM inference server for many agents at once.
#include "cli/commands.h"

#include <cstdio>

namespace tandem::cli {

int fail(const std::string& message) {
  std::fprintf(stderr, "tandem: error: %s\n", message.c_str());
  return 1;
}

}  // namespace tandem::cli

int main(int argc, char** argv) {
  CLI::App app{"tandem: local LLM inference for many agents at once", "tandem"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "tandem 0.1.0");
  tandem::cli::Action action;
  tandem::cli::register_inspect(app, action);
  tandem::cli::register_tokenize(app, action);
  tandem::cli::register_detokenize(app, action);
  tandem::cli::register_synth(app, action);
  tandem::cli::register_run(app, action);
  tandem::cli::register_serve(app, action);
  tandem::cli::register_bench(app, action);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "tandem: error: %s (see tandem --help)\n", e.what());
    return 2;
  }
  return action ? action() : 0;
}

#pragma once
namespace wharf::cli {
// `wharf <role|command> ...`: dispatches to the role's Run function. Returns the exit code.
int Main(int argc, char** argv);
}  // namespace wharf::cli

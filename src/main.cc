// The only code no test links: hands the command line to the CLI library.
#include "cli/main.h"

int main(int argc, char** argv) { return wharf::cli::Main(argc, argv); }

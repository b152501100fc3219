/* bench_conv.c — the conv2d benchmark as a program of its own, for bench/compare.sh: the same code
   and options as `cnn bench` (cli/bench.c, compiled in with cli/args.c), so there is one benchmark.
   Its messages name it `cnn bench`. */
#include "cli.h"

int main(int argc, char **argv) {
    return cmd_bench(argc, argv);
}

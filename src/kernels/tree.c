/* tree.c — see tree.h. The top of the tree is cut at the first level with at least one node per
   thread (the frontier); each team computes its frontier nodes depth first with a private stack of
   one buffer per level below, then the frontier's sums are added up the tree in a fixed order. */
#include "kernels/tree.h"

/* at most this many frontier nodes (so at most MAX_NODES / 2 teams) */
#define MAX_NODES 128

typedef struct range {
    int lo, hi;
} range;

typedef struct tree_job {
    cnn_tree_leaf_fn fn;
    void *arg;
    size_t size;
    int node;
} tree_job;

static int split_at(int lo, int hi) { return lo + (hi - lo + 1) / 2; }

/* Levels below a node of len images (the left child, the longer, is the deepest). */
static int height(int len, int node) { return len <= node ? 0 : 1 + height(len - len / 2, node); }

/* The frontier of a batch of n for `threads`: nodes[0 .. count) left to right at level *depth (a node
   of at most `node` images reached earlier stays one). */
static int frontier(int n, int threads, int node, range *nodes, int *depth) {
    const int want = threads < MAX_NODES / 2 ? threads : MAX_NODES / 2;
    int count = 1;
    nodes[0].lo = 0, nodes[0].hi = n;
    *depth = 0;
    while (count < want) {
        range next[MAX_NODES];
        int c = 0, grew = 0;
        for (int i = 0; i < count; i++) {
            if (nodes[i].hi - nodes[i].lo > node) {
                int mid = split_at(nodes[i].lo, nodes[i].hi);
                next[c].lo = nodes[i].lo, next[c++].hi = mid;
                next[c].lo = mid, next[c++].hi = nodes[i].hi;
                grew = 1;
            } else {
                next[c++] = nodes[i];
            }
        }
        if (!grew) break;
        for (int i = 0; i < c; i++) nodes[i] = next[i];
        count = c;
        ++*depth;
    }
    return count;
}

/* The frontier (nodes, its count returned, *depth) and the teams that take it. */
static int shape(int n, int threads, int node, range *nodes, int *depth, int *teams) {
    const int count = frontier(n, threads, node, nodes, depth);
    *teams = count < threads ? count : threads < MAX_NODES / 2 ? threads : MAX_NODES / 2;
    return count;
}

int cnn_tree_teams(int n, int threads, int node) {
    range nodes[MAX_NODES];
    int depth, teams;
    shape(n, threads, node, nodes, &depth, &teams);
    return teams;
}

size_t cnn_tree_scratch_floats(int n, int threads, int node, size_t size) {
    range nodes[MAX_NODES];
    int depth, teams, count = shape(n, threads, node, nodes, &depth, &teams);
    return ((size_t)count - 1 + (size_t)teams * height(nodes[0].hi - nodes[0].lo, node)) * size;
}

/* dst += src; one thread never enters an OpenMP region (inside a team's region that would start a
   nested team per call) */
static void add_into(float *dst, const float *src, size_t size, int threads) {
    if (threads <= 1 || size < 65536) {
        for (size_t i = 0; i < size; i++) dst[i] += src[i];
        return;
    }
#ifdef _OPENMP
#pragma omp parallel for num_threads(threads) schedule(static)
#endif
    for (size_t i = 0; i < size; i++) dst[i] += src[i];
}

/* dst = the sum over [lo, hi); stack: one buffer of size floats per level below. */
static void node_sum(const tree_job *j, int team, int lo, int hi, float *dst, float *stack) {
    if (hi - lo <= j->node) {
        j->fn(j->arg, team, lo, hi, dst);
        return;
    }
    int mid = split_at(lo, hi);
    node_sum(j, team, lo, mid, dst, stack);
    node_sum(j, team, mid, hi, stack, stack + j->size);
    add_into(dst, stack, j->size, 1);
}

/* Adds the frontier's sums below [lo, hi) into the leftmost one's buffer; returns its index. */
static int combine(int lo, int hi, int level, const tree_job *j, int depth, int *next, float *const *buf,
                   int threads) {
    if (level == depth || hi - lo <= j->node) return (*next)++;
    int mid = split_at(lo, hi);
    int a = combine(lo, mid, level + 1, j, depth, next, buf, threads);
    int b = combine(mid, hi, level + 1, j, depth, next, buf, threads);
    const size_t size = j->size;
    add_into(buf[a], buf[b], size, threads);
    return a;
}

void cnn_tree_sum(int n, int threads, int node, size_t size, cnn_tree_leaf_fn fn, void *arg, float *out,
                  float *scratch) {
    range nodes[MAX_NODES];
    float *buf[MAX_NODES];
    int depth, teams;
    const int count = shape(n, threads, node, nodes, &depth, &teams);
    const size_t h = (size_t)height(nodes[0].hi - nodes[0].lo, node);
    const tree_job job = {fn, arg, size, node};
    float *stacks = scratch ? scratch + ((size_t)count - 1) * size : NULL; /* NULL when none is needed */
    buf[0] = out;
    for (int i = 1; i < count; i++) buf[i] = scratch + (size_t)(i - 1) * size;
    if (teams == 1) { /* no region of one thread: fn's own OpenMP regions would be nested, in new threads */
        for (int i = 0; i < count; i++) node_sum(&job, 0, nodes[i].lo, nodes[i].hi, buf[i], stacks);
    } else {
#ifdef _OPENMP
#pragma omp parallel for num_threads(teams) schedule(static, 1)
#endif
        for (int t = 0; t < teams; t++)
            for (int i = (int)((long long)count * t / teams); i < (int)((long long)count * (t + 1) / teams); i++)
                node_sum(&job, t, nodes[i].lo, nodes[i].hi, buf[i], stacks + (size_t)t * h * size);
    }
    int next = 0;
    combine(0, n, 0, &job, depth, &next, buf, threads);
}

/* tree.h — sums over a batch in a fixed binary tree, so that a gradient does not depend on how its batch
   is split: among threads, or between two MPI ranks that each hold half of it (cli/dist.c).

   The tree: a range of images [lo, hi) longer than CNN_TREE_LEAF splits at mid = lo + ceil((hi - lo) / 2);
   its sum is sum[lo, mid) + sum[mid, hi), added element by element in float. A range of at most
   CNN_TREE_LEAF images is a leaf, summed by the caller in image order. A range's sum depends only on its
   images and its length, never on the thread count, so:
   - every thread count gives the same bits (threads take whole subtrees; the top is added in tree order);
   - a batch of n > CNN_TREE_LEAF images split in two shards of ceil(n/2) and floor(n/2) images (the
     shards of 2 MPI ranks) has per-shard sums that, added, give one process's sum bit for bit: the two
     shards are the root's two children. */
#ifndef CNN_TREE_H
#define CNN_TREE_H

#include "core/internal.h"

#include <stddef.h>

#define CNN_TREE_LEAF 8

/* Writes into out (size floats, overwritten) the sum over images [lo, hi), a node of at most `node`
   images (cnn_tree_sum's), in the tree's order: for node == CNN_TREE_LEAF simply image order; a larger
   node (e.g. cnn_gemm_ktree's) must split it itself. team is the caller's team index
   (0 .. cnn_tree_teams - 1), for its private scratch. */
typedef void (*cnn_tree_leaf_fn)(void *arg, int team, int lo, int hi, float *out);

/* Teams that compute disjoint subtrees of a batch of n with `threads` threads (each team one thread;
   1 when the batch is one node: the function may then use all threads itself). */
CNN_LOCAL int cnn_tree_teams(int n, int threads, int node);
/* Scratch floats cnn_tree_sum needs besides out (0 when the batch is one node). */
CNN_LOCAL size_t cnn_tree_scratch_floats(int n, int threads, int node, size_t size);
/* out = the tree sum over images [0, n), n >= 1, nodes of at most `node` (>= CNN_TREE_LEAF) images
   handed to fn; the adds use up to `threads` threads. */
CNN_LOCAL void cnn_tree_sum(int n, int threads, int node, size_t size, cnn_tree_leaf_fn fn, void *arg, float *out,
                            float *scratch);

#endif

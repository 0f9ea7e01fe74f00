/*
 * Small bridges between Sonde's bucket type and the model's, shared by the tests that compare
 * the two (test_hist.c, test_stats.c, test_codec.c).
 */
#ifndef SN_TESTS_LLMODEL_SN_H
#define SN_TESTS_LLMODEL_SN_H

#include "core/hist_bucket.h"
#include "llmodel.h"

static const struct sn_bucket NANB = {-1, 0};
static const struct sn_bucket ZEROB = {0, 0};

static inline struct sn_bucket bk(int val, int exp)
{
    return sn_bucket_make(val, exp);
}

/* The model's bucket with the same two bytes. */
static inline struct llm_bucket lb(struct sn_bucket b)
{
    struct llm_bucket l = {b.val, b.exp};
    return l;
}

#endif

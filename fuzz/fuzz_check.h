/*
 * FUZZ_CHECK(x): a property a fuzz target asserts. Unlike assert() it is never compiled out,
 * and it aborts so libFuzzer (and the corpus replay) records the input as a crash.
 */
#ifndef SN_FUZZ_CHECK_H
#define SN_FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define FUZZ_CHECK(x)                                                                              \
    do {                                                                                           \
        if (!(x)) {                                                                                \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #x);                  \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#endif

/*
 * Compile-only check that src/core/hist_bucket.h is valid BPF C: the agent's programs include
 * it to bucket latencies in the kernel. Built by CTest with clang -target bpf; the types come
 * from here as they would from vmlinux.h.
 */
typedef signed char __s8;
typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef long long __s64;
typedef unsigned long long __u64;
#define __always_inline inline __attribute__((always_inline))

#include "core/hist_bucket.h"

__u16 bucket_ord_of_ns(__u64 ns);
__u16 bucket_ord_of_ns(__u64 ns)
{
    return sn_ord_of_u64(ns);
}

__u16 bucket_ord_of_scaled(__s64 v, int scale);
__u16 bucket_ord_of_scaled(__s64 v, int scale)
{
    return sn_ord_of_int_scale(v, scale);
}

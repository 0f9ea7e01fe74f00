/*
 * Agent frames for the wire-format tests (tests/unit/test_frame_json*.c, tests/agent/test_inst.c):
 * the agent's JSON and binary forms of a frame, instrumentations compiled from CA bodies as the
 * agent does, and one frame of each arity built from cells, so that every test checks the same
 * frames the same way; and two hand-built histograms with edge buckets.
 */
#ifndef SN_TESTS_AGENT_FRAMES_H
#define SN_TESTS_AGENT_FRAMES_H

#include <jansson.h>
#include <stddef.h>

#include "agent/frame_build.h"
#include "agent/probe.h"

/* The agent's JSON form of f: its wire view (sn_frame_wire_view()) encoded by wire/. Returns it
 * (owned), or NULL when out of memory. */
json_t *t_agent_json(const struct sn_frame *f, const char *host);

/* The agent's binary form of f, its length in *len. Returns it (owned), or NULL (*len 0 when the
 * wire view failed) when out of memory. */
unsigned char *t_agent_wire(const struct sn_frame *f, const char *host, size_t *len);

/* Compiles the CA body into *in (id "7", host "web1", key cap 100), as the agent does, asserting
 * that it compiles. */
void t_agent_inst(const char *body, struct sn_probe *in);

/* The agent frames of every arity, in this order (each of id "7", host "web1"):
 * 0 scalar, t 1700000000, 9 events, drops over_cap 1, map_full 2;
 * 1 discrete by execname, t 1700000001: nginx 3+6, sh 4, postgres 5, other 4, over_cap 4;
 * 2 numeric by latency, t 1700000002: 13 values from 0 to 9.2e18 ns, counts 1..13;
 * 3 numeric by execname and latency, t 1700000003: 40 cells over three names.
 * Builds each (asserting every step), calls check(f, which, arg), then frees it. */
void t_agent_frames_each(void (*check)(const struct sn_frame *f, int which, void *arg), void *arg);

struct sn_hist;
/* The hand-built histograms of the wire-format tests, added into h1 and h2: h1 two latencies
 * (2 ms x10, 3.5 ms x20); h2 the edges, [-5,-5] x4, [-1099,-1000] x6, {-10,18} x1 (its far edge
 * is no double), {92,18} x2 (clamped to INT64_MAX) and [77,77] x1. */
void t_wire_hists(struct sn_hist *h1, struct sn_hist *h2);

#endif

/*
 * Rendezvous hashing (src/fleet/rendezvous.h): the weight's known values (the function is a
 * format: docs/fleet.md gives it), owners independent of the nodes' order, balance over 10,000
 * keys, minimal movement when a node goes and comes back, zone spread, and want > n.
 */
#include <stdio.h>
#include <string.h>

#include "fleet/rendezvous.h"
#include "t.h"

#define NKEYS 10000

static const char *key_of(int i)
{
    static char buf[32];
    snprintf(buf, sizeof(buf), "acme/%d", i);
    return buf;
}

/* The reference: FNV-1a 64 of key, NUL, id, then MurmurHash3's fmix64, written out again. */
static uint64_t reference(const char *key, const char *id)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    size_t kl = strlen(key), il = strlen(id);
    unsigned char buf[256];
    memcpy(buf, key, kl);
    buf[kl] = 0;
    memcpy(buf + kl + 1, id, il);
    for (size_t i = 0; i < kl + 1 + il; i++) {
        h ^= buf[i];
        h *= 0x100000001b3ULL;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

static void test_weight(void)
{
    /* fixed values: a change here changes ownership in a fleet of mixed versions */
    T_EQU(sn_hrw_weight("k", "a"), 0xe88a671d72c516b3ULL);
    T_EQU(sn_hrw_weight("", ""), reference("", ""));
    T_EQU(sn_hrw_weight("acme/7", "node-1"), reference("acme/7", "node-1"));
    T_EQU(sn_hrw_weight("7", "n2.example.com"), reference("7", "n2.example.com"));
    /* the NUL separates key from id */
    T_OK(sn_hrw_weight("ab", "c") != sn_hrw_weight("a", "bc"));
    T_OK(sn_hrw_weight("k", "a") != sn_hrw_weight("k", "b"));
    T_OK(sn_hrw_weight("k1", "a") != sn_hrw_weight("k2", "a"));
    T_EQU(sn_hrw_weight(NULL, NULL), sn_hrw_weight("", ""));
}

/* The ids of the owners of key, joined by ',' into out. */
static void owners_str(const char *key, const struct sn_hrw_node *nodes, size_t n, size_t want,
                       char *out, size_t len)
{
    size_t idx[16];
    size_t k = sn_hrw_owners(key, nodes, n, want, idx);
    out[0] = '\0';
    for (size_t i = 0; i < k; i++) {
        if (i)
            strncat(out, ",", len - strlen(out) - 1);
        strncat(out, nodes[idx[i]].id, len - strlen(out) - 1);
    }
}

static void test_permutation(void)
{
    struct sn_hrw_node a[] = {{"n1", "z1"}, {"n2", "z2"}, {"n3", "z1"},
                              {"n4", "z2"}, {"n5", ""},   {"n6", NULL}};
    enum { N = sizeof(a) / sizeof(a[0]) };
    struct sn_hrw_node b[N];
    char sa[128], sb[128];

    t_seed(7);
    for (int round = 0; round < 50; round++) {
        memcpy(b, a, sizeof(a));
        for (size_t i = N - 1; i > 0; i--) { /* Fisher-Yates */
            size_t j = (size_t)(t_rand() % (i + 1));
            struct sn_hrw_node t = b[i];
            b[i] = b[j];
            b[j] = t;
        }
        for (int k = 0; k < 200; k++) {
            for (size_t want = 1; want <= N + 1; want++) {
                owners_str(key_of(k), a, N, want, sa, sizeof(sa));
                owners_str(key_of(k), b, N, want, sb, sizeof(sb));
                t_note("key %s want %zu", key_of(k), want);
                T_STR(sb, sa);
            }
        }
    }
    /* the first owner is the heaviest node */
    for (int k = 0; k < 100; k++) {
        size_t out[1];
        T_EQ(sn_hrw_owners(key_of(k), a, N, 1, out), 1);
        for (size_t i = 0; i < N; i++)
            T_OK(sn_hrw_weight(key_of(k), a[out[0]].id) >= sn_hrw_weight(key_of(k), a[i].id));
    }
}

static void test_balance(void)
{
    struct sn_hrw_node n[] = {
        {"node-a", ""}, {"node-b", ""}, {"node-c", ""}, {"node-d", ""}, {"node-e", ""}};
    int first[5] = {0}, any[5] = {0};
    for (int k = 0; k < NKEYS; k++) {
        size_t out[2];
        T_EQ(sn_hrw_owners(key_of(k), n, 5, 2, out), 2);
        T_OK(out[0] != out[1]);
        first[out[0]]++;
        any[out[0]]++;
        any[out[1]]++;
    }
    for (int i = 0; i < 5; i++) {
        t_note("node %d: first owner of %d keys, owner of %d", i, first[i], any[i]);
        T_OK(first[i] >= NKEYS / 5 * 9 / 10 && first[i] <= NKEYS / 5 * 11 / 10);
        T_OK(any[i] >= 2 * NKEYS / 5 * 9 / 10 && any[i] <= 2 * NKEYS / 5 * 11 / 10);
    }
}

static void test_movement(void)
{
    struct sn_hrw_node all[] = {{"n1", ""}, {"n2", ""}, {"n3", ""}, {"n4", ""}, {"n5", ""}};
    struct sn_hrw_node less[] = {{"n1", ""}, {"n2", ""}, {"n4", ""}, {"n5", ""}}; /* n3 gone */
    static size_t before[NKEYS][2];
    int moved = 0, had = 0;

    for (int k = 0; k < NKEYS; k++)
        T_EQ(sn_hrw_owners(key_of(k), all, 5, 2, before[k]), 2);
    for (int k = 0; k < NKEYS; k++) {
        size_t out[2];
        T_EQ(sn_hrw_owners(key_of(k), less, 4, 2, out), 2);
        const char *o0 = less[out[0]].id, *o1 = less[out[1]].id;
        const char *b0 = all[before[k][0]].id, *b1 = all[before[k][1]].id;
        bool owned = strcmp(b0, "n3") == 0 || strcmp(b1, "n3") == 0;
        had += owned;
        t_note("key %s: %s,%s -> %s,%s", key_of(k), b0, b1, o0, o1);
        if (!owned) { /* keys n3 did not own keep both owners, in order */
            T_STR(o0, b0);
            T_STR(o1, b1);
        } else { /* the survivor of the two stays an owner, and moves up if n3 was first */
            const char *kept = strcmp(b0, "n3") == 0 ? b1 : b0;
            T_STR(o0, kept);
            T_OK(strcmp(o1, "n3") != 0 && strcmp(o1, kept) != 0);
            moved++;
        }
    }
    /* n3 owned about 2/5 of the keys */
    T_OK(had >= 2 * NKEYS / 5 * 9 / 10 && had <= 2 * NKEYS / 5 * 11 / 10);
    T_EQ(moved, had);
    /* n3 back: exactly the first assignment again */
    for (int k = 0; k < NKEYS; k++) {
        size_t out[2];
        T_EQ(sn_hrw_owners(key_of(k), all, 5, 2, out), 2);
        T_EQ(out[0], before[k][0]);
        T_EQ(out[1], before[k][1]);
    }
    /* a sixth node comes: only keys it takes change, and it takes about 1/6 as first owner */
    struct sn_hrw_node more[] = {{"n1", ""}, {"n2", ""}, {"n3", ""},
                                 {"n4", ""}, {"n5", ""}, {"n6", ""}};
    int took = 0;
    for (int k = 0; k < NKEYS; k++) {
        size_t out[2];
        T_EQ(sn_hrw_owners(key_of(k), more, 6, 2, out), 2);
        if (out[0] == 5) {
            took++;
            T_EQ(out[1], before[k][0]); /* the old first owner is second */
        } else if (out[1] == 5) {
            T_EQ(out[0], before[k][0]);
        } else {
            T_EQ(out[0], before[k][0]);
            T_EQ(out[1], before[k][1]);
        }
    }
    T_OK(took >= NKEYS / 6 * 9 / 10 && took <= NKEYS / 6 * 11 / 10);
}

static void test_zones(void)
{
    struct sn_hrw_node n[] = {{"a1", "a"}, {"a2", "a"}, {"a3", "a"},
                              {"b1", "b"}, {"b2", "b"}, {"b3", "b"}};
    struct sn_hrw_node only_b[] = {{"b1", "b"}, {"b2", "b"}, {"b3", "b"}}; /* zone a lost */

    for (int k = 0; k < NKEYS; k++) {
        size_t out[4];
        T_EQ(sn_hrw_owners(key_of(k), n, 6, 2, out), 2);
        t_note("key %s: %s,%s", key_of(k), n[out[0]].id, n[out[1]].id);
        T_OK(strcmp(n[out[0]].zone, n[out[1]].zone) != 0); /* one owner per zone */
        /* the first owner is the heaviest of all; the second the heaviest of the other zone */
        for (size_t i = 0; i < 6; i++) {
            T_OK(sn_hrw_weight(key_of(k), n[out[0]].id) >= sn_hrw_weight(key_of(k), n[i].id));
            if (strcmp(n[i].zone, n[out[1]].zone) == 0)
                T_OK(sn_hrw_weight(key_of(k), n[out[1]].id) >= sn_hrw_weight(key_of(k), n[i].id));
        }
        /* the owner in zone b keeps its key when zone a goes */
        size_t inb = strcmp(n[out[0]].zone, "b") == 0 ? out[0] : out[1], lone[2];
        T_EQ(sn_hrw_owners(key_of(k), only_b, 3, 2, lone), 2);
        T_STR(only_b[lone[0]].id, n[inb].id);
        /* want 4 of 6 in 2 zones: both zones first, then the heaviest of the rest */
        T_EQ(sn_hrw_owners(key_of(k), n, 6, 4, out), 4);
        T_OK(strcmp(n[out[0]].zone, n[out[1]].zone) != 0);
        T_OK(sn_hrw_weight(key_of(k), n[out[2]].id) >= sn_hrw_weight(key_of(k), n[out[3]].id));
    }
    /* three zones, want 3: one per zone */
    struct sn_hrw_node z3[] = {{"x1", "x"}, {"x2", "x"}, {"y1", "y"}, {"z1", "z"}, {"z2", "z"}};
    for (int k = 0; k < 1000; k++) {
        size_t out[3];
        T_EQ(sn_hrw_owners(key_of(k), z3, 5, 3, out), 3);
        T_OK(strcmp(z3[out[0]].zone, z3[out[1]].zone) != 0);
        T_OK(strcmp(z3[out[0]].zone, z3[out[2]].zone) != 0);
        T_OK(strcmp(z3[out[1]].zone, z3[out[2]].zone) != 0);
    }
}

/* The example of docs/fleet.md ("Names on the bus"), value for value. */
static void test_doc_example(void)
{
    T_EQU(sn_hrw_weight("acme/7", "node-a"), 0x5dd8a3bfc1ee438cULL);
    T_EQU(sn_hrw_weight("acme/7", "node-b"), 0xb9f9018291f56cefULL);
    T_EQU(sn_hrw_weight("acme/7", "node-c"), 0xdf156c37ef2a0811ULL);
    struct sn_hrw_node z[] = {{"node-a", "east"}, {"node-b", "west"}, {"node-c", "west"}};
    struct sn_hrw_node flat[] = {{"node-a", ""}, {"node-b", ""}, {"node-c", ""}};
    size_t out[2];
    T_EQ(sn_hrw_owners("acme/7", z, 3, 2, out), 2);
    T_STR(z[out[0]].id, "node-c");
    T_STR(z[out[1]].id, "node-a");
    T_EQ(sn_hrw_owners("acme/7", flat, 3, 2, out), 2);
    T_STR(flat[out[0]].id, "node-c");
    T_STR(flat[out[1]].id, "node-b");
    T_EQ(sn_hrw_owners("acme/7", z, 2, 2, out), 2); /* node-c gone */
    T_STR(z[out[0]].id, "node-b");
    T_STR(z[out[1]].id, "node-a");
}

static void test_want(void)
{
    struct sn_hrw_node n[] = {{"n1", ""}, {"n2", "z"}, {"n3", NULL}};
    size_t out[8];
    memset(out, 0xff, sizeof(out));

    T_EQ(sn_hrw_owners("7", n, 3, 5, out), 3); /* want > n: every node, once */
    T_OK(out[0] < 3 && out[1] < 3 && out[2] < 3);
    T_OK(out[0] != out[1] && out[0] != out[2] && out[1] != out[2]);
    T_EQU(out[3], SIZE_MAX); /* nothing written past n */
    T_EQ(sn_hrw_owners("7", n, 3, 0, out), 0);
    T_EQ(sn_hrw_owners("7", n, 0, 2, out), 0);
    T_EQ(sn_hrw_owners("7", NULL, 0, 2, out), 0);
    T_EQ(sn_hrw_owners("7", n, 1, 2, out), 1);
    T_EQ(out[0], 0);
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    t_run("weight", test_weight);
    t_run("permutation", test_permutation);
    t_run("balance", test_balance);
    t_run("movement", test_movement);
    t_run("zones", test_zones);
    t_run("doc_example", test_doc_example);
    t_run("want", test_want);
    return t_done();
}

/*
 * Real nats-server processes for the fleet tests; see nats.h.
 *
 * Each server is a fork + execv of nats-server -c <its conf>, its stdout and stderr appended to
 * its log file (a restart appends to the same log), with a parent-death signal. Readiness is
 * asked of the monitoring port over plain HTTP with the tests' own client (support/http.h):
 * /healthz for every server, and /jsz's meta_cluster for a cluster (a leader, and every peer
 * current), so a test can create replicated streams as soon as start returns.
 *
 * Ports: the client, route and monitoring ports of every server are taken together (all the
 * probing sockets stay bound until the last one is chosen, so they are distinct), then released
 * for the servers; a restart reuses them.
 *
 * Keys without nsc or nk: openssl makes Ed25519 keys (DER), whose last 32 bytes are the seed or
 * the public key; an nkey is base32 of a type prefix, those bytes and a CRC-16. A JWT (operator
 * mode) is base64url of a fixed header and of the claims, and of the issuer's Ed25519 signature
 * of those two joined by a dot (openssl pkeyutl -sign -rawin). nats-server 2.9 checks the
 * signatures and the issuers, not that jti is the claims' hash, so jti is random.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "http.h"
#include "nats.h"
#include "t.h"

#define NATS_BIN_DEFAULT "/usr/sbin/nats-server"
#define PROBE_MS         1000 /* one monitoring request */
#define POLL_MS          50
#define STOP_MS          5000 /* after SIGTERM, before SIGKILL */
#define KILL_MS          5000 /* after SIGKILL */
#define OPENSSL_MS       20000
#define LOG_TAIL         1500

static const char *nats_bin(void)
{
    const char *e = getenv("SN_NATS_SERVER");
    return e && e[0] ? e : NATS_BIN_DEFAULT;
}

/* ---- ports --------------------------------------------------------------------------------- */

/* Takes nports distinct free TCP ports on 127.0.0.1 into ports[]: 0 or -errno. */
static int free_ports(int *ports, int nports)
{
    int fds[3 * TH_NATS_MAX];
    int rc = 0, k;
    if (nports > (int)(sizeof(fds) / sizeof(fds[0])))
        return -EINVAL;
    for (k = 0; k < nports; k++) {
        fds[k] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fds[k] < 0) {
            rc = -errno;
            break;
        }
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof(a);
        if (bind(fds[k], (struct sockaddr *)&a, sizeof(a)) != 0 ||
            getsockname(fds[k], (struct sockaddr *)&a, &len) != 0) {
            rc = -errno;
            close(fds[k]);
            break;
        }
        ports[k] = ntohs(a.sin_port);
    }
    for (int j = 0; j < k; j++)
        close(fds[j]);
    return rc;
}

/* ---- files --------------------------------------------------------------------------------- */

void th_nats_dump(const struct th_nats *n)
{
    for (int i = 0; i < n->n; i++) {
        fprintf(stderr, "th_nats: server %d (pid %d, port %d): log %s\n", i, (int)n->s[i].pid,
                n->s[i].port, n->s[i].log);
        t_print_tail("th_nats", n->s[i].log, LOG_TAIL);
    }
}

/* The TLS material of the test: a CA, a server certificate for IP:127.0.0.1 and a client
 * certificate, EC P-256 keys, valid for 2 days (openssl 3's `req -x509 -CA`). The cd is in a
 * subshell: t_capture's redirections name files under t_outdir(), which may be relative. */
static int make_certs(struct th_nats *n)
{
    char tls[300], cmd[4096], out[256], err[2048];
    snprintf(tls, sizeof(tls), "%s/tls", n->dir);
    if (mkdir(tls, 0700) != 0 && errno != EEXIST)
        return -errno;
    const char *ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2";
    snprintf(cmd, sizeof(cmd),
             "(cd '%s' && "
             "openssl req -x509 %s -keyout ca.key -out ca.pem -subj /CN=sonde-test-ca "
             "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign "
             "&& openssl req -x509 %s -CA ca.pem -CAkey ca.key -keyout server.key "
             "-out server.pem -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 "
             "-addext extendedKeyUsage=serverAuth "
             "&& openssl req -x509 %s -CA ca.pem -CAkey ca.key -keyout client.key "
             "-out client.pem -subj /CN=sonde-test-client -addext extendedKeyUsage=clientAuth)",
             tls, ec, ec, ec);
    int rc = t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "th_nats: openssl failed (%d; package openssl, scripts/setup):\n%s\n", rc,
                err);
        return -EIO;
    }
    snprintf(n->ca, sizeof(n->ca), "%s/ca.pem", tls);
    snprintf(n->cert, sizeof(n->cert), "%s/client.pem", tls);
    snprintf(n->key, sizeof(n->key), "%s/client.key", tls);
    return 0;
}

/* ---- nkeys: base32 (RFC 4648, no padding) of a prefix, the key and a CRC-16 (XMODEM) ------ */

/* nkey prefixes (the first 5 bits of the first byte): a seed packs 'S' and its key's type */
#define NK_SEED     (18 << 3) /* 'S' */
#define NK_OPERATOR (14 << 3) /* 'O' */
#define NK_ACCOUNT  (0 << 3)  /* 'A' */
#define NK_USER     (20 << 3) /* 'U' */
#define NK_LEN      64        /* an encoded public key (56 chars) or seed (58), NUL included */

static uint16_t crc16(const uint8_t *p, size_t n)
{
    uint16_t crc = 0;
    for (size_t i = 0; i < n; i++) {
        crc ^= (uint16_t)(p[i] << 8);
        for (int b = 0; b < 8; b++)
            crc = crc & 0x8000 ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
    }
    return crc;
}

/* p[n] written w bits a character from the alphabet abc (2^w letters), without padding, into
 * out: base32 (w 5: 8 * n / 5 + 2 bytes) and base64url (w 6: 4 * n / 3 + 4 bytes). */
static void radix(const uint8_t *p, size_t n, const char *abc, int w, char *out)
{
    unsigned acc = 0, mask = (1u << w) - 1;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        acc = (acc << 8) | p[i];
        bits += 8;
        while (bits >= w) {
            out[o++] = abc[(acc >> (bits - w)) & mask];
            bits -= w;
        }
    }
    if (bits > 0)
        out[o++] = abc[(acc << (w - bits)) & mask];
    out[o] = '\0';
}

static void base32(const uint8_t *p, size_t n, char *out)
{
    radix(p, n, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 5, out);
}

/* raw[n] (the prefix bytes and the key) with its CRC appended (raw has room), base32 into out. */
static void nkey_encode(uint8_t *raw, size_t n, char *out)
{
    uint16_t c = crc16(raw, n);
    raw[n++] = (uint8_t)(c & 0xff);
    raw[n++] = (uint8_t)(c >> 8);
    base32(raw, n, out);
}

/* The last 32 bytes of a DER file (an Ed25519 private key's seed, or its public key). */
static int der_tail32(const char *path, uint8_t *out)
{
    uint8_t buf[128];
    FILE *f = fopen(path, "rb");
    if (!f)
        return -errno;
    size_t n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    if (n < 32)
        return -EPROTO;
    memcpy(out, buf + n - 32, 32);
    return 0;
}

/* An Ed25519 key made by openssl in dir/NAME.der (its public key in dir/NAME.pub.der); its
 * public key as an nkey of type prefix into pub[NK_LEN], its seed (prefix 'S' and the type
 * packed in two bytes) into seed[NK_LEN]. 0 or -errno (openssl's message on stderr). */
static int make_key(const char *dir, const char *name, uint8_t prefix, char *pub, char *seed)
{
    char cmd[1400], out[256], err[2048];
    snprintf(cmd, sizeof(cmd),
             "openssl genpkey -algorithm ed25519 -outform DER -out '%s/%s.der' && "
             "openssl pkey -inform DER -in '%s/%s.der' -pubout -outform DER -out '%s/%s.pub.der'",
             dir, name, dir, name, dir, name);
    int rc = t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "th_nats: openssl (ed25519) failed (%d):\n%s\n", rc, err);
        return -EIO;
    }
    uint8_t sk[32], pk[32], raw[40];
    char path[400];
    snprintf(path, sizeof(path), "%s/%s.der", dir, name);
    if ((rc = der_tail32(path, sk)) != 0)
        return rc;
    snprintf(path, sizeof(path), "%s/%s.pub.der", dir, name);
    if ((rc = der_tail32(path, pk)) != 0)
        return rc;
    raw[0] = (uint8_t)(NK_SEED | (prefix >> 5));
    raw[1] = (uint8_t)((prefix & 31) << 3);
    memcpy(raw + 2, sk, 32);
    nkey_encode(raw, 34, seed);
    raw[0] = prefix;
    memcpy(raw + 1, pk, 32);
    nkey_encode(raw, 33, pub);
    return 0;
}

/* A user nkey: a file with its seed and public key (n->nkey, n->nkey_pub). */
static int make_nkey(struct th_nats *n)
{
    char seed[NK_LEN];
    int rc = make_key(n->dir, "nkey", NK_USER, n->nkey_pub, seed);
    if (rc != 0)
        return rc;
    snprintf(n->nkey, sizeof(n->nkey), "%s/user.nk", n->dir);
    FILE *f = fopen(n->nkey, "w");
    if (!f)
        return -errno;
    fprintf(f, "%s\n%s\n", seed, n->nkey_pub);
    return fclose(f) == 0 ? 0 : -EIO;
}

/* ---- JWTs: header.claims.signature, each part base64url without padding ------------------- */

#define JWT_LEN 4096

static void base64url(const uint8_t *p, size_t n, char *out)
{
    radix(p, n, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", 6, out);
}

/* A JWT of the nats-io/jwt v2 kind into out[JWT_LEN]: claims jti (random), iat (now), iss
 * (the public key of dir/SIGNER.der), name, sub and nats (a JSON object), signed by that key
 * with openssl (Ed25519 of "header_b64.claims_b64"; dir/SIGNER.msg and .sig are kept). */
static int make_jwt(const char *dir, const char *signer, const char *iss, const char *sub,
                    const char *name, const char *nats, char *out)
{
    static const char hdr[] = "{\"typ\":\"JWT\",\"alg\":\"ed25519-nkey\"}";
    uint8_t rnd[20];
    char jti[40], claims[JWT_LEN / 2], path[400], sigpath[400];
    FILE *f = fopen("/dev/urandom", "rb");
    if (!f)
        return -errno;
    size_t got = fread(rnd, 1, sizeof(rnd), f);
    fclose(f);
    if (got != sizeof(rnd))
        return -EIO;
    base32(rnd, sizeof(rnd), jti);
    int len = snprintf(claims, sizeof(claims),
                       "{\"jti\":\"%s\",\"iat\":%lld,\"iss\":\"%s\",\"name\":\"%s\",\"sub\":\"%s\","
                       "\"nats\":%s}",
                       jti, (long long)time(NULL), iss, name, sub, nats);
    if (len < 0 || (size_t)len >= sizeof(claims) ||
        (sizeof(hdr) + (size_t)len) * 4 / 3 + 100 > JWT_LEN)
        return -ENAMETOOLONG;
    base64url((const uint8_t *)hdr, sizeof(hdr) - 1, out);
    size_t o = strlen(out);
    out[o++] = '.';
    base64url((const uint8_t *)claims, (size_t)len, out + o);
    o += strlen(out + o);

    snprintf(path, sizeof(path), "%s/%s.msg", dir, signer);
    snprintf(sigpath, sizeof(sigpath), "%s/%s.sig", dir, signer);
    if (!(f = fopen(path, "w")))
        return -errno;
    fwrite(out, 1, o, f);
    if (fclose(f) != 0)
        return -EIO;
    char cmd[1400], so[256], err[2048];
    snprintf(cmd, sizeof(cmd),
             "openssl pkeyutl -sign -rawin -inkey '%s/%s.der' -keyform DER -in '%s' -out '%s'", dir,
             signer, path, sigpath);
    int rc = t_capture(cmd, NULL, so, sizeof(so), err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "th_nats: openssl pkeyutl -sign failed (%d):\n%s\n", rc, err);
        return -EIO;
    }
    uint8_t sig[128];
    if (!(f = fopen(sigpath, "rb")))
        return -errno;
    got = fread(sig, 1, sizeof(sig), f);
    fclose(f);
    if (got != 64) {
        fprintf(stderr, "th_nats: %s: %zu bytes, not an Ed25519 signature\n", sigpath, got);
        return -EPROTO;
    }
    out[o++] = '.';
    base64url(sig, 64, out + o);
    return 0;
}

/* Writes text to dir/name: 0 or -errno. */
static int write_file(const char *dir, const char *name, const char *text)
{
    char path[400];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f)
        return -errno;
    fputs(text, f);
    return fclose(f) == 0 ? 0 : -EIO;
}

/* Operator mode: an operator (self-signed); two accounts it signs, the system account (the
 * server needs one for JetStream) and the user's, with JetStream and no limits; and a user that
 * account signs, written as a .creds file (n->creds; the account's public key in
 * n->creds_account). The server's part goes to dir/operator.conf, which write_conf includes:
 * the operator JWT, the system account, and the MEMORY resolver preloaded with both accounts. */
static int make_creds(struct th_nats *n)
{
    char op[NK_LEN], sys[NK_LEN], user[NK_LEN], seed[NK_LEN], user_seed[NK_LEN];
    int rc;
    if ((rc = make_key(n->dir, "operator", NK_OPERATOR, op, seed)) != 0 ||
        (rc = make_key(n->dir, "system", NK_ACCOUNT, sys, seed)) != 0 ||
        (rc = make_key(n->dir, "account", NK_ACCOUNT, n->creds_account, seed)) != 0 ||
        (rc = make_key(n->dir, "user", NK_USER, user, user_seed)) != 0)
        return rc;
    struct {
        char op[JWT_LEN], sys[JWT_LEN], acc[JWT_LEN], user[JWT_LEN], text[4 * JWT_LEN];
    } *j = malloc(sizeof(*j));
    if (!j)
        return -ENOMEM;
    const char *sys_nats =
        "{\"limits\":{\"subs\":-1,\"data\":-1,\"payload\":-1,\"imports\":-1,\"exports\":-1,"
        "\"wildcards\":true,\"conn\":-1,\"leaf\":-1},\"default_permissions\":{\"pub\":{},"
        "\"sub\":{}},\"type\":\"account\",\"version\":2}";
    const char *acc_nats =
        "{\"limits\":{\"subs\":-1,\"data\":-1,\"payload\":-1,\"imports\":-1,\"exports\":-1,"
        "\"wildcards\":true,\"conn\":-1,\"leaf\":-1,\"mem_storage\":-1,\"disk_storage\":-1,"
        "\"streams\":-1,\"consumer\":-1},\"default_permissions\":{\"pub\":{},\"sub\":{}},"
        "\"type\":\"account\",\"version\":2}";
    const char *user_nats = "{\"pub\":{},\"sub\":{},\"subs\":-1,\"data\":-1,\"payload\":-1,"
                            "\"type\":\"user\",\"version\":2}";
    if ((rc = make_jwt(n->dir, "operator", op, op, "sonde-test-op",
                       "{\"type\":\"operator\",\"version\":2}", j->op)) != 0 ||
        (rc = make_jwt(n->dir, "operator", op, sys, "SYS", sys_nats, j->sys)) != 0 ||
        (rc = make_jwt(n->dir, "operator", op, n->creds_account, "sonde-test-account", acc_nats,
                       j->acc)) != 0 ||
        (rc = make_jwt(n->dir, "account", n->creds_account, user, "sonde-test-user", user_nats,
                       j->user)) != 0)
        goto out;
    snprintf(j->text, sizeof(j->text),
             "operator: \"%s\"\nsystem_account: \"%s\"\nresolver: MEMORY\n"
             "resolver_preload: {\n  %s: \"%s\"\n  %s: \"%s\"\n}\n",
             j->op, sys, sys, j->sys, n->creds_account, j->acc);
    if ((rc = write_file(n->dir, "operator.conf", j->text)) != 0)
        goto out;
    snprintf(j->text, sizeof(j->text),
             "-----BEGIN NATS USER JWT-----\n%s\n------END NATS USER JWT------\n\n"
             "************************* IMPORTANT *************************\n"
             "NKEY Seed printed below can be used to sign and prove identity.\n"
             "NKEYs are sensitive and should be treated as secrets.\n\n"
             "-----BEGIN USER NKEY SEED-----\n%s\n------END USER NKEY SEED------\n\n"
             "*************************************************************\n",
             j->user, user_seed);
    snprintf(n->creds, sizeof(n->creds), "%s/user.creds", n->dir);
    rc = write_file(n->dir, "user.creds", j->text);
out:
    free(j);
    return rc;
}

static int write_conf(const struct th_nats *n, int i)
{
    const struct th_nats_server *s = &n->s[i];
    FILE *f = fopen(s->conf, "w");
    if (!f)
        return -errno;
    fprintf(f,
            "# th_nats server %d of %d (tests/support/nats.c)\n"
            "server_name: \"sonde-nats-%d\"\n"
            "listen: \"127.0.0.1:%d\"\n"
            "http: \"127.0.0.1:%d\"\n"
            "jetstream {\n  store_dir: \"%s\"\n  max_memory_store: 64MB\n"
            "  max_file_store: 1GB\n}\n",
            i, n->n, i, s->port, s->monitor_port, s->store);
    if (n->n > 1) {
        fprintf(f, "cluster {\n  name: \"sonde-test\"\n  listen: \"127.0.0.1:%d\"\n  routes: [",
                s->cluster_port);
        for (int j = 0; j < n->n; j++)
            if (j != i)
                fprintf(f, "\n    \"nats://127.0.0.1:%d\"", n->s[j].cluster_port);
        fprintf(f, "\n  ]\n}\n");
    }
    if (n->flags & TH_NATS_USERPASS)
        fprintf(f, "authorization {\n  user: \"%s\"\n  password: \"%s\"\n}\n", TH_NATS_USER,
                TH_NATS_PASSWORD);
    if (n->flags & TH_NATS_TOKEN)
        fprintf(f, "authorization {\n  token: \"%s\"\n}\n", TH_NATS_TOKEN_VALUE);
    if (n->flags & TH_NATS_NKEY)
        fprintf(f, "authorization {\n  users: [\n    { nkey: \"%s\" }\n  ]\n}\n", n->nkey_pub);
    if (n->flags & TH_NATS_CREDS)
        fprintf(f, "include \"operator.conf\"\n");
    if (n->flags & TH_NATS_TLS)
        fprintf(f,
                "tls {\n  cert_file: \"%s/tls/server.pem\"\n  key_file: \"%s/tls/server.key\"\n"
                "  ca_file: \"%s/tls/ca.pem\"\n  verify: true\n  timeout: 2\n}\n",
                n->dir, n->dir, n->dir);
    return fclose(f) == 0 ? 0 : -EIO;
}

/* ---- processes ----------------------------------------------------------------------------- */

static int spawn(struct th_nats *n, int i)
{
    struct th_nats_server *s = &n->s[i];
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        int in = open("/dev/null", O_RDONLY);
        int log = open(s->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (in < 0 || log < 0)
            _exit(127);
        dup2(in, 0);
        dup2(log, 1);
        dup2(log, 2);
        const char *argv[] = {nats_bin(), "-c", s->conf, NULL};
        execv(argv[0], (char *const *)argv);
        dprintf(2, "th_nats: exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    s->pid = pid;
    return 0;
}

/* Whether server i has exited (reaped then, pid set to 0). */
static int exited(struct th_nats *n, int i)
{
    int st;
    if (n->s[i].pid <= 0)
        return 1;
    pid_t r = waitpid(n->s[i].pid, &st, WNOHANG);
    if (r == n->s[i].pid || (r < 0 && errno == ECHILD)) {
        n->s[i].pid = 0;
        return 1;
    }
    return 0;
}

static int wait_gone(struct th_nats *n, int i, int ms)
{
    for (int k = 0; k <= ms / 5; k++) {
        if (exited(n, i))
            return 0;
        th_sleep_ms(5);
    }
    return -ETIMEDOUT;
}

/* ---- readiness ----------------------------------------------------------------------------- */

static json_t *get_json(int port, const char *path)
{
    struct th_resp r;
    json_t *j = NULL;
    if (th_request(port, "GET", path, NULL, NULL, 0, PROBE_MS, &r) == 0 && r.status == 200)
        j = json_loadb(r.body, r.len, 0, NULL);
    th_resp_free(&r);
    return j;
}

/* Server i's JetStream meta leader (by its server name "sonde-nats-K") into *leader (-1: none),
 * and how many of the meta group's replicas that server sees current (only the leader lists
 * them). 0 when i answers /healthz ok and /jsz with JetStream enabled, else -1. */
static int js_state(const struct th_nats *n, int i, int *leader, int *current)
{
    const struct th_nats_server *s = &n->s[i];
    *leader = -1;
    *current = 0;
    if (s->pid <= 0)
        return -1;
    json_t *h = get_json(s->monitor_port, "/healthz");
    const char *st = json_string_value(json_object_get(h, "status"));
    int ok = st && strcmp(st, "ok") == 0;
    json_decref(h);
    json_t *j = ok ? get_json(s->monitor_port, "/jsz") : NULL;
    if (!j || json_is_true(json_object_get(j, "disabled"))) {
        json_decref(j);
        return -1;
    }
    json_t *m = json_object_get(j, "meta_cluster");
    const char *name = json_string_value(json_object_get(m, "leader"));
    int k;
    if (name && sscanf(name, "sonde-nats-%d", &k) == 1 && k >= 0 && k < n->n)
        *leader = k;
    size_t x;
    json_t *r;
    json_array_foreach(json_object_get(m, "replicas"), x, r)
    {
        if (json_is_true(json_object_get(r, "current")))
            (*current)++;
    }
    json_decref(j);
    return 0;
}

int th_nats_js_ready(const struct th_nats *n, int i)
{
    int leader, current;
    if (js_state(n, i, &leader, &current) != 0)
        return 0;
    if (n->n == 1)
        return 1;
    if (leader < 0 || n->s[leader].pid <= 0)
        return 0;
    int running = 0;
    for (int k = 0; k < n->n; k++)
        running += n->s[k].pid > 0;
    /* the leader sees every other running server current in the meta group */
    if (leader != i && js_state(n, leader, &leader, &current) != 0)
        return 0;
    return current + 1 >= running;
}

/* Waits until every running server is ready, or one exits, or the deadline. */
static int wait_ready(struct th_nats *n, double deadline)
{
    for (int k = 0; k < TH_NATS_START_MS / POLL_MS + 1; k++) {
        int all = 1;
        for (int i = 0; i < n->n; i++) {
            if (n->s[i].pid <= 0)
                continue;
            if (exited(n, i)) {
                fprintf(stderr, "th_nats: server %d exited while starting\n", i);
                return -ECHILD;
            }
            if (!th_nats_js_ready(n, i)) {
                all = 0;
                break;
            }
        }
        if (all)
            return 0;
        if (th_now_ms() > deadline)
            break;
        th_sleep_ms(POLL_MS);
    }
    fprintf(stderr, "th_nats: servers not ready within %d ms\n", TH_NATS_START_MS);
    return -ETIMEDOUT;
}

/* ---- the API ------------------------------------------------------------------------------- */

const char *th_nats_url(const struct th_nats *n)
{
    return n->url;
}

const char *th_nats_url_of(const struct th_nats *n, int i, char *out, size_t len)
{
    snprintf(out, len, "%s://127.0.0.1:%d", n->flags & TH_NATS_TLS ? "tls" : "nats", n->s[i].port);
    return out;
}

int th_nats_start(struct th_nats *n, int nservers, unsigned flags)
{
    memset(n, 0, sizeof(*n));
    if (nservers != 1 && nservers != TH_NATS_MAX)
        return -EINVAL;
    if (access(nats_bin(), X_OK) != 0) {
        int e = errno;
        fprintf(stderr, "th_nats: %s: %s (package nats-server; scripts/setup)\n", nats_bin(),
                strerror(e));
        return -e;
    }
    n->n = nservers;
    n->flags = flags;
    char tmpl[300], abs[PATH_MAX];
    snprintf(tmpl, sizeof(tmpl), "%s/nats-XXXXXX", t_outdir());
    if (!mkdtemp(tmpl) || !realpath(tmpl, abs)) {
        int e = errno;
        fprintf(stderr, "th_nats: mkdtemp %s: %s\n", tmpl, strerror(e));
        return -e;
    }
    if (strlen(abs) >= sizeof(n->dir) - 64) {
        fprintf(stderr, "th_nats: %s: path too long\n", abs);
        return -ENAMETOOLONG;
    }
    memcpy(n->dir, abs, strlen(abs) + 1);
    int rc;
    if ((flags & TH_NATS_TLS) && (rc = make_certs(n)) != 0)
        return rc;
    if ((flags & TH_NATS_NKEY) && (rc = make_nkey(n)) != 0)
        return rc;
    if ((flags & TH_NATS_CREDS) && (rc = make_creds(n)) != 0)
        return rc;

    int ports[3 * TH_NATS_MAX];
    if ((rc = free_ports(ports, 3 * nservers)) != 0) {
        fprintf(stderr, "th_nats: no free ports on 127.0.0.1: %s\n", strerror(-rc));
        return rc;
    }
    size_t off = 0;
    for (int i = 0; i < nservers; i++) {
        struct th_nats_server *s = &n->s[i];
        s->port = ports[3 * i];
        s->monitor_port = ports[3 * i + 1];
        s->cluster_port = nservers > 1 ? ports[3 * i + 2] : 0;
        snprintf(s->conf, sizeof(s->conf), "%s/s%d.conf", n->dir, i);
        snprintf(s->log, sizeof(s->log), "%s/s%d.log", n->dir, i);
        snprintf(s->store, sizeof(s->store), "%s/s%d", n->dir, i);
        char u[64];
        off += (size_t)snprintf(n->url + off, sizeof(n->url) - off, "%s%s", i ? "," : "",
                                th_nats_url_of(n, i, u, sizeof(u)));
    }
    for (int i = 0; i < nservers; i++)
        if ((rc = write_conf(n, i)) != 0) {
            fprintf(stderr, "th_nats: writing %s: %s\n", n->s[i].conf, strerror(-rc));
            return rc;
        }
    rc = th_nats_start_all(n);
    if (rc != 0)
        th_nats_free(n);
    return rc;
}

int th_nats_start_all(struct th_nats *n)
{
    double deadline = th_now_ms() + TH_NATS_START_MS;
    int rc = 0;
    for (int i = 0; i < n->n && rc == 0; i++)
        if (n->s[i].pid <= 0)
            rc = spawn(n, i);
    if (rc == 0)
        rc = wait_ready(n, deadline);
    if (rc != 0)
        th_nats_dump(n);
    return rc;
}

int th_nats_kill(struct th_nats *n, int i, int sig)
{
    if (i < 0 || i >= n->n)
        return -EINVAL;
    if (exited(n, i))
        return -ECHILD;
    if (kill(n->s[i].pid, sig) != 0)
        return -errno;
    if (sig != SIGKILL && sig != SIGTERM && sig != SIGINT)
        return 0;
    if (wait_gone(n, i, sig == SIGKILL ? KILL_MS : STOP_MS) == 0)
        return 0;
    if (sig != SIGKILL) {
        kill(n->s[i].pid, SIGKILL);
        if (wait_gone(n, i, KILL_MS) == 0)
            return 0;
    }
    fprintf(stderr, "th_nats: server %d (pid %d) still there after SIGKILL\n", i, (int)n->s[i].pid);
    return -ETIMEDOUT;
}

int th_nats_restart(struct th_nats *n, int i)
{
    if (i < 0 || i >= n->n)
        return -EINVAL;
    if (!exited(n, i))
        return -EBUSY;
    double deadline = th_now_ms() + TH_NATS_START_MS;
    int rc = spawn(n, i);
    if (rc == 0)
        rc = wait_ready(n, deadline);
    if (rc != 0)
        th_nats_dump(n);
    return rc;
}

int th_nats_stop_all(struct th_nats *n)
{
    int rc = 0;
    for (int i = 0; i < n->n; i++)
        if (n->s[i].pid > 0 && kill(n->s[i].pid, SIGTERM) != 0 && errno != ESRCH)
            rc = -errno;
    for (int i = 0; i < n->n; i++) {
        if (n->s[i].pid <= 0)
            continue;
        if (wait_gone(n, i, STOP_MS) != 0) {
            kill(n->s[i].pid, SIGKILL);
            if (wait_gone(n, i, KILL_MS) != 0)
                rc = -ETIMEDOUT;
        }
    }
    return rc;
}

void th_nats_free(struct th_nats *n)
{
    if (!n)
        return;
    for (int i = 0; i < n->n && i < TH_NATS_MAX; i++)
        if (n->s[i].pid > 0) {
            kill(n->s[i].pid, SIGKILL);
            wait_gone(n, i, KILL_MS);
        }
}

const char *th_sonde_binary(int *argc, char ***argv)
{
    const char *sonde = getenv("SN_SONDE");
    if (!sonde && *argc >= 2) {
        sonde = (*argv)[1];
        (*argv)[1] = (*argv)[0];
        (*argc)--;
        (*argv)++;
    }
    if (!sonde)
        fprintf(stderr, "usage: SN_SONDE=SONDE %s [CASE-FILTER], or %s SONDE [CASE-FILTER]\n",
                (*argv)[0], (*argv)[0]);
    return sonde;
}
